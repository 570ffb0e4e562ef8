#!/usr/bin/env python
"""Benchmark tinysiamese against the same network in PyTorch.

For each row (preset, minibatch of pairs) it measures

  * training throughput: pairs/s of a full step (forward of both twins through
    ``SiameseNet.forward_logits``, ``bce_with_logits``, ``backward_logits``,
    ``MomentumSGD.step``), the median of several timed steps after warm-up;
  * evaluation throughput: pairs/s of ``forward_logits`` alone;
  * the peak resident memory of the process (``ru_maxrss``), taken before PyTorch is
    imported, so that it is tinysiamese's alone;
  * the same step in PyTorch (same layers, same initial weights copied over, float32,
    the same number of threads), NCHW and channels_last, and the ratio
    tinysiamese / PyTorch (NCHW).

With ``--step group`` a row times the default preset's real training step instead
(``train.group_step``): a group batch of 4 alphabets x 4 characters x 4 drawings (64
images, ``groups.GroupLoader``) and all its 2,016 pairs (``groups.pairs_within``, the
loader's own), weighted cross-entropy plus 0.3 x ``losses.one_shot_softmax``,
``MomentumSGD.step`` and ``WeightAverage.update``, against the same step in PyTorch (same
weights, same pairs, same losses, SGD with momentum and the same running average, same
threads). It prints ``images_per_s``, ``torch_images_per_s`` and ``ratio``. Random images
stand in for the drawings: the step's cost does not depend on them.

Every row runs in its own child process, so that the peaks of different rows never mix::

    python scripts/bench.py                        # the full table: small, koch x 32, 128
    python scripts/bench.py --preset small --batch 32 --json     # one row, one JSON object
    python scripts/bench.py --preset small --batch 64 --layers   # + per-layer breakdown
    python scripts/bench.py --preset small --step group --layers  # ... inside the real step
    python scripts/bench.py --preset small --step group --json   # the real training step
    python scripts/bench.py --step group           # its table: small and koch, group batches
    python scripts/bench.py --backend cupy         # on a GPU (PyTorch on CUDA if present)

PyTorch is only a reference: nothing in the tinysiamese package imports it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tinysiamese.threads import (THREADS_VARIABLE, blas_on_one_thread, cpu_threads,  # no NumPy
                                 short_blas_spin)

ROWS = [("small", 32), ("small", 128), ("koch", 32), ("koch", 128)]
GROUP_ROWS = ["small", "koch"]
# A group batch when the preset trains on pairs: the small preset's own (docs/tuning.md).
GROUP = {"alphabets": 4, "characters": 4, "drawers": 4, "one_shot_weight": 0.3}
# (warm-up steps, timed steps): a koch step at batch 128 takes 10-20 s on 2 CPU cores.
STEPS = {"koch": (1, 3), "small": (2, 5), "tiny": (1, 3)}


# --------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def openblas_corename() -> str | None:
    """The OpenBLAS kernel that runs (e.g. "SkylakeX", "Haswell"), read from the library."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for lib in sorted(libs):
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for fn in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                   "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(dll, fn):
                f = getattr(dll, fn)
                f.restype = ctypes.c_char_p
                return f().decode()
    return None


