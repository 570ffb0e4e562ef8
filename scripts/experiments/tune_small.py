#!/usr/bin/env python
"""Tune the `small` preset on the validation alphabets: several variants side by side.

Each variant is the small preset with a few settings changed. It is trained for the same
number of pairs as the one-hour CPU run sees, scored after every epoch on validation
one-shot trials (never on the test alphabets: test_trials is 0 here), and the table at the
end ranks the variants by their best validation accuracy. The runs go in parallel, so on a
GPU a whole sweep takes minutes:

    python scripts/experiments/tune_small.py --data ~/data/omniglot --backend cupy --parallel 8
    python scripts/experiments/tune_small.py --only base,lr04 --backend numpy --parallel 1   # slow

Every run folder (config.json, metrics.jsonl, best.npz) lands in --out; summary.json there
holds the table. The winner becomes the preset after a full run on the CPU confirms it.

A variant may name its own "epochs" (the ones it fits into the CPU run's hour, since a wider
net is slower there) and "seed". With --judge-trials N each run's best.npz, and the shipped
model beside them, also answer N fresh validation trials (--judge-seed, --views), which
ranks the table: a run's own per-epoch validation chose its best epoch, so those trials
would flatter it (rounds 17 and 18 of docs/tuning.md).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# name -> overrides of the small preset (see tinysiamese/model.py: PRESETS["small"])
# Each round changed the preset as it then stood (docs/tuning.md): lr 0.02 in rounds 1-2,
# lr 0.08 without turned characters in round 3, independent pairs until round 5. Its
# winners are in the preset now; the rounds before group batches pin the pairs loader, and
# those before round 8 the weight average off (see BEFORE_AVERAGE below).
PAIRS = {"loader": "pairs"}
VARIANTS = {
    "base": {**PAIRS},
    "lr04": {**PAIRS, "optim": {"lr": 0.04}},
    "lr01-decay98": {**PAIRS, "optim": {"lr": 0.01, "lr_decay": 0.98}},
    "decay97": {**PAIRS, "optim": {"lr_decay": 0.97}},
    "no-l2": {**PAIRS, "optim": {"l2": 0.0}},
    "hard1": {**PAIRS, "hard_negative_fraction": 1.0},
    "batch32": {**PAIRS, "batch_size": 32},
    "dense2048": {**PAIRS, "dense": 2048},
    "no-l2-decay97-mom1": {**PAIRS, "optim": {"l2": 0.0, "lr_decay": 0.97, "momentum_epochs": 1}},
    # second round, around the first round's winner (lr 0.04)
    "lr06": {**PAIRS, "optim": {"lr": 0.06}},
    "lr08": {**PAIRS, "optim": {"lr": 0.08}},
    "lr04-decay97": {**PAIRS, "optim": {"lr": 0.04, "lr_decay": 0.97}},
    "lr04-mom1": {**PAIRS, "optim": {"lr": 0.04, "momentum_epochs": 1}},
    "lr04-no-l2-decay97-mom1": {**PAIRS, "optim": {"lr": 0.04, "l2": 0.0, "lr_decay": 0.97,
                                                   "momentum_epochs": 1}},
    "lr04-dense2048": {**PAIRS, "optim": {"lr": 0.04}, "dense": 2048},
    "lr04-wide34": {**PAIRS, "optim": {"lr": 0.04}, "conv": [[32, 5], [64, 5], [128, 3], [256, 3]]},
    "lr04-wide34-dense2048": {**PAIRS, "optim": {"lr": 0.04}, "dense": 2048,
                              "conv": [[32, 5], [64, 5], [128, 3], [256, 3]]},
    "lr06-decay97-mom1": {**PAIRS, "optim": {"lr": 0.06, "lr_decay": 0.97, "momentum_epochs": 1}},
    # third round, on the CPU at full length: more training classes (turned characters),
    # and per-layer learning rates (faster convolutions)
    "rot4": {**PAIRS, "rotations": 4},
    "rot4-conv12": {**PAIRS, "rotations": 4, "optim": {"layers": {
        f"conv{i}": {"lr": 0.12} for i in range(1, 5)}}},
    # fifth round: every pair within group batches of 4 x 4 x 4 (now the preset), and the
    # sixth: the same at 64 x 64 input, and without turned characters
    "groups": {"loader": "groups"},
    "groups-s64": {"loader": "groups", "image_size": 64},
    "groups-rot1": {"loader": "groups", "rotations": 1},
    # eighth: a stronger L2 (2.5 times the preset's), a running average of the weights (now
    # the preset), and with it each character's mirror image as a new character
    "groups-l2x25": {"loader": "groups", "optim": {"l2": 2.5e-4}},
    "groups-avg": {"loader": "groups", "optim": {"average": 0.9995}},
    "groups-avg-mirror": {"loader": "groups", "mirror": True, "optim": {"average": 0.9995}},
}
# Rounds 1-7, and round 8's L2 run, validated the last weights, not their average.
BEFORE_AVERAGE = [name for name in VARIANTS if not name.startswith("groups-avg")]
for name in BEFORE_AVERAGE:
    VARIANTS[name] = {**VARIANTS[name], "optim": {"average": 0.0, **VARIANTS[name].get("optim", {})}}

# Round 17, on a GPU: the preset as it is now (group batches, weight average), each variant
# for as many epochs as it fits into the CPU run's 55 minutes on one core (its images/s
# measured there against the preset's 369: the preset 24 epochs, wide34 0.91x -> 22,
# wide234 0.74x -> 18). "epochs" and "seed" go to the command line.
WIDE34 = [[32, 5], [64, 5], [128, 3], [256, 3]]  # conv3, conv4 twice as wide: cheap, 2x2 maps
VARIANTS.update({
    "r17-base": {"epochs": 24},
    "r17-decay88": {"epochs": 24, "optim": {"lr_decay": 0.88}},  # lr 0.0043 by epoch 24
    "r17-wide34": {"epochs": 22, "conv": WIDE34},
    "r17-wide234": {"epochs": 18, "conv": [[32, 5], [96, 5], [128, 3], [256, 3]]},
    # round 18: the other way from round 17's results (the base still rising at epoch 24, the
    # faster decay behind, the wide nets peaking at epoch 14): a slower decay, a higher rate,
    # a cheaper conv2 (1.14x the preset's images/s on one core -> 27 epochs), and the widest
    # net with round 8's stronger L2
    "r18-decay96": {"epochs": 24, "optim": {"lr_decay": 0.96}},
    "r18-lr10": {"epochs": 24, "optim": {"lr": 0.10}},
    "r18-narrow2": {"epochs": 27, "conv": [[32, 5], [48, 5], [64, 3], [128, 3]]},
    "r18-wide234-l2x25": {"epochs": 18, "conv": [[32, 5], [96, 5], [128, 3], [256, 3]],
                          "optim": {"l2": 2.5e-4}},
})

# Round 20 added a one-shot softmax to the preset's loss (group.one_shot_weight 0.3); every
# round above trained on the cross-entropy alone.
for name in VARIANTS:
    group = {"one_shot_weight": 0.0, **VARIANTS[name].get("group", {})}
    VARIANTS[name] = {**VARIANTS[name], "group": group}


def run_variant(name, overrides, args) -> dict:
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(overrides)
    epochs, seed = overrides.pop("epochs", args.epochs), overrides.pop("seed", args.seed)
    cfg = {**overrides, "val_trials": args.val_trials, "test_trials": 0,
           "time_budget_minutes": args.minutes}
    if args.batches_per_epoch and overrides.get("loader", "groups") == "groups":
        cfg["batches_per_epoch"] = args.batches_per_epoch
    if args.pairs_per_epoch and overrides.get("loader", "groups") == "pairs":
        cfg["pairs_per_epoch"] = args.pairs_per_epoch
    (out / "overrides.json").write_text(json.dumps(cfg, indent=1))
    cmd = [sys.executable, "-m", "tinysiamese", "train", "--data", args.data, "--preset", "small",
           "--backend", args.backend, "--epochs", str(epochs), "--seed", str(seed),
           "--config", str(out / "overrides.json"), "--out", str(out)]
    t0 = time.perf_counter()
    with open(out / "train.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads),
                                 "OMP_NUM_THREADS": str(args.threads)}).returncode
    rows = []
    if (out / "metrics.jsonl").is_file():
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["val_accuracy"], default=None)
    judged = judge(out / "best.npz", args) if args.judge_trials and rc == 0 else None
    return {"variant": name, "overrides": overrides, "seed": seed, "rc": rc, "epochs": len(rows),
            "judge": judged,
            "best_val": best and best["val_accuracy"], "best_epoch": best and best["epoch"],
            "last_val": rows[-1]["val_accuracy"] if rows else None,
            "val_curve": [r["val_accuracy"] for r in rows],
            "pairs_per_s": rows[-1]["pairs_per_s"] if rows else None,
            "images_per_s": rows[-1].get("images_per_s") if rows else None,
            "minutes": round((time.perf_counter() - t0) / 60, 1)}


def judge(checkpoint, args) -> float | None:
    """Accuracy of a checkpoint (None: the shipped model) on fresh validation trials.

    The trials (--judge-trials of seed --judge-seed) are not the ones a run validates on
    each epoch, so a run's choice of its best epoch does not flatter its score here.
    """
    cmd = [sys.executable, "-m", "tinysiamese", "eval", *([str(checkpoint)] if checkpoint else []),
           "--data", args.data, "--split", "val", "--trials", str(args.judge_trials),
           "--seed", str(args.judge_seed), "--views", str(args.views),
           "--backend", args.backend, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads),
                               "OMP_NUM_THREADS": str(args.threads)})
    if proc.returncode != 0:
        print(f"judging {checkpoint or 'the shipped model'} failed: {proc.stderr.strip()}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout)["accuracy"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Omniglot folder (the zips)")
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--out", default="runs/tune-small")
    ap.add_argument("--only", help="comma-separated variant names (default: all): "
                    + ", ".join(VARIANTS))
    ap.add_argument("--parallel", type=int, default=1, help="runs at a time")
    ap.add_argument("--epochs", type=int, default=20,
                    help="most epochs (each run also stops at its --minutes)")
    ap.add_argument("--pairs-per-epoch", type=int,
                    help="pairs-loader variants: default the preset's (for dry runs)")
    ap.add_argument("--batches-per-epoch", type=int,
                    help="group-batch variants: default the preset's (for dry runs)")
    ap.add_argument("--minutes", type=float, default=60.0, help="time budget of each run")
    ap.add_argument("--val-trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads per run")
    ap.add_argument("--judge-trials", type=int, default=0,
                    help="also score each run's best.npz, and the shipped model, on this many "
                         "fresh validation trials (0: don't)")
    ap.add_argument("--judge-seed", type=int, default=29, help="seed of the judging trials")
    ap.add_argument("--views", type=int, default=8, choices=[1, 2, 4, 8],
                    help="views a pair is scored with when judging")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    with ThreadPoolExecutor(args.parallel) as pool:
        shipped = pool.submit(judge, None, args) if args.judge_trials else None
        results = list(pool.map(lambda n: run_variant(n, VARIANTS[n], args), names))
    # ranked by the judging trials when there are any, else by the runs' own validation
    rank = "judge" if args.judge_trials else "best_val"
    results.sort(key=lambda r: -1 if r[rank] is None else r[rank], reverse=True)
    summary = {"backend": args.backend, "epochs": args.epochs, "val_trials": args.val_trials,
               "seed": args.seed, "results": results}
    if shipped:
        summary["judge"] = {"trials": args.judge_trials, "seed": args.judge_seed,
                            "views": args.views, "shipped": shipped.result()}
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=1))
    f = (lambda v: "-" if v is None else f"{v:.3f}")
    print(f"{'variant':<22}{'best val':>9}{'epoch':>6}{'last':>7}{'epochs':>7}{'pairs/s':>9}"
          f"{'judged':>8}  rc")
    for r in results:
        print(f"{r['variant']:<22}{f(r['best_val']):>9}{r['best_epoch'] or '-':>6}"
              f"{f(r['last_val']):>7}{r['epochs']:>7}{r['pairs_per_s'] or 0:>9.0f}"
              f"{f(r['judge']):>8}  {r['rc']}")
    if shipped:
        print(f"{'shipped model':<22}{'':>38}{f(summary['judge']['shipped']):>8}  "
              f"({args.judge_trials} val trials, seed {args.judge_seed}, {args.views} views)")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
