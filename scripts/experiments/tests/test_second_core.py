"""scripts/experiments/second_core.py: where the second core goes (docs/benchmarks.md)."""
from __future__ import annotations

import subprocess
import sys

from cli_helpers import SCRIPTS


def test_second_core_prints_its_three_parts():
    script = SCRIPTS / "experiments" / "second_core.py"
    proc = subprocess.run([sys.executable, str(script), "--preset", "tiny", "--threads", "2",
                           "--steps", "1", "--repeats", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("Workers(2, products)"), out
    for part in ("1. a hand-over with no work:", "2. c = a + b, float32:",
                 "16 MB arrays: serial", "3. the tiny group step's splits"):
        assert part in out, f"{part!r} missing from:\n{out}"
    # a table of the splits ending in their sum (the tiny net splits its convs' chunks)
    assert "   all  " in out or "(none:" in out, out
