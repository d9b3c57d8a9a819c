"""The frozen teacher the distillation terms share, and the batch entries it reads."""

import weakref
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from .base import LossInputs

# Batch entries the teacher reads when it has its own tokenizer (written by `DistillationCollator`).
TEACHER_PREFIX = "teacher_"
TEACHER_INPUT_KEYS = ("teacher_input_ids", "teacher_attention_mask", "teacher_token_type_ids")
TEACHER_LOGITS_KEY = "teacher_logits"
_STUDENT_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# what the student is trained towards: the teacher gets its inputs, never these
_TARGET_KEYS = ("labels", "start_positions", "end_positions", "next_sentence_label")


def freeze_teacher(model: PreTrainedModel) -> PreTrainedModel:
    """Eval mode and no gradients: the teacher is read, never trained."""
    model.eval()
    model.requires_grad_(False)
    return model


def load_teacher(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """A frozen sequence-classification teacher from a folder or Hub name (any architecture), whole on every
    process even under DeepSpeed ZeRO-3."""
    from ..distributed import whole_model_loading

    with whole_model_loading():
        return freeze_teacher(AutoModelForSequenceClassification.from_pretrained(name_or_path, **kwargs))


def prepare_teacher(accelerator, args, teacher_model: PreTrainedModel | None) -> PreTrainedModel | None:
    """Load the teacher named in `args` if none is given, freeze it and place it through accelerate.

    `evaluation_mode=True` applies mixed precision but wraps nothing: no DDP (the teacher has no gradients to
    synchronise), no FSDP or DeepSpeed sharding (each process keeps a whole frozen copy; a ZeRO-3-partitioned one is
    refused). It is moved to the device here, since accelerate leaves placement to FSDP under an FSDP config. It
    never reaches the optimizer, which only sees the student and the loss terms' own parameters.
    """
    from ..distributed import check_whole

    if teacher_model is None and getattr(args, "teacher_name_or_path", None):
        if getattr(args, "distill_use_cached_logits", False):
            return None  # cached logits: no teacher forward during training
        teacher_model = load_teacher(args.teacher_name_or_path)
    if teacher_model is None:
        return None
    check_whole(teacher_model)
    teacher_model = freeze_teacher(teacher_model).to(accelerator.device)
    return accelerator.prepare_model(teacher_model, evaluation_mode=True)


def has_teacher_inputs(batch_extras: dict[str, Any]) -> bool:
    """Whether the batch carries the teacher's own tokenization (its tokenizer differs from the student's)."""
    return any(key in batch_extras for key in TEACHER_INPUT_KEYS)


class DistillationTeacher:
    """A frozen teacher shared by the distillation terms: at most one forward per micro-batch.

    Deliberately not an `nn.Module`, so its parameters never join the loss terms' (and so the optimizer's).
    """

    def __init__(self, model: PreTrainedModel):
        self.model = freeze_teacher(model)
        self.output_hidden_states = False
        self.output_attentions = False
        self._last_inputs = None
        self._last_outputs = None

    @property
    def config(self):
        return self.model.config

    def __call__(self, loss_inputs: LossInputs):
        """The teacher's outputs for this micro-batch (computed once, whichever term asks first)."""
        if self._last_inputs is not None and self._last_inputs() is loss_inputs:
            return self._last_outputs
        extras = loss_inputs.batch_extras
        if has_teacher_inputs(extras):
            inputs = {key[len(TEACHER_PREFIX) :]: extras[key] for key in TEACHER_INPUT_KEYS if key in extras}
        else:  # the student's own inputs (decoder inputs, pixels and audio features included), not its targets
            # an encoder-decoder reads its decoder inputs from the labels when the batch has no decoder_input_ids
            keep_labels = getattr(self.model.config, "is_encoder_decoder", False)
            inputs = {
                key: value
                for key, value in loss_inputs.inputs.items()
                if torch.is_tensor(value) and (key not in _TARGET_KEYS or (keep_labels and key == "labels"))
            }
        self.model.eval()  # a caller's model.train() must not switch dropout on in the teacher
        with torch.no_grad():
            outputs = self.model(
                **inputs,
                output_hidden_states=self.output_hidden_states,
                output_attentions=self.output_attentions,
            )
        self._last_inputs = weakref.ref(loss_inputs)
        self._last_outputs = outputs
        return outputs


def as_teacher(teacher: "DistillationTeacher | PreTrainedModel | None") -> DistillationTeacher | None:
    """Wrap a bare model so that a term never registers the teacher as its submodule."""
    if teacher is None or isinstance(teacher, DistillationTeacher):
        return teacher
    return DistillationTeacher(teacher)
