"""Fine-tune Sora for dialogue response generation (chatterbot-corpus of DATA.md, or your own CSV/JSON files).

    python examples/run_dialogue.py --output_dir runs/dialogue --num_train_epochs 3 --use_cpu
    python examples/run_dialogue.py --train_file chats.csv --context_column message --response_column reply ...

Writes the model (served by `pipeline("text2text-generation", model=output_dir)`), TensorBoard logs (`--report_to tensorboard`),
`loss_curve.png`, a model card (README.md) and `dialogue_results.json` (chrF (and BLEU) on the test split, the
most-frequent-response baseline on the same examples, split sizes, steps, wall time, command). Evaluation and test
generate text (`--predict_with_generate` is on by default; `--generation_num_beams`, `--generation_max_length`).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("dialogue")
