"""Sora's own behaviour: bad input, gradient accumulation, generation, checkpoints, Auto registration."""

import json
import os

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

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

TINY = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=32,
)
AUTO_CLASSES = [
    (AutoModel, SoraModel),
    (AutoModelForPreTraining, SoraForPreTraining),
    (AutoModelForMaskedLM, SoraForMaskedLM),
    (AutoModelForSequenceClassification, SoraForSequenceClassification),
    (AutoModelForTokenClassification, SoraForTokenClassification),
    (AutoModelForQuestionAnswering, SoraForQuestionAnswering),
    (AutoModelForSeq2SeqLM, SoraForConditionalGeneration),
]


def tiny_config(**overrides) -> SoraConfig:
    return SoraConfig(**{**TINY, **overrides})


# --- bad configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(hidden_size=30, num_attention_heads=4), "num_attention_heads"),
        (dict(decoder_attention_heads=5), "decoder_attention_heads"),
        (dict(num_hidden_layers=0), "num_hidden_layers"),
        (dict(vocab_size=-3), "vocab_size"),
        (dict(intermediate_size=0), "intermediate_size"),
        (dict(hidden_act="swishy"), "hidden_act"),
        (dict(pad_token_id=500), "pad_token_id"),
        (dict(mask_token_id=-1), "mask_token_id"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
        (dict(classifier_pooling="max"), "classifier_pooling"),
    ],
)
def test_invalid_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_invalid_activation_lists_allowed_values():
    with pytest.raises(ValueError, match="allowed values: .*gelu"):
        tiny_config(hidden_act="swishy")


def test_decoder_sizes_default_to_encoder_sizes():
    config = tiny_config(is_encoder_decoder=True)
    assert (config.decoder_layers, config.decoder_attention_heads, config.decoder_intermediate_size) == (
        2,
        4,
        64,
    )


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [SoraModel, SoraForSequenceClassification, SoraForMaskedLM])
def test_out_of_vocabulary_id_names_the_id(model_class):
    model = model_class(tiny_config()).eval()
    input_ids = torch.tensor([[1, 5, 7, 120, 2]])
    with pytest.raises(ValueError, match=r"id 120, outside the vocabulary \[0, 120\)"):
        model(input_ids)
    with pytest.raises(ValueError, match=r"id -2"):
        model(torch.tensor([[1, -2, 2]]))


def test_out_of_vocabulary_decoder_id_is_refused():
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True)).eval()
    with pytest.raises(ValueError, match="id 999"):
        model(torch.tensor([[1, 5, 2]]), decoder_input_ids=torch.tensor([[2, 999]]))


def test_too_long_sequence_says_so():
    model = SoraModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="Sequence length 33 exceeds .*max_position_embeddings=32"):
        model(torch.full((1, 33), 7))


def test_too_long_generation_says_so():
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True, eos_token_id=None)).eval()
    with pytest.raises(ValueError, match="exceeds the model's position limit"):
        model.generate(torch.tensor([[1, 5, 6, 2]]), max_new_tokens=40, min_new_tokens=40)


# --- gradient accumulation through Trainer -----------------------------------------------------------


class GradientRecorder(TrainerCallback):
    """Copies every parameter's gradient just before the optimizer step."""

    def __init__(self):
        self.gradients = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients = {
            n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None
        }


def gradients_after_one_step(model_class, config, dataset, batch_size, accumulation, output_dir):
    torch.manual_seed(0)
    model = model_class(config)
    recorder = GradientRecorder()
    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        max_grad_norm=0.0,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        dataloader_drop_last=False,
    )
    Trainer(model=model, args=args, train_dataset=dataset, callbacks=[recorder]).train()
    return recorder.gradients


def assert_same_gradients(first, second):
    assert first.keys() == second.keys() and len(first) > 10
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-7, msg=name)


