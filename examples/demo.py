"""`make demo`: fine-tune the packaged `sora` on real tweets for a few minutes, then serve it.

Loads the pretrained Sora that ships with the package, fine-tunes it on the sentiment task (the shared
split of DATA.md) with `Trainer`, evaluates on the test split, saves the model, reloads it through
`AutoModelForSequenceClassification` and `pipeline`, and prints predictions for a few sentences.

    python examples/demo.py [--train-samples 8000] [--output-dir runs/demo]
"""

import argparse
import time

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    pipeline,
)

import sora_hf
from sora_hf.data.tasks import load_task_dataset
from sora_hf.metrics import load_metric
from sora_hf.training.plots import LossCurveCallback

SENTENCES = [
    "I love how fast the new update made my phone!",
    "This is the worst customer service I have ever had.",
    "The meeting is scheduled for 3pm on Tuesday.",
    "Driverless cars scare me, I don't trust them at all",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=8000, help="Training tweets used (the demo is short).")
    parser.add_argument("--output-dir", default="runs/demo")
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    started = time.time()

    checkpoint = sora_hf.packaged_checkpoint_path("sora")
    print(f"1. the packaged pretrained Sora: {checkpoint}")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    dataset = load_task_dataset("sentiment")
    labels = dataset["train"].features["label"].names
    train = dataset["train"].shuffle(seed=0).select(range(min(args.train_samples, len(dataset["train"]))))

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    train = train.map(tokenize, batched=True, remove_columns=["text"])
    test = dataset["test"].map(tokenize, batched=True, remove_columns=["text"])
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    accuracy_f1 = load_metric("accuracy_f1")

    def compute_metrics(prediction):
        return accuracy_f1.compute(predictions=np.argmax(prediction.predictions, -1), references=prediction.label_ids)

    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=1,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=1e-4,
        warmup_steps=20,
        weight_decay=0.01,
        logging_steps=20,
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[LossCurveCallback()],
    )
    print(f"2. fine-tuning on {len(train):,} tweets (1 epoch)")
    trainer.train()
    metrics = trainer.evaluate()
    print(f"3. test split ({len(test):,} tweets): accuracy {metrics['eval_accuracy']:.3f}, "
          f"macro-F1 {metrics['eval_macro_f1']:.3f}")

    trainer.save_model(args.output_dir)
    reloaded = AutoModelForSequenceClassification.from_pretrained(args.output_dir)
    print(f"4. saved to {args.output_dir} and reloaded as {type(reloaded).__name__}")
    classifier = pipeline("text-classification", model=args.output_dir)
    for sentence, prediction in zip(SENTENCES, classifier(SENTENCES)):
        print(f"   {prediction['label']:>8} ({prediction['score']:.2f})  {sentence}")
    print(f"done in {time.time() - started:.0f} s; loss curve: {args.output_dir}/loss_curve.png")


if __name__ == "__main__":
    main()
