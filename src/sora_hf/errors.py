"""Errors a user can fix by changing their input; the `sora-hf` command prints them on one line (exit code 2)."""


class UserInputError(ValueError):
    """A bad argument or data file, named with what is wrong and how to fix it."""


class DataFileError(UserInputError):
    """A user's data file that cannot be read as the task needs (missing column, empty, one label, bad text)."""
