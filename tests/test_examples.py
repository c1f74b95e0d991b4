"""The plain-Avalanche examples in examples/ run to completion (slow: run with -m slow)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script", ["mas_plain_avalanche.py", "piggyback_plain_avalanche.py",
                                    "hsf_plain_avalanche.py"])
def test_example_runs(script, tmp_path):
    # Run from a temporary directory so the TensorBoard logs (runs/examples/...) land there.
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Final accuracy per experience" in done.stdout
