"""`make demo`: fine-tune the packaged `sora` on real tweets for a few minutes, then serve it.

Loads the pretrained Sora that ships with the package, fine-tunes it on the sentiment task (the shared
split of DATA.md) with `SoraTrainer`, evaluates on the test split, saves the model, reloads it through
`AutoModelForSequenceClassification` and `pipeline`, and prints predictions for a few sentences.

    python examples/demo.py [--train-samples 16000] [--output-dir runs/demo]
"""

import argparse
import time

from transformers import AutoModelForSequenceClassification, TrainingArguments, pipeline

import sora_hf
from sora_hf.training.runner import run_task
from sora_hf.training.tasks.classification import ClassificationArguments

SENTENCES = [
    "I love how fast the new update made my phone!",
    "This is the worst customer service I have ever had.",
    "The meeting is scheduled for 3pm on Tuesday.",
    "Driverless cars scare me, I don't trust them at all",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-samples", type=int, default=16000, help="Training tweets used (the demo is short)."
    )
    parser.add_argument("--output-dir", default="runs/demo")
    args = parser.parse_args()
    started = time.time()

    print(f"1. the packaged pretrained Sora: {sora_hf.packaged_checkpoint_path('sora')}")
    print(f"2. fine-tuning on {args.train_samples:,} tweets of the sentiment task (1 epoch)")
    results = run_task(
        "classification",
        ClassificationArguments(
            model_name_or_path="sora", max_train_samples=args.train_samples, run_baseline=False
        ),
        TrainingArguments(
            output_dir=args.output_dir,
            num_train_epochs=1,
            per_device_train_batch_size=32,
            per_device_eval_batch_size=128,
            learning_rate=3e-4,
            warmup_steps=20,
            weight_decay=0.01,
            logging_steps=20,
            eval_strategy="no",
            save_strategy="no",
            report_to=["tensorboard"],
            use_cpu=True,
            seed=0,
        ),
    )
    test = results["test"]
    print(
        f"3. test split ({results['split_sizes']['test']:,} tweets): accuracy {test['test_accuracy']:.3f}, "
        f"macro-F1 {test['test_macro_f1']:.3f}"
    )

    reloaded = AutoModelForSequenceClassification.from_pretrained(args.output_dir)
    print(f"4. saved to {args.output_dir} and reloaded as {type(reloaded).__name__}")
    classifier = pipeline("text-classification", model=args.output_dir)
    for sentence, prediction in zip(SENTENCES, classifier(SENTENCES)):
        print(f"   {prediction['label']:>8} ({prediction['score']:.2f})  {sentence}")
    print(
        f"done in {time.time() - started:.0f} s; plots: {args.output_dir}/loss_curve.png, confusion_matrix.png"
    )


if __name__ == "__main__":
    main()
