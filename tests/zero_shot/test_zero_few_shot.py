"""Zero-shot classification in the sentence space, SetFit-style few-shot training, the package_topics task."""

import numpy as np
import pytest
import torch
from conftest import TEXTS, save_tiny_sora
from transformers import BertConfig, BertForSequenceClassification, pipeline
from transformers.pipelines import ZeroShotClassificationPipeline

import sora_hf  # noqa: F401  (registers the pipeline)
from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.data.tasks import package_topics
from sora_hf.fewshot import FewShotClassifier, sentence_pairs, train_few_shot
from sora_hf.sentence_embeddings import write_sentence_transformer_modules
from sora_hf.zero_shot import SentenceZeroShotClassificationPipeline, classify_embeddings

LABELS = ["animals", "music", "weather"]
# Two vocabularies that share no word: any encoder separates them, and a trained one does it better.
ANIMALS = ["cat", "dog", "bird", "horse", "cow", "fish", "mouse", "sheep"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "pink", "brown"]


def toy_texts(words: list[str], count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=4)) for _ in range(count)]


@pytest.fixture(scope="module")
def sentence_sora(tmp_path_factory):
    """A tiny Sora pretraining checkpoint with a 16-dimensional sentence space (also a sentence-transformers
    folder) whose tokenizer knows the toy words."""
    folder = tmp_path_factory.mktemp("sentence_sora") / "model"
    corpus = TEXTS + toy_texts(ANIMALS, 50, 0) + toy_texts(COLOURS, 50, 1) + [" ".join(LABELS)] * 3
    save_tiny_sora(folder, corpus, sentence_embedding_size=16)
    write_sentence_transformer_modules(folder, folder)
    return str(folder)


@pytest.fixture(scope="module")
def classifier(sentence_sora):
    return pipeline("zero-shot-classification", model=sentence_sora)


def test_zero_shot_output_format_and_label_order(classifier, sentence_sora):
    assert isinstance(classifier, SentenceZeroShotClassificationPipeline)
    result = classifier("the cat sat on the mat", candidate_labels=LABELS)
    assert result["sequence"] == "the cat sat on the mat"
    assert sorted(result["labels"]) == sorted(LABELS)
    assert result["scores"] == sorted(result["scores"], reverse=True)
    assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-5)
    # A list gives one result per text, batched or not, and the same numbers as the sentence-transformers folder.
    texts = ["a dog ran in the park", "the bird sang a song in the tree", "red blue"]
    batched = classifier(texts, candidate_labels=LABELS, hypothesis_template="It is about {}.", batch_size=2)
    assert [item["sequence"] for item in batched] == texts
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(sentence_sora)
    expected = classify_embeddings(encoder.encode, texts, LABELS, "It is about {}.")
    for item, row in zip(batched, expected):
        assert item["labels"] == [LABELS[i] for i in np.argsort(-row, kind="stable")]
        np.testing.assert_allclose(item["scores"], np.sort(row)[::-1], atol=1e-4)
    # the comma-separated string form of transformers' pipeline
    assert sorted(classifier("cat", candidate_labels="animals, music")["labels"]) == ["animals", "music"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs `candidate_labels`"),
        ({"candidate_labels": []}, "needs `candidate_labels`"),
        ({"candidate_labels": ["a", ""]}, "non-empty string"),
        ({"candidate_labels": LABELS, "multi_label": True}, "multi_label=False"),
        ({"candidate_labels": LABELS, "hypothesis_template": "no slot"}, "hypothesis_template"),
        ({"candidate_labels": LABELS, "temperature": 0}, "temperature"),
    ],
)
def test_zero_shot_bad_arguments_are_refused_by_name(classifier, kwargs, match):
    with pytest.raises(ValueError, match=match):
        classifier("the cat sat on the mat", **kwargs)


