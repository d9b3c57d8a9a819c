"""The pretraining corpus: English prose from installed Debian packages plus the Spanish Bible, as a `DatasetDict`.

Every document is a short paragraph of several sentences with a `source` and a `text` column. The build is
deterministic: sources are read in a fixed order, documents are normalised, filtered and deduplicated exactly,
then ordered by the SHA-1 of their text, and a document is held out for validation when that hash says so.
Two builds therefore give byte-identical Arrow files, and a text can never land in both splits.
"""

import hashlib
import json
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict, DatasetInfo, Features, Value, load_from_disk
from datasets.utils.tqdm import tqdm

from ..atomic_files import is_complete, write_folder
from .sources.bible import check_bible_en, check_bible_es, read_bible_en, read_bible_es
from .sources.debian import check_debian, read_debian
from .sources.gcide import check_gcide, read_gcide
from .sources.jargon import check_jargon, read_jargon
from .sources.python_docs import check_python_docs, read_python_docs
from .sources.tweets import check_tweets, read_tweets
from .sources.wordnet import check_wordnet, read_wordnet

CORPUS_VERSION = "1.2.0"  # 1.1.0 adds the training-split tweets; 1.2.0 keeps one tweet per document
DEFAULT_CACHE_DIR = Path("~/.cache/sora_hf/corpus")
SUMMARY_FILE = "corpus_summary.json"
# Documents with fewer whitespace tokens, or mostly non-letters (tables, code), are dropped.
MIN_WORDS = 8
MIN_LETTER_FRACTION = 0.6
# A document is held out when the first 32 bits of its SHA-1, modulo 100, fall below this.
VALIDATION_PERCENT = 2
FEATURES = Features({"source": Value("string"), "text": Value("string")})


@dataclass(frozen=True)
class CorpusSource:
    """One corpus source: a reader yielding documents and a check that raises when its package is missing."""

    name: str
    language: str
    description: str
    read: Callable[[], Iterator[str]]
    check: Callable[[], None]


SOURCES: dict[str, CorpusSource] = {
    source.name: source
    for source in (
        CorpusSource("wordnet", "en", "WordNet 3.0 glosses with their examples", read_wordnet, check_wordnet),
        CorpusSource("bible_en", "en", "World English Bible, 3-5 verses", read_bible_en, check_bible_en),
        CorpusSource("python_docs", "en", "Python 3.11 docs paragraphs", read_python_docs, check_python_docs),
        CorpusSource("gcide", "en", "GCIDE (Webster 1913) definitions", read_gcide, check_gcide),
        CorpusSource("jargon", "en", "The Jargon File 4.4.7", read_jargon, check_jargon),
        CorpusSource("debian", "en", "Debian long package descriptions", read_debian, check_debian),
        CorpusSource("bible_es", "es", "Reina-Valera 1909 Bible, 3-5 verses", read_bible_es, check_bible_es),
        CorpusSource(
            "tweets", "en", "Training-split tweets of the sentiment and NER tasks", read_tweets, check_tweets
        ),
    )
}

# Zero-width characters, soft hyphens, the byte-order mark and C0/C1 controls carry no text.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff\x00-\x08\x0b-\x1f\x7f-\x9f]")


def normalize_text(text: str) -> str:
    """NFC-normalise, drop invisible characters and collapse whitespace to single spaces."""
    return " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFC", text)).split())


def is_clean_document(text: str) -> bool:
    """True for a normalised text of at least `MIN_WORDS` tokens that is mostly letters."""
    if len(text.split()) < MIN_WORDS:
        return False
    visible = [char for char in text if not char.isspace()]
    return sum(char.isalpha() for char in visible) >= MIN_LETTER_FRACTION * len(visible)


