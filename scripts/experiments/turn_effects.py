#!/usr/bin/env python
"""Why a step timed right after another engine's step runs slower than alone.

``scripts/bench.py`` times tinysiamese and PyTorch in turns, step by step (the default) or in
blocks of steps (``--turns block``), and the two give different ratios. This script takes
tinysiamese's real group step apart in one process, each case timed ``--steps`` times in
turns with the others (the median is printed):

    alone               our step after our step, as in a training run
    after a sweep       after a pass over ``--sweep-mb`` MB of other memory: our step
                        starts with a cold cache, and nothing else is different
    after PyTorch       after PyTorch's twin of the step (NCHW, as bench.py builds it):
                        a cold cache, and PyTorch's OpenMP threads still spinning
    after PyTorch, a pause   the same with ``--pause-ms`` of sleep between: the spinning
                        has stopped by then, and the cache is as cold
    PyTorch alone       PyTorch's step after its own step

so that the share of each cause can be read off: ``after a sweep`` against ``alone`` is the
cold cache's, ``after PyTorch`` against ``after PyTorch, a pause`` the spinning's. The
threads are handed over as ``tinysiamese train`` does (``threads.products_on_our_threads``,
before NumPy loads). Without PyTorch installed (the ``bench`` extra) its cases are left out.

    python scripts/experiments/turn_effects.py --preset small --threads 2 --steps 20
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: bench.py


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=20, help="timed steps per case")
    ap.add_argument("--sweep-mb", type=int, default=64)
    ap.add_argument("--pause-ms", type=float, default=50.0)
    args = ap.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # what products_on_our_threads hands on
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from tinysiamese.threads import products_on_our_threads, short_blas_spin

    products_on_our_threads()  # before NumPy loads, as the command line does
    short_blas_spin()
    import bench
    import numpy as np

    bench.tune_malloc()
    be, cfg, model, opt = bench.tinysiamese_setup(args.preset, "numpy")
    batch, one_shot_weight = bench.group_batch(cfg)
    init = {k: be.to_numpy(v).copy() for k, v in model.params().items()}
    ours = bench.tinysiamese_group_step(be, model, opt, cfg, batch, one_shot_weight)
    other = np.ones(args.sweep_mb * 2**18, dtype=np.float32)  # sweep_mb MB
    theirs = None
    if bench.torch_available():
        with bench.initial_weights(model, be, init):
            steps = bench.torch_group_steps(model, cfg, batch, one_shot_weight, args.threads,
                                            "cpu")
        theirs = steps["torch"][0]
    pause = args.pause_ms / 1e3
    # case: (what runs before, the step timed)
    cases = {"alone": (ours, ours), "after a sweep": (other.sum, ours)}
    if theirs is not None:
        cases["after PyTorch"] = (theirs, ours)
        cases["after PyTorch, a pause"] = (lambda: (theirs(), time.sleep(pause)), ours)
        cases["PyTorch alone"] = (theirs, theirs)
    for before, timed in cases.values():  # warm-up
        before(), timed()
    times = {name: [] for name in cases}
    for _ in range(args.steps):
        for name, (before, timed) in cases.items():
            before()
            t = time.perf_counter()
            timed()
            times[name].append(time.perf_counter() - t)
    images = batch[0].shape[0]
    print(f"{args.preset} group step, {images} images, {args.threads} thread(s), "
          f"median of {args.steps}")
    alone = statistics.median(times["alone"])
    for name, seconds in times.items():
        s = statistics.median(seconds)
        vs = f"{alone / s:6.3f} of alone" if not name.startswith("PyTorch") else ""
        print(f"  {name:<24}{images / s:9.1f} images/s  {vs}")
    if theirs is None:
        print("  (PyTorch is not installed: its cases are left out; pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
