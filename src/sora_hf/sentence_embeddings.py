"""Sora's distilled sentence space as a sentence-transformers model.

`SoraForPreTraining` with `config.sentence_embedding_size` maps its pooler (mean or `<s>` pooling, then dense +
tanh) through `sentence_embedding_head` into a teacher's sentence space (all-MiniLM-L6-v2 for the packaged `sora`,
whose embeddings are L2-normalised). The same computation as sentence-transformers modules:

    Transformer (the encoder only) -> Pooling (mean | cls) -> Dense (pooler: dense + tanh)
        -> Dense (sentence_embedding_head, no activation) -> Normalize (optional)

so `SentenceTransformer(folder).encode(texts)` equals `model(**batch).sentence_embeddings` (L2-normalised unless
`normalize=False`). `import sora_hf` must run before `SentenceTransformer(folder)`: it registers the `sora` model
type with transformers' Auto classes, which sentence-transformers loads through.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .modeling_sora import SoraModel
from .modeling_sora_pretraining import SoraForPreTraining

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# The packaged `sora` was pretrained on texts of at most 128 tokens: later positions were never trained.
DEFAULT_MAX_SEQ_LENGTH = 128
# What `write_sentence_transformer_modules` adds next to a checkpoint: small JSON files and module folders.
SENTENCE_TRANSFORMER_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)
PIP_HINT = "pip install 'sora_hf[embeddings]' (sentence-transformers==6.3.0)"


@contextmanager
def _quiet_transformers():
    """Silence transformers' load report while the encoder is read out of a pretraining checkpoint."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _sentence_transformers():
    try:
        import sentence_transformers
    except ImportError as error:
        raise ImportError(f"Sora sentence embeddings need sentence-transformers: {PIP_HINT}") from error
    return sentence_transformers


def _load_model(model_or_name: SoraForPreTraining | str | os.PathLike) -> SoraForPreTraining:
    if isinstance(model_or_name, (str, os.PathLike)):
        with _quiet_transformers():
            model = SoraForPreTraining.from_pretrained(model_or_name)
    else:
        model = model_or_name
    if not isinstance(model, SoraForPreTraining):
        raise ValueError(
            "A Sora sentence-transformers model is built from a SoraForPreTraining (or its folder / the name "
            f"'sora'); got {type(model).__name__}."
        )
    if model.sentence_embedding_head is None:
        raise ValueError(
            "This SoraForPreTraining has no sentence-embedding head (config.sentence_embedding_size is None): "
            "only a model pretrained with a sentence teacher (`--sentence_teacher`) has a sentence space."
        )
    return model


def _check_max_seq_length(max_seq_length: int, model: SoraForPreTraining) -> None:
    limit = model.config.max_position_embeddings
    if (
        isinstance(max_seq_length, bool)
        or not isinstance(max_seq_length, int)
        or not 1 <= max_seq_length <= limit
    ):
        raise ValueError(
            f"max_seq_length must be an int in [1, {limit}] (config.max_position_embeddings); got {max_seq_length!r}."
        )


def _head_modules(model: SoraForPreTraining, normalize: bool) -> list[torch.nn.Module]:
    """Pooling, pooler Dense (tanh), sentence-head Dense (identity) and optional Normalize, with copied weights."""
    modules = _sentence_transformers().sentence_transformer.modules
    hidden, pooler, head = model.config.hidden_size, model.pooler, model.sentence_embedding_head

    def dense(linear: torch.nn.Linear, activation: torch.nn.Module):
        return modules.Dense(
            linear.in_features,
            linear.out_features,
            activation_function=activation,
            init_weight=linear.weight.detach().float().clone(),
            init_bias=linear.bias.detach().float().clone(),
        )

    layers = [
        modules.Pooling(hidden, pooling_mode="mean" if pooler.mean else "cls"),
        dense(pooler.dense, torch.nn.Tanh()),
        dense(head, torch.nn.Identity()),
    ]
    return layers + [modules.Normalize()] if normalize else layers


def _build(transformer, model: SoraForPreTraining, normalize: bool) -> SentenceTransformer:
    st = _sentence_transformers()
    return st.SentenceTransformer(
        modules=[transformer, *_head_modules(model, normalize)], similarity_fn_name="cosine", device="cpu"
    )