def document_hash(text: str) -> str:
    """SHA-1 hex digest of the UTF-8 text: the sort key and the held-out draw."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def is_held_out(text_hash: str) -> bool:
    """Whether the document with this hash belongs to the validation split (about `VALIDATION_PERCENT` %)."""
    return int(text_hash[:8], 16) % 100 < VALIDATION_PERCENT


def resolve_sources(sources: str | Sequence[str] | None = None) -> list[str]:
    """Validate source names and return them in canonical order; `None` means every source."""
    if sources is None:
        return list(SOURCES)
    names = [sources] if isinstance(sources, str) else list(sources)
    unknown = [name for name in names if name not in SOURCES]
    if unknown or not names:
        raise ValueError(
            f"Unknown corpus source(s) {', '.join(map(repr, unknown)) or '(none given)'}: "
            f"choose among {', '.join(SOURCES)}."
        )
    return [name for name in SOURCES if name in names]


def default_corpus_dir(
    sources: str | Sequence[str] | None = None, max_docs_per_source: int | None = None
) -> Path:
    """`~/.cache/sora_hf/corpus/<version>` for the full corpus, with a suffix for a subset or a capped build."""
    names = resolve_sources(sources)
    name = CORPUS_VERSION
    if names != list(SOURCES):
        name += "-" + "+".join(names)
    if max_docs_per_source is not None:
        name += f"-max{max_docs_per_source}"
    return DEFAULT_CACHE_DIR.expanduser() / name


def read_source(name: str, max_docs: int | None, seen: set[str]) -> list[str]:
    """Normalised, clean documents of one source that are not in `seen` (updated), at most `max_docs`."""
    documents: list[str] = []
    with tqdm(desc=f"Reading {name}", unit=" docs") as progress:
        for raw in SOURCES[name].read():
            text = normalize_text(raw)
            if not is_clean_document(text) or text in seen:
                continue
            seen.add(text)
            documents.append(text)
            progress.update(1)
            if max_docs is not None and len(documents) >= max_docs:
                break
    return documents


def _add_hash(batch: dict[str, list]) -> dict[str, list]:
    return {"hash": [document_hash(text) for text in batch["text"]]}


def _keep_train(hashes: list[str]) -> list[bool]:
    return [not is_held_out(text_hash) for text_hash in hashes]


def _keep_validation(hashes: list[str]) -> list[bool]:
    return [is_held_out(text_hash) for text_hash in hashes]


def corpus_summary(corpus: DatasetDict) -> dict:
    """Per-source documents (all, train, validation), whitespace tokens and characters, plus a total row."""
    counts = ("documents", "train_documents", "validation_documents", "tokens", "characters")
    rows = {
        name: {"language": source.language, **dict.fromkeys(counts, 0)} for name, source in SOURCES.items()
    }
    for split, dataset in corpus.items():
        for batch in dataset.iter(batch_size=10_000):
            for source, text in zip(batch["source"], batch["text"]):
                row = rows[source]
                row["documents"] += 1
                row[f"{split}_documents"] += 1
                row["tokens"] += len(text.split())
                row["characters"] += len(text)
    rows = {name: row for name, row in rows.items() if row["documents"]}
    return {
        "version": CORPUS_VERSION,
        "validation_percent": VALIDATION_PERCENT,
        "sources": rows,
        "total": {key: sum(row[key] for row in rows.values()) for key in counts},
    }


def format_summary(summary: dict) -> str:
    """The summary as a fixed-width table."""
    header = (
        f"{'source':<12} {'lang':<4} {'train docs':>10} {'valid docs':>10} {'tokens':>11} {'characters':>12}"
    )
    lines = [header, "-" * len(header)]
    rows = list(summary["sources"].items()) + [("total", {**summary["total"], "language": ""})]
    for name, row in rows:
        if name == "total":
            lines.append("-" * len(header))
        lines.append(
            f"{name:<12} {row['language']:<4} {row['train_documents']:>10,} {row['validation_documents']:>10,} "
            f"{row['tokens']:>11,} {row['characters']:>12,}"
        )
    return "\n".join(lines)


def load_corpus_summary(corpus_dir: str | Path) -> dict:
    """Read the summary JSON saved next to a built corpus."""
    return json.loads((Path(corpus_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))


def read_documents(names: list[str], max_docs_per_source: int | None) -> dict[str, list[str]]:
    """The `source` and `text` columns of the named sources' documents, deduplicated across sources."""
    for name in names:  # fail on a missing package before spending minutes on the others
        SOURCES[name].check()
    seen: set[str] = set()
    columns: dict[str, list[str]] = {"source": [], "text": []}
    for name in names:
        documents = read_source(name, max_docs_per_source, seen)
        columns["source"].extend([name] * len(documents))
        columns["text"].extend(documents)
    return columns


