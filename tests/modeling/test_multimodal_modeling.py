"""Vision and audio towers fused with the text in the encoder: every head, masks, checkpoints, PEFT, bad input."""

import pytest
import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import AutoModel, AutoModelForSequenceClassification

from sora_hf import (
    SoraAudioConfig,
    SoraAudioModel,
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForMaskedLM,
    SoraForPreTraining,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
    SoraModel,
    SoraVisionConfig,
    SoraVisionModel,
)

TEXT = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
TOWER = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
VISION = dict(TOWER, image_size=16, patch_size=4)  # 16 patches
AUDIO = dict(TOWER, num_mel_bins=8)
BATCH, TEXT_LENGTH, FRAMES = 2, 6, 30


def config(**overrides) -> SoraConfig:
    return SoraConfig(
        **{**TEXT, "vision_config": VISION, "audio_config": AUDIO, "num_labels": 3, **overrides}
    )


def inputs(text=True, image=True, audio=True) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = {}
    if text:
        batch["input_ids"] = torch.randint(5, 120, (BATCH, TEXT_LENGTH), generator=generator)
        batch["attention_mask"] = torch.ones(BATCH, TEXT_LENGTH, dtype=torch.long)
    if image:
        batch["pixel_values"] = torch.randn(BATCH, 3, 16, 16, generator=generator)
    if audio:
        batch["input_features"] = torch.randn(BATCH, 8, FRAMES, generator=generator)
        mask = torch.ones(BATCH, FRAMES, dtype=torch.long)
        mask[1, 18:] = 0  # the second clip is shorter
        batch["feature_attention_mask"] = mask
    return batch


COMBINATIONS = {
    "text": dict(image=False, audio=False),
    "image": dict(text=False, audio=False),
    "audio": dict(text=False, image=False),
    "text+image": dict(audio=False),
    "text+audio": dict(image=False),
    "all": {},
}


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_head_takes_each_modality_alone_or_together(combination):
    torch.manual_seed(0)
    batch = inputs(**COMBINATIONS[combination])
    text_length = TEXT_LENGTH if "input_ids" in batch else 1  # no text: the sequence starts with `<s>` alone
    fused_length = (
        text_length + 16 * ("pixel_values" in batch) + 8 * ("input_features" in batch)
    )  # 30 -> 8 frames
    encoder = SoraModel(config()).eval()
    outputs = encoder(**batch)
    assert outputs.last_hidden_state.shape == (BATCH, fused_length, 32)
    if combination != "text":
        assert outputs.attention_mask.shape == (BATCH, fused_length)
        if "input_features" in batch:  # 18 real frames -> 5 after two stride-2 convolutions
            assert outputs.attention_mask[1].sum() == fused_length - 8 + 5
    # Token-level heads answer for the text tokens only; sequence-level heads once per example.
    shapes = {
        SoraForSequenceClassification: {"logits": (BATCH, 3)},
        SoraForTokenClassification: {"logits": (BATCH, text_length, 3)},
        SoraForQuestionAnswering: {"start_logits": (BATCH, text_length), "end_logits": (BATCH, text_length)},
        SoraForMaskedLM: {"logits": (BATCH, text_length, 120)},
        SoraForPreTraining: {
            "prediction_logits": (BATCH, text_length, 120),
            "seq_relationship_logits": (BATCH, 2),
        },
    }
    for head, expected in shapes.items():
        outputs = head(config()).eval()(**batch)
        assert {name: tuple(outputs[name].shape) for name in expected} == expected, head.__name__


def test_fusion_uses_every_modality_and_trains_every_tower():
    torch.manual_seed(0)
    model = SoraForSequenceClassification(config())
    batch = inputs()
    loss = model(**batch, labels=torch.tensor([0, 2])).loss
    loss.backward()
    for name in (
        "vision_tower.patch_embeddings",
        "audio_tower.conv1",
        "modality_embeddings",
        "vision_projector",
    ):
        grads = [p.grad for n, p in model.named_parameters() if name in n]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), name
    model.eval()
    with torch.no_grad():
        reference = model(**batch).logits
        for key in ("input_ids", "pixel_values", "input_features"):
            changed = dict(batch, **{key: batch[key].flip(0)})
            assert not torch.allclose(model(**changed).logits, reference), key


