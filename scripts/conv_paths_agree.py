#!/usr/bin/env python
"""The convolution paths give the same results: training losses and one-shot scores.

    python scripts/conv_paths_agree.py --steps 30                       # training only
    python scripts/conv_paths_agree.py --steps 30 --data ../shared/data/omniglot

1. Training: the small preset's real step (bench.py --step group: a group batch of 64
   images and its 2,016 pairs, cross-entropy + 0.3 x the one-shot softmax, MomentumSGD)
   for ``--steps`` steps from one initialisation, on the same random batches, with the
   network's ``conv_method`` "im2col" (every conv on the reference path, each conv then
   its pool), "fft" (every conv through the Fourier domain) and "auto" (the images'
   block as one conv-and-pool product, ``layers.ConvPool2D``, and the Fourier path where
   ``fftconv.use_fft`` picks it). Prints the losses at every step and their largest
   relative gaps to im2col's, beside the gap to im2col in smaller chunks (dW summed in
   another order): the size of float32 noise along a trajectory.
2. With ``--data``: the shipped model (tinysiamese/pretrained) scored on the 400 20-way
   within-alphabet test trials of ``tinysiamese eval`` (seed 0) through each of them.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from tinysiamese import oneshot, omniglot
from tinysiamese.steps import group_step
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint
from tinysiamese.config import config_from_dict
from tinysiamese.model import SiameseNet
from tinysiamese.pretrained import pretrained_path
from tinysiamese.trials import within_alphabet_trials

HERE = Path(__file__).resolve().parent


METHODS = ("im2col", "fft", "auto")


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", HERE / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def losses(method: str, steps: int, max_cols_bytes=None) -> tuple[list[float], dict]:
    """The losses of ``steps`` group steps with the network's conv_method ``method``
    (and im2col chunks of at most ``max_cols_bytes``, if given) -> (losses, each conv
    layer's path)."""
    bench = load_bench()
    bench.CONV_METHOD = method  # as bench.py --conv: the network is built with it
    be, cfg, model, opt = bench.tinysiamese_setup("small", "numpy")
    for _, layer in model.encoder:
        if max_cols_bytes and hasattr(layer, "max_cols_bytes"):
            layer.max_cols_bytes = max_cols_bytes
    out = []
    for step in range(steps):
        batch, w = bench.group_batch(cfg, seed=100 + step)  # a fresh batch, alike for all
        x, first, second, same, weight = batch
        loss, _, _ = group_step(model, (be.asarray(x), first, second, be.asarray(same),
                                              be.asarray(weight)), w)
        opt.step()
        out.append(float(loss))
    return out, bench.conv_paths(model)


def shipped_model(ckpt, method: str):
    """The shipped model's weights in a net built with conv_method ``method``."""
    network = dataclasses.replace(config_from_dict(ckpt.config).network, conv_method=method)
    model = SiameseNet(network, backend=get_backend("numpy"), rng=np.random.default_rng(0))
    model.load_params({k: v.astype(np.float32) for k, v in ckpt.params.items()})
    return model


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--data", type=Path, help="Omniglot folder: also score the shipped model")
    args = ap.parse_args(argv)
    runs = {m: losses(m, args.steps) for m in METHODS}
    # float32 noise for scale: im2col again, in 64 KB chunks, which sums dW in another order
    noise, _ = losses("im2col", args.steps, max_cols_bytes=2**16)
    print(f"small preset, {args.steps} group steps from one seed; auto put {runs['auto'][1]}")
    gap = lambda u, v: abs(u - v) / abs(u)  # noqa: E731
    ref = runs["im2col"][0]
    print(f"{'step':>5}" + "".join(f"{m + ' loss':>14}" for m in METHODS)
          + f"{'im2col, 64 KB chunks':>22}")
    for i in range(args.steps):
        print(f"{i + 1:>5}" + "".join(f"{runs[m][0][i]:>14.7f}" for m in METHODS)
              + f"{noise[i]:>22.7f}")
    print("largest relative gap to im2col: " + ", ".join(
        f"{m} {max(map(gap, ref, runs[m][0])):.1e}" for m in METHODS[1:])
        + f", im2col in other chunks {max(map(gap, ref, noise)):.1e}")
    if args.data:
        ckpt = load_checkpoint(pretrained_path())
        size = config_from_dict(ckpt.config).network.image_size
        trials = within_alphabet_trials(omniglot.load_paper_split(args.data, "test", size),
                                        20, 400, 0)  # tinysiamese eval's trials
        results = {}
        for method in METHODS:
            model = shipped_model(ckpt, method)
            r = results[method] = oneshot.evaluate(oneshot.model_score(model), trials)
            print(f"shipped model, 400 20-way test trials (seed 0), {method}: "
                  f"{r.n_correct}/{r.n_trials} right")
        for method in METHODS[1:]:
            differ = int((results["im2col"].predicted != results[method].predicted).sum())
            print(f"trials whose chosen support differs between im2col and {method}: {differ}")


if __name__ == "__main__":
    main()
