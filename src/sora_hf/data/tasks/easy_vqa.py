"""easy-vqa 1.0: a 64x64 image of one coloured shape + a question about it -> one of 13 answers.

The package's own train / test split is kept (4,000 / 1,000 images); validation takes the train images whose
sha1(image id) % 10 == 0, so no image is shared between splits. The `image` column holds each PNG's bytes (what
`save_to_disk` would embed anyway); `datasets.Image` decodes them to PIL on access.
"""

from __future__ import annotations

import hashlib
import json

from datasets import ClassLabel, DatasetDict, Features, Image, Value

from ._common import pypi_data_path, to_dataset_dict

VERSION = "2"
PIP_SPEC = "easy-vqa==1.0"


def answer_names() -> list[str]:
    """The 13 answers in the package's order (answers.txt)."""
    path = pypi_data_path("easy_vqa", "data/answers.txt", PIP_SPEC)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def features(answers: list[str]) -> Features:
    return Features(
        {
            "image": Image(),
            "image_id": Value("int32"),
            "question": Value("string"),
            "answer": ClassLabel(names=answers),
        }
    )


def _split_of_train_image(image_id: int) -> str:
    return "validation" if int(hashlib.sha1(str(image_id).encode()).hexdigest(), 16) % 10 == 0 else "train"


def build() -> DatasetDict:
    """Every (image, question, answer) of the package, in its order; validation = 10% of the train images."""
    answers = answer_names()
    rows = []
    for package_split in ("train", "test"):
        folder = pypi_data_path("easy_vqa", f"data/{package_split}", PIP_SPEC)
        # questions.json holds [question, answer, image_id] triples (what get_train_questions() reads).
        questions = json.loads((folder / "questions.json").read_text())
        png = {}
        for question, answer, image_id in questions:
            split = "test" if package_split == "test" else _split_of_train_image(image_id)
            if image_id not in png:
                png[image_id] = (folder / "images" / f"{image_id}.png").read_bytes()
            rows.append(
                (
                    split,
                    {
                        "image": {"bytes": png[image_id], "path": f"{image_id}.png"},
                        "image_id": int(image_id),
                        "question": question,
                        "answer": answers.index(answer),
                    },
                )
            )
    return to_dataset_dict(rows, features(answers))
