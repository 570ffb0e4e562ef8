"""scripts/experiments/tune_small.py: the sweeps of tuning rounds 1-2 and 17-18 (docs/tuning.md)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from cli_helpers import SCRIPTS, load_script, run


def test_tune_small_ranks_its_variants_on_validation(omniglot_dir, tmp_path):
    """Two variants, one short epoch each, ranked in summary.json."""
    script = SCRIPTS / "experiments" / "tune_small.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--data", str(omniglot_dir), "--only", "groups,lr04",
         "--parallel", "2", "--epochs", "1", "--pairs-per-epoch", "128",
         "--batches-per-epoch", "4", "--val-trials", "20", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    results = summary["results"]
    assert {r["variant"] for r in results} == {"groups", "lr04"}
    assert all(r["epochs"] == 1 and 0 <= r["best_val"] <= 1 for r in results)
    assert results[0]["best_val"] >= results[1]["best_val"], "not ranked by validation"
    saved = json.loads((tmp_path / "lr04" / "config.json").read_text())
    assert saved["optim"]["lr"] == 0.04 and saved["run"]["test_trials"] == 0, "test alphabets were used"


def test_tune_small_takes_each_variants_epochs_and_seed_and_judges_on_fresh_trials(
        omniglot_dir, tmp_path, monkeypatch):
    """A variant's "epochs"/"seed" reach the command line, not its config; --judge-trials
    scores its best.npz and the shipped model on validation trials of --judge-seed."""
    tune = load_script("experiments/tune_small")
    monkeypatch.setattr(tune, "VARIANTS", {"probe": {"epochs": 2, "seed": 3, "dense": 64}})
    monkeypatch.setattr("sys.argv", [
        "tune_small.py", "--data", str(omniglot_dir), "--only", "probe", "--epochs", "9",
        "--batches-per-epoch", "2", "--val-trials", "20", "--judge-trials", "20",
        "--judge-seed", "5", "--views", "2", "--out", str(tmp_path)])
    assert tune.main() == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    (row,) = summary["results"]
    assert row["epochs"] == 2 and row["seed"] == 3, row
    saved = json.loads((tmp_path / "probe" / "config.json").read_text())
    assert saved["run"]["seed"] == 3 and saved["run"]["epochs"] == 2
    assert saved["network"]["dense"] == 64
    assert saved["loader"]["batches_per_epoch"] == 2, "--batches-per-epoch skipped a preset-loader variant"
    assert "epochs" not in json.loads((tmp_path / "probe" / "overrides.json").read_text())
    judged = run("eval", tmp_path / "probe" / "best.npz", "--data", omniglot_dir, "--split", "val",
                 "--trials", 20, "--seed", 5, "--views", 2, "--json")
    assert row["judge"] == json.loads(judged.output)["accuracy"]
    shipped = run("eval", "--data", omniglot_dir, "--split", "val", "--trials", 20, "--seed", 5,
                  "--views", 2, "--json")
    assert summary["judge"] == {"trials": 20, "seed": 5, "views": 2,
                                "shipped": json.loads(shipped.output)["accuracy"]}


def test_tune_small_judge_says_which_checkpoint_failed_and_gives_none(tmp_path, capsys):
    """A checkpoint that eval cannot read leaves its row's judged score empty, not a crash."""
    tune = load_script("experiments/tune_small")
    args = argparse.Namespace(data=str(tmp_path), judge_trials=20, judge_seed=0, views=1,
                              backend="numpy", threads=1)
    assert tune.judge(tmp_path / "missing.npz", args) is None
    err = capsys.readouterr().err
    assert "judging" in err and "missing.npz" in err and "Error:" in err, err
