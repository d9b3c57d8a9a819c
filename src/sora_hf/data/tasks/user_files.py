"""Users' own CSV / TSV / JSON / JSON-lines / Parquet files, mapped onto the schema of the built-in task datasets.

A train file alone is enough: the missing validation and test splits are split off it by a seeded shuffle
(`split_user_train`). Every problem with a file (missing, empty, not UTF-8 text, a missing column, an empty
cell, a single label value, ...) raises `sora_hf.errors.DataFileError` naming the file, the column where there
is one, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Translation, Value, load_dataset

from ...errors import DataFileError, UserInputError
from . import ner, qa
from ._common import SPLITS

DataFiles = str | os.PathLike | Sequence[str | os.PathLike] | dict[str, str | os.PathLike | Sequence | None]

_CLASSIFICATION_COLUMNS = {"text_column": "text", "label_column": "label"}
# Per task: the column arguments (with their defaults) and the other options `load_task_dataset` accepts.
# "classification" is the generic name for a user's own labelled texts; "sentiment" reads the same files (and is
# also the preset name of the built-in tweets).
COLUMN_ARGUMENTS: dict[str, dict[str, str | None]] = {
    "classification": dict(_CLASSIFICATION_COLUMNS),
    "sentiment": dict(_CLASSIFICATION_COLUMNS),
    "ner": {"tokens_column": "tokens", "tags_column": "ner_tags"},
    "qa": {
        "question_column": "question",
        "context_column": "context",
        "answers_column": "answers",
        "answer_start_column": None,
    },
    "translation": {"source_column": None, "target_column": None},
    "summarization": {"document_column": "document", "summary_column": "summary"},
    "dialogue": {"context_column": "context", "response_column": "response"},
}
OTHER_OPTIONS: dict[str, dict[str, Any]] = {
    "classification": {"label_names": None},
    "sentiment": {"label_names": None},
    "ner": {"label_names": None},
    "qa": {},
    "translation": {"source_lang": "en", "target_lang": "es"},
    "summarization": {},
    "dialogue": {},
}
# extension -> (datasets packaged builder, its options, the format's name in messages)
FILE_FORMATS: dict[str, tuple[str, dict[str, Any], str]] = {
    ".csv": ("csv", {"encoding": "utf-8-sig"}, "CSV"),  # -sig: Excel's "CSV UTF-8" starts with a BOM
    ".tsv": ("csv", {"encoding": "utf-8-sig", "delimiter": "\t"}, "TSV"),
    ".json": ("json", {}, "JSON"),
    ".jsonl": ("json", {}, "JSON lines"),
    ".parquet": ("parquet", {}, "Parquet"),
}

SPLIT_SEED = 42
HOLDOUT_DIVISOR = 10  # each missing split gets ceil(rows / 10) of the train file's rows


# --- which files --------------------------------------------------------------------------------------------


def _normalise_data_files(data_files: DataFiles) -> dict[str, list[str]]:
    """`{split: [paths]}` from a path, a list of paths or a `{split: path(s)}` dict; a bare path or list is the
    train split, and `None` values (an unset `--validation_file`) count as absent."""
    if not isinstance(data_files, dict):
        data_files = {"train": data_files}
    unknown = sorted(str(split) for split in data_files if split not in SPLITS)
    if unknown:
        raise UserInputError(f"data_files has splits {unknown}; the splits are {list(SPLITS)}")
    normalised = {}
    for split in SPLITS:
        files = data_files.get(split)
        files = [files] if isinstance(files, str | os.PathLike) else list(files or [])
        files = [os.fspath(path) for path in files if path is not None and os.fspath(path) != ""]
        if files:
            normalised[split] = files
    if "train" not in normalised:
        raise UserInputError(
            "data_files has no train file; pass --train_file (validation and test are split off it when "
            "--validation_file / --test_file are not given)"
        )
    return normalised


def _file_format(path: str, split: str) -> tuple[str, dict[str, Any], str]:
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_FORMATS:
        raise DataFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; save it as one of "
            f"{', '.join(FILE_FORMATS)} and pass that as --{split}_file"
        )
    return FILE_FORMATS[suffix]


# --- reading one file ---------------------------------------------------------------------------------------


def _read_file(path: str, split: str = "train") -> tuple[list[str], list[dict]]:
    """The column names and rows of one file; any problem is a `DataFileError` naming the file."""
    builder, builder_options, format_name = _file_format(path, split)
    if not Path(path).exists():
        raise DataFileError(f"{path}: no such file; check the path passed as --{split}_file")
    if not Path(path).is_file():
        raise DataFileError(f"{path}: not a file (a folder?); pass a {format_name} file as --{split}_file")
    if Path(path).stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty (0 bytes); pass the file that holds your data")
    try:
        dataset = load_dataset(builder, data_files=[path], split="train", **builder_options)
        rows = dataset.to_list()  # Arrow's JSON reader lets bad UTF-8 through to here
    except Exception as error:  # datasets wraps the parser's error; name the file and say what it means
        raise _read_error(path, format_name, error) from error
    if not rows:
        raise DataFileError(f"{path}: no rows (only a header?); add rows or pass the right file")
    columns = dataset.column_names
    index_columns = [c for c in columns if c.startswith("__index_level_")]
    if index_columns:  # pandas turns the surplus fields of too-long CSV rows into index columns
        header = [c for c in columns if c not in index_columns]
        raise DataFileError(
            f"{path}: some rows have more fields than the header's {len(header)} columns ({', '.join(header)}); "
            f"quote fields that contain the delimiter, or fix the header"
        )
    return columns, rows


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _read_error(path: str, format_name: str, error: Exception) -> DataFileError:
    """A `DataFileError` for what went wrong inside `datasets.load_dataset` on `path`."""
    causes = list(_causes(error))
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return DataFileError(
            f"{path}: not a {format_name} file but a ZIP archive (an Excel workbook?); export it as "
            f"{format_name} (UTF-8) or unzip it"
        )
    for cause in causes:
        if isinstance(cause, UnicodeDecodeError):
            if format_name == "Parquet":
                return DataFileError(f"{path}: holds strings that are not UTF-8; write them as UTF-8 text")
            return _decode_error(path, format_name)
    for cause in causes:
        name = type(cause).__name__
        message = " ".join(str(cause).split())
        if (
            name == "EmptyDataError"
            or isinstance(cause, StopIteration)
            or "corresponds to no data" in message
        ):
            return DataFileError(
                f"{path}: no rows (an empty or header-only file); add rows or pass the right file"
            )
        if name == "ParserError":
            return DataFileError(
                f"{path}: not valid {format_name} ({message}); check the quotes and the number of fields there"
            )
        if name == "ArrowInvalid" and format_name == "Parquet":
            return DataFileError(f"{path}: not a Parquet file ({message}); pass a file written as Parquet")
        if name == "ArrowInvalid":
            return DataFileError(
                f"{path}: not valid {format_name} ({message}); write one JSON object per line "
                f'(e.g. {{"text": "...", "label": "..."}}) or one JSON list of such objects'
            )
    cause = causes[-1]
    return DataFileError(
        f"{path}: could not be read as {format_name} ({type(cause).__name__}: {' '.join(str(cause).split())}); "
        f"check that it is a {format_name} file"
    )


def _decode_error(path: str, format_name: str) -> DataFileError:
    """Where `path` stops being UTF-8, and whether it looks like text at all."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if b"\x00" in head:
        return DataFileError(
            f"{path}: not a text file (it holds NUL bytes: binary data, or UTF-16 text); "
            f"a {format_name} file must be UTF-8 text; pass the right file or save it as UTF-8"
        )
    line, offset, bad, pending = 1, 0, None, b""  # offset: of data[0] in the file
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 16)
            data, pending = pending + chunk, b""
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                if chunk and error.end == len(data) and error.reason == "unexpected end of data":
                    pending = data[error.start :]  # a character cut by the end of the chunk
                else:
                    bad = data[error.start]
                    line += data[: error.start].count(b"\n")
                    offset += error.start
                    break
            if not chunk:
                break
            done = data[: len(data) - len(pending)]
            line += done.count(b"\n")
            offset += len(done)
    where = f" (byte 0x{bad:02x} at offset {offset}, line {line})" if bad is not None else ""
    return DataFileError(
        f"{path}: not UTF-8 text{where}; save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path} > utf8{Path(path).suffix}"
    )


