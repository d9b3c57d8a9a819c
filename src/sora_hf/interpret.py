"""Why a sequence classifier decided: integrated gradients and attention rollout, per word, shaded in HTML or PNG.

Works on any transformers `*ForSequenceClassification` model with a fast tokenizer (Sora, BERT, ...).

>>> from sora_hf.interpret import explain
>>> explanation = explain(model, tokenizer, "what a lovely day", method="ig")
>>> explanation.label, explanation.top_words(3)
('positive', [('lovely', 1.84), ('day', 0.31), ('what', 0.12)])
>>> explanation.save_png("why.png")

Integrated gradients (Sundararajan et al. 2017) run through `captum`'s `LayerIntegratedGradients` on the
input-embedding module: the path goes from a baseline where every non-special token is `<pad>` (or `<mask>`) to the
text, so position and token-type embeddings stay fixed and the attributions of the tokens add up to the target
logit's change from the baseline (`delta` measures how far they miss). Attention rollout (Abnar & Zuidema 2020)
averages the heads, adds the identity for the residual path, renormalises the rows and multiplies the layers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic_files import atomic_file
from .errors import UserInputError

METHODS = ("ig", "rollout")
INSTALL_HINT = "pip install -e .[interpret]"

__all__ = [
    "METHODS",
    "Explanation",
    "aggregate_words",
    "attention_rollout",
    "check_classifier",
    "delete_words",
    "explain",
    "integrated_gradients",
    "rollout_token_scores",
    "shade_html",
    "shade_png",
]


def _captum_layer_ig():
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError as err:
        raise ImportError(
            f"Integrated gradients need captum, which is not installed ({err}). Install it with `{INSTALL_HINT}` "
            "(or `pip install captum==0.9.0`)."
        ) from err
    return LayerIntegratedGradients


def check_classifier(model: Any) -> None:
    """Raise a `UserInputError` unless `model` is a transformers sequence classifier (`*ForSequenceClassification`)."""
    name = type(model).__name__
    if not name.endswith("ForSequenceClassification") or not hasattr(model, "get_input_embeddings"):
        raise UserInputError(
            f"model: {name} is not a sequence classifier; explanations need a `*ForSequenceClassification` model "
            "(fine-tune one first, e.g. `sora-hf finetune --task sentiment`, or load the checkpoint with "
            "AutoModelForSequenceClassification)."
        )


def _check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"text: {text!r} is empty or not a string; give the sentence to explain.")
    return text


def _encode(tokenizer: Any, text: str, model: Any) -> dict[str, Any]:
    """The text as one unpadded sequence, with its word ids and character offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserInputError(
            f"tokenizer: {type(tokenizer).__name__} is not a fast tokenizer; word-level explanations need the "
            "word_ids() and offsets of a fast (tokenizers-backed) tokenizer, load it with AutoTokenizer."
        )
    max_length = getattr(model.config, "max_position_embeddings", None)
    encoding = tokenizer(
        text,
        return_tensors="pt",
        return_offsets_mapping=True,
        truncation=max_length is not None,
        max_length=max_length,
    )
    word_ids = encoding.word_ids(0)
    offsets = [tuple(pair) for pair in encoding.pop("offset_mapping")[0].tolist()]
    device = model.get_input_embeddings().weight.device
    inputs = {name: value.to(device) for name, value in encoding.items()}
    return {"inputs": inputs, "word_ids": word_ids, "offsets": offsets}


def _baseline_ids(input_ids: torch.Tensor, tokenizer: Any, baseline: str) -> torch.Tensor:
    """`input_ids` with every non-special token replaced by `<pad>` (`baseline="pad"`) or `<mask>` (`"mask"`)."""
    if baseline not in ("pad", "mask"):
        raise UserInputError(f"baseline: {baseline!r} is not one of 'pad', 'mask'.")
    token_id = tokenizer.pad_token_id if baseline == "pad" else tokenizer.mask_token_id
    if token_id is None:
        raise UserInputError(
            f"baseline: the tokenizer has no {baseline} token; pick the other baseline ('pad' or 'mask')."
        )
    special = torch.tensor(
        [token in tokenizer.all_special_ids for token in input_ids[0].tolist()], device=input_ids.device
    )
    return torch.where(special, input_ids, torch.full_like(input_ids, token_id)).view_as(input_ids)


