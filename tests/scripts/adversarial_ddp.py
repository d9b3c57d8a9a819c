"""Train a tiny Sora classifier with each adversarial method through SoraTrainer and save the final parameters and
the logged adversarial loss of every step.

Run by tests/training/distributed/test_adversarial_ddp.py (DDP) and tests/training/distributed/test_fsdp.py (FSDP2) twice: under `accelerate launch` with two
CPU processes over gloo, each a half batch, and as one plain process with the whole batch; the saved tensors must
agree.

    python tests/scripts/adversarial_ddp.py --output out.safetensors --global-batch 8
"""

import argparse
import os

import torch
from datasets import Dataset
from safetensors.torch import save_file

from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.trainer import SoraTrainer

# (method, DDP's find_unused_parameters): Trainer's default for these models is True; False is the faster setting.
RUNS = (("fgm", True), ("pgd", True), ("freelb", True), ("freelb", False))


def final_parameters(trainer: SoraTrainer) -> dict[str, torch.Tensor]:
    """The trained parameters, whole on every process (FSDP and ZeRO-3 gather their shards: every process must
    call this)."""
    from torch.distributed.tensor import DTensor

    if trainer.is_deepspeed_enabled:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(trainer.model.parameters())):
            return {name: p.detach().cpu().clone() for name, p in trainer.model.named_parameters()}
    return {
        name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().cpu().contiguous()
        for name, p in trainer.model.named_parameters()
    }


def check_distributed(trainer: SoraTrainer, key: str) -> None:
    """Really DDP or FSDP2 (as the launch asked), and under DDP every process ends with the same parameters."""
    if trainer.accelerator.num_processes == 1:
        return
    if trainer.is_fsdp_enabled:
        from torch.distributed.fsdp import FSDPModule

        assert isinstance(trainer.model, FSDPModule), f"{key}: FSDP did not wrap {type(trainer.model)}"
        return
    assert isinstance(trainer.model_wrapped, torch.nn.parallel.DistributedDataParallel)
    for name, parameter in trainer.model.named_parameters():
        gathered = trainer.accelerator.gather(parameter.detach()[None])
        assert torch.equal(gathered[0], gathered[1]), f"{key}: {name} differs between processes"


def logged_terms(trainer: SoraTrainer) -> dict[str, torch.Tensor]:
    """Each logged `loss_*` value per step (the training log's entries), as one tensor per name."""
    entries = [entry for entry in trainer.state.log_history if "loss" in entry]
    names = sorted({key for entry in entries for key in entry if key.startswith("loss")})
    return {f"log.{name}": torch.tensor([entry[name] for entry in entries]) for name in names}


def train_methods(output_dir: str, global_batch: int = 8, steps: int = 3) -> dict[str, torch.Tensor]:
    """Every run of `RUNS` from the same start: `{run.param: tensor}`, `{run.log.loss_<term>: per step}`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    generator = torch.Generator().manual_seed(0)
    rows = {
        "input_ids": torch.randint(5, 100, (global_batch * steps, 12), generator=generator).tolist(),
        "labels": torch.randint(0, 3, (global_batch * steps,), generator=generator).tolist(),
    }
    tensors = {}
    for method, find_unused in RUNS:
        key = f"{method}-{'find_unused' if find_unused else 'static'}"
        torch.manual_seed(0)
        config = SoraConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            num_labels=3,
        )
        model = SoraForSequenceClassification(config)
        tensors.update({f"init.{n}": p.detach().clone() for n, p in model.named_parameters()})
        training_args = SoraTrainingArguments(
            output_dir=os.path.join(output_dir, f"run-{key}-{world_size}"),
            per_device_train_batch_size=global_batch // world_size,
            max_steps=steps,
            optim="sgd",
            learning_rate=0.5,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            train_sampling_strategy="sequential",
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            ddp_backend="gloo" if world_size > 1 else None,
            ddp_find_unused_parameters=find_unused,
            adversarial_method=method,
            adversarial_epsilon=0.5,
            adversarial_steps=2,
        )
        trainer = SoraTrainer(model=model, args=training_args, train_dataset=Dataset.from_dict(rows))
        trainer.train()
        check_distributed(trainer, key)
        tensors.update({f"{key}.{n}": p for n, p in final_parameters(trainer).items()})
        tensors.update({f"{key}.{n}": values for n, values in logged_terms(trainer).items()})
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    tensors = train_methods(os.path.dirname(args.output), args.global_batch, args.steps)
    if int(os.environ.get("RANK", "0")) == 0:
        save_file(tensors, args.output)


if __name__ == "__main__":
    main()
