"""Fine-tune Sora for text classification (the sentiment task of DATA.md, or your own CSV/JSON files).

    python examples/run_classification.py --output_dir runs/sentiment --num_train_epochs 1 --use_cpu
    python examples/run_classification.py --train_file my.csv --text_column review --label_column stars ...

Writes the model (served by `pipeline("text-classification", model=output_dir)`), TensorBoard logs,
`loss_curve.png`, `confusion_matrix.png` and `classification_results.json` (test metrics and the TF-IDF +
logistic-regression baseline on the same test split).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("classification")