# --- columns ------------------------------------------------------------------------------------------------


def _check_columns(path: str, columns: list[str], task: str, options: dict[str, Any]) -> None:
    """Every named column is in the file, or a `DataFileError` that suggests which one to pass: the column
    that differs only in case, else the only column no other argument names."""
    named = {
        argument: options[argument] for argument in COLUMN_ARGUMENTS[task] if options[argument] is not None
    }
    by_case = {column.lower(): column for column in reversed(columns)}
    claimed = {by_case.get(column.lower()) for column in named.values()}
    for argument, column in named.items():
        if column in columns:
            continue
        guess = by_case.get(column.lower())
        unclaimed = [c for c in columns if c not in claimed]
        if guess is None and len(unclaimed) == 1:
            guess = unclaimed[0]
        fix = f"pass --{argument} {guess}" if guess else f"pass --{argument} <one of the columns>"
        raise DataFileError(f"{path}: no column {column!r} (columns: {', '.join(columns)}); {fix}")


# --- rows ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowAt:
    """Where a row comes from: its file, its 1-based number in the file (after any header), its split and its
    0-based position in that split (the row id when the file has no `id` column)."""

    file: str
    number: int
    split: str
    index: int

    def __str__(self) -> str:
        return f"{self.file} row {self.number}"


