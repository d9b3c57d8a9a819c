# Copyright 2026 The sora_hf authors. Licensed under the Apache License, Version 2.0.
"""Input checks shared by the Sora models: each raises a `ValueError` that names the input, what is wrong and the
fix, instead of an `IndexError` deep inside torch. Data-dependent checks are skipped while tracing."""

import torch
from transformers.utils import is_torchdynamo_compiling

from .configuration_sora import SoraConfig


def is_tracing() -> bool:
    """True while dynamo compiles/exports or TorchScript traces (ONNX export): data-dependent checks and branches
    are skipped so the graph stays valid for every input."""
    return is_torchdynamo_compiling() or torch.jit.is_tracing()


def check_input_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside `[0, vocab_size)`; asynchronous on accelerators."""
    if is_tracing() or input_ids.numel() == 0 or input_ids.device.type == "meta":
        return
    in_range = (input_ids >= 0) & (input_ids < vocab_size)
    if input_ids.device.type != "cpu":
        # No device-to-host sync: the kernel fails later if the assertion does not hold.
        torch._assert_async(in_range.all(), f"input_ids must lie in [0, {vocab_size})")
        return
    if not bool(in_range.all()):
        bad_id = int(input_ids[~in_range].flatten()[0])
        raise ValueError(
            f"input_ids contains id {bad_id}, outside the vocabulary [0, {vocab_size}). Encode the text with "
            f"the tokenizer that matches this model, or resize the embeddings with `resize_token_embeddings`."
        )


def check_index_range(
    name: str, values: torch.Tensor, limit: int, bound: str, fix: str, ignore_index: int | None = None
) -> None:
    """Raise `ValueError` naming `name`, its first value outside `[0, limit)` (`ignore_index` allowed) and `bound`,
    what sets the limit (`"config.num_labels=3"`); skipped while tracing, asynchronous on accelerators."""
    if is_tracing() or values.numel() == 0 or values.device.type == "meta" or values.is_floating_point():
        return
    in_range = (values >= 0) & (values < limit)
    if ignore_index is not None:
        in_range |= values == ignore_index
    if values.device.type != "cpu":
        torch._assert_async(in_range.all(), f"{name} must lie in [0, {limit})")
        return
    if not bool(in_range.all()):
        bad_value = int(values[~in_range].flatten()[0])
        ignored = f" or {ignore_index} (ignored)" if ignore_index is not None else ""
        raise ValueError(
            f"{name} contains {bad_value}, outside the allowed range [0, {limit}){ignored} ({bound}). {fix}"
        )


def check_text_inputs(
    config: SoraConfig,
    input_shape: tuple[int, ...],
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    name: str = "input_ids",
) -> None:
    """Raise `ValueError` when a batch is empty or a mask, segment ids or positions do not match the ids (shape or
    range); the data-dependent range checks are skipped while tracing."""
    if is_tracing():
        return
    if len(input_shape) != 2:
        raise ValueError(
            f"{name} must have shape (batch_size, sequence_length), got {input_shape}. Batch a single text as "
            "tokenizer(text, return_tensors='pt') does (shape (1, length))."
        )
    if 0 in input_shape:
        raise ValueError(
            f"{name} has shape {input_shape}: the model needs at least one sequence of at least one token. Skip "
            "empty batches, and keep the tokenizer's special tokens (add_special_tokens=True) so no text is empty."
        )
    if (
        attention_mask is not None
        and attention_mask.dim() != 4
        and tuple(attention_mask.shape) != input_shape
    ):
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but {name} has shape {input_shape}: give one "
            "mask row per sequence, as long as the sequence (the tokenizer returns both with padding=True)."
        )
    for field, values, limit, bound in (
        ("token_type_ids", token_type_ids, config.type_vocab_size, "type_vocab_size"),
        ("position_ids", position_ids, config.max_position_embeddings, "max_position_embeddings"),
    ):
        if values is None:
            continue
        shape = tuple(values.shape)
        if shape != input_shape and shape != (1, input_shape[1]) and shape != (input_shape[1],):
            raise ValueError(
                f"{field} has shape {tuple(values.shape)} but {name} has shape {input_shape}: give one value per "
                f"token, shape {input_shape} (or (1, {input_shape[1]}) for every sequence)."
            )
        check_index_range(
            field,
            values,
            limit,
            f"config.{bound}={limit}",
            f"Give {field} in [0, {limit - 1}], or build the model with a larger config.{bound}.",
        )


def check_inputs_embeds(inputs_embeds: torch.Tensor, hidden_size: int, name: str = "inputs_embeds") -> None:
    """Raise `ValueError` when embeddings are not `(batch, sequence, hidden_size)`."""
    if not is_tracing() and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != hidden_size):
        raise ValueError(
            f"{name} must have shape (batch_size, sequence_length, hidden_size={hidden_size}), got "
            f"{tuple(inputs_embeds.shape)}. Compute them with model.get_input_embeddings()(input_ids)."
        )


def check_labels(
    name: str, labels: torch.Tensor, shape: tuple[int, ...], num_classes: int, field: str | None
) -> None:
    """Raise `ValueError` when class-id labels do not have `shape` or name a class outside `[0, num_classes)` (-100
    marks ignored positions); `field` is the config field that sets `num_classes` (None: fixed by the task)."""
    if is_tracing():
        return
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)} but the model makes predictions of shape {tuple(shape)}: give "
            "one label per prediction (-100 where there is none)."
        )
    if field is None:
        bound, fix = f"{num_classes} classes", f"Use 0..{num_classes - 1}, or -100 to ignore an example."
    else:
        bound = f"config.{field}={num_classes}"
        fix = (
            f"Use class ids 0..{num_classes - 1} (-100 marks ignored positions), or build the model with {field} "
            f"covering every class (e.g. from_pretrained(..., {field}=<number of classes>))."
        )
    check_index_range(name, labels, num_classes, bound, fix, ignore_index=-100)


def check_decoder_masks(
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor | None,
    encoder_hidden_states: torch.Tensor | None,
    encoder_attention_mask: torch.Tensor | None,
) -> None:
    """Raise `ValueError` when the decoder's inputs, its mask and the encoder's states disagree on the batch, or the
    encoder mask on the encoder's length."""
    if is_tracing():
        return
    batch_size, seq_length = inputs_embeds.shape[:2]
    if seq_length == 0:
        raise ValueError(
            "The decoder inputs have no tokens (decoder_input_ids or labels of length 0): give at least one, e.g. "
            "leave decoder_input_ids out so they start with config.decoder_start_token_id."
        )
    if attention_mask is not None and attention_mask.dim() == 2:
        if attention_mask.shape[0] != batch_size or attention_mask.shape[1] < seq_length:
            raise ValueError(
                f"decoder_attention_mask has shape {tuple(attention_mask.shape)} but the decoder inputs have shape "
                f"{(batch_size, seq_length)}: give one mask row per target sequence, at least as long as it."
            )
    if encoder_hidden_states is None:
        return
    if encoder_hidden_states.shape[0] != batch_size:
        raise ValueError(
            f"The decoder inputs (decoder_input_ids, decoder_inputs_embeds or labels) hold {batch_size} sequences but "
            f"the encoder's input holds {encoder_hidden_states.shape[0]}: give one target per source text."
        )
    encoder_shape = tuple(encoder_hidden_states.shape[:2])
    if (
        encoder_attention_mask is not None
        and encoder_attention_mask.dim() == 2
        and tuple(encoder_attention_mask.shape) != encoder_shape
    ):
        raise ValueError(
            f"attention_mask has shape {tuple(encoder_attention_mask.shape)} but the encoder's output covers "
            f"{encoder_shape} positions: pass the attention_mask that goes with input_ids (or with encoder_outputs)."
        )


def check_sequence_length(seq_length: int, max_positions: int) -> None:
    """Raise `ValueError` when a sequence is longer than the learned positions."""
    if seq_length > max_positions:
        raise ValueError(
            f"Sequence length {seq_length} exceeds the model's position limit max_position_embeddings="
            f"{max_positions}. Truncate the input (tokenizer(..., truncation=True, max_length={max_positions}))."
        )


def check_encoder_inputs(
    config: SoraConfig,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
) -> None:
    """Raise `ValueError` unless exactly one of ids and embeddings is given and the other text inputs match it."""
    if (input_ids is None) ^ (inputs_embeds is not None):
        raise ValueError("You must specify exactly one of input_ids or inputs_embeds.")
    if input_ids is not None:
        check_text_inputs(config, tuple(input_ids.shape), attention_mask, token_type_ids, position_ids)
        return
    check_inputs_embeds(inputs_embeds, config.hidden_size)
    check_text_inputs(
        config,
        tuple(inputs_embeds.shape[:-1]),
        attention_mask,
        token_type_ids,
        position_ids,
        name="inputs_embeds (without the hidden dimension)",
    )
