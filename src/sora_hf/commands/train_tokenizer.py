"""`sora-hf train-tokenizer`: train a byte-level BPE `SoraTokenizer` and save it with `save_pretrained`."""

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-tokenizer` sub-command."""
    parser = subparsers.add_parser(
        "train-tokenizer",
        help="Train a byte-level BPE SoraTokenizer on text files or a saved datasets dataset.",
        description="Train a byte-level BPE SoraTokenizer (special tokens at ids 0-4) and save it with "
        "save_pretrained, ready for AutoTokenizer.from_pretrained.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--files", nargs="+", type=Path, help="UTF-8 text files, one text per line.")
    source.add_argument(
        "--dataset-dir", "--dataset_dir", type=Path, help="A dataset saved with `save_to_disk`."
    )
    parser.add_argument(
        "--text-column", "--text_column", default="text", help="Column of --dataset-dir holding the texts."
    )
    parser.add_argument(
        "--split", default="train", help="Split to read when --dataset-dir holds a DatasetDict."
    )
    parser.add_argument(
        "--vocab-size",
        "--vocab_size",
        type=int,
        default=8000,
        help="Size of the vocabulary, special tokens included.",
    )
    parser.add_argument(
        "--min-frequency",
        "--min_frequency",
        type=int,
        default=2,
        help="Merge only pairs seen at least this often.",
    )
    parser.add_argument(
        "--model-max-length",
        "--model_max_length",
        type=int,
        default=512,
        help="Longest input the model accepts.",
    )
    parser.add_argument(
        "--output-dir", "--output_dir", type=Path, required=True, help="Folder to save the tokenizer in."
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train on the given source and save the tokenizer to `args.output_dir`."""
    import datasets  # here, not at the top: every `sora-hf` call imports this module

    from ..tokenization_sora import train_sora_tokenizer

    if args.files is not None:
        source = args.files
    else:
        if not args.dataset_dir.is_dir():
            raise ValueError(
                f"--dataset-dir {args.dataset_dir} is not a folder: pass a dataset saved with save_to_disk."
            )
        source = datasets.load_from_disk(str(args.dataset_dir))
        if isinstance(source, datasets.DatasetDict):
            if args.split not in source:
                raise ValueError(f"--dataset-dir has splits {list(source)}, not {args.split!r}: set --split.")
            source = source[args.split]
    tokenizer = train_sora_tokenizer(
        source,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        text_column=args.text_column,
        model_max_length=args.model_max_length,
    )
    tokenizer.save_pretrained(args.output_dir)
    print(f"Saved a SoraTokenizer with {len(tokenizer)} tokens to {args.output_dir}")
    return 0
