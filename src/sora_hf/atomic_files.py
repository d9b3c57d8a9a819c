"""Files and folders written whole or not at all, safe when several processes write the same one at once.

A writer builds its result under a unique temporary name beside the target (`.<name>.tmp-<host>-<pid>-<token>`,
same folder, so the final rename is atomic), writes a folder's completeness marker last, and renames it into place
in one step. Readers trust a folder only when its marker is there and records what they expect. When two processes
publish the same folder, the first rename wins; the other removes its copy and uses the winner's. Temporary names
that a killed process left behind on this host are removed by the next writer of the same target.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

StrPath = str | os.PathLike
MARKER_FILE = ".sora_hf_complete.json"
_SHARD = re.compile(r"(?P<prefix>.+)-\d{5}-of-\d{5}\.safetensors")


def _temporary_name(target: Path, kind: str) -> Path:
    """`.<name>.<kind>-<host>-<pid>-<token>` beside `target`: unique, hidden, and tells whose it is."""
    return target.with_name(
        f".{target.name}.{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: never clean up after it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary copies of `target` that processes of this host, now dead, left behind."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:tmp|old)-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{{8}}")
    try:
        names = os.listdir(target.parent)
    except FileNotFoundError:
        return
    host = socket.gethostname()
    for name in names:
        match = pattern.fullmatch(name)
        if match and match["host"] == host and not _pid_alive(int(match["pid"])):
            _remove(target.parent / name)


@contextmanager
def temporary_path(target: StrPath) -> Iterator[Path]:
    """A fresh unique path beside `target` (nothing is created there), removed on exit unless it was renamed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    temporary = _temporary_name(target, "tmp")
    try:
        yield temporary
    finally:
        _remove(temporary)


@contextmanager
def atomic_file(path: StrPath) -> Iterator[Path]:
    """Write to the yielded temporary path; on success it replaces `path` in one rename, so a reader sees the old
    or the new file, never half of one. On an error `path` is left as it was."""
    path = Path(path)
    with temporary_path(path) as temporary:
        yield temporary
        os.replace(temporary, path)


def write_text_atomic(path: StrPath, text: str) -> None:
    """`Path(path).write_text(text)` (UTF-8), replacing the file in one rename."""
    with atomic_file(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_marker(folder: StrPath, marker_file: str = MARKER_FILE) -> dict | None:
    """The completeness marker of `folder`, or None when it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(folder) / marker_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_complete(folder: StrPath, expected: dict | None = None, marker_file: str = MARKER_FILE) -> bool:
    """Whether `folder` was published whole: its marker is there and, when given, equals `expected`."""
    marker = read_marker(folder, marker_file)
    return marker is not None and (expected is None or marker == expected)


def _move_aside(target: Path) -> None:
    """Rename `target` out of the way (one atomic step), then delete it; nothing when it is already gone."""
    aside = _temporary_name(target, "old")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return
    _remove(aside)


def publish_folder(
    staging: Path,
    target: Path,
    marker: dict | None,
    *,
    replace: bool = False,
    marker_file: str = MARKER_FILE,
) -> bool:
    """Write `marker` into `staging` and rename it to `target`; whether ours was published.

    A complete `target` already there (another process won the race) is kept and `staging` removed (False), unless
    `replace`; an incomplete one (no or another marker) is moved aside first. With `marker=None` the target must be
    absent or empty, else `FileExistsError`.
    """
    if marker is not None:
        (staging / marker_file).write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
    if replace and marker is not None:
        _move_aside(target)
    for _ in range(100):  # each round either publishes or clears the way; only a storm of writers loops again
        try:
            os.rename(staging, target)  # a folder replaces only an absent or empty one
            return True
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if marker is None:
            raise FileExistsError(
                f"{target} was filled by another process meanwhile; pass a new or empty folder."
            )
        if is_complete(target, marker, marker_file):
            _remove(staging)
            return False
        _move_aside(target)
    raise RuntimeError(f"Could not publish {target}: other processes kept replacing it.")


def write_folder(
    target: StrPath,
    write: Callable[[Path], Any],
    marker: dict | None,
    *,
    replace: bool = False,
    marker_file: str = MARKER_FILE,
) -> bool:
    """Run `write(staging)` into a fresh folder beside `target` and publish it (see `publish_folder`); whether ours
    was published (False: another process's complete copy won, and is what `target` holds)."""
    target = Path(target)
    with temporary_path(target) as staging:
        staging.mkdir()
        write(staging)
        return publish_folder(staging, target, marker, replace=replace, marker_file=marker_file)


def save_files_atomically(
    save: Callable[..., Any], save_directory: StrPath, *args: Any, **kwargs: Any
) -> None:
    """Call `save(staging, *args, **kwargs)` (a `save_pretrained`) into a hidden folder inside `save_directory`,
    then move each file it wrote into place with one rename, so a process loading the folder meanwhile reads the
    old or the new file, never half of one. Shards of an earlier, differently sharded save are then removed."""
    if kwargs.get(
        "push_to_hub"
    ):  # the repo save_pretrained names after the folder, not after our staging one
        kwargs.setdefault("repo_id", os.fspath(save_directory).split(os.path.sep)[-1])
    save_directory = Path(save_directory)
    if save_directory.is_file():  # save_pretrained logs the error
        return save(save_directory, *args, **kwargs)
    save_directory.mkdir(parents=True, exist_ok=True)
    with temporary_path(save_directory / "save") as staging:
        staging.mkdir()
        save(staging, *args, **kwargs)
        written = sorted(path.relative_to(staging) for path in staging.rglob("*") if path.is_file())
        for relative in written:
            (save_directory / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, save_directory / relative)
    prefixes = {match["prefix"] for name in written if (match := _SHARD.fullmatch(name.name))}
    prefixes |= {name.name.removesuffix(".safetensors") for name in written if name.suffix == ".safetensors"}
    names = {name.name for name in written}
    for path in save_directory.iterdir():
        match = _SHARD.fullmatch(path.name)
        if match and match["prefix"] in prefixes and path.name not in names and path.is_file():
            path.unlink(missing_ok=True)


__all__ = [
    "MARKER_FILE",
    "atomic_file",
    "is_complete",
    "publish_folder",
    "read_marker",
    "remove_stale_temporaries",
    "save_files_atomically",
    "temporary_path",
    "write_folder",
    "write_text_atomic",
]
