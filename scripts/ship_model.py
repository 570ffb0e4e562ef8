"""Make the model shipped in the package from a run's best checkpoint.

    python scripts/ship_model.py runs/small-final --data ~/data/omniglot

Stores the weights alone (no optimiser state) in float16 as
``tinysiamese/pretrained/small.npz``, after checking on the 400 test trials that float16
storage keeps the accuracy of the float32 checkpoint (the two must agree within 0.5
points, else nothing is written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinysiamese import oneshot
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from tinysiamese.config import config_from_dict
from tinysiamese.omniglot import load_paper_split
from tinysiamese.pretrained import pretrained_path
from tinysiamese.oneshot import model_score
from tinysiamese.trials import within_alphabet_trials


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder holding best.npz")
    ap.add_argument("--data", required=True, help="Omniglot folder, for the accuracy check")
    ap.add_argument("--out", type=Path, default=pretrained_path())
    args = ap.parse_args(argv)

    ckpt = load_checkpoint(args.run / "best.npz")
    meta = {"config": ckpt.config, "seed": ckpt.meta["seed"], "epoch": ckpt.meta["epoch"],
            "best_val_accuracy": ckpt.meta["best_val_accuracy"], "source": str(args.run),
            "storage": "float16"}
    half = {k: v.astype(np.float16) for k, v in ckpt.params.items()}
    if any(not np.isfinite(v).all() for v in half.values()):
        sys.exit("float16 cannot hold these weights (overflow); not shipped")

    backend = get_backend("numpy")
    test = load_paper_split(args.data, "test", config_from_dict(ckpt.config).network.image_size)
    trials = within_alphabet_trials(test, n_way=20, n_trials=400, seed=0)
    full = oneshot.evaluate(model_score(model_from_checkpoint(ckpt, backend)), trials)
    ckpt.params = half
    small = oneshot.evaluate(model_score(model_from_checkpoint(ckpt, backend)), trials)
    print(f"test 20-way accuracy: float32 {100 * full.accuracy:.2f}%, "
          f"float16 storage {100 * small.accuracy:.2f}%")
    if abs(full.accuracy - small.accuracy) > 0.005:
        sys.exit("float16 storage changes the accuracy by more than 0.5 points; not shipped")
    save_checkpoint(args.out, half, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
