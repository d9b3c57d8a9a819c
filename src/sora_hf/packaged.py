"""Checkpoints that ship inside the package, and how the name `sora` resolves to them."""

import functools
import json
import os
from collections.abc import Callable
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
    `install_packaged_name_message`)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        return super().from_pretrained(
            resolve_pretrained_name(pretrained_model_name_or_path), *args, **kwargs
        )


def packaged_name_message(name: str) -> str:
    """What to pass instead, when an Auto class or `pipeline()` is given the name of a packaged checkpoint."""
    return (
        f"{name!r} is the checkpoint that ships inside sora_hf; the Auto classes and pipeline() look names up on "
        f"the Hub and cannot find it. Pass its folder, sora_hf.packaged_checkpoint_path({name!r}) (e.g. "
        f"pipeline('fill-mask', model=sora_hf.packaged_checkpoint_path({name!r}))), or load it with a Sora class, "
        f"which knows the name (SoraForMaskedLM.from_pretrained({name!r}))."
    )


def install_packaged_name_message() -> None:
    """Make `from_pretrained('sora')` on an Auto class (AutoConfig is the first step of every AutoModel class and of
    `pipeline()`) fail saying where the packaged checkpoint is, instead of "We couldn't connect to
    'https://huggingface.co'". Only the error changes: transformers has no hook to resolve a name, and patching its
    lookup would change it for every model."""
    import transformers

    for auto_class in (
        transformers.AutoConfig,
        transformers.AutoTokenizer,
        transformers.AutoProcessor,
        transformers.AutoImageProcessor,
        transformers.AutoFeatureExtractor,
    ):
        lookup = auto_class.from_pretrained.__func__
        if not getattr(lookup, "names_packaged_checkpoints", False):
            auto_class.from_pretrained = classmethod(_with_packaged_name_message(lookup))


def _with_packaged_name_message(lookup: Callable) -> Callable:
    """`lookup` (an Auto class's `from_pretrained`), its `OSError` for a packaged name replaced by the hint."""

    @functools.wraps(lookup)
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return lookup(cls, pretrained_model_name_or_path, *args, **kwargs)
        except OSError as error:
            name = pretrained_model_name_or_path
            if not isinstance(name, str) or name not in PACKAGED_CHECKPOINTS or os.path.isdir(name):
                raise
            raise OSError(packaged_name_message(name)) from error

    from_pretrained.names_packaged_checkpoints = True
    return from_pretrained


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
