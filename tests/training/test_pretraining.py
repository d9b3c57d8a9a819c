"""Pretraining through SoraTrainer: the loss goes down, an interrupted run resumes onto the same curve, and the
held-out evaluation through Trainer.predict scores what a plain loop over the same batches scores."""

import math

import pytest
import torch
from conftest import FIXTURES_DIR, tiny_encoder_decoder_config
from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments

from sora_hf import SoraForPreTraining, train_sora_tokenizer
from sora_hf.training.collators import DataCollatorForSoraPretraining
from sora_hf.training.pretraining import evaluate_pretraining, freeze_all_but_decoder
from sora_hf.training.pretraining_data import prepare_pretraining_dataset
from sora_hf.training.trainer import SoraTrainer

FIXTURE = FIXTURES_DIR / "sample_text.txt"


@pytest.fixture(scope="module")
def tokenizer_and_chunks():
    paragraphs = [p.strip() for p in FIXTURE.read_text().split("\n\n") if p.strip()]
    documents = Dataset.from_dict({"text": paragraphs * 4})
    tokenizer = train_sora_tokenizer((text for text in paragraphs), vocab_size=400)
    chunks = prepare_pretraining_dataset(documents, tokenizer, max_length=48)
    return tokenizer, chunks


def tiny_model(tokenizer) -> SoraForPreTraining:
    torch.manual_seed(0)
    return SoraForPreTraining(tiny_encoder_decoder_config(tokenizer))


def trainer_for(model, tokenizer, chunks, output_dir, max_steps, save_steps=None):
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        max_steps=max_steps,
        learning_rate=3e-3,
        warmup_steps=0,
        logging_steps=1,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        report_to=[],
        use_cpu=True,
        seed=0,
        remove_unused_columns=False,
    )
    collator = DataCollatorForSoraPretraining(tokenizer)
    return SoraTrainer(model=model, args=args, train_dataset=chunks, data_collator=collator)


class StopAfterStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def losses(trainer) -> dict[int, float]:
    return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}


def test_a_few_pretraining_steps_lower_the_loss(tokenizer_and_chunks, tmp_path):
    tokenizer, chunks = tokenizer_and_chunks
    model = tiny_model(tokenizer)
    collator = DataCollatorForSoraPretraining(tokenizer, seed=0)
    held_out = chunks.select(range(16))
    before = evaluate_pretraining(model, held_out, collator)
    trainer_for(model, tokenizer, chunks, tmp_path, max_steps=30).train()
    after = evaluate_pretraining(model, held_out, DataCollatorForSoraPretraining(tokenizer, seed=0))
    assert after["mlm_loss"] < before["mlm_loss"] - 0.5
    assert after["denoising_loss"] < before["denoising_loss"] - 0.5


@torch.no_grad()
def loop_metrics(model, dataset, collator, batch_size) -> dict[str, float]:
    """The held-out metrics by hand: one forward per batch of `batch_size` chunks, in order."""
    model.eval()
    sums = dict.fromkeys(
        ["mlm_correct", "mlm", "mlm_loss", "nsp_correct", "denoising_loss", "denoising"], 0.0
    )
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        if model.model.decoder is None:
            for key in ("denoising_input_ids", "denoising_attention_mask", "decoder_labels"):
                batch.pop(key, None)
        output = model(**batch)
        labels = batch["labels"][batch["labels"] != -100]
        sums["mlm_correct"] += int((output.prediction_logits.argmax(-1) == labels).sum())
        sums["mlm"] += labels.numel()
        sums["mlm_loss"] += float(output.mlm_loss) * labels.numel()
        sums["nsp_correct"] += int(
            (output.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).sum()
        )
        if output.denoising_loss is not None:
            tokens = int((batch["decoder_labels"] != -100).sum())
            sums["denoising_loss"] += float(output.denoising_loss) * tokens
            sums["denoising"] += tokens
    metrics = {
        "mlm_accuracy": sums["mlm_correct"] / sums["mlm"],
        "mlm_loss": sums["mlm_loss"] / sums["mlm"],
        "mlm_perplexity": math.exp(sums["mlm_loss"] / sums["mlm"]),
        "nsp_accuracy": sums["nsp_correct"] / len(dataset),
        "eval_chunks": len(dataset),
    }
    if sums["denoising"]:
        metrics["denoising_loss"] = sums["denoising_loss"] / sums["denoising"]
        metrics["denoising_perplexity"] = math.exp(metrics["denoising_loss"])
    return metrics


