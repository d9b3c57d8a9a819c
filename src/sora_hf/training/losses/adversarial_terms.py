"""The adversarial terms by name, and the one `SoraTrainingArguments` asks for."""

from ...embedding_perturbation import check_adversarial_settings, input_embeddings
from .base import TrainingLoss
from .fgm import FGMLoss
from .freelb import FreeLBLoss
from .pgd import PGDLoss

ADVERSARIAL_LOSSES: dict[str, type[TrainingLoss]] = {"fgm": FGMLoss, "pgd": PGDLoss, "freelb": FreeLBLoss}
ADVERSARIAL_METHODS = ("none", *ADVERSARIAL_LOSSES)


def check_adversarial_arguments(args) -> None:
    """`ValueError` naming the `adversarial_*` argument that is wrong (checked even when the method is none)."""
    if args.adversarial_method not in ADVERSARIAL_METHODS:
        raise ValueError(
            f"adversarial_method must be one of {', '.join(ADVERSARIAL_METHODS)} (got {args.adversarial_method!r})."
        )
    check_adversarial_settings(
        args.adversarial_epsilon,
        args.adversarial_steps,
        args.adversarial_norm,
        args.adversarial_step_size,
        prefix="adversarial_",
    )
    if not args.adversarial_weight >= 0:
        raise ValueError(f"adversarial_weight must be >= 0 (got {args.adversarial_weight}).")
    if args.adversarial_start_step < 0:
        raise ValueError(f"adversarial_start_step must be >= 0 (got {args.adversarial_start_step}).")


def build_adversarial_terms(args, model=None) -> list[TrainingLoss]:
    """The FGM/PGD/FreeLB term `args.adversarial_method` names (none for plain `TrainingArguments`)."""
    method = getattr(args, "adversarial_method", "none")
    if method == "none":
        return []
    check_adversarial_arguments(args)
    if model is not None:
        input_embeddings(model)  # a model without input embeddings fails here, naming `model`
    settings = dict(
        epsilon=args.adversarial_epsilon,
        norm=args.adversarial_norm,
        weight=args.adversarial_weight,
        start_step=args.adversarial_start_step,
    )
    if method != "fgm":
        settings.update(steps=args.adversarial_steps, step_size=args.adversarial_step_size)
    return [ADVERSARIAL_LOSSES[method](**settings)]
