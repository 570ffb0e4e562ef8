#!/usr/bin/env python
"""Where a convolution's time goes: the GEMM alone against im2col + GEMM + col2im.

    python scripts/experiments/conv_anatomy.py                 # koch's conv2 on 32 images
    python scripts/experiments/conv_anatomy.py --images 8

Prints, for the paper's conv2 (64 -> 128 channels, 7x7, 48x48 input): conv2d_forward and
conv2d_backward as the layer runs them, the same GEMM into a preallocated and into a fresh
output, and one unfolding (im2col). Freed memory is kept, as `tinysiamese train` does.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tinysiamese import ops
from tinysiamese.backend import keep_freed_memory


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    keep_freed_memory()
    N, C, F, K, H = args.images, 64, 128, 7, 48
    Ho = H - K + 1
    rng = np.random.default_rng(0)
    x = rng.random((N, C, H, H), dtype=np.float32)
    W = (rng.random((F, C, K, K), dtype=np.float32) - 0.5) * 0.1
    b = np.zeros(F, np.float32)
    flops = 2 * F * C * K * K * Ho * Ho * N  # one forward
    y, cache = ops.conv2d_forward(np, x, W, b)
    rows = [("conv2d_forward", median_seconds(lambda: ops.conv2d_forward(np, x, W, b), args.repeats), flops),
            ("conv2d_backward", median_seconds(lambda: ops.conv2d_backward(np, y, cache, W), args.repeats), 2 * flops)]
    cols = ops.im2col(np, x, K)
    W2 = W.reshape(F, -1)
    out = np.empty((F, cols.shape[1]), np.float32)
    rows.append(("GEMM, preallocated out", median_seconds(lambda: np.matmul(W2, cols, out=out), args.repeats), flops))
    rows.append(("GEMM, fresh out", median_seconds(lambda: W2 @ cols, args.repeats), flops))
    rows.append(("im2col alone", median_seconds(lambda: ops.im2col(np, x, K), args.repeats), None))
    print(f"koch conv2 on {N} images ({cols.nbytes / 2**20:.0f} MB of columns), median of {args.repeats}")
    for name, s, f in rows:
        rate = f"{f / s / 1e9:7.0f} GFLOP/s" if f else ""
        print(f"{name:<24}{1e3 * s:9.1f} ms  {rate}")


if __name__ == "__main__":
    main()