def test_gradient_accumulation_sequence_classification(tmp_path):
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
    generator = torch.Generator().manual_seed(1)
    rows = {
        "input_ids": torch.randint(5, 120, (4, 12), generator=generator).tolist(),
        "labels": [0, 2, 1, 2],
    }
    dataset = Dataset.from_dict(rows)
    one = gradients_after_one_step(SoraForSequenceClassification, config, dataset, 4, 1, str(tmp_path / "a"))
    two = gradients_after_one_step(SoraForSequenceClassification, config, dataset, 2, 2, str(tmp_path / "b"))
    assert_same_gradients(one, two)


def test_gradient_accumulation_seq2seq_with_uneven_targets(tmp_path):
    """Token-level loss: micro-batches with different numbers of target tokens still match one big batch."""
    config = tiny_config(is_encoder_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(5, 120, (4, 10), generator=generator)
    labels[0, 3:] = -100
    labels[1, 8:] = -100
    labels[3, 1:] = -100
    rows = {
        "input_ids": torch.randint(5, 120, (4, 9), generator=generator).tolist(),
        "labels": labels.tolist(),
    }
    dataset = Dataset.from_dict(rows)
    one = gradients_after_one_step(SoraForConditionalGeneration, config, dataset, 4, 1, str(tmp_path / "a"))
    two = gradients_after_one_step(SoraForConditionalGeneration, config, dataset, 2, 2, str(tmp_path / "b"))
    assert_same_gradients(one, two)


# --- generation -------------------------------------------------------------------------------------


def trained_copy_model() -> SoraForConditionalGeneration:
    """A seq2seq model trained for a few steps to copy its input, so generation is not degenerate."""
    torch.manual_seed(0)
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True, hidden_dropout_prob=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        body = torch.randint(5, 120, (16, 6))
        ids = torch.cat([torch.ones(16, 1, dtype=torch.long), body, torch.full((16, 1), 2)], dim=1)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def test_generation_with_and_without_cache_agree_and_beam_and_sampling_run():
    model = trained_copy_model()
    inputs = torch.tensor([[1, 10, 20, 30, 40, 50, 60, 2], [1, 7, 8, 9, 11, 12, 13, 2]])
    with_cache = model.generate(inputs, max_new_tokens=10, do_sample=False, use_cache=True)
    without_cache = model.generate(inputs, max_new_tokens=10, do_sample=False, use_cache=False)
    assert torch.equal(with_cache, without_cache)
    assert with_cache.shape[1] > 3  # it generated more than a start token and an end token

    beams = model.generate(inputs, max_new_tokens=10, num_beams=3, num_return_sequences=2)
    assert beams.shape[0] == 4
    torch.manual_seed(0)
    sampled = model.generate(inputs, max_new_tokens=10, do_sample=True, top_k=5)
    assert sampled.shape[0] == 2 and ((sampled >= 0) & (sampled < 120)).all()


# --- checkpoints ------------------------------------------------------------------------------------


def test_save_pretrained_writes_safetensors_with_tied_weights_once(tmp_path):
    model = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True)).eval()
    model.save_pretrained(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    state = load_file(tmp_path / "model.safetensors")
    embedding_keys = [
        k for k in state if k.endswith(("word_embeddings.weight", "embed_tokens.weight", "lm_head.weight"))
    ]
    assert embedding_keys == ["model.encoder.embeddings.word_embeddings.weight"]

    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert reloaded.lm_head.weight is reloaded.model.encoder.embeddings.word_embeddings.weight
    assert (
        reloaded.model.decoder.embed_tokens.weight is reloaded.model.encoder.embeddings.word_embeddings.weight
    )
    inputs = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        assert torch.equal(model(inputs).logits, reloaded(inputs).logits)


def test_sharded_checkpoint_round_trip(tmp_path):
    model = SoraForMaskedLM(tiny_config()).eval()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    shards = [f for f in os.listdir(tmp_path) if f.endswith(".safetensors")]
    assert len(shards) > 1
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    inputs = torch.tensor([[1, 5, 9, 4, 2]])
    with torch.no_grad():
        assert torch.equal(model(inputs).logits, reloaded(inputs).logits)


@pytest.mark.parametrize("auto_class, model_class", AUTO_CLASSES)
def test_auto_classes_round_trip_bit_identical(tmp_path, auto_class, model_class):
    config = tiny_config(is_encoder_decoder=model_class is SoraForConditionalGeneration)
    torch.manual_seed(0)
    model = model_class(config).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "sora"
    reloaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(reloaded) is model_class
    inputs = {"input_ids": torch.tensor([[1, 5, 9, 17, 2], [1, 6, 2, 0, 0]])}
    inputs["attention_mask"] = (inputs["input_ids"] != 0).long()
    with torch.no_grad():
        expected, actual = model(**inputs), reloaded(**inputs)
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(value, actual[key]), key


def test_encoder_heads_load_from_an_encoder_decoder_checkpoint(tmp_path):
    """A seq2seq checkpoint (like the packaged `sora`) initialises every encoder head's body."""
    seq2seq = SoraForConditionalGeneration(tiny_config(is_encoder_decoder=True))
    seq2seq.save_pretrained(tmp_path)
    classifier = SoraForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert classifier.model.decoder is None
    assert torch.equal(
        classifier.model.encoder.layers[1].mlp.fc1.weight, seq2seq.model.encoder.layers[1].mlp.fc1.weight
    )


# --- heads ------------------------------------------------------------------------------------------


def test_sequence_classification_problem_types():
    inputs = torch.tensor([[1, 5, 9, 2], [1, 7, 8, 2]])
    single = SoraForSequenceClassification(tiny_config(num_labels=3))
    assert single(inputs, labels=torch.tensor([0, 2])).loss.ndim == 0
    assert single.config.problem_type == "single_label_classification"
    multi = SoraForSequenceClassification(
        tiny_config(num_labels=3, problem_type="multi_label_classification")
    )
    assert multi(inputs, labels=torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])).loss.ndim == 0
    regression = SoraForSequenceClassification(tiny_config(num_labels=1))
    output = regression(inputs, labels=torch.tensor([0.5, -1.0]))
    assert regression.config.problem_type == "regression" and output.logits.shape == (2, 1)


