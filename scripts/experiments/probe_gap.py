#!/usr/bin/env python
"""Short `small` runs that each change one thing the issue's PyTorch reference may have done.

The issue's reference (a PyTorch net of the small preset's shape) reached 71-75% on test
trials after 233k pairs, where tinysiamese's runs stand near 66% on validation. Each probe
below changes one suspect and trains for a few epochs with everything else as in the
preset of round 4 (independent pairs: "loader": "pairs"; no weight average) and the same
seed, so its per-epoch validation accuracy can be laid beside the preset's own run
(docs/tuning.md, round 4). Most suspects have no setting in the package,
so a probe swaps a small piece of it for this process only:

    none       the preset itself, for the side-by-side baseline
    refhp      the reference's optimiser: lr 0.02, momentum 0.9 from the first step, no
               learning-rate decay, no L2
    tinit      PyTorch's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
               weights and biases (with refhp: "refhp+tinit")
    inv        the other polarity: white paper (1) and black ink (0), as torchvision
               hands Omniglot out
    centre     inputs standardised to mean 0, standard deviation 1
    d20        all 20 drawers of the 30 training alphabets instead of the paper's 12
    nodistort  no affine distortions

    OPENBLAS_NUM_THREADS=1 python scripts/experiments/probe_gap.py refhp --data ~/data/omniglot \
        --out runs/probe-refhp --epochs 4

The run folder is an ordinary `tinysiamese train` folder (metrics.jsonl per epoch). The
test alphabets are never scored (test_trials 0).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import tinysiamese.characters
import tinysiamese.omniglot
import tinysiamese.pairs
import tinysiamese.runfolder
import tinysiamese.train
from tinysiamese.backend import get_backend
from tinysiamese.distort import identity_params
from tinysiamese.config import build_config
from tinysiamese.model import SiameseNet

PROBES = ("none", "refhp", "tinit", "inv", "centre", "d20", "nodistort")
INK_MEAN, INK_STD = 0.082, 0.259  # over all 52 x 52 validation images (ink 1, paper 0)


def torch_default_init(model: SiameseNet, rng: np.random.Generator) -> None:
    """Redraw every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in place."""
    for name, layer in model.named_layers():
        p = layer.params
        if name == "join":
            fan_in = p["alpha"].shape[0]
        elif name.startswith("conv"):
            fan_in = int(np.prod(p["W"].shape[1:]))  # C * K * K
        else:
            fan_in = p["W"].shape[0]
        for v in p.values():
            v[...] = model.backend.asarray(rng.uniform(-1, 1, v.shape) / np.sqrt(fan_in))


def install(probes: set[str]) -> None:
    """Swap in the pieces the probes change (this process only)."""
    plain_init, plain_encode = SiameseNet.__init__, SiameseNet.encode

    def init(self, cfg, *, backend, rng):
        plain_init(self, cfg, backend=backend, rng=rng)
        if "tinit" in probes:
            torch_default_init(self, rng)

    def encode(self, x):
        if "inv" in probes:
            x = 1.0 - x
        if "centre" in probes:
            x = (x - INK_MEAN) / INK_STD
        return plain_encode(self, x)

    SiameseNet.__init__, SiameseNet.encode = init, encode
    if "d20" in probes:
        splits = tinysiamese.characters.PAPER_SPLITS
        splits["train"] = tinysiamese.characters.SplitSpec("background", None, tuple(range(1, 21)))
    if "nodistort" in probes:
        tinysiamese.pairs.random_affine_params = lambda rng, n, size, *shape: identity_params(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", help=f"one of {', '.join(PROBES)}, or several joined by '+'")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="{}", help="JSON overrides of the preset, applied last")
    args = ap.parse_args()
    probes = set(args.probe.split("+"))
    if not probes <= set(PROBES):
        ap.error(f"unknown probe(s) {sorted(probes - set(PROBES))}: "
                 f"choose from {', '.join(PROBES)}")
    # Round 4 probed the preset as it then stood: independent pairs, not group batches, and
    # the last weights validated, not their average (round 8).
    overrides = {"epochs": args.epochs, "test_trials": 0, "val_trials": 500,
                 "time_budget_minutes": None, "loader": "pairs", "optim": {"average": 0.0}}
    if "refhp" in probes:
        overrides["optim"].update(lr=0.02, momentum_epochs=0, lr_decay=1.0, l2=0.0)
    extra = json.loads(args.config)
    overrides["optim"] = {**overrides.get("optim", {}), **extra.pop("optim", {})}
    overrides.update(extra)
    install(probes)
    cfg = build_config("small", {**overrides, "seed": args.seed})
    data = tinysiamese.train.omniglot_data(args.data, cfg.network.image_size, with_test=False)
    tinysiamese.train.train(cfg, data, get_backend("numpy"),
                            tinysiamese.runfolder.RunFolder(args.out, args.data))


if __name__ == "__main__":
    main()
