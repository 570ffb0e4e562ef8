"""Bit-for-bit guard: short training runs give the very weights they gave before the redesign.

The digests below were written by the code of before the configuration, training loop and
command line were redesigned (issue 21); the redesign had to keep every number. Each run goes
through the command line, so the test does not depend on the library's internal API. A change
that is *meant* to change the arithmetic (another summation order, say) must say so in its
commit and write new digests. The groups digests were rewritten once, by the commit that sums
each image's pair gradients in one product (``ops.weighted_l1_backward_pairs``, issue 24): in
float64 that run's losses matched the old code's to 2e-16 over 15 steps. Both sets were
rewritten once more when the first block's conv and pool became one product (``convpool``,
issue 24), whose dW and db sum the same terms in another order: in float64, 15 steps of
the tiny and small nets on binary images (flat regions, so pooling windows tie) gave the
old code's losses to 1.6e-16 and 3.4e-16.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from cli_helpers import run
from tinysiamese.checkpoint import load_checkpoint


def digest(path) -> str:
    """sha256 over every array of a checkpoint (params, velocities, averages), by name."""
    ckpt = load_checkpoint(path)
    h = hashlib.sha256()
    for kind, arrays in (("param", ckpt.params), ("velocity", ckpt.velocities),
                         ("average", ckpt.averages)):
        for name in sorted(arrays):
            h.update(f"{kind}/{name}".encode())
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()[:16]


RUNS = {
    # the paper's independent pairs, distorted afresh
    "pairs": {"pairs_per_epoch": 192, "batch_size": 32, "val_trials": 20, "test_trials": 0},
    # group batches with the one-shot softmax and the weight average (the small preset's way)
    "groups": {"loader": "groups", "batches_per_epoch": 4, "val_trials": 20, "test_trials": 0,
               "group": {"alphabets": 2, "characters": 3, "drawers": 2, "one_shot_weight": 0.3},
               "rotations": 4, "optim": {"average": 0.9}},
}
GOLDEN = {
    "pairs": {"best.npz": "f54140e8eb38e2f6", "last.npz": "f54140e8eb38e2f6"},
    "groups": {"best.npz": "0dede00673dd3b3b", "last.npz": "3dc1cc9526d1f997"},
}


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_a_short_run_gives_the_same_weights_bit_for_bit(kind, paper20, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(RUNS[kind]))
    out = tmp_path / "run"
    result = run("train", "--data", paper20, "--preset", "tiny", "--epochs", 2,
                 "--config", config, "--out", out, "--seed", 5)
    assert result.exit_code == 0, result.output
    got = {name: digest(out / name) for name in ("best.npz", "last.npz")}
    assert got == GOLDEN[kind], f"{kind} run's weights changed: {got}"
