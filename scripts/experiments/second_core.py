#!/usr/bin/env python
"""Where the second core is lost: what a hand-over to tinysiamese's threads costs, how far a
streaming operation scales, and each call site of the real group step, split and serial.

Three measurements, with the threads handed over as ``tinysiamese train`` does
(``threads.products_on_our_threads``, before NumPy loads):

1. a hand-over that does no work: ``Workers.split`` of a no-op, the round trip to the
   other thread and back;
2. a streaming add (``c = a + b``) of 1, 4 and 16 MB arrays, serial against split: when
   one core already takes all the memory bandwidth there is, splitting gains nothing;
3. the group step of ``--preset``: every ``Workers.split`` it makes, timed as it runs and
   then once more in the caller alone (serial), summed per call site (the function that is
   split and its size). The step's arithmetic is only timed: the serial call repeats each
   piece of work, so the weights after it mean nothing.

    python scripts/experiments/second_core.py --preset small --threads 2 --steps 10
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: bench.py


def per_call_us(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e6


def site_name(fn) -> str:
    """The function a split runs, by name: through a partial, and through the lambda with
    which ``Workers.share`` hands whole pieces on (to the function it wraps)."""
    fn = getattr(fn, "func", fn)
    inner = [c.cell_contents for c in fn.__closure__ or () if callable(c.cell_contents)]
    if fn.__qualname__.startswith("Workers.share") and inner:
        fn = inner[0]
    return fn.__qualname__.replace(".<locals>", "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps of part 3")
    ap.add_argument("--repeats", type=int, default=200, help="calls timed in parts 1 and 2")
    args = ap.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # what the hand-over passes on
    from tinysiamese.threads import products_on_our_threads

    products_on_our_threads()
    import bench
    import numpy as np

    from tinysiamese import threads

    bench.tune_malloc()
    be, cfg, model, opt = bench.tinysiamese_setup(args.preset, "numpy")
    workers = be.workers
    print(f"{workers}, NumPy {np.__version__}")

    cell = np.zeros(2)
    noop = per_call_us(lambda: workers.split(lambda a, b: cell[a:b], 2, elements=2**30),
                       args.repeats)
    print(f"1. a hand-over with no work: {noop:.0f} us")

    print("2. c = a + b, float32:")
    for mb in (1, 4, 16):
        n = mb * 2**18
        a, b, c = np.ones(n, np.float32), np.ones(n, np.float32), np.empty(n, np.float32)

        def add(i, j, a=a, b=b, c=c):
            np.add(a[i:j], b[i:j], out=c[i:j])

        serial = per_call_us(lambda: add(0, n), args.repeats)
        split = per_call_us(lambda: workers.split(add, n), args.repeats)
        print(f"   {mb:3d} MB arrays: serial {serial:8.1f} us, split {split:8.1f} us, "
              f"{serial / split:.2f}x")

    batch, one_shot_weight = bench.group_batch(cfg)
    step = bench.tinysiamese_group_step(be, model, opt, cfg, batch, one_shot_weight)
    split = threads.Workers.split
    sites = defaultdict(lambda: [0, 0.0, 0.0])

    def timed_split(self, fn, rows, elements=None):
        if min(self.threads, rows) < 2 or (rows if elements is None else elements) \
                < threads.MIN_ELEMENTS:
            return split(self, fn, rows, elements)  # not split: runs in the caller anyway
        start = time.perf_counter()
        split(self, fn, rows, elements)
        middle = time.perf_counter()
        fn(0, rows)
        site = sites[(site_name(fn), rows, elements or rows)]
        site[0] += 1
        site[1] += middle - start
        site[2] += time.perf_counter() - middle

    threads.Workers.split = timed_split
    try:
        for _ in range(2):
            step()
        sites.clear()
        for _ in range(args.steps):
            step()
    finally:
        threads.Workers.split = split
    print(f"3. the {args.preset} group step's splits, per step (sums over {args.steps} "
          "steps, per step):")
    print(f"   {'split function':<40}{'pieces':>7}{'calls':>7}{'split ms':>10}{'serial ms':>11}"
          f"{'gain':>7}")
    total_split = total_serial = 0.0
    for (name, rows, _), (calls, t_split, t_serial) in sorted(
            sites.items(), key=lambda kv: -kv[1][1]):
        total_split, total_serial = total_split + t_split, total_serial + t_serial
        print(f"   {name:<40}{rows:>7}{calls / args.steps:>7.1f}"
              f"{t_split / args.steps * 1e3:>10.2f}{t_serial / args.steps * 1e3:>11.2f}"
              f"{t_serial / t_split:>6.2f}x")
    if not sites:
        print("   (none: every piece of work is under threads.MIN_ELEMENTS, or one thread)")
        return
    print(f"   {'all':<54}{total_split / args.steps * 1e3:>10.2f}"
          f"{total_serial / args.steps * 1e3:>11.2f}{total_serial / total_split:>6.2f}x")


if __name__ == "__main__":
    main()
