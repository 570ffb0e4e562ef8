#!/usr/bin/env python
"""What the running weight average gives: a run's last weights against their average.

    python scripts/experiments/average_gain.py runs/small-groups-avg --data ~/data/omniglot

Reads RUN/last.npz of a run trained with ``optim.average`` (train.py keeps the average
there beside the weights) and scores both on the same validation trials: by default the
1,000 seed-7 trials of the ship rule (docs/tuning.md). The two models come from the very
same training steps, so the difference is the average's alone. Validation alphabets only,
never the test ones.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinysiamese import oneshot
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import Checkpoint, load_checkpoint, model_from_checkpoint
from tinysiamese.config import config_from_dict
from tinysiamese.omniglot import load_paper_split
from tinysiamese.oneshot import model_score
from tinysiamese.trials import within_alphabet_trials


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder holding last.npz")
    ap.add_argument("--data", required=True, help="Omniglot folder (the zips)")
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    last = load_checkpoint(args.run / "last.npz")
    if not last.averages:
        ap.error(f"{args.run / 'last.npz'} holds no weight average: the run was trained "
                 "without optim.average")
    backend = get_backend("numpy")
    val = load_paper_split(args.data, "val", config_from_dict(last.config).network.image_size)
    trials = within_alphabet_trials(val, n_way=20, n_trials=args.trials, seed=args.seed)
    print(f"{args.run / 'last.npz'}: epoch {last.meta['epoch']}, "
          f"{last.meta['average_steps']} steps averaged; validation, {args.trials} trials, "
          f"seed {args.seed}")
    for name, weights in (("last weights", last.params), ("their average", last.averages)):
        model = model_from_checkpoint(Checkpoint(weights, last.meta), backend)
        result = oneshot.evaluate(model_score(model), trials)
        lo, hi = result.ci95
        print(f"  {name:<14}{100 * result.accuracy:5.1f}% ({100 * lo:.1f}-{100 * hi:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
