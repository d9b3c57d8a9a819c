"""Users' own CSV / TSV / JSON / Parquet files, mapped onto the schema of the built-in task datasets."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Translation, Value, load_dataset

from . import ner, qa

DataFiles = str | os.PathLike | Sequence[str | os.PathLike] | dict[str, str | os.PathLike | Sequence]

# Per task: the column arguments (with their defaults) and the other options `load_task_dataset` accepts.
COLUMN_ARGUMENTS: dict[str, dict[str, str | None]] = {
    "sentiment": {"text_column": "text", "label_column": "label"},
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
    "sentiment": {"label_names": None},
    "ner": {"label_names": None},
    "qa": {},
    "translation": {"source_lang": "en", "target_lang": "es"},
    "summarization": {},
    "dialogue": {},
}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _normalise_data_files(data_files: DataFiles) -> dict[str, list[str]]:
    """`{split: [paths]}` from a path, a list of paths or a dict; a bare path or list becomes the train split."""
    if not isinstance(data_files, dict):
        data_files = {"train": data_files}
    normalised = {}
    for split, files in data_files.items():
        files = [files] if isinstance(files, str | os.PathLike) else list(files)
        missing = [str(path) for path in files if not Path(path).is_file()]
        if missing:
            raise ValueError(f"data_files[{split!r}]: no such file {missing}")
        normalised[split] = [str(path) for path in files]
    return normalised


def _file_builder(data_files: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """The `datasets` packaged builder (and its options) for the files' common extension."""
    suffixes = {Path(path).suffix.lower() for files in data_files.values() for path in files}
    unknown = sorted(suffixes - set(FILE_BUILDERS))
    if unknown or len({FILE_BUILDERS[s] for s in suffixes}) != 1 or suffixes == {".csv", ".tsv"}:
        raise ValueError(
            f"data_files must all be one of the formats {sorted(FILE_BUILDERS)}; got extensions {sorted(suffixes)}"
        )
    (suffix,) = suffixes
    return FILE_BUILDERS[suffix], ({"delimiter": "\t"} if suffix == ".tsv" else {})


def _sorted_names(values: set) -> list[str]:
    """Label names in a natural order: numerically when every value is an integer, else alphabetically."""
    if all(isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"-?\d+", v)) for v in values):
        return [str(v) for v in sorted(int(v) for v in values)]
    return sorted(str(v) for v in values)


def _encoder(values: set, label_names: Sequence[str] | None, column: str) -> tuple[list[str], Callable]:
    """(label names, value → class id); integer values index `label_names` when they are not names themselves."""
    names = list(label_names) if label_names is not None else _sorted_names(values)
    index = {name: i for i, name in enumerate(names)}
    if all(str(v) in index for v in values):
        return names, lambda v: index[str(v)]
    if label_names is not None and all(isinstance(v, int) and 0 <= v < len(names) for v in values):
        return names, int
    unknown = sorted(str(v) for v in values if str(v) not in index)
    raise ValueError(f"Column {column!r} has values {unknown[:10]} that are not in label_names={names}")


def _ner_names(tags: set) -> list[str]:
    """The tag O first, then the B- and I- tags grouped by entity type."""

    def key(tag: str) -> tuple:
        prefix, _, kind = tag.partition("-")
        return (tag != "O", kind, prefix)

    return sorted(tags, key=key)


def _split_words(value: Any) -> list:
    """A list stays a list; a string (a CSV cell) is split on whitespace."""
    return value.split() if isinstance(value, str) else list(value)


def load_user_files(task: str, data_files: DataFiles, **options: Any) -> DatasetDict:
    """Read the files with `datasets` and map the named columns onto the built-in schema of `task`."""
    accepted = {**COLUMN_ARGUMENTS[task], **OTHER_OPTIONS[task]}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"load_task_dataset({task!r}) got unknown arguments {unknown}; it accepts {sorted(accepted)}"
        )
    options = {**accepted, **options}
    if task == "translation":  # by default the columns are named after the languages
        options["source_column"] = options["source_column"] or options["source_lang"]
        options["target_column"] = options["target_column"] or options["target_lang"]

    files = _normalise_data_files(data_files)
    builder, builder_options = _file_builder(files)
    raw = load_dataset(builder, data_files=files, **builder_options)
    for split, dataset in raw.items():
        for argument in COLUMN_ARGUMENTS[task]:
            column = options[argument]
            if column is not None and column not in dataset.column_names:
                raise ValueError(
                    f"Column {column!r} ({argument}) not found in data_files[{split!r}] = {files[split]}; "
                    f"the file has columns {dataset.column_names}. "
                    f"Pass {argument}=<the right column> to load_task_dataset({task!r}, ...)."
                )
    rows = {split: dataset.to_list() for split, dataset in raw.items()}
    features, convert = CONVERTERS[task](rows, options)
    return DatasetDict(
        {
            split: Dataset.from_list(
                [convert(row, i, split) for i, row in enumerate(split_rows)], features=features
            )
            for split, split_rows in rows.items()
        }
    )