def machine_info(threads: int) -> dict:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy: no dict mode
        blas = "unknown"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "elementwise_threads": cpu_threads(),  # the pool's and optimiser's threads
        # who shares the products: tinysiamese's threads (BLAS on one) or BLAS's own
        "products": "ours" if blas_on_one_thread() else "blas",
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "openblas_core": openblas_corename(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def tune_malloc() -> bool:
    """Keep freed memory in the process, as ``tinysiamese train`` does (see
    ``tinysiamese.train.keep_freed_memory``): the benchmark measures what training runs."""
    from tinysiamese.backend import keep_freed_memory

    return keep_freed_memory()


def peak_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


# --------------------------------------------------------------------------- timing
# The clock of every measurement: wall time (the default), or this process's CPU time
# (``--clock cpu``), which a busy machine disturbs much less: a process that waits for a
# core is not charged for the wait. With one thread the two agree on a quiet machine; with
# several, CPU time also counts the threads' spinning and is no throughput measure.
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
TURNS = "step"  # --turns: step by step (a, b, a, b, ...) or in blocks (block_medians)
clock = CLOCK["wall"]
CONV_METHOD = "auto"  # --conv: the network's conv_method (every conv on one path, or auto)


def make_batch(cfg, batch: int, seed: int = 1):
    """Host float32 images in [0, 1) for both twins and 0/1 labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    S = cfg.network.image_size
    x1 = rng.random((batch, 1, S, S), dtype=np.float32)
    x2 = rng.random((batch, 1, S, S), dtype=np.float32)
    y = rng.integers(0, 2, batch).astype(np.float32)
    return x1, x2, y


# --------------------------------------------------------------------------- tinysiamese
def tinysiamese_setup(preset: str, backend_name: str, seed: int = 0):
    import numpy as np

    from tinysiamese.backend import get_backend
    from tinysiamese.config import PRESETS
    from tinysiamese.model import SiameseNet
    from tinysiamese.optim import MomentumSGD, make_groups

    be = get_backend(backend_name)
    cfg = PRESETS[preset]
    # --conv: the network's conv_method, every conv on one path, or auto (the default)
    network = dataclasses.replace(cfg.network, conv_method=CONV_METHOD)
    model = SiameseNet(network, backend=be, rng=np.random.default_rng(seed))
    layer_names = [n for n, _ in model.named_layers()]
    oc = cfg.optim
    opt = MomentumSGD(model.params(), model.grads(), make_groups(layer_names, oc),
                      lr_decay=oc.lr_decay, momentum_epochs=oc.momentum_epochs,
                      workers=be.workers)  # as train's Learner: the backend's threads
    return be, cfg, model, opt


def tinysiamese_sync(be):
    if be.name == "cupy":
        return lambda: be.xp.cuda.Device().synchronize()
    return lambda: None


def tinysiamese_step_fns(be, model, opt, x1, x2, y):
    from tinysiamese.losses import bce_with_logits

    x1, x2, y = be.asarray(x1), be.asarray(x2), be.asarray(y)

    def train_step():
        z = model.forward_logits(x1, x2)
        loss, dz = bce_with_logits(z, y)
        model.backward_logits(dz)
        opt.step()
        return loss

    def eval_step():
        return model.forward_logits(x1, x2)

    return train_step, eval_step


def layer_breakdown(be, model, opt, x1, x2, y, warmup: int, timed: int) -> list[dict]:
    """Median forward and backward milliseconds of every layer of one training step."""
    from tinysiamese.losses import bce_with_logits

    xp, sync = be.xp, tinysiamese_sync(be)
    x1, x2, y = be.asarray(x1), be.asarray(x2), be.asarray(y)
    names = [n for n, _ in model.encoder] + ["join+loss", "optimizer"]
    fwd = {n: [] for n in names}
    bwd = {n: [] for n in names}

    def timed_call(store, name, fn, *args):
        sync()
        t = clock()
        out = fn(*args)
        sync()
        store[name].append(clock() - t)
        return out

    for _ in range(warmup + timed):
        N = x1.shape[0]
        h = xp.concatenate([x1, x2])
        for name, layer in model.encoder:
            h = timed_call(fwd, name, layer.forward, h)
        z = timed_call(fwd, "join+loss", model.join.forward, h[:N], h[N:])
        loss, dz = bce_with_logits(z, y)
        dh1, dh2 = timed_call(bwd, "join+loss", model.join.backward, dz)
        dh = xp.concatenate([dh1, dh2])
        for name, layer in reversed(model.encoder):
            dh = timed_call(bwd, name, layer.backward, dh)
        timed_call(bwd, "optimizer", opt.step)
    rows = []
    for n in names:
        f = 1e3 * statistics.median(fwd[n][warmup:]) if fwd[n] else 0.0
        b = 1e3 * statistics.median(bwd[n][warmup:]) if bwd[n] else 0.0
        rows.append({"layer": n, "forward_ms": round(f, 2), "backward_ms": round(b, 2)})
    return rows


def conv_paths(model) -> dict:
    """Each conv layer's path in the last step: "fft", "im2col" or "convpool" (the images'
    block as one conv-and-pool product, layers.ConvPool2D). By the class's name, so that
    this script also times a checkout from before ConvPool2D (PYTHONPATH=...)."""
    return {n: "convpool" if type(l).__name__ == "ConvPool2D" else "fft" if l.fft else "im2col"
            for n, l in model.encoder if hasattr(l, "fft")}


def group_layer_breakdown(be, model, opt, train_step, warmup: int, timed: int) -> list[dict]:
    """Median forward and backward milliseconds of every layer inside the real group step
    (``train_step``): each layer's forward and backward, the join's pair form and the
    optimiser's step are timed as the step calls them; "loss, average" is the rest."""
    sync = tinysiamese_sync(be)
    names = [n for n, _ in model.encoder] + ["join"]
    times = {(n, d): [] for n in names + ["optimizer"] for d in ("forward", "backward")}

    def wrap(obj, attr, key):
        fn = getattr(obj, attr)

        def call(*args, **kwargs):
            sync()
            t = clock()
            out = fn(*args, **kwargs)
            sync()
            times[key].append(clock() - t)
            return out

        setattr(obj, attr, call)  # an instance attribute: the class is left alone
        return lambda: delattr(obj, attr)

    undo = [wrap(layer, d, (name, d)) for name, layer in model.encoder
            for d in ("forward", "backward")]
    undo += [wrap(model.join, "forward_pairs", ("join", "forward")),
             wrap(model.join, "backward_pairs", ("join", "backward")),
             wrap(opt, "step", ("optimizer", "backward"))]
    totals = []
    try:
        for _ in range(warmup + timed):
            sync()
            t = clock()
            train_step()
            sync()
            totals.append(clock() - t)
    finally:
        for u in undo:
            u()
    med = lambda v: 1e3 * statistics.median(v[warmup:]) if v[warmup:] else 0.0  # noqa: E731
    rows = [{"layer": n, "forward_ms": round(med(times[(n, "forward")]), 2),
             "backward_ms": round(med(times[(n, "backward")]), 2)} for n in names]
    rows.append({"layer": "optimizer", "forward_ms": 0.0,
                 "backward_ms": round(med(times[("optimizer", "backward")]), 2)})
    parts = sum(r["forward_ms"] + r["backward_ms"] for r in rows)
    rows.append({"layer": "loss, average", "forward_ms": 0.0,
                 "backward_ms": round(max(0.0, med(totals) - parts), 2)})
    return rows


