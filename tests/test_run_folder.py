"""A run folder is never lost or mixed: a second run into it is refused, one trainer at a time
holds it, a kill -9 anywhere leaves files that agree, and readers never see half a file.

Real processes throughout: the trainers run as `tinysiamese train` in child processes, and
they are killed with SIGKILL, the one signal nothing can catch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from cli_helpers import CLI, assert_one_line_error, read_until, run, start

from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint

SETTINGS = {"val_trials": 20, "test_trials": 0, "pairs_per_epoch": 96, "batch_size": 16}


@pytest.fixture(scope="session")
def root(paper20):
    """The fake Omniglot of conftest, which 20-way validation trials can be drawn from."""
    return paper20


def config(tmp_path, **overrides):
    path = tmp_path / f"settings-{len(list(tmp_path.glob('settings-*')))}.json"
    path.write_text(json.dumps({**SETTINGS, **overrides}))
    return path


def train_args(root, out, cfg, *extra):
    return ["train", "--data", root, "--preset", "tiny", "--config", cfg, "--out", out, *extra]


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def metric_epochs(out):
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def kill(proc):
    proc.kill()
    proc.communicate(timeout=60)


# --------------------------------------------------------------------------------------
# A second run into a folder that holds one


def test_a_second_run_into_the_same_folder_is_refused_and_the_first_run_is_kept(root, tmp_path):
    out, cfg = tmp_path / "run", config(tmp_path)
    assert run(*train_args(root, out, cfg, "--epochs", 2)).exit_code == 0
    before = files_of(out)
    result = run(*train_args(root, out, cfg, "--epochs", 2))  # the same command again
    assert_one_line_error(result, 2, f"{out} already holds a run (epoch 2 of 2, best val ",
                          f"continue it with `tinysiamese train --resume {out} --data {root}`",
                          "choose another --out")
    assert "loading Omniglot" not in result.output
    after = files_of(out)
    assert {k: v for k, v in after.items() if k != "run.lock"} == \
        {k: v for k, v in before.items() if k != "run.lock"}, "the first run was touched"
    result = run(*train_args(root, out, cfg, "--epochs", 1, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert metric_epochs(out) == [1], "the first run's epochs are mixed into the second's"


def test_overwrite_and_resume_together_are_a_usage_error(root, tmp_path):
    result = run("train", "--resume", tmp_path, "--overwrite", "--data", root)
    assert_one_line_error(result, 2, "--overwrite starts a run afresh")


# --------------------------------------------------------------------------------------
# One trainer per folder


def test_a_second_trainer_is_refused_while_the_first_holds_the_folder(root, tmp_path):
    out, cfg = tmp_path / "run", config(tmp_path, patience=10_000)  # no early stop: it runs on
    first = start([*CLI, *train_args(root, out, cfg, "--epochs", 10_000)])
    try:
        read_until(first, "epoch   1")  # it has written last.npz and goes on
        for again in (train_args(root, out, cfg, "--overwrite"),
                      ["train", "--resume", out, "--data", root]):
            proc = subprocess.run([*CLI, *map(str, again)], capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode == 2, proc.stdout + proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
            assert errors == [f"Error: {out} is in use by another training run (pid {first.pid} "
                              f"on {os.uname().nodename}); wait for it to end, or choose another "
                              "--out"], proc.stderr
    finally:
        kill(first)  # SIGKILL: the lock dies with the process
    epoch = load_checkpoint(out / "last.npz").meta["epoch"]
    result = run("train", "--resume", out, "--data", root, "--epochs", epoch + 1)
    assert result.exit_code == 0, result.output
    assert metric_epochs(out) == list(range(1, epoch + 2))


# --------------------------------------------------------------------------------------
# kill -9 anywhere: the files agree, and resuming gives the weights of a run never stopped


KILL_AT = textwrap.dedent("""
    import os, signal, sys
    from tinysiamese import runfolder
    from tinysiamese.cli import main

    where, epoch = sys.argv[1], int(sys.argv[2])
    real_save, real_append = runfolder.RunFolder.save, runfolder.RunFolder.append_metrics

    def save(self, name, params, meta, *rest):
        if where == "before-last" and name == "last.npz" and meta["epoch"] == epoch:
            os.kill(os.getpid(), signal.SIGKILL)  # its metrics line is written, last.npz not
        return real_save(self, name, params, meta, *rest)

    def append(self, record):
        if record["epoch"] == epoch and where == "before-metrics":
            os.kill(os.getpid(), signal.SIGKILL)  # best.npz may be written, the line not
        if record["epoch"] == epoch and where == "mid-metrics":
            with open(self.metrics, "a") as f:
                f.write('{"epoch": %d, "loss": 0.' % epoch)  # half a line, then the kill
            os.kill(os.getpid(), signal.SIGKILL)
        return real_append(self, record)

    runfolder.RunFolder.save, runfolder.RunFolder.append_metrics = save, append
    sys.argv = ["tinysiamese", *sys.argv[3:]]
    main()
