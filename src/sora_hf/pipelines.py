"""The task pipelines transformers 5 removed (question answering, text2text, summarization, translation).

They keep the transformers 4 call signatures and output formats, on top of the transformers 5 `Pipeline` API.
`register_sora_pipelines()` makes `pipeline("question-answering", model=...)` and the others work again.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import transformers.pipelines as transformers_pipelines
from transformers import AutoModelForQuestionAnswering, AutoModelForSeq2SeqLM
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_QUESTION_ANSWERING_MAPPING,
    MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)
from transformers.pipelines import (
    PIPELINE_REGISTRY,
    FeatureExtractionPipeline,
    FillMaskPipeline,
    TextClassificationPipeline,
)
from transformers.pipelines.base import ChunkPipeline, Pipeline
from transformers.utils import ModelOutput

from .modeling_sora import SoraModel
from .zero_shot import register_zero_shot_pipeline

DEFAULT_MAX_SEQ_LEN = 384
DEFAULT_MAX_DOC_STRIDE = 128


def _supported_class_names(model, names: dict, mapping) -> list[str]:
    """The library's model class names for a task, plus the one registered for this config (e.g. Sora's)."""
    supported = [
        name for value in names.values() for name in (value if isinstance(value, tuple) else (value,))
    ]
    config_class = type(model.config)
    if config_class in mapping:
        registered = mapping[config_class]
        supported.extend(
            cls.__name__ for cls in (registered if isinstance(registered, tuple) else (registered,))
        )
    return supported


def check_not_empty(task: str, inputs: Any) -> None:
    """Raise `ValueError` for an empty list or tuple of inputs (transformers' pipelines fail on `inputs[0]`)."""
    if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
        raise ValueError(
            f"The {task} pipeline got an empty list of inputs: pass at least one, or skip the call when there is "
            "nothing to process."
        )


def _check_qa_example(example: Any) -> dict[str, str]:
    if not isinstance(example, dict) or "question" not in example or "context" not in example:
        raise ValueError(
            f"question-answering expects a dict with keys 'question' and 'context' (or the keyword arguments "
            f"question=..., context=...); got {type(example).__name__}: {example!r:.100}"
        )
    for key in ("question", "context"):
        value = example[key]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"question-answering needs a non-empty string as `{key}`; got {value!r:.100}.")
    return {"question": example["question"], "context": example["context"]}


def _normalize_qa_inputs(args: tuple, kwargs: dict) -> Any:
    """Turn every v4 call form (kwargs, a dict, a list of dicts, two strings) into a list of dicts."""
    question, context = kwargs.pop("question", None), kwargs.pop("context", None)
    if question is not None or context is not None:
        if args:
            raise ValueError("Pass the question and context either positionally or as keywords, not both.")
        if question is None or context is None:
            raise ValueError("question-answering needs both `question=` and `context=`.")
        if isinstance(question, str) and isinstance(context, str):
            return [_check_qa_example({"question": question, "context": context})]
        if isinstance(question, list) and isinstance(context, str):
            return [_check_qa_example({"question": q, "context": context}) for q in question]
        if isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError(
                    f"Got {len(question)} questions and {len(context)} contexts: pass one context per "
                    "question, or a single context string for all questions."
                )
            return [_check_qa_example({"question": q, "context": c}) for q, c in zip(question, context)]
        raise ValueError(
            "`question` must be a string or a list of strings and `context` a string or a list of the same "
            f"length; got {type(question).__name__} and {type(context).__name__}."
        )
    if len(args) == 2 and all(isinstance(arg, str) for arg in args):
        return [_check_qa_example({"question": args[0], "context": args[1]})]
    if len(args) != 1:
        raise ValueError(
            "question-answering takes question=..., context=... (or a dict / list of dicts with those keys); "
            f"got {len(args)} positional arguments."
        )
    inputs = args[0]
    if isinstance(inputs, dict):
        return [_check_qa_example(inputs)]
    if isinstance(inputs, (list, tuple)):
        return [_check_qa_example(item) for item in inputs]
    if isinstance(inputs, (types.GeneratorType, torch.utils.data.Dataset)):
        return inputs  # streamed: each item is checked in `preprocess`
    return [_check_qa_example(inputs)]


