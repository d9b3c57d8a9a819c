"""Test accuracy per question kind of a finished easy-vqa or spoken-commands (answer) run folder.

    python examples/multimodal_breakdown.py runs/easy-vqa5-fused --task easy_vqa --modalities fused
    python examples/multimodal_breakdown.py runs/spoken5-fused --task spoken_commands --modalities fused

Runs since session 5 store the same numbers in `multimodal_results.json` (`test_accuracy_by_question_kind`).
"""

import argparse
import json

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

import sora_hf  # noqa: F401  (registers the Sora classes)
from sora_hf.data.tasks import load_task_dataset
from sora_hf.processing_sora import SoraProcessor
from sora_hf.training.tasks.multimodal import (
    TASKS,
    MultimodalArguments,
    MultimodalCollator,
    accuracy_by_question_kind,
    add_log_mels,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--task", choices=sorted(TASKS), default="easy_vqa")
    parser.add_argument("--modalities", default="fused")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    media = TASKS[args.task]["media"]
    model = AutoModelForSequenceClassification.from_pretrained(args.run_dir).eval()
    processor = SoraProcessor.from_pretrained(args.run_dir)
    rows = load_task_dataset(args.task)[args.split]
    if media == "audio" and args.modalities != "text":
        rows = add_log_mels(rows, processor.feature_extractor)
    collator = MultimodalCollator(
        processor,
        use_text=args.modalities in ("text", "fused"),
        media=media if args.modalities in (media, "fused") else None,
        label_column="answer",
        args=MultimodalArguments(),
    )
    predictions = []
    with torch.no_grad():
        for start in range(0, len(rows), 256):
            batch = collator([rows[i] for i in range(start, min(start + 256, len(rows)))])
            batch.pop("labels")
            predictions += model(**batch).logits.argmax(-1).tolist()
    names = rows.features["answer"].names
    answers, predicted = [names[a] for a in rows["answer"]], [names[p] for p in predictions]
    report = {"all": float(np.mean(np.array(answers) == np.array(predicted)))}
    report |= accuracy_by_question_kind(args.task, list(rows["question"]), answers, predicted)
    print(json.dumps({k: round(v, 4) for k, v in report.items()}, indent=2))


if __name__ == "__main__":
    main()
