"""Do two threads calling OpenBLAS at once run side by side? The measurement behind
``tinysiamese.threads.products_on_our_threads``.

Times the small preset's per-frequency products (312 complex products of 64 x 32 by 32 x 64,
as in its conv2) three ways: in one call, as two halves one after the other, and as two
halves on two threads at once. Run it once per OpenBLAS setting, which OpenBLAS reads when
NumPy loads:

    OPENBLAS_NUM_THREADS=2 python scripts/blas_callers.py   # OpenBLAS with threads of its own
    OPENBLAS_NUM_THREADS=1 python scripts/blas_callers.py   # OpenBLAS on the caller's thread

With threads of its own, OpenBLAS serves the two threads one after the other (the halves
at once take as long as the whole); held to one thread, it runs them side by side.
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=50, help="timed calls (median)")
    ap.add_argument("--frequencies", type=int, default=312)
    args = ap.parse_args(argv)
    import numpy as np

    rng = np.random.default_rng(0)
    Q = args.frequencies
    a = (rng.standard_normal((Q, 64, 32)) + 1j * rng.standard_normal((Q, 64, 32))).astype(np.complex64)
    b = (rng.standard_normal((Q, 32, 64)) + 1j * rng.standard_normal((Q, 32, 64))).astype(np.complex64)
    out = np.empty((Q, 64, 64), np.complex64)
    pool = ThreadPoolExecutor(1)

    def part(lo, hi):
        np.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])

    def at_once():
        other = pool.submit(part, Q // 2, Q)
        part(0, Q // 2)
        other.result()

    ways = {"one call": lambda: part(0, Q),
            "two halves in turn": lambda: (part(0, Q // 2), part(Q // 2, Q)),
            "two halves on two threads": at_once}
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"{Q} complex64 products 64x32 @ 32x64, median of {args.repeats}")
    for name, fn in ways.items():
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"  {name:28s} {sorted(times)[len(times) // 2] * 1e3:7.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