def _masked_softmax(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    logits = np.where(keep, logits, -np.inf)
    probabilities = np.exp(logits - logits.max())
    return probabilities / probabilities.sum()


class QuestionAnsweringPipeline(ChunkPipeline):
    """Extractive question answering with any `AutoModelForQuestionAnswering` model, as in transformers 4.

    Returns `{"score", "start", "end", "answer"}` where `context[start:end] == answer`, or a list of those
    when `top_k > 1` or several questions are asked. Long contexts are split into windows of `max_seq_len`
    tokens that overlap by `doc_stride` tokens; the best spans over all windows win.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    default_input_names = "question,context"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None or not self.tokenizer.is_fast:
            raise ValueError(
                "question-answering needs a fast tokenizer (backed by 🤗 tokenizers) for character offsets; "
                "pass a TokenizersBackend tokenizer or a model folder that contains tokenizer.json."
            )
        self.check_model_type(
            _supported_class_names(
                self.model, MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES, MODEL_FOR_QUESTION_ANSWERING_MAPPING
            )
        )

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        align_to_words: bool | None = None,
    ):
        preprocess_params, postprocess_params = {}, {}
        for name, value in (
            ("top_k", top_k),
            ("max_answer_len", max_answer_len),
            ("max_seq_len", max_seq_len),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be an int >= 1; got {value!r}.")
        if doc_stride is not None and (
            isinstance(doc_stride, bool) or not isinstance(doc_stride, int) or doc_stride < 0
        ):
            raise ValueError(
                f"`doc_stride` (overlap of neighbouring windows) must be an int >= 0; got {doc_stride!r}."
            )
        if handle_impossible_answer and self.tokenizer.cls_token_id is None:
            raise ValueError(
                "handle_impossible_answer=True scores the empty answer at the cls token, but this tokenizer "
                "has no cls_token: set one (tokenizer.cls_token = ...) or leave handle_impossible_answer off."
            )
        if doc_stride is not None:
            preprocess_params["doc_stride"] = doc_stride
        if max_seq_len is not None:
            preprocess_params["max_seq_len"] = max_seq_len
        if top_k is not None:
            postprocess_params["top_k"] = top_k
        if max_answer_len is not None:
            postprocess_params["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            postprocess_params["handle_impossible_answer"] = handle_impossible_answer
        if align_to_words is not None:
            postprocess_params["align_to_words"] = align_to_words
        return preprocess_params, {}, postprocess_params

    def __call__(self, *args, **kwargs):
        """Answer `question` from `context`: given as keywords (strings or lists), a dict, or a list of dicts.

        Options: `top_k` (1), `max_answer_len` (15 tokens), `max_seq_len` (384, capped by the model),
        `doc_stride` (overlap of context windows, half a window up to 128), `handle_impossible_answer`
        (False), `align_to_words` (True: widen answers to whole words).
        """
        examples = _normalize_qa_inputs(args, kwargs)
        check_not_empty(self.task, examples)
        if isinstance(examples, list) and len(examples) == 1:
            return super().__call__(examples[0], **kwargs)
        return super().__call__(examples, **kwargs)

    def preprocess(
        self, example, doc_stride: int | None = None, max_seq_len: int | None = None
    ) -> Iterator[dict]:
        example = _check_qa_example(example)
        if max_seq_len is None:
            model_limit = getattr(self.model.config, "max_position_embeddings", None) or DEFAULT_MAX_SEQ_LEN
            max_seq_len = min(self.tokenizer.model_max_length, model_limit, DEFAULT_MAX_SEQ_LEN)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, DEFAULT_MAX_DOC_STRIDE)

        # Right padding: the question comes first and the context is truncated (as in v4); left: reversed.
        question_first = self.tokenizer.padding_side == "right"
        context_index = 1 if question_first else 0
        question_length = len(self.tokenizer(example["question"], add_special_tokens=False)["input_ids"])
        context_room = max_seq_len - question_length - self.tokenizer.num_special_tokens_to_add(pair=True)
        if context_room <= 0:
            raise ValueError(
                f"The question takes {question_length} tokens, which leaves no room for the context within "
                f"max_seq_len={max_seq_len}: raise max_seq_len or shorten the question."
            )
        if doc_stride >= context_room:
            raise ValueError(
                f"doc_stride={doc_stride} must be smaller than the context tokens per window ({context_room} "
                f"with max_seq_len={max_seq_len} and this question): lower doc_stride or raise max_seq_len."
            )

        first, second = (
            (example["question"], example["context"])
            if question_first
            else (example["context"], example["question"])
        )
        encoded = self.tokenizer(
            text=first,
            text_pair=second,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        # Word boundaries of the whole context: a window may cut a word, and answers widen to whole words.
        context_words = self.tokenizer(example["context"], add_special_tokens=False)
        word_chars = {
            word: tuple(context_words.word_to_chars(word))
            for word in context_words.word_ids()
            if word is not None
        }
        num_spans = len(encoded["input_ids"])
        for span in range(num_spans):
            input_ids = encoded["input_ids"][span]
            # 1 where a token cannot be in an answer: question, special tokens (and padding, when batched).
            p_mask = [sequence_id != context_index for sequence_id in encoded.sequence_ids(span)]
            cls_mask = [0] * len(input_ids)
            if self.tokenizer.cls_token_id in input_ids:
                cls_mask[input_ids.index(self.tokenizer.cls_token_id)] = 1
            word_ids = [-1 if word is None else word for word in encoded.word_ids(span)]
            features = {
                name: torch.tensor([encoded[name][span]])
                for name in self.tokenizer.model_input_names
                if name in encoded
            }
            # Per-token values are tensors so that batching pads them on the tokenizer's padding side.
            yield {
                **features,
                "p_mask": torch.tensor([p_mask], dtype=torch.long),
                "cls_mask": torch.tensor([cls_mask], dtype=torch.long),
                "offset_mapping": torch.tensor([encoded["offset_mapping"][span]], dtype=torch.long),
                "word_ids": torch.tensor([word_ids], dtype=torch.long),
                "word_chars": word_chars,
                "example": example,
                "is_last": span == num_spans - 1,
            }

    def _forward(self, inputs: dict) -> dict:
        model_inputs = {name: inputs[name] for name in self.tokenizer.model_input_names if name in inputs}
        output = self.model(**model_inputs)
        others = {key: value for key, value in inputs.items() if key not in model_inputs}
        return {"start_logits": output.start_logits, "end_logits": output.end_logits, **others}

    def postprocess(
        self,
        all_outputs: list[dict],
        top_k: int = 1,
        handle_impossible_answer: bool = False,
        max_answer_len: int = 15,
        align_to_words: bool = True,
    ) -> dict | list[dict]:
        context = all_outputs[0]["example"]["context"]
        best: dict[tuple[int, int], float] = {}
        null_score = 1.0
        for output in all_outputs:
            allowed = output["p_mask"][0].numpy() == 0
            cls_positions = np.flatnonzero(output["cls_mask"][0].numpy())
            cls_index = int(cls_positions[0]) if len(cls_positions) else None
            # The softmax runs over the context plus cls, so the cls token's probability scores "no answer".
            scored = allowed.copy()
            if cls_index is not None:
                scored[cls_index] = True
            start = _masked_softmax(output["start_logits"][0].float().numpy(), scored)
            end = _masked_softmax(output["end_logits"][0].float().numpy(), scored)
            if handle_impossible_answer and cls_index is not None:
                null_score = min(null_score, float(start[cls_index] * end[cls_index]))

            # Candidate spans: both ends in the context, end >= start, at most max_answer_len tokens.
            valid = np.tril(np.triu(np.outer(allowed, allowed)), max_answer_len - 1).astype(bool)
            scores = np.outer(start, end)
            candidates = np.flatnonzero(valid)
            candidates = candidates[np.argsort(-scores.ravel()[candidates], kind="stable")]
            offsets = output["offset_mapping"][0].tolist()
            word_ids = output["word_ids"][0].tolist() if align_to_words else None
            found = 0
            for flat_index in candidates:
                start_token, end_token = divmod(int(flat_index), scores.shape[1])
                span = self._char_span(offsets, word_ids, output["word_chars"], start_token, end_token)
                score = float(scores[start_token, end_token])
                if span not in best:
                    found += 1
                best[span] = max(score, best.get(span, 0.0))
                if found == top_k:
                    break

        answers = [
            {"score": score, "start": start, "end": end, "answer": context[start:end]}
            for (start, end), score in best.items()
        ]
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def _char_span(offsets: list, word_ids: list | None, word_chars: dict, start_token: int, end_token: int):
        """Character span of tokens start..end in the context; whole words when `word_ids` are given."""
        start_char, end_char = offsets[start_token][0], offsets[end_token][1]
        if word_ids is not None:
            start_word, end_word = word_ids[start_token], word_ids[end_token]
            if start_word in word_chars and end_word in word_chars:
                start_char, end_char = word_chars[start_word][0], word_chars[end_word][1]
        return start_char, end_char


class Text2TextGenerationPipeline(Pipeline):
    """Sequence-to-sequence generation with any `AutoModelForSeq2SeqLM` model: `[{"generated_text": str}]`.

    Generation kwargs (`max_new_tokens`, `num_beams`, `do_sample`, `num_return_sequences`, ...) go to
    `model.generate`; `return_tensors=True` returns the token ids (`"generated_token_ids"`) instead of text.
    A list of inputs returns a list with one result per input.
    """

    _pipeline_calls_generate = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    return_name = "generated"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ValueError(
                f"The {self.task} pipeline needs a tokenizer: pass tokenizer=... or a folder with one."
            )
        if not self.model.can_generate():
            raise ValueError(
                f"{type(self.model).__name__} cannot generate: the {self.task} pipeline needs a sequence-to-"
                "sequence model (AutoModelForSeq2SeqLM), e.g. SoraForConditionalGeneration."
            )
        self.check_model_type(
            _supported_class_names(
                self.model,
                MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
                MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING,
            )
        )

    def _sanitize_parameters(
        self,
        return_tensors: bool | None = None,
        return_text: bool | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: bool | str | None = None,
        **generate_kwargs,
    ):
        preprocess_params, postprocess_params = {}, {}
        if truncation is not None:
            preprocess_params["truncation"] = truncation
        if return_tensors is not None and return_text is not None and return_tensors == return_text:
            raise ValueError(
                "Set only one of `return_tensors` and `return_text`: they choose between ids and text."
            )
        if return_tensors is not None:
            postprocess_params["return_tensors"] = return_tensors
        elif return_text is not None:
            postprocess_params["return_tensors"] = not return_text
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        forward_params = generate_kwargs
        if getattr(self, "assistant_model", None) is not None:  # unset when the model cannot generate
            forward_params["assistant_model"] = self.assistant_model
        if getattr(self, "assistant_tokenizer", None) is not None:
            forward_params["tokenizer"] = self.tokenizer
            forward_params["assistant_tokenizer"] = self.assistant_tokenizer
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs: str | list[str], **kwargs):
        """Generate from one text (a list of results) or a list of texts (one entry per text)."""
        check_not_empty(self.task, inputs)
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and all(len(records) == 1 for records in result):
            return [records[0] for records in result]
        return result

    def preprocess(self, text: str, truncation: bool | str = False) -> dict:
        if not isinstance(text, str):
            raise ValueError(
                f"The {self.task} pipeline takes a string or a list of strings; got {type(text).__name__}."
            )
        # Encoder-decoder models here take no segment ids; a single text would only give all zeros anyway.
        return self.tokenizer(
            (self.prefix or "") + text,
            truncation=truncation,
            return_tensors="pt",
            return_token_type_ids=False,
        )

    def _forward(self, model_inputs: dict, **generate_kwargs) -> dict:
        in_batch = model_inputs["input_ids"].shape[0]
        output = self.model.generate(**model_inputs, **self._prepare_generate_kwargs(generate_kwargs))
        output_ids = output.sequences if isinstance(output, ModelOutput) else output
        # (inputs, sequences per input, length) so that batched outputs unbatch one input at a time.
        return {
            "output_ids": output_ids.reshape(in_batch, output_ids.shape[0] // in_batch, *output_ids.shape[1:])
        }

    def postprocess(
        self, model_outputs: dict, return_tensors: bool = False, clean_up_tokenization_spaces: bool = False
    ) -> list[dict]:
        records = []
        for output_ids in model_outputs["output_ids"][0]:
            if return_tensors:
                records.append({f"{self.return_name}_token_ids": output_ids})
            else:
                text = self.tokenizer.decode(
                    output_ids,
                    skip_special_tokens=True,
                    clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                )
                records.append({f"{self.return_name}_text": text})
        return records


class SummarizationPipeline(Text2TextGenerationPipeline):
    """Summarize texts with a sequence-to-sequence model: `[{"summary_text": str}]`."""

    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    """Translate texts with a sequence-to-sequence model: `[{"translation_text": str}]`."""

    return_name = "translation"


class CheckedFillMaskPipeline(FillMaskPipeline):
    """transformers' fill-mask pipeline, with `top_k` above the vocabulary and an empty list of texts refused by
    name (transformers fails in `topk` and on `inputs[0]`). With `targets`, `top_k` is capped at their number, as
    in transformers."""

    def _sanitize_parameters(self, top_k=None, targets=None, tokenizer_kwargs=None):
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"fill-mask: `top_k` must be an int >= 1; got {top_k!r}.")
            # the logits' width: the output embeddings (resized ones included), else the config's vocabulary
            vocab_size = getattr(self.model.get_output_embeddings(), "out_features", None) or getattr(
                self.model.config.get_text_config(), "vocab_size", None
            )
            if targets is None and vocab_size is not None and top_k > vocab_size:
                raise ValueError(
                    f"fill-mask: top_k={top_k} is more than the model's vocabulary of {vocab_size} tokens: pass "
                    f"top_k <= {vocab_size} (top_k={vocab_size} ranks every token)."
                )
        return super()._sanitize_parameters(top_k=top_k, targets=targets, tokenizer_kwargs=tokenizer_kwargs)

    def __call__(self, inputs, **kwargs):
        check_not_empty(self.task, inputs)
        return super().__call__(inputs, **kwargs)


class CheckedTextClassificationPipeline(TextClassificationPipeline):
    """transformers' text-classification pipeline, with an empty list of texts refused by name."""

    def __call__(self, inputs, **kwargs):
        check_not_empty(self.task, inputs)
        return super().__call__(inputs, **kwargs)


class CheckedFeatureExtractionPipeline(FeatureExtractionPipeline):
    """transformers' feature-extraction pipeline, with an empty list of texts refused by name. A Sora
    encoder-decoder (the packaged `sora`) gives its encoder's states, one vector per input token: its decoder would
    read the input shifted right, a reconstruction rather than features of the text."""

    def __call__(self, *args, **kwargs):
        check_not_empty(self.task, args[0] if args else kwargs.get("inputs"))
        return super().__call__(*args, **kwargs)

    def _forward(self, model_inputs: dict) -> Any:
        if isinstance(self.model, SoraModel) and self.model.decoder is not None:
            return self.model.encoder(**model_inputs)
        return super()._forward(model_inputs)


# transformers' own pipelines for the tasks Sora serves, with input checks added; valid input runs unchanged.
CHECKED_LIBRARY_PIPELINES = {
    "fill-mask": CheckedFillMaskPipeline,
    "text-classification": CheckedTextClassificationPipeline,
    "feature-extraction": CheckedFeatureExtractionPipeline,
}

SORA_PIPELINES = {
    "question-answering": (QuestionAnsweringPipeline, AutoModelForQuestionAnswering),
    "text2text-generation": (Text2TextGenerationPipeline, AutoModelForSeq2SeqLM),
    "summarization": (SummarizationPipeline, AutoModelForSeq2SeqLM),
    "translation": (TranslationPipeline, AutoModelForSeq2SeqLM),
}


def register_sora_pipelines() -> None:
    """Register the four pipelines transformers 5 removed with `pipeline()`, and the input-checking versions of
    fill-mask, text-classification and feature-extraction; safe to call more than once."""
    for task, (pipeline_class, auto_model) in SORA_PIPELINES.items():
        # `pipeline()` rejects names in REMOVED_TASKS (KeyError) before it reads the registry, so registering
        # alone cannot bring a removed task back: these four names must leave that table.
        transformers_pipelines.REMOVED_TASKS.pop(task, None)
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(
                task, pipeline_class=pipeline_class, pt_model=auto_model, type="text"
            )
    # Only the class changes: the task's model classes and default checkpoint stay transformers' own.
    for task, pipeline_class in CHECKED_LIBRARY_PIPELINES.items():
        entry = PIPELINE_REGISTRY.supported_tasks[task]
        if entry["impl"] is not pipeline_class:
            PIPELINE_REGISTRY.supported_tasks[task] = {**entry, "impl": pipeline_class}
    # zero-shot-classification: Sora models with a sentence space get the sentence-space pipeline (zero_shot.py)
    register_zero_shot_pipeline()


__all__ = [
    "CheckedFeatureExtractionPipeline",
    "CheckedFillMaskPipeline",
    "CheckedTextClassificationPipeline",
    "QuestionAnsweringPipeline",
    "SummarizationPipeline",
    "Text2TextGenerationPipeline",
    "TranslationPipeline",
    "register_sora_pipelines",
]