def test_fusion_layer_lets_the_first_layers_read_the_text_alone():
    torch.manual_seed(0)
    late = SoraForSequenceClassification(config(fusion_layer=1)).eval()
    early = SoraForSequenceClassification(config()).eval()
    early.load_state_dict(late.state_dict())  # same weights, only where the media join differs
    batch = inputs()
    with torch.no_grad():
        encoder = late.model.encoder
        # by hand: layer 0 on the text alone, then fuse, then layer 1 on the fused sequence
        text = encoder.layers[0](encoder.embeddings(batch["input_ids"]), None)
        fused, mask = encoder.fuse(
            text,
            batch["attention_mask"],
            batch["pixel_values"],
            batch["input_features"],
            batch["feature_attention_mask"],
        )
        layer_mask = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        expected = encoder.final_layer_norm(encoder.layers[1](fused, layer_mask))
        assert torch.allclose(late.model.encoder(**batch).last_hidden_state, expected, atol=1e-5)
        assert not torch.allclose(late(**batch).logits, early(**batch).logits, atol=1e-4)
        text_only = inputs(image=False, audio=False)  # no media: every layer reads the text, as before
        assert torch.allclose(late(**text_only).logits, early(**text_only).logits, atol=1e-6)
    with pytest.raises(ValueError, match="fusion_layer must be an integer in \\[0, num_hidden_layers - 1\\]"):
        config(fusion_layer=2)


def test_bilinear_fusion_pooling_adds_the_product_of_text_and_media_means():
    torch.manual_seed(0)
    bilinear = SoraForSequenceClassification(config()).eval()
    first_token = SoraForSequenceClassification(config(fusion_pooling="first_token")).eval()
    missing, _ = first_token.load_state_dict(bilinear.state_dict(), strict=False)
    assert not missing  # the bilinear pooler only adds weights
    pooler = bilinear.pooler
    # unit-scale projections (std hidden**-0.5), not the 0.02 of every other linear map
    assert 0.1 < pooler.text_projection.weight.std().item() < 0.25
    batch = inputs()
    with torch.no_grad():
        encoded = bilinear.model.encoder(**batch)
        hidden, mask = encoded.last_hidden_state, encoded.attention_mask.unsqueeze(-1).float()
        text = hidden[:, :TEXT_LENGTH].mean(1)  # the text is unpadded
        media = (hidden[:, TEXT_LENGTH:] * mask[:, TEXT_LENGTH:]).sum(1) / mask[:, TEXT_LENGTH:].sum(1)
        product = torch.tanh(pooler.text_projection(text)) * torch.tanh(pooler.media_projection(media))
        expected = torch.tanh(pooler.dense(hidden[:, 0])) + pooler.layer_norm(product)
        assert torch.allclose(bilinear(**batch).logits, bilinear.classifier(expected), atol=1e-5)
        assert not torch.allclose(bilinear(**batch).logits, first_token(**batch).logits, atol=1e-4)
        text_only = inputs(image=False, audio=False)  # nothing to fuse: the <s> summary alone, as before
        assert torch.allclose(bilinear(**text_only).logits, first_token(**text_only).logits, atol=1e-6)
    assert not hasattr(SoraForSequenceClassification(SoraConfig(**TEXT)).pooler, "text_projection")


def test_convolutional_patch_stem_gives_one_token_per_patch_and_reloads(tmp_path):
    torch.manual_seed(0)
    vision = dict(VISION, patch_embedding_type="convolutional")
    model = SoraForSequenceClassification(config(vision_config=vision, audio_config=None))
    # 16x16 images, 4x4 patches: two stride-2 convolutions, 16 tokens of the tower's width
    tower = model.model.encoder.vision_tower
    assert sum(isinstance(m, torch.nn.Conv2d) for m in tower.patch_embeddings.modules()) == 2
    assert tower(inputs()["pixel_values"]).last_hidden_state.shape == (BATCH, 16, TOWER["hidden_size"])
    batch = inputs(audio=False)
    loss = model(**batch, labels=torch.tensor([0, 2])).loss
    loss.backward()
    assert all(p.grad is not None for p in tower.patch_embeddings.parameters())
    model.eval().save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.vision_config.patch_embedding_type == "convolutional"
    with torch.no_grad():  # BatchNorm running statistics travel with the weights
        assert torch.equal(reloaded(**batch).logits, model(**batch).logits)


