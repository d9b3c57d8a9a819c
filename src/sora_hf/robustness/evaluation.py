"""Both attacks on a labelled text set, as flat metrics (what `SoraTrainer.evaluate` reports)."""

from collections.abc import Sequence

from torch import nn

from ..embedding_perturbation import check_adversarial_settings
from .common import check_texts_and_labels, predict_probabilities
from .embedding_attack import embedding_attack
from .word_attack import word_attack

ROBUSTNESS_ATTACKS = ("embedding", "word")


def check_robustness_arguments(args) -> None:
    """`ValueError` naming the `robustness_*` argument of a `SoraTrainingArguments` that is wrong."""
    unknown = [attack for attack in args.robustness_attacks if attack not in ROBUSTNESS_ATTACKS]
    if unknown:
        raise ValueError(
            f"robustness_attacks: unknown attack(s) {unknown}; choose from {', '.join(ROBUSTNESS_ATTACKS)}."
        )
    check_adversarial_settings(
        args.robustness_epsilon, args.robustness_steps, args.robustness_norm, prefix="robustness_"
    )
    if not 0 < args.robustness_max_edit_ratio <= 1:
        raise ValueError(
            f"robustness_max_edit_ratio must be in (0, 1] (got {args.robustness_max_edit_ratio})."
        )
    if args.robustness_max_samples is not None and args.robustness_max_samples <= 0:
        raise ValueError(
            f"robustness_max_samples must be > 0 or None for all (got {args.robustness_max_samples})."
        )


def robustness_metrics(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[int],
    attacks: Sequence[str] = ROBUSTNESS_ATTACKS,
    epsilon: float = 1.0,
    steps: int = 10,
    norm: str = "l2",
    max_edit_ratio: float = 0.2,
    batch_size: int = 64,
    max_length: int = 128,
) -> dict[str, float]:
    """`robust_clean_accuracy` (the attacked texts, no attack) and, per attack, `robust_accuracy_<attack>` and
    `attack_success_rate_<attack>`."""
    check_texts_and_labels(texts, labels)
    unknown = [attack for attack in attacks if attack not in ROBUSTNESS_ATTACKS]
    if unknown:
        raise ValueError(
            f"attacks: unknown attack(s) {unknown}; choose from {', '.join(ROBUSTNESS_ATTACKS)}."
        )
    probabilities = predict_probabilities(
        model, tokenizer, texts, batch_size=batch_size, max_length=max_length
    )
    metrics = {"robust_clean_accuracy": float((probabilities.argmax(-1) == list(labels)).mean())}
    if "embedding" in attacks:
        result = embedding_attack(
            model,
            tokenizer,
            texts,
            labels,
            epsilon,
            steps,
            norm=norm,
            batch_size=batch_size,
            max_length=max_length,
        )
        metrics.update(result.metrics())
    if "word" in attacks:
        result = word_attack(
            model, tokenizer, texts, labels, max_edit_ratio, batch_size=2 * batch_size, max_length=max_length
        )
        metrics.update(result.metrics())
    return metrics
