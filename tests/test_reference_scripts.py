"""scripts/probe_gap.py and scripts/torch_reference.py: the tools of tuning round 4."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinysiamese.backend import get_backend
from tinysiamese.config import PRESETS
from tinysiamese.model import SiameseNet
from cli_helpers import SCRIPTS, load_script


def test_torch_default_init_draws_within_the_fan_in_bound():
    probe_gap = load_script("probe_gap")
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
        [sys.executable, str(SCRIPTS / "probe_gap.py"), probe, "--data", str(omniglot_dir),
         "--out", str(out), "--epochs", "1", "--config", json.dumps(tiny)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["test_trials"] == 0, "a probe scored the test alphabets"
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_probe_trains_differently_from_the_preset(omniglot_dir, tmp_path):
    plain = _probe_losses("none", omniglot_dir, tmp_path / "none")
    probed = _probe_losses("inv+nodistort", omniglot_dir, tmp_path / "probed")
    assert len(plain) == len(probed) == 1
    assert plain != probed, "the probes changed nothing: same seed, same loss"


def test_an_unknown_probe_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "probe_gap.py"), "bogus", "--data", str(tmp_path),
         "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown probe" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists(), "a refused probe wrote its folder"


def test_the_pytorch_twin_gives_the_same_logits():
    torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed")
    torch_reference = load_script("torch_reference")
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"),
                       rng=np.random.default_rng(0))
    encoder, params = torch_reference.build(torch, model)
    assert set(params) == set(model.params()), "the twin does not hold every parameter"
    rng = np.random.default_rng(1)
    x1, x2 = (rng.random((3, 1, 28, 28), dtype=np.float32) for _ in range(2))
    z_torch = torch_reference.twin_logits(torch, encoder, params, torch.from_numpy(x1),
                                          torch.from_numpy(x2)).detach().numpy()
    np.testing.assert_allclose(z_torch, model.forward_logits(x1, x2), rtol=1e-4, atol=1e-5)


def _reproduce_koch_argv(tmp_path, *args) -> list[str]:
    """The `tinysiamese` command line that scripts/reproduce_koch.sh runs, seen through a
    stand-in `tinysiamese` on PATH that prints its arguments one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "tinysiamese"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(SCRIPTS / "reproduce_koch.sh"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_reproduce_koch_trains_the_paper_settings_and_passes_extra_options_on(tmp_path):
    argv = _reproduce_koch_argv(tmp_path, "DATA", tmp_path / "run", "--config", "b.json")
    assert argv == ["train", "--data", "DATA", "--preset", "koch", "--backend", "cupy",
                    "--epochs", "200", "--pairs-per-epoch", "30000", "--distortions", "8",
                    "--batch-size", "128", "--out", str(tmp_path / "run"), "--config", "b.json"]
    # no arguments: the default data folder and a fresh run folder under runs/
    argv = _reproduce_koch_argv(tmp_path)
    assert argv[argv.index("--data") + 1] == f"{tmp_path}/.cache/tinysiamese/omniglot"
    assert argv[argv.index("--out") + 1].startswith("runs/koch-")


def test_reproduce_koch_resumes_a_run_with_a_last_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.npz").write_bytes(b"")
    argv = _reproduce_koch_argv(tmp_path, "DATA", tmp_path / "run")
    assert argv == ["train", "--resume", str(tmp_path / "run"), "--data", "DATA",
                    "--backend", "cupy", "--epochs", "200"]
