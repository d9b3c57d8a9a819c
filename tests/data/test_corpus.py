"""The pretraining corpus: real installed sources, small `max_docs_per_source` builds."""

import json
import re
from pathlib import Path

import pytest

from sora_hf.cli import main as cli_main
from sora_hf.data import corpus as corpus_module
from sora_hf.data.corpus import (
    MIN_WORDS,
    SOURCES,
    SUMMARY_FILE,
    build_corpus,
    corpus_summary,
    default_corpus_dir,
    document_hash,
    is_held_out,
    load_corpus_summary,
    normalize_text,
    read_source,
)
from sora_hf.data.sources import jargon
from sora_hf.data.sources.bible import SPANISH, read_verses
from sora_hf.data.sources.common import split_sentences
from sora_hf.data.sources.gcide import entry_units
from sora_hf.data.sources.wordnet import gloss_to_document

MAX_DOCS = 200
HTML_TAG = re.compile(
    r"</?(?:p|a|div|span|code|pre|em|strong|b|i|li|ul|ol|dl|dt|dd|br|section|h[1-6]|table)\b[^>]*>"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, "corpus_module.DatasetDict"]:
    output_dir = tmp_path_factory.mktemp("corpus") / "small"
    return output_dir, build_corpus(output_dir, max_docs_per_source=MAX_DOCS, verbose=False)


def all_rows(corpus) -> list[dict]:
    return [row for split in ("train", "validation") for row in corpus[split]]


def test_two_builds_are_byte_identical(built, tmp_path):
    first_dir, first = built
    second_dir = tmp_path / "again"
    second = build_corpus(second_dir, max_docs_per_source=MAX_DOCS, verbose=False)
    assert first["train"]["text"] == second["train"]["text"]
    assert first["validation"]["source"] == second["validation"]["source"]
    first_files = sorted(path.relative_to(first_dir) for path in first_dir.rglob("*") if path.is_file())
    second_files = sorted(path.relative_to(second_dir) for path in second_dir.rglob("*") if path.is_file())
    assert first_files == second_files
    assert any(path.suffix == ".arrow" for path in first_files)
    for relative in first_files:
        assert (first_dir / relative).read_bytes() == (second_dir / relative).read_bytes(), relative


def test_held_out_split_is_disjoint_stable_and_at_least_one_percent(built):
    _, corpus = built
    train, validation = set(corpus["train"]["text"]), set(corpus["validation"]["text"])
    assert not train & validation
    assert len(validation) / (len(train) + len(validation)) >= 0.01
    # Membership is a function of the text alone, so any later build holds out the same documents.
    assert all(is_held_out(document_hash(text)) for text in validation)
    assert not any(is_held_out(document_hash(text)) for text in train)
    # Documents are ordered by hash: shuffled across sources, identical in every build.
    hashes = [document_hash(text) for text in corpus["train"]["text"]]
    assert hashes == sorted(hashes)


def test_every_source_yields_clean_nonempty_documents(built):
    _, corpus = built
    rows = all_rows(corpus)
    by_source = {name: [row["text"] for row in rows if row["source"] == name] for name in SOURCES}
    for name, texts in by_source.items():
        assert MAX_DOCS * 0.9 <= len(texts) <= MAX_DOCS, name
        for text in texts:
            assert text == normalize_text(text) and len(text.split()) >= MIN_WORDS, (name, text)
            assert "[1913 Webster]" not in text and "Webster]" not in text, (name, text)
            assert not re.search(r"<[GH]\d+>", text), (name, text)
            assert not HTML_TAG.search(text), (name, text)
    for text in by_source["gcide"]:
        assert not re.search(r"[\\{}\[\]*`]", text), text  # pronunciations, cross-reference braces, tags
    assert not any(re.match(r"^\w+ \d+:\d+:", text) for text in by_source["bible_en"] + by_source["bible_es"])
    spanish = " ".join(by_source["bible_es"]).split()
    assert spanish.count("de") > 100 and spanish.count("the") == 0
    assert " ".join(by_source["bible_en"]).split().count("the") > 100


