"""Faults during training and downloads: Ctrl-C, kill -9, a full disk, NaN, a bad folder.

All training here is the tiny preset on a fake Omniglot whose ten validation alphabets have
20 characters (enough for the 20-way validation trials) and whose test alphabets have one
(the test is switched off with test_trials = 0): a run of a few hundred pairs takes a second.
"""
import errno
import hashlib
import io
import json
import os
import random
import shutil
import shlex
import signal
import sys
import textwrap
import time
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_fake_split

from tinysiamese import download as dl
from tinysiamese import train as train_mod
from tinysiamese.backend import get_backend
from tinysiamese.archive import DataError
from tinysiamese.checkpoint import load_checkpoint, save_checkpoint
from tinysiamese.config import build_config
from tinysiamese.files import remove_stale_temp_files
from tinysiamese.runfolder import RunFolder
from tinysiamese import steps
from cli_helpers import CLI, assert_one_line_error, read_until, run, start, train_run

SMALL_RUN = {"val_trials": 20, "test_trials": 0, "pairs_per_epoch": 96, "batch_size": 16}




def quiet(_text):
    pass


def tiny_cfg(**overrides):
    return build_config("tiny", {**SMALL_RUN, "epochs": 2, **overrides})


def files_of(folder):
    """{name: bytes} of every file in ``folder``, hidden ones included."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small-run.json"
    path.write_text(json.dumps(SMALL_RUN))
    return path


@pytest.fixture(scope="module")
def one_epoch_run(paper20, tmp_path_factory):
    """A finished one-epoch tiny run (best.npz, last.npz, config.json, metrics.jsonl)."""
    out = tmp_path_factory.mktemp("runs") / "one-epoch"
    cfg = tiny_cfg(epochs=1)
    train_run(cfg, data_root=paper20, out_dir=out, log=quiet)
    return out


@pytest.fixture
def run_dir(one_epoch_run, tmp_path):
    """A fresh copy of the one-epoch run, for a test to resume or break."""
    return shutil.copytree(one_epoch_run, tmp_path / "run")


def test_a_run_without_test_trials_still_sums_up_its_best_epoch_and_machine(paper20, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = tmp_path / "run"
    result = train_run(tiny_cfg(epochs=1), data_root=paper20, out_dir=out, log=quiet)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] == result.best_epoch == 1
    assert summary["best_val_accuracy"] == result.best_val_accuracy
    assert summary["test"] is None and summary["stopped"] == "epochs"
    machine = summary["machine"]
    assert machine["OPENBLAS_NUM_THREADS"] == "1" and machine["OMP_NUM_THREADS"] is None
    assert machine["cpu_count"] == os.cpu_count()


# --------------------------------------------------------------------------------------
# Ctrl-C and resuming


@pytest.fixture(scope="module")
def straight_run(paper20, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    result = train_run(tiny_cfg(), data_root=paper20, out_dir=out,
                             seed=3, log=quiet)
    assert result.stopped == "epochs"
    return out


@pytest.mark.parametrize("k", [3, 6, 9])  # mid-epoch 1, its last batch, mid-epoch 2
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(k, paper20, straight_run,
                                                               tmp_path):
    out = tmp_path / "run"
    first = train_run(tiny_cfg(), data_root=paper20, out_dir=out,
                            seed=3, log=quiet, max_steps=k)
    assert first.stopped == "interrupted"
    stopped = load_checkpoint(out / "last.npz").meta
    where = divmod(k, 6) if k % 6 else (k // 6 - 1, 6)  # 6 batches per epoch
    assert (stopped["epoch"], stopped["batch"]) == where
    # Another seed on resume: the run's own seed must win.
    train_run(tiny_cfg(), data_root=paper20, out_dir=out,
                    seed=99, resume=True, log=quiet)
    for name in ("best.npz", "last.npz"):
        a, b = load_checkpoint(straight_run / name), load_checkpoint(out / name)
        assert a.params.keys() == b.params.keys() and a.velocities.keys() == b.velocities.keys()
        for key in a.params:
            assert np.array_equal(a.params[key], b.params[key]), f"{name} {key} differs"
        for key in a.velocities:
            assert np.array_equal(a.velocities[key], b.velocities[key]), f"{name} v {key}"
        assert a.meta == b.meta, name


def test_ctrl_c_finishes_the_step_saves_and_resume_goes_on(paper20, tmp_path):
    config = tmp_path / "long.json"
    config.write_text(json.dumps({**SMALL_RUN, "pairs_per_epoch": 200_000}))
    out = tmp_path / "run"
    proc = start(CLI + ["train", "--data", paper20, "--preset", "tiny", "--config", config,
                       "--out", out, "--epochs", 1])
    lines = read_until(proc, "model: preset tiny")
    time.sleep(1.0)  # well inside the first (long) epoch
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    [line] = [s for s in output.splitlines() if s.startswith("interrupted")]
    # the command names the data folder too: a run folder keeps its settings, not its data
    assert line.endswith(f"saved {out / 'last.npz'}. Resume with: "
                         f"tinysiamese train --resume {out} --data {paper20}"), line
    batch = int(line.split("after batch ")[1].split(";")[0])
    meta = load_checkpoint(out / "last.npz").meta
    assert (meta["epoch"], meta["batch"]) == (0, batch) and batch > 0
    assert meta["partial"]["seen"] == 16 * batch, "the sums of the unfinished epoch are kept"
    # Resume goes on from that batch (two more steps, then stop again).
    again = train_run(build_config("tiny", {"epochs": 1}), data_root=paper20, out_dir=out,
                      resume=True, log=quiet, max_steps=2)
    assert again.stopped == "interrupted"
    meta = load_checkpoint(out / "last.npz").meta
    assert (meta["epoch"], meta["batch"]) == (0, batch + 2)


def test_the_resume_command_survives_spaces_in_paths():
    command = RunFolder(Path("my runs/koch 1"), Path("/data/omni glot")).resume_command()
    assert shlex.split(command) == ["tinysiamese", "train", "--resume", "my runs/koch 1",
                                    "--data", "/data/omni glot"]


def test_resume_with_another_preset_or_settings_is_refused(run_dir, paper20):
    result = run("train", "--resume", run_dir, "--preset", "small", "--data", paper20)
    assert_one_line_error(result, 2, "was trained with preset 'tiny', not 'small'",
                          "drop --preset", "--out")
    result = run("train", "--resume", run_dir, "--batch-size", 8, "--config", run_dir / "x")
    assert_one_line_error(result, 2, "run's own settings", "leave out --batch-size, --config")


def test_resume_of_a_finished_run_says_how_to_go_on(run_dir, paper20):
    result = run("train", "--resume", run_dir, "--data", paper20)
    assert result.exit_code == 0, result.output
    assert "has already trained 1 of 1 epochs; to go on, give --epochs with more than 1" \
        in result.output
    result = run("train", "--resume", run_dir, "--data", paper20, "--epochs", 2)
    assert result.exit_code == 0, result.output
    assert result.output.count("epoch   2") == 1
    assert load_checkpoint(run_dir / "last.npz").meta["epoch"] == 2


def test_resume_refuses_a_last_npz_it_cannot_go_on_from(run_dir, paper20):
    ckpt = load_checkpoint(run_dir / "last.npz")
    last = run_dir / "last.npz"
    save_checkpoint(last, ckpt.params, {"config": ckpt.config})  # weights only
    assert_one_line_error(run("train", "--resume", run_dir, "--data", paper20), 1,
                          "holds no training progress", "cannot be resumed", "--out")
    velocities = dict(ckpt.velocities)
    velocities.pop("conv1.W")
    save_checkpoint(last, ckpt.params, ckpt.meta, velocities)
    assert_one_line_error(run("train", "--resume", run_dir, "--data", paper20), 1,
                          "optimiser state does not fit", "conv1.W")
    params = dict(ckpt.params, **{"conv1.W": np.zeros((2, 2), np.float32)})
    save_checkpoint(last, params, ckpt.meta, ckpt.velocities)
    assert_one_line_error(run("train", "--resume", run_dir, "--data", paper20), 1,
                          "does not fit its config", "conv1.W has shape (2, 2)")
    data = (run_dir / "best.npz").read_bytes()
    last.write_bytes(data[: len(data) // 3])
    assert_one_line_error(run("train", "--resume", run_dir, "--data", paper20), 1,
                          "last.npz is not a .npz checkpoint or is truncated")


# --------------------------------------------------------------------------------------
# kill -9 while a checkpoint is written


KILLED_WRITER = textwrap.dedent("""
    import io, sys, time
    import numpy as np
    from tinysiamese import checkpoint

    path = sys.argv[1]
    checkpoint.save_checkpoint(path, {"w": np.full(1000, 1.0)}, {"config": {}, "version": 1})
    real_savez = np.savez

    def half_then_hang(f, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        print("half written", flush=True)
        time.sleep(60)

    np.savez = half_then_hang
    checkpoint.save_checkpoint(path, {"w": np.full(1000, 2.0)}, {"config": {}, "version": 2})
""")

LOOPING_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from tinysiamese import checkpoint

    for i in range(1, 10_000):
        w = np.full(2_000_000, float(i), dtype=np.float32)  # 8 MB: writes take a while
        checkpoint.save_checkpoint(sys.argv[1], {"w": w}, {"config": {}, "version": i})
        print(i, flush=True)
""")


