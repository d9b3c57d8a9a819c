"""Fine-tune Sora for summarization (Debian long descriptions → synopsis of DATA.md, or your own CSV/JSON files).

    python examples/run_summarization.py --output_dir runs/summarization --num_train_epochs 1 --use_cpu
    python examples/run_summarization.py --train_file my.csv --document_column article --summary_column title ...

Writes the model (served by `pipeline("summarization", model=output_dir)`), TensorBoard logs (`--report_to tensorboard`),
`loss_curve.png`, a model card (README.md) and `summarization_results.json` (ROUGE-1/2/L on the test split, the
first-7-words baseline on the same examples, split sizes, steps, wall time, command). Evaluation and test
generate text (`--predict_with_generate` is on by default; `--generation_num_beams`, `--generation_max_length`).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("summarization")
