"""Pretrain Sora through `SoraTrainer`: MLM + NSP on the encoder, BART-style denoising on the decoder."""

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments, set_seed

from ..atomic_files import write_text_atomic
from ..configuration_sora import SoraConfig
from ..errors import UserInputError
from ..modeling_sora_pretraining import SoraForPreTraining
from ..tokenization_sora import SoraTokenizer, train_sora_tokenizer
from .checkpoints import output_dir_lock, resolve_resume_checkpoint
from .collators import DataCollatorForSentenceDistillation, DataCollatorForSoraPretraining
from .model_sizes import SIZE_FIELDS, batch_lengths, pretraining_step_flops, resolve_model_size
from .prediction import predict_statistics
from .pretraining_data import prepare_pretraining_dataset
from .pretraining_stream import PretrainingStream
from .pretraining_trainer import PretrainingTrainer, ThroughputCallback
from .sentence_distillation import (
    SentenceTeacher,
    evaluate_sentence_distillation,
    prepare_sentence_distillation_dataset,
    select_distillation_texts,
)

# The decoder's inputs and targets in a pretraining batch (absent, or dropped, for an encoder-only model).
DENOISING_KEYS = ("denoising_input_ids", "denoising_attention_mask", "decoder_labels")


@dataclass
class PretrainingArguments:
    """What to pretrain on and which Sora to build; `TrainingArguments` hold the optimisation settings."""

    corpus_dir: str | None = field(
        default=None, metadata={"help": "Saved corpus (default: the corpus cache)."}
    )
    sources: list[str] | None = field(
        default=None, metadata={"help": "Corpus sources to use (default: all)."}
    )
    max_docs_per_source: int | None = field(
        default=None, metadata={"help": "Cap per source, for quick runs."}
    )
    upsample_sources: list[str] | None = field(
        default=None,
        metadata={"help": "SOURCE=N: repeat a source's training documents N times (e.g. tweets=4)."},
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Existing tokenizer; when absent one is trained on the corpus."}
    )
    vocab_size: int = field(default=12000, metadata={"help": "Vocabulary size of a newly trained tokenizer."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue pretraining this checkpoint instead of a new model."}
    )
    model_size: str | None = field(
        default=None,
        metadata={
            "help": "Size preset of a new model: small (the default; the packaged sora's shape: hidden 256, 4 layers, "
            "4 heads, intermediate 1024, 2 decoder layers), base (768, 12, 12, 3072, 6) or large (1024, 24, 16, "
            "4096, 12). --hidden_size and the other size flags override single fields of the preset."
        },
    )
    hidden_size: int | None = field(default=None, metadata={"help": "Overrides the preset's hidden size."})
    num_hidden_layers: int | None = field(
        default=None, metadata={"help": "Overrides the preset's encoder layers."}
    )
    num_attention_heads: int | None = field(
        default=None, metadata={"help": "Overrides the preset's attention heads (encoder and decoder)."}
    )
    intermediate_size: int | None = field(
        default=None, metadata={"help": "Overrides the preset's MLP size (encoder and decoder)."}
    )
    decoder_layers: int | None = field(
        default=None, metadata={"help": "Overrides the preset's decoder layers."}
    )
    with_decoder: bool = field(
        default=True, metadata={"help": "Add the decoder and its denoising objective."}
    )
    max_length: int = field(
        default=128,
        metadata={
            "help": "Tokens per pretraining sequence: each document's sentences are packed into rows this long."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the training documents as a streaming datasets.IterableDataset, tokenized and packed on the "
            "fly: each process reads its own shards, and a resumed run continues at the exact chunk. Needs "
            "--max_steps; data passes repeat, reshuffled, until then."
        },
    )
    streaming_num_shards: int = field(
        default=64,
        metadata={"help": "With --streaming: shards of the corpus, a multiple of the number of processes."},
    )
    throughput_warmup_steps: int = field(
        default=5,
        metadata={
            "help": "Optimizer steps left out of the measured training throughput (pretraining_results.json), for "
            "warm-up, compilation and allocator growth."
        },
    )
    mlm_probability: float = 0.15
    whole_word_masking: bool = False
    nsp_probability: float = 0.5
    max_eval_samples: int = field(default=2000, metadata={"help": "Held-out chunks used for evaluation."})
    time_budget_minutes: float | None = field(
        default=None, metadata={"help": "Stop training (and save) once this much wall time has passed."}
    )
    denoising: bool = field(
        default=True,
        metadata={
            "help": "Train the decoder's denoising objective when the model has a decoder (false: encoder only)."
        },
    )
    sentence_teacher: str | None = field(
        default=None,
        metadata={
            "help": "Distil this sentence encoder's embeddings into the pooled <s> vector (all-MiniLM-L6-v2 or a "
            "local folder): training then reads single texts (MLM, denoising and distillation), not sentence pairs."
        },
    )
    sentence_distillation_sources: list[str] = field(
        default_factory=lambda: ["tweets"],
        metadata={"help": "Sources whose every document is a distillation text (with --sentence_teacher)."},
    )
    sentence_distillation_other_sentences: int = field(
        default=40000,
        metadata={"help": "Plus one sentence from this many random documents of the other sources."},
    )
    token_distillation: bool = field(
        default=False,
        metadata={
            "help": "With --sentence_teacher: also regress every token's final state onto the teacher's states of "
            "the same characters (its top --token_teacher_layers layers, layer-normalised and averaged)."
        },
    )
    token_teacher_layers: int = field(
        default=3, metadata={"help": "How many of the teacher's top layers make a token target."}
    )
    classifier_pooling: str | None = field(
        default=None,
        metadata={
            "help": "Set SoraConfig.classifier_pooling (first_token or mean) of the model pretrained: the pretraining "
            "pooler (NSP, sentence distillation) then reads what the sequence classifier will read."
        },
    )
    freeze_encoder: bool = field(
        default=False,
        metadata={
            "help": "Train only the decoder's own layers (encoder, embeddings and encoder heads stay fixed): re-fits "
            "a decoder after encoder-only phases without moving the encoder."
        },
    )


class TimeBudgetCallback(TrainerCallback):
    """Stop training once a wall-clock budget is spent, so a run fits the time it was given."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True
            control.should_save = True


def parse_upsampling(specs: list[str] | None) -> dict[str, int]:
    """`["tweets=4"]` → `{"tweets": 4}`, with a clear error for anything else."""
    factors = {}
    for spec in specs or []:
        name, _, factor = spec.partition("=")
        if not factor.isdigit() or int(factor) < 1:
            raise ValueError(
                f"upsample_sources entries look like SOURCE=N with N >= 1 (e.g. tweets=4); got {spec!r}."
            )
        factors[name] = int(factor)
    return factors


def upsample_sources(train, factors: dict[str, int]):
    """The training documents with each named source's documents repeated `factor` times in all."""
    import datasets

    missing = [name for name in factors if name not in set(train.unique("source"))]
    if missing:
        raise ValueError(f"upsample_sources names {missing}, which the corpus does not contain.")
    extra = [
        train.filter(lambda source, name=name: source == name, input_columns="source").flatten_indices()
        for name, factor in factors.items()
        for _ in range(factor - 1)
    ]
    return datasets.concatenate_datasets([train, *extra]) if extra else train


def load_or_train_tokenizer(args: PretrainingArguments, corpus) -> SoraTokenizer:
    """The tokenizer named in `args`, or a new one trained on the corpus's training split."""
    if args.tokenizer_name_or_path:
        return SoraTokenizer.from_pretrained(args.tokenizer_name_or_path)
    return train_sora_tokenizer(
        corpus["train"], vocab_size=args.vocab_size, text_column="text", show_progress=True
    )


def model_sizes(args: PretrainingArguments) -> dict[str, int]:
    """The sizes of a new model: the `--model_size` preset with every size flag given applied over it."""
    overrides = {name: getattr(args, name) for name in SIZE_FIELDS}
    given = (["--model_size"] if args.model_size else []) + [
        f"--{name}" for name, value in overrides.items() if value is not None
    ]
    if args.model_name_or_path and given:
        raise UserInputError(
            f"{', '.join(given)} size a new model, but --model_name_or_path {args.model_name_or_path!r} continues a "
            "checkpoint with its own sizes: drop one or the other."
        )
    if not args.with_decoder and args.decoder_layers is not None:
        raise UserInputError(
            f"--decoder_layers {args.decoder_layers} sizes a decoder, but --with_decoder false builds none: drop one "
            "or the other."
        )
    return resolve_model_size(args.model_size, overrides)


def build_model(
    args: PretrainingArguments,
    tokenizer: SoraTokenizer,
    sentence_embedding_size: int | None = None,
    token_distillation_size: int | None = None,
) -> SoraForPreTraining:
    """A new Sora sized by `args` (special-token ids from the tokenizer), or the checkpoint to continue; with
    `sentence_embedding_size` / `token_distillation_size`, one with distillation heads of those sizes."""
    heads = {
        "sentence_embedding_size": sentence_embedding_size,
        "token_distillation_size": token_distillation_size,
    }
    heads = {name: size for name, size in heads.items() if size}
    if args.classifier_pooling:
        heads["classifier_pooling"] = args.classifier_pooling
    if args.model_name_or_path:
        return SoraForPreTraining.from_pretrained(args.model_name_or_path, **heads)
    config = SoraConfig(
        vocab_size=len(tokenizer),
        **model_sizes(args),
        is_encoder_decoder=args.with_decoder,
        max_position_embeddings=max(512, args.max_length),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        cls_token_id=tokenizer.cls_token_id,
        mask_token_id=tokenizer.mask_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        **heads,
    )
    return SoraForPreTraining(config)


def freeze_all_but_decoder(model: SoraForPreTraining) -> None:
    """Leave only the decoder's own parameters trainable (the shared embeddings stay fixed with the encoder)."""
    if model.model.decoder is None:
        raise ValueError(
            "freeze_encoder trains only the decoder, but this model has none: continue an encoder-decoder "
            "checkpoint (is_encoder_decoder=True) or drop --freeze_encoder."
        )
    shared = {id(parameter) for parameter in model.get_input_embeddings().parameters()}
    decoder = {id(parameter) for parameter in model.model.decoder.parameters()} - shared
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in decoder)


