#!/usr/bin/env python
"""Train the `small` preset in PyTorch on tinysiamese's own pairs: an engine cross-check.

The issue's reference measurement (a PyTorch net of the same shape) learned faster per
pair than tinysiamese. This script asks whether the *engine* is the difference: it trains
the same network in PyTorch with everything else shared, and prints the validation
one-shot accuracy after every epoch, like ``tinysiamese train`` does.

Shared with tinysiamese: the starting weights (a SiameseNet built with the same seed, copied
over), the batches (the same PairLoader, so the same pairs and distortions in the same
order), the update rule (tinysiamese.optim's momentum form, learning-rate decay, momentum
ramp and L2 on weights), the loss (mean binary cross-entropy of the logits) and the
validation trials. Only the forward and backward passes are PyTorch's.

    pip install -e '.[bench]'
    OPENBLAS_NUM_THREADS=1 python scripts/torch_reference.py --data ~/data/omniglot \
        --epochs 4 --threads 1 --config '{"val_trials": 500}'

Compare its per-epoch line with the ``metrics.jsonl`` of a tinysiamese run on independent
pairs with the same config and seed, e.g. ``scripts/experiments/probe_gap.py none`` (docs/tuning.md,
round 4; the preset itself has trained on group batches since round 5). PyTorch is a benchmark extra only: the package
never imports it.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tinysiamese.backend import get_backend
from tinysiamese.characters import with_rotations
from tinysiamese.config import build_config
from tinysiamese.model import SiameseNet
from tinysiamese.omniglot import load_paper_split
from tinysiamese.oneshot import evaluate
from tinysiamese.trials import within_alphabet_trials
from tinysiamese.optim import DECAYED, learning_rate, momentum
from tinysiamese.pairs import PairLoader


def build(torch, model: SiameseNet):
    """The SiameseNet ``model`` as PyTorch modules holding copies of its weights.

    Returns (encoder, params): params maps tinysiamese names ("conv1.W", ...) to the
    PyTorch tensors, so the optimiser below can treat each one as tinysiamese does.
    """
    nn, params, layers = torch.nn, {}, []
    host = {k: np.ascontiguousarray(model.backend.to_numpy(v), dtype=np.float32)
            for k, v in model.params().items()}  # (from a GPU too)
    for name, layer in model.encoder:
        kind = type(layer).__name__
        if kind in ("Conv2D", "ConvPool2D"):  # ConvPool2D: the conv, then its pool below
            F, C, K, _ = host[f"{name}.W"].shape
            module = nn.Conv2d(C, F, K)
            module.weight.data.copy_(torch.from_numpy(host[f"{name}.W"]))
        elif kind == "Dense":
            module = nn.Linear(*host[f"{name}.W"].shape)
            module.weight.data.copy_(torch.from_numpy(host[f"{name}.W"].T.copy()))
        elif kind == "MaxPool2D":
            module = nn.MaxPool2d(layer.size)
        elif kind in ("ReLU", "Flatten", "Sigmoid"):
            module = getattr(nn, kind)()
        else:
            raise ValueError(f"no PyTorch twin for layer {name} ({kind})")
        if kind in ("Conv2D", "ConvPool2D", "Dense"):
            module.bias.data.copy_(torch.from_numpy(host[f"{name}.b"]))
            params[f"{name}.W"], params[f"{name}.b"] = module.weight, module.bias
        layers.append(module)
        if kind == "ConvPool2D":
            layers.append(nn.MaxPool2d(layer.size))
    params["join.alpha"] = nn.Parameter(torch.from_numpy(host["join.alpha"].copy()))
    params["join.b"] = nn.Parameter(torch.from_numpy(host["join.b"].copy()))
    return nn.Sequential(*layers), params


def twin_logits(torch, encoder, params, x1, x2):
    """x1, x2: (N, 1, H, W) tensors -> (N,) logits, as SiameseNet.forward_logits."""
    h = encoder(torch.cat([x1, x2]))  # both twins in one pass, like tinysiamese
    n = x1.shape[0]
    return (h[:n] - h[n:]).abs() @ params["join.alpha"] + params["join.b"][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="Omniglot folder (the two archives)")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--config", default="{}", help="JSON overrides of the preset")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, json.loads(args.config))
    numpy_backend = get_backend("numpy")
    size = cfg.network.image_size
    train_set = with_rotations(load_paper_split(args.data, "train", size), cfg.loader.rotations)
    val_set = load_paper_split(args.data, "val", size)
    # the same trials as `tinysiamese train` with this seed draws
    trials = within_alphabet_trials(val_set, n_way=20, n_trials=cfg.run.val_trials,
                                    seed=args.seed + 1)
    model = SiameseNet(cfg.network, backend=numpy_backend, rng=np.random.default_rng(args.seed))
    encoder, params = build(torch, model)
    velocity = {k: torch.zeros_like(p) for k, p in params.items()}
    o = cfg.optim
    loader = PairLoader(train_set, numpy_backend, batch_size=cfg.loader.batch_size,
                        pairs_per_epoch=cfg.loader.pairs_per_epoch,
                        hard_negative_fraction=cfg.loader.hard_negative_fraction,
                        seed=args.seed)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def logits(x1, x2):
        return twin_logits(torch, encoder, params, x1, x2)

    def score(x1, x2):
        with torch.no_grad():
            return logits(torch.from_numpy(x1), torch.from_numpy(x2)).double().numpy()

    print(f"PyTorch {torch.__version__}, {args.threads} thread(s), preset {args.preset}, "
          f"config {args.config}, seed {args.seed}")
    for epoch in range(args.epochs):
        lr = learning_rate(o.lr, epoch, o.lr_decay)
        mu = momentum(o.momentum, epoch, o.momentum_epochs)
        t0, loss_sum, seen = time.perf_counter(), 0.0, 0
        for x1, x2, y in loader.iter_epoch(epoch):
            for p in params.values():
                p.grad = None
            loss = loss_fn(logits(torch.from_numpy(x1), torch.from_numpy(x2)), torch.from_numpy(y))
            loss.backward()
            with torch.no_grad():  # tinysiamese.optim.momentum_step: v = mu v - lr (g + 2 l2 w)
                for k, p in params.items():
                    step = p.grad
                    if o.l2 and k.split(".")[1] in DECAYED:
                        step = step + 2.0 * o.l2 * p
                    velocity[k].mul_(mu).sub_(lr * step)
                    p.add_(velocity[k])
            loss_sum += loss.item() * y.shape[0]
            seen += y.shape[0]
        seconds = time.perf_counter() - t0
        val = evaluate(score, trials)
        print(f"epoch {epoch + 1:3d}  loss {loss_sum / seen:.4f}  val 20-way {val.accuracy:.3f}  "
              f"{seen / seconds:.0f} pairs/s  lr {lr:.4g}  mom {mu:.2f}", flush=True)
    loader.close()


if __name__ == "__main__":
    main()
