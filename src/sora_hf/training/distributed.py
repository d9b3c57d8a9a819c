"""Sora under accelerate's FSDP2 and DeepSpeed: the launch checks, FSDP on CPU processes, sharded checkpoints to a
`from_pretrained` folder, and a whole (never partitioned) teacher under ZeRO-3.

The configs live in `examples/accelerate/`; the README's "Scaling out" has the commands.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserInputError

# Trainer's name for the sharded model of a checkpoint (torch DCP), and the checkpoint files that are no model files
FSDP_MODEL_FOLDER = "pytorch_model_fsdp_0"
_NOT_MODEL_FILES = ("trainer_state.json", "training_args.bin", "scheduler.pt", "rng_state")
# the model attribute that holds SoraTrainer's loss terms while FSDP or DeepSpeed trains (never in a saved model)
LOSS_TERMS_MODULE = "sora_loss_terms"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


def _process_state(distributed_type: str, num_processes: int) -> None:
    """What accelerate's process state contributes to a `datasets` fingerprint (see below; never called)."""


def _register_rank_independent_fingerprints() -> None:
    """Give `datasets` fingerprints that every process shares.

    `Dataset.map` fingerprints its function by pickling what it closes over; a closure over `TrainingArguments` (a
    task's `featurize` reading `run`) carries accelerate's process state (rank, device), so each process got its own
    fingerprint and recomputed, under `main_process_first`, what the main process had just cached. The state is
    hashed by what every process shares, the way `datasets` itself makes tokenizers hash stably.
    """
    from accelerate.state import PartialState
    from datasets.utils._dill import pklregister

    @pklregister(PartialState)
    def _save_process_state(pickler, state):
        arguments = (str(state.distributed_type), state.num_processes)
        pickler.save_reduce(_process_state, arguments, obj=state)


_register_rank_independent_fingerprints()