def _assert_previous_checkpoint_survives(folder, path, version=None):
    ckpt = load_checkpoint(path)  # must not raise
    w = ckpt.params["w"]
    assert w[0] == w[-1] == ckpt.meta["version"], "a checkpoint mixes two writes"
    if version is not None:
        assert ckpt.meta["version"] == version
    assert sorted(p.name for p in folder.glob("*.npz")) == [path.name], \
        "a temporary file looks like a checkpoint"
    leftovers = [p for p in folder.iterdir() if p != path]
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers), leftovers
    assert sorted(remove_stale_temp_files(folder)) == sorted(leftovers)
    assert list(folder.iterdir()) == [path]
    return ckpt


def test_kill_9_in_the_middle_of_a_checkpoint_write(tmp_path):
    path = tmp_path / "ck.npz"
    proc = start([sys.executable, "-c", KILLED_WRITER, path])
    read_until(proc, "half written")
    temp = [p for p in tmp_path.iterdir() if p != path]
    assert len(temp) == 1 and temp[0].stat().st_size > 0, "the kill must come mid-write"
    proc.kill()
    proc.wait(timeout=30)
    _assert_previous_checkpoint_survives(tmp_path, path, version=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_at_a_random_moment_of_repeated_writes(seed, tmp_path):
    path = tmp_path / "ck.npz"
    proc = start([sys.executable, "-c", LOOPING_WRITER, path])
    read_until(proc, "1")
    time.sleep(random.Random(seed).uniform(0.0, 0.3))
    proc.kill()
    proc.wait(timeout=30)
    _assert_previous_checkpoint_survives(tmp_path, path)


def test_a_new_run_removes_temporary_files_a_killed_run_left(run_dir, paper20):
    (run_dir / ".last.npz.k1ll3d.tmp").write_bytes(b"PK\x03\x04 half a checkpoint")
    train_run(tiny_cfg(epochs=1), data_root=paper20, out_dir=run_dir, resume=True, log=quiet)
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))


