"""Adversarial training in SoraTrainer (FGM, PGD, FreeLB): the gradients equal a direct reference implementation on
every Sora head and on BERT, gradient accumulation, non-reentrant checkpointing, PEFT, the start step and bad input."""

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, TrainerCallback

from sora_hf import (
    SoraConfig,
    SoraForConditionalGeneration,
    SoraForQuestionAnswering,
    SoraForSequenceClassification,
    SoraForTokenClassification,
)
from sora_hf.embedding_perturbation import ascent_direction, project
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.losses import build_loss_terms
from sora_hf.training.losses.fgm import FGMLoss
from sora_hf.training.losses.freelb import FreeLBLoss
from sora_hf.training.losses.pgd import PGDLoss
from sora_hf.training.trainer import SoraTrainer

TINY = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    decoder_layers=1,
    decoder_attention_heads=4,
    decoder_intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
EPSILON, STEPS = 0.5, 3


def tiny_sora(model_class, **overrides):
    torch.manual_seed(0)
    return model_class(SoraConfig(**{**TINY, **overrides}))


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=3,
    )
    return BertForSequenceClassification(config)


def batch_for(model_class, batch_size=4, length=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 100, (batch_size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -3:] = 0  # padding must never be perturbed
    input_ids[0, -3:] = 0
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if model_class in (SoraForSequenceClassification, BertForSequenceClassification):
        batch["labels"] = torch.randint(0, 3, (batch_size,), generator=generator)
    elif model_class is SoraForTokenClassification:
        labels = torch.randint(0, 3, (batch_size, length), generator=generator)
        labels[attention_mask == 0] = -100
        batch["labels"] = labels
    elif model_class is SoraForQuestionAnswering:
        batch["start_positions"] = torch.randint(0, length - 3, (batch_size,), generator=generator)
        batch["end_positions"] = torch.randint(0, length - 3, (batch_size,), generator=generator)
    else:  # seq2seq
        batch["labels"] = torch.randint(5, 100, (batch_size, 6), generator=generator)
    return batch


def make_trainer(model, tmp_path, method, **overrides):
    args = SoraTrainingArguments(
        output_dir=str(tmp_path),
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        adversarial_method=method,
        adversarial_epsilon=EPSILON,
        adversarial_steps=STEPS,
        **overrides,
    )
    return SoraTrainer(model=model, args=args)


# --- a direct implementation to check against: every perturbed forward kept, one plain backward --------------


def loss_with_delta(model, batch, delta):
    captured = {}

    def hook(module, args, output):
        if "output" in captured:
            return output
        if delta is None:
            captured["output"] = output if output.requires_grad else output.detach().requires_grad_(True)
            return captured["output"]
        captured["output"] = output
        return output + delta

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        return model(**batch).loss, captured["output"]
    finally:
        handle.remove()


def unit(grad, mask, norm):
    grad = grad * mask
    if norm == "linf":
        return grad.sign()
    return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)


def clip(delta, epsilon, norm):
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1)
    return delta * torch.clamp(epsilon / norms.clamp_min(1e-12), max=1.0)


def reference_gradients(model, batch, method, norm="l2", weight=1.0):
    """task + weight * adversarial term, written out with plain autograd and a single `.backward()` at the end."""
    model.zero_grad(set_to_none=True)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    clean, embedding_output = loss_with_delta(model, batch, None)
    (grad,) = torch.autograd.grad(clean, embedding_output, retain_graph=True)
    step = EPSILON if method == "fgm" else 2.5 * EPSILON / STEPS
    delta = clip(step * unit(grad, mask, norm), EPSILON, norm)
    points = []
    for _ in range(0 if method == "fgm" else STEPS - 1):
        delta = delta.detach().requires_grad_(True)
        loss, _ = loss_with_delta(model, batch, delta)
        (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
        points.append(loss)
        delta = clip(delta + step * unit(grad, mask, norm), EPSILON, norm)
    last, _ = loss_with_delta(model, batch, delta.detach())
    adversarial = torch.stack(points + [last]).mean() if method == "freelb" else last
    (clean + weight * adversarial).backward()
    gradients = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return gradients, float(adversarial.detach())


def trainer_gradients(trainer, batch):
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which this test skips
    trainer.model.zero_grad(set_to_none=True)
    trainer.training_step(trainer.model, {k: v.clone() for k, v in batch.items()})
    gradients = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    trainer.model.zero_grad(set_to_none=True)
    return gradients


def assert_same_gradients(first, second, atol=1e-6):
    assert first.keys() == second.keys() and len(first) > 5
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=atol, msg=name)


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_methods_match_the_direct_implementation(tmp_path, method, norm):
    model = tiny_sora(SoraForSequenceClassification, num_labels=3)
    batch = batch_for(SoraForSequenceClassification)
    trainer = make_trainer(model, tmp_path, method, adversarial_norm=norm, adversarial_weight=0.7)
    expected, adversarial_loss = reference_gradients(model, batch, method, norm, weight=0.7)
    assert_same_gradients(trainer_gradients(trainer, batch), expected)
    assert trainer._term_sums[method] == pytest.approx(adversarial_loss, rel=1e-5)


