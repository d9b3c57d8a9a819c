"""The user's own files of a run: `--train_file` alone or with `--validation_file` / `--test_file`."""

from ...errors import UserInputError


def user_data_files(args) -> dict[str, str]:
    """`{split: path}` for `load_task_dataset(data_files=...)`; missing splits are split off the training file."""
    if args.train_file is None:
        given = [name for name in ("validation_file", "test_file") if getattr(args, name)]
        raise UserInputError(
            f"--{given[0]} needs --train_file too (the splits come from your files together)."
        )
    files = {"train": args.train_file}
    if args.validation_file:
        files["validation"] = args.validation_file
    if args.test_file:
        files["test"] = args.test_file
    return files
