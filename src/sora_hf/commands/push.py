"""`sora-hf push`: upload a saved model folder to the Hub in one commit (`HfApi.upload_folder`)."""

import argparse
import sys
from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError

from ..hub import push_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `push` sub-command."""
    parser = subparsers.add_parser(
        "push",
        help="Upload a folder (model, tokenizer, adapter, card) to a Hub repo in one commit.",
        description="Upload every file of --folder to --repo-id in one commit, creating the repo (and the branch "
        "--revision) when missing. HF_ENDPOINT picks the Hub; the token comes from --token, HF_TOKEN or "
        "`hf auth login`.",
    )
    parser.add_argument(
        "--folder", type=Path, required=True, help="Folder to upload, e.g. a save_pretrained output."
    )
    parser.add_argument(
        "--repo-id", required=True, help="Target repo, `namespace/name` (or `name` for your own)."
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
    parser.add_argument("--commit-message", default=None, help="Commit title.")
    parser.add_argument("--no-create", action="store_true", help="Fail when the repo does not exist.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Push and print the commit URL; errors go to stderr with exit status 1."""
    try:
        commit = push_folder(
            args.folder,
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
