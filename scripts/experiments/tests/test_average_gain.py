"""scripts/experiments/average_gain.py: the weight average of tuning round 8 (docs/tuning.md)."""
from __future__ import annotations

import json

import pytest

from cli_helpers import load_script, run


def test_average_gain_scores_the_average_as_training_validated_it(omniglot_dir, tmp_path, capsys):
    """One epoch: best.npz is that epoch's average, so the script's "their average" line on
    the run's own validation trials (seed 0 + 1) is the epoch's val_accuracy."""
    out, cfg = tmp_path / "run", tmp_path / "avg.json"
    cfg.write_text(json.dumps({"loader": "groups", "batches_per_epoch": 4, "val_trials": 20,
                               "test_trials": 0, "optim": {"average": 0.9},
                               "group": {"alphabets": 2, "characters": 3, "drawers": 2}}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 1,
                 "--seed", 0, "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    gain = load_script("experiments/average_gain")
    assert gain.main([str(out), "--data", str(omniglot_dir), "--trials", "20", "--seed", "1"]) == 0
    val = json.loads((out / "metrics.jsonl").read_text())["val_accuracy"]
    printed = capsys.readouterr().out
    assert f"their average {100 * val:5.1f}%" in printed, printed
    assert "last weights" in printed, printed


def test_average_gain_refuses_a_run_without_an_average(omniglot_dir, tmp_path):
    out, cfg = tmp_path / "run", tmp_path / "plain.json"
    cfg.write_text(json.dumps({"pairs_per_epoch": 64, "val_trials": 20, "test_trials": 0,
                               "optim": {"average": 0}}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 1,
                 "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    with pytest.raises(SystemExit) as stopped:
        load_script("experiments/average_gain").main([str(out), "--data", str(omniglot_dir)])
    assert stopped.value.code == 2, "a run without an average was not a usage error"