@pytest.mark.parametrize(
    "model_class, overrides",
    [
        (SoraForTokenClassification, dict(num_labels=3)),
        (SoraForQuestionAnswering, {}),
        (SoraForConditionalGeneration, dict(is_encoder_decoder=True)),
    ],
)
def test_every_sora_head(tmp_path, model_class, overrides):
    model = tiny_sora(model_class, **overrides)
    batch = batch_for(model_class)
    expected, _ = reference_gradients(model, batch, "freelb")
    assert_same_gradients(trainer_gradients(make_trainer(model, tmp_path, "freelb"), batch), expected)


def test_seq2seq_perturbs_only_the_encoder_embeddings(tmp_path):
    model = tiny_sora(SoraForConditionalGeneration, is_encoder_decoder=True)
    calls = []
    model.model.decoder.embed_tokens.register_forward_hook(lambda m, a, out: calls.append(out.shape) and None)
    trainer_gradients(make_trainer(model, tmp_path, "fgm"), batch_for(SoraForConditionalGeneration))
    assert len(calls) == 2  # clean and perturbed forward: the decoder's embeddings are used, never replaced


def test_bert_for_sequence_classification(tmp_path):
    model = tiny_bert()
    batch = batch_for(BertForSequenceClassification)
    for method in ("fgm", "pgd"):
        expected, _ = reference_gradients(model, batch, method)
        assert_same_gradients(trainer_gradients(make_trainer(model, tmp_path, method), batch), expected)


def test_non_reentrant_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    batch = batch_for(SoraForSequenceClassification)
    plain = tiny_sora(SoraForSequenceClassification, num_labels=3)
    expected = trainer_gradients(make_trainer(plain, tmp_path / "a", "freelb"), batch)
    checkpointed = tiny_sora(SoraForSequenceClassification, num_labels=3)
    trainer = make_trainer(checkpointed, tmp_path / "b", "freelb")
    checkpointed.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert checkpointed.is_activation_checkpointing
    assert_same_gradients(trainer_gradients(trainer, batch), expected)


def test_reentrant_gradient_checkpointing_is_refused(tmp_path):
    model = tiny_sora(SoraForSequenceClassification, num_labels=3)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    trainer = make_trainer(model, tmp_path, "fgm")
    with pytest.raises(ValueError, match="use_reentrant"):
        trainer.training_step(model, batch_for(SoraForSequenceClassification))


def test_peft_lora_model(tmp_path):
    base = tiny_sora(SoraForSequenceClassification, num_labels=3)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=4))
    embeddings_before = base.get_input_embeddings().weight.detach().clone()
    batch = batch_for(SoraForSequenceClassification)
    expected, _ = reference_gradients(model, batch, "pgd")
    gradients = trainer_gradients(make_trainer(model, tmp_path, "pgd"), batch)
    assert_same_gradients(gradients, expected)
    assert any("lora_" in name for name in gradients) and not any("word_embeddings" in n for n in gradients)

    trainer = make_trainer(model, tmp_path, "pgd", max_steps=2, learning_rate=1e-2, logging_steps=1)
    trainer.train_dataset = Dataset.from_dict({k: v.tolist() for k, v in batch.items()})
    trainer.train()
    torch.testing.assert_close(base.get_input_embeddings().weight, embeddings_before)  # frozen stays frozen
    assert all("loss_pgd" in entry for entry in trainer.state.log_history if "loss" in entry)


# --- gradient accumulation: bs4 x GA1 and bs2 x GA2 end with the same parameters ----------------------------