# --------------------------------------------------------------------------------------
# A run folder that cannot be written, a full disk, a diverging loss


def test_an_unwritable_run_folder_fails_before_training(paper20, config_file, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("in the way")
    for out in (a_file / "run", a_file):  # root ignores chmod: a regular file blocks mkdir
        result = run("train", "--data", paper20, "--preset", "tiny", "--config", config_file,
                     "--out", out)
        assert_one_line_error(result, 1, f"cannot write to the run folder {out}",
                              "choose another with --out")
        assert "loading Omniglot" not in result.output
    assert a_file.read_text() == "in the way"


def test_a_bad_rotations_setting_fails_before_anything_is_written(paper20, tmp_path):
    cfg = tmp_path / "turns.json"
    cfg.write_text(json.dumps({**SMALL_RUN, "rotations": 5}))
    out = tmp_path / "run"
    result = run("train", "--data", paper20, "--preset", "tiny", "--config", cfg, "--out", out)
    assert_one_line_error(result, 2, "rotations must be 1, 2, 3 or 4", "not 5")
    assert "loading Omniglot" not in result.output and not out.exists()


@pytest.mark.parametrize("rotations, mirror, classes", [(1, False, 12), (4, False, 48),
                                                       (1, True, 24), (4, True, 96)])
def test_a_tiny_run_trains_on_turned_and_mirrored_characters(rotations, mirror, classes,
                                                             paper20, tmp_path, monkeypatch):
    trained_on = []  # the training set the loader was given
    make_loader = train_mod.make_loader
    monkeypatch.setattr(train_mod, "make_loader", lambda cfg, train_set, *rest: (
        trained_on.append(train_set) or make_loader(cfg, train_set, *rest)))
    cfg = tiny_cfg(epochs=1, rotations=rotations, mirror=mirror)
    result = train_run(cfg, data_root=paper20, out_dir=tmp_path / "r",
                             log=quiet)
    assert result.stopped == "epochs" and (tmp_path / "r" / "best.npz").is_file()
    # 3 background alphabets of 4 characters, each turned and mirrored as the config says
    assert len(trained_on[0].characters) == classes
    assert len(trained_on[0].alphabets) == 3 * classes // 12


GROUPS = {"loader": "groups", "group": {"alphabets": 2, "characters": 3, "drawers": 2},
          "batches_per_epoch": 4}


def test_a_group_run_resumes_to_the_same_weights(paper20, tmp_path):
    cfg = tiny_cfg(**GROUPS)
    straight = tmp_path / "straight"
    train_run(cfg, data_root=paper20, out_dir=straight, log=quiet)
    out = tmp_path / "run"
    first = train_run(cfg, data_root=paper20, out_dir=out,
                            log=quiet, max_steps=6)  # mid-epoch 2
    assert first.stopped == "interrupted"
    assert (load_checkpoint(out / "last.npz").meta["batch"]) == 2
    train_run(cfg, data_root=paper20, out_dir=out, resume=True,
                    log=quiet)
    a, b = load_checkpoint(straight / "last.npz"), load_checkpoint(out / "last.npz")
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key]), key
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # 2 alphabets x 3 characters x 2 drawings = 12 images and 66 pairs a batch
    assert rows[-1]["images_per_s"] == pytest.approx(rows[-1]["pairs_per_s"] * 12 / 66)


