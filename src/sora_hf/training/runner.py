"""`run_task`: the one fine-tuning runner every task goes through (`sora-hf finetune`, the example scripts).

A task is a `TaskSpec` (training/tasks/); this module owns what every task shares: the output folder and
resuming, data loading (main process first), slicing, the model and PEFT, a frozen teacher, `SoraTrainer` (or
its seq2seq variant) with the adversarial and distillation terms of `SoraTrainingArguments`, training, the test
split, saving, plots, results JSON, model card and push — in that order, so the Hub gets the finished card.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..argument_files import parse_dataclasses
from ..atomic_files import write_text_atomic
from ..errors import UserInputError
from ..packaged import resolve_pretrained_name
from ..redaction import redacted_command
from .arguments import SoraSeq2SeqTrainingArguments, SoraTrainingArguments
from .checkpoints import output_dir_lock, resolve_resume_checkpoint
from .distillation import keep_every_kth_layer
from .finetuning import make_parameter_efficient, parameter_counts, training_slice
from .tasks import get_task
from .tasks.base import TaskRun, TaskSpec, card_dataset
from .teacher_inputs import TeacherInputsCollator, add_teacher_columns, load_task_teacher
from .trainer import SoraSeq2SeqTrainer, SoraTrainer

# TrainingArguments a results JSON records (the card lists them all through its hyperparameters section)
RECORDED_TRAINING_ARGUMENTS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "weight_decay",
    "seed",
    "bf16",
    "adversarial_method",
    "adversarial_epsilon",
    "teacher_name_or_path",
    "distill_alpha",
    "distill_temperature",
    "robustness_attacks",
)


def training_arguments_class(spec: TaskSpec) -> type:
    """`SoraSeq2SeqTrainingArguments` for generating tasks, `SoraTrainingArguments` for the rest."""
    return SoraSeq2SeqTrainingArguments if spec.seq2seq else SoraTrainingArguments


def task_parser(task: str | TaskSpec, prog: str | None = None) -> HfArgumentParser:
    """The parser of a task's flags: its arguments dataclass and (Seq2Seq)SoraTrainingArguments."""
    spec = get_task(task) if isinstance(task, str) else task
    parser = HfArgumentParser(
        (spec.arguments_class, training_arguments_class(spec)),
        prog=prog or f"sora-hf finetune --task {spec.name}",
        description=f"Fine-tune on the {spec.name} task with SoraTrainer.",
    )
    if spec.seq2seq:
        parser.set_defaults(predict_with_generate=True)  # the test split is scored on generated text
    return parser


def parse_task_arguments(task: str | TaskSpec, argv: list[str] | None = None, prog: str | None = None):
    """(task arguments, training arguments) from a command line, or from one JSON file of arguments."""
    parser = task_parser(task, prog)
    return parse_dataclasses(parser, list(sys.argv[1:] if argv is None else argv))


def finetune_main(task: str, argv: list[str] | None = None, prog: str | None = None) -> dict:
    """Parse `argv` for `task` and run it: the body of `sora-hf finetune` and of every example script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or f"sora-hf finetune --task {task}"
    args, training_args = parse_task_arguments(task, argv, prog)
    return run_task(task, args, training_args, command=[*prog.split(), *argv])


def script_main(task: str) -> None:
    """`examples/run_<task>.py`: run the task with this process's command line and print the results."""
    results = finetune_main(task, prog=sys.argv[0])
    print(json.dumps(printable_results(results), indent=2, default=str))


def printable_results(results: dict) -> dict:
    """The results JSON without the long entries (arguments, log history)."""
    return {key: value for key, value in results.items() if key not in ("arguments", "log_history")}


