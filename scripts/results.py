"""Produce the README's results table from a trained model and the real data.

    python scripts/results.py --data ~/data/omniglot --mnist ~/data/mnist \
        [--checkpoint tinysiamese/pretrained/small.npz] [--run runs/small-final] \
        [--out docs/results.md]

Several --checkpoint options score their ensemble (``oneshot.ensemble``: each pair gets the
mean of the nets' logits), and several --run options the training of each of its nets.

Rows (every number measured here, in this run):
  * 20-way within-alphabet one-shot accuracy on the 400 test trials (seed 0), the model
    and the two baselines (1-NN on pixels, modified Hausdorff) on the same trials;
  * how much that one draw of 400 trials can move: the model on 20 draws (seeds 0-19),
    their mean, standard deviation and range;
  * with --views N (N > 1): the same two rows with each pair scored as the mean over N
    turned or mirrored copies (``oneshot.with_views``, ``tinysiamese eval --views N``);
  * MNIST 10-way one-shot (400 trials, seed 0), the model and 1-NN;
  * verification accuracy on 10,000 held-out pairs of the test alphabets' drawers 17-20
    (half same, half different, no distortion, threshold p = 0.5);
  * training time and throughput, read from the run's metrics.jsonl (when --run is given).
The paper's rows (Koch et al. 2015, tables 1-3) are printed beside them for reference.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tinysiamese import baselines, mnist, oneshot
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.config import config_from_dict
from tinysiamese.files import atomic_write
from tinysiamese.omniglot import load_paper_split
from tinysiamese.pairs import PairLoader
from tinysiamese.pretrained import pretrained_path
from tinysiamese.oneshot import model_score
from tinysiamese.trials import within_alphabet_trials


def pct(r):
    lo, hi = r.ci95
    return f"{100 * r.accuracy:.1f}% ({100 * lo:.1f}-{100 * hi:.1f})"


def verification_accuracy(score, subset, n_pairs=10_000, seed=0):
    """Share of held-out pairs ``score`` calls right (a logit >= 0, p >= 0.5, means "same")."""
    loader = PairLoader(subset, get_backend("numpy"), batch_size=250, pairs_per_epoch=n_pairs,
                        distort=False, seed=seed, prefetch=0)
    right = seen = 0
    for x1, x2, y in loader.iter_epoch(0):
        logits = score(x1, x2)
        right += int(((logits >= 0) == (y > 0.5)).sum())
        seen += len(logits)
    return right / seen, seen


def training_summary(run_dir):
    """Epochs, minutes, pairs, images and speed of one run, from its metrics.jsonl."""
    rows = [json.loads(line) for line in open(Path(run_dir) / "metrics.jsonl")]
    best = max(rows, key=lambda r: r["val_accuracy"])  # the first of equals, as train keeps
    for r in rows:  # runs from before group batches logged pairs only: 2 images a pair
        r.setdefault("images_per_s", 2 * r["pairs_per_s"])
    return {"epochs": len(rows), "minutes": sum(r["seconds"] + r["eval_seconds"] for r in rows) / 60,
            "pairs": int(round(sum(r["pairs_per_s"] * r["seconds"] for r in rows))),
            "images": int(round(sum(r["images_per_s"] * r["seconds"] for r in rows))),
            "images_per_s": float(np.median([r["images_per_s"] for r in rows])),
            "loader": config_from_dict(json.loads((Path(run_dir) / "config.json").read_text())
                                       ).loader.kind,
            "best_epoch": best["epoch"], "best_val": best["val_accuracy"]}


def training_row(run):
    how = ("every pair within group batches" if run["loader"] == "groups" else "independent pairs")
    return (f"| training: {run['epochs']} epochs, {run['images']:,} images encoded in "
            f"{run['pairs']:,} pairs ({how}), best epoch {run['best_epoch']} (val "
            f"{100 * run['best_val']:.1f}%) | {run['minutes']:.0f} min, "
            f"{run['images_per_s']:.0f} images/s (median epoch) | - |")


def spread_over_draws(score, test, draws=20):
    """``score`` on ``draws`` draws of the 400 test trials (seeds 0, 1, ...) -> accuracies."""
    return [oneshot.evaluate(score, within_alphabet_trials(
        test, n_way=20, n_trials=400, seed=seed)).accuracy for seed in range(draws)]


def spread_row(what, draws):
    return (f"| {what} on {len(draws)} draws of 400 test trials (seeds 0-{len(draws) - 1}): "
            f"mean, standard deviation, range | {100 * np.mean(draws):.1f}%, sd "
            f"{100 * np.std(draws, ddof=1):.1f}, {100 * min(draws):.1f}-{100 * max(draws):.1f}% | - |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Omniglot folder (the zips)")
    ap.add_argument("--mnist", help="folder with MNIST t10k IDX files")
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="default: the shipped model; give it twice or more for an ensemble")
    ap.add_argument("--run", action="append", default=[],
                    help="run folder whose metrics give time and speed (one per net)")
    ap.add_argument("--views", type=int, default=1, choices=oneshot.VIEW_COUNTS,
                    help="also score the test trials with N views of each pair")
    ap.add_argument("--out", default=None, help="also write the Markdown here")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = ap.parse_args(argv)

    backend = get_backend("numpy")
    paths = [Path(p) for p in args.checkpoint] if args.checkpoint else [pretrained_path()]
    models = [model_from_checkpoint(load_checkpoint(p), backend) for p in paths]
    sizes = {m.network.image_size for m in models}
    if len(sizes) != 1:
        ap.error(f"the checkpoints read different input sizes: {sorted(sizes)}")
    size, model = sizes.pop(), models[0]
    score = oneshot.ensemble([model_score(m) for m in models])
    t0 = time.perf_counter()
    test = load_paper_split(args.data, "test", size)
    trials = within_alphabet_trials(test, n_way=20, n_trials=400, seed=0)
    res = {"model": oneshot.evaluate(score, trials)}
    draws = spread_over_draws(score, test)
    if args.views > 1:
        viewed = oneshot.with_views(score, args.views)
        res["model_views"] = oneshot.evaluate(viewed, trials)
        draws_views = spread_over_draws(viewed, test)
    trials105 = within_alphabet_trials(load_paper_split(args.data, "test", 105),
                                               n_way=20, n_trials=400, seed=0)
    res["nn"] = oneshot.evaluate(baselines.nn_score, trials105)
    res["hausdorff"] = oneshot.evaluate(baselines.hausdorff_score, trials105)
    if args.mnist:
        images, labels = mnist.load_mnist(args.mnist)
        mt = mnist.mnist_trials(images, labels, 400, 0, size)
        res["mnist_model"] = oneshot.evaluate(score, mt)
        res["mnist_nn"] = oneshot.evaluate(baselines.nn_score,
                                           mnist.mnist_trials(images, labels, 400, 0, 105))
    ver, n_ver = verification_accuracy(score, test)
    runs = [training_summary(r) for r in args.run]

    if args.json:
        out = {k: v.to_dict() for k, v in res.items()}
        out.update(verification=ver, verification_pairs=n_ver, runs=runs,
                   checkpoints=[str(p) for p in paths],
                   test_draws=draws, views=args.views)
        if args.views > 1:
            out["test_draws_views"] = draws_views
        print(json.dumps(out))
        return
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [
        f"Model: {' + '.join(f'`{p.name}`' for p in paths)} "
        f"({f'an ensemble of {len(models)} nets, each ' if len(models) > 1 else ''}"
        f"preset `{config_from_dict(load_checkpoint(paths[0]).config).preset}`, {model.n_params():,} parameters, "
        f"{size}x{size} input). Machine: {machine}. Command: "
        f"`python scripts/results.py {' '.join(argv or sys.argv[1:])}` "
        f"({time.perf_counter() - t0:.0f} s).",
        "",
        "| task | tinysiamese (95% CI) | paper |",
        "| --- | --- | --- |",
        f"| Omniglot 20-way within-alphabet one-shot, 400 test trials: siamese net | {pct(res['model'])} | 92.0% (conv. siamese net, full size) |",
        f"| same trials: 1-NN on pixels (105x105) | {pct(res['nn'])} | 21.7% |",
        f"| same trials: modified Hausdorff distance (105x105) | {pct(res['hausdorff'])} | 61.2% (on Lake's 20 runs, his demo) |",
        spread_row("the siamese net", draws),
    ]
    if args.views > 1:
        lines += [f"| same trials: siamese net, each pair scored as the mean of {args.views} views (`--views {args.views}`) | {pct(res['model_views'])} | - |",
                  spread_row(f"the siamese net with {args.views} views", draws_views)]
    lines += [
        "| humans / Hierarchical Bayesian Program Learning | not measured | 95.5% / 95.2% |",
    ]
    if args.mnist:
        lines += [f"| MNIST 10-way one-shot, 400 trials: siamese net (no retraining) | {pct(res['mnist_model'])} | 70.3% |",
                  f"| MNIST 10-way one-shot: 1-NN on pixels | {pct(res['mnist_nn'])} | 26.5% |"]
    lines.append(f"| verification, {n_ver:,} held-out pairs of the test alphabets | {100 * ver:.1f}% | 93.42% (150k pairs x8 distortions) |")
    lines += [training_row(run) for run in runs]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write(args.out, lambda f: f.write(text.encode()))


if __name__ == "__main__":
    main()
