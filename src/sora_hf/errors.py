"""Errors a user can fix by changing their input; the `sora-hf` command prints them on one line (exit code 2)."""

from huggingface_hub.errors import StrictDataclassFieldValidationError


class UserInputError(ValueError):
    """A bad argument or data file, named with what is wrong and how to fix it."""


class DataFileError(UserInputError):
    """A user's data file that cannot be read as the task needs (missing column, empty, one label, bad text)."""


class ConfigFieldTypeError(UserInputError, StrictDataclassFieldValidationError):
    """A config field given a value of the wrong type (`hidden_size="big"`). Also huggingface_hub's strict-dataclass
    field error, which transformers' configs raise for this, so code that catches either keeps working."""

    def __init__(self, message: str):
        ValueError.__init__(self, message)


class CorruptCheckpointError(UserInputError):
    """A checkpoint file that is truncated or corrupt (an interrupted save or download)."""