def test_documents_keep_several_sentences(built):
    _, corpus = built
    rows = all_rows(corpus)
    for name in ("bible_en", "bible_es", "python_docs", "jargon", "debian"):
        counts = sorted(len(split_sentences(row["text"])) for row in rows if row["source"] == name)
        assert counts[len(counts) // 2] >= 2, (name, counts[:20])
    # A gloss document is the gloss followed by its examples.
    assert gloss_to_document('the feat of rallying; "he started a rally"; "a late rally"') == (
        "The feat of rallying. He started a rally. A late rally."
    )


def test_deduplication_is_exact_after_normalisation(built):
    _, corpus = built
    texts = [row["text"] for row in all_rows(corpus)]
    assert len(texts) == len(set(texts))
    seen: set[str] = set()
    first = read_source("jargon", 30, seen)
    assert len(first) == 30 and len(seen) == 30
    # Documents already seen (here: in an earlier source) are skipped, not counted.
    second = read_source("jargon", 30, seen)
    assert not set(first) & set(second) and first + second == read_source("jargon", 60, set())
    # Spacing, soft hyphens and composed/decomposed accents do not make a new document.
    assert normalize_text("  Y  dijo\u00ad Dios:\n sea la luz ") == normalize_text("Y dijo Dios: sea la luz")
    assert normalize_text("e\u0301") == "é"


def test_cached_corpus_is_reused_until_forced(built):
    output_dir, corpus = built
    arrow = next(output_dir.rglob("*.arrow"))
    mtime = arrow.stat().st_mtime_ns
    again = build_corpus(output_dir, max_docs_per_source=MAX_DOCS, verbose=False)
    assert arrow.stat().st_mtime_ns == mtime
    assert again["train"]["text"] == corpus["train"]["text"]
    summary = load_corpus_summary(output_dir)
    assert summary == json.loads((output_dir / SUMMARY_FILE).read_text()) == corpus_summary(again)
    assert list(summary["sources"]) == list(SOURCES)
    assert summary["total"]["documents"] == corpus["train"].num_rows + corpus["validation"].num_rows
    assert summary["total"]["tokens"] == sum(row["tokens"] for row in summary["sources"].values())


def test_default_directory_depends_on_the_options():
    base = default_corpus_dir()
    assert base.name == corpus_module.CORPUS_VERSION and base.parent.name == "corpus"
    assert default_corpus_dir(["jargon", "wordnet"], 5).name == f"{base.name}-wordnet+jargon-max5"


def test_bad_options_raise_value_error_naming_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"'webster'.*wordnet, bible_en, python_docs, gcide, jargon, debian"):
        build_corpus(tmp_path, sources=["gcide", "webster"])
    with pytest.raises(ValueError, match="choose among"):
        build_corpus(tmp_path, sources=[])
    with pytest.raises(ValueError, match="max_docs_per_source"):
        build_corpus(tmp_path, max_docs_per_source=0)
    (tmp_path / "notes.txt").write_text("not a corpus")
    with pytest.raises(ValueError, match="does not hold a corpus"):
        build_corpus(tmp_path, sources="jargon", max_docs_per_source=3, force=True)
    assert (tmp_path / "notes.txt").exists()


def test_missing_package_names_the_apt_install(tmp_path, monkeypatch):
    monkeypatch.setattr(jargon, "JARGON_PATH", str(tmp_path / "absent" / "jargon.txt.gz"))
    with pytest.raises(
        RuntimeError, match=r"'jargon-text'.*apt-get install -y --no-install-recommends jargon-text"
    ):
        build_corpus(tmp_path / "out", sources="jargon", max_docs_per_source=3, verbose=False)
    assert not (tmp_path / "out").exists()


def test_source_cleaners_on_real_text():
    psalm = read_verses("engWEB2015eb", "Psalms 3:1-3:3")
    assert [verse[:3] for verse in psalm] == [("Psalms", 3, 1), ("Psalms", 3, 2), ("Psalms", 3, 3)]
    assert psalm[0][3] == "Yahweh, how my adversaries have increased! Many are those who rise up against me."
    assert not any("A Psalm by David" in verse[3] for verse in psalm)  # section headings are dropped
    matthew = read_verses(SPANISH.module, "Matthew 1:1")
    assert matthew[0][3] == "LIBRO de la generación de Jesucristo, hijo de David, hijo de Abraham."
    entry = (
        'Annex \\An*nex"\\, v. t. [imp. & p. p. {Annexed}; p. pr. & vb. n.\n   {Annexing}.] [F. annexer.]\n'
        '   1. To join or attach; to affix; -- followed by to. "He annexed a codicil to a\n      will." --Johnson.\n'
        "      [1913 Webster]\n\n   2. To join or add, as a smaller thing to a greater.\n      [1913 Webster]\n\n"
        "   Syn: To add; append; affix. See {Add}.\n        [1913 Webster]\n"
    )
    assert entry_units(entry) == [
        'To join or attach; to affix; — followed by to. "He annexed a codicil to a will."',
        "To join or add, as a smaller thing to a greater.",
    ]


def test_cli_builds_a_subset(tmp_path, capsys):
    output_dir = tmp_path / "cli"
    argv = ["build-corpus", "--output-dir", str(output_dir), "--sources", "bible_es", "wordnet"]
    assert cli_main(argv + ["--max-docs-per-source", "20"]) == 0
    printed = capsys.readouterr().out
    assert "wordnet" in printed and "bible_es" in printed and "total" in printed
    summary = load_corpus_summary(output_dir)
    assert list(summary["sources"]) == ["wordnet", "bible_es"]
    assert summary["sources"]["bible_es"]["documents"] == 20