def resume_checkpoint(args, training_args) -> str | None:
    """The checkpoint to resume from (`--resume_from_checkpoint PATH|true`: see `resolve_resume_checkpoint`), after
    checking the output folder.

    A run that does not resume refuses an `output_dir` holding another run's checkpoints unless
    `--overwrite_output_dir` is given (then those checkpoints are removed first, so none is mixed in later).
    """
    output_dir = Path(training_args.output_dir)
    # `true`: the newest complete checkpoint (a run killed while saving leaves a partial one, skipped and named)
    resume = resolve_resume_checkpoint(output_dir, training_args.resume_from_checkpoint)
    if resume is not None:
        return resume
    old = sorted(output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")) if output_dir.is_dir() else []
    if old and not args.overwrite_output_dir:
        raise UserInputError(
            f"--output_dir {output_dir} holds another run's checkpoints ({', '.join(p.name for p in old[:3])}"
            f"{', ...' if len(old) > 3 else ''}): pass --resume_from_checkpoint true to continue that run, "
            "--overwrite_output_dir to start over, or another --output_dir."
        )
    if old and training_args.process_index == 0:
        for folder in old:
            shutil.rmtree(folder)
    return None


def check_arguments(spec: TaskSpec, args, training_args) -> None:
    """Refuse settings the task cannot honour, before any data or model is loaded."""
    if getattr(training_args, "robustness_attacks", None) and not spec.robustness:
        raise UserInputError(
            f"--robustness_attacks: the attacks evaluate text classifiers; the {spec.name} task is not one. "
            "Drop the flag."
        )
    if spec.seq2seq and not training_args.predict_with_generate:
        raise UserInputError(
            "The test split is scored on generated text: pass --predict_with_generate (sora-hf finetune and the "
            "example scripts turn it on by default)."
        )
    if args.lora_r and args.peft_config:
        raise UserInputError("Pass either --lora_r or --peft_config, not both.")
    cached_logits = getattr(training_args, "distill_use_cached_logits", False)
    if cached_logits and spec.teacher_text_column is None:
        raise UserInputError(
            "--distill_use_cached_logits caches one logit vector per text: it serves text classification only, not "
            f"{spec.name}. Drop it (the teacher then runs beside the student)."
        )
    teacher_flags = [
        name
        for name in ("distill_hidden_weight", "distill_attention_weight")
        if getattr(training_args, name, 0) > 0
    ] + (["distill_use_cached_logits"] if cached_logits else [])
    if teacher_flags and not getattr(training_args, "teacher_name_or_path", None):
        raise UserInputError(
            f"--{' and --'.join(teacher_flags)} need(s) a teacher: pass --teacher_name_or_path."
        )


def save_model(run: TaskRun) -> bool:
    """Save the trained model to `output_dir` (a PEFT model merged, its adapter alone in `adapter/`, unless
    `--merge_adapter false`); whether an adapter folder was written."""
    trainer, output_dir = run.trainer, run.output_dir
    # prompt-learning methods (prefix, prompt tuning) have nothing to merge: their adapter is the saved model
    merge = run.args.merge_adapter and hasattr(trainer.model, "merge_and_unload")
    if merge:
        trainer.save_model(str(output_dir / "adapter"), _internal_call=True)
        trainer.model = trainer.model.merge_and_unload()
    # _internal_call: Trainer would push here, before the card and results exist; the push comes last
    trainer.save_model(str(output_dir), _internal_call=True)
    return merge


def build_trainer(run: TaskRun, teacher, teacher_tokenizer):
    """The spec's trainer (default `SoraTrainer`, or `SoraSeq2SeqTrainer`) over the featurized splits, with the
    teacher's own inputs or cached logits added to the training features when the run has them."""
    spec, training_args = run.spec, run.training_args
    cached_logits = getattr(training_args, "distill_use_cached_logits", False)
    collator = spec.collator(run)
    train_features = spec.model_columns(run, "train", run.features["train"])
    if teacher_tokenizer is not None or cached_logits:
        collator = TeacherInputsCollator(collator, teacher_tokenizer)
        train_features = add_teacher_columns(train_features, run, teacher, teacher_tokenizer)
    if teacher_tokenizer is not None or cached_logits or spec.passes_raw_columns:
        training_args.remove_unused_columns = False  # the collator reads columns the forward does not name
    trainer_class = spec.trainer_class or (SoraSeq2SeqTrainer if spec.seq2seq else SoraTrainer)
    return trainer_class(
        model=run.model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=spec.model_columns(run, "validation", run.features["validation"]),
        data_collator=collator,
        processing_class=run.processor,
        compute_metrics=spec.compute_metrics(run),
        teacher_model=None if cached_logits else teacher,
        **spec.trainer_kwargs(run),
    )


def _first(split, count: int | None):
    return split.select(range(min(count, len(split)))) if count else split


def run_task(task: str | TaskSpec, args, training_args, command: list[str] | None = None) -> dict:
    """Fine-tune on `task`, score the test split, and write model, plots, results JSON and card (then push).

    `command` is the command line the card and results record (secrets redacted); default: this process's.
    The main process holds the output folder's run lock throughout: a second run into it is refused.
    """
    spec = get_task(task) if isinstance(task, str) else task
    check_arguments(spec, args, training_args)
    with output_dir_lock(training_args.output_dir, enabled=training_args.process_index == 0):
        return _run_task_locked(spec, args, training_args, command)


@dataclass
class ModelSetup:
    """What loading the model leaves beside `run.model`: the teacher, the model's own attention kernel and its
    parameter counts."""

    teacher: Any
    teacher_tokenizer: Any
    attention: str
    parameter_counts: dict[str, int]


def load_task_data(spec: TaskSpec, args, training_args) -> TaskRun:
    """A new `TaskRun` over the task's dataset, its splits cut to the `max_*_samples` arguments."""
    with training_args.main_process_first(desc=f"{spec.name} data"):
        dataset = spec.load_data(args)
        # the slice's shuffle is a cached indices file: written once, by the main process
        train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    return TaskRun(
        spec=spec,
        args=args,
        training_args=training_args,
        dataset=dataset,
        train=train,
        validation=_first(dataset["validation"], args.max_eval_samples),
        test=_first(dataset["test"], args.max_test_samples),
        labels=spec.label_names(dataset, args),
    )


def load_task_model(run: TaskRun) -> ModelSetup:
    """Load the processor and the model (new head seeded, layers kept, PEFT applied) into `run`, and the teacher."""
    spec, args, training_args = run.spec, run.args, run.training_args
    checkpoint = resolve_pretrained_name(args.model_name_or_path)
    run.processor = spec.load_processor(checkpoint, args)
    set_seed(training_args.seed)  # the new head's initial weights
    run.model = spec.load_model(checkpoint, args, run.labels, run.processor)
    if args.keep_every_kth_layer:
        run.model = keep_every_kth_layer(run.model, args.keep_every_kth_layer)
    spec.configure_model(run)
    teacher, teacher_tokenizer = load_task_teacher(spec, run)
    spec.check_teacher(run, teacher, teacher_tokenizer)
    attention = run.model.config._attn_implementation
    if getattr(training_args, "distill_attention_weight", 0) > 0:
        # attention matching reads attention weights, which only eager attention returns: asked for by the flag
        for model in (run.model, teacher):
            model.set_attn_implementation("eager")
    run.model = make_parameter_efficient(run.model, args, task_type=spec.peft_task_type)
    return ModelSetup(teacher, teacher_tokenizer, attention, parameter_counts(run.model))


def write_results_and_card(run: TaskRun, results: dict, command: list[str] | None) -> None:
    """Add the command and arguments to `results`, write the results JSON and the model card, then push."""
    training_args = run.training_args
    results["command"] = redacted_command(command)
    results["arguments"] = asdict(run.args)
    results["training_arguments"] = {
        name: getattr(training_args, name)
        for name in RECORDED_TRAINING_ARGUMENTS
        if hasattr(training_args, name)
    }
    write_text_atomic(run.output_dir / run.spec.results_file, json.dumps(results, indent=2, default=str))
    card_kwargs = card_arguments(run, results)
    run.trainer.create_model_card(**card_kwargs)
    if training_args.push_to_hub:
        run.trainer.push_to_hub(commit_message="End of training")


def _run_task_locked(spec: TaskSpec, args, training_args, command: list[str] | None) -> dict:
    """The body of `run_task`, under the output folder's run lock."""
    started, cpu_started = time.time(), time.process_time()
    resume = resume_checkpoint(args, training_args)
    output_dir = Path(training_args.output_dir)
    run = load_task_data(spec, args, training_args)
    setup = load_task_model(run)

    with training_args.main_process_first(desc=f"{spec.name} features"):
        for split in ("train", "validation", "test"):
            run.features[split] = spec.featurize(run, split, getattr(run, split))
    run.trainer = trainer = build_trainer(run, setup.teacher, setup.teacher_tokenizer)
    memory_before = peak_memory_mib()
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.time() - started
    test_metrics, predictions, test_output = spec.score_test(run)

    # serve with the attention kernel the model came with (attention matching trained it with eager)
    trainer.model.set_attn_implementation(setup.attention)
    adapter_saved = save_model(run)
    if not trainer.is_world_process_zero():
        return {"test": test_metrics}
    trainer.save_state()  # trainer_state.json: the log history the card reads

    results: dict[str, Any] = {
        "task": spec.name,
        "metric": spec.headline_metric,
        "test": test_metrics,
        "steps": trainer.state.global_step,
        "train_seconds": train_seconds,
        "seconds_per_step": train_output.metrics["train_runtime"] / max(trainer.state.global_step, 1),
        "resumed_from": resume,
        "peak_memory_mib": peak_memory_mib(),
        "peak_memory_before_training_mib": memory_before,
        **setup.parameter_counts,
        "split_sizes": {"train": len(run.train), "validation": len(run.validation), "test": len(run.test)},
        "full_test_size": len(run.dataset["test"]),
        "loss_terms": trainer.loss_term_means(),
        "adapter": "adapter/" if adapter_saved else None,
        **spec.extra_results(run, test_output, predictions),
    }
    if args.run_baseline:
        results.update(spec.baseline(run) or {})
    plots = ["loss_curve.png", *spec.write_plots(run, test_output, predictions, test_metrics)]
    # no loss curve when nothing was logged (fewer steps than logging_steps)
    results["plots"] = [name for name in plots if (output_dir / name).is_file()]
    results["wall_seconds"] = time.time() - started
    # CPU seconds of all this process's threads: comparable across runs when other jobs share the machine
    results["cpu_seconds"] = time.process_time() - cpu_started
    write_results_and_card(run, results, command)
    return results


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_story(run: TaskRun, results: dict) -> str:
    """Steps, wall time, and the PEFT / adversarial / distillation settings of the run, for the card."""
    args, training_args = run.args, run.training_args
    parts = [f"{results['steps']:,} steps, {results['wall_seconds']:,.0f} s wall time"]
    if args.lora_r:
        parts.append(f"LoRA rank {args.lora_r} ({results['trainable_parameters']:,} trainable parameters)")
    elif args.peft_config:
        parts.append(
            f"peft config {Path(args.peft_config).name} ({results['trainable_parameters']:,} trainable)"
        )
    if args.train_top_layers:
        parts.append(f"top {args.train_top_layers} encoder layers trained")
    method = getattr(training_args, "adversarial_method", "none")
    if method != "none":
        parts.append(f"{method.upper()} adversarial training (epsilon {training_args.adversarial_epsilon})")
    if getattr(training_args, "teacher_name_or_path", None):
        parts.append(
            f"distilled from `{training_args.teacher_name_or_path}` (alpha {training_args.distill_alpha}, "
            f"T {training_args.distill_temperature})"
        )
    if results.get("resumed_from"):
        parts.append(f"resumed from {Path(str(results['resumed_from'])).name}")
    return "; ".join(parts)


def card_arguments(run: TaskRun, results: dict) -> dict:
    """`create_model_card` keywords: task, dataset, the test metrics and a description with the command."""
    dataset_name, _ = card_dataset(run)
    plots = " ".join(f"![{Path(name).stem.replace('_', ' ')}]({name})" for name in results["plots"])
    description = (
        f"{run.spec.summary(run, results)}.\n\nTraining: {training_story(run, results)}.\n\n"
        f"Command: `{results['command']}`\n\n{plots}"
    )
    metrics = {key: value for key, value in results["test"].items() if isinstance(value, int | float)}
    return dict(
        dataset=dataset_name,
        tasks=run.spec.pipeline_task,
        metrics=metrics,
        dataset_split="test",
        model_description=description,
    )
