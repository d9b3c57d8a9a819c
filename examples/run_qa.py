"""Fine-tune Sora for extractive question answering (the WordNet-derived task of DATA.md, or your own files).

    python examples/run_qa.py --output_dir runs/qa --num_train_epochs 1 --learning_rate 3e-4 --use_cpu
    python examples/run_qa.py --train_file my.csv --question_column q --context_column passage \
        --answers_column answer --validation_file my.csv --test_file my.csv --output_dir runs/my-qa ...

Writes the model (served by `pipeline("question-answering", model=output_dir)`), TensorBoard logs
(`--report_to tensorboard`), `loss_curve.png`, a model card (README.md) and `qa_results.json` (test exact
match / F1 and the word-overlap baseline on the same test questions, split sizes, steps, wall time, command).
"""

from sora_hf.training.runner import script_main

if __name__ == "__main__":
    script_main("qa")