AVERAGED = {**GROUPS, "optim": {"average": 0.9}}


def test_a_run_keeps_its_weight_average_as_best_and_resumes_it(paper20, tmp_path, monkeypatch):
    backend = get_backend()
    validated = []  # the first conv weights of each model that answered the val trials
    score = train_mod.model_score
    monkeypatch.setattr(train_mod, "model_score", lambda model: validated.append(
        backend.to_numpy(model.params()["conv1.W"]).copy()) or score(model))
    one = tmp_path / "one"  # one epoch: best.npz is that epoch's average, not its weights
    train_run(tiny_cfg(**AVERAGED, epochs=1), data_root=paper20, backend=backend,
                    out_dir=one, log=quiet)
    best, last = load_checkpoint(one / "best.npz"), load_checkpoint(one / "last.npz")
    assert last.meta["average_steps"] == 4 and not best.averages
    for key in last.params:
        assert np.array_equal(best.params[key], last.averages[key]), key
        assert not np.array_equal(last.params[key], last.averages[key]), key
    assert len(validated) == 1 and np.array_equal(validated[0], best.params["conv1.W"])

    straight, out = tmp_path / "straight", tmp_path / "run"
    train_run(tiny_cfg(**AVERAGED), data_root=paper20, backend=backend, out_dir=straight,
                    log=quiet)
    train_run(tiny_cfg(**AVERAGED), data_root=paper20, backend=backend, out_dir=out,
                    log=quiet, max_steps=6)  # mid-epoch 2
    train_run(tiny_cfg(**AVERAGED), data_root=paper20, backend=backend, out_dir=out,
                    resume=True, log=quiet)
    a, b = load_checkpoint(straight / "last.npz"), load_checkpoint(out / "last.npz")
    assert a.meta == b.meta and a.averages.keys() == a.params.keys() == b.averages.keys()
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key]), key
        assert np.array_equal(a.averages[key], b.averages[key]), key

    # a last.npz without its average cannot go on
    save_checkpoint(out / "last.npz", b.params, b.meta, b.velocities)
    assert_one_line_error(run("train", "--resume", out, "--data", paper20, "--epochs", 3), 1,
                          "last.npz: its weight average does not fit its config",
                          "start a new run with --out")


