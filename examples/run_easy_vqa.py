"""Train Sora on easy-vqa (64x64 image + question -> one of 13 answers) from text, image or both.

    python examples/run_easy_vqa.py --modalities fused --output_dir runs/easy-vqa-fused --num_train_epochs 2 --use_cpu
    python examples/run_easy_vqa.py --modalities text ...    # the question alone
    python examples/run_easy_vqa.py --modalities image ...   # the image alone

Every setting trains the same model (same config, seed and hyperparameters); only the inputs differ. Writes the
model and its SoraProcessor, `multimodal_results.json` (test accuracy, wall time), `confusion_matrix.png`,
`loss_curve.png` and README.md. `--card model_cards/sora-easy-vqa.md --compare runs/a runs/b` writes a card whose
table compares finished runs (the fused one last).
"""

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from sora_hf.training.multimodal import MultimodalArguments, run_multimodal, write_comparison_card

DESCRIPTION = (
    "A Sora sequence classifier with a ViT-style vision tower (8x8 patches of a 64x64 image) whose patch tokens "
    "are fused with the question's tokens in the encoder (early fusion, modality-type embeddings). Trained from "
    "random initialisation on easy-vqa's train images; test accuracy on its 1,000 held-out test images, for the "
    "same model fed the question alone, the image alone, or both:"
)


@dataclass
class CardArguments:
    card: str | None = field(default=None, metadata={"help": "Write a comparison card here and exit."})
    compare: list[str] = field(default_factory=list, metadata={"help": "Finished run folders, fused last."})


def main() -> None:
    parser = HfArgumentParser((MultimodalArguments, TrainingArguments, CardArguments))
    args, training_args, card_args = parser.parse_args_into_dataclasses()
    if card_args.card:
        print(write_comparison_card(card_args.compare, card_args.card, DESCRIPTION))
        return
    args.task = "easy_vqa"
    results = run_multimodal(args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k not in ("arguments", "log_history")}, indent=2))


if __name__ == "__main__":
    main()