def split_documents(columns: dict[str, list[str]], names: list[str]) -> DatasetDict:
    """The documents ordered by hash and split into train and validation by that hash."""
    info = DatasetInfo(
        description=f"sora_hf pretraining corpus {CORPUS_VERSION}: {', '.join(names)}",
        version=CORPUS_VERSION,
        features=FEATURES,
    )
    dataset = Dataset.from_dict(columns, info=info)
    dataset = dataset.map(_add_hash, batched=True, desc="Hashing documents")
    with warnings.catch_warnings():  # pyarrow 25 deprecates an option that `Dataset.sort` still passes
        warnings.simplefilter("ignore", FutureWarning)
        dataset = dataset.sort("hash")
    return DatasetDict(
        train=dataset.filter(_keep_train, input_columns="hash", batched=True, desc="Train split"),
        validation=dataset.filter(
            _keep_validation, input_columns="hash", batched=True, desc="Validation split"
        ),
    ).remove_columns("hash")


def build_corpus(
    output_dir: str | Path | None = None,
    sources: str | Sequence[str] | None = None,
    max_docs_per_source: int | None = None,
    force: bool = False,
    verbose: bool = True,
) -> DatasetDict:
    """Build (or load from `output_dir`) the corpus as `DatasetDict(train=..., validation=...)`.

    `sources` selects a subset of `SOURCES`; `max_docs_per_source` keeps the first N clean documents of each
    (for tests and quick runs). The result is saved with `save_to_disk` together with `corpus_summary.json`,
    published whole (`sora_hf.atomic_files`), and reused by the next call (whatever its options) unless `force=True`.
    """
    names = resolve_sources(sources)
    if max_docs_per_source is not None and (
        isinstance(max_docs_per_source, bool)
        or not isinstance(max_docs_per_source, int)
        or max_docs_per_source < 1
    ):
        raise ValueError(
            f"max_docs_per_source must be a positive integer or None, got {max_docs_per_source!r}."
        )
    output_dir = (
        Path(output_dir).expanduser() if output_dir else default_corpus_dir(names, max_docs_per_source)
    )

    # A whole build has its marker (written last; it records the options) or, built before markers, both files.
    marker = {"version": CORPUS_VERSION, "sources": names, "max_docs_per_source": max_docs_per_source}
    legacy = (output_dir / "dataset_dict.json").is_file() and (output_dir / SUMMARY_FILE).is_file()
    if not force and (is_complete(output_dir) or legacy):
        corpus = load_from_disk(str(output_dir))
        if verbose:
            print(f"Loaded the corpus from {output_dir}\n{format_summary(load_corpus_summary(output_dir))}")
        return corpus

    is_corpus = is_complete(output_dir) or (output_dir / "dataset_dict.json").is_file()
    if output_dir.exists() and any(output_dir.iterdir()) and not is_corpus:
        raise ValueError(
            f"{output_dir} exists and does not hold a corpus: pass an empty or new --output-dir (it is replaced)."
        )
    start = time.perf_counter()
    corpus = split_documents(read_documents(names, max_docs_per_source), names)
    summary = corpus_summary(corpus)

    def write(staging: Path) -> None:
        corpus.save_to_disk(str(staging))
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    # Built beside the target and renamed whole: an interrupted build never looks finished, and of two builds
    # racing, the second keeps the first one's (identical) files.
    write_folder(output_dir, write, marker, replace=force)
    corpus = load_from_disk(str(output_dir))
    if verbose:
        elapsed = time.perf_counter() - start
        print(f"Built the corpus in {elapsed:.0f} s into {output_dir}\n{format_summary(summary)}")
    return corpus
