"""A wheel of the repo ships the model-card template: installed alone in a fresh venv, it writes the package's card."""

import os
import shutil
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from sora_hf.hub import DEFAULT_TEMPLATE_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_IN_WHEEL = "sora_hf/templates/model_card.md"

# Run by the fresh venv's interpreter, outside the repo: argv[1] is the venv, argv[2] the checkpoint folder.
CARD_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import sora_hf
    from sora_hf import SoraConfig, SoraForSequenceClassification
    from sora_hf.hub import write_model_card
    from transformers import AutoModelForSequenceClassification

    venv, checkpoint = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    assert Path(sora_hf.__file__).resolve().is_relative_to(venv), f"sora_hf imported from {sora_hf.__file__}"
    config = SoraConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2
    )
    SoraForSequenceClassification(config).save_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    log_history = [{"loss": 0.7, "epoch": 1.0, "step": 5}, {"eval_loss": 0.6, "eval_accuracy": 0.75, "step": 5}]
    write_model_card(None, checkpoint, model=model, log_history=log_history, dataset="tiny-sentiment")
    """
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repo's sources (an in-tree build would reuse stale files under build/)."""
    source = tmp_path_factory.mktemp("source")
    for path in REPO_ROOT.iterdir():
        if path.is_file():  # setup.cfg, pyproject.toml, README.md (the long description) and the like
            shutil.copy2(path, source / path.name)
    shutil.copytree(
        REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    wheel_dir = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
        ]
        + [str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = wheel_dir.glob("sora_hf-*.whl")
    return built


def test_wheel_lists_the_card_template(wheel):
    with zipfile.ZipFile(wheel) as archive:
        assert TEMPLATE_IN_WHEEL in archive.namelist()
        assert archive.read(TEMPLATE_IN_WHEEL) == DEFAULT_TEMPLATE_PATH.read_bytes()


def test_card_from_a_wheel_install_uses_the_packaged_template(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # pip of this interpreter installs into the fresh venv, before that venv can see this one's packages
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
        + [str(wheel)],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Plain path lines: the dependencies become importable, but the .pth files there (the repo's editable
    # install among them) are not run, so the only sora_hf is the wheel's.
    Path(purelib, "host_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "write_card.py").write_text(CARD_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    checkpoint = tmp_path / "checkpoint"
    result = subprocess.run(
        [str(python), "write_card.py", str(venv), str(checkpoint)],
        cwd=elsewhere,
        env=env | {"HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    card = (checkpoint / "README.md").read_text()
    # lines only the package's template has (huggingface_hub's default template has neither)
    assert "import sora_hf  # registers the Sora classes with the transformers Auto factories" in card
    assert 'model = AutoModelForSequenceClassification.from_pretrained("checkpoint")' in card
    assert "| accuracy | 0.7500 |" in card