def pretraining_statistics(
    model: SoraForPreTraining, batch: dict[str, torch.Tensor], denoising: bool = True
) -> torch.Tensor:
    """Per example of a `DataCollatorForSoraPretraining` batch: masked-LM correct predictions, masked tokens and
    summed cross-entropy, next-sentence correctness, and (with `denoising`) the summed denoising cross-entropy and
    its target tokens."""
    if not denoising:
        for key in DENOISING_KEYS:
            batch.pop(key, None)
    output = model(**batch)
    labels = batch["labels"]
    masked = labels != -100
    targets = labels[masked]
    logits = output.prediction_logits.float()
    if logits.dim() == 3:  # a model without sparse prediction: logits at every position
        logits = logits[masked]
    rows = masked.nonzero()[:, 0]  # the example of each masked position, in the order of the sparse logits

    def per_example(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(labels.shape[0], device=values.device).index_add_(0, rows, values.float())

    columns = [
        per_example(logits.argmax(-1) == targets),
        masked.sum(1),
        per_example(torch.nn.functional.cross_entropy(logits, targets, reduction="none")),
        output.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"],
    ]
    if output.denoising_logits is not None:
        decoder_labels = batch["decoder_labels"]
        token_losses = torch.nn.functional.cross_entropy(
            output.denoising_logits.float().transpose(1, 2), decoder_labels, reduction="none"
        )  # 0 at the ignored (-100) positions
        columns += [token_losses.sum(1), (decoder_labels != -100).sum(1)]
    return torch.stack([column.float() for column in columns], dim=1)


def evaluate_pretraining(
    model: SoraForPreTraining,
    dataset,
    collator: DataCollatorForSoraPretraining,
    batch_size: int = 64,
    args: TrainingArguments | None = None,
) -> dict[str, float]:
    """Held-out masked-LM accuracy and perplexity, NSP accuracy and the denoising loss, through `Trainer.predict`
    (`args`: a run's `TrainingArguments`, for its device, precision and processes)."""
    statistics = partial(pretraining_statistics, denoising=model.model.decoder is not None)
    rows = predict_statistics(model, dataset, collator, statistics, batch_size, args)
    totals = rows.sum(0, dtype=np.float64)
    mlm_correct, mlm_count, mlm_loss_sum, nsp_correct = totals[:4]
    mlm_loss = float(mlm_loss_sum / mlm_count)
    metrics = {
        "mlm_accuracy": float(mlm_correct / mlm_count),
        "mlm_loss": mlm_loss,
        "mlm_perplexity": math.exp(mlm_loss),
        "nsp_accuracy": float(nsp_correct / len(dataset)),
        "eval_chunks": len(dataset),
    }
    if len(totals) > 4 and totals[5]:
        metrics["denoising_loss"] = float(totals[4] / totals[5])
        metrics["denoising_perplexity"] = math.exp(metrics["denoising_loss"])
    return metrics


def check_streaming_arguments(args: PretrainingArguments, training_args: TrainingArguments) -> None:
    """Refuse the settings a streaming run cannot honour, before any work."""
    if not args.streaming:
        return
    if args.sentence_teacher:
        raise UserInputError(
            "--streaming reads documents for MLM, NSP and denoising; --sentence_teacher embeds its texts with the "
            "teacher before training: drop --streaming for a distillation run."
        )
    if training_args.max_steps is None or training_args.max_steps <= 0:
        raise UserInputError(
            "--streaming has no epochs (passes over the data repeat until training stops): set --max_steps."
        )
    if training_args.dataloader_num_workers:
        raise UserInputError(
            f"--dataloader_num_workers {training_args.dataloader_num_workers}: with --streaming the stream runs in "
            "the training process, which records its position for exact resumption; use 0."
        )
    if getattr(training_args, "train_sampling_strategy", "random") == "group_by_length":
        raise UserInputError(
            "--train_sampling_strategy group_by_length needs every chunk's length up front, which a stream does not "
            "have: drop it with --streaming (sequences are packed to --max_length instead)."
        )
    accelerator_config = training_args.accelerator_config
    if accelerator_config is not None and (
        accelerator_config.dispatch_batches or accelerator_config.split_batches
    ):
        raise UserInputError(
            "accelerator_config dispatch_batches / split_batches: with --streaming every process reads its own "
            "shards and batches of --per_device_train_batch_size; leave both unset."
        )


def estimate_flops_per_token(
    model: SoraForPreTraining, dataset, collator, batches: int = 4, batch_size: int = 32
):
    """Model FLOPs of training on one token (`pretraining_step_flops` per real input token), on a few batches."""
    flops = tokens = 0.0
    denoising = model.model.decoder is not None and collator.denoising
    for start in range(0, min(len(dataset), batches * batch_size), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        if not denoising:
            for key in DENOISING_KEYS:
                batch.pop(key, None)
        lengths = batch_lengths(batch)
        flops += pretraining_step_flops(model.config, **lengths)
        tokens += sum(lengths["encoder_lengths"])
    return flops / tokens if tokens else None


def run_pretraining(args: PretrainingArguments, training_args: TrainingArguments) -> dict:
    """Corpus → tokenizer → packed chunks (or a stream of them) → `SoraTrainer` → saved model, tokenizer, metrics,
    throughput and loss curve."""
    check_pretraining_arguments(args, training_args)
    with output_dir_lock(training_args.output_dir, enabled=training_args.process_index == 0):
        return _run_pretraining_locked(args, training_args)


def check_pretraining_arguments(args: PretrainingArguments, training_args: TrainingArguments) -> None:
    """Refuse conflicting or invalid arguments before any folder, corpus or model is made."""
    if args.token_distillation and not args.sentence_teacher:
        raise ValueError(
            "token_distillation needs a teacher: set --sentence_teacher (e.g. all-MiniLM-L6-v2)."
        )
    if args.freeze_encoder and not args.denoising:
        raise ValueError(
            "freeze_encoder trains only the decoder, whose objective is denoising: drop --denoising false."
        )
    model_sizes(args)  # a conflicting or invalid size fails here, before the corpus is built
    check_streaming_arguments(args, training_args)


@dataclass
class PretrainingData:
    """What a pretraining run reads: the corpus, its tokenizer, the training and evaluation sets and their
    collator class; `eval_chunks` are the held-out packed chunks every run's MLM/NSP metrics read."""

    corpus: Any
    tokenizer: SoraTokenizer
    train_dataset: Any
    eval_dataset: Any
    eval_chunks: Any
    collator_class: type = DataCollatorForSoraPretraining
    sentence_embedding_size: int | None = None
    token_distillation_size: int | None = None


@dataclass
class PretrainingSetup:
    """The model a pretraining run trains, its trainer with the throughput callback, and the collator settings."""

    model: SoraForPreTraining
    trainer: PretrainingTrainer
    throughput: ThroughputCallback
    collator_kwargs: dict[str, Any]


def prepare_pretraining_data(
    args: PretrainingArguments, training_args: TrainingArguments, output_dir: Path
) -> PretrainingData:
    """Build the corpus, load or train (and save) the tokenizer, and pack the training and held-out chunks."""
    from ..data.corpus import build_corpus

    # One process builds (or loads) the corpus, trains the tokenizer and writes the datasets caches; the others wait
    # and then load what it made, so every process holds the same tokenizer.
    with training_args.main_process_first(local=training_args.save_on_each_node, desc="Preparing the corpus"):
        corpus = build_corpus(
            args.corpus_dir, sources=args.sources, max_docs_per_source=args.max_docs_per_source
        )
        if training_args.should_save or args.tokenizer_name_or_path:
            tokenizer = load_or_train_tokenizer(args, corpus)
        else:  # the tokenizer the main process trained and saved
            tokenizer = SoraTokenizer.from_pretrained(output_dir)
        if training_args.should_save:
            tokenizer.save_pretrained(output_dir)
        factors = parse_upsampling(args.upsample_sources)
        if factors:
            corpus["train"] = upsample_sources(corpus["train"], factors)
        # The first documents give the first chunks: packing only as many as evaluation reads changes nothing.
        validation = corpus["validation"].select(range(min(args.max_eval_samples, len(corpus["validation"]))))
        eval_chunks = prepare_pretraining_dataset(validation, tokenizer, max_length=args.max_length)
        eval_chunks = eval_chunks.select(range(min(args.max_eval_samples, len(eval_chunks))))
        if args.streaming:
            train_dataset = PretrainingStream(
                corpus["train"],
                tokenizer,
                max_length=args.max_length,
                batch_size=training_args.per_device_train_batch_size,
                num_shards=args.streaming_num_shards,
                rank=training_args.process_index,
                world_size=training_args.world_size,
                seed=training_args.data_seed if training_args.data_seed is not None else training_args.seed,
            )
        else:
            train_dataset = prepare_pretraining_dataset(
                corpus["train"], tokenizer, max_length=args.max_length
            )
    return PretrainingData(
        corpus=corpus,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        eval_dataset=eval_chunks,
        eval_chunks=eval_chunks,
    )


def use_sentence_distillation(args: PretrainingArguments, data: PretrainingData) -> None:
    """Replace `data`'s training and evaluation sets with texts embedded by `--sentence_teacher`."""
    teacher = SentenceTeacher(args.sentence_teacher)
    data.sentence_embedding_size = teacher.embedding_size
    if args.token_distillation:
        data.token_distillation_size = teacher.embedding_size
    targets = {
        "token_targets": args.token_distillation,
        "token_teacher_layers": args.token_teacher_layers,
    }
    train_texts = select_distillation_texts(
        data.corpus["train"], args.sentence_distillation_sources, args.sentence_distillation_other_sentences
    )
    eval_texts = select_distillation_texts(
        data.corpus["validation"], args.sentence_distillation_sources, args.max_eval_samples
    )
    data.train_dataset = prepare_sentence_distillation_dataset(
        train_texts, data.tokenizer, teacher, args.max_length, **targets
    )
    data.eval_dataset = prepare_sentence_distillation_dataset(
        eval_texts[: args.max_eval_samples], data.tokenizer, teacher, args.max_length, **targets
    )
    data.collator_class = DataCollatorForSentenceDistillation


def build_pretraining_trainer(
    args: PretrainingArguments, training_args: TrainingArguments, data: PretrainingData
) -> PretrainingSetup:
    """Seed and build the model, its collator and the `PretrainingTrainer` with the time and throughput callbacks."""
    # a new model's initial weights follow --seed (Trainer seeds only after the model exists)
    set_seed(training_args.seed)
    model = build_model(args, data.tokenizer, data.sentence_embedding_size, data.token_distillation_size)
    if args.freeze_encoder:
        freeze_all_but_decoder(model)
    collator_kwargs = dict(
        mlm_probability=args.mlm_probability,
        whole_word_masking=args.whole_word_masking,
        nsp_probability=args.nsp_probability,
        denoising=args.denoising and model.model.decoder is not None,
    )
    collator = data.collator_class(data.tokenizer, **collator_kwargs)
    training_args.remove_unused_columns = False  # the collator needs the `sentences` column
    # SoraTrainer adds the loss-curve plot (loss_curve.png) and composes any extra loss terms the arguments ask for.
    callbacks = [TimeBudgetCallback(args.time_budget_minutes)] if args.time_budget_minutes else []
    trainer = PretrainingTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train_dataset,
        eval_dataset=data.eval_dataset,
        data_collator=collator,
        processing_class=data.tokenizer,
        callbacks=callbacks,
    )
    throughput = ThroughputCallback(trainer, args.throughput_warmup_steps)
    trainer.add_callback(throughput)
    return PretrainingSetup(model, trainer, throughput, collator_kwargs)


def evaluate_pretrained(
    args: PretrainingArguments,
    training_args: TrainingArguments,
    data: PretrainingData,
    setup: PretrainingSetup,
) -> dict[str, float]:
    """Held-out metrics of the trained model, on every head it has (a decoder this run did not train included)."""
    eval_kwargs = {**setup.collator_kwargs, "denoising": setup.model.model.decoder is not None}
    eval_collator = DataCollatorForSoraPretraining(data.tokenizer, **eval_kwargs, seed=0)
    trained = setup.trainer.model
    metrics = evaluate_pretraining(trained, data.eval_chunks, eval_collator, args=training_args)
    if args.sentence_teacher:
        metrics.update(
            evaluate_sentence_distillation(trained, data.eval_dataset, eval_collator, args=training_args)
        )
    return metrics


def _run_pretraining_locked(args: PretrainingArguments, training_args: TrainingArguments) -> dict:
    """The body of `run_pretraining`, under the output folder's run lock."""
    started = time.time()
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_pretraining_data(args, training_args, output_dir)
    if args.sentence_teacher:
        use_sentence_distillation(args, data)
    setup = build_pretraining_trainer(args, training_args, data)
    model, trainer = setup.model, setup.trainer
    # `true` means the newest complete checkpoint (one a killed run left half-written is skipped, and named)
    resume = resolve_resume_checkpoint(output_dir, training_args.resume_from_checkpoint)
    train_result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(output_dir)

    metrics = evaluate_pretrained(args, training_args, data, setup)
    flops_collator = DataCollatorForSoraPretraining(data.tokenizer, **setup.collator_kwargs, seed=0)
    flops_per_token = estimate_flops_per_token(model, data.eval_chunks, flops_collator)
    measured = dict(setup.throughput.measured)
    if "tokens_per_second" in measured and flops_per_token:
        measured["model_flops_per_second"] = measured["tokens_per_second"] * flops_per_token
    summary = {
        "train_metrics": train_result.metrics,
        "held_out": metrics,
        "steps": trainer.state.global_step,
        "train_chunks": None if args.streaming else len(data.train_dataset),
        "tokens_seen_estimate": trainer.state.global_step
        * training_args.train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
        * args.max_length,
        "wall_time_seconds": time.time() - started,
        "pretraining_arguments": asdict(args),
        "model_shape": {name: getattr(model.config, name) for name in (*SIZE_FIELDS, "vocab_size")},
        "parameters": model.num_parameters(),
        "model_flops_per_token": flops_per_token,
        "throughput": measured,
        "processes": training_args.world_size,
        "hardware": f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else "CUDA",
    }
    if trainer.is_world_process_zero():
        write_text_atomic(output_dir / "pretraining_results.json", json.dumps(summary, indent=2, default=str))
    return summary
