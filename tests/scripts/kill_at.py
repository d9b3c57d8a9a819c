"""Run a `sora-hf` command and SIGKILL this process at one point of its training (the fault-injection test's child).

usage: kill_at.py FAULT sora-hf-arguments...

FAULT is `none`, or KIND:STEP with KIND one of
  step       after the backward pass of optimizer step STEP, before its optimizer update
  weights    while writing checkpoint-STEP's weights: half the safetensors bytes are on disk
  optimizer  during checkpoint-STEP's save, after the weights, before the optimizer state
  state      while writing checkpoint-STEP's trainer_state.json (the last file): half of it is on disk
"""

import os
import signal
import sys
from pathlib import Path

import transformers.modeling_utils
from safetensors.torch import save as safetensors_bytes
from transformers import Trainer, TrainerState

from sora_hf.cli import main


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def in_checkpoint(path, step: int) -> bool:
    return f"checkpoint-{step}" in Path(path).parts


fault, arguments = sys.argv[1], sys.argv[2:]
if fault != "none":
    kind, step = fault.split(":")
    step = int(step)
    if kind == "step":
        training_step = Trainer.training_step

        def killing_training_step(self, *args, **kwargs):
            loss = training_step(self, *args, **kwargs)
            if self.state.global_step + 1 == step:  # global_step counts the finished updates
                die()
            return loss

        Trainer.training_step = killing_training_step
    elif kind == "weights":
        save_file = transformers.modeling_utils.safe_save_file

        def killing_save_file(tensors, filename, metadata=None):
            if not in_checkpoint(filename, step):
                return save_file(tensors, filename, metadata=metadata)
            data = safetensors_bytes(tensors, metadata=metadata)
            with open(filename, "wb") as file:
                file.write(data[: len(data) // 2])
            die()

        transformers.modeling_utils.safe_save_file = killing_save_file
    elif kind == "optimizer":
        save_optimizer = Trainer._save_optimizer_and_scheduler

        def killing_save_optimizer(self, output_dir):
            if in_checkpoint(output_dir, step):
                die()
            return save_optimizer(self, output_dir)

        Trainer._save_optimizer_and_scheduler = killing_save_optimizer
    elif kind == "state":
        save_to_json = TrainerState.save_to_json

        def killing_save_to_json(self, json_path):
            if not in_checkpoint(json_path, step):
                return save_to_json(self, json_path)
            save_to_json(self, json_path)
            text = Path(json_path).read_text()
            Path(json_path).write_text(text[: len(text) // 2])
            die()

        TrainerState.save_to_json = killing_save_to_json
    else:
        raise SystemExit(f"unknown fault kind {kind!r}")
sys.exit(main(arguments))
