"""`sora-hf pull`: download a Hub repo at a revision into a local folder (`snapshot_download`)."""

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `pull` sub-command."""
    parser = subparsers.add_parser(
        "pull",
        help="Download every file of a Hub repo into a local folder.",
        description="Download every file of --repo-id at --revision into --local-dir. The folder appears only once "
        "the download is complete. HF_ENDPOINT picks the Hub.",
    )
    parser.add_argument("--repo-id", "--repo_id", required=True, help="Repo to download, `namespace/name`.")
    parser.add_argument("--revision", default=None, help="Branch or commit id (default: main).")
    parser.add_argument(
        "--local-dir", "--local_dir", type=Path, required=True, help="New or empty folder to download into."
    )
    parser.add_argument(
        "--token", default=None, help="Hub token, needed for private repos (default: HF_TOKEN)."
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pull and print where the files are; errors go to stderr with exit status 1."""
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import pull_repo

    try:
        local_dir = pull_repo(args.repo_id, args.local_dir, revision=args.revision, token=args.token)
    except (ValueError, ConnectionError, HfHubHTTPError) as err:
        print(f"sora-hf pull: error: {err}", file=sys.stderr)
        return 1
    files = sorted(str(p.relative_to(local_dir)) for p in local_dir.rglob("*") if p.is_file())
    print(f"Pulled {args.repo_id} ({len(files)} files) into {local_dir}")
    return 0
