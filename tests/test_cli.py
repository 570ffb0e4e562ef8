"""The command line as a whole: every command's help, the options of `train` with the default
preset, and the JSON outputs meant for other programs (autograders, scripts)."""
from __future__ import annotations

import json

import click
import pytest
from cli_helpers import assert_one_line_error, run
from PIL import Image

from tinysiamese.cli import main
from tinysiamese.cli.train import command_line_settings
from tinysiamese.config import PRESETS, ConfigError, with_overrides


def all_commands(group=main, prefix=()):
    """Every command's words: ("train",), ("data", "download"), ..."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("words", list(all_commands()), ids=" ".join)
def test_every_command_has_help_with_examples_that_need_no_private_folder(words):
    result = run(*words, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and f"tinysiamese {' '.join(words)}" in result.output
    assert "shared/data" not in result.output, "an example names a folder only this repo's machines have"


def settings(preset, **options):
    """The config `train` runs with these options on ``preset``."""
    args = {"epochs": None, "steps_per_epoch": None, "batch_size": None, "distortions": None,
            "seed": 0, **options}
    cfg = PRESETS[preset]
    return with_overrides(cfg, command_line_settings(cfg, **args))


def test_every_train_option_works_with_the_default_preset():
    cfg = settings("small", epochs=1, steps_per_epoch=20, batch_size=32, distortions=0, seed=3)
    assert (cfg.run.epochs, cfg.run.seed) == (1, 3)
    assert cfg.loader.batches_per_epoch == 20, "--steps-per-epoch is the group batches of an epoch"
    g = cfg.loader.group  # --batch-size: images of a group batch, alphabets x 4 x 4
    assert g.alphabets * g.characters * g.drawers == 32 and (g.characters, g.drawers) == (4, 4)
    with pytest.raises(ConfigError, match="must be a multiple of 16, not 30"):
        settings("small", batch_size=30)


@pytest.mark.parametrize("distortions, steps, batch", [(0, 7, 32), (8, 20, 128), (3, 1, 64)])
def test_steps_per_epoch_gives_that_many_batches_of_the_pairs_loader(distortions, steps, batch):
    cfg = settings("koch", steps_per_epoch=steps, batch_size=batch, distortions=distortions)
    lc = cfg.loader
    assert lc.batch_size == batch
    assert (1 + lc.distortions) * lc.pairs_per_epoch // lc.batch_size == steps


def test_the_quick_try_runs_the_default_preset(paper20, tmp_path):
    """`train --epochs 1 --steps-per-epoch N`: the README's one-minute try (here 2 steps, on
    fake data whose test alphabets are too small for test trials, so none are asked for)."""
    config = tmp_path / "quick.json"
    config.write_text(json.dumps({"run": {"val_trials": 20, "test_trials": 0}}))
    out = tmp_path / "quick"
    result = run("train", "--data", paper20, "--epochs", 1, "--steps-per-epoch", 2,
                 "--config", config, "--out", out)
    assert result.exit_code == 0, result.output
    assert "model: preset small" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["loader"]["batches_per_epoch"] == 2 and saved["run"]["epochs"] == 1


def test_gradcheck_json_is_one_object_for_autograders():
    result = run("gradcheck", "--layer", "ReLU", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True and report["results"]
    for row in report["results"]:
        assert set(row) == {"layer", "tensor", "shape", "rel_error", "passed"}
        assert row["layer"] == "ReLU" and row["passed"] and row["rel_error"] < 1e-6


def test_gradcheck_json_reports_a_wrong_backward(tmp_path, monkeypatch):
    (tmp_path / "wrongrelu.py").write_text(
        "from tinysiamese.layers import ReLU\n"
        "class WrongReLU(ReLU):\n"
        "    def backward(self, dy):\n"
        "        return 2 * super().backward(dy)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run("gradcheck", "--layer", "wrongrelu:WrongReLU", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output.splitlines()[-1])
    assert report["passed"] is False and not report["results"][0]["passed"]


def test_verify_json_is_one_object(tmp_path):
    import numpy as np

    img = np.full((105, 105), 255, np.uint8)
    img[30:75, 50:55] = 0
    Image.fromarray(img).save(tmp_path / "bar.png")
    result = run("verify", tmp_path / "bar.png", tmp_path / "bar.png", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"a", "b", "probability", "same", "model", "views"}
    assert 0 <= report["probability"] <= 1 and report["same"] == (report["probability"] >= 0.5)


def test_a_config_typo_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "c.json"
    config.write_text('{"loader": {"batches_per_epok": 3}}')
    assert_one_line_error(run("train", "--config", config), 2,
                          'unknown key "batches_per_epok" in section loader; did you mean '
                          '"batches_per_epoch"?')


def test_train_on_a_folder_of_your_own_images(tmp_path):
    """`train --data FOLDER` on class/*.png: split by the seed, trained, no test set."""
    import numpy as np
    from conftest import fake_strokes

    images = tmp_path / "mine"
    for c in range(8):
        (images / f"class{c}").mkdir(parents=True)
        for d in range(3):
            Image.fromarray(~fake_strokes(c, d)).save(images / f"class{c}" / f"{d}.png")
    (images / "notes.txt").write_text("not an image")
    config = tmp_path / "pairs.json"
    config.write_text(json.dumps({"loader": {"kind": "pairs", "pairs_per_epoch": 64,
                                             "batch_size": 16}, "run": {"val_trials": 4}}))
    out = tmp_path / "run"
    result = run("train", "--data", images, "--preset", "tiny", "--epochs", 1, "--config",
                 config, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"loading the images of {images}" in result.output
    assert "classes split by seed 0" in result.output and "2 validate" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"] is None and summary["best_epoch"] == 1
    assert np.isfinite(json.loads((out / "metrics.jsonl").read_text())["loss"])
    # the default preset's group batches need groups of classes: one line says what to do
    assert_one_line_error(run("train", "--data", images, "--out", tmp_path / "run2"), 2,
                          "group batches of preset small need 4",
                          '{"loader": {"kind": "pairs"}}')


def test_a_run_repeats_from_its_saved_config(paper20, tmp_path):
    """`train --config runs/<run>/config.json` trains the same run again, its seed included."""
    config = tmp_path / "first.json"
    config.write_text(json.dumps({"run": {"seed": 3, "val_trials": 20, "test_trials": 0},
                                  "loader": {"batches_per_epoch": 2}}))
    first, again = tmp_path / "first", tmp_path / "again"
    assert run("train", "--data", paper20, "--epochs", 1, "--config", config,
               "--out", first).exit_code == 0
    result = run("train", "--data", paper20, "--config", first / "config.json", "--out", again)
    assert result.exit_code == 0, result.output
    assert json.loads((again / "config.json").read_text()) == \
        json.loads((first / "config.json").read_text())
    assert (again / "last.npz").read_bytes() != b"" and \
        json.loads((again / "metrics.jsonl").read_text())["loss"] == \
        json.loads((first / "metrics.jsonl").read_text())["loss"]