def test_padding_is_masked_in_the_fused_sequence():
    torch.manual_seed(0)
    model = SoraForSequenceClassification(config()).eval()
    batch = inputs()
    with torch.no_grad():
        full = model(**batch).logits
        # the short clip alone, unpadded, gives what it gave padded in the batch
        alone = model(
            input_ids=batch["input_ids"][1:],
            pixel_values=batch["pixel_values"][1:],
            input_features=batch["input_features"][1:, :, :18],
        ).logits
        assert torch.allclose(alone, full[1:], atol=1e-5)
        # text padding (with its mask) changes nothing either
        padded_ids = torch.cat([batch["input_ids"], torch.zeros(BATCH, 3, dtype=torch.long)], dim=1)
        text_mask = torch.cat([batch["attention_mask"], torch.zeros(BATCH, 3, dtype=torch.long)], dim=1)
        padded = model(**dict(batch, input_ids=padded_ids, attention_mask=text_mask)).logits
        assert torch.allclose(padded, full, atol=1e-5)


def test_text_configs_are_unchanged_and_text_checkpoints_load_into_multimodal_models(tmp_path):
    assert SoraConfig().vision_config is None and SoraConfig().audio_config is None
    text_only = SoraForSequenceClassification(SoraConfig(**TEXT, num_labels=3))
    assert not any("tower" in n or "modality" in n or "projector" in n for n in text_only.state_dict())
    text_only.save_pretrained(tmp_path / "text")
    model = SoraForSequenceClassification.from_pretrained(tmp_path / "text", vision_config=VISION)
    assert isinstance(model.model.encoder.vision_tower, SoraVisionModel)
    assert torch.equal(
        model.model.encoder.embeddings.word_embeddings.weight,
        text_only.model.encoder.embeddings.word_embeddings.weight,
    )
    packaged = SoraForSequenceClassification.from_pretrained("sora", audio_config=AUDIO, num_labels=2)
    assert packaged.config.audio_config.num_mel_bins == 8 and packaged.config.vision_config is None


def test_multimodal_checkpoint_round_trip_through_auto_classes(tmp_path):
    torch.manual_seed(0)
    model = SoraForSequenceClassification(config()).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded.config.vision_config, SoraVisionConfig)
    assert isinstance(reloaded.config.audio_config, SoraAudioConfig)
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs()).logits, model(**inputs()).logits)
    # the towers are Auto-registered models of their own
    assert isinstance(AutoModel.from_config(model.config.audio_config), SoraAudioModel)


def test_seq2seq_decoder_attends_to_the_fused_sequence():
    torch.manual_seed(0)
    model = SoraForConditionalGeneration(config(is_encoder_decoder=True)).eval()
    batch = inputs(audio=False)
    labels = torch.randint(5, 120, (BATCH, 4))
    with torch.no_grad():
        outputs = model(**batch, labels=labels)
        assert outputs.logits.shape == (BATCH, 4, 120)
        assert outputs.encoder_last_hidden_state.shape == (BATCH, TEXT_LENGTH + 16, 32)
        other_image = model(**dict(batch, pixel_values=batch["pixel_values"].flip(0)), labels=labels)
        assert not torch.allclose(other_image.logits, outputs.logits)
        generated = model.generate(**batch, max_new_tokens=3, num_beams=2, do_sample=False)
    assert generated.shape[0] == BATCH


