"""Smoke tests of scripts/bench.py on the tiny preset: seconds, and no PyTorch needed."""
from __future__ import annotations

import io
import json
import platform
import subprocess
import sys

import numpy as np
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
    assert row["machine"]["elementwise_threads"] == 1  # the pool's threads follow --threads
    assert row["machine"]["OPENBLAS_THREAD_TIMEOUT"] is not None  # the spin train runs with
    assert row["machine"]["products"] == "ours"  # as `tinysiamese train` runs: BLAS on one
    assert row["machine"]["OPENBLAS_NUM_THREADS"] == "1"
    if platform.libc_ver()[0] == "glibc":  # by default the benchmark runs as training does
        assert row["malloc_tuned"] is True, "bench.py did not keep freed memory as train does"


def test_layer_breakdown_covers_every_layer_without_torch(bench):
    torch_was_loaded = "torch" in sys.modules
    row = bench.run_row("tiny", 2, "numpy", 1, use_torch=False, layers=True, warmup=0, timed=1)
    names = [l["layer"] for l in row["layers"]]
    assert names[:4] == ["conv1", "relu1", "conv2", "pool2"], f"layers {names}"
    assert {"dense1", "join+loss", "optimizer"} <= set(names), f"layers {names}"
    assert all(l["forward_ms"] >= 0 and l["backward_ms"] >= 0 for l in row["layers"])
    assert torch_was_loaded or "torch" not in sys.modules, "--no-torch imported torch"


def test_group_step_breakdown_times_every_layer_inside_the_step(bench):
    row = bench.run_group_row("tiny", "numpy", 1, use_torch=False, warmup=0, timed=2,
                              layers=True)
    names = [l["layer"] for l in row["layers"]]
    assert names == ["conv1", "relu1", "conv2", "pool2", "relu2", "conv3", "relu3", "flatten",
                     "dense1", "sigmoid1", "join", "optimizer", "loss, average"], names
    assert row["conv_paths"] == {"conv1": "convpool", "conv2": "im2col", "conv3": "im2col"}
    by = {l["layer"]: l for l in row["layers"]}
    assert by["conv1"]["forward_ms"] > 0 and by["conv1"]["backward_ms"] > 0
    assert by["join"]["forward_ms"] > 0 and by["optimizer"]["backward_ms"] > 0
    # the wrappers are gone afterwards: the layers' own methods again
    assert all("forward" not in vars(l) for _, l in bench.tinysiamese_setup("tiny", "numpy")[2].encoder)
    out = io.StringIO()
    bench.print_layers(row, out=out)
    assert "group batch of 64 images (2016 pairs)" in out.getvalue(), out.getvalue()


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_conv_builds_the_network_with_that_conv_method(bench, monkeypatch, method):
    # --conv im2col or fft: every conv on that path, the images' block a Conv2D + pool
    monkeypatch.setattr(bench, "CONV_METHOD", method)
    model = bench.tinysiamese_setup("tiny", "numpy")[2]
    assert [n for n, _ in model.encoder][:3] == ["conv1", "pool1", "relu1"]
    assert {l.method for _, l in model.encoder if hasattr(l, "method")} == {method}
    monkeypatch.setattr(bench, "CONV_METHOD", "auto")
    assert bench.conv_paths(bench.tinysiamese_setup("tiny", "numpy")[2])["conv1"] == "convpool"


def test_conv_paths_agree_prints_each_method_losses(capsys):
    load_script("conv_paths_agree").main(["--steps", "1"])
    out = capsys.readouterr().out
    assert "auto put {'conv1': 'convpool', 'conv2': 'fft', 'conv3': 'fft', 'conv4': 'im2col'}" in out
    assert "im2col loss      fft loss     auto loss" in out, out
    assert "largest relative gap to im2col: fft " in out and ", auto " in out, out


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


def test_group_step_row_json_from_the_command_line():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--preset", "tiny", "--step", "group", "--json",
         "--no-torch", "--warmup", "0", "--steps", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"bench.py --step group failed: {proc.stderr[-2000:]}"
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (row["step"], row["images"], row["pairs"]) == ("group", 64, 2016), row
    assert row["images_per_s"] > 0, f"group step throughput {row['images_per_s']}"
    assert row["torch_images_per_s"] is None and row["ratio"] is None, "--no-torch ran torch"
    assert row["conv_paths"] == {"conv1": "convpool", "conv2": "im2col", "conv3": "im2col"}


def test_block_turns_run_each_step_in_a_row_there_and_back(bench, monkeypatch):
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in ("ts", "torch", "torch_cl")}
    monkeypatch.setattr(bench, "TURNS", "block")
    medians = bench.interleaved_medians(fns, 1, 2, lambda: None)
    assert set(medians) == set(fns)
    # warm-up and timed steps in a row, ts torch torch_cl, then back
    assert calls == [k for k in ("ts", "torch", "torch_cl", "torch_cl", "torch", "ts")
                     for _ in range(3)]
    monkeypatch.setattr(bench, "TURNS", "step")
    calls.clear()
    bench.interleaved_medians(fns, 0, 2, lambda: None)
    assert calls == ["ts", "torch", "torch_cl"] * 2


def test_group_batch_holds_the_loaders_pairs(bench):
    from tinysiamese.groups import pairs_within
    from tinysiamese.config import PRESETS

    (x, first, second, same, weight), w = bench.group_batch(PRESETS["small"])
    layout = np.repeat(np.arange(16), 4)  # 4 alphabets x 4 characters, 4 drawings each
    for got, want in zip((first, second, same, weight), pairs_within(layout, 0.5, layout // 4)):
        np.testing.assert_array_equal(got, want)
    assert x.shape == (64, 1, 52, 52) and w == 0.3, (x.shape, w)


def test_torch_group_step_computes_the_same_loss(bench):
    # the PyTorch twin must be the same step: same loss from the same weights and batch
    pytest.importorskip("torch")
    be, cfg, model, opt = bench.tinysiamese_setup("tiny", "numpy")
    batch, w = bench.group_batch(cfg)
    steps = bench.torch_group_steps(model, cfg, batch, w, threads=1, device="cpu")
    ours = float(bench.tinysiamese_group_step(be, model, opt, cfg, batch, w)())
    for name, (_, loss_fn) in steps.items():
        theirs = float(loss_fn().detach())
        assert abs(theirs - ours) < 1e-5 * abs(ours), f"{name} loss {theirs} vs {ours}"


def test_blas_callers_times_the_three_ways(capsys):
    assert load_script("blas_callers").main(["--repeats", "3", "--frequencies", "8"]) == 0
    out = capsys.readouterr().out
    for way in ("one call", "two halves in turn", "two halves on two threads"):
        assert way in out and " ms" in out.split(way)[1].splitlines()[0]