def test_zero_shot_other_models_keep_transformers_nli_pipeline(tmp_path, sentence_sora):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(sentence_sora)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        label2id={"contradiction": 0, "neutral": 1, "entailment": 2},
        id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "nli")
    tokenizer.save_pretrained(tmp_path / "nli")
    nli = pipeline("zero-shot-classification", model=str(tmp_path / "nli"))
    assert type(nli) is ZeroShotClassificationPipeline
    result = nli("the cat sat on the mat", candidate_labels=LABELS)
    assert sorted(result["labels"]) == sorted(LABELS)
    assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-5)
    # a Sora classifier has no sentence space and is no NLI model: refused by name, not silently NLI-scored
    sora_classifier = SoraForSequenceClassification(
        SoraConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    with pytest.raises(ValueError, match="sentence-embedding head"):
        pipeline("zero-shot-classification", model=sora_classifier, tokenizer=tokenizer)


def test_sentence_pairs_are_setfit_pairs():
    texts, labels = ["a1", "a2", "b1", "b2"], ["a", "a", "b", "b"]
    pairs = sentence_pairs(texts, labels, num_iterations=3, max_pairs=None, seed=0)
    assert len(pairs["score"]) == 3 * 4 * 2 and sum(pairs["score"]) == 12
    for first, second, score in zip(pairs["sentence1"], pairs["sentence2"], pairs["score"]):
        assert (first[0] == second[0]) == (score == 1.0) and first != second
    assert pairs == sentence_pairs(texts, labels, num_iterations=3, max_pairs=None, seed=0)
    assert len(sentence_pairs(texts, labels, 3, max_pairs=5, seed=0)["score"]) == 5


def test_few_shot_trains_beats_chance_and_round_trips(sentence_sora, tmp_path):
    train_texts = toy_texts(ANIMALS, 8, 2) + toy_texts(COLOURS, 8, 3)
    train_labels = ["animal"] * 8 + ["colour"] * 8
    test_texts = toy_texts(ANIMALS, 20, 4) + toy_texts(COLOURS, 20, 5)
    test_labels = ["animal"] * 20 + ["colour"] * 20
    fitted = train_few_shot(sentence_sora, train_texts, train_labels, num_iterations=2, batch_size=8, seed=0)
    assert fitted.classes == ["animal", "colour"]
    predictions = fitted.predict(test_texts)
    assert len(predictions) == 40 and fitted.predict_proba(test_texts).shape == (40, 2)
    assert np.mean(np.array(predictions) == np.array(test_labels)) >= 0.8
    fitted.save(tmp_path / "few_shot")
    loaded = FewShotClassifier.load(tmp_path / "few_shot")
    np.testing.assert_allclose(loaded.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-6)
    with pytest.raises(ValueError, match="at least two classes"):
        train_few_shot(sentence_sora, ["a", "b"], ["x", "x"], num_iterations=0)
    with pytest.raises(ValueError, match="FewShotClassifier.save"):
        FewShotClassifier.load(tmp_path)


PACKAGES = """Package: chess-game
Section: games

Package: synth
Section: contrib/sound

Package: libfoo1
Section: libs

Package: synth-data
Section: sound
"""
TRANSLATION = """Package: synth
Description-md5: 1
Description-en: software synthesizer
 A synthesizer that plays music
 .
 with many voices.

Package: chess-game
Description-md5: 2
Description-en: chess for two players
 Play chess against the computer.

Package: libfoo1
Description-md5: 3
Description-en: foo library
 Shared library for foo programs.

Package: synth-data
Description-md5: 4
Description-en: software synthesizer
 A synthesizer that plays music
 .
 with many voices.
"""


# 20 more games, so every split has rows (their long descriptions' first lines hash to all three)
PUZZLES = [f"puzzle-{i}" for i in range(20)]
PUZZLE_PACKAGES = "".join(f"\nPackage: {name}\nSection: games\n" for name in PUZZLES)
PUZZLE_TRANSLATION = "".join(
    f"\nPackage: {name}\nDescription-en: puzzle game\n Puzzle number {i} for one player.\n"
    for i, name in enumerate(PUZZLES)
)


def test_package_topics_builder(tmp_path, monkeypatch):
    (tmp_path / "x_binary-amd64_Packages").write_text(PACKAGES + PUZZLE_PACKAGES)
    (tmp_path / "x_i18n_Translation-en").write_text(TRANSLATION + PUZZLE_TRANSLATION)
    monkeypatch.setattr(package_topics, "PACKAGE_FILES", str(tmp_path / "*_binary-amd64_Packages*"))
    monkeypatch.setattr(package_topics, "TRANSLATION_FILES", str(tmp_path / "*_Translation-en*"))
    data = package_topics.build()
    assert data["train"].features["label"].names == list(package_topics.LABEL_NAMES)
    assert {split: len(data[split]) for split in data} == {"train": 17, "validation": 3, "test": 2}
    rows = [row for split in data for row in data[split] if not row["package"].startswith("puzzle-")]
    # libs is not a topic; synth-data repeats synth's text; contrib/sound is sound
    assert sorted((row["package"], package_topics.LABEL_NAMES[row["label"]]) for row in rows) == [
        ("chess-game", "games"),
        ("synth", "sound"),
    ]
    assert next(row["text"] for row in rows if row["package"] == "synth") == (
        "software synthesizer. A synthesizer that plays music with many voices."
    )
    assert package_topics.build()["train"].to_list() == data["train"].to_list()
