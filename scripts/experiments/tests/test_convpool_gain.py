"""scripts/experiments/convpool_gain.py: where one conv-and-pool product pays."""
from __future__ import annotations

import subprocess
import sys

from cli_helpers import SCRIPTS


def test_convpool_gain_prints_a_row_per_block():
    script = SCRIPTS / "experiments" / "convpool_gain.py"
    proc = subprocess.run([sys.executable, str(script), "--threads", "2", "--repeats", "1",
                           "--blocks", "small conv3,tiny conv2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Workers(2"), proc.stdout
    rows = [l for l in lines[2:] if l.strip()]
    assert [r[:13].strip() for r in rows] == ["small conv3", "tiny conv2"], proc.stdout
    for r in rows:
        separate, fused, ratio = map(float, r.split()[-3:])
        assert separate > 0 and fused > 0 and abs(ratio - separate / fused) < 0.02, r