def _encoder_only(model: SoraForPreTraining) -> SoraModel:
    """A `SoraModel` without decoder holding a copy of `model`'s encoder (config `is_encoder_decoder=False`)."""
    config = copy.deepcopy(model.config)
    config.is_encoder_decoder = False
    config.architectures = ["SoraModel"]
    encoder_model = SoraModel(config, with_decoder=False).to(model.dtype)
    encoder_model.encoder.load_state_dict(model.model.encoder.state_dict())
    return encoder_model.eval()


def save_sentence_transformer(
    model_or_name: SoraForPreTraining | str | os.PathLike,
    folder: str | os.PathLike,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    normalize: bool = True,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
) -> str:
    """Write a complete SentenceTransformer folder (encoder-only Sora, tokenizer, pooling/dense/normalize)."""
    model = _load_model(model_or_name)
    _check_max_seq_length(max_seq_length, model)
    if tokenizer is None:
        if not isinstance(model_or_name, (str, os.PathLike)):
            raise ValueError(
                "Pass tokenizer=... with a model object (or give the model's folder or name instead)."
            )
        tokenizer = AutoTokenizer.from_pretrained(model.name_or_path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _encoder_only(model).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    st = _sentence_transformers()
    transformer = st.sentence_transformer.modules.Transformer(str(folder), max_seq_length=max_seq_length)
    _build(transformer, model, normalize).save(str(folder), create_model_card=False)
    return str(folder)


def write_sentence_transformer_modules(
    model_or_name: SoraForPreTraining | str | os.PathLike,
    folder: str | os.PathLike,
    *,
    normalize: bool = True,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
) -> list[str]:
    """Add the sentence-transformers files to an existing Sora checkpoint folder without rewriting its weights.

    Only the small files are written (module JSON, the pooler and head as two `Dense` safetensors); the
    Transformer module reads the checkpoint itself, encoder only (`config_kwargs={"is_encoder_decoder": false}`).
    Returns the names written.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} holds no config.json: give the folder of a saved SoraForPreTraining.")
    model = _load_model(model_or_name)
    _check_max_seq_length(max_seq_length, model)
    st = _sentence_transformers()
    config_kwargs = {"is_encoder_decoder": False}
    with _quiet_transformers():
        transformer = st.sentence_transformer.modules.Transformer(
            str(folder), config_kwargs=config_kwargs, max_seq_length=max_seq_length
        )
    with tempfile.TemporaryDirectory() as temporary:
        _build(transformer, model, normalize).save(temporary, create_model_card=False)
        modules = json.loads(Path(temporary, "modules.json").read_text())
        written = list(SENTENCE_TRANSFORMER_FILES)
        for name in SENTENCE_TRANSFORMER_FILES:
            shutil.copyfile(Path(temporary, name), folder / name)
        for module in modules[1:]:
            shutil.rmtree(folder / module["path"], ignore_errors=True)
            shutil.copytree(Path(temporary, module["path"]), folder / module["path"])
            written.append(module["path"])
    # The checkpoint's own tokenizer config and config.json stay as they are: the limits travel here instead.
    bert_config_path = folder / "sentence_bert_config.json"
    bert_config = json.loads(bert_config_path.read_text())
    bert_config.update(max_seq_length=max_seq_length, config_kwargs=config_kwargs)
    bert_config_path.write_text(json.dumps(bert_config, indent=4) + "\n")
    return written


def load_sentence_transformer(name_or_path: str | os.PathLike = "sora", **kwargs) -> SentenceTransformer:
    """`SentenceTransformer` over a Sora folder (the name `sora` means the packaged checkpoint), load report muted."""
    from .packaged import resolve_pretrained_name

    path = resolve_pretrained_name(name_or_path)
    if not Path(path, "modules.json").is_file():
        raise ValueError(
            f"{path} is not a sentence-transformers folder (no modules.json): write one with "
            "sora_hf.sentence_embeddings.save_sentence_transformer(model_or_name, folder)."
        )
    st = _sentence_transformers()
    with _quiet_transformers():
        return st.SentenceTransformer(str(path), **kwargs)


__all__ = [
    "DEFAULT_MAX_SEQ_LENGTH",
    "load_sentence_transformer",
    "save_sentence_transformer",
    "write_sentence_transformer_modules",
]
