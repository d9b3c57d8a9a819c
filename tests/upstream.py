"""Load transformers' own common test suites from the sdist matching the installed version.

The sdist ships `tests/test_*_common.py` but not three modules they import (`generation/test_utils.py`,
`exporters/test_export.py`, `utils/test_configuration_utils.py`). We write minimal stand-ins for those at
test time: empty mixins for the two suites the sdist does not ship (so their tests are not run), and the
v5 `config_common_kwargs` table. Nothing of upstream's code is committed; it lives in `.cache/upstream`.
"""

import importlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import transformers
from filelock import FileLock

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "upstream"
PACKAGE = "transformers_upstream_tests"

_STAND_INS = {
    "generation/__init__.py": "",
    # The sdist does not ship tests/generation/test_utils.py: no generate suite can run from it.
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "exporters/__init__.py": "",
    # The sdist does not ship tests/exporters/test_export.py: no export suite can run from it.
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "utils/__init__.py": "",
    # Every field of transformers 5's PreTrainedConfig, each set to a non-default value.
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        "    'return_dict': False,\n"
        "    'output_hidden_states': True,\n"
        "    'dtype': 'float16',\n"
        "    'chunk_size_feed_forward': 5,\n"
        "    'architectures': ['BertModel'],\n"
        "    'id2label': {0: 'label'},\n"
        "    'label2id': {'label': '0'},\n"
        "    'problem_type': 'regression',\n"
        "}\n"
    ),
}


def _download_and_extract(target: Path) -> None:
    version = transformers.__version__
    archive = CACHE_DIR / f"transformers-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                f"transformers=={version}",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-d",
                str(CACHE_DIR),
            ],
            check=True,
        )
    staging = target.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prefix = f"transformers-{version}/tests/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith(prefix) and "/" not in member.name[len(prefix) :]:
                member.name = member.name[len(prefix) :]
                tar.extract(member, staging, filter="data")
    (staging / "__init__.py").write_text("")
    for relative, text in _STAND_INS.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    staging.rename(target)  # atomic: a half-extracted folder is never imported


def upstream_module(name: str):
    """Import `tests/<name>.py` of the installed transformers version's sdist."""
    version_dir = CACHE_DIR / f"v{transformers.__version__}"
    target = version_dir / PACKAGE
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE_DIR / "download.lock")):
        if not target.exists():
            version_dir.mkdir(parents=True, exist_ok=True)
            _download_and_extract(target)
    if str(version_dir) not in sys.path:
        sys.path.insert(0, str(version_dir))
    return importlib.import_module(f"{PACKAGE}.{name}")
