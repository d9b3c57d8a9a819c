"""Pretrain Sora through `SoraTrainer`: MLM + NSP on the encoder, BART-style denoising on the decoder."""

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments

from ..configuration_sora import SoraConfig
from ..modeling_sora import SoraForPreTraining
from ..tokenization_sora import SoraTokenizer, train_sora_tokenizer
from .collators import DataCollatorForSentenceDistillation, DataCollatorForSoraPretraining
from .prediction import predict_statistics
from .pretraining_data import prepare_pretraining_dataset
from .sentence_distillation import (
    SentenceTeacher,
    evaluate_sentence_distillation,
    prepare_sentence_distillation_dataset,
    select_distillation_texts,
)
from .trainer import SoraTrainer

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
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    decoder_layers: int = 2
    with_decoder: bool = field(
        default=True, metadata={"help": "Add the decoder and its denoising objective."}
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per pretraining sequence."})
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
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        decoder_layers=args.decoder_layers,
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


def run_pretraining(args: PretrainingArguments, training_args: TrainingArguments) -> dict:
    """Corpus → tokenizer → packed chunks → `SoraTrainer` → saved model, tokenizer, metrics and loss curve."""
    from ..data.corpus import build_corpus

    if args.token_distillation and not args.sentence_teacher:
        raise ValueError(
            "token_distillation needs a teacher: set --sentence_teacher (e.g. all-MiniLM-L6-v2)."
        )
    if args.freeze_encoder and not args.denoising:
        raise ValueError(
            "freeze_encoder trains only the decoder, whose objective is denoising: drop --denoising false."
        )
    started = time.time()
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(args.corpus_dir, sources=args.sources, max_docs_per_source=args.max_docs_per_source)
    tokenizer = load_or_train_tokenizer(args, corpus)
    factors = parse_upsampling(args.upsample_sources)
    if factors:
        corpus["train"] = upsample_sources(corpus["train"], factors)
    tokenizer.save_pretrained(output_dir)
    chunks = prepare_pretraining_dataset(corpus, tokenizer, max_length=args.max_length)
    eval_chunks = chunks["validation"].select(range(min(args.max_eval_samples, len(chunks["validation"]))))
    train_dataset, eval_dataset, collator_class = chunks["train"], eval_chunks, DataCollatorForSoraPretraining
    sentence_embedding_size = token_distillation_size = None
    if args.sentence_teacher:
        teacher = SentenceTeacher(args.sentence_teacher)
        sentence_embedding_size = teacher.embedding_size
        if args.token_distillation:
            token_distillation_size = teacher.embedding_size
        targets = {
            "token_targets": args.token_distillation,
            "token_teacher_layers": args.token_teacher_layers,
        }
        train_texts = select_distillation_texts(
            corpus["train"], args.sentence_distillation_sources, args.sentence_distillation_other_sentences
        )
        eval_texts = select_distillation_texts(
            corpus["validation"], args.sentence_distillation_sources, args.max_eval_samples
        )
        train_dataset = prepare_sentence_distillation_dataset(
            train_texts, tokenizer, teacher, args.max_length, **targets
        )
        eval_dataset = prepare_sentence_distillation_dataset(
            eval_texts[: args.max_eval_samples], tokenizer, teacher, args.max_length, **targets
        )
        collator_class = DataCollatorForSentenceDistillation
        del teacher

    model = build_model(args, tokenizer, sentence_embedding_size, token_distillation_size)
    if args.freeze_encoder:
        freeze_all_but_decoder(model)
    collator_kwargs = dict(
        mlm_probability=args.mlm_probability,
        whole_word_masking=args.whole_word_masking,
        nsp_probability=args.nsp_probability,
        denoising=args.denoising and model.model.decoder is not None,
    )
    collator = collator_class(tokenizer, **collator_kwargs)
    training_args.remove_unused_columns = False  # the collator needs the `sentences` column
    # SoraTrainer adds the loss-curve plot (loss_curve.png) and composes any extra loss terms the arguments ask for.
    callbacks = [TimeBudgetCallback(args.time_budget_minutes)] if args.time_budget_minutes else []
    trainer = SoraTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(output_dir)

    # Held-out metrics cover every head the model has, including a decoder this run did not train.
    eval_kwargs = {**collator_kwargs, "denoising": model.model.decoder is not None}
    eval_collator = DataCollatorForSoraPretraining(tokenizer, **eval_kwargs, seed=0)
    metrics = evaluate_pretraining(trainer.model, eval_chunks, eval_collator, args=training_args)
    if args.sentence_teacher:
        metrics.update(
            evaluate_sentence_distillation(trainer.model, eval_dataset, eval_collator, args=training_args)
        )
    summary = {
        "train_metrics": train_result.metrics,
        "held_out": metrics,
        "steps": trainer.state.global_step,
        "train_chunks": len(train_dataset),
        "tokens_seen_estimate": trainer.state.global_step
        * training_args.train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
        * args.max_length,
        "wall_time_seconds": time.time() - started,
        "pretraining_arguments": asdict(args),
        "parameters": model.num_parameters(),
        "hardware": f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else "CUDA",
    }
    (output_dir / "pretraining_results.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
