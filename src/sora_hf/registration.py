"""Register Sora with the transformers Auto factories and peft, through their public `register` APIs."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from .adapters import register_peft_defaults
from .configuration_sora import SoraConfig
from .modeling_sora import (
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
)
from .pipelines import register_sora_pipelines
from .tokenization_sora import SoraTokenizer

AUTO_MODELS = {
    AutoModel: SoraModel,
    AutoModelForPreTraining: SoraForPreTraining,
    AutoModelForMaskedLM: SoraForMaskedLM,
    AutoModelForSequenceClassification: SoraForSequenceClassification,
    AutoModelForTokenClassification: SoraForTokenClassification,
    AutoModelForQuestionAnswering: SoraForQuestionAnswering,
    AutoModelForSeq2SeqLM: SoraForConditionalGeneration,
}


def register_sora() -> None:
    """Register config, models, tokenizer, pipelines and peft defaults; safe to call more than once."""
    AutoConfig.register("sora", SoraConfig, exist_ok=True)
    for auto_class, model_class in AUTO_MODELS.items():
        auto_class.register(SoraConfig, model_class, exist_ok=True)
    AutoTokenizer.register(SoraConfig, tokenizer_class=SoraTokenizer, exist_ok=True)
    register_peft_defaults()
    register_sora_pipelines()
