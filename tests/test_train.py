"""The whole system end to end on real Omniglot: train a tiny net, then eval and verify it.

Also the shipped model: it loads by default, with no data and no checkpoint given.
"""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from cli_helpers import load_script, run
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from tinysiamese.config import PRESETS, config_from_dict
from tinysiamese.model import SiameseNet
from tinysiamese.pretrained import pretrained_path


def two_drawings(omniglot_dir, tmp_path):
    """Two drawers' PNGs of one character and one of another, from the real archive."""
    with zipfile.ZipFile(omniglot_dir / "images_evaluation.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        paths = []
        for i, n in enumerate([names[0], names[1], names[20]]):
            paths.append(tmp_path / f"img{i}.png")
            paths[-1].write_bytes(z.read(n))
    return paths


@pytest.fixture(scope="module")
def tiny_run(omniglot_dir, tmp_path_factory):
    """A 3-epoch tiny run on the real training split: 1,024 pairs an epoch."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.json"
    cfg.write_text(json.dumps({"pairs_per_epoch": 1024, "val_trials": 40, "test_trials": 40,
                               "optim": {"lr": 0.2}}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 3,
                 "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_a_tiny_real_run_learns_and_writes_its_folder(tiny_run):
    out, output = tiny_run
    for name in ("config.json", "metrics.jsonl", "best.npz", "last.npz", "summary.json"):
        assert (out / name).is_file(), f"{name} missing from the run folder"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.01, f"loss did not fall: {[r['loss'] for r in rows]}"
    assert "one-shot accuracy on 40 test trials" in output
    saved = json.loads((out / "config.json").read_text())
    assert saved["preset"] == "tiny" and saved["loader"]["pairs_per_epoch"] == 1024
    assert "preset_given" not in saved and saved["run"]["epochs"] == 3


@pytest.mark.gpu
def test_a_tiny_run_on_cupy_follows_the_numpy_run(tiny_run, omniglot_dir, cupy_backend,
                                                   tmp_path):
    """Same seed, same data: one epoch on the GPU ends where the CPU's first epoch did."""
    cpu_out, _ = tiny_run
    out = tmp_path / "tiny-cupy"
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"pairs_per_epoch": 1024, "val_trials": 40, "test_trials": 40,
                               "optim": {"lr": 0.2}}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 1,
                 "--backend", "cupy", "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    cpu = json.loads((cpu_out / "metrics.jsonl").read_text().splitlines()[0])
    gpu = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    # float32 on two devices sums in different orders: close, not equal
    assert gpu["loss"] == pytest.approx(cpu["loss"], rel=1e-3), (gpu["loss"], cpu["loss"])
    result = run("eval", out / "best.npz", "--data", omniglot_dir, "--trials", 40,
                 "--backend", "cupy", "--json")
    assert result.exit_code == 0, result.output


