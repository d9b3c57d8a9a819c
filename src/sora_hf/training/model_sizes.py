"""Size presets for a new pretraining run (`sora-hf pretrain --model_size`) and the model FLOPs of one training step.

`small` is the packaged `sora` checkpoint's shape; `base` and `large` are BERT-base and BERT-large wide encoders with
a BART-style decoder of half their depth. The vocabulary comes from the tokenizer, not the preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UserInputError

if TYPE_CHECKING:
    from ..configuration_sora import SoraConfig

SIZE_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "decoder_layers",
)

MODEL_SIZES: dict[str, dict[str, int]] = {
    "small": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, decoder_layers=2
    ),
    "base": dict(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        decoder_layers=6,
    ),
    "large": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        decoder_layers=12,
    ),
}
DEFAULT_MODEL_SIZE = "small"


def resolve_model_size(
    model_size: str | None, overrides: dict[str, int | None] | None = None
) -> dict[str, int]:
    """The preset's sizes (`small` when `model_size` is None) with every override that is not None applied.

    An override replaces one field of the preset: `base` with `num_hidden_layers=6` is a 6-layer, 768-wide model.
    """
    name = model_size or DEFAULT_MODEL_SIZE
    if name not in MODEL_SIZES:
        raise UserInputError(
            f"model_size={model_size!r} is not a preset: choose one of {', '.join(MODEL_SIZES)}."
        )
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(SIZE_FIELDS))
    if unknown:
        raise UserInputError(f"Unknown size fields {unknown}: the size flags are {', '.join(SIZE_FIELDS)}.")
    sizes = dict(MODEL_SIZES[name])
    for field_name, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"--{field_name} must be a positive integer, got {value!r}.")
        sizes[field_name] = value
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        given = {key: value for key, value in overrides.items() if value is not None}
        raise UserInputError(
            f"hidden_size {sizes['hidden_size']} is not divisible by num_attention_heads "
            f"{sizes['num_attention_heads']} (model_size {name}, overrides {given}): set --num_attention_heads to a "
            f"divisor of {sizes['hidden_size']} or change --hidden_size."
        )
    return sizes


def _matmul_flops_per_pass(
    config: SoraConfig,
    encoder_lengths: Sequence[int],
    masked_tokens: int,
    denoising_lengths: Sequence[int] = (),
    decoder_lengths: Sequence[int] = (),
) -> float:
    """Forward matmul FLOPs (2 per multiply-add) of one `SoraForPreTraining` batch, sequence by sequence."""
    d, ff, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    encoder_layers, decoder_layers = config.num_hidden_layers, config.decoder_layers
    decoder_ff = config.decoder_intermediate_size

    def encoder(length: int) -> float:
        # fused QKV (3d^2) + output (d^2) + MLP (2 d ff) per token; QK^T and AV (2 x length x d) per token
        return encoder_layers * (length * 2 * (4 * d * d + 2 * d * ff) + 2 * 2 * length * length * d)

    flops = sum(encoder(length) for length in encoder_lengths)
    # sparse MLM head: transform + vocabulary, at the masked tokens only
    flops += 2 * masked_tokens * (d * d + d * vocab)
    flops += len(encoder_lengths) * 2 * (d * d + 2 * d)  # pooler + NSP head, once per sequence
    for noised, target in zip(denoising_lengths, decoder_lengths):
        flops += encoder(noised)  # the encoder reads the noised text a second time
        per_layer = (
            target * 2 * (4 * d * d + 2 * d * d + 2 * d * decoder_ff)  # self-attn QKV+O, cross Q+O, MLP
            + noised * 2 * 2 * d * d  # cross-attention K and V of the encoder states
            + 2 * 2 * target * target * d  # causal self-attention, counted in full as on dense kernels
            + 2 * 2 * target * noised * d  # cross-attention scores and values
        )
        flops += decoder_layers * per_layer + 2 * target * d * vocab  # + full-vocabulary denoising head
    return float(flops)


def pretraining_step_flops(
    config: SoraConfig,
    encoder_lengths: Sequence[int],
    masked_tokens: int,
    denoising_lengths: Sequence[int] = (),
    decoder_lengths: Sequence[int] = (),
) -> float:
    """Model FLOPs of one training step (forward + backward = 3 x forward) on a batch with these real lengths.

    Counts matrix products only (what MFU counts): the encoder on the masked text, the sparse MLM head at the
    `masked_tokens` positions, pooler + NSP, and with denoising the encoder on the noised text plus the decoder and
    its full-vocabulary head. Attention is counted as 4 x length x hidden per token per layer (no causal halving) and
    activation recomputation (gradient checkpointing) is not counted.
    """
    return 3 * _matmul_flops_per_pass(
        config, encoder_lengths, masked_tokens, denoising_lengths, decoder_lengths
    )


def batch_lengths(batch: dict) -> dict[str, object]:
    """The real lengths `pretraining_step_flops` needs, read from a `DataCollatorForSoraPretraining` batch."""
    lengths = {
        "encoder_lengths": batch["attention_mask"].sum(1).tolist(),
        "masked_tokens": int((batch["labels"] != -100).sum()),
    }
    if "decoder_labels" in batch:
        lengths["denoising_lengths"] = batch["denoising_attention_mask"].sum(1).tolist()
        lengths["decoder_lengths"] = (batch["decoder_labels"] != -100).sum(1).tolist()
    return lengths


def non_embedding_parameters(config: SoraConfig) -> int:
    """Weights of the Transformer layers (Kaplan's N): what `6 N` per token counts, without embeddings and heads."""
    d, ff = config.hidden_size, config.intermediate_size
    encoder = config.num_hidden_layers * (4 * d * d + 2 * d * ff)
    decoder = (config.decoder_layers if config.is_encoder_decoder else 0) * (
        8 * d * d + 2 * d * config.decoder_intermediate_size
    )
    return encoder + decoder


__all__ = [
    "DEFAULT_MODEL_SIZE",
    "MODEL_SIZES",
    "SIZE_FIELDS",
    "batch_lengths",
    "non_embedding_parameters",
    "pretraining_step_flops",
    "resolve_model_size",
]
