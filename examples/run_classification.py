"""Fine-tune Sora for text classification (the sentiment task of DATA.md, or your own CSV/JSON files).

    python examples/run_classification.py --output_dir runs/sentiment --num_train_epochs 1 --use_cpu
    python examples/run_classification.py --train_file my.csv --text_column review --label_column stars ...

Writes the model (served by `pipeline("text-classification", model=output_dir)`), TensorBoard logs,
`loss_curve.png`, `confusion_matrix.png` and `classification_results.json` (test metrics and the TF-IDF +
logistic-regression baseline on the same test split).
"""

import json

from transformers import HfArgumentParser, TrainingArguments

from sora_hf.training.classification import ClassificationArguments, run_classification


def main() -> None:
    parser = HfArgumentParser((ClassificationArguments, TrainingArguments))
    args, training_args = parser.parse_args_into_dataclasses()
    results = run_classification(args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))


if __name__ == "__main__":
    main()
