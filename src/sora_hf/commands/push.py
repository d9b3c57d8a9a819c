"""`sora-hf push`: upload what a run folder means to share (model, tokenizer, card, results) in one commit."""

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..hub import PushPlan


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `push` sub-command."""
    parser = subparsers.add_parser(
        "push",
        help="Upload a folder's model, tokenizer, adapter, card, plots and results to a Hub repo in one commit.",
        description="Upload what --folder means to share to --repo-id in one commit, creating the repo (and the "
        "branch --revision) when missing. By default that is the model, adapter, tokenizer and processor files, "
        "README.md, plots and results (*.safetensors *.json *.txt *.md *.png ...; sora_hf.hub.PUSH_ALLOW_PATTERNS), "
        "never Trainer checkpoints, optimizer state, pickles (training_args.bin, *.pt), hidden files or logs "
        "(sora_hf.hub.PUSH_IGNORE_PATTERNS). --include/--exclude change that set; --dry-run lists it. Symlinks that lead "
        "outside --folder, and text files holding an hf_ token, stop the push. HF_ENDPOINT picks the Hub; the "
        "token comes from --token, HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument(
        "--folder", type=Path, required=True, help="Folder to upload, e.g. a save_pretrained output."
    )
    parser.add_argument(
        "--repo-id",
        "--repo_id",
        required=True,
        help="Target repo, `namespace/name` (or `name` for your own).",
    )
    parser.add_argument(
        "--private", action="store_true", help="Create the repo private (ignored if it exists)."
    )
    parser.add_argument(
        "--revision", default=None, help="Branch to commit to; created from main when missing."
    )
    parser.add_argument(
        "--token", default=None, help="Hub token with write access (default: HF_TOKEN or login)."
    )
    parser.add_argument("--commit-message", "--commit_message", default=None, help="Commit title.")
    parser.add_argument(
        "--no-create", "--no_create", action="store_true", help="Fail when the repo does not exist."
    )
    parser.add_argument(
        "--include",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATTERN",
        help="Also upload files matching these fnmatch patterns, even ones left out by default "
        "(`*` crosses folders: --include 'checkpoint-2/*'; --include '*' uploads everything).",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATTERN",
        help="Do not upload files matching these fnmatch patterns (wins over --include).",
    )
    parser.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="Only list the files a push would upload; contact no Hub.",
    )
    parser.set_defaults(func=run)


def _summary(paths: list[str]) -> str:
    """`checkpoint-1/ (4 files), runs/ (1 file), training_args.bin`: left-out files grouped by top folder."""
    groups = Counter(path.split("/", 1)[0] + "/" if "/" in path else path for path in paths)
    return ", ".join(
        name if not name.endswith("/") else f"{name} ({count} file{'s' if count > 1 else ''})"
        for name, count in groups.items()
    )


def print_plan(plan: "PushPlan", *, dry_run: bool = False) -> None:
    """List the files a push uploads, and what it leaves out of the folder."""
    verb = "Would upload" if dry_run else "Uploading"
    print(f"{verb} {len(plan.files)} file{'s' if len(plan.files) != 1 else ''} from {plan.folder}:")
    for path in plan.files:
        print(f"  {path}")
    if plan.left_out:
        print(f"Left out (add with --include PATTERN): {_summary(plan.left_out)}")


def run(args: argparse.Namespace) -> int:
    """List the files, push them and print the commit URL; errors go to stderr with exit status 1."""
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import plan_push, push_folder

    try:
        plan = plan_push(args.folder, include=args.include, exclude=args.exclude)
        print_plan(plan, dry_run=args.dry_run)
        if args.dry_run:
            return 0
        commit = push_folder(
            plan,
            args.repo_id,
            token=args.token,
            private=args.private or None,
            revision=args.revision,
            commit_message=args.commit_message,
            create=not args.no_create,
        )
    except (ValueError, ConnectionError, HfHubHTTPError) as err:
        print(f"sora-hf push: error: {err}", file=sys.stderr)
        return 1
    print(f"Pushed {args.folder} to {commit.repo_url.repo_id}@{commit.oid} ({commit.commit_url})")
    return 0