def parameters_after_training(model_class, overrides, rows, batch_size, accumulation, output_dir, method):
    model = tiny_sora(model_class, **overrides)
    args = SoraTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=2,
        optim="sgd",
        learning_rate=0.5,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        adversarial_method=method,
        adversarial_epsilon=EPSILON,
        adversarial_steps=2,
    )
    SoraTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows)).train()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize(
    "model_class, overrides, method",
    [
        (SoraForSequenceClassification, dict(num_labels=3), "pgd"),
        (SoraForTokenClassification, dict(num_labels=3), "freelb"),  # num_items_in_batch: sum-reduced loss
    ],
)
def test_gradient_accumulation(tmp_path, model_class, overrides, method):
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, 100, (8, 9), generator=generator)
    if model_class is SoraForTokenClassification:
        labels = torch.randint(0, 3, (8, 9), generator=generator)
        labels[0, 2:] = -100  # micro-batches with different numbers of labelled tokens
        labels[5, 4:] = -100
    else:
        labels = torch.randint(0, 3, (8,), generator=generator)
    rows = {"input_ids": input_ids.tolist(), "labels": labels.tolist()}
    one = parameters_after_training(model_class, overrides, rows, 4, 1, str(tmp_path / "a"), method)
    two = parameters_after_training(model_class, overrides, rows, 2, 2, str(tmp_path / "b"), method)
    initial = {n: p for n, p in tiny_sora(model_class, **overrides).named_parameters()}
    assert any(not torch.allclose(one[n], initial[n]) for n in one)
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=1e-5, atol=1e-6, msg=name)


# --- start step, logging ------------------------------------------------------------------------------


class StepGradients(TrainerCallback):
    def __init__(self):
        self.norms = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.norms.append(sum(float(p.grad.norm()) for p in model.parameters() if p.grad is not None))


def test_start_step_trains_plain_before_it(tmp_path):
    batch = batch_for(SoraForSequenceClassification)
    rows = {k: v.tolist() for k, v in batch.items()}
    model = tiny_sora(SoraForSequenceClassification, num_labels=3)
    trainer = make_trainer(
        model, tmp_path, "fgm", max_steps=3, adversarial_start_step=2, logging_steps=1, learning_rate=1e-3
    )
    trainer.train_dataset = Dataset.from_dict(rows)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert ["loss_fgm" in entry for entry in logs] == [False, False, True]
    assert trainer.loss_terms[0].is_active(2) and not trainer.loss_terms[0].is_active(1)


# --- perturbation helpers ---------------------------------------------------------------------------


def test_projection_and_direction_are_per_example_and_skip_padding():
    grad = torch.randn(3, 5, 4)
    mask = torch.ones(3, 5, 1)
    mask[1, 3:] = 0
    direction = ascent_direction(grad, "l2", mask)
    torch.testing.assert_close(direction.flatten(1).norm(dim=1), torch.ones(3))
    assert direction[1, 3:].abs().sum() == 0
    assert set(ascent_direction(grad, "linf", mask)[1, 3:].unique().tolist()) == {0.0}
    big = 10 * direction
    torch.testing.assert_close(project(big, 0.5, "l2").flatten(1).norm(dim=1), torch.full((3,), 0.5))
    small = 0.1 * direction
    torch.testing.assert_close(project(small, 0.5, "l2"), small)
    assert project(big, 0.5, "linf").abs().max() <= 0.5


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, argument",
    [
        (dict(adversarial_method="vat"), "adversarial_method"),
        (dict(adversarial_epsilon=0.0), "adversarial_epsilon"),
        (dict(adversarial_epsilon=-1.0), "adversarial_epsilon"),
        (dict(adversarial_steps=0), "adversarial_steps"),
        (dict(adversarial_steps=-2), "adversarial_steps"),
        (dict(adversarial_norm="l1"), "adversarial_norm"),
        (dict(adversarial_step_size=0.0), "adversarial_step_size"),
        (dict(adversarial_weight=-1.0), "adversarial_weight"),
        (dict(adversarial_start_step=-1), "adversarial_start_step"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, overrides, argument):
    with pytest.raises(ValueError, match=argument):
        SoraTrainingArguments(output_dir=str(tmp_path), report_to=[], **overrides)


@pytest.mark.parametrize(
    "loss_class, kwargs, argument",
    [
        (FGMLoss, dict(epsilon=0.0), "epsilon"),
        (PGDLoss, dict(steps=0), "steps"),
        (FreeLBLoss, dict(epsilon=-0.1), "epsilon"),
        (FreeLBLoss, dict(norm="l3"), "norm"),
    ],
)
def test_bad_term_settings_name_the_argument(loss_class, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        loss_class(**kwargs)


class NoEmbeddingsClassifier(nn.Module):
    """A classifier over dense features: nothing to perturb."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def get_input_embeddings(self):
        return None

    def forward(self, features, labels=None):
        logits = self.linear(features)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def test_model_without_input_embeddings_names_the_model(tmp_path):
    args = SoraTrainingArguments(
        output_dir=str(tmp_path), report_to=[], use_cpu=True, adversarial_method="fgm"
    )
    with pytest.raises(ValueError, match="model"):
        build_loss_terms(args, NoEmbeddingsClassifier())
    with pytest.raises(ValueError, match="model: NoEmbeddingsClassifier exposes no input embeddings"):
        SoraTrainer(model=NoEmbeddingsClassifier(), args=args)
