"""scripts/experiments/probe_gap.py: the probes of tuning round 4 (docs/tuning.md)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from cli_helpers import SCRIPTS, load_script
from tinysiamese.backend import get_backend
from tinysiamese.config import PRESETS
from tinysiamese.model import SiameseNet

PROBE_GAP = SCRIPTS / "experiments" / "probe_gap.py"


def test_torch_default_init_draws_within_the_fan_in_bound():
    probe_gap = load_script("experiments/probe_gap")
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"),
                       rng=np.random.default_rng(0))
    before = {k: v.copy() for k, v in model.params().items()}
    probe_gap.torch_default_init(model, np.random.default_rng(1))
    fan_in = {"conv1": 1 * 5 * 5, "conv2": 4 * 3 * 3, "conv3": 8 * 3 * 3,
              "dense1": model.params()["dense1.W"].shape[0], "join": 32}
    for k, v in model.params().items():
        bound = 1 / np.sqrt(fan_in[k.split(".")[0]])
        assert np.abs(v).max() <= bound, f"{k} leaves U(-{bound:.3f}, {bound:.3f})"
        if v.size >= 8:  # (a lone bias may land anywhere in its range)
            assert np.abs(v).max() > 0.5 * bound, f"{k} does not fill its range"
        assert not np.array_equal(v, before[k]), f"{k} was not redrawn"


def _probe_losses(probe: str, omniglot_dir, out: Path) -> list[float]:
    tiny = {"pairs_per_epoch": 128, "batch_size": 32, "val_trials": 20, "rotations": 1}
    proc = subprocess.run(
        [sys.executable, str(PROBE_GAP), probe, "--data", str(omniglot_dir),
         "--out", str(out), "--epochs", "1", "--config", json.dumps(tiny)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["test_trials"] == 0, "a probe scored the test alphabets"
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_probe_trains_differently_from_the_preset(omniglot_dir, tmp_path):
    plain = _probe_losses("none", omniglot_dir, tmp_path / "none")
    probed = _probe_losses("inv+nodistort", omniglot_dir, tmp_path / "probed")
    assert len(plain) == len(probed) == 1
    assert plain != probed, "the probes changed nothing: same seed, same loss"


def test_an_unknown_probe_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(PROBE_GAP), "bogus", "--data", str(tmp_path),
         "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown probe" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists(), "a refused probe wrote its folder"
