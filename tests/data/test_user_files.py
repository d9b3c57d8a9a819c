"""A user's own files: every format, a train file alone split 80/10/10 by a seeded shuffle, and one clear
`DataFileError` (file, column, what is wrong, the fix) for each kind of bad input."""

import json
import re
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import ClassLabel

from sora_hf.data.tasks import (
    SPLITS,
    USER_FILE_TASKS,
    DataFileError,
    UserInputError,
    build_task_dataset,
    load_task_dataset,
)
from sora_hf.errors import DataFileError as ErrorsDataFileError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def review_rows(n):
    return [{"review": f"review number {i}", "stars": "pos" if i % 3 else "neg"} for i in range(n)]


def write_rows(path, rows):
    """`rows` (a list of dicts) in the format of `path`'s extension."""
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        columns = list(rows[0])
        lines = [sep.join(columns)] + [sep.join(str(row[c]) for c in columns) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def load_reviews(files, **kwargs):
    return load_task_dataset(
        "classification", data_files=files, text_column="review", label_column="stars", **kwargs
    )


def split_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Split ")]
    assert len(lines) == 1, lines
    return lines[0]


# --- a train file alone ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_train_file_alone_is_split_80_10_10_with_seed_42(tmp_path, capsys, suffix):
    rows = review_rows(1000)
    path = write_rows(tmp_path / f"my{suffix}", rows)
    data = load_reviews({"train": path})
    assert list(data) == list(SPLITS)
    assert {split: len(data[split]) for split in SPLITS} == {"train": 800, "validation": 100, "test": 100}
    assert (
        split_line(capsys)
        == f"Split {path} (1,000 rows) into train 800 / validation 100 / test 100 (seed 42)"
    )
    texts = {split: list(data[split]["text"]) for split in SPLITS}
    assert sorted(sum(texts.values(), [])) == sorted(row["review"] for row in rows)  # a partition
    assert data["train"].features["label"] == ClassLabel(names=["neg", "pos"])

    # The documented rule: test is the first 100 of numpy's default_rng(42) permutation of the file's rows.
    test_rows = np.random.default_rng(42).permutation(1000)[:100]
    assert set(texts["test"]) == {rows[i]["review"] for i in test_rows}

    again = load_reviews(path)  # a bare path is the train file
    assert "(seed 42)" in split_line(capsys)
    for split in SPLITS:
        assert again[split].to_dict() == data[split].to_dict()  # same seed, same split
    other = load_reviews(path, split_seed=7)
    assert "(seed 7)" in split_line(capsys)
    assert set(other["test"]["text"]) != set(texts["test"])


@pytest.mark.parametrize(
    ("given", "rows", "sizes"),
    [
        (("train", "test"), 50, {"train": 45, "validation": 5, "test": 30}),
        (("train", "validation"), 50, {"train": 45, "validation": 30, "test": 5}),
        (("train",), 11, {"train": 7, "validation": 2, "test": 2}),  # ceil(10%) each
        (("train",), 3, {"train": 1, "validation": 1, "test": 1}),
    ],
)
def test_only_the_missing_splits_are_split_off_train(tmp_path, capsys, given, rows, sizes):
    files = {
        split: write_rows(tmp_path / f"{split}.csv", review_rows(rows if split == "train" else 30))
        for split in given
    }
    data = load_reviews(
        {**files, **{split: None for split in SPLITS if split not in given}}
    )  # None: not given
    assert {split: len(data[split]) for split in SPLITS} == sizes
    shown = " / ".join(
        f"{split} {sizes[split]}" for split in SPLITS if split == "train" or split not in given
    )
    assert split_line(capsys) == f"Split {files['train']} ({rows} rows) into {shown} (seed 42)"
    for split in given[1:]:
        assert data[split]["text"] == [
            row["review"] for row in review_rows(30)
        ]  # given files are kept as they are


def test_three_files_are_kept_and_formats_may_mix(tmp_path, capsys):
    train = write_rows(tmp_path / "train.csv", review_rows(6))
    validation = write_rows(tmp_path / "validation.jsonl", review_rows(4))
    test = write_rows(tmp_path / "test.parquet", review_rows(5))
    data = load_reviews({"train": train, "validation": validation, "test": test})
    assert {split: len(data[split]) for split in SPLITS} == {"train": 6, "validation": 4, "test": 5}
    assert data["train"]["text"] == [row["review"] for row in review_rows(6)]  # file order, no shuffle
    assert "Split " not in capsys.readouterr().err


def test_several_train_files_are_split_together(tmp_path, capsys):
    a = write_rows(tmp_path / "a.csv", review_rows(10))
    b = write_rows(tmp_path / "b.csv", [{"review": f"more {i}", "stars": "pos"} for i in range(10)])
    data = load_reviews([a, b])
    assert {split: len(data[split]) for split in SPLITS} == {"train": 16, "validation": 2, "test": 2}
    assert split_line(capsys) == f"Split {a} + {b} (20 rows) into train 16 / validation 2 / test 2 (seed 42)"


def test_excel_bom_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfreview,stars\nok,pos\nbad,neg\nfine,pos\n")
    assert sorted(load_reviews(str(path))["train"].column_names) == ["label", "text"]


# --- the task names ------------------------------------------------------------------------------------------


def test_classification_reads_files_like_sentiment(tmp_path):
    path = write_rows(tmp_path / "my.csv", [{"text": f"t{i}", "label": i % 2} for i in range(20)])
    classification = load_task_dataset("classification", path)
    sentiment = load_task_dataset("sentiment", path)
    for split in SPLITS:
        assert classification[split].to_dict() == sentiment[split].to_dict()
        assert classification[split].features == sentiment[split].features
    assert "classification" in USER_FILE_TASKS and "sentiment" in USER_FILE_TASKS


def test_classification_without_a_file_says_it_needs_train_file():
    for call in (lambda: load_task_dataset("classification"), lambda: build_task_dataset("classification")):
        with pytest.raises(UserInputError, match=r"'classification'.*no built-in dataset.*--train_file"):
            call()
    with pytest.raises(ValueError, match=r"Unknown task 'poetry'.*'classification'.*'sentiment'"):
        load_task_dataset("poetry")


def test_arguments_and_splits_are_checked(tmp_path):
    path = write_rows(tmp_path / "my.csv", review_rows(10))
    with pytest.raises(UserInputError, match=r"unknown arguments \['txt_column'\]"):
        load_task_dataset("classification", path, txt_column="review")
    with pytest.raises(UserInputError, match=r"splits \['dev'\]"):
        load_task_dataset("classification", {"train": path, "dev": path})
    with pytest.raises(UserInputError, match="no train file; pass --train_file"):
        load_task_dataset("classification", {"validation": path, "test": path})
    with pytest.raises(UserInputError, match="no user-file loader"):
        load_task_dataset("easy_vqa", {"train": path})


# --- bad inputs: each a DataFileError naming the file (and the column) with the fix --------------------------


def raises_data_file_error(path, *fragments, call=None, **columns):
    """Load `path` as the classification train file (or run `call`); the error names the file and `fragments`."""
    with pytest.raises(DataFileError) as info:
        if call is None:
            load_task_dataset("classification", {"train": str(path)}, **columns)
        else:
            call()
    message = str(info.value)
    assert isinstance(info.value, ErrorsDataFileError) and isinstance(info.value, ValueError)
    assert str(path) in message, message
    assert "\n" not in message  # the CLI prints it on one line
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_missing_label_column_suggests_the_one_left(tmp_path):
    path = write_rows(tmp_path / "my.csv", [{"text": "a", "stars": 1}, {"text": "b", "stars": 2}])
    message = raises_data_file_error(path)
    assert message == f"{path}: no column 'label' (columns: text, stars); pass --label_column stars"


def test_missing_text_column_in_jsonl_and_parquet(tmp_path):
    rows = [{"review": "a", "Label": 1}, {"review": "b", "Label": 2}]
    for suffix in (".jsonl", ".parquet"):
        path = write_rows(tmp_path / f"my{suffix}", rows)
        raises_data_file_error(path, "no column 'text'", "(columns: review, Label)", "--text_column review")
        # a column that differs only in case is the suggestion
        raises_data_file_error(path, "no column 'label'", "--label_column Label", text_column="review")


@pytest.mark.parametrize(
    ("task", "columns", "header", "fragments"),
    [
        ("ner", {}, "tokens,labels", ("no column 'ner_tags'", "--tags_column labels")),
        ("qa", {}, "question,context,answer", ("no column 'answers'", "--answers_column answer")),
        ("translation", {}, "english,es", ("no column 'en'", "--source_column english")),
        ("summarization", {"summary_column": "title"}, "article,title", ("no column 'document'", "--document_column article")),
        ("dialogue", {}, "context,reply", ("no column 'response'", "--response_column reply")),
    ],
)  # fmt: skip
def test_missing_column_for_every_task(tmp_path, task, columns, header, fragments):
    path = write(tmp_path / f"{task}.csv", header + "\n" + ",".join(["x"] * len(header.split(","))) + "\n")
    call = lambda: load_task_dataset(task, {"train": path, "validation": path, "test": path}, **columns)  # noqa: E731
    raises_data_file_error(path, *fragments, call=call)


def test_nonexistent_file(tmp_path):
    raises_data_file_error(tmp_path / "nope.csv", "no such file", "--train_file")
    train = write_rows(tmp_path / "my.csv", review_rows(10))
    missing_test = tmp_path / "test.jsonl"
    call = lambda: load_reviews({"train": train, "test": str(missing_test)})  # noqa: E731
    raises_data_file_error(missing_test, "no such file", "--test_file", call=call)


def test_unsupported_extension(tmp_path):
    path = write(tmp_path / "my.xlsx", "x")
    raises_data_file_error(path, "unsupported file type '.xlsx'", ".csv, .tsv, .json, .jsonl, .parquet")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_empty_file(tmp_path, suffix):
    raises_data_file_error(write(tmp_path / f"empty{suffix}", ""), "the file is empty (0 bytes)")


def test_header_only_csv_and_blank_jsonl(tmp_path):
    raises_data_file_error(write(tmp_path / "header.csv", "text,label\n"), "no rows")
    raises_data_file_error(write(tmp_path / "blank.jsonl", "\n\n"), "no rows")


def test_only_one_label_value(tmp_path):
    path = write(tmp_path / "one.csv", "text,label\na,pos\nb,pos\nc,pos\n")
    message = raises_data_file_error(path, "column 'label'", "only one label value ('pos')", "3 rows")
    assert "at least two classes" in message and "--label_column" in message
    # the test file may hold one class; the train rows may not
    test = write(tmp_path / "test.csv", "text,label\nx,pos\n")
    train = write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\nc,pos\n")
    assert len(load_task_dataset("classification", {"train": train, "test": test})["test"]) == 1


def test_only_one_ner_tag_value(tmp_path):
    path = write_rows(tmp_path / "ner.jsonl", [{"tokens": ["a", "b"], "ner_tags": ["O", "O"]}] * 3)
    raises_data_file_error(
        path,
        "column 'ner_tags'",
        "only one tag value ('O')",
        "--tags_column",
        call=lambda: load_task_dataset("ner", path),
    )


def test_latin1_csv_is_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,1\nhéllo wörld,0\n".encode("latin-1"))
    raises_data_file_error(path, "not UTF-8 text", "byte 0xe9", "line 3", "save it as UTF-8", "iconv")


def test_latin1_jsonl_is_not_utf8(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"text": "ok", "label": 1}\n{"text": "h\xe9", "label": 0}\n'.encode("latin-1"))
    raises_data_file_error(path, "not UTF-8 text", "line 2")


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 8)
    raises_data_file_error(path, "not a text file", "NUL bytes", "UTF-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("text,label\na,1\nb,0\n".encode("utf-16"))
    raises_data_file_error(utf16, "not a text file", "UTF-16")


def test_excel_workbook_named_csv(tmp_path):
    path = tmp_path / "book.csv"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    raises_data_file_error(path, "ZIP archive", "Excel", "export it as CSV")


def test_malformed_csv(tmp_path):
    raises_data_file_error(
        write(tmp_path / "quote.csv", 'text,label\n"unterminated,1\nb,2\n'),
        "not valid CSV",
        "EOF inside string",
    )
    raises_data_file_error(
        write(tmp_path / "ragged.csv", "text,label\na,1,extra,fields\nb,2\n"),
        "more fields than the header's 2 columns (text, label)",
        "quote fields",
    )


def test_malformed_json_and_parquet(tmp_path):
    bad_json = write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n{bad json\n')
    raises_data_file_error(bad_json, "not valid JSON lines", "one JSON object per line")
    raises_data_file_error(write(tmp_path / "bad.parquet", "not parquet"), "not a Parquet file")


def test_empty_cell_names_row_and_column(tmp_path):
    path = write(tmp_path / "gaps.csv", "text,label\na,1\n,2\nc,1\n")
    message = raises_data_file_error(path, "row 2", "column 'text' is empty", "fill it in or drop the row")
    assert message.startswith(f"{path} row 2:")


def test_labels_outside_label_names(tmp_path):
    path = write(tmp_path / "labels.csv", "text,label\na,pos\nb,neg\nc,meh\n")
    raises_data_file_error(path, "column 'label'", "['meh']", "label_names", label_names=["neg", "pos"])


def test_train_file_too_small_to_split(tmp_path):
    path = write(tmp_path / "tiny.csv", "text,label\na,pos\nb,neg\n")
    raises_data_file_error(path, "2 rows cannot be split", "--validation_file and --test_file")


# --- each task's columns -----------------------------------------------------------------------------------


def test_user_csv_with_named_columns(tmp_path):
    train = write(
        tmp_path / "train.csv", "review,stars\ngreat phone,5\nbroke in a day,1\nfine,2\nsuperb,10\n"
    )
    test = write(tmp_path / "test.csv", "review,stars\nawful,1\n")
    files = {"train": train, "validation": train, "test": test}
    data = load_task_dataset("classification", data_files=files, text_column="review", label_column="stars")
    assert data["train"].features["label"] == ClassLabel(names=["1", "2", "5", "10"])  # numeric order
    assert data["train"]["text"] == ["great phone", "broke in a day", "fine", "superb"]
    assert data["train"]["label"] == [2, 0, 1, 3] and data["test"]["label"] == [0]

    named = load_task_dataset(
        "classification",
        files,
        text_column="review",
        label_column="stars",
        label_names=["1", "2", "5", "10", "x"],
    )
    assert named["train"].features["label"].names[-1] == "x"


def test_user_files_for_every_task(tmp_path):
    def all_splits(path):
        return {split: path for split in SPLITS}

    rows = [{"words": ["Ada", "Lovelace", "wrote"], "tags": ["B-person", "I-person", "O"]}]
    ner_file = write_rows(tmp_path / "ner.jsonl", rows)
    ner = load_task_dataset("ner", all_splits(ner_file), tokens_column="words", tags_column="tags")
    assert ner["train"].features["ner_tags"].feature.names == ["O", "B-person", "I-person"]
    assert ner["train"][0]["ner_tags"] == [1, 2, 0]
    csv_ner = write(tmp_path / "ner.csv", "tokens,ner_tags\nAda wrote,B-person O\nwrote,O O\n")
    message = raises_data_file_error(csv_ner, "row 2", "1 tokens in column 'tokens' but 2 tags in column 'ner_tags'",
                                     call=lambda: load_task_dataset("ner", all_splits(csv_ner)))  # fmt: skip
    assert message.startswith(f"{csv_ner} row 2:")

    qa_file = write(
        tmp_path / "qa.csv", "q,c,a\nwho wrote it?,It was written by Ada Lovelace.,ada lovelace\n"
    )
    qa = load_task_dataset(
        "qa", all_splits(qa_file), question_column="q", context_column="c", answers_column="a"
    )
    assert qa["train"][0]["answers"] == {"text": ["Ada Lovelace"], "answer_start": [18]}
    bad_qa = write(tmp_path / "bad_qa.csv", "question,context,answers\nwho?,It was Ada.,Grace\n")
    raises_data_file_error(bad_qa, "row 1", "answer 'Grace'", "column 'answers'", "not a span",
                           call=lambda: load_task_dataset("qa", all_splits(bad_qa)))  # fmt: skip

    mt = load_task_dataset(
        "translation", all_splits(write(tmp_path / "mt.csv", "en,de\nhello,hallo\n")), target_lang="de"
    )
    assert mt["train"][0]["translation"] == {"en": "hello", "de": "hallo"}
    summ = load_task_dataset(
        "summarization", all_splits(write(tmp_path / "s.tsv", "text\ttitle\na long text\tshort\n")),
        document_column="text", summary_column="title",
    )  # fmt: skip
    assert summ["train"][0] == {"document": "a long text", "summary": "short"}
    chat = load_task_dataset(
        "dialogue", all_splits(write(tmp_path / "d.json", json.dumps({"context": "hi", "response": "hey"})))
    )
    assert chat["train"][0] == {"id": "train-0", "context": "hi", "response": "hey"}


def test_seq2seq_train_file_alone_keeps_row_ids_from_the_file(tmp_path, capsys):
    rows = [{"context": f"hello {i}", "response": f"hi {i}"} for i in range(20)]
    data = load_task_dataset("dialogue", write_rows(tmp_path / "chat.jsonl", rows))
    assert {split: len(data[split]) for split in SPLITS} == {"train": 16, "validation": 2, "test": 2}
    for split in SPLITS:
        for row in data[split]:
            index = int(
                re.fullmatch(r"train-(\d+)", row["id"]).group(1)
            )  # the row's position in the train file
            assert row["context"] == rows[index]["context"]
    assert split_line(capsys).startswith("Split ")
