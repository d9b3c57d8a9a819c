"""Train Sora on a multimodal task (easy-vqa, spoken commands) from text, image or audio alone, or fused.

Every modality setting trains the same model (same config, towers included, same seed and hyperparameters);
`modalities` only decides which inputs the collator hands it, so the accuracies compare the inputs, nothing else.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler
from transformers import AutoConfig

from ...configuration_sora import SoraConfig
from ...data.tasks import load_task_dataset
from ...data.tasks.spoken_commands import read_audio
from ...errors import UserInputError
from ...feature_extraction_sora import SoraFeatureExtractor
from ...image_processing_sora import SoraImageProcessor
from ...modeling_sora_heads import SoraForSequenceClassification
from ...processing_sora import SoraProcessor
from ...tokenization_sora import SoraTokenizer
from ..trainer import SoraTrainer
from .base import RunArguments, TaskRun
from .classification import SequenceClassifierTask

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
class MultimodalArguments(RunArguments):
    """Task, inputs and model sizes of a multimodal run; `SoraTrainingArguments` hold the rest."""

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
    label_sampling_power: float = field(
        default=0.0,
        metadata={
            "help": "Draw training examples with probability proportional to (1 / count of their label) ** power: "
            "0 = plain shuffling, 1 = every label equally often, 0.5 in between. On easy-vqa, where 74%% of the "
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
    tokenizer = SoraTokenizer.from_pretrained(args.tokenizer_name)
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
        checkpoint = args.model_name_or_path
        options = dict(
            **media_config, **label_maps, fusion_layer=args.fusion_layer, fusion_pooling=args.fusion_pooling
        )
        if args.from_scratch:  # the checkpoint's text config with random weights: the no-pretraining control
            return SoraForSequenceClassification(SoraConfig.from_pretrained(checkpoint, **options))
        return SoraForSequenceClassification.from_pretrained(checkpoint, **options)
    if args.from_scratch:
        raise UserInputError(
            "--from_scratch needs --model_name_or_path (whose config is kept); without one the "
            "model is random already."
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


class MultimodalTask(SequenceClassifierTask):
    """Classify (question +) image or audio; `modalities` decides which inputs the collator hands the model."""

    arguments_class = MultimodalArguments
    results_file = "multimodal_results.json"
    passes_raw_columns = (
        True  # the collator reads question, image and features, which the forward does not name
    )
    trainer_class = LabelBalancedTrainer

    @property
    def dataset_name(self) -> str:  # type: ignore[override]
        return TASKS[self.name]["dataset"]

    def load_data(self, args):
        args.task = self.name
        if args.train_file is not None:
            raise UserInputError(f"The {self.name} task reads its built-in data only: drop --train_file.")
        check_arguments(args)
        return load_task_dataset(self.name)

    def label_names(self, dataset, args):
        return dataset["train"].features[check_arguments(args)[1]].names

    def load_processor(self, checkpoint, args):
        return build_processor(args)

    def load_model(self, checkpoint, args, labels, processor):
        return build_model(args, TASKS[self.name]["media"], labels, len(processor.tokenizer))

    def featurize(self, run: TaskRun, split, data):
        media = TASKS[self.name]["media"]
        if media == "audio" and run.args.modalities in ("audio", "fused"):
            return add_log_mels(data, run.processor.feature_extractor)
        return data

    def collator(self, run: TaskRun):
        media, label_column = check_arguments(run.args)
        modalities = run.args.modalities
        return MultimodalCollator(
            run.processor,
            use_text=modalities in ("text", "fused"),
            media=media if modalities in (media, "fused") else None,
            label_column=label_column,
            args=run.args,
        )

    def trainer_kwargs(self, run: TaskRun) -> dict:
        return dict(
            label_column=check_arguments(run.args)[1], label_sampling_power=run.args.label_sampling_power
        )

    def plot_title(self, run: TaskRun, test_metrics: dict) -> str:
        return f"{self.name} ({run.args.modalities}), test accuracy {test_metrics['test_accuracy']:.3f}"

    def baseline(self, run: TaskRun):
        label_column = check_arguments(run.args)[1]
        majority = np.bincount(run.train[label_column]).argmax()
        return {"majority_class_test_accuracy": float(np.mean(np.array(run.test[label_column]) == majority))}

    def extra_results(self, run: TaskRun, output, predictions):
        label_column = check_arguments(run.args)[1]
        return {
            "modalities": run.args.modalities,
            "label_column": label_column,
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "test_accuracy_by_question_kind": accuracy_by_question_kind(
                self.name,
                list(run.test["question"]),
                [run.labels[i] for i in output.label_ids],
                [run.labels[i] for i in predictions],
            )
            if label_column == "answer"
            else None,
            "log_history": run.trainer.state.log_history,
        }

    def summary(self, run: TaskRun, results: dict) -> str:
        test = results["test"]
        start = f"`{run.args.model_name_or_path}`" if run.args.model_name_or_path else "random weights"
        summary = (
            f"{self.name} ({TASKS[self.name]['dataset']}) from {run.args.modalities} inputs, {len(run.labels)} "
            f"classes, trained from {start}: {results['split_sizes']['train']:,} training examples. Test "
            f"({results['split_sizes']['test']:,} examples): accuracy {test['test_accuracy']:.3f}, macro-F1 "
            f"{test['test_macro_f1']:.3f}"
        )
        if "majority_class_test_accuracy" in results:
            summary += f"; majority class {results['majority_class_test_accuracy']:.3f}"
        return summary


class EasyVQATask(MultimodalTask):
    name = "easy_vqa"


class SpokenCommandsTask(MultimodalTask):
    name = "spoken_commands"
