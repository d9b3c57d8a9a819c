"""One tiny real SoraTrainer run per tracker (tests/training/test_trackers.py): FGM + a distillation teacher, robustness eval.

    python tests/scripts/tracker_runs.py OUT_DIR tensorboard trackio wandb

Each run reports to its one tracker and writes `OUT_DIR/<tracker>/log_history.json` (`trainer.state.log_history`),
or `OUT_DIR/<tracker>/error.txt` (the traceback) when the tracker fails. The caller sets the trackers' environment
(offline wandb, trackio's folder), so nothing leaves the machine.
"""

import json
import sys
import traceback
from pathlib import Path

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraTokenizer
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.trainer import SoraTrainer

TEXTS = [
    "I love this movie, it was a great film",
    "the weather is terrible today and I feel sick",
    "the school bus was late again this morning",
    "amazing concert tonight with my friends",
    "this awful phone keeps crashing",
    "dinner was nice but the service was slow",
]
LABELS = [2, 0, 1, 2, 0, 1]


def tiny_classifier(tokenizer, seed: int) -> SoraForSequenceClassification:
    torch.manual_seed(seed)
    config = SoraConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        is_encoder_decoder=False,
    )
    return SoraForSequenceClassification(config)


def run(tracker: str, output_dir: Path) -> list[dict]:
    """Two training steps (logged each step) and one evaluation with the robustness attacks, reported to `tracker`."""
    tokenizer = SoraTokenizer.from_pretrained("sora")
    dataset = Dataset.from_dict({"text": TEXTS * 2, "label": LABELS * 2})
    dataset = dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=32), batched=True
    )
    teacher = tiny_classifier(tokenizer, seed=1)
    with torch.no_grad():
        teacher.classifier.weight.mul_(200.0)  # confident soft labels: a KD term well above zero
    args = SoraTrainingArguments(
        output_dir=str(output_dir / "run"),
        report_to=[tracker],
        run_name=f"sora-{tracker}",
        project="sora-tracker-test",
        use_cpu=True,
        max_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        seed=0,
        adversarial_method="fgm",
        adversarial_epsilon=0.5,
        distill_alpha=0.5,
        robustness_attacks=["embedding", "word"],
        robustness_steps=2,
        robustness_max_samples=6,
    )
    trainer = SoraTrainer(
        model=tiny_classifier(tokenizer, seed=0),
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        teacher_model=teacher,
    )
    trainer.train()
    if tracker == "wandb":  # wandb keeps the run open until exit; close it so every record is on disk
        import wandb

        wandb.finish()
    return trainer.state.log_history


def main() -> None:
    out = Path(sys.argv[1])
    for tracker in sys.argv[2:]:
        folder = out / tracker
        folder.mkdir(parents=True, exist_ok=True)
        try:
            history = run(tracker, folder)
        except Exception:
            (folder / "error.txt").write_text(traceback.format_exc())
            continue
        (folder / "log_history.json").write_text(json.dumps(history, indent=1))


if __name__ == "__main__":
    main()
