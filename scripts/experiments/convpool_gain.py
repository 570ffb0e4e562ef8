#!/usr/bin/env python
"""Where one conv-and-pool product pays: ConvPool2D against Conv2D (im2col) + MaxPool2D.

For each conv block of the presets that a 2 x 2 pool follows, at the batch the training
step gives it, the forward and backward of the two ways with the same weights: Conv2D on
the im2col path then MaxPool2D (the reference), and ConvPool2D (``tinysiamese.convpool``:
the kernels shifted to each window offset, one product, pooled in the cache). The first
block has one input channel (the images) and a thin product, where the passes over
memory it saves are most of the cost; with more input channels the shifted kernels' extra
products ((K + 1)^2 / K^2) take more of the gain (small's conv2 and conv3 take the Fourier
path in the training step, faster than either way here). Threads as ``tinysiamese
train`` hands them over (``threads.products_on_our_threads``, before NumPy loads).

    python scripts/experiments/convpool_gain.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

# (name, batch of images, in channels, out channels, kernel, input side)
BLOCKS = [("small conv1", 64, 1, 32, 5, 52), ("small conv2", 64, 32, 64, 5, 24),
          ("small conv3", 64, 64, 64, 3, 10), ("tiny conv2", 64, 4, 8, 3, 12),
          ("koch conv1", 64, 1, 64, 10, 105)]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm: buffers, DFT matrices, threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--blocks", default=",".join(b[0] for b in BLOCKS),
                    help="which rows, by name, comma-separated")
    args = ap.parse_args(argv)
    os.environ["TINYSIAMESE_THREADS"] = str(args.threads)
    from tinysiamese.threads import products_on_our_threads

    products_on_our_threads()
    import numpy as np

    from tinysiamese.backend import get_backend, keep_freed_memory
    from tinysiamese.layers import Conv2D, ConvPool2D, MaxPool2D

    keep_freed_memory()  # as training runs
    be = get_backend("numpy")
    print(f"{be.workers}; forward + backward, median of {args.repeats}, ms")
    print(f"{'block':<13}{'images':>7}{'C->F, K, side':>16}{'conv + pool':>13}"
          f"{'ConvPool2D':>12}{'ratio':>7}")
    wanted = set(args.blocks.split(","))
    for name, N, C, F, K, side in BLOCKS:
        if name not in wanted:
            continue
        rng = np.random.default_rng(0)
        x = be.asarray(rng.random((N, C, side, side), dtype=np.float32))
        grad = C > 1  # the images' block computes no dx, as in the model
        conv = Conv2D(C, F, K, backend=be, rng=np.random.default_rng(1), method="im2col",
                      input_grad=grad)
        pool = MaxPool2D(2, backend=be)
        fused = ConvPool2D(C, F, K, 2, backend=be, rng=np.random.default_rng(1),
                           input_grad=grad)
        dy = be.asarray(rng.standard_normal(fused.forward(x).shape).astype(np.float32))

        def separate():
            pool.forward(conv.forward(x))
            conv.backward(pool.backward(dy))

        def together():
            fused.forward(x)
            fused.backward(dy)

        a, b = median_ms(separate, args.repeats), median_ms(together, args.repeats)
        print(f"{name:<13}{N:>7}{f'{C}->{F}, {K}, {side}':>16}{a:>13.2f}{b:>12.2f}"
              f"{a / b:>7.2f}")


if __name__ == "__main__":
    main()