def _logits(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits.float()


def integrated_gradients(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    target: int | None = None,
    n_steps: int = 50,
    baseline: str = "pad",
    internal_batch_size: int | None = None,
) -> dict[str, Any]:
    """Per-token integrated gradients of the `target` logit (default: the predicted class) for one text.

    Returns `token_scores` (attribution of each token, summed over the embedding dimension), `delta` (captum's
    convergence delta: sum of attributions minus the logit difference text - baseline), `logits` of the text and
    of the baseline, `target`, and the tokenization (`input_ids`, `word_ids`, `offsets`).
    """
    layer_integrated_gradients = _captum_layer_ig()
    check_classifier(model)
    text = _check_text(text)
    if n_steps < 1:
        raise UserInputError(f"n_steps: {n_steps} must be at least 1 (50 is a good default).")
    model.eval()
    encoded = _encode(tokenizer, text, model)
    inputs = encoded["inputs"]
    input_ids = inputs.pop("input_ids")
    baseline_ids = _baseline_ids(input_ids, tokenizer, baseline)
    logits = _logits(model, {"input_ids": input_ids, **inputs})[0]
    baseline_logits = _logits(model, {"input_ids": baseline_ids, **inputs})[0]
    if target is None:
        target = int(logits.argmax())
    elif not 0 <= target < logits.shape[-1]:
        raise UserInputError(
            f"target: {target} is not a class id of this model (0 .. {logits.shape[-1] - 1})."
        )
    names = list(inputs)

    def forward(ids: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        # captum repeats the extra inputs along the batch for the interpolation steps
        return model(input_ids=ids, **dict(zip(names, extra))).logits

    explainer = layer_integrated_gradients(forward, model.get_input_embeddings())
    attributions, delta = explainer.attribute(
        inputs=input_ids,
        baselines=baseline_ids,
        additional_forward_args=tuple(inputs[name] for name in names),
        target=target,
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    return {
        "token_scores": attributions[0].sum(-1).detach().float().cpu().tolist(),
        "delta": float(delta.reshape(-1)[0]),
        "logits": logits.cpu().tolist(),
        "baseline_logits": baseline_logits.cpu().tolist(),
        "target": target,
        "input_ids": input_ids[0].tolist(),
        "word_ids": encoded["word_ids"],
        "offsets": encoded["offsets"],
    }


def _attentions(model: Any, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Every layer's attention weights, on the eager attention path (sdpa and flash return none)."""
    config = model.config
    previous = getattr(config, "_attn_implementation", None)
    switch = previous not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            outputs = model(**inputs, output_attentions=True)
    finally:
        if switch:
            model.set_attn_implementation(previous)
    attentions = getattr(outputs, "attentions", None)
    if not attentions:
        raise UserInputError(
            f"model: {type(model).__name__} returned no attention weights with output_attentions=True; load it "
            'with attn_implementation="eager" for attention rollout, or use method="ig".'
        )
    return tuple(attentions)


def attention_rollout(attentions: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout: per layer, mean over heads + identity, rows renormalised; layers multiplied (first first).

    `attentions` holds one `(batch, heads, length, length)` tensor per layer; the result is `(batch, length, length)`
    whose row i says how much each input token flows into position i at the last layer (rows sum to 1).
    """
    rollout = None
    for layer in attentions:
        weights = layer.float().mean(dim=1)
        weights = weights + torch.eye(weights.shape[-1], device=weights.device, dtype=weights.dtype)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        rollout = weights if rollout is None else weights @ rollout
    if rollout is None:
        raise UserInputError("attentions: no layers given; pass the model outputs' `attentions` tuple.")
    return rollout


def rollout_token_scores(model: Any, tokenizer: Any, text: str) -> dict[str, Any]:
    """Per-token attention-rollout scores for one text, read at what the classifier pools: the mean of all rows for
    mean pooling (`config.classifier_pooling == "mean"`, Sora's default), else the first token's row (`<s>`/`[CLS]`)."""
    check_classifier(model)
    text = _check_text(text)
    model.eval()
    encoded = _encode(tokenizer, text, model)
    inputs = encoded["inputs"]
    rollout = attention_rollout(_attentions(model, inputs))[0]
    if getattr(model.config, "classifier_pooling", None) == "mean":
        scores = rollout.mean(dim=0)
    else:
        scores = rollout[0]
    return {
        "token_scores": scores.cpu().tolist(),
        "rollout": rollout.cpu(),
        "logits": _logits(model, inputs)[0].cpu().tolist(),
        "input_ids": inputs["input_ids"][0].tolist(),
        "word_ids": encoded["word_ids"],
        "offsets": encoded["offsets"],
    }


def aggregate_words(
    text: str, token_scores: list[float], word_ids: list[int | None], offsets: list[tuple[int, int]]
) -> tuple[list[str], list[float], list[tuple[int, int]]]:
    """Sum the scores of each word's pieces: `(words, scores, character spans)`; special tokens (no word) are left out."""
    if not len(token_scores) == len(word_ids) == len(offsets):
        raise UserInputError(
            f"token_scores: {len(token_scores)} scores for {len(word_ids)} word ids and {len(offsets)} offsets; "
            "pass the three lists of the same tokenization."
        )
    order: list[int] = []
    scores: dict[int, float] = {}
    spans: dict[int, list[int]] = {}
    for score, word_id, (start, end) in zip(token_scores, word_ids, offsets):
        if word_id is None:
            continue
        if word_id not in scores:
            order.append(word_id)
            scores[word_id] = 0.0
            spans[word_id] = [start, end]
        scores[word_id] += float(score)
        spans[word_id] = [min(spans[word_id][0], start), max(spans[word_id][1], end)]
    words = [text[spans[w][0] : spans[w][1]].strip() or text[spans[w][0] : spans[w][1]] for w in order]
    return words, [scores[w] for w in order], [tuple(spans[w]) for w in order]


@dataclass
class Explanation:
    """One text's explanation: the prediction and a score per word (and per token)."""

    text: str
    method: str
    label: str
    label_id: int
    probability: float
    words: list[str]
    word_scores: list[float]
    word_spans: list[tuple[int, int]]
    tokens: list[str]
    token_scores: list[float]
    delta: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def top_words(self, k: int = 5) -> list[tuple[str, float]]:
        """The `k` words with the highest scores (most support for the predicted label), highest first."""
        ranked = sorted(range(len(self.words)), key=lambda i: -self.word_scores[i])
        return [(self.words[i], self.word_scores[i]) for i in ranked[:k]]

    def top_word_indices(self, k: int = 5) -> list[int]:
        """Indices (into `words`) of the `k` highest-scored words."""
        return sorted(range(len(self.words)), key=lambda i: -self.word_scores[i])[:k]

    def to_html(self) -> str:
        """An HTML snippet of the text with each word shaded by its score."""
        return shade_html(
            self.words, self.word_scores, title=f"{self.label} ({self.probability:.2f}, {self.method})"
        )

    def save_png(self, path: str | Path) -> Path:
        """Write a PNG of the text with each word shaded by its score."""
        return shade_png(
            self.words,
            self.word_scores,
            path,
            title=f"{self.label} (p={self.probability:.2f}, {self.method})",
        )


def explain(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    method: str = "ig",
    target: int | None = None,
    n_steps: int = 50,
    baseline: str = "pad",
    internal_batch_size: int | None = None,
) -> Explanation:
    """Explain the classifier's prediction on `text` with integrated gradients (`"ig"`) or attention rollout."""
    if method not in METHODS:
        raise UserInputError(f"method: {method!r} is not one of {', '.join(METHODS)}.")
    if method == "ig":
        result = integrated_gradients(
            model,
            tokenizer,
            text,
            target=target,
            n_steps=n_steps,
            baseline=baseline,
            internal_batch_size=internal_batch_size,
        )
    else:
        result = rollout_token_scores(model, tokenizer, text)
    logits = torch.tensor(result["logits"])
    probabilities = logits.softmax(-1)
    label_id = int(result.get("target", int(logits.argmax())))
    id2label = getattr(model.config, "id2label", None) or {}
    words, word_scores, spans = aggregate_words(
        text, result["token_scores"], result["word_ids"], result["offsets"]
    )
    return Explanation(
        text=text,
        method=method,
        label=str(id2label.get(label_id, label_id)),
        label_id=label_id,
        probability=float(probabilities[label_id]),
        words=words,
        word_scores=word_scores,
        word_spans=spans,
        tokens=tokenizer.convert_ids_to_tokens(result["input_ids"]),
        token_scores=result["token_scores"],
        delta=result.get("delta"),
        extra={key: result[key] for key in ("logits", "baseline_logits") if key in result},
    )


def _color(score: float, scale: float) -> tuple[float, float, float, float]:
    """Red for support of the label, blue against it; opacity by |score| / scale."""
    alpha = 0.0 if scale == 0 else min(1.0, abs(score) / scale)
    return (0.84, 0.15, 0.16, alpha) if score >= 0 else (0.12, 0.47, 0.71, alpha)


def shade_html(words: list[str], scores: list[float], *, title: str | None = None) -> str:
    """An HTML `<div>` of the words, each in a `<span>` shaded red (supports the label) or blue (against it)."""
    scale = max((abs(s) for s in scores), default=0.0)
    spans = []
    for word, score in zip(words, scores):
        r, g, b, a = _color(score, scale)
        spans.append(
            f'<span title="{score:.4f}" style="background-color: rgba({int(r * 255)}, {int(g * 255)}, '
            f'{int(b * 255)}, {a:.3f}); padding: 1px 2px; border-radius: 3px">{html.escape(word)}</span>'
        )
    heading = f"<div><b>{html.escape(title)}</b></div>" if title else ""
    return f'<div class="sora-explanation">{heading}<div>{" ".join(spans)}</div></div>'


def shade_png(
    words: list[str], scores: list[float], path: str | Path, *, title: str | None = None, width: float = 8.0
) -> Path:
    """Write a PNG of the words shaded by score (red supports the label, blue opposes it), wrapped to `width` inches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    scale = max((abs(s) for s in scores), default=0.0)
    font_size, line_height = 14, 0.42  # inches per line
    figure = plt.figure(figsize=(width, 1.0))
    renderer = figure.canvas.get_renderer()
    dpi = figure.dpi
    x, line, placed = 0.15, 0, []
    for word, score in zip(words, scores):
        probe = figure.text(0, 0, word, fontsize=font_size)
        word_width = probe.get_window_extent(renderer).width / dpi + 0.12
        probe.remove()
        if x + word_width > width - 0.15 and x > 0.15:
            x, line = 0.15, line + 1
        placed.append((x, line, word, score))
        x += word_width + 0.08
    top = 0.45 if title else 0.15
    height = top + (line + 1) * line_height + 0.15
    figure.set_size_inches(width, height)
    if title:
        figure.text(0.15 / width, 1 - 0.3 / height, title, fontsize=font_size - 2, weight="bold")
    for x, line, word, score in placed:
        y = height - top - (line + 0.7) * line_height
        figure.text(
            x / width,
            y / height,
            word,
            fontsize=font_size,
            bbox=dict(facecolor=_color(score, scale), edgecolor="none", boxstyle="round,pad=0.2"),
        )
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def delete_words(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` without the characters of `spans`, runs of spaces collapsed."""
    keep, position = [], 0
    for start, end in sorted(spans):
        keep.append(text[position:start])
        position = max(position, end)
    keep.append(text[position:])
    return " ".join("".join(keep).split())
