"""The modality comparison of the multimodal examples: one run per input setting, then a card with their table.

Used by examples/run_easy_vqa.py and examples/run_spoken_commands.py (`--card PATH --compare RUN ...`).
"""

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments

from sora_hf.argument_files import parse_dataclasses
from sora_hf.hub import markdown_table, write_model_card
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.runner import printable_results, run_task
from sora_hf.training.tasks.multimodal import CARD_TRAINING_ARGUMENTS, TASKS, MultimodalArguments


def comparison_table(results: list[dict]) -> str:
    """Markdown table of test accuracy per run (inputs and target), with steps and wall time."""
    header = ["inputs", "target", "label sampling power", "test accuracy", "macro F1", "majority class"]
    rows = [
        [
            result["modalities"],
            result["label_column"],
            f"{result['arguments'].get('label_sampling_power', 0.0):g}",
            f"{result['test']['test_accuracy']:.3f}",
            f"{result['test']['test_macro_f1']:.3f}",
            f"{result['majority_class_test_accuracy']:.3f}",
            result["steps"],
            f"{result['train_seconds'] / 60:.1f} min",
        ]
        for result in results
    ]
    return markdown_table([*header, "steps", "wall time"], rows, align="llrrrrrr")


def write_comparison_card(run_dirs: list[str | Path], card_path: str | Path, description: str) -> str:
    """A model card for the fused run (the last of `run_dirs`) whose description holds the comparison table."""
    results = [json.loads((Path(d) / "multimodal_results.json").read_text()) for d in run_dirs]
    fused = results[-1]
    table = comparison_table(results)
    with tempfile.TemporaryDirectory() as folder:
        card = write_model_card(
            TrainingArguments(
                output_dir=folder,
                use_cpu=True,
                **{k: v for k, v in fused["training_arguments"].items() if k in CARD_TRAINING_ARGUMENTS},
            ),
            folder,
            log_history=fused["log_history"],
            metrics={k: v for k, v in fused["test"].items() if k in ("test_accuracy", "test_macro_f1")},
            model_name=Path(card_path).stem,
            tasks="text-classification",
            dataset=TASKS[fused["task"]]["dataset"],
            dataset_split="test",
            model_description=f"{description}\n\n{table}",
        )
    Path(card_path).write_text(str(card) + "\n")
    return table


@dataclass
class CardArguments:
    """`--card PATH --compare RUN ...`: write a card comparing finished runs instead of training."""

    card: str | None = field(default=None, metadata={"help": "Write a comparison card here and exit."})
    compare: list[str] = field(default_factory=list, metadata={"help": "Finished run folders, fused last."})


def multimodal_main(task: str, card_description: str, argv: list[str] | None = None) -> None:
    """The command line of `examples/run_<task>.py`: train one setting, or write the comparison card."""
    parser = HfArgumentParser((MultimodalArguments, SoraTrainingArguments, CardArguments))
    args, training_args, card_args = parse_dataclasses(parser, sys.argv[1:] if argv is None else argv)
    if card_args.card:
        print(write_comparison_card(card_args.compare, card_args.card, card_description))
        return
    args.task = task
    results = run_task(task, args, training_args)
    print(json.dumps(printable_results(results), indent=2, default=str))
