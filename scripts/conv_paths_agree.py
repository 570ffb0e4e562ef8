#!/usr/bin/env python
"""The two convolution paths give the same results: training losses and one-shot scores.

    python scripts/conv_paths_agree.py --steps 30                       # training only
    python scripts/conv_paths_agree.py --steps 30 --data ../shared/data/omniglot

1. Training: the small preset's real step (bench.py --step group: a group batch of 64
   images and its 2,016 pairs, cross-entropy + 0.3 x the one-shot softmax, MomentumSGD)
   for ``--steps`` steps from one initialisation, once with every conv on im2col and once
   with ``method="auto"`` (the Fourier path where ``layers.use_fft`` picks it), on the
   same random batches. Prints both losses at every step and their largest relative gap,
   beside the gap to a third run on im2col in smaller chunks (dW summed in another order):
   the size of float32 noise along a trajectory.
2. With ``--data``: the shipped model (tinysiamese/pretrained) scored on the 400 20-way
   within-alphabet test trials of ``tinysiamese eval`` (seed 0) through both paths.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


from tinysiamese import oneshot, omniglot
from tinysiamese.steps import group_step
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.config import config_from_dict
from tinysiamese.pretrained import pretrained_path
from tinysiamese.trials import within_alphabet_trials

HERE = Path(__file__).resolve().parent


def set_method(model, method: str, max_cols_bytes=None) -> list[str]:
    """Put every Conv2D of ``model`` on ``method`` (and im2col chunks of at most
    ``max_cols_bytes``, if given); -> the names of the convs."""
    names = []
    for name, layer in model.encoder:
        if hasattr(layer, "method"):
            layer.method = method
            layer.max_cols_bytes = max_cols_bytes or layer.max_cols_bytes
            names.append(name)
    return names


def losses(method: str, steps: int, max_cols_bytes=None) -> tuple[list[float], dict]:
    spec = importlib.util.spec_from_file_location("bench", HERE / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    be, cfg, model, opt = bench.tinysiamese_setup("small", "numpy")
    set_method(model, method, max_cols_bytes)
    out = []
    for step in range(steps):
        batch, w = bench.group_batch(cfg, seed=100 + step)  # a fresh batch, alike for both
        x, first, second, same, weight = batch
        loss, _, _ = group_step(model, (be.asarray(x), first, second, be.asarray(same),
                                              be.asarray(weight)), w)
        opt.step()
        out.append(float(loss))
    paths = {n: "fft" if l.fft else "im2col" for n, l in model.encoder if hasattr(l, "fft")}
    return out, paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--data", type=Path, help="Omniglot folder: also score the shipped model")
    args = ap.parse_args()
    a, _ = losses("im2col", args.steps)
    b, paths = losses("auto", args.steps)
    # float32 noise for scale: im2col again, in 64 KB chunks, which sums dW in another order
    c, _ = losses("im2col", args.steps, max_cols_bytes=2**16)
    print(f"small preset, {args.steps} group steps from one seed; auto put {paths}")
    print(f"{'step':>5}{'im2col loss':>14}{'auto loss':>14}{'gap':>9}"
          f"{'im2col, 64 KB chunks':>22}{'gap':>9}")
    gap = lambda u, v: abs(u - v) / abs(u)  # noqa: E731
    for i, (u, v, w) in enumerate(zip(a, b, c), start=1):
        print(f"{i:>5}{u:>14.7f}{v:>14.7f}{gap(u, v):>9.1e}{w:>22.7f}{gap(u, w):>9.1e}")
    print(f"largest relative gap: auto {max(map(gap, a, b)):.1e}, "
          f"im2col in other chunks {max(map(gap, a, c)):.1e}")
    if args.data:
        ckpt = load_checkpoint(pretrained_path())
        size = config_from_dict(ckpt.config).network.image_size
        trials = within_alphabet_trials(omniglot.load_paper_split(args.data, "test", size),
                                        20, 400, 0)  # tinysiamese eval's trials
        results = {}
        for method in ("im2col", "auto"):
            model = model_from_checkpoint(ckpt, get_backend("numpy"))
            set_method(model, method)
            r = results[method] = oneshot.evaluate(oneshot.model_score(model), trials)
            print(f"shipped model, 400 20-way test trials (seed 0), {method}: "
                  f"{r.n_correct}/{r.n_trials} right")
        differ = int((results["im2col"].predicted != results["auto"].predicted).sum())
        print(f"trials whose chosen support differs between the paths: {differ}")


if __name__ == "__main__":
    main()