def _value(row: dict, column: str, index: int, split: str) -> Any:
    """`row[column]`, or a ValueError naming the row when the cell is empty."""
    value = row[column]
    if value is None or (isinstance(value, float) and value != value):
        raise ValueError(f"data_files[{split!r}] row {index}: column {column!r} is empty")
    return value


def _row_id(row: dict, index: int, split: str) -> str:
    return str(row["id"]) if row.get("id") is not None else f"{split}-{index}"


Rows = dict[str, list[dict]]
Converter = Callable[[dict, int, str], dict]


def _sentiment(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    values = {
        _value(r, o["label_column"], i, s) for s, split_rows in rows.items() for i, r in enumerate(split_rows)
    }
    names, encode = _encoder(values, o["label_names"], o["label_column"])

    def convert(row: dict, i: int, split: str) -> dict:
        return {
            "text": str(_value(row, o["text_column"], i, split)).strip(),
            "label": encode(row[o["label_column"]]),
        }

    return Features({"text": Value("string"), "label": ClassLabel(names=names)}), convert


def _ner(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    tags = {
        t for split_rows in rows.values() for r in split_rows for t in _split_words(r[o["tags_column"]] or [])
    }
    label_names = o["label_names"]
    if label_names is None and not all(isinstance(t, int) for t in tags):
        label_names = _ner_names({str(t) for t in tags})
    names, encode = _encoder(tags, label_names, o["tags_column"])

    def convert(row: dict, i: int, split: str) -> dict:
        tokens = [str(t) for t in _split_words(_value(row, o["tokens_column"], i, split))]
        row_tags = _split_words(_value(row, o["tags_column"], i, split))
        if len(tokens) != len(row_tags):
            raise ValueError(
                f"data_files[{split!r}] row {i}: {len(tokens)} tokens in {o['tokens_column']!r} but "
                f"{len(row_tags)} tags in {o['tags_column']!r}"
            )
        return {"id": _row_id(row, i, split), "tokens": tokens, "ner_tags": [encode(t) for t in row_tags]}

    return Features({**ner.FEATURES, "ner_tags": List(ClassLabel(names=names))}), convert


def _qa(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, i: int, split: str) -> dict:
        context = str(_value(row, o["context_column"], i, split))
        return {
            "id": _row_id(row, i, split),
            "title": str(row.get("title") or ""),
            "question": str(_value(row, o["question_column"], i, split)),
            "context": context,
            "answers": _qa_answers(row, context, o, i, split),
        }

    return qa.FEATURES, convert


def _qa_answers(row: dict, context: str, o: dict[str, Any], index: int, split: str) -> dict[str, list]:
    """SQuAD answers from either a SQuAD-style dict or a plain answer string (located in the context)."""
    value = _value(row, o["answers_column"], index, split)
    if isinstance(value, dict):
        return {"text": list(value["text"]), "answer_start": [int(s) for s in value["answer_start"]]}
    text = str(value)
    if o["answer_start_column"] is not None:
        start = int(_value(row, o["answer_start_column"], index, split))
    else:
        match = re.search(re.escape(text), context) or qa.find_word(text, context)
        start = match.start() if match else -1
    if start < 0 or context[start : start + len(text)].lower() != text.lower():
        raise ValueError(
            f"data_files[{split!r}] row {index}: the answer {text!r} ({o['answers_column']}) is not a span of "
            f"the context {context[:80]!r}"
        )
    return {"text": [context[start : start + len(text)]], "answer_start": [start]}


def _translation(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    source, target = o["source_lang"], o["target_lang"]

    def convert(row: dict, i: int, split: str) -> dict:
        pair = {
            source: str(_value(row, o["source_column"], i, split)),
            target: str(_value(row, o["target_column"], i, split)),
        }
        return {"id": _row_id(row, i, split), "translation": pair}

    return Features({"id": Value("string"), "translation": Translation(languages=[source, target])}), convert


def _summarization(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, i: int, split: str) -> dict:
        return {
            "document": str(_value(row, o["document_column"], i, split)),
            "summary": str(_value(row, o["summary_column"], i, split)),
        }

    return Features({"document": Value("string"), "summary": Value("string")}), convert


def _dialogue(rows: Rows, o: dict[str, Any]) -> tuple[Features, Converter]:
    def convert(row: dict, i: int, split: str) -> dict:
        return {
            "id": _row_id(row, i, split),
            "context": str(_value(row, o["context_column"], i, split)),
            "response": str(_value(row, o["response_column"], i, split)),
        }

    return Features({"id": Value("string"), "context": Value("string"), "response": Value("string")}), convert


CONVERTERS: dict[str, Callable[[Rows, dict[str, Any]], tuple[Features, Converter]]] = {
    "sentiment": _sentiment,
    "ner": _ner,
    "qa": _qa,
    "translation": _translation,
    "summarization": _summarization,
    "dialogue": _dialogue,
}
