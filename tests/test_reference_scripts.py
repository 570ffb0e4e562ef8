"""scripts/torch_reference.py (the PyTorch twin that scripts/bench.py measures against) and
scripts/reproduce_koch.sh."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinysiamese.backend import get_backend
from tinysiamese.config import PRESETS
from tinysiamese.model import SiameseNet
from cli_helpers import SCRIPTS, load_script


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