@dataclass
class FilePart:
    split: str
    file: str
    rows: list[dict]

    def located(self, first_index: int) -> Iterator[tuple[dict, RowAt]]:
        for number, row in enumerate(self.rows, start=1):
            yield row, RowAt(self.file, number, self.split, first_index + number - 1)


Converter = Callable[[dict, RowAt], dict]


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def _files(parts: Sequence[FilePart]) -> str:
    return " + ".join(dict.fromkeys(part.file for part in parts))


def _located(parts: Sequence[FilePart]) -> Iterator[tuple[dict, RowAt]]:
    """Every row with its location; indices count within each split across its files."""
    counts: dict[str, int] = {}
    for part in parts:
        yield from part.located(counts.get(part.split, 0))
        counts[part.split] = counts.get(part.split, 0) + len(part.rows)


def _value(row: dict, column: str, at: RowAt) -> Any:
    """`row[column]`, or a `DataFileError` naming the file, row and column when the cell is empty."""
    value = row[column]
    if value is None or (isinstance(value, float) and value != value):
        raise DataFileError(f"{at}: column {column!r} is empty; fill it in or drop the row")
    return value


def _row_id(row: dict, at: RowAt) -> str:
    return str(row["id"]) if row.get("id") is not None else f"{at.split}-{at.index}"


def _sorted_names(values: set) -> list[str]:
    """Label names in a natural order: numerically when every value is an integer, else alphabetically."""
    if all(isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"-?\d+", v)) for v in values):
        return [str(v) for v in sorted(int(v) for v in values)]
    return sorted(str(v) for v in values)


def _encoder(
    values: set, label_names: Sequence[str] | None, column: str, files: str
) -> tuple[list[str], Callable]:
    """(label names, value → class id); integer values index `label_names` when they are not names themselves."""
    names = list(label_names) if label_names is not None else _sorted_names(values)
    index = {name: i for i, name in enumerate(names)}
    if all(str(v) in index for v in values):
        return names, lambda v: index[str(v)]
    if label_names is not None and all(isinstance(v, int) and 0 <= v < len(names) for v in values):
        return names, int
    unknown = sorted(str(v) for v in values if str(v) not in index)
    raise DataFileError(
        f"{files}: column {column!r} has values {unknown[:10]} that are not in label_names={names}; "
        f"add them to label_names or leave label_names out to take the names from the file"
    )


def _require_two_values(values: set, column: str, parts: Sequence[FilePart], what: str) -> None:
    train = [part for part in parts if part.split == "train"]
    if len(values) < 2:
        only = f" ({sorted(map(str, values))[0]!r})" if values else ""
        raise DataFileError(
            f"{_files(train)}: column {column!r} has only one {what} value{only} in its "
            f"{_rows(sum(len(p.rows) for p in train))}; a model needs at least two classes to learn from; "
            f"check --{'label' if what == 'label' else 'tags'}_column or add rows of the other classes"
        )


def _ner_names(tags: set) -> list[str]:
    """The tag O first, then the B- and I- tags grouped by entity type."""

    def key(tag: str) -> tuple:
        prefix, _, kind = tag.partition("-")
        return (tag != "O", kind, prefix)

    return sorted(tags, key=key)


def _split_words(value: Any) -> list:
    """A list stays a list; a string (a CSV cell) is split on whitespace."""
    return value.split() if isinstance(value, str) else list(value)