def test_its_checkpoint_loads_in_eval_and_verify(tiny_run, omniglot_dir, tmp_path):
    out, _ = tiny_run
    result = run("eval", out / "best.npz", "--data", omniglot_dir, "--trials", 40, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["trials"] == 40 and report["ways"] == 20 and 0 <= report["accuracy"] <= 1
    result = run("eval", out / "best.npz", "--data", omniglot_dir, "--trials", 40, "--views", 8,
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["scorer"].endswith("mean of 8 views")
    assert run("eval", out / "best.npz", "--data", omniglot_dir, "--views", 3).exit_code == 2
    a, b, _ = two_drawings(omniglot_dir, tmp_path)
    result = run("verify", out / "best.npz", a, b)
    assert result.exit_code == 0, result.output
    p = float(result.output.split()[0])
    assert 0.0 <= p <= 1.0


def test_results_scores_an_ensemble_as_eval_does(tiny_run, omniglot_dir, tmp_path, capsys):
    """scripts/results.py: its first row for two checkpoints is `eval A B` on the same trials."""
    out, _ = tiny_run
    other = tmp_path / "other.npz"
    cfg = load_checkpoint(out / "best.npz").config
    model = SiameseNet(config_from_dict(cfg).network, backend=get_backend(),
                       rng=np.random.default_rng(1))
    save_checkpoint(other, model.params(), {"config": cfg})
    pair = [out / "best.npz", other]
    load_script("results").main(["--data", str(omniglot_dir), "--checkpoint", str(pair[0]),
                                 "--checkpoint", str(pair[1]), "--run", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    result = run("eval", *pair, "--data", omniglot_dir, "--json")
    assert result.exit_code == 0, result.output
    assert report["model"]["correct"] == json.loads(result.output)["correct"]
    assert report["checkpoints"] == [str(p) for p in pair]
    assert 0.5 <= report["verification"] <= 1.0 and report["verification_pairs"] == 10_000
    [trained] = report["runs"]
    assert trained["epochs"] == 3 and trained["loader"] == "pairs"


def test_the_shipped_model_loads_by_default(omniglot_dir, tmp_path):
    assert pretrained_path().is_file(), "tinysiamese/pretrained/small.npz is not in the package"
    ckpt = load_checkpoint(pretrained_path())
    assert ckpt.config["preset"] == "small"
    assert all(v.dtype == np.float16 for v in ckpt.params.values())
    same, same2, other = two_drawings(omniglot_dir, tmp_path)
    p_same = float(run("verify", same, same2).output.split()[0])
    p_other = float(run("verify", same, other).output.split()[0])
    assert p_same > p_other, f"P(same) {p_same:.3f} for one character, {p_other:.3f} for two"


def test_the_shipped_model_was_trained_by_the_small_preset_as_it_stands():
    """The README says `tinysiamese train --data ...` (the preset) trains the shipped model:
    a preset changed without retraining the shipped model, or the reverse, fails here."""
    shipped = config_from_dict(load_checkpoint(pretrained_path()).config)
    # test_trials: whether the run printed a test score, not how it trained
    assert shipped.replace("run", test_trials=400) == PRESETS["small"], \
        "the shipped model and the small preset differ"


def test_the_shipped_model_scores_as_the_readme_says(omniglot_dir):
    """The README's first results row: 83.2% on the 400 test trials (seed 0)."""
    result = run("eval", "--data", omniglot_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["trials"] == 400
    # BLAS round-off may move a near-tie; the README says 333 (83.2%)
    assert abs(report["correct"] - 333) <= 1, f"{report['correct']}/400 right, not 333"


def test_the_shipped_model_works_without_any_data(tmp_path):
    from PIL import Image

    img = np.full((105, 105), 255, np.uint8)
    img[30:75, 50:55] = 0  # a black bar on white, like an Omniglot drawing
    Image.fromarray(img).save(tmp_path / "bar.png")
    result = run("verify", tmp_path / "bar.png", tmp_path / "bar.png")
    assert result.exit_code == 0, result.output
    assert float(result.output.split()[0]) > 0.5, result.output
    model = model_from_checkpoint(load_checkpoint(pretrained_path()), get_backend("numpy"))
    assert model.n_params() == 689_217


def test_a_tiny_real_run_on_group_batches_learns(omniglot_dir, tmp_path):
    """Every pair within group batches (loader "groups"), on the real training split."""
    out, cfg = tmp_path / "groups", tmp_path / "groups.json"
    cfg.write_text(json.dumps({"loader": "groups", "batches_per_epoch": 24, "val_trials": 40,
                               "test_trials": 0, "optim": {"lr": 0.2},
                               "group": {"alphabets": 2, "characters": 4, "drawers": 2}}))
    result = run("train", "--data", omniglot_dir, "--preset", "tiny", "--epochs", 3,
                 "--config", cfg, "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.01, f"loss did not fall: {[r['loss'] for r in rows]}"
    assert "images/s" in result.output


@pytest.mark.parametrize("bad_epochs, elapsed, last_epoch, want", [
    (19, 0.0, 60.0, "epochs"),            # one epoch short of patience 20, no budget near
    (20, 0.0, 60.0, "early-stop"),        # patience reached
    (0, 54 * 60.0, 60.0, "epochs"),       # the next epoch ends exactly at the budget: go on
    (0, 54 * 60.0, 61.0, "time-budget"),  # it would end past the 55 minutes
])
def test_stopping_rule_stops_on_patience_and_on_the_time_budget(bad_epochs, elapsed,
                                                                 last_epoch, want):
    from tinysiamese.config import build_config
    from tinysiamese.runfolder import Progress
    from tinysiamese.train import stopping_rule

    cfg = build_config("small", {"run": {"patience": 20, "time_budget_minutes": 55}})
    said = []
    assert stopping_rule(cfg, Progress(bad_epochs=bad_epochs), elapsed, last_epoch,
                         said.append) == want
    assert bool(said) == (want != "epochs")  # a stop says why, going on says nothing
    no_budget = build_config("small", {"run": {"time_budget_minutes": None}})
    assert stopping_rule(no_budget, Progress(), 10**9, 10**9, said.append) == "epochs"
