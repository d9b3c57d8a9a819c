"""`sora-hf merge-fsdp-checkpoint`: a sharded FSDP checkpoint as a folder `from_pretrained` loads."""

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `merge-fsdp-checkpoint` sub-command."""
    parser = subparsers.add_parser(
        "merge-fsdp-checkpoint",
        help="Merge a sharded FSDP checkpoint into one safetensors model folder.",
        description="Merge CHECKPOINT (a checkpoint-N folder written under examples/accelerate/fsdp.yaml, whose "
        "weights are torch DCP shards in pytorch_model_fsdp_0/) into OUTPUT_DIR: model.safetensors beside the "
        "checkpoint's config and tokenizer, loadable with from_pretrained. Runs in one process, without GPUs.",
    )
    parser.add_argument("checkpoint", type=Path, help="The checkpoint-N folder of an FSDP run.")
    parser.add_argument("output_dir", type=Path, help="New or empty folder for the merged model.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Merge, and print where the model is; a bad folder is a one-line error (exit code 2)."""
    from ..training.distributed import consolidate_fsdp_checkpoint

    output_dir = consolidate_fsdp_checkpoint(args.checkpoint, args.output_dir)
    print(f"Merged {args.checkpoint} into {output_dir} (model.safetensors)")
    return 0
