"""The adversarial runs, a seq2seq run with FGM (tied embeddings), a checkpointed distillation run, then that
distillation resumed from its step-2 checkpoint: under `accelerate launch --config_file examples/accelerate/fsdp.yaml`
(tests/training/distributed/test_fsdp.py) or alone.

Every tensor (parameters, logged loss terms per step) goes to --output from rank 0, prefixed `adversarial.`,
`seq2seq.`, `distill.` or `resumed.`; the distillation's checkpoints stay in `<output folder>/distill/`.
"""

import argparse
import os
from pathlib import Path

import torch
from adversarial_ddp import final_parameters, logged_terms, train_methods
from datasets import Dataset
from distill_ddp import distill, trained_tensors
from safetensors.torch import save_file

from sora_hf import SoraConfig, SoraForConditionalGeneration
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.trainer import SoraTrainer


def check_teacher(trainer) -> None:
    """The teacher is whole, frozen and outside the optimizer; under FSDP everything the optimizer steps is sharded."""
    from torch.distributed.tensor import DTensor

    teacher = trainer.teacher_model
    assert not any(isinstance(p, DTensor) or p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    if trainer.is_fsdp_enabled:
        assert all(
            isinstance(p, DTensor) for group in trainer.optimizer.param_groups for p in group["params"]
        )


def train_seq2seq(output_dir: str, global_batch: int = 4, steps: int = 3) -> dict:
    """A tiny seq2seq Sora (encoder, decoder and LM head share one embedding) with FGM: `{param: tensor}` and its
    logged losses. Under FSDP the three holders of the shared weight are one group (see shard_tied_embeddings)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    generator = torch.Generator().manual_seed(0)
    rows = {
        "input_ids": torch.randint(5, 100, (global_batch * steps, 10), generator=generator).tolist(),
        "labels": torch.randint(5, 100, (global_batch * steps, 6), generator=generator).tolist(),
    }
    torch.manual_seed(0)
    config = SoraConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        decoder_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        is_encoder_decoder=True,
    )
    args = SoraTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=global_batch // world_size,
        max_steps=steps,
        optim="sgd",  # Adam would blow the float noise on the key biases (true gradient 0) up to +-lr
        learning_rate=0.5,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        adversarial_method="fgm",
        adversarial_epsilon=0.5,
    )
    trainer = SoraTrainer(
        model=SoraForConditionalGeneration(config), args=args, train_dataset=Dataset.from_dict(rows)
    )
    trainer.train()
    return {**final_parameters(trainer), **logged_terms(trainer)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    output = Path(parser.parse_args().output)
    folder = output.parent
    runs = {
        "adversarial": train_methods(str(folder / "adversarial")),
        "seq2seq": train_seq2seq(str(folder / "seq2seq")),
    }
    trainer = distill(str(folder / "distill"), save_steps=2)
    check_teacher(trainer)
    runs["distill"] = {**trained_tensors(trainer), **logged_terms(trainer)}
    resumed = distill(str(folder / "resumed"), resume=str(folder / "distill" / "checkpoint-2"))
    runs["resumed"] = {**trained_tensors(resumed), **logged_terms(resumed)}
    if int(os.environ.get("RANK", "0")) == 0:
        save_file(
            {f"{run}.{name}": value for run, tensors in runs.items() for name, value in tensors.items()},
            str(output),
        )


if __name__ == "__main__":
    main()
