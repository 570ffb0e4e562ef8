#!/usr/bin/env python
"""Clustering Omniglot alphabets the net has never seen: the protocol of Hsu et al. (ICLR 2018).

    python scripts/cluster_eval.py --data ../shared/data/omniglot --alphabets test --views 8 \
        --out docs/clustering.md

Each alphabet is clustered on its own, all 20 drawings of each of its characters, once with
K (its number of characters) given and once with K estimated (tinysiamese.cluster); per
alphabet and averaged: clustering accuracy (Hungarian match), NMI, ARI and the estimated K.
``--alphabets val`` runs it on the 10 validation alphabets, where the settings are chosen
(several comma-separated --neighbours / --temperature / --restarts values print one
summary row each);
``test`` (Lake's 10 test alphabets) reports. Without a checkpoint the shipped model is used.
"""
from __future__ import annotations

import argparse
import io
import itertools
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tinysiamese import characters, cluster, clustermetrics, omniglot, pixels, similarity
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.files import atomic_write
from tinysiamese.pretrained import pretrained_path

SETS = {"val": characters.VAL_ALPHABETS, "test": characters.TEST_ALPHABETS}


def score(truth, labels) -> tuple[float, float, float]:
    return (clustermetrics.clustering_accuracy(truth, labels), clustermetrics.nmi(truth, labels),
            clustermetrics.ari(truth, labels))


def run(h, truth_all, alphabet_of_image, names, alpha, b, neighbours, temperature, restarts, seed):
    """-> one row per alphabet: (name, n images, K, known (acc, nmi, ari), est (...), K est)."""
    rows = []
    for a, name in enumerate(names):
        mine = alphabet_of_image == a
        truth = truth_all[mine]
        k_true = len(np.unique(truth))
        z = similarity.pair_logits(h[:, mine], h[:, mine], alpha, b, symmetric=True)
        known = cluster.cluster(z, k_true, neighbours, temperature, seed, restarts)
        guess = cluster.cluster(z, None, neighbours, temperature, seed, restarts)
        rows.append((name, int(mine.sum()), k_true, score(truth, known.labels),
                     score(truth, guess.labels), guess.k))
    return rows


def table(rows, heading: str) -> str:
    out = io.StringIO()
    out.write(f"{heading}\n\n| alphabet | images | K | accuracy, K known | NMI | ARI "
              "| accuracy, K estimated | NMI | ARI | estimated K |\n")
    out.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for name, n, k, known, est, k_est in rows:
        out.write(f"| {name} | {n} | {k} | {known[0]:.1%} | {known[1]:.3f} | {known[2]:.3f} "
                  f"| {est[0]:.1%} | {est[1]:.3f} | {est[2]:.3f} | {k_est} |\n")
    known = np.mean([r[3] for r in rows], axis=0)
    est = np.mean([r[4] for r in rows], axis=0)
    k_err = np.mean([abs(r[5] - r[2]) / r[2] for r in rows])
    out.write(f"| **mean** | | | **{known[0]:.1%}** | {known[1]:.3f} | {known[2]:.3f} "
              f"| **{est[0]:.1%}** | {est[1]:.3f} | {est[2]:.3f} | {k_err:.1%} off |\n")
    return out.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", type=Path, default=None,
                    help="a .npz checkpoint [default: the shipped model]")
    ap.add_argument("--data", required=True, help="Omniglot folder (the zips)")
    ap.add_argument("--alphabets", choices=sorted(SETS), default="val")
    ap.add_argument("--views", type=int, default=8, choices=(1, 2, 4, 8))
    ap.add_argument("--neighbours", default=str(cluster.NEIGHBOURS), help="comma-separated")
    ap.add_argument("--temperature", default=str(cluster.TEMPERATURE), help="comma-separated")
    ap.add_argument("--restarts", default=str(cluster.RESTARTS),
                    help="k-means tries, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="cache folder of the decoded archive")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = ap.parse_args(argv)
    grid = list(itertools.product([int(v) for v in args.neighbours.split(",")],
                                  [float(v) for v in args.temperature.split(",")],
                                  [int(v) for v in args.restarts.split(",")]))
    path = args.checkpoint or pretrained_path()
    model = model_from_checkpoint(load_checkpoint(path), get_backend("numpy"))
    size = model.network.image_size
    start = time.perf_counter()
    split = omniglot.load_split(args.data, "evaluation", size, cache_dir=args.cache)
    data = characters.subset(split, SETS[args.alphabets], range(1, omniglot.N_DRAWERS + 1))
    n_drawers = data.images.shape[1]
    images = pixels.as_float(data.images).reshape(-1, size, size)  # (chars * 20, H, W)
    truth = np.repeat(np.arange(len(data.characters)), n_drawers)
    alphabet_of_image = np.repeat(data.alphabet_of, n_drawers)
    h = similarity.encode(model, images, args.views)                 # (V, N, D)
    alpha, b = similarity.join_params(model)
    results = []
    for neighbours, temperature, restarts in grid:
        rows = run(h, truth, alphabet_of_image, data.alphabets, alpha, b, neighbours,
                   temperature, restarts, args.seed)
        results.append(((neighbours, temperature, restarts), rows))
        known = np.mean([r[3][0] for r in rows])
        est = np.mean([r[4][0] for r in rows])
        k_err = np.mean([abs(r[5] - r[2]) / r[2] for r in rows])
        print(f"neighbours {neighbours:3d}  T {temperature:5g}  restarts {restarts:3d}: accuracy "
              f"K known {known:.1%}, K estimated {est:.1%}, K off by {k_err:.1%} on average",
              flush=True)
    seconds = time.perf_counter() - start
    neighbours, temperature, restarts = grid[0]
    heading = (f"{args.alphabets} alphabets ({len(data.alphabets)}, all {n_drawers} drawings of "
               f"each character), model {path.name}, {args.views} view(s), neighbours "
               f"{neighbours}, temperature {temperature:g}, {restarts} k-means restarts, seed "
               f"{args.seed}; {seconds:.0f} s on {platform.machine()} "
               f"({platform.processor() or 'cpu'}), NumPy backend")
    text = table(results[0][1], heading)
    print(text)
    if args.out:
        atomic_write(args.out, lambda f: f.write(text.encode()))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
