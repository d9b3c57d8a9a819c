"""`sora-hf build-corpus`: build (or reuse) the cached pretraining corpus and print its per-source summary."""

import argparse


class CorpusSources:
    """The corpus source names, read from `sora_hf.data.corpus` (datasets) only when argparse needs them."""

    def names(self) -> list[str]:
        from ..data.corpus import SOURCES

        return list(SOURCES)

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.names()


def run(args: argparse.Namespace) -> int:
    """Build the corpus with the parsed options; the summary table is printed by `build_corpus`."""
    from ..data.corpus import build_corpus

    corpus = build_corpus(
        output_dir=args.output_dir,
        sources=args.sources,
        max_docs_per_source=args.max_docs_per_source,
        force=args.force,
    )
    print(
        f"train: {corpus['train'].num_rows:,} documents, validation: {corpus['validation'].num_rows:,} documents"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `build-corpus` sub-command."""
    parser = subparsers.add_parser(
        "build-corpus",
        help="Build the pretraining corpus (Arrow, cached) from the installed Debian data packages.",
        description="Build the deterministic pretraining corpus with a held-out validation split and save it "
        "with `save_to_disk`; an existing build is reused unless --force is given.",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        default=None,
        help="Where to save it (default: ~/.cache/sora_hf/corpus/<version>[-subset]).",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=CorpusSources(),
        default=None,
        metavar="SOURCE",
        help="Subset of sources (default: all): %(choices)s.",
    )
    parser.add_argument(
        "--max-docs-per-source",
        "--max_docs_per_source",
        type=int,
        default=None,
        metavar="N",
        help="Keep only the first N documents of each source (quick runs and tests).",
    )
    parser.add_argument(
        "--force", action="store_true", help="Rebuild even if the output directory holds a corpus."
    )
    parser.set_defaults(func=run)
