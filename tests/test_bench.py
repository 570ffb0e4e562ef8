"""Smoke tests of scripts/bench.py on the tiny preset: seconds, and no PyTorch needed."""
from __future__ import annotations

import io
import json
import platform
import subprocess
import sys

import pytest
from cli_helpers import SCRIPTS, load_script

BENCH = SCRIPTS / "bench.py"


@pytest.fixture(scope="module")
def bench():
    return load_script("bench")


def test_one_row_json_from_the_command_line():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--preset", "tiny", "--batch", "4", "--json", "--no-torch",
         "--warmup", "0", "--steps", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"bench.py failed: {proc.stderr[-2000:]}"
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("pairs_per_s", "eval_pairs_per_s", "peak_mb", "torch_pairs_per_s", "ratio",
                "machine"):
        assert key in row, f"the JSON row lacks {key!r}"
    assert row["pairs_per_s"] > 0, f"training throughput {row['pairs_per_s']}"
    assert row["eval_pairs_per_s"] > 0, f"evaluation throughput {row['eval_pairs_per_s']}"
    assert row["peak_mb"] > 0, f"peak memory {row['peak_mb']} MB"
    assert row["torch_pairs_per_s"] is None and row["ratio"] is None, "--no-torch still ran torch"
    for key in ("cpu", "cores", "numpy", "blas", "threads"):
        assert key in row["machine"], f"the machine description lacks {key!r}"
    assert row["machine"]["threads"] == 1
    if platform.libc_ver()[0] == "glibc":  # by default the benchmark runs as training does
        assert row["malloc_tuned"] is True, "bench.py did not keep freed memory as train does"


def test_layer_breakdown_covers_every_layer_without_torch(bench):
    torch_was_loaded = "torch" in sys.modules
    row = bench.run_row("tiny", 2, "numpy", 1, use_torch=False, layers=True, warmup=0, timed=1)
    names = [l["layer"] for l in row["layers"]]
    assert names[:3] == ["conv1", "relu1", "pool1"], f"layers {names}"
    assert {"dense1", "join+loss", "optimizer"} <= set(names), f"layers {names}"
    assert all(l["forward_ms"] >= 0 and l["backward_ms"] >= 0 for l in row["layers"])
    assert torch_was_loaded or "torch" not in sys.modules, "--no-torch imported torch"


def test_table_prints_rows_with_and_without_torch(bench):
    rows = [
        {"preset": "small", "batch": 32, "pairs_per_s": 100.0, "eval_pairs_per_s": 300.0,
         "peak_mb": 150.0, "torch_pairs_per_s": 125.0, "ratio": 0.8,
         "torch_cl_pairs_per_s": None, "ratio_cl": None},
        {"preset": "koch", "batch": 128, "error": "killed"},
    ]
    out = io.StringIO()
    bench.print_table(rows, out=out)
    text = out.getvalue()
    assert "0.80" in text and "125.0" in text, text
    assert "failed: killed" in text, text