def _classification(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    column = o["label_column"]
    values_by_split = [(at.split, _value(r, column, at)) for r, at in _located(parts)]
    values = {v for _, v in values_by_split}
    _require_two_values({v for s, v in values_by_split if s == "train"}, column, parts, "label")
    names, encode = _encoder(values, o["label_names"], column, _files(parts))

    def convert(row: dict, at: RowAt) -> dict:
        return {"text": str(_value(row, o["text_column"], at)).strip(), "label": encode(row[column])}

    return Features({"text": Value("string"), "label": ClassLabel(names=names)}), convert


def _ner(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    column = o["tags_column"]
    tags_by_split = [(at.split, t) for r, at in _located(parts) for t in _split_words(_value(r, column, at))]
    tags = {t for _, t in tags_by_split}
    _require_two_values({t for s, t in tags_by_split if s == "train"}, column, parts, "tag")
    label_names = o["label_names"]
    if label_names is None and not all(isinstance(t, int) for t in tags):
        label_names = _ner_names({str(t) for t in tags})
    names, encode = _encoder(tags, label_names, column, _files(parts))

    def convert(row: dict, at: RowAt) -> dict:
        tokens = [str(t) for t in _split_words(_value(row, o["tokens_column"], at))]
        row_tags = _split_words(_value(row, column, at))
        if len(tokens) != len(row_tags):
            raise DataFileError(
                f"{at}: {len(tokens)} tokens in column {o['tokens_column']!r} but {len(row_tags)} tags in "
                f"column {column!r}; give every token exactly one tag"
            )
        return {"id": _row_id(row, at), "tokens": tokens, "ner_tags": [encode(t) for t in row_tags]}

    return Features({**ner.FEATURES, "ner_tags": List(ClassLabel(names=names))}), convert


def _qa(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, at: RowAt) -> dict:
        context = str(_value(row, o["context_column"], at))
        return {
            "id": _row_id(row, at),
            "title": str(row.get("title") or ""),
            "question": str(_value(row, o["question_column"], at)),
            "context": context,
            "answers": _qa_answers(row, context, o, at),
        }

    return qa.FEATURES, convert


def _qa_answers(row: dict, context: str, o: dict[str, Any], at: RowAt) -> dict[str, list]:
    """SQuAD answers from either a SQuAD-style dict or a plain answer string (located in the context)."""
    column = o["answers_column"]
    value = _value(row, column, at)
    if isinstance(value, dict):
        return {"text": list(value["text"]), "answer_start": [int(s) for s in value["answer_start"]]}
    text = str(value)
    if o["answer_start_column"] is not None:
        start = int(_value(row, o["answer_start_column"], at))
    else:
        match = re.search(re.escape(text), context) or qa.find_word(text, context)
        start = match.start() if match else -1
    if start < 0 or context[start : start + len(text)].lower() != text.lower():
        raise DataFileError(
            f"{at}: the answer {text!r} (column {column!r}) is not a span of the context {context[:80]!r}; "
            f"extractive QA needs the answer copied from the context"
        )
    return {"text": [context[start : start + len(text)]], "answer_start": [start]}


def _translation(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    source, target = o["source_lang"], o["target_lang"]

    def convert(row: dict, at: RowAt) -> dict:
        pair = {
            source: str(_value(row, o["source_column"], at)),
            target: str(_value(row, o["target_column"], at)),
        }
        return {"id": _row_id(row, at), "translation": pair}

    return Features({"id": Value("string"), "translation": Translation(languages=[source, target])}), convert


def _summarization(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, at: RowAt) -> dict:
        return {
            "document": str(_value(row, o["document_column"], at)),
            "summary": str(_value(row, o["summary_column"], at)),
        }

    return Features({"document": Value("string"), "summary": Value("string")}), convert


def _dialogue(parts: Sequence[FilePart], o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, at: RowAt) -> dict:
        return {
            "id": _row_id(row, at),
            "context": str(_value(row, o["context_column"], at)),
            "response": str(_value(row, o["response_column"], at)),
        }

    return Features({"id": Value("string"), "context": Value("string"), "response": Value("string")}), convert


CONVERTERS: dict[str, Callable[[Sequence[FilePart], dict[str, Any]], tuple[Features, Converter]]] = {
    "classification": _classification,
    "sentiment": _classification,
    "ner": _ner,
    "qa": _qa,
    "translation": _translation,
    "summarization": _summarization,
    "dialogue": _dialogue,
}


# --- the split ----------------------------------------------------------------------------------------------


def holdout_size(n: int, missing: Sequence[str], source: str = "the train file") -> int:
    """Rows for each missing split, ceil(n / 10); a `DataFileError` when train would keep no row."""
    size = -(-n // HOLDOUT_DIVISOR)
    if missing and n - size * len(missing) < 1:
        raise DataFileError(
            f"{source}: {_rows(n)} cannot be split into train and "
            f"{' and '.join(missing)} (at least {len(missing) + 1} rows are needed); add rows or pass "
            f"{' and '.join(f'--{split}_file' for split in missing)}"
        )
    return size


def split_user_train(
    train: Dataset, missing: Sequence[str], *, seed: int = SPLIT_SEED, source: str = "the train file"
) -> dict[str, Dataset]:
    """Split the `missing` splits ("validation", "test") off `train` by a seeded shuffle.

    The rule: with n train rows, each missing split gets ceil(n / 10) rows, so a train file alone becomes
    80 / 10 / 10 (1,000 rows: 800 / 100 / 100) and a missing validation split alone 90 / 10. Test is taken
    first, with `Dataset.train_test_split(test_size=<rows>, seed=seed)` (the rows at the first ceil(n / 10)
    positions of `numpy.random.default_rng(seed).permutation(n)`), then validation the same way from what is
    left; the same file and seed always give the same split. Rows are not grouped: identical texts in the
    file can land in different splits. Prints one line saying how the file was split.
    """
    n = len(train)
    size = holdout_size(n, missing, source)
    splits: dict[str, Dataset] = {}
    rest = train
    for split in ("test", "validation"):
        if split in missing:
            parts = rest.train_test_split(test_size=size, shuffle=True, seed=seed)
            rest, splits[split] = parts["train"], parts["test"]
    splits = {"train": rest, **splits}
    sizes = " / ".join(f"{split} {len(splits[split]):,}" for split in SPLITS if split in splits)
    print(f"Split {source} ({n:,} rows) into {sizes} (seed {seed})", file=sys.stderr, flush=True)
    return splits


# --- all together -------------------------------------------------------------------------------------------


def load_user_files(
    task: str, data_files: DataFiles, *, split_seed: int = SPLIT_SEED, **options: Any
) -> DatasetDict:
    """Read the user's files with `datasets` and map the named columns onto the built-in schema of `task`.

    `data_files` is a path, a list of paths (both: the train split) or `{"train": ..., "validation": ...,
    "test": ...}` (each a path or a list; `None` counts as absent). Only train is required: the validation and
    test splits that are not given are split off the train file(s) by `split_user_train` (ceil(10%) of its rows
    each, seeded shuffle, `split_seed`=42 by default), with one printed line saying how. Label names come from
    all the given files before the split. Formats by extension: .csv, .tsv (UTF-8, an Excel BOM is fine),
    .json, .jsonl, .parquet; the files may mix formats.

    Raises `DataFileError` (a `ValueError`) naming the file, row and column for a file that is missing, empty,
    not UTF-8 text or not valid in its format, a missing column, an empty cell, a single label value in the
    train rows, labels outside `label_names`, or a train file too small to split; `UserInputError` for unknown
    arguments or splits.
    """
    accepted = {**COLUMN_ARGUMENTS[task], **OTHER_OPTIONS[task]}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserInputError(
            f"load_task_dataset({task!r}) got unknown arguments {unknown}; it accepts {sorted(accepted)}"
        )
    options = {**accepted, **options}
    if task == "translation":  # by default the columns are named after the languages
        options["source_column"] = options["source_column"] or options["source_lang"]
        options["target_column"] = options["target_column"] or options["target_lang"]

    files = _normalise_data_files(data_files)
    for split, paths in files.items():  # fail on a bad path before reading anything
        for path in paths:
            _file_format(path, split)
            if not Path(path).exists():
                raise DataFileError(f"{path}: no such file; check the path passed as --{split}_file")
    parts = []
    for split, paths in files.items():
        for path in paths:
            columns, file_rows = _read_file(path, split)
            _check_columns(path, columns, task, options)
            parts.append(FilePart(split, path, file_rows))
    missing = [split for split in SPLITS if split not in files]
    source = " + ".join(files["train"])
    holdout_size(sum(len(part.rows) for part in parts if part.split == "train"), missing, source)

    features, convert = CONVERTERS[task](parts, options)
    rows: dict[str, list[dict]] = {split: [] for split in files}
    for row, at in _located(parts):
        rows[at.split].append(convert(row, at))
    given = {split: Dataset.from_list(split_rows, features=features) for split, split_rows in rows.items()}

    if missing:
        given.update(split_user_train(given["train"], missing, seed=split_seed, source=source))
    return DatasetDict({split: given[split] for split in SPLITS})
