"""Caches and saved models under concurrency: two real processes build the same cache at once, several times (both
get the full, identical data; nothing is left behind), and a folder re-saved in a loop never gives a torn read."""

import hashlib
import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest
import torch

from sora_hf.atomic_files import MARKER_FILE, atomic_file, is_complete, publish_folder, write_folder

ROUNDS = 3
KINDS = ("sentence_distillation", "corpus", "task")
# 2,000 distinct short texts for the stand-in teacher to embed
WORDS = "cat dog bird fish tree rain sun town road song park river hill lamp door".split()
DISTILLATION_TEXTS = [
    f"the {WORDS[i % 15]} and the {WORDS[(i // 15) % 15]} saw {i} {WORDS[(i // 225) % 15]}s"
    for i in range(2000)
]


def save_tiny_bert(folder: Path) -> str:
    """A randomly initialised 2-layer BERT (hidden 32) with a word-level vocabulary: a stand-in sentence teacher."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "and", "saw", *WORDS]
    vocab += [word + "s" for word in WORDS]
    vocab += [str(i) for i in range(2000)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


def digest(dataset) -> str:
    """SHA-256 of every row of a `Dataset` or `DatasetDict` (split names included)."""
    splits = dataset if hasattr(dataset, "keys") else {"": dataset}
    hasher = hashlib.sha256()
    for name in sorted(splits):
        hasher.update(name.encode())
        hasher.update(json.dumps(splits[name].to_dict(), sort_keys=True).encode())
    return hasher.hexdigest()


def build_one(kind: str, folder: Path, teacher) -> tuple[str, int]:
    """Build (or read) the cache `kind` under `folder`: (digest of what came back, number of rows)."""
    if kind == "sentence_distillation":
        from sora_hf.training.sentence_distillation import teacher_embeddings

        rows = teacher_embeddings(DISTILLATION_TEXTS, teacher, cache_dir=folder)
        return digest(rows), len(rows)
    if kind == "corpus":
        from sora_hf.data.corpus import build_corpus

        corpus = build_corpus(
            folder / "corpus", sources=["wordnet", "jargon"], max_docs_per_source=200, verbose=False
        )
        return digest(corpus), sum(len(split) for split in corpus.values())
    from sora_hf.data.tasks import load_task_dataset

    dataset = load_task_dataset("ner", cache_dir=folder)
    return digest(dataset), sum(len(split) for split in dataset.values())


def race_worker(index: int, root: str, teacher_path: str, barrier, stop, results) -> None:
    """In a fresh process: for each cache kind and round, wait for the other worker, then build the same cache.
    Then worker 0 re-saves a model into one folder in a loop while worker 1 loads it (see `load_while_saved`)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    outcomes = {}
    try:
        from sora_hf.training.sentence_distillation import SentenceTeacher

        teacher = SentenceTeacher(teacher_path, batch_size=250)
        for kind in KINDS:
            for round_ in range(ROUNDS):
                barrier.wait(timeout=300)
                try:
                    outcomes[f"{kind}/{round_}"] = build_one(kind, Path(root) / kind / str(round_), teacher)
                except Exception as error:  # a failed build: reported to the test, which fails naming it
                    outcomes[f"{kind}/{round_}"] = f"{type(error).__name__}: {error}"
        models = Path(root).parent / "models"
        if index == 0:
            resave_until(stop, models, barrier)
        else:
            outcomes["loads"] = load_while_saved(models, barrier, stop)
    except BaseException as error:  # anything else: free the other worker and report
        outcomes["error"] = f"{type(error).__name__}: {error}"
        barrier.abort()
        stop.set()
    results.put((index, outcomes))


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """Two spawned processes build every cache kind at the same moment, `ROUNDS` times each, then one re-saves a
    model folder while the other loads it; their outcomes, worker 0's first."""
    root = tmp_path_factory.mktemp("race")
    teacher = save_tiny_bert(root / "teacher")
    save_states(root / "models")
    context = multiprocessing.get_context("spawn")
    barrier, stop, results = context.Barrier(2), context.Event(), context.Queue()
    workers = [
        context.Process(
            target=race_worker, args=(index, str(root / "caches"), teacher, barrier, stop, results)
        )
        for index in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    return root, [outcomes[0], outcomes[1]]


@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_building_one_cache_get_the_full_identical_data(race, kind):
    root, outcomes = race
    assert not [outcome["error"] for outcome in outcomes if "error" in outcome]
    root = root / "caches"
    results = {outcome[f"{kind}/{round_}"] for outcome in outcomes for round_ in range(ROUNDS)}
    assert not [result for result in results if isinstance(result, str)]  # no process failed
    assert len(results) == 1, results  # both processes, every round: the same rows
    ((_, rows),) = results
    if kind == "sentence_distillation":
        assert rows == len(DISTILLATION_TEXTS)
    for round_ in range(ROUNDS):
        folder = root / kind / str(round_)
        (entry,) = os.listdir(folder)  # the cache alone: no staging copy, no lock, no moved-aside folder
        assert not entry.startswith("."), entry
        assert any(path.name in (MARKER_FILE, "sora_hf_task.json") for path in (folder / entry).iterdir())


def test_the_loser_of_a_publish_race_keeps_the_winners_copy(tmp_path):
    target = tmp_path / "cache"
    assert write_folder(target, lambda staging: (staging / "data").write_text("first"), {"v": 1})
    assert not write_folder(target, lambda staging: (staging / "data").write_text("second"), {"v": 1})
    assert (target / "data").read_text() == "first" and os.listdir(tmp_path) == ["cache"]
    # another version's (or an interrupted old writer's) folder is replaced, and so is any folder on request
    assert write_folder(target, lambda staging: (staging / "data").write_text("third"), {"v": 2})
    assert (target / "data").read_text() == "third" and is_complete(target, {"v": 2})
    assert write_folder(
        target, lambda staging: (staging / "data").write_text("fourth"), {"v": 2}, replace=True
    )
    assert (target / "data").read_text() == "fourth" and os.listdir(tmp_path) == ["cache"]
    # without a marker (a pull into a new folder), a filled target is refused, never merged
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(FileExistsError, match="filled by another process"):
        publish_folder(staging, target, marker=None)


def test_leftovers_of_killed_writers_are_removed_and_a_failed_write_leaves_nothing(tmp_path):
    host = socket.gethostname()
    dead = (
        tmp_path / f".cache.tmp-{host}-{2**22 + 12345}-0123abcd"
    )  # above pid_max's default: no such process
    dead.mkdir()
    alive = tmp_path / f".cache.tmp-{host}-{os.getpid()}-0123abcd"  # a live writer's: kept
    alive.mkdir()
    write_folder(tmp_path / "cache", lambda staging: (staging / "data").write_text("x"), {"v": 1})
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, "cache"])

    def fail(staging):
        (staging / "data").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder(tmp_path / "other", fail, {"v": 1})
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(tmp_path / "file.txt") as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, "cache"])