@pytest.mark.parametrize("settings, message", [
    ({"loader": "triplets"}, 'loader.kind must be "pairs" or "groups", not \'triplets\''),
    ({**GROUPS, "group": {"alphabet": 2}}, 'unknown key "alphabet" in section loader.group; did you mean "alphabets"?'),
    ({**GROUPS, "group": {"hard_weight": 1.5}}, "loader.group.hard_weight must be null or a number strictly between 0 and 1"),
    ({**GROUPS, "group": {"same_weight": "half"}}, "loader.group.same_weight must be a number strictly between 0 and 1"),
    ({**GROUPS, "group": {"one_shot_weight": -1}}, "loader.group.one_shot_weight must be a number from 0 (off) up"),
    ({**GROUPS, "distortions": 8}, "leave distortions at 0"),
    ({"optim": {"average": 1.5}}, "optim.average must be a number from 0 (off) up to below 1"),
    ({"mirror": "yes"}, "mirror must be true or false"),
    ({"distort": {"prob": 1.0}}, 'unknown key "prob" in section loader.distort; did you mean "p"?'),
    ({**GROUPS, "distort": {"p": 1.5}}, "loader.distort.p must be a number from 0 to 1"),
    ({"distort": {"strength": 5}}, "loader.distort.strength must be a number strictly between 0 and 5"),
])
def test_bad_loader_settings_fail_before_anything_is_written(settings, message, paper20,
                                                              tmp_path):
    cfg = tmp_path / "loader.json"
    cfg.write_text(json.dumps({**SMALL_RUN, **settings}))
    out = tmp_path / "run"
    result = run("train", "--data", paper20, "--preset", "tiny", "--config", cfg, "--out", out)
    assert_one_line_error(result, 2, message)
    assert "loading Omniglot" not in result.output and not (out.exists() and any(out.iterdir()))


