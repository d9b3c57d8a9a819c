"""Checkpoints that ship inside the package, and how the name `sora` resolves to them."""

import json
import os
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError, safe_open

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


class PackagedNameMixin:
    """`from_pretrained` for every Sora class (config, models, tokenizer, processors): the name `sora` means the
    packaged checkpoint. The one place the name is resolved; the Auto classes do not know it (see
    `packaged_name_hint`)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        return super().from_pretrained(
            resolve_pretrained_name(pretrained_model_name_or_path), *args, **kwargs
        )


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a `.safetensors` file (truncated header or data, bad JSON), or None when it opens."""
    try:
        with safe_open(str(path), framework="pt"):
            return None
    except SafetensorError as error:
        return f"{error}; the file holds {os.path.getsize(path)} bytes"


def find_corrupt_safetensors(
    name_or_path: str | os.PathLike,
    subfolder: str = "",
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
) -> tuple[str, str] | None:
    """The first weights file of a checkpoint (a local folder, or a Hub repo's files in the cache) that is truncated
    or corrupt, with what is wrong with it; None when every file opens."""
    folder = Path(name_or_path) / subfolder
    if folder.is_dir():
        candidates = sorted(folder.glob("*.safetensors"))
    else:

        def cached(filename: str) -> str | None:
            found = try_to_load_from_cache(
                str(name_or_path),
                f"{subfolder}/{filename}" if subfolder else filename,
                cache_dir=cache_dir,
                revision=revision,
            )
            return found if isinstance(found, str) else None

        names = ["model.safetensors"]
        index = cached("model.safetensors.index.json")
        if index is not None:
            with open(index, encoding="utf-8") as file:
                names += sorted(set(json.load(file).get("weight_map", {}).values()))
        candidates = [Path(path) for path in map(cached, names) if path is not None]
    for path in candidates:
        problem = safetensors_problem(path)
        if problem is not None:
            return str(path), problem
    return None
