"""Under `accelerate launch --config_file examples/accelerate/deepspeed_zero{2,3}.yaml` with CPU processes (gloo,
DeepSpeed's CPU accelerator; tests/training/distributed/test_deepspeed.py): the distillation run of distill_ddp.py, then what happens to
a teacher and to the adversarial terms under DeepSpeed.

Rank 0 writes the trained tensors to --output and the checks to <output>.json.
"""

import argparse
import json
import os
from pathlib import Path

import torch
from adversarial_ddp import logged_terms
from datasets import Dataset
from distill_ddp import distill, trained_tensors
from safetensors.torch import save_file
from transformers import BertForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.losses.teacher import load_teacher, prepare_teacher
from sora_hf.training.trainer import SoraTrainer


def partitioned(model: torch.nn.Module) -> bool:
    return any(hasattr(parameter, "ds_id") for parameter in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    output = Path(parser.parse_args().output)
    trainer = distill(str(output.parent / "run"))
    tensors = {**trained_tensors(trainer), **logged_terms(trainer)}
    engine, teacher = trainer.model_wrapped, trainer.teacher_model
    checks = {
        "engine": type(engine).__name__,
        "zero_stage": trainer.accelerator.state.deepspeed_plugin.zero_stage,
        "student_partitioned": partitioned(trainer.model),
        "teacher_partitioned": partitioned(teacher),
        "teacher_trainable": any(p.requires_grad for p in teacher.parameters()),
        "teacher_in_engine": bool(
            {id(p) for p in teacher.parameters()} & {id(p) for p in engine.parameters()}
        ),
    }

    # a saved teacher: plain from_pretrained partitions it under ZeRO-3 (SoraTrainer refuses it), load_teacher does not
    folder = output.parent / "teacher"
    if trainer.is_world_process_zero():
        teacher.save_pretrained(folder)
    trainer.accelerator.wait_for_everyone()
    whole = load_teacher(str(folder))
    batch = {"input_ids": torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])}
    with torch.no_grad():
        checks["load_teacher_partitioned"] = partitioned(whole)
        checks["load_teacher_logits_match"] = torch.equal(whole(**batch).logits, teacher(**batch).logits)
    plain = BertForSequenceClassification.from_pretrained(folder)
    checks["from_pretrained_partitioned"] = partitioned(plain)
    try:
        prepare_teacher(trainer.accelerator, trainer.args, plain)
        checks["partitioned_teacher_error"] = None
    except ValueError as error:
        checks["partitioned_teacher_error"] = str(error)

    # the adversarial terms are refused under DeepSpeed
    student = SoraForSequenceClassification(SoraConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1))
    args = SoraTrainingArguments(
        output_dir=str(output.parent / "fgm"), report_to=[], ddp_backend="gloo", adversarial_method="fgm"
    )
    rows = Dataset.from_dict({"input_ids": [[5, 6, 7]], "labels": [0]})
    try:
        SoraTrainer(model=student, args=args, train_dataset=rows)
        checks["fgm_error"] = None
    except ValueError as error:
        checks["fgm_error"] = str(error)

    if int(os.environ.get("RANK", "0")) == 0:
        save_file(tensors, str(output))
        output.with_suffix(".json").write_text(json.dumps(checks, indent=2))


if __name__ == "__main__":
    main()
