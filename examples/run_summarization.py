"""Fine-tune Sora for summarization (Debian long descriptions → synopsis of DATA.md, or your own CSV/JSON files).

    python examples/run_summarization.py --output_dir runs/summarization --num_train_epochs 1 --use_cpu
    python examples/run_summarization.py --train_file my.csv --document_column article --summary_column title ...

Writes the model (served by `pipeline("summarization", model=output_dir)`), TensorBoard logs (`--report_to tensorboard`),
`loss_curve.png`, a model card (README.md) and `summarization_results.json` (ROUGE-1/2/L on the test split, the
first-7-words baseline on the same examples, split sizes, steps, wall time, command). Evaluation and test
generate text (`--predict_with_generate` is on by default; `--generation_num_beams`, `--generation_max_length`).
"""

import json

from transformers import HfArgumentParser, Seq2SeqTrainingArguments

from sora_hf.training.seq2seq import SummarizationArguments, run_seq2seq


def main() -> None:
    parser = HfArgumentParser((SummarizationArguments, Seq2SeqTrainingArguments))
    parser.set_defaults(predict_with_generate=True)
    args, training_args = parser.parse_args_into_dataclasses()
    results = run_seq2seq(args, training_args)
    print(json.dumps({k: v for k, v in results.items() if k != "arguments"}, indent=2, default=str))


if __name__ == "__main__":
    main()
