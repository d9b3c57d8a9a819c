"""Fine-tune Sora for named-entity recognition (the NER tweets of DATA.md, or your own CSV/JSON files).

    python examples/run_ner.py --output_dir runs/ner --num_train_epochs 3 --use_cpu
    python examples/run_ner.py --train_file my.jsonl --tokens_column words --tags_column tags ...

Writes the model (served by `pipeline("token-classification", model=output_dir, aggregation_strategy="first")`:
only a word's first sub-token is trained, so "first" gives whole words, as for RoBERTa; the pipeline's
"fallback heuristic" warning is the same as RoBERTa's),
TensorBoard logs, `loss_curve.png` and `ner_results.json` (test seqeval metrics and the per-token majority-tag
baseline on the same test split).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("ner")
