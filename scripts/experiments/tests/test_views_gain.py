"""scripts/experiments/views_gain.py: the test-time views of tuning round 10 (docs/tuning.md)."""
from __future__ import annotations

import json

import pytest

from cli_helpers import load_script, run


@pytest.fixture(scope="module")
def tiny_run(omniglot_dir, tmp_path_factory):
    """A one-epoch tiny run on the real training split (256 pairs): a checkpoint to score."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.json"
    cfg.write_text(json.dumps({"pairs_per_epoch": 256, "val_trials": 20, "test_trials": 0}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 1,
                 "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_views_gain_counts_what_eval_counts(tiny_run, omniglot_dir, capsys):
    """views_gain.py scores as `eval --views N` does."""
    out, _ = tiny_run
    ckpt = str(out / "best.npz")
    views_gain = load_script("experiments/views_gain")
    assert views_gain.main([ckpt, "--data", str(omniglot_dir), "--trials", "40",
                            "--seed", "3", "--views", "1,4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for views in (1, 4):
        result = run("eval", ckpt, "--data", omniglot_dir, "--split", "val", "--trials", 40,
                     "--seed", 3, "--views", views, "--json")
        assert result.exit_code == 0, result.output
        correct = json.loads(result.output)["correct"]
        assert report["correct"][ckpt][str(views)] == correct
        assert report["mean_accuracy"][str(views)] == correct / 40
    with pytest.raises(SystemExit):
        views_gain.main([ckpt, "--data", str(omniglot_dir), "--views", "3"])
