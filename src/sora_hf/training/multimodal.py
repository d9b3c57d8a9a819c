"""Train Sora on a multimodal task (easy-vqa, spoken commands) from text, image or audio alone, or fused.

Every modality setting trains the same model (same config, towers included, same seed and hyperparameters);
`modalities` only decides which inputs the collator hands it, so the accuracies compare the inputs, nothing else.
"""

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler
from transformers import AutoConfig, TrainingArguments

from ..data.tasks import load_task_dataset
from ..data.tasks.spoken_commands import read_audio
from ..feature_extraction_sora import SoraFeatureExtractor
from ..hub import write_model_card
from ..image_processing_sora import SoraImageProcessor
from ..metrics import load_metric
from ..modeling_sora import SoraForSequenceClassification
from ..pretrained import resolve_pretrained_name
from ..processing_sora import SoraProcessor
from ..tokenization_sora import SoraTokenizer
from .finetuning import training_slice
from .plots import plot_confusion_matrix
from .trainer import SoraTrainer

# Per task: the media it has, its default label column, and the card's dataset name.
TASKS = {
    "easy_vqa": {"media": "image", "label_column": "answer", "dataset": "easy-vqa"},
    "spoken_commands": {
        "media": "audio",
        "label_column": "command",
        "dataset": "spoken-commands (espeak-ng)",
    },
}
MODALITIES = ("text", "image", "audio", "fused")
# The TrainingArguments a comparison card reports (see sora_hf.hub.hyperparameters_from_args).
CARD_TRAINING_ARGUMENTS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "seed",
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "weight_decay",
    "bf16",
)