def test_group_settings_the_data_cannot_meet_fail_in_one_line(paper20, tmp_path):
    cfg = tmp_path / "loader.json"
    cfg.write_text(json.dumps({**SMALL_RUN, **GROUPS, "group": {"alphabets": 2, "characters": 5}}))
    result = run("train", "--data", paper20, "--preset", "tiny", "--config", cfg,
                 "--out", tmp_path / "run")
    assert_one_line_error(result, 2, "group characters must be 1 to 4")
    result = run("train", "--data", paper20, "--preset", "tiny", "--config", cfg,
                 "--batch-size", 8, "--out", tmp_path / "run2")
    assert_one_line_error(result, 2, "--batch-size: a group batch is alphabets x 5 characters x 4 "
                          "drawings, so it must be a multiple of 20, not 8")


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(run_dir, paper20, monkeypatch):
    before = files_of(run_dir)
    real_savez = np.savez

    def full_disk(f, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        f.write(buf.getvalue()[:1000])  # part of the file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    result = run("train", "--resume", run_dir, "--data", paper20, "--epochs", 2)
    assert_one_line_error(result, 1, f"cannot write {run_dir}/", ".npz (No space left on device)",
                          "kept intact",
                          f"resume with: tinysiamese train --resume {run_dir} --data {paper20}")
    after = files_of(run_dir)
    for name in ("best.npz", "last.npz"):
        assert after[name] == before[name], f"{name} changed"
    assert not [name for name in after if name.endswith(".tmp")], after.keys()
    assert load_checkpoint(run_dir / "last.npz").meta["epoch"] == 1


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(run_dir, paper20,
                                                                      monkeypatch):
    before = files_of(run_dir)
    real_bce = steps.bce_with_logits

    def nan_loss(z, y):
        loss, dz = real_bce(z, y)
        return loss * np.nan, dz

    monkeypatch.setattr(steps, "bce_with_logits", nan_loss)
    result = run("train", "--resume", run_dir, "--data", paper20, "--epochs", 3)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [line] = [s for s in result.output.splitlines() if "diverged" in s]
    assert line.startswith("epoch 2: the loss became nan (diverged); stopping.")
    assert f"The last good checkpoint is kept: {run_dir / 'last.npz'}" in line
    assert "Lower the learning rate" in line
    after = files_of(run_dir)
    assert after["last.npz"] == before["last.npz"] and after["best.npz"] == before["best.npz"]


def test_a_huge_learning_rate_diverges_in_one_quiet_line(paper20, tmp_path):
    config = tmp_path / "hot.json"
    config.write_text(json.dumps({**SMALL_RUN, "optim": {"lr": 1e30}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run("train", "--data", paper20, "--preset", "tiny", "--config", config,
                     "--out", tmp_path / "run", "--epochs", 3)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [line] = [s for s in result.output.splitlines() if "diverged" in s]
    assert "epoch 1: the loss became" in line and "No checkpoint was saved" in line
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], \
        [str(w.message) for w in caught]
    assert not list((tmp_path / "run").glob("*.npz")), "no checkpoint of a diverged model"


# --------------------------------------------------------------------------------------
# Bad images met while training


def test_a_corrupt_training_image_is_named_or_skipped(paper20, config_file, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(paper20, root)
    zip_path = root / "images_background.zip"
    with zipfile.ZipFile(zip_path) as zf:
        members = [(info, zf.read(info.filename)) for info in zf.infolist()]
    bad = "images_background/Bb/character02/0006_03.png"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for info, data in members:
            zf.writestr(info, b"\x89PNG\r\n\x1a\n broken" if info.filename == bad else data)
    args = ["train", "--data", root, "--preset", "tiny", "--config", config_file, "--epochs", 1]
    result = run(*args, "--out", tmp_path / "a")
    assert_one_line_error(result, 1, "cannot read image", "Bb/character02/0006_03.png",
                          "--skip-bad-images")
    result = run(*args, "--out", tmp_path / "b", "--skip-bad-images")
    assert result.exit_code == 0, result.output
    assert ("skipped 1 unreadable image(s) of the archive of the train set, leaving out "
            "1 character(s): Bb/character02") in result.output
    assert (tmp_path / "b" / "best.npz").is_file()


# --------------------------------------------------------------------------------------
# Downloads (tests/test_download.py covers the library with the real small archives)


@pytest.fixture
def fake_table(tmp_path_factory, monkeypatch):
    """The official table swapped for one small fake archive: (its spec, its bytes)."""
    folder = tmp_path_factory.mktemp("fake-archive")
    data = write_fake_split(folder, "background", {"A": 1}).read_bytes()
    spec = dl.ArchiveSpec("images_background.zip", len(data), hashlib.md5(data).hexdigest(), 20)
    monkeypatch.setattr(dl, "OFFICIAL_ARCHIVES", (spec,))
    monkeypatch.setattr(dl, "RUNS_ARCHIVES", ())
    return spec, data


def test_an_interrupted_download_keeps_nothing_and_a_retry_works(server, fake_table, tmp_path):
    spec, data = fake_table
    server.files[spec.name] = data
    server.truncate.add(spec.name)
    dest = tmp_path / "data"
    result = run("data", "download", "--dest", dest, "--url", server.url)
    assert_one_line_error(result, 1, "run the command again")
    assert not dest.exists() or list(dest.iterdir()) == []
    assert_one_line_error(run("data", "info", "--data", dest), 2, "does not hold Omniglot")
    server.truncate.clear()
    assert_downloads_whole(dest, server, spec)


def assert_downloads_whole(dest, server, spec):
    """`data download` into ``dest`` succeeds and leaves exactly the archive, whole."""
    result = run("data", "download", "--dest", dest, "--url", server.url)
    assert result.exit_code == 0 and "downloaded" in result.output, result.output
    assert sorted(p.name for p in dest.iterdir()) == [spec.name]
    assert dl.file_md5(dest / spec.name) == spec.md5


def test_a_part_file_of_a_killed_download_is_replaced(server, fake_table, tmp_path):
    spec, data = fake_table
    server.files[spec.name] = data
    (tmp_path / (spec.name + ".part")).write_bytes(data[:100])  # kill -9 mid-transfer
    assert_downloads_whole(tmp_path, server, spec)


def test_ctrl_c_during_a_download_removes_the_part_file(fake_table, tmp_path, monkeypatch):
    spec, data = fake_table

    class Response(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(min(n, 100))

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(data))
    with pytest.raises(KeyboardInterrupt):
        dl.download_archive(spec, tmp_path, url="http://mirror.invalid")
    assert list(tmp_path.iterdir()) == []
    # A server that hangs up early: the short file is not kept either.
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(data[:10]))
    with pytest.raises(DataError, match="nothing was kept - run the command again"):
        dl.download_archive(spec, tmp_path, url="http://mirror.invalid")
    assert list(tmp_path.iterdir()) == []