""")


@pytest.fixture(scope="module")
def straight(root, tmp_path_factory):
    """A 3-epoch run never stopped."""
    tmp = tmp_path_factory.mktemp("straight")
    out = tmp / "run"
    assert run(*train_args(root, out, config(tmp), "--epochs", 3)).exit_code == 0
    return out


@pytest.mark.parametrize("where", ["before-metrics", "mid-metrics", "before-last"])
def test_a_kill_between_checkpoint_and_metrics_resumes_to_the_same_weights(where, root,
                                                                          straight, tmp_path):
    out = tmp_path / "run"
    args = [str(a) for a in train_args(root, out, config(tmp_path), "--epochs", 3)]
    proc = subprocess.run([sys.executable, "-c", KILL_AT, where, "2", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    result = run("train", "--resume", out, "--data", root)
    assert result.exit_code == 0, result.output
    dropped = "metrics.jsonl: dropped 1 line(s) that last.npz does not hold"
    assert (dropped in result.output) == (where != "before-metrics"), result.output
    assert metric_epochs(out) == [1, 2, 3]
    for name in ("best.npz", "last.npz"):
        a, b = load_checkpoint(straight / name), load_checkpoint(out / name)
        for key in a.params:
            assert np.array_equal(a.params[key], b.params[key]), f"{name} {key} differs"
        assert a.meta == b.meta, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] == load_checkpoint(out / "last.npz").meta["best_epoch"]


# --------------------------------------------------------------------------------------
# Readers of best.npz while a run writes it


def test_best_npz_is_always_whole_for_a_reader_while_a_run_trains(root, tmp_path):
    out, cfg = tmp_path / "run", config(tmp_path, patience=10_000)
    trainer = start([*CLI, *train_args(root, out, cfg, "--epochs", 10_000)])
    backend, reads, deadline = get_backend(), 0, time.monotonic() + 90
    try:
        read_until(trainer, "epoch   1")
        # read as fast as we can while the trainer rewrites best.npz and last.npz, epoch after epoch
        while len(metric_epochs(out)) < 6 and time.monotonic() < deadline:
            model_from_checkpoint(load_checkpoint(out / "best.npz"), backend)  # must not raise
            load_checkpoint(out / "last.npz")
            reads += 1
        assert trainer.poll() is None, "the trainer stopped early"
    finally:
        kill(trainer)
    assert len(metric_epochs(out)) >= 6, "the trainer did not get far enough"
    assert reads >= 20, f"only {reads} reads happened while the run trained"
    result = run("eval", out / "best.npz", "--data", root, "--split", "val", "--trials", 20)
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------------------
# What the review found: a refused trainer, a failed start, other data, a damaged record


def test_a_refused_trainer_leaves_the_running_trainers_temporary_file_alone(root, tmp_path):
    """A second `train` is refused before it touches anything: the first trainer's
    half-written checkpoint (a hidden .tmp file) stays, to be renamed over last.npz."""
    from tinysiamese.runfolder import RunFolder

    out, cfg = tmp_path / "run", config(tmp_path)
    assert run(*train_args(root, out, cfg, "--epochs", 1)).exit_code == 0
    holder = RunFolder(out)
    holder.open(resume=True)  # this process is the trainer now, in the middle of a write
    try:
        temp = out / ".last.npz.inflight.tmp"
        temp.write_bytes(b"PK half a checkpoint")
        for again in (train_args(root, out, cfg, "--overwrite"),
                      ["train", "--resume", out, "--data", root, "--epochs", 2]):
            proc = subprocess.run([*CLI, *map(str, again)], capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode == 2 and "is in use by another training run" in proc.stderr
            assert temp.read_bytes() == b"PK half a checkpoint", "the refused run deleted it"
    finally:
        holder.close()


def test_a_run_that_cannot_start_writes_nothing_and_overwrite_deletes_nothing(root, tmp_path):
    out, cfg = tmp_path / "run", config(tmp_path)
    assert run(*train_args(root, out, cfg, "--epochs", 1)).exit_code == 0
    before = files_of(out)
    bad = config(tmp_path, loader="groups",  # more drawers than the characters have
                 group={"alphabets": 2, "characters": 3, "drawers": 30})
    fresh = tmp_path / "fresh"
    assert_one_line_error(run(*train_args(root, fresh, bad)), 2, "group drawers must be 2 to")
    assert [p.name for p in fresh.iterdir()] == ["run.lock"], "a failed start left files"
    assert run(*train_args(root, fresh, cfg, "--epochs", 1)).exit_code == 0, \
        "the folder of a run that never started refuses a new one"
    assert_one_line_error(run(*train_args(root, out, bad, "--overwrite")), 2, "group drawers")
    assert files_of(out) == before, "--overwrite deleted the old run before the new one started"


def test_a_resumed_run_reads_the_arrays_of_last_npz_once(root, tmp_path, monkeypatch):
    import tinysiamese.runfolder as runfolder

    out = tmp_path / "run"
    assert run(*train_args(root, out, config(tmp_path), "--epochs", 1)).exit_code == 0
    reads = []

    def counted(path, weights=True):
        reads.append(weights)
        return load_checkpoint(path, weights)

    monkeypatch.setattr(runfolder, "load_checkpoint", counted)
    result = run("train", "--resume", out, "--data", root, "--epochs", 2)
    assert result.exit_code == 0, result.output
    assert reads == [False, True]  # the command line checks the config; train loads it all
    meta_only = load_checkpoint(out / "last.npz", weights=False)
    assert meta_only.meta == load_checkpoint(out / "last.npz").meta
    assert (meta_only.params, meta_only.velocities, meta_only.averages) == ({}, {}, {})


def test_a_run_resumes_only_on_the_data_it_began_with(root, tmp_path):
    from PIL import Image
    from conftest import fake_strokes

    images = tmp_path / "mine"
    for c in range(8):
        (images / f"class{c}").mkdir(parents=True)
        for d in range(3):
            Image.fromarray(~fake_strokes(c, d)).save(images / f"class{c}" / f"{d}.png")
    out = tmp_path / "run"
    cfg = config(tmp_path, run={"val_trials": 4})
    assert run(*train_args(images, out, cfg, "--epochs", 1)).exit_code == 0
    result = run("train", "--resume", out, "--data", root, "--epochs", 2)
    assert_one_line_error(result, 2, f"was trained on the images of {images.resolve()} (8 classes)",
                          "not on Omniglot", "resume it with the --data it began with")
    assert metric_epochs(out) == [1]
    assert run("train", "--resume", out, "--data", images, "--epochs", 2).exit_code == 0
    assert metric_epochs(out) == [1, 2]


def test_a_damaged_progress_record_is_one_line(root, tmp_path):
    from tinysiamese.checkpoint import save_checkpoint

    out = tmp_path / "run"
    assert run(*train_args(root, out, config(tmp_path), "--epochs", 1)).exit_code == 0
    ckpt = load_checkpoint(out / "last.npz")
    save_checkpoint(out / "last.npz", ckpt.params, {**ckpt.meta, "epoch": "x"}, ckpt.velocities)
    assert_one_line_error(run("train", "--resume", out, "--data", root, "--epochs", 3), 1,
                          "its progress record is damaged")