@dataclass
class MultimodalArguments:
    """Task, inputs and model sizes of a multimodal run; `TrainingArguments` hold the rest."""

    task: str = field(default="easy_vqa", metadata={"help": f"One of {sorted(TASKS)}."})
    modalities: str = field(
        default="fused",
        metadata={"help": "Inputs the model sees: text, image (easy_vqa), audio (spoken_commands) or fused."},
    )
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "easy_vqa: answer. spoken_commands: command (audio-only task) or answer (questions)."
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Start the text side from this Sora checkpoint ('sora' = packaged); default: random."
        },
    )
    tokenizer_name: str = field(default="sora", metadata={"help": "Tokenizer (the packaged one by default)."})
    hidden_size: int = 128
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 512
    tower_hidden_size: int = 128
    tower_layers: int = 2
    image_size: int = 64
    patch_size: int = 8
    patch_embedding_type: str = field(
        default="linear",
        metadata={
            "help": "Vision tower patch embeddings: linear (ViT) or convolutional (stride-2 conv stem)."
        },
    )
    num_mel_bins: int = 64
    max_question_length: int = 32
    fusion_layer: int = field(
        default=0,
        metadata={
            "help": "First encoder layer that sees the image/audio tokens (SoraConfig.fusion_layer); 0 = all."
        },
    )
    fusion_pooling: str = field(
        default="bilinear",
        metadata={
            "help": "Classifier summary of a fused input (SoraConfig.fusion_pooling): bilinear (<s> + product of "
            "text and media means) or first_token (<s> alone)."
        },
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    label_sampling_power: float = field(
        default=0.0,
        metadata={
            "help": "Draw training examples with probability proportional to (1 / count of their label) ** power: "
            "0 = plain shuffling, 1 = every label equally often, 0.5 in between. On easy-vqa, where 74% of the "
            "answers are yes/no, 1 makes the model learn the image (colour questions) instead of the yes/no prior."
        },
    )


def check_arguments(args: MultimodalArguments) -> tuple[str, str]:
    """The task's media kind and label column; `ValueError` for an unknown task or modality setting."""
    if args.task not in TASKS:
        raise ValueError(f"Unknown task {args.task!r}; choose one of {sorted(TASKS)}.")
    media = TASKS[args.task]["media"]
    allowed = ("text", media, "fused")
    if args.label_sampling_power < 0:
        raise ValueError(
            f"label_sampling_power must be >= 0 (0 = plain shuffling), got {args.label_sampling_power}."
        )
    if args.modalities not in allowed:
        raise ValueError(
            f"modalities={args.modalities!r} does not fit {args.task}; choose one of {list(allowed)}."
        )
    return media, args.label_column or TASKS[args.task]["label_column"]


def build_processor(args: MultimodalArguments) -> SoraProcessor:
    """Tokenizer, image processor and feature extractor sized for the run's towers."""
    tokenizer = SoraTokenizer.from_pretrained(resolve_pretrained_name(args.tokenizer_name))
    image_processor = SoraImageProcessor(size={"height": args.image_size, "width": args.image_size})
    return SoraProcessor(image_processor, SoraFeatureExtractor(feature_size=args.num_mel_bins), tokenizer)


def build_model(args: MultimodalArguments, media: str, labels: list[str], vocab_size: int):
    """A sequence classifier with the task's tower: random, or the text side from `model_name_or_path`."""
    tower = dict(
        hidden_size=args.tower_hidden_size,
        num_hidden_layers=args.tower_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=4 * args.tower_hidden_size,
    )
    media_config = (
        {
            "vision_config": {
                **tower,
                "image_size": args.image_size,
                "patch_size": args.patch_size,
                "patch_embedding_type": args.patch_embedding_type,
            }
        }
        if media == "image"
        else {"audio_config": {**tower, "num_mel_bins": args.num_mel_bins}}
    )
    label_maps = dict(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    if args.model_name_or_path:
        checkpoint = resolve_pretrained_name(args.model_name_or_path)
        return SoraForSequenceClassification.from_pretrained(
            checkpoint,
            **media_config,
            **label_maps,
            fusion_layer=args.fusion_layer,
            fusion_pooling=args.fusion_pooling,
        )
    config = AutoConfig.for_model(
        "sora",
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=128,
        fusion_layer=args.fusion_layer,
        fusion_pooling=args.fusion_pooling,
        **media_config,
        **label_maps,
    )
    return SoraForSequenceClassification(config)


class MultimodalCollator:
    """Batches rows into the inputs of the chosen modalities (text, image, audio) plus `labels`."""

    def __init__(self, processor: SoraProcessor, use_text: bool, media: str | None, label_column: str, args):
        self.processor = processor
        self.use_text = use_text
        self.media = media
        self.label_column = label_column
        self.max_question_length = args.max_question_length

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if self.use_text:
            text = self.processor.tokenizer(
                [row["question"] for row in rows],
                padding=True,
                truncation=True,
                max_length=self.max_question_length,
                return_tensors="pt",
            )
            batch["input_ids"], batch["attention_mask"] = text["input_ids"], text["attention_mask"]
        if self.media == "image":
            images = [row["image"] for row in rows]
            batch["pixel_values"] = self.processor.image_processor(images, return_tensors="pt")[
                "pixel_values"
            ]
        elif self.media == "audio":
            # Log-mels are computed once per clip (dataset.map); here they are only padded.
            features = [np.asarray(row["input_features"], dtype=np.float32) for row in rows]
            frames = max(f.shape[1] for f in features)
            padded = np.zeros((len(features), features[0].shape[0], frames), dtype=np.float32)
            mask = np.zeros((len(features), frames), dtype=np.int64)
            for i, f in enumerate(features):
                padded[i, :, : f.shape[1]] = f
                mask[i, : f.shape[1]] = 1
            batch["input_features"], batch["feature_attention_mask"] = (
                torch.from_numpy(padded),
                torch.from_numpy(mask),
            )
        batch["labels"] = torch.tensor([row[self.label_column] for row in rows], dtype=torch.long)
        return batch


EASY_VQA_COLOURS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")


def question_kind(task: str, question: str, answer: str) -> str:
    """easy-vqa: colour, shape, yes/no colour|shape (+ negated); spoken commands: device, action, yes/no."""
    if task == "spoken_commands":
        return (
            "device"
            if question.startswith("which")
            else "action"
            if question.startswith("what")
            else "yes/no"
        )
    if answer not in ("yes", "no"):
        return "colour" if answer in EASY_VQA_COLOURS else "shape"
    words = question.rstrip("?").split()
    about = "yes/no colour" if any(colour in words for colour in EASY_VQA_COLOURS) else "yes/no shape"
    return about + (" negated" if "not" in words or "no" in words else "")


def accuracy_by_question_kind(
    task: str, questions: list[str], answers: list[str], predictions: list[str]
) -> dict[str, float]:
    """Accuracy per `question_kind`: where a fused model still falls back on the question's prior."""
    kinds = np.array([question_kind(task, q, a) for q, a in zip(questions, answers)])
    correct = np.array(answers) == np.array(predictions)
    return {kind: float(correct[kinds == kind].mean()) for kind in sorted(set(kinds))}


def label_balanced_sampler(labels: list[int], power: float, seed: int) -> WeightedRandomSampler:
    """Samples `len(labels)` indices with replacement, each with weight (1 / count of its label) ** power."""
    labels = np.asarray(labels)
    weights = (1.0 / np.bincount(labels)[labels]) ** power
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        weights.tolist(), num_samples=len(labels), replacement=True, generator=generator
    )


class LabelBalancedTrainer(SoraTrainer):
    """`SoraTrainer` whose training examples are drawn by `label_balanced_sampler` (power 0: the usual shuffle)."""

    def __init__(self, *args, label_column: str, label_sampling_power: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_column = label_column
        self.label_sampling_power = label_sampling_power

    def _get_train_sampler(self, train_dataset=None):
        if not self.label_sampling_power:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return label_balanced_sampler(dataset[self.label_column], self.label_sampling_power, self.args.seed)


def add_log_mels(dataset, feature_extractor: SoraFeatureExtractor):
    """`input_features` (mel bins x frames, unpadded) for every clip of a spoken-commands split."""

    def featurize(batch):
        audio = [read_audio(path) for path in batch["audio_path"]]
        features = feature_extractor(audio, sampling_rate=feature_extractor.sampling_rate, padding=False)
        return {"input_features": [f.tolist() for f in features["input_features"]]}

    return dataset.map(featurize, batched=True, batch_size=64, desc="log-mel features")


def run_multimodal(args: MultimodalArguments, training_args: TrainingArguments) -> dict:
    """Train one modality setting, evaluate on the test split, save model + processor + results JSON."""
    started = time.time()
    media, label_column = check_arguments(args)
    output_dir = Path(training_args.output_dir)
    # The collator reads raw columns (question, image, features) that the model's forward does not name.
    training_args.remove_unused_columns = False
    dataset = load_task_dataset(args.task)
    labels = dataset["train"].features[label_column].names
    processor = build_processor(args)
    train = training_slice(dataset["train"], args.max_train_samples, training_args.seed)
    validation = training_slice(dataset["validation"], args.max_eval_samples, training_args.seed)
    test = training_slice(dataset["test"], args.max_eval_samples, training_args.seed)
    if media == "audio" and args.modalities in ("audio", "fused"):
        train, validation, test = (
            add_log_mels(split, processor.feature_extractor) for split in (train, validation, test)
        )

    torch.manual_seed(training_args.seed)
    model = build_model(args, media, labels, len(processor.tokenizer))
    collator = MultimodalCollator(
        processor,
        use_text=args.modalities in ("text", "fused"),
        media=media if args.modalities in (media, "fused") else None,
        label_column=label_column,
        args=args,
    )
    accuracy_f1 = load_metric("accuracy_f1")

    def compute_metrics(prediction):
        return accuracy_f1.compute(
            predictions=np.argmax(prediction.predictions, -1), references=prediction.label_ids
        )

    trainer = LabelBalancedTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collator,
        compute_metrics=compute_metrics,
        label_column=label_column,
        label_sampling_power=args.label_sampling_power,
    )
    trainer.train()
    train_seconds = time.time() - started
    test_output = trainer.predict(test, metric_key_prefix="test")
    predictions = np.argmax(test_output.predictions, -1)
    trainer.save_model(output_dir)
    processor.save_pretrained(output_dir)
    plot_confusion_matrix(
        test_output.label_ids.tolist(),
        predictions.tolist(),
        labels,
        output_dir / "confusion_matrix.png",
        title=f"{args.task} ({args.modalities}), test accuracy {test_output.metrics['test_accuracy']:.3f}",
    )
    trainer.create_model_card(
        dataset=TASKS[args.task]["dataset"], tasks="text-classification", dataset_args=args.modalities
    )
    results = {
        "task": args.task,
        "modalities": args.modalities,
        "label_column": label_column,
        "test": test_output.metrics,
        "train_seconds": train_seconds,
        "steps": trainer.state.global_step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "split_sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
        "test_accuracy_by_question_kind": accuracy_by_question_kind(
            args.task,
            list(test["question"]),
            [labels[i] for i in test_output.label_ids],
            [labels[i] for i in predictions],
        )
        if label_column == "answer"
        else None,
        "majority_class_test_accuracy": float(
            np.mean(test_output.label_ids == np.bincount(train[label_column]).argmax())
        ),
        "arguments": asdict(args),
        "training_arguments": {name: getattr(training_args, name) for name in CARD_TRAINING_ARGUMENTS},
        "log_history": trainer.state.log_history,
    }
    (output_dir / "multimodal_results.json").write_text(json.dumps(results, indent=2, default=str))
    return results


def comparison_table(results: list[dict]) -> str:
    """Markdown table of test accuracy per run (inputs and target), with steps and wall time."""
    lines = [
        "| inputs | target | label sampling power | test accuracy | macro F1 | majority class | steps | wall time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        test = result["test"]
        lines.append(
            f"| {result['modalities']} | {result['label_column']} | "
            f"{result['arguments'].get('label_sampling_power', 0.0):g} | {test['test_accuracy']:.3f} | "
            f"{test['test_macro_f1']:.3f} | {result['majority_class_test_accuracy']:.3f} | {result['steps']} | "
            f"{result['train_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def write_comparison_card(run_dirs: list[str | Path], card_path: str | Path, description: str) -> str:
    """A model card for the fused run (the last of `run_dirs`) whose description holds the comparison table."""
    results = [json.loads((Path(d) / "multimodal_results.json").read_text()) for d in run_dirs]
    fused = results[-1]
    table = comparison_table(results)
    with tempfile.TemporaryDirectory() as folder:
        card = write_model_card(
            TrainingArguments(output_dir=folder, use_cpu=True, **fused["training_arguments"]),
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
    from transformers import HfArgumentParser

    parser = HfArgumentParser((MultimodalArguments, TrainingArguments, CardArguments))
    args, training_args, card_args = parser.parse_args_into_dataclasses(args=argv)
    if card_args.card:
        print(write_comparison_card(card_args.compare, card_args.card, card_description))
        return
    args.task = task
    results = run_multimodal(args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k not in ("arguments", "log_history")}, indent=2))
