"""scripts/experiments/conv_anatomy.py: the paper's conv2 timed apart (docs/benchmarks.md)."""
from __future__ import annotations

import subprocess
import sys

from cli_helpers import SCRIPTS


def test_conv_anatomy_prints_every_part():
    script = SCRIPTS / "experiments" / "conv_anatomy.py"
    proc = subprocess.run([sys.executable, str(script), "--images", "1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for part in ("conv2d_forward", "conv2d_backward", "GEMM, preallocated out", "im2col alone"):
        assert part in proc.stdout, f"{part!r} missing from:\n{proc.stdout}"