# --------------------------------------------------------------------------- PyTorch
def torch_model(model, torch, device):
    """The same network in PyTorch, with tinysiamese's current weights copied over.

    The twin is scripts/torch_reference.py's (the one the engine cross-check trains).
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "torch_reference", Path(__file__).resolve().parent / "torch_reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    encoder, params = reference.build(torch, model)

    class TorchSiamese(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.alpha, self.b = params["join.alpha"], params["join.b"]

        def forward(self, x1, x2):
            join = {"join.alpha": self.alpha, "join.b": self.b}
            return reference.twin_logits(torch, self.encoder, join, x1, x2)

    return TorchSiamese().to(device)


def torch_steps(model, cfg, x1, x2, y, threads, device) -> dict:
    """PyTorch twins of the tinysiamese step, NCHW and channels_last: {name: (train, eval)}."""
    import torch

    torch.set_num_threads(threads)
    # Strict float32 like tinysiamese: PyTorch lets cuDNN convolutions use TF32 tensor cores
    # by default (10-bit mantissa), which would compare a different arithmetic.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    steps = {}
    for layout in ("nchw", "channels_last"):
        net = torch_model(model, torch, device)
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        net = net.to(memory_format=fmt)
        t1 = torch.from_numpy(x1).to(device).contiguous(memory_format=fmt)
        t2 = torch.from_numpy(x2).to(device).contiguous(memory_format=fmt)
        ty = torch.from_numpy(y).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=cfg.optim.lr, momentum=0.5)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def train_step(net=net, t1=t1, t2=t2, ty=ty, opt=opt):
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(net(t1, t2), ty)
            loss.backward()
            opt.step()

        def eval_step(net=net, t1=t1, t2=t2):
            with torch.no_grad():
                net(t1, t2)

        steps["torch" if layout == "nchw" else "torch_cl"] = (train_step, eval_step)
    return steps


def interleaved_medians(fns: dict, warmup: int, timed: int, sync) -> dict:
    """Median seconds of each step function, timed in turns (a, b, c, a, b, c, ...).

    On a shared, noisy machine this exposes every contender to the same background load,
    so the ratios of the medians are fairer than timing one method after the other.
    With ``--turns block`` (TURNS) the turns are blocks instead: see ``block_medians``.
    """
    if TURNS == "block":
        return block_medians(fns, warmup, timed, sync)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times = {k: [] for k in fns}
    for _ in range(timed):
        for k, fn in fns.items():
            t = clock()
            fn()
            sync()
            times[k].append(clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def block_medians(fns: dict, warmup: int, timed: int, sync) -> dict:
    """Median seconds of each step function, timed in blocks: each one's warm-up and
    ``timed`` steps in a row, in the order a, b, c, then c, b, a (so that a drift in the
    background load falls on all alike). A training run repeats one framework's step; step
    by step turns measure each step right after the other framework's, with its memory
    and caches in the state that one left them in."""
    times = {k: [] for k in fns}
    for order in (list(fns), list(fns)[::-1]):
        for k in order:
            for _ in range(warmup):
                fns[k]()
            sync()
            for _ in range(timed):
                t = clock()
                fns[k]()
                sync()
                times[k].append(clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def torch_device(be, row) -> str | None:
    """The device PyTorch runs on beside ``be`` ("cpu" or "cuda"), noted in ``row``; None
    (and a note) on a GPU backend where this PyTorch has no CUDA."""
    import torch

    device = "cuda" if be.name == "cupy" and torch.cuda.is_available() else "cpu"
    if be.name == "cupy" and device == "cpu":
        row["torch_note"] = "PyTorch has no CUDA here: no GPU reference"
        return None
    row.update(torch=torch.__version__, torch_device=device)
    return device


@contextlib.contextmanager
def initial_weights(model, be, init_params):
    """The model holds ``init_params`` inside the block (to build PyTorch's twin from), and
    its own trained weights again after it."""
    trained = {k: be.to_numpy(v).copy() for k, v in model.params().items()}
    model.load_params(init_params)
    try:
        yield
    finally:
        model.load_params(trained)


# --------------------------------------------------------------------------- group step
def group_batch(cfg, seed: int = 1):
    """A group batch as the loader makes it: random images, the loader's pairs.

    -> (x (M, 1, S, S) float32, first, second, same, weight (P,), one_shot_weight), with the
    preset's ``group`` settings (GROUP where it names none) and ``groups.pairs_within``
    on GroupLoader's layout (image k shows character slot k // drawers).
    """
    import numpy as np

    from tinysiamese.groups import pairs_within

    g = cfg.loader.group
    if cfg.loader.kind != "groups":
        g = dataclasses.replace(g, **GROUP)
    A, C, D = g.alphabets, g.characters, g.drawers
    layout = np.repeat(np.arange(A * C), D)  # as GroupLoader.__init__
    pairs = pairs_within(layout, g.same_weight, layout // C, g.hard_weight)
    S = cfg.network.image_size
    x = np.random.default_rng(seed).random((A * C * D, 1, S, S), dtype=np.float32)
    return (x, *pairs), g.one_shot_weight


def tinysiamese_group_step(be, model, opt, cfg, batch, one_shot_weight):
    """train.group_step + MomentumSGD.step + WeightAverage.update, as train runs them."""
    from tinysiamese.optim import WeightAverage
    from tinysiamese.steps import group_step

    x, first, second, same, weight = batch
    batch = (be.asarray(x), be.xp.asarray(first), be.xp.asarray(second), be.asarray(same),
             be.asarray(weight))
    average = WeightAverage(model.params(), cfg.optim.average or 0.9995, workers=be.workers)

    def train_step():
        loss, _, _ = group_step(model, batch, one_shot_weight)
        opt.step()
        average.update()
        return loss

    return train_step


def torch_group_loss(torch, net, x, first, second, same, weight, one_shot_weight, masks):
    """The loss of train.group_step in PyTorch: weighted cross-entropy of every pair plus
    ``one_shot_weight`` x the one-shot softmax (losses.one_shot_softmax), by autograd."""
    nnf = torch.nn.functional
    h = net.encoder(x)  # (M, dense)
    z = (h[first] - h[second]).abs() @ net.alpha + net.b[0]  # (P,)
    loss = (weight * nnf.binary_cross_entropy_with_logits(z, same, reduction="none")).sum()
    if one_shot_weight:
        positive, negative = masks
        M = x.shape[0]
        S = z.new_zeros(M, M).index_put((first, second), z).index_put((second, first), z)
        L = torch.logsumexp(S.masked_fill(~negative, -float("inf")), dim=1, keepdim=True)
        extra = nnf.softplus((L - S)[positive]).sum() / positive.sum()
        loss = loss + one_shot_weight * extra
    return loss


def torch_group_steps(model, cfg, batch, one_shot_weight, threads, device) -> dict:
    """The PyTorch twin of the group step, NCHW and channels_last: {name: (step, loss_fn)}.

    SGD with the preset's momentum and L2 on the weights (not the biases), and the same
    running average of the weights (optim.WeightAverage's rule) after every step.
    """
    import torch

    torch.set_num_threads(threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x, first, second, same, weight = batch
    M = x.shape[0]
    t_first = torch.from_numpy(first).to(device)
    t_second = torch.from_numpy(second).to(device)
    t_same, t_weight = torch.from_numpy(same).to(device), torch.from_numpy(weight).to(device)
    positive = torch.zeros(M, M, dtype=torch.bool, device=device)
    positive[t_first, t_second] = t_same > 0.5
    positive[t_second, t_first] = t_same > 0.5
    negative = ~positive & ~torch.eye(M, dtype=torch.bool, device=device)
    oc = cfg.optim
    beta = oc.average or 0.9995
    steps = {}
    for layout in ("nchw", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        net = torch_model(model, torch, device).to(memory_format=fmt)
        tx = torch.from_numpy(x).to(device).contiguous(memory_format=fmt)
        named = list(net.named_parameters())
        decayed = [p for n, p in named if n.endswith("weight")]
        rest = [p for n, p in named if not n.endswith("weight")]
        opt = torch.optim.SGD([{"params": decayed, "weight_decay": 2 * oc.l2},
                               {"params": rest, "weight_decay": 0.0}],
                              lr=oc.lr, momentum=oc.momentum)
        params = [p for _, p in named]
        averages = [p.detach().clone() for p in params]
        count = [0]

        def loss_fn(net=net, tx=tx):
            return torch_group_loss(torch, net, tx, t_first, t_second, t_same, t_weight,
                                    one_shot_weight, (positive, negative))

        def train_step(opt=opt, params=params, averages=averages, count=count,
                       loss_fn=loss_fn):
            opt.zero_grad(set_to_none=False)
            loss_fn().backward()
            opt.step()
            count[0] += 1
            rate = 1.0 - min(beta, (1.0 + count[0]) / (10.0 + count[0]))
            with torch.no_grad():
                torch._foreach_lerp_(averages, [p.detach() for p in params], rate)

        steps["torch" if layout == "nchw" else "torch_cl"] = (train_step, loss_fn)
    return steps


def run_group_row(preset: str, backend_name: str, threads: int, use_torch: bool,
                  warmup: int | None, timed: int | None, layers: bool = False) -> dict:
    """One row of --step group: tinysiamese's group step, then PyTorch's, timed in turns."""
    w0, t0 = STEPS.get(preset, (1, 3))
    warmup = w0 if warmup is None else warmup
    timed = t0 if timed is None else timed
    be, cfg, model, opt = tinysiamese_setup(preset, backend_name)
    batch, one_shot_weight = group_batch(cfg)
    M, P = batch[0].shape[0], batch[1].shape[0]
    init_params = {k: be.to_numpy(v).copy() for k, v in model.params().items()}
    train_step = tinysiamese_group_step(be, model, opt, cfg, batch, one_shot_weight)
    sync = tinysiamese_sync(be)
    row = {"preset": preset, "step": "group", "images": M, "pairs": P,
           "one_shot_weight": one_shot_weight, "backend": backend_name,
           "warmup_steps": warmup, "timed_steps": timed,
           "clock": "cpu" if clock is CLOCK["cpu"] else "wall", "turns": TURNS,
           "conv_paths": None}
    row["loss_start"] = float(train_step())  # the first step, from the initial weights
    row["conv_paths"] = conv_paths(model)
    sync()
    row["peak_mb"] = peak_mb()
    if be.name == "cupy":
        row["gpu_pool_mb"] = be.xp.get_default_memory_pool().total_bytes() / 2**20
    fns = {"ts": train_step}
    device = torch_device(be, row) if use_torch and torch_available() else None
    if device is not None:
        import torch

        with initial_weights(model, be, init_params):  # PyTorch starts from the same weights
            for name, (step, loss_fn) in torch_group_steps(model, cfg, batch, one_shot_weight,
                                                            threads, device).items():
                fns[name] = step
                row[f"{name}_loss_start"] = float(loss_fn().detach())
        row["torch_threads"] = torch.get_num_threads()
        if device == "cuda":
            cuda_sync = sync
            sync = lambda: (cuda_sync(), torch.cuda.synchronize())  # noqa: E731
    seconds = interleaved_medians(fns, warmup, timed, sync)
    row["images_per_s"] = M / seconds["ts"]
    row["pairs_per_s"] = P / seconds["ts"]
    for name in ("torch", "torch_cl"):
        row[f"{name}_images_per_s"] = M / seconds[name] if name in seconds else None
    tp, tpc = row["torch_images_per_s"], row["torch_cl_images_per_s"]
    row["ratio"] = row["images_per_s"] / tp if tp else None
    row["ratio_cl"] = row["images_per_s"] / tpc if tpc else None
    row["machine"] = machine_info(threads)
    if layers:  # after the timed turns, so that the wrappers' syncs never slow those
        row["layers"] = group_layer_breakdown(be, model, opt, train_step, 1, max(1, timed))
    return row


# --------------------------------------------------------------------------- one row
def run_row(preset: str, batch: int, backend_name: str, threads: int, use_torch: bool,
            layers: bool, warmup: int | None, timed: int | None) -> dict:
    """One row: tinysiamese, then PyTorch (if wanted and importable), timed in turns."""
    w0, t0 = STEPS.get(preset, (1, 3))
    warmup = w0 if warmup is None else warmup
    timed = t0 if timed is None else timed
    be, cfg, model, opt = tinysiamese_setup(preset, backend_name)
    x1, x2, y = make_batch(cfg, batch)
    # PyTorch starts from the same weights: copy them before tinysiamese trains them.
    init_params = {k: be.to_numpy(v).copy() for k, v in model.params().items()}
    train_step, eval_step = tinysiamese_step_fns(be, model, opt, x1, x2, y)
    sync = tinysiamese_sync(be)
    row = {"preset": preset, "batch": batch, "backend": backend_name,
           "warmup_steps": warmup, "timed_steps": timed,
           "clock": "cpu" if clock is CLOCK["cpu"] else "wall", "turns": TURNS}
    # Warm up (the first step reaches the peak), then read the peak before PyTorch exists.
    for _ in range(max(1, warmup)):
        train_step()
    eval_step()
    sync()
    row["peak_mb"] = peak_mb()
    if be.name == "cupy":
        row["gpu_pool_mb"] = be.xp.get_default_memory_pool().total_bytes() / 2**20
    train_fns, eval_fns = {"ts": train_step}, {"ts": eval_step}
    device = torch_device(be, row) if use_torch and torch_available() else None
    if device is not None:
        import torch

        with initial_weights(model, be, init_params):  # PyTorch starts from the same weights
            for name, (tr, ev) in torch_steps(model, cfg, x1, x2, y, threads, device).items():
                train_fns[name], eval_fns[name] = tr, ev
        row["torch_threads"] = torch.get_num_threads()
        row["torch_tf32"] = torch.backends.cudnn.allow_tf32  # False: strict float32
        if device == "cuda":
            cuda_sync = sync
            sync = lambda: (cuda_sync(), torch.cuda.synchronize())  # noqa: E731
    train_s = interleaved_medians(train_fns, warmup, timed, sync)
    eval_s = interleaved_medians(eval_fns, min(warmup, 1), timed, sync)
    row["pairs_per_s"] = batch / train_s["ts"]
    row["eval_pairs_per_s"] = batch / eval_s["ts"]
    for name in ("torch", "torch_cl"):
        row[f"{name}_pairs_per_s"] = batch / train_s[name] if name in train_s else None
        row[f"{name}_eval_pairs_per_s"] = batch / eval_s[name] if name in eval_s else None
    if row.get("torch_device") == "cuda":
        row["torch_gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    tp, tpc = row["torch_pairs_per_s"], row["torch_cl_pairs_per_s"]
    row["ratio"] = row["pairs_per_s"] / tp if tp else None
    row["ratio_cl"] = row["pairs_per_s"] / tpc if tpc else None
    if layers:
        row["layers"] = layer_breakdown(be, model, opt, x1, x2, y, 1, max(1, timed))
    row["machine"] = machine_info(threads)
    return row


# --------------------------------------------------------------------------- the table
def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def print_rows(head: str, rows: list[dict], line, out) -> None:
    """A header, a rule, then ``line(row)`` for each row (or why the row failed)."""
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        print(f"{r['preset']:<7}  failed: {r['error']}" if "error" in r else line(r), file=out)


def print_table(rows: list[dict], out=sys.stdout) -> None:
    print_rows(f"{'preset':<7}{'batch':>6}{'train p/s':>11}{'eval p/s':>10}{'peak MB':>9}"
               f"{'torch p/s':>11}{'ratio':>7}{'torch CL p/s':>14}{'ratio CL':>9}", rows,
               lambda r: f"{r['preset']:<7}{r['batch']:>6}{fmt(r['pairs_per_s']):>11}"
                         f"{fmt(r['eval_pairs_per_s']):>10}{fmt(r['peak_mb'], '.0f'):>9}"
                         f"{fmt(r['torch_pairs_per_s']):>11}{fmt(r['ratio'], '.2f'):>7}"
                         f"{fmt(r['torch_cl_pairs_per_s']):>14}{fmt(r['ratio_cl'], '.2f'):>9}",
               out)


def print_group_table(rows: list[dict], out=sys.stdout) -> None:
    def line(r):
        fft = [n for n, p in (r.get("conv_paths") or {}).items() if p == "fft"]
        return (f"{r['preset']:<7}{r['images']:>7}{r['pairs']:>7}{fmt(r['images_per_s']):>8}"
                f"{fmt(r['peak_mb'], '.0f'):>9}{fmt(r['torch_images_per_s']):>13}"
                f"{fmt(r['ratio'], '.2f'):>7}{fmt(r['torch_cl_images_per_s']):>16}"
                f"{fmt(r['ratio_cl'], '.2f'):>9}  {' '.join(fft) or '-'}")

    print_rows(f"{'preset':<7}{'images':>7}{'pairs':>7}{'img/s':>8}{'peak MB':>9}"
               f"{'torch img/s':>13}{'ratio':>7}{'torch CL img/s':>16}{'ratio CL':>9}  "
               "convs on FFT", rows, line, out)


def print_layers(row: dict, out=sys.stdout) -> None:
    total = sum(l["forward_ms"] + l["backward_ms"] for l in row["layers"])
    what = (f"group batch of {row['images']} images ({row['pairs']} pairs)"
            if row.get("step") == "group" else
            f"batch {row['batch']} pairs ({2 * row['batch']} images)")
    print(f"\nper-layer ms, {row['preset']} {what}, median of the timed steps:", file=out)
    print(f"{'layer':<11}{'forward':>9}{'backward':>10}{'share':>7}", file=out)
    for l in row["layers"]:
        share = 100 * (l["forward_ms"] + l["backward_ms"]) / total if total else 0
        print(f"{l['layer']:<11}{l['forward_ms']:>9.1f}{l['backward_ms']:>10.1f}{share:>6.0f}%",
              file=out)


def run_child(preset, batch, args) -> dict:
    """One row in a fresh process: its ru_maxrss is that row's peak alone."""
    cmd = [sys.executable, os.path.abspath(__file__), "--preset", preset, "--json",
           "--backend", args.backend, "--threads", str(args.threads), "--clock", args.clock,
           "--step", args.step, "--conv", args.conv, "--turns", args.turns,
           "--products", args.products]
    if batch is not None:
        cmd += ["--batch", str(batch)]
    if args.no_torch:
        cmd.append("--no-torch")
    if args.layers:
        cmd.append("--layers")
    cmd.append("--tune-malloc" if args.tune_malloc else "--no-tune-malloc")
    for flag, v in (("--warmup", args.warmup), ("--steps", args.steps)):
        if v is not None:
            cmd += [flag, str(v)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
        return {"preset": preset, "batch": batch, "error": msg}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", help="one row: this preset (small, koch, tiny)")
    ap.add_argument("--batch", type=int, help="one row: minibatch size in pairs (--step pairs)")
    ap.add_argument("--step", choices=["pairs", "group"], default="pairs",
                    help="pairs (default): independent pairs, pairs_per_s; group: the real "
                         "training step on a group batch, images_per_s")
    ap.add_argument("--conv", choices=["auto", "im2col", "fft"], default="auto",
                    help="the convolutions' path (the network's conv_method; default auto)")
    ap.add_argument("--json", action="store_true", help="print the row as one JSON object")
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--threads", type=int, default=cpu_threads(),
                    help="BLAS and PyTorch threads (default: OPENBLAS_NUM_THREADS or all cores)")
    ap.add_argument("--products", choices=["ours", "blas"], default="ours",
                    help="who shares a product over the threads: tinysiamese's threads, with "
                         "BLAS on one (default, as `tinysiamese train` runs), or BLAS's own")
    ap.add_argument("--layers", action="store_true", help="per-layer forward/backward times (after the timed "
                    "turns; --step group: each layer timed inside the real step)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    ap.add_argument("--warmup", type=int, help="warm-up steps (default: per preset)")
    ap.add_argument("--steps", type=int, help="timed steps (default: per preset)")
    ap.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                    help="wall time (default) or CPU time of the process (steadier when the "
                         "machine is busy; meaningful with --threads 1)")
    ap.add_argument("--tune-malloc", action=argparse.BooleanOptionalAction, default=True,
                    help="keep freed memory in the process (glibc mallopt), as training does "
                         "(default: on)")
    ap.add_argument("--turns", choices=["step", "block"], default="step",
                    help="time tinysiamese and PyTorch step by step in turns (default) or in "
                         "blocks of steps, a b c c b a (block_medians)")
    ap.add_argument("--out", help="also write the table's rows as JSON to this file")
    args = ap.parse_args(argv)
    global clock, TURNS
    clock, TURNS = CLOCK[args.clock], args.turns
    # The BLAS reads its thread count when NumPy is first imported, which happens below.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    if args.products == "ours":  # as `tinysiamese train` runs: BLAS on one thread, ours share
        os.environ[THREADS_VARIABLE] = str(args.threads)
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    short_blas_spin()  # as `tinysiamese train` starts; a value set outside is kept

    global CONV_METHOD
    CONV_METHOD = args.conv
    group = args.step == "group"
    if group and args.batch:
        ap.error("--step group takes no --batch: a group batch is the preset's (64 images)")
    if args.preset or args.batch:
        if not (args.preset and (args.batch or group)):
            ap.error("--preset and --batch go together (one row)")
        tuned = tune_malloc() if args.tune_malloc else False
        if group:
            row = run_group_row(args.preset, args.backend, args.threads, not args.no_torch,
                                args.warmup, args.steps, args.layers)
        else:
            row = run_row(args.preset, args.batch, args.backend, args.threads,
                          not args.no_torch, args.layers, args.warmup, args.steps)
        row["malloc_tuned"] = tuned
        if args.json:
            print(json.dumps(row))
        else:
            (print_group_table if group else print_table)([row])
            if args.layers:
                print_layers(row)
        return 0

    rows = []
    for preset, batch in ([(p, None) for p in GROUP_ROWS] if group else ROWS):
        print(f"running {preset} " + ("group step" if group else f"batch {batch}") + " ...",
              file=sys.stderr, flush=True)
        rows.append(run_child(preset, batch, args))
    m = next((r["machine"] for r in rows if "machine" in r), {})
    print(f"machine: {m.get('cpu')}, {m.get('cores_usable')} usable cores, "
          f"{args.threads} threads, numpy {m.get('numpy')}, {m.get('blas')} "
          f"(core {m.get('openblas_core')}), backend {args.backend}, "
          f"torch {next((r.get('torch') for r in rows if r.get('torch')), 'absent')}, "
          f"clock {args.clock}, malloc tuned: {any(r.get('malloc_tuned') for r in rows)}")
    (print_group_table if group else print_table)(rows)
    if args.layers:
        for r in rows:
            if "layers" in r:
                print_layers(r)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
