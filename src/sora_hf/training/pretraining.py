"""Pretrain Sora through `Trainer`: MLM + NSP on the encoder, BART-style denoising on the decoder."""

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..configuration_sora import SoraConfig
from ..modeling_sora import SoraForPreTraining
from ..tokenization_sora import SoraTokenizer, train_sora_tokenizer
from .collators import DataCollatorForSentenceDistillation, DataCollatorForSoraPretraining
from .plots import LossCurveCallback
from .pretraining_data import prepare_pretraining_dataset
from .sentence_distillation import (
    SentenceTeacher,
    evaluate_sentence_distillation,
    prepare_sentence_distillation_dataset,
    select_distillation_texts,
)


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


@torch.no_grad()
def evaluate_pretraining(
    model: SoraForPreTraining, dataset, collator: DataCollatorForSoraPretraining, batch_size: int = 64
) -> dict[str, float]:
    """Held-out masked-LM accuracy and perplexity, NSP accuracy and the denoising loss."""
    model.eval()
    totals = {"mlm_correct": 0, "mlm_count": 0, "mlm_loss_sum": 0.0, "nsp_correct": 0, "nsp_count": 0}
    denoising_loss_sum, denoising_count = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        batch = {key: value.to(device) for key, value in batch.items()}
        if model.model.decoder is None:
            for key in ("denoising_input_ids", "denoising_attention_mask", "decoder_labels"):
                batch.pop(key, None)
        output = model(**batch)
        labels = batch["labels"][batch["labels"] != -100]
        totals["mlm_correct"] += int((output.prediction_logits.argmax(-1) == labels).sum())
        totals["mlm_count"] += labels.numel()
        totals["mlm_loss_sum"] += float(output.mlm_loss) * labels.numel()
        nsp = batch["next_sentence_label"]
        totals["nsp_correct"] += int((output.seq_relationship_logits.argmax(-1) == nsp).sum())
        totals["nsp_count"] += nsp.numel()
        if output.denoising_loss is not None:
            tokens = int((batch["decoder_labels"] != -100).sum())
            denoising_loss_sum += float(output.denoising_loss) * tokens
            denoising_count += tokens
    mlm_loss = totals["mlm_loss_sum"] / totals["mlm_count"]
    metrics = {
        "mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"],
        "mlm_loss": mlm_loss,
        "mlm_perplexity": math.exp(mlm_loss),
        "nsp_accuracy": totals["nsp_correct"] / totals["nsp_count"],
        "eval_chunks": len(dataset),
    }
    if denoising_count:
        metrics["denoising_loss"] = denoising_loss_sum / denoising_count
        metrics["denoising_perplexity"] = math.exp(metrics["denoising_loss"])
    return metrics


def run_pretraining(args: PretrainingArguments, training_args: TrainingArguments) -> dict:
    """Corpus → tokenizer → packed chunks → `Trainer` → saved model, tokenizer, metrics and loss curve."""
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
    callbacks = [LossCurveCallback()]
    if args.time_budget_minutes:
        callbacks.append(TimeBudgetCallback(args.time_budget_minutes))
    trainer = Trainer(
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
    metrics = evaluate_pretraining(trainer.model, eval_chunks, eval_collator)
    if args.sentence_teacher:
        metrics.update(evaluate_sentence_distillation(trainer.model, eval_dataset, eval_collator))
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
