"""Every head's outputs on fixed batches equal those of the model code before the issue-24 reshaping."""

import subprocess
import sys

from conftest import FIXTURES_DIR, SCRIPTS_DIR

SCRIPT = SCRIPTS_DIR / "reference_outputs.py"
REFERENCE = FIXTURES_DIR / "reference_outputs"


def test_every_head_reproduces_the_reference_outputs():
    """Tiny configs (text, mean pooling, seq2seq, distillation heads, image + audio fusion, convolutional patches),
    both towers, and every head loaded from the packaged `sora`: loss, logits and states within float rounding
    (bit-identical on the machine that made them; `--exact` checks that)."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "compare", str(REFERENCE)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "compared 152 output tensors; 0 differ" in result.stdout
