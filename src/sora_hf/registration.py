"""Register Sora with the transformers Auto factories and peft, through their public `register` APIs."""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoImageProcessor,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoProcessor,
    AutoTokenizer,
)

from .configuration_sora import SoraAudioConfig, SoraConfig, SoraVisionConfig
from .feature_extraction_sora import SoraFeatureExtractor
from .image_processing_sora import SoraImageProcessor
from .modeling_sora import SoraModel
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
from .packaged import install_packaged_name_message
from .peft_defaults import register_peft_defaults
from .pipelines import register_sora_pipelines
from .processing_sora import SoraProcessor
from .quantization import register_int8_quantizer
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
    # Multimodal pieces: the towers' configs and models, and the processors that feed them.
    AutoConfig.register("sora_vision", SoraVisionConfig, exist_ok=True)
    AutoConfig.register("sora_audio", SoraAudioConfig, exist_ok=True)
    AutoModel.register(SoraVisionConfig, SoraVisionModel, exist_ok=True)
    AutoModel.register(SoraAudioConfig, SoraAudioModel, exist_ok=True)
    AutoImageProcessor.register(
        SoraConfig, image_processor_classes={"pil": SoraImageProcessor}, exist_ok=True
    )
    AutoFeatureExtractor.register(SoraConfig, SoraFeatureExtractor, exist_ok=True)
    AutoProcessor.register(SoraConfig, SoraProcessor, exist_ok=True)
    register_peft_defaults()
    register_sora_pipelines()
    register_int8_quantizer()  # config.json `quant_method: sora_int8` loads as int8 layers
    install_packaged_name_message()
