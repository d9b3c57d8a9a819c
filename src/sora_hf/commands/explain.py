"""`sora-hf explain`: why a fine-tuned classifier labels a text as it does (the top words, and a shaded picture)."""

import argparse
from pathlib import Path

METHODS = ("ig", "rollout")  # sora_hf.interpret.METHODS, repeated here so --help imports no torch


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `explain` sub-command."""
    parser = subparsers.add_parser(
        "explain",
        help="Show which words made a classifier decide, and write them shaded in a PNG.",
        description="Predict the label of TEXT with the sequence classifier in --model, print the words that weigh "
        "most for it (integrated gradients over the input embeddings, or attention rollout) and write the text "
        "with its words shaded by attribution (red: for the label, blue: against it) to --output.",
    )
    parser.add_argument("text", help="The text to classify and explain.")
    parser.add_argument(
        "--model", required=True, help="Folder of a fine-tuned `*ForSequenceClassification` model."
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="ig",
        help="ig: integrated gradients (needs captum: pip install -e .[interpret]); rollout: attention rollout.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("explanation.png"),
        help="PNG to write (default: explanation.png).",
    )
    parser.add_argument(
        "--html", type=Path, default=None, help="Also write the shaded text as an HTML snippet."
    )
    parser.add_argument(
        "--top-k", "--top_k", type=int, default=5, help="How many top words to print (default 5)."
    )
    parser.add_argument(
        "--n-steps", "--n_steps", type=int, default=50, help="Integrated-gradients steps (default 50)."
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the classifier, explain the text, print the label and top words, write the picture."""
    from ..errors import UserInputError

    if args.top_k < 1:
        raise UserInputError(f"--top-k: {args.top_k} must be at least 1.")
    if not Path(args.model).is_dir():
        raise UserInputError(
            f"--model: {args.model} is not a folder; give a fine-tuned classifier's output folder."
        )

    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ..atomic_files import write_text_atomic
    from ..interpret import explain

    config = AutoConfig.from_pretrained(args.model)
    architectures = config.architectures or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        # AutoModelForSequenceClassification would load it with a new random head and explain noise
        raise UserInputError(
            f"--model: {args.model} holds {', '.join(architectures) or 'no architecture'}, not a sequence "
            "classifier; fine-tune one first (e.g. `sora-hf finetune --task sentiment`) and pass its output folder."
        )
    # rollout reads attention weights, which only the eager attention path returns
    extra = {"attn_implementation": "eager"} if args.method == "rollout" else {}
    model = AutoModelForSequenceClassification.from_pretrained(args.model, **extra).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    explanation = explain(model, tokenizer, args.text, method=args.method, n_steps=args.n_steps)

    print(f"label: {explanation.label} (probability {explanation.probability:.3f})")
    name = "integrated gradients" if args.method == "ig" else "attention rollout"
    print(f"top words ({name}):")
    for word, score in explanation.top_words(args.top_k):
        print(f"  {word}\t{score:+.4f}")
    if explanation.delta is not None:
        print(f"convergence delta: {explanation.delta:+.2e}")
    explanation.save_png(args.output)
    print(f"Wrote {args.output}")
    if args.html is not None:
        write_text_atomic(args.html, explanation.to_html() + "\n")
        print(f"Wrote {args.html}")
    return 0