def test_mean_classifier_pooling_reads_the_mean_of_real_tokens_and_ignores_padding():
    torch.manual_seed(0)
    model = SoraForSequenceClassification(tiny_config(num_labels=3, classifier_pooling="mean")).eval()
    inputs = torch.tensor([[1, 5, 9, 2, 0, 0], [1, 7, 8, 6, 4, 2]])
    mask = (inputs != 0).long()
    logits = model(inputs, attention_mask=mask).logits
    hidden = model.model.encoder(inputs, attention_mask=mask).last_hidden_state
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expected = model.classifier(torch.tanh(model.pooler.dense(mean)))
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(model(inputs[:1, :4]).logits, logits[:1])  # padding changes nothing
    first_token = SoraForSequenceClassification(tiny_config(num_labels=3)).eval()
    first_token.load_state_dict(model.state_dict())
    assert not torch.allclose(first_token(inputs, attention_mask=mask).logits, logits)


def test_padding_costs_no_projection_or_mlp_work_and_changes_no_real_output():
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config()).eval()
    inputs = torch.tensor([[1, 5, 9, 2, 0, 0, 0, 0], [1, 7, 8, 6, 4, 11, 12, 2]])
    mask = (inputs != 0).long()
    rows_seen = {}

    def record(name):
        def hook(module, args, output):
            rows_seen[name] = args[0].shape

        return hook

    hooks = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if name.endswith(("qkv_proj", "o_proj", "fc1"))
    ]
    padded = model.model.encoder(inputs, attention_mask=mask).last_hidden_state
    for hook in hooks:
        hook.remove()
    assert rows_seen and all(shape[0] == int(mask.sum()) for shape in rows_seen.values())  # 12 real, not 16
    alone = model.model.encoder(inputs[:1, :4]).last_hidden_state
    torch.testing.assert_close(padded[:1, :4], alone)
    # Gradients too: a loss on the real tokens of the padded batch equals the sum over examples alone.
    model.train()
    model.config.hidden_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    labels = torch.where(mask.bool(), inputs, torch.full_like(inputs, -100))
    model.zero_grad()
    model(inputs, attention_mask=mask, labels=labels).mlm_loss.backward()
    batched = model.model.encoder.layers[0].mlp.fc1.weight.grad.clone()
    model.zero_grad()
    for row, length in ((0, 4), (1, 8)):
        loss = model(inputs[row : row + 1, :length], labels=labels[row : row + 1, :length]).mlm_loss
        (loss * length / int(mask.sum())).backward()
    torch.testing.assert_close(batched, model.model.encoder.layers[0].mlp.fc1.weight.grad)


