"""Few-shot classification, SetFit-style: contrastive fine-tuning of a sentence space, then a logistic regression.

From k labelled examples per class, `train_few_shot` builds same-class (score 1) and different-class (score 0)
pairs, fine-tunes the sentence encoder on them with sentence-transformers' `SentenceTransformerTrainer` (a
transformers `Trainer`) and `CosineSimilarityLoss`, then fits scikit-learn's `LogisticRegression` on the tuned
embeddings. The returned `FewShotClassifier` predicts label names and saves / loads as a folder.

>>> classifier = train_few_shot(sora_hf.packaged_checkpoint_path("sora"), texts, labels)
>>> classifier.predict(["what a great day"])
['positive']
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic_files import write_folder
from .sentence_embeddings import _sentence_transformers, load_sentence_transformer

HEAD_FILE = "few_shot_head.json"
ENCODER_FOLDER = "encoder"


def sentence_pairs(
    texts: Sequence[str], labels: Sequence, num_iterations: int, max_pairs: int | None, seed: int
) -> dict[str, list]:
    """SetFit's pairs: per iteration and per example, one same-class (1.0) and one different-class (0.0) partner."""
    rng = random.Random(seed)
    by_label: dict = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    first, second, scores = [], [], []
    for _ in range(num_iterations):
        for index, label in enumerate(labels):
            same = by_label[label]
            if len(same) > 1:
                partner = rng.choice([other for other in same if other != index])
                first.append(texts[index]), second.append(texts[partner]), scores.append(1.0)
            other_label = rng.choice([name for name in by_label if name != label])
            (
                first.append(texts[index]),
                second.append(texts[rng.choice(by_label[other_label])]),
                scores.append(0.0),
            )
    order = list(range(len(scores)))
    rng.shuffle(order)
    order = order[:max_pairs] if max_pairs else order
    return {
        "sentence1": [first[i] for i in order],
        "sentence2": [second[i] for i in order],
        "score": [scores[i] for i in order],
    }


class FewShotClassifier:
    """A sentence encoder and a logistic-regression head over its (L2-normalised) embeddings."""

    def __init__(self, encoder, head, batch_size: int = 64):
        self.encoder = encoder
        self.head = head
        self.batch_size = batch_size

    @property
    def classes(self) -> list:
        return self.head.classes_.tolist()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The encoder's L2-normalised sentence embeddings."""
        return self.encoder.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in the order of `classes`."""
        return self.head.predict_proba(self.embed(texts))

    def predict(self, texts: Sequence[str]) -> list:
        """The predicted label of each text."""
        return self.head.predict(self.embed(texts)).tolist()

    def save(self, folder: str | os.PathLike) -> None:
        """Write the encoder (a sentence-transformers folder) and the head (JSON, no pickle), whole or not at all."""
        head = {
            "classes": self.classes,
            "coef": self.head.coef_.tolist(),
            "intercept": self.head.intercept_.tolist(),
            "params": {key: value for key, value in self.head.get_params().items() if _is_json(value)},
        }

        def write(staging: Path) -> None:
            self.encoder.save(str(staging / ENCODER_FOLDER))
            (staging / HEAD_FILE).write_text(json.dumps(head, indent=2), encoding="utf-8")

        write_folder(Path(folder), write, {"kind": "sora_hf.fewshot"}, replace=True)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> FewShotClassifier:
        """Read a folder written by `save`."""
        from sklearn.linear_model import LogisticRegression

        folder = Path(folder)
        if not (folder / HEAD_FILE).is_file():
            raise ValueError(
                f"{folder} holds no {HEAD_FILE}: pass a folder written by FewShotClassifier.save."
            )
        head_data = json.loads((folder / HEAD_FILE).read_text(encoding="utf-8"))
        head = LogisticRegression(**head_data["params"])
        head.classes_ = np.array(head_data["classes"])
        head.coef_ = np.array(head_data["coef"])
        head.intercept_ = np.array(head_data["intercept"])
        encoder = _sentence_transformers().SentenceTransformer(str(folder / ENCODER_FOLDER))
        return cls(encoder, head)


def _is_json(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def train_few_shot(
    model_path: str | os.PathLike,
    texts: Sequence[str],
    labels: Sequence,
    *,
    num_iterations: int = 20,
    max_pairs: int | None = 1280,
    num_epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    seed: int = 42,
    output_dir: str | os.PathLike | None = None,
) -> FewShotClassifier:
    """Contrastively tune the sentence space of `model_path` on pairs of `texts`, then fit a logistic regression.

    `model_path` is a Sora checkpoint with a sentence space (or "sora") or any sentence-transformers folder.
    `num_iterations` pairs per example and kind (SetFit's default 20), at most `max_pairs` in all (None: no cap);
    `num_iterations=0` skips the tuning (a linear probe on the frozen space).
    """
    from sklearn.linear_model import LogisticRegression

    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels) or not texts:
        raise ValueError(
            f"train_few_shot needs as many labels as texts (>= 1); got {len(texts)} and {len(labels)}."
        )
    if len(set(labels)) < 2:
        raise ValueError(f"train_few_shot needs at least two classes; got {sorted(set(map(str, labels)))}.")
    st = _sentence_transformers()
    encoder = _load_encoder(model_path, st)
    if num_iterations > 0:
        from datasets import Dataset
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

        pairs = Dataset.from_dict(sentence_pairs(texts, labels, num_iterations, max_pairs, seed))
        with tempfile.TemporaryDirectory() as scratch:
            args = st.SentenceTransformerTrainingArguments(
                output_dir=str(output_dir or scratch),
                num_train_epochs=num_epochs,
                per_device_train_batch_size=batch_size,
                learning_rate=learning_rate,
                warmup_steps=0.1,  # a float is a ratio of the steps in transformers 5
                seed=seed,
                save_strategy="no",
                report_to="none",
                logging_strategy="no",
                disable_tqdm=True,
                dataloader_pin_memory=False,
            )
            trainer = st.SentenceTransformerTrainer(
                model=encoder, args=args, train_dataset=pairs, loss=CosineSimilarityLoss(encoder)
            )
            trainer.train()
    classifier = FewShotClassifier(encoder, LogisticRegression(max_iter=2000))
    classifier.head.fit(classifier.embed(texts), np.asarray(labels))
    return classifier


def _load_encoder(model_path, st):
    path = Path(str(model_path))
    if (path / "modules.json").is_file():
        return st.SentenceTransformer(str(path))
    return load_sentence_transformer(model_path)


__all__ = ["FewShotClassifier", "sentence_pairs", "train_few_shot"]