def check_launch(accelerator, args) -> None:
    """Refuse launches where accelerate would silently not do what the config asks.

    Several processes that accelerate runs as independent single processes (a GPU config on a machine without GPUs
    and no `--use_cpu`) would each train alone on the whole data and all write the output; DeepSpeed with
    `--use_cpu` would train as plain DDP.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        raise ValueError(
            f"{launched} processes were launched (WORLD_SIZE={launched}) but accelerate runs each alone (no GPU "
            "backend here), so every process would train on all the data and write the output: on CPU processes "
            "pass --use_cpu (FSDP, DDP) or --ddp_backend gloo (DeepSpeed)."
        )
    if _env_flag("ACCELERATE_USE_DEEPSPEED") and getattr(args, "use_cpu", False):
        raise ValueError(
            "use_cpu=True: accelerate ignores the DeepSpeed config on CPU and would train plain DDP. On CPU "
            "processes pass --ddp_backend gloo instead of --use_cpu (DeepSpeed then uses its CPU accelerator)."
        )


@functools.cache
def destroy_process_group_at_exit() -> None:
    """Destroy the default process group when this process exits (registered once).

    run_task's other processes leave as soon as the model is saved, while the main one writes the results; leaving
    gloo's threads to the interpreter's final teardown aborted one such process here under FSDP ("terminate called
    without an active exception", SIGABRT), which failed the whole launch.
    """
    import torch.distributed as dist

    def destroy() -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    atexit.register(destroy)


def enable_fsdp_on_cpu(accelerator, args) -> bool:
    """Make CPU processes shard with FSDP2 when the launch config asks for FSDP; whether it did.

    accelerate 1.16 turns on FSDP only on accelerators: CPU processes (`--use_cpu`, gloo) silently train as DDP
    instead. torch's FSDP2 runs on CPU over gloo, so the config is honoured here, which is what lets the two-process
    CPU tests exercise the sharded path a GPU run takes.
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = accelerator.state
    if not _env_flag("ACCELERATE_USE_FSDP") or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin(**(args.fsdp_plugin_args or {}))
    if plugin.fsdp_version != 2:
        raise ValueError(
            f"fsdp_version: {plugin.fsdp_version}; CPU processes shard only with FSDP2: set fsdp_version: 2 "
            "(examples/accelerate/fsdp.yaml does)."
        )
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    # a later Trainer's accelerator starts from the process state: it finds FSDP there
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


def shard_tied_embeddings(accelerator, model) -> None:
    """Put every module holding the input-embedding weight into one FSDP2 group, before accelerate shards the rest.

    accelerate groups the input embeddings with `get_output_embeddings()` alone; Sora's pretraining and seq2seq heads
    also tie the decoder's token embeddings (and the denoising head) to them, and torch refuses a parameter in two
    FSDP groups ("shared with a parameter already managed by another FSDP group"). Grouped as accelerate groups its
    pair (kept gathered from forward to backward), the modules are then left alone by accelerate.
    """
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    embeddings = model.get_input_embeddings()
    weight = getattr(embeddings, "weight", None)
    if weight is None or isinstance(embeddings, FSDPModule):
        return
    holders = [m for m in model.modules() if any(p is weight for p in m.parameters(recurse=False))]
    if len(holders) <= 2:  # the input and output embeddings: accelerate's own pair
        return
    plugin = accelerator.state.fsdp_plugin
    fully_shard(
        holders,
        reshard_after_forward=False,
        offload_policy=plugin.cpu_offload,
        mp_policy=plugin.mixed_precision_policy or MixedPrecisionPolicy(),
    )


def keep_present_layer_classes(accelerator, model) -> None:
    """Drop layer classes the model lacks from FSDP's auto-wrap list (accelerate raises on a missing one).

    `fsdp.yaml` names `SoraEncoderLayer,SoraDecoderLayer`; encoder-only heads have no decoder layers.
    """
    from accelerate.utils.dataclasses import get_module_class_from_name

    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    names = getattr(plugin, "transformer_cls_names_to_wrap", None)
    if not names:
        return
    present = [name for name in names if get_module_class_from_name(model, name) is not None]
    if not present:
        raise ValueError(
            f"fsdp_transformer_layer_cls_to_wrap: {names}, and {type(model).__name__} has none of these layers; name "
            "its layer classes (SoraEncoderLayer, SoraDecoderLayer for Sora) or drop the setting."
        )
    plugin.transformer_cls_names_to_wrap = present


@contextmanager
def whole_model_loading():
    """Build models whole inside the block even when DeepSpeed ZeRO-3 is set up.

    Under ZeRO-3, `from_pretrained` partitions a new model's parameters over the processes; a frozen teacher that no
    DeepSpeed engine owns would then run with empty weights. Its forward needs every weight on every process.
    """
    from transformers.integrations import deepspeed

    # transformers keeps the active DeepSpeed config behind this weak reference (set_hf_deepspeed_config)
    reference = deepspeed._hf_deepspeed_config_weak_ref
    config = reference() if reference is not None else None
    if config is None:
        yield
        return
    deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        deepspeed.set_hf_deepspeed_config(config)


def check_whole(model, what: str = "teacher") -> None:
    """`ValueError` if `model` has ZeRO-3-partitioned parameters (built inside `deepspeed.zero.Init`)."""
    partitioned = [name for name, parameter in model.named_parameters() if hasattr(parameter, "ds_id")]
    if partitioned:
        raise ValueError(
            f"The {what} has {len(partitioned)} ZeRO-3-partitioned parameters ({partitioned[0]}, ...): no DeepSpeed "
            f"engine runs it, so its forward would see empty weights. Load it with "
            f"sora_hf.training.losses.teacher.load_teacher, or inside sora_hf.training.distributed.whole_model_loading()."
        )


def consolidate_fsdp_checkpoint(checkpoint: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Merge a sharded FSDP checkpoint (`checkpoint-N/` with `pytorch_model_fsdp_0/`) into `output_dir`: one
    `model.safetensors` beside the checkpoint's config, tokenizer and card, a folder `from_pretrained` loads.

    Runs in one process, without GPUs (accelerate's `merge_fsdp_weights` reads the torch DCP shards on CPU). The
    folder appears whole or not at all.
    """
    from accelerate.utils import merge_fsdp_weights
    from safetensors.torch import load_file, save_file

    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    shards = checkpoint / FSDP_MODEL_FOLDER
    if not (shards / ".metadata").is_file():
        raise UserInputError(
            f"checkpoint: {checkpoint} holds no sharded FSDP model ({FSDP_MODEL_FOLDER}/.metadata); pass a "
            "checkpoint-N folder written under examples/accelerate/fsdp.yaml (fsdp_state_dict_type: "
            "SHARDED_STATE_DICT)."
        )
    if not (checkpoint / "config.json").is_file():
        raise UserInputError(
            f"checkpoint: {checkpoint} has no config.json (written by SoraTrainer beside the shards); without it "
            "the merged weights cannot be loaded with from_pretrained."
        )
    if output_dir.exists() and any(output_dir.iterdir()):
        raise UserInputError(f"output_dir: {output_dir} is not empty; pass a new folder.")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = output_dir.with_name(f".{output_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        for path in checkpoint.iterdir():
            if path.is_file() and not path.name.startswith(_NOT_MODEL_FILES):
                shutil.copy2(path, partial / path.name)
        merge_fsdp_weights(str(shards), str(partial), safe_serialization=True)
        weights = partial / "model.safetensors"
        tensors = load_file(weights)
        # a distillation projection trained inside the model under FSDP: no weight of the model
        kept = {
            name: value for name, value in tensors.items() if not name.startswith(f"{LOSS_TERMS_MODULE}.")
        }
        if len(kept) < len(tensors):
            save_file(kept, weights, metadata={"format": "pt"})
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(partial, output_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return output_dir
