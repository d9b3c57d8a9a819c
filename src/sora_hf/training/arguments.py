"""`SoraTrainingArguments`: `TrainingArguments` plus the settings of `SoraTrainer`'s extra loss terms."""

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments, TrainingArguments

from ..embedding_perturbation import NORMS
from ..precision import check_training_bf16
from ..robustness.evaluation import ROBUSTNESS_ATTACKS, check_robustness_arguments
from .losses.adversarial_terms import ADVERSARIAL_METHODS, check_adversarial_arguments
from .losses.distillation_terms import check_distillation_arguments


@dataclass
class SoraTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the adversarial and distillation settings that `SoraTrainer` composes."""

    # --- distillation (losses/distillation.py, hidden_state_distillation.py, attention_distillation.py) ---
    teacher_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Frozen teacher (any transformers classifier, the student's labels); enables distillation."
        },
    )
    distill_alpha: float = field(
        default=0.5, metadata={"help": "Soft-label (KL) weight; the hard-label loss gets 1 - alpha."}
    )
    distill_temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature T (the KL is scaled by T²)."}
    )
    distill_hidden_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of hidden-state matching (learned projection when widths differ)."},
    )
    distill_hidden_layer_map: str | None = field(
        default=None,
        metadata={
            "help": "student:teacher hidden-state pairs, e.g. '2:3,4:6' (0 = embeddings); default: spread."
        },
    )
    distill_hidden_pooling: str = field(
        default="token",
        metadata={"help": "'token' (shared tokenizer only), or 'mean'/'first' (one vector per sequence)."},
    )
    distill_attention_weight: float = field(
        default=0.0, metadata={"help": "Weight of attention-map matching (shared tokenizer, equal heads)."}
    )
    distill_attention_layer_map: str | None = field(
        default=None, metadata={"help": "student:teacher attention layer pairs, 1-based; default: spread."}
    )
    distill_use_cached_logits: bool = field(
        default=False,
        metadata={
            "help": "Read the 'teacher_logits' column (cache_teacher_logits): no teacher forward in training."
        },
    )

    # --- adversarial training (losses/adversarial_base.py, fgm.py, pgd.py, freelb.py) ---
    adversarial_method: str = field(
        default="none",
        metadata={
            "help": "Perturb the input embeddings: none, fgm, pgd or freelb.",
            "choices": ADVERSARIAL_METHODS,
        },
    )
    adversarial_epsilon: float = field(
        default=1.0,
        metadata={"help": "Radius of the perturbation (per example; l2 over the whole sequence)."},
    )
    adversarial_step_size: float | None = field(
        default=None, metadata={"help": "PGD/FreeLB ascent step; default 2.5 * epsilon / steps."}
    )
    adversarial_steps: int = field(default=3, metadata={"help": "PGD/FreeLB ascent steps K (FGM takes one)."})
    adversarial_norm: str = field(
        default="l2", metadata={"help": "Norm of the perturbation ball: l2 or linf.", "choices": NORMS}
    )
    adversarial_weight: float = field(default=1.0, metadata={"help": "Weight of the adversarial loss term."})
    adversarial_start_step: int = field(
        default=0,
        metadata={"help": "Optimizer step from which the adversarial term is added (plain before)."},
    )

    # --- robustness evaluation (sora_hf.robustness), reported by evaluate() and predict() ---
    robustness_attacks: list[str] = field(
        default_factory=list,
        metadata={"help": f"Attacks to report: any of {', '.join(ROBUSTNESS_ATTACKS)} (none: skipped)."},
    )
    robustness_epsilon: float = field(default=1.0, metadata={"help": "Radius of the embedding PGD attack."})
    robustness_steps: int = field(default=10, metadata={"help": "Steps of the embedding PGD attack."})
    robustness_norm: str = field(
        default="l2", metadata={"help": "Norm of the embedding attack.", "choices": NORMS}
    )
    robustness_max_edit_ratio: float = field(
        default=0.2,
        metadata={"help": "Word attack budget: share of a sentence's words that may change (>= 1)."},
    )
    robustness_max_samples: int | None = field(
        default=1000, metadata={"help": "Attack a fixed random sample (seed 0) of N examples (None: all)."}
    )
    robustness_text_column: str = field(
        default="text", metadata={"help": "Raw-text column of the evaluated set."}
    )
    robustness_max_length: int = field(
        default=128, metadata={"help": "Tokenizer truncation for the attacks."}
    )

    def __getstate__(self) -> dict:
        """Pickled (`training_args.bin`, which checkpoints and Trainer's pushes carry) without the Hub token."""
        state = dict(self.__dict__)
        state["hub_token"] = None
        return state

    def __post_init__(self):
        super().__post_init__()
        check_training_bf16(self)  # bf16 on a CPU that emulates it -> fp32 (SORA_FORCE_BF16=1 keeps it)
        check_distillation_arguments(self)
        check_adversarial_arguments(self)
        check_robustness_arguments(self)


@dataclass
class SoraSeq2SeqTrainingArguments(SoraTrainingArguments, Seq2SeqTrainingArguments):
    """`SoraTrainingArguments` plus `Seq2SeqTrainingArguments`' generation settings (`predict_with_generate`, ...)."""
