"""Fine-tune Sora for English→Spanish translation (the Bible verses of DATA.md, or your own CSV/JSON files).

    python examples/run_translation.py --output_dir runs/translation --num_train_epochs 1 --learning_rate 5e-4 --use_cpu
    python examples/run_translation.py --train_file my.csv --source_column english --target_column spanish ...

Writes the model (served by `pipeline("translation", model=output_dir)`), TensorBoard logs (`--report_to tensorboard`),
`loss_curve.png`, a model card (README.md) and `translation_results.json` (sacreBLEU chrF and BLEU on the test split, the
copy-the-source baseline on the same examples, split sizes, steps, wall time, command). Evaluation and test
generate text (`--predict_with_generate` is on by default; `--generation_num_beams`, `--generation_max_length`).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("translation")
