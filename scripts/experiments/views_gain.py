#!/usr/bin/env python
"""What test-time views give: models scored with 1, 2, 4 and 8 views of each pair.

    python scripts/experiments/views_gain.py runs/A/best.npz runs/B/best.npz ... \
        --data ~/data/omniglot --trials 4000 --seed 17

Every checkpoint answers the same validation trials once per view count
(``oneshot.with_views``: 2 = as drawn and mirrored, 4 = the four quarter turns, 8 = both),
and the last row is the mean over the checkpoints, the figure round 10 of docs/tuning.md
decides by. Validation alphabets only, never the test ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tinysiamese import oneshot
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.omniglot import load_paper_split
from tinysiamese.oneshot import model_score
from tinysiamese.trials import within_alphabet_trials


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="best.npz files (same input size)")
    ap.add_argument("--data", required=True, help="Omniglot folder (the zips)")
    ap.add_argument("--trials", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--views", default="1,2,4,8", help="view counts, comma-separated")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = ap.parse_args(argv)
    views = [int(v) for v in args.views.split(",")]
    for v in views:
        if v not in oneshot.VIEW_COUNTS:
            ap.error(f"--views: {v} is not one of {oneshot.VIEW_COUNTS}")

    backend = get_backend("numpy")
    models = [model_from_checkpoint(load_checkpoint(p), backend) for p in args.checkpoints]
    sizes = {m.network.image_size for m in models}
    if len(sizes) != 1:
        ap.error(f"the checkpoints read different input sizes: {sorted(sizes)}")
    val = load_paper_split(args.data, "val", sizes.pop())
    trials = within_alphabet_trials(val, n_way=20, n_trials=args.trials, seed=args.seed)
    correct = {str(p): {v: oneshot.evaluate(oneshot.with_views(model_score(m), v), trials).n_correct
                        for v in views}
               for p, m in zip(args.checkpoints, models)}
    mean = {v: float(np.mean([c[v] for c in correct.values()])) / args.trials for v in views}
    if args.json:
        print(json.dumps({"trials": args.trials, "seed": args.seed, "correct": correct,
                          "mean_accuracy": mean}))
        return 0
    print(f"validation, {args.trials} 20-way trials, seed {args.seed}: % right with N views")
    width = max(len(p) for p in correct)
    print(f"{'checkpoint':<{width}}" + "".join(f"{v:>8}" for v in views))
    for p, c in correct.items():
        print(f"{p:<{width}}" + "".join(f"{100 * c[v] / args.trials:8.1f}" for v in views))
    print(f"{'mean':<{width}}" + "".join(f"{100 * mean[v]:8.2f}" for v in views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
