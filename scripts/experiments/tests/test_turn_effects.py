"""scripts/experiments/turn_effects.py: why step turns read slower (docs/benchmarks.md)."""
from __future__ import annotations

import subprocess
import sys

from cli_helpers import SCRIPTS


def test_turn_effects_times_every_case():
    script = SCRIPTS / "experiments" / "turn_effects.py"
    proc = subprocess.run([sys.executable, str(script), "--preset", "tiny", "--steps", "1",
                           "--threads", "1", "--sweep-mb", "1", "--pause-ms", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tiny group step, 64 images, 1 thread(s), median of 1" in proc.stdout, proc.stdout
    for case in ("alone", "after a sweep"):
        assert f"  {case} " in proc.stdout, f"{case!r} missing from:\n{proc.stdout}"
    torch_cases = ("after PyTorch", "after PyTorch, a pause", "PyTorch alone")
    if "PyTorch is not installed" not in proc.stdout:
        for case in torch_cases:
            assert f"  {case} " in proc.stdout, f"{case!r} missing from:\n{proc.stdout}"