def test_lora_on_a_multimodal_model_trains_adapters_in_towers_and_reloads(tmp_path):
    torch.manual_seed(0)
    base = SoraForSequenceClassification(config())
    base.save_pretrained(tmp_path / "base")
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, init_lora_weights=False))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert any("vision_tower" in n for n in trainable) and any("audio_tower" in n for n in trainable)
    batch = inputs()
    loss = model(**batch, labels=torch.tensor([1, 2])).loss
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    model.save_pretrained(tmp_path / "adapter")
    model.eval()
    reloaded = PeftModel.from_pretrained(
        SoraForSequenceClassification.from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    ).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, model(**batch).logits, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pixel_values": torch.randn(BATCH, 1, 16, 16)}, "channel"),
        ({"pixel_values": torch.randn(BATCH, 3, 32, 32)}, "resize"),
        ({"pixel_values": torch.randn(3, 3, 16, 16)}, "examples"),
        ({"input_features": torch.randn(BATCH, 5, FRAMES)}, "num_mel_bins"),
        ({"input_features": torch.randn(BATCH, 8, 0), "feature_attention_mask": None}, "empty"),
        ({"feature_attention_mask": torch.zeros(BATCH, FRAMES, dtype=torch.long)}, "empty"),
    ],
)
def test_bad_media_raise_value_errors_that_name_the_problem(overrides, message):
    model = SoraForSequenceClassification(config()).eval()
    batch = {k: v for k, v in {**inputs(), **overrides}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        model(**batch)


def test_media_for_a_model_without_the_tower_raise():
    text_only = SoraForSequenceClassification(SoraConfig(**TEXT)).eval()
    with pytest.raises(ValueError, match="no vision tower"):
        text_only(**inputs(audio=False))
    with pytest.raises(ValueError, match="no audio tower"):
        SoraForSequenceClassification(SoraConfig(**TEXT, vision_config=VISION))(**inputs(image=False))


@pytest.mark.parametrize(
    ("sub_config", "field"),
    [
        ({"vision_config": dict(VISION, num_channels=0)}, "SoraVisionConfig.num_channels"),
        ({"vision_config": dict(VISION, image_size=18)}, "SoraVisionConfig.image_size"),
        ({"audio_config": dict(AUDIO, num_attention_heads=3)}, "SoraAudioConfig.hidden_size"),
        ({"audio_config": dict(AUDIO, hidden_dropout_prob=1.5)}, "SoraAudioConfig.hidden_dropout_prob"),
        (
            {"vision_config": dict(VISION, patch_embedding_type="conv")},
            "SoraVisionConfig.patch_embedding_type",
        ),
        (
            {
                "vision_config": dict(
                    VISION, image_size=18, patch_size=6, patch_embedding_type="convolutional"
                )
            },
            "power of two",
        ),
        ({"fusion_pooling": "mean"}, "SoraConfig.fusion_pooling"),
    ],
)
def test_bad_tower_configs_name_the_field(sub_config, field):
    with pytest.raises(ValueError, match=field):
        SoraConfig(**TEXT, **sub_config)


@pytest.mark.parametrize("method", ["fgm", "pgd"])
def test_adversarial_training_perturbs_the_text_of_fused_inputs_and_trains_every_tower(tmp_path, method):
    from transformers import default_data_collator

    from sora_hf.training.arguments import SoraTrainingArguments
    from sora_hf.training.trainer import SoraTrainer

    torch.manual_seed(0)
    model = SoraForSequenceClassification(config())
    batch = inputs()
    examples = [{key: value[i] for key, value in batch.items()} | {"labels": i + 1} for i in range(BATCH)] * 2
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = SoraTrainingArguments(
        output_dir=str(tmp_path),
        adversarial_method=method,
        adversarial_epsilon=0.5,
        adversarial_steps=2,
        per_device_train_batch_size=BATCH,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        remove_unused_columns=False,
    )
    trainer = SoraTrainer(model=model, args=args, train_dataset=examples, data_collator=default_data_collator)
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged[f"loss_{method}"] > 0
    for tower in ("vision_tower", "audio_tower", "word_embeddings"):
        moved = [not torch.equal(p, before[n]) for n, p in model.named_parameters() if tower in n]
        assert moved and all(moved), tower
