"""Sora: a Transformer encoder (with optional decoder) for Hugging Face transformers 5.

`import sora_hf` registers every Sora class with the transformers Auto factories.
"""

from .configuration_sora import SoraAudioConfig, SoraConfig, SoraVisionConfig
from .feature_extraction_sora import SoraFeatureExtractor
from .image_processing_sora import SoraImageProcessor
from .layer_freezing import train_only_top_layers
from .modeling_sora import SoraModel, SoraPreTrainedModel
from .modeling_sora_audio import SoraAudioModel
from .modeling_sora_generation import SoraForConditionalGeneration
from .modeling_sora_heads import (
    SoraForMaskedLM,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
)
from .modeling_sora_pretraining import SoraForPreTraining
from .modeling_sora_vision import SoraVisionModel
from .packaged import packaged_checkpoint_path
from .processing_sora import SoraProcessor
from .registration import register_sora
from .tokenization_sora import SoraTokenizer, train_sora_tokenizer

__version__ = "0.1.0"

register_sora()

# Training classes load Trainer (accelerate, datasets): imported on first use, not by `import sora_hf`.
_TRAINING_EXPORTS = (
    "SoraSeq2SeqTrainer",
    "SoraSeq2SeqTrainingArguments",
    "SoraTrainer",
    "SoraTrainingArguments",
    "finetune_main",
    "run_task",
)


def __getattr__(name: str):
    if name in _TRAINING_EXPORTS:
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'sora_hf' has no attribute {name!r}")


__all__ = [
    "SoraAudioConfig",
    "SoraAudioModel",
    "SoraConfig",
    "SoraFeatureExtractor",
    "SoraForConditionalGeneration",
    "SoraForMaskedLM",
    "SoraForPreTraining",
    "SoraForQuestionAnswering",
    "SoraForSequenceClassification",
    "SoraForTokenClassification",
    "SoraImageProcessor",
    "SoraModel",
    "SoraPreTrainedModel",
    "SoraProcessor",
    "SoraSeq2SeqTrainer",
    "SoraSeq2SeqTrainingArguments",
    "SoraTokenizer",
    "SoraTrainer",
    "SoraTrainingArguments",
    "SoraVisionConfig",
    "SoraVisionModel",
    "finetune_main",
    "packaged_checkpoint_path",
    "register_sora",
    "run_task",
    "train_only_top_layers",
    "train_sora_tokenizer",
]