@pytest.mark.parametrize("with_decoder", [True, False])
def test_evaluation_through_trainer_predict_equals_a_plain_loop(tokenizer_and_chunks, with_decoder):
    tokenizer, chunks = tokenizer_and_chunks
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_encoder_decoder_config(tokenizer, is_encoder_decoder=with_decoder))
    held_out = chunks.select(range(21))  # batches of 8, 8 and 5
    expected = loop_metrics(model, held_out, DataCollatorForSoraPretraining(tokenizer, seed=0), batch_size=8)
    state = torch.get_rng_state()
    # the collator denoises even for the encoder-only model: the evaluation drops what it cannot read
    actual = evaluate_pretraining(
        model, held_out, DataCollatorForSoraPretraining(tokenizer, seed=0), batch_size=8
    )
    assert torch.equal(
        torch.get_rng_state(), state
    )  # Trainer() reseeds: the caller's random state comes back
    assert actual.keys() == expected.keys()
    assert ("denoising_loss" in actual) == with_decoder
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-5), key


def test_resumed_run_reproduces_the_uninterrupted_loss_curve(tokenizer_and_chunks, tmp_path):
    tokenizer, chunks = tokenizer_and_chunks
    uninterrupted = trainer_for(tiny_model(tokenizer), tokenizer, chunks, tmp_path / "full", max_steps=6)
    uninterrupted.train()

    interrupted = trainer_for(
        tiny_model(tokenizer), tokenizer, chunks, tmp_path / "cut", max_steps=6, save_steps=3
    )
    interrupted.add_callback(StopAfterStep(3))  # as if the run were killed right after its checkpoint
    interrupted.train()
    resumed = trainer_for(
        tiny_model(tokenizer), tokenizer, chunks, tmp_path / "cut", max_steps=6, save_steps=3
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-3"))

    expected, actual = losses(uninterrupted), losses(resumed)
    assert sorted(actual) == [1, 2, 3, 4, 5, 6]  # steps 1-3 come back from the checkpoint's state
    for step in (1, 2, 3, 4, 5, 6):
        assert actual[step] == pytest.approx(expected[step], rel=1e-5), step


def test_freeze_encoder_trains_only_the_decoder(tokenizer_and_chunks, tmp_path):
    tokenizer, chunks = tokenizer_and_chunks
    model = tiny_model(tokenizer)
    freeze_all_but_decoder(model)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    trainer_for(model, tokenizer, chunks, tmp_path, max_steps=3).train()
    moved = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert moved and all(name.startswith("model.decoder.") for name in moved)
    assert "model.decoder.layers.0.self_attn.qkv_proj.weight" in moved
    assert not any("word_embeddings" in name or "embed_tokens" in name for name in moved)


def test_freeze_encoder_needs_a_decoder(tokenizer_and_chunks):
    tokenizer, _ = tokenizer_and_chunks
    encoder_only = SoraForPreTraining(tiny_encoder_decoder_config(tokenizer, is_encoder_decoder=False))
    with pytest.raises(ValueError, match="has none"):
        freeze_all_but_decoder(encoder_only)


def test_mean_classifier_pooling_makes_the_pretraining_pooler_read_the_mean(tokenizer_and_chunks):
    tokenizer, _ = tokenizer_and_chunks
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_encoder_decoder_config(tokenizer, classifier_pooling="mean")).eval()
    input_ids = torch.tensor([[1, 20, 21, 22, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    logits = model(input_ids=input_ids, attention_mask=mask).seq_relationship_logits
    hidden = model.model.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    expected = model.nsp_head(torch.tanh(model.pooler.dense(hidden[0, :5].mean(0))))
    torch.testing.assert_close(logits[0], expected)