def test_sparse_mlm_prediction_matches_dense_loss():
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config()).eval()
    inputs = torch.randint(5, 120, (3, 10))
    labels = torch.full_like(inputs, -100)
    labels[:, 2] = inputs[:, 2]
    labels[0, 7] = inputs[0, 7]
    nsp = torch.tensor([0, 1, 0])
    sparse = model(inputs, labels=labels, next_sentence_label=nsp)
    model.sparse_prediction = False
    dense = model(inputs, labels=labels, next_sentence_label=nsp)
    assert sparse.prediction_logits.shape == (4, 120) and dense.prediction_logits.shape == (3, 10, 120)
    torch.testing.assert_close(sparse.loss, dense.loss)


def test_every_head_accepts_inputs_embeds_and_output_flags():
    config = tiny_config(attn_implementation="eager")
    inputs = torch.tensor([[1, 5, 9, 2]])
    for model_class in [
        SoraForPreTraining,
        SoraForMaskedLM,
        SoraForSequenceClassification,
        SoraForTokenClassification,
        SoraForQuestionAnswering,
    ]:
        model = model_class(config).eval()
        embeds = model.get_input_embeddings()(inputs)
        by_ids = model(input_ids=inputs, output_hidden_states=True, output_attentions=True)
        by_embeds = model(inputs_embeds=embeds, output_hidden_states=True, output_attentions=True)
        assert len(by_ids.hidden_states) == 3 and len(by_ids.attentions) == 2
        torch.testing.assert_close(by_ids[0], by_embeds[0])
        as_tuple = model(input_ids=inputs, return_dict=False)
        assert isinstance(as_tuple, tuple)
        torch.testing.assert_close(as_tuple[0], by_ids[0])


def test_gradient_checkpointing_gives_same_gradients():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    inputs, labels = torch.randint(5, 120, (2, 8)), torch.tensor([0, 1])
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = SoraForSequenceClassification(config).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model(inputs, labels=labels).loss.backward()
        grads.append(model.model.encoder.layers[0].self_attn.qkv_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_pretraining_with_decoder_adds_denoising_and_loads_into_every_head(tmp_path):
    config = tiny_config(is_encoder_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = SoraForPreTraining(config)
    inputs = torch.randint(5, 120, (2, 9))
    labels = torch.full_like(inputs, -100)
    labels[:, 3] = inputs[:, 3]
    original = torch.randint(5, 120, (2, 11))
    noisy = torch.cat([original[:, :4], torch.full((2, 1), 4), original[:, 8:]], dim=1)
    output = model(
        inputs,
        labels=labels,
        next_sentence_label=torch.tensor([0, 1]),
        denoising_input_ids=noisy,
        decoder_labels=original,
    )
    assert output.denoising_logits.shape == (2, 11, 120)
    torch.testing.assert_close(output.loss, output.mlm_loss + output.nsp_loss + output.denoising_loss)
    output.loss.backward()
    assert model.model.decoder.layers[0].encoder_attn.kv_proj.weight.grad.abs().sum() > 0

    model.save_pretrained(tmp_path)
    seq2seq = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    model.eval()
    with torch.no_grad():
        expected = model(inputs, denoising_input_ids=noisy, decoder_labels=original).denoising_logits
        actual = seq2seq(input_ids=noisy, labels=original).logits
    torch.testing.assert_close(expected, actual)
    for auto_class in (
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoModelForQuestionAnswering,
    ):
        head = auto_class.from_pretrained(tmp_path)
        assert torch.equal(
            head.model.encoder.layers[0].mlp.fc2.weight, model.model.encoder.layers[0].mlp.fc2.weight
        )
