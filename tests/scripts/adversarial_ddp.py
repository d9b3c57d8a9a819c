"""Train a tiny Sora classifier with each adversarial method through SoraTrainer and save the final parameters.

Run by tests/test_adversarial_ddp.py twice: under `accelerate launch --multi_gpu --num_processes 2` (two CPU
processes, DDP over gloo, each a half batch) and as one plain process with the whole batch; the saved parameters
must agree.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    generator = torch.Generator().manual_seed(0)
    rows = {
        "input_ids": torch.randint(
            5, 100, (args.global_batch * args.steps, 12), generator=generator
        ).tolist(),
        "labels": torch.randint(0, 3, (args.global_batch * args.steps,), generator=generator).tolist(),
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
            output_dir=os.path.join(os.path.dirname(args.output), f"run-{key}-{world_size}"),
            per_device_train_batch_size=args.global_batch // world_size,
            max_steps=args.steps,
            optim="sgd",
            learning_rate=0.5,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            train_sampling_strategy="sequential",
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
        tensors.update({f"{key}.{n}": p.detach().contiguous() for n, p in model.named_parameters()})
        if world_size > 1:  # really DDP, and every process ends with the same parameters
            assert isinstance(trainer.model_wrapped, torch.nn.parallel.DistributedDataParallel)
            for name, parameter in model.named_parameters():
                gathered = trainer.accelerator.gather(parameter.detach()[None])
                assert torch.equal(gathered[0], gathered[1]), f"{key}: {name} differs between processes"
    if int(os.environ.get("RANK", "0")) == 0:
        save_file(tensors, args.output)


if __name__ == "__main__":
    main()
