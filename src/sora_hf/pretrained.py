"""Checkpoints that ship inside the package, and how the name `sora` resolves to them."""

import os
from pathlib import Path

PACKAGED_CHECKPOINTS = {"sora": Path(__file__).resolve().parent / "checkpoints" / "sora"}


def packaged_checkpoint_path(name: str = "sora") -> str:
    """Folder of a checkpoint shipped with sora_hf, for the Auto classes and `pipeline(model=...)`."""
    if name not in PACKAGED_CHECKPOINTS:
        raise ValueError(f"No packaged checkpoint named {name!r}; available: {sorted(PACKAGED_CHECKPOINTS)}.")
    path = PACKAGED_CHECKPOINTS[name]
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"The packaged checkpoint {name!r} is missing from {path}; reinstall sora_hf or re-make it with "
            "`sora-hf pretrain` (see model_cards/sora.md)."
        )
    return str(path)


def resolve_pretrained_name(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """`sora` means the packaged checkpoint unless a local folder of that name exists (it wins, as in transformers)."""
    if (
        isinstance(name_or_path, str)
        and name_or_path in PACKAGED_CHECKPOINTS
        and not os.path.isdir(name_or_path)
    ):
        return packaged_checkpoint_path(name_or_path)
    return name_or_path
