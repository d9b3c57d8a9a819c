"""Zero-shot classification in Sora's sentence space: no NLI model needed.

A text is scored against each candidate label, written into a `hypothesis_template` ("This text is about {}."),
by the cosine between their sentence embeddings; a softmax with `temperature` turns the cosines into scores that
sum to 1. `pipeline("zero-shot-classification", model=<Sora folder with a sentence space>)` returns this pipeline;
any other model keeps transformers' NLI pipeline (a Sora model without a sentence space is refused by name).

>>> classifier = pipeline("zero-shot-classification", model=sora_hf.packaged_checkpoint_path("sora"))
>>> classifier("I loved this film", candidate_labels=["negative", "positive"])
{'sequence': 'I loved this film', 'labels': ['positive', 'negative'], 'scores': [0.73, 0.27]}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY, ZeroShotClassificationPipeline
from transformers.pipelines.base import Pipeline

from .modeling_sora_pretraining import SoraForPreTraining

TASK = "zero-shot-classification"
DEFAULT_HYPOTHESIS_TEMPLATE = "This text is about {}."
# Cosines of sentence embeddings differ by a few hundredths between labels; a softmax at temperature 1 would
# make every score about 1/n. 0.05 (a logit scale of 20, as in sentence-transformers' MultipleNegativesRankingLoss)
# spreads them while keeping the order.
DEFAULT_TEMPERATURE = 0.05


def check_candidate_labels(candidate_labels: Any, hypothesis_template: str) -> list[str]:
    """The labels as a list of non-empty strings ("a, b" splits on commas, as in transformers), or `ValueError`."""
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    if (
        candidate_labels is None
        or not isinstance(candidate_labels, (list, tuple))
        or len(candidate_labels) == 0
    ):
        raise ValueError(
            f"{TASK} needs `candidate_labels`: a non-empty list of label names (e.g. candidate_labels=['sports', "
            f"'politics']); got {candidate_labels!r:.100}."
        )
    for label in candidate_labels:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{TASK}: every candidate label must be a non-empty string; got {label!r:.100}.")
    if len(set(candidate_labels)) != len(candidate_labels):
        raise ValueError(
            f"{TASK}: candidate_labels has duplicates: {list(candidate_labels)!r:.200}; pass each once."
        )
    if not isinstance(hypothesis_template, str) or hypothesis_template.format("\0") == hypothesis_template:
        raise ValueError(
            f"{TASK}: hypothesis_template must hold a '{{}}' where the label goes (e.g. {DEFAULT_HYPOTHESIS_TEMPLATE!r});"
            f" got {hypothesis_template!r}."
        )
    return list(candidate_labels)


def label_scores(
    text_embeddings: np.ndarray, label_embeddings: np.ndarray, temperature: float = DEFAULT_TEMPERATURE
) -> np.ndarray:
    """Softmax over labels of cosine / temperature: one row of scores (summing to 1) per text."""
    texts = text_embeddings / np.linalg.norm(text_embeddings, axis=-1, keepdims=True).clip(1e-12)
    labels = label_embeddings / np.linalg.norm(label_embeddings, axis=-1, keepdims=True).clip(1e-12)
    logits = texts @ labels.T / temperature
    logits = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def classify_embeddings(
    encode: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    candidate_labels: Sequence[str],
    hypothesis_template: str = DEFAULT_HYPOTHESIS_TEMPLATE,
    temperature: float = DEFAULT_TEMPERATURE,
) -> np.ndarray:
    """Scores `(len(texts), len(candidate_labels))` from any sentence encoder (e.g. `SentenceTransformer.encode`)."""
    labels = check_candidate_labels(list(candidate_labels), hypothesis_template)
    label_embeddings = np.asarray(encode([hypothesis_template.format(label) for label in labels]))
    return label_scores(np.asarray(encode(list(texts))), label_embeddings, temperature)


def has_sentence_space(model: Any) -> bool:
    """Whether `model` is a Sora model with a sentence-embedding head."""
    return isinstance(model, SoraForPreTraining) and model.sentence_embedding_head is not None


def sentence_embeddings(model: SoraForPreTraining, input_ids, attention_mask, **inputs) -> torch.Tensor:
    """Sora's sentence embeddings (encoder → pooler → sentence head), without the pretraining heads' logits."""
    outputs = model.model.encoder(input_ids, attention_mask, **inputs)
    return model.sentence_embedding_head(model.pooler(outputs.last_hidden_state, outputs))


class SoraSentenceEncoderLoader:
    """The zero-shot task's first model class: loads a Sora checkpoint that has a sentence space as
    `SoraForPreTraining`, and raises `ValueError` for anything else so `pipeline()` tries the next class
    (transformers' `AutoModelForSequenceClassification`, for NLI models)."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs) -> PreTrainedModel:
        config_kwargs = {key: kwargs[key] for key in ("revision", "token", "cache_dir") if key in kwargs}
        config = AutoConfig.from_pretrained(name_or_path, **config_kwargs)
        if getattr(config, "model_type", None) != "sora" or not getattr(
            config, "sentence_embedding_size", None
        ):
            raise ValueError(f"{name_or_path} is not a Sora checkpoint with a sentence-embedding head")
        return SoraForPreTraining.from_pretrained(name_or_path, **kwargs)


class SentenceZeroShotClassificationPipeline(Pipeline):
    """Zero-shot classification by cosine similarity in a Sora sentence space, in transformers' output format.

    Returns `{"sequence", "labels", "scores"}` per text with labels sorted by score; `scores` are a softmax of
    cosine / `temperature` over the candidate labels and sum to 1. `multi_label=True` is refused: cosines give a
    ranking, not independent per-label probabilities. Built for any other model, the class returns transformers'
    NLI `ZeroShotClassificationPipeline` instead.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __new__(cls, *args, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        if cls is SentenceZeroShotClassificationPipeline and not has_sentence_space(model):
            if getattr(getattr(model, "config", None), "model_type", None) == "sora":
                raise ValueError(
                    f"{TASK} with a Sora model needs its sentence space: this {type(model).__name__} has no "
                    "sentence-embedding head. Pass a Sora pretraining checkpoint with one (the packaged 'sora', "
                    "sora_hf.packaged_checkpoint_path('sora')), or an NLI model for transformers' pipeline."
                )
            return ZeroShotClassificationPipeline(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._label_cache: dict[tuple, np.ndarray] = {}

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template: str = DEFAULT_HYPOTHESIS_TEMPLATE,
        multi_label: bool = False,
        temperature: float = DEFAULT_TEMPERATURE,
        truncation: bool = True,
        **kwargs,
    ):
        if kwargs:
            raise ValueError(f"{TASK} got unknown arguments {sorted(kwargs)}.")
        if multi_label:
            raise ValueError(
                f"{TASK} in Sora's sentence space ranks the labels (scores sum to 1) and has no independent "
                "per-label probabilities: pass multi_label=False, or use an NLI model for multi-label scoring."
            )
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"{TASK}: temperature must be a number > 0; got {temperature!r}.")
        postprocess_params = {"hypothesis_template": hypothesis_template, "temperature": temperature}
        if candidate_labels is not None:  # None at construction; `__call__` requires them
            postprocess_params["labels"] = check_candidate_labels(candidate_labels, hypothesis_template)
        return {"truncation": truncation}, {}, postprocess_params

    def __call__(self, sequences: str | list[str], *args, **kwargs):
        """Classify one text (a dict) or a list of texts (a list of dicts); `candidate_labels` is required."""
        if args:
            kwargs["candidate_labels"] = args[0]
        if isinstance(sequences, (list, tuple)) and len(sequences) == 0:
            raise ValueError(f"The {TASK} pipeline got an empty list of texts: pass at least one.")
        if "candidate_labels" not in kwargs:
            check_candidate_labels(None, DEFAULT_HYPOTHESIS_TEMPLATE)
        return super().__call__(sequences, **kwargs)

    def _max_length(self) -> int:
        return min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings)

    def preprocess(self, text: str, truncation: bool = True) -> dict:
        if not isinstance(text, str):
            raise ValueError(f"{TASK} expects a string or a list of strings; got {type(text).__name__}.")
        inputs = self.tokenizer(
            text, truncation=truncation, max_length=self._max_length(), return_tensors="pt"
        )
        inputs.pop("token_type_ids", None)
        return {**inputs, "sequence": text}

    def _embed(self, inputs: dict) -> torch.Tensor:
        return sentence_embeddings(self.model, inputs["input_ids"], inputs["attention_mask"])

    def _forward(self, model_inputs: dict) -> dict:
        sequence = model_inputs.pop("sequence")
        return {"embedding": self._embed(model_inputs), "sequence": sequence}

    def _label_embeddings(self, labels: list[str], hypothesis_template: str) -> np.ndarray:
        key = (tuple(labels), hypothesis_template)
        if key not in self._label_cache:
            hypotheses = [hypothesis_template.format(label) for label in labels]
            inputs = self.tokenizer(
                hypotheses, padding=True, truncation=True, max_length=self._max_length(), return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                self._label_cache[key] = self._embed(inputs).float().cpu().numpy()
        return self._label_cache[key]

    def postprocess(
        self, model_outputs: dict, labels=(), hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE, temperature=1
    ):
        embedding = model_outputs["embedding"].float().cpu().numpy().reshape(1, -1)
        scores = label_scores(
            embedding, self._label_embeddings(list(labels), hypothesis_template), temperature
        )[0]
        order = np.argsort(-scores, kind="stable")
        sequence = model_outputs["sequence"]
        return {
            "sequence": sequence[0] if isinstance(sequence, list) else sequence,
            "labels": [labels[i] for i in order],
            "scores": [float(scores[i]) for i in order],
        }


def register_zero_shot_pipeline() -> None:
    """Make `pipeline("zero-shot-classification")` use the sentence space for Sora models; safe to call again."""
    entry = PIPELINE_REGISTRY.supported_tasks[TASK]
    if entry["impl"] is not SentenceZeroShotClassificationPipeline:
        model_classes = tuple(cls for cls in entry["pt"] if cls is not SoraSentenceEncoderLoader)
        PIPELINE_REGISTRY.supported_tasks[TASK] = {
            **entry,
            "impl": SentenceZeroShotClassificationPipeline,
            "pt": (SoraSentenceEncoderLoader, *model_classes),
        }


__all__ = [
    "DEFAULT_HYPOTHESIS_TEMPLATE",
    "DEFAULT_TEMPERATURE",
    "SentenceZeroShotClassificationPipeline",
    "SoraSentenceEncoderLoader",
    "classify_embeddings",
    "label_scores",
    "register_zero_shot_pipeline",
]