# ---- save_pretrained while another process loads ---------------------------------------------------------

SAVE_SECONDS = 3


def save_states(folder: Path) -> None:
    """Two tiny Sora classifiers (same config, other weights), saved in `folder/a` and `folder/b`."""
    from sora_hf import SoraConfig, SoraForSequenceClassification

    config = SoraConfig(
        vocab_size=4000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    for seed, name in enumerate("ab"):
        torch.manual_seed(seed)
        SoraForSequenceClassification(config).save_pretrained(folder / name)


def resave_until(stop, models: Path, barrier) -> None:
    """Save model a, then b, then a ... into `models/target` until `stop` is set."""
    from sora_hf import SoraForSequenceClassification

    pair = [SoraForSequenceClassification.from_pretrained(models / name) for name in "ab"]
    pair[0].save_pretrained(models / "target")
    barrier.wait(timeout=300)
    count = 0
    while not stop.is_set():
        count += 1
        pair[count % 2].save_pretrained(models / "target")


def load_while_saved(models: Path, barrier, stop) -> dict:
    """Load `models/target` with `from_pretrained` for `SAVE_SECONDS` while the other worker re-saves it: how many
    loads gave state a, state b, and what each torn read raised or held."""
    import time

    from safetensors.torch import load_file
    from transformers.utils import logging

    from sora_hf import SoraForSequenceClassification

    states = [load_file(str(models / name / "model.safetensors")) for name in "ab"]
    logging.set_verbosity_error()
    barrier.wait(timeout=300)
    seen, torn = [0, 0], []
    deadline = time.time() + SAVE_SECONDS
    while time.time() < deadline:
        try:
            loaded = SoraForSequenceClassification.from_pretrained(models / "target").state_dict()
        except Exception as error:  # a torn config or weights file
            torn.append(f"{type(error).__name__}: {str(error)[:200]}")
            continue
        matches = [all(torch.equal(loaded[key], state[key]) for key in state) for state in states]
        if any(matches):
            seen[matches.index(True)] += 1
        else:
            torn.append("weights of neither saved state")
    stop.set()
    return {"seen": seen, "torn": torn}


def test_loading_a_folder_while_another_process_saves_into_it_never_reads_a_torn_file(race):
    root, outcomes = race
    assert not [outcome["error"] for outcome in outcomes if "error" in outcome]
    loads = outcomes[1]["loads"]
    assert not loads["torn"], f"{len(loads['torn'])} torn reads, e.g. {loads['torn'][:3]}"
    assert min(loads["seen"]) > 0 and sum(loads["seen"]) > 10, loads["seen"]  # both states, many loads
    assert sorted(os.listdir(root / "models" / "target")) == [
        "config.json",
        "model.safetensors",
    ]  # nothing left
