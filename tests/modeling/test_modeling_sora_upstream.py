"""transformers' own common suites (ModelTesterMixin, ConfigTester) run against every Sora class."""

import unittest
from unittest import mock

import torch
from transformers.models.auto import modeling_auto
from upstream import upstream_module

from sora_hf import (
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
)

test_modeling_common = upstream_module("test_modeling_common")
test_configuration_common = upstream_module("test_configuration_common")
ModelTesterMixin = test_modeling_common.ModelTesterMixin
ids_tensor = test_modeling_common.ids_tensor
random_attention_mask = test_modeling_common.random_attention_mask
ConfigTester = test_configuration_common.ConfigTester

# The mixin builds labels from transformers' *_MAPPING_NAMES tables, which know nothing of "sora".
SORA_MAPPING_NAMES = {
    "MODEL_MAPPING_NAMES": "SoraModel",
    "MODEL_FOR_PRETRAINING_MAPPING_NAMES": "SoraForPreTraining",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES": "SoraForMaskedLM",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "SoraForSequenceClassification",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES": "SoraForTokenClassification",
    "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES": "SoraForQuestionAnswering",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES": "SoraForConditionalGeneration",
}


class SoraModelTester:
    """Tiny configs and random inputs for the upstream mixin."""

    def __init__(self, parent, is_encoder_decoder: bool = False, batch_size: int = 13, seq_length: int = 7):
        self.parent = parent
        self.is_encoder_decoder = is_encoder_decoder
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.decoder_seq_length = seq_length
        self.encoder_seq_length = seq_length
        self.key_length = seq_length
        self.is_training = True
        self.vocab_size = 99
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.intermediate_size = 37
        self.max_position_embeddings = 64
        self.type_vocab_size = 2
        self.num_labels = 3
        self.num_choices = 4

    def get_config(self) -> SoraConfig:
        return SoraConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            is_encoder_decoder=self.is_encoder_decoder,
            num_labels=self.num_labels,
            # every special id below 4: test_resize_tokens_embeddings shrinks the vocabulary to 4 by assignment,
            # and SoraConfig refuses (and undoes) an assignment that leaves a special id outside the vocabulary
            mask_token_id=3,
        )

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size).clamp(5)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        inputs_dict = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.is_encoder_decoder:
            decoder_input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size).clamp(5)
            inputs_dict["decoder_input_ids"] = decoder_input_ids
            inputs_dict["decoder_attention_mask"] = torch.ones_like(decoder_input_ids)
        else:
            inputs_dict["token_type_ids"] = ids_tensor(
                [self.batch_size, self.seq_length], self.type_vocab_size
            )
        return config, inputs_dict


class SoraMappingPatch:
    """Adds the "sora" rows to transformers' mapping tables for the duration of each test."""

    def setUp(self):
        super().setUp()
        self._patches = [
            mock.patch.dict(getattr(modeling_auto, table), {"sora": name})
            for table, name in SORA_MAPPING_NAMES.items()
        ]
        for patch in self._patches:
            patch.start()

    def tearDown(self):
        for patch in self._patches:
            patch.stop()
        super().tearDown()


class SoraEncoderModelTest(SoraMappingPatch, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (
        SoraModel,
        SoraForPreTraining,
        SoraForMaskedLM,
        SoraForSequenceClassification,
        SoraForTokenClassification,
        SoraForQuestionAnswering,
    )
    test_resize_embeddings = True
    test_mismatched_shapes = True

    def setUp(self):
        super().setUp()
        self.model_tester = SoraModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=SoraConfig, hidden_size=37, num_attention_heads=1
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is SoraForPreTraining:
            shape = (self.model_tester.batch_size, self.model_tester.seq_length)
            inputs_dict["labels"] = torch.zeros(shape, dtype=torch.long)
            inputs_dict["next_sentence_label"] = torch.zeros(self.model_tester.batch_size, dtype=torch.long)
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()


class SoraEncoderDecoderModelTest(SoraMappingPatch, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SoraModel, SoraForConditionalGeneration)
    # `generate` is covered by tests/modeling/test_modeling_sora.py: the sdist does not ship GenerationTesterMixin.
    all_generative_model_classes = ()
    is_encoder_decoder = True
    test_resize_embeddings = True

    def setUp(self):
        super().setUp()
        self.model_tester = SoraModelTester(self, is_encoder_decoder=True)
