#!/usr/bin/env python
"""im2col against FFT, layer by layer: where the FFT convolution starts to pay.

    python scripts/conv_crossover.py                    # every conv of small and koch, 64 images
    python scripts/conv_crossover.py --images 16 --repeats 3
    python scripts/conv_crossover.py --sweep            # K x input size grid at C=F=64

For each convolution it times forward + backward (the layer's whole cost in a training step)
through ``ops.conv2d_*`` (im2col + GEMM) and ``fftconv.conv2d_fft_*``, alternating the two,
and prints the median milliseconds, the ratio and what ``fftconv.use_fft`` picks. The
crossover stated in ``fftconv.use_fft`` and docs/benchmarks.md comes from this script.
Freed memory is kept, as `tinysiamese train` does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from tinysiamese import fftconv, ops
from tinysiamese.fftconv import use_fft
from tinysiamese.backend import keep_freed_memory
from tinysiamese.config import PRESETS, encoder_shapes


def preset_convs(name: str):
    """(label, C, F, K, Hi) for every conv layer of a preset."""
    network = PRESETS[name].network
    size, C, rows = network.image_size, 1, []
    for i, ((F, K), out) in enumerate(zip(network.conv, encoder_shapes(network)), start=1):
        rows.append((f"{name} conv{i}", C, F, K, size))
        size, C = out, F
    return rows


def time_pair(N, C, F, K, H, repeats, clock=time.perf_counter):
    """Median seconds of forward + backward, im2col and FFT, timed in turns."""
    rng = np.random.default_rng(0)
    x = rng.random((N, C, H, H), dtype=np.float32)
    W = (rng.random((F, C, K, K), dtype=np.float32) - 0.5) * 0.1
    b = np.zeros(F, np.float32)
    dy = rng.random((N, F, H - K + 1, H - K + 1), dtype=np.float32)

    def im2col():
        _, cache = ops.conv2d_forward(np, x, W, b)
        ops.conv2d_backward(np, dy, cache, W)

    def fft():
        _, cache = fftconv.conv2d_fft_forward(np, x, W, b)
        fftconv.conv2d_fft_backward(np, dy, cache, W)

    times = {"im2col": [], "fft": []}
    im2col(), fft()  # warm-up
    for _ in range(repeats):
        for name, fn in (("im2col", im2col), ("fft", fft)):
            t = clock()
            fn()
            times[name].append(clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sweep", action="store_true", help="a K x size grid at C = F = 64")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or this process's CPU time (steadier on a busy machine; "
                         "meaningful with OPENBLAS_NUM_THREADS=1)")
    args = ap.parse_args()
    keep_freed_memory()
    if args.sweep:
        rows = [(f"sweep K={K} H={H}", 64, 64, K, H) for K in (3, 4, 5, 7, 10)
                for H in (12, 24, 48) if H > K]
    else:
        rows = preset_convs("small") + preset_convs("koch")
    print(f"{args.images} images, forward + backward, median of {args.repeats} (ms, {args.clock} "
          f"clock, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})")
    print(f"{'layer':<18}{'C':>5}{'F':>5}{'K':>4}{'Hi':>5}{'im2col':>9}{'fft':>9}"
          f"{'fft/im2col':>11}  auto")
    for label, C, F, K, H in rows:
        t = time_pair(args.images, C, F, K, H, args.repeats,
                      time.process_time if args.clock == "cpu" else time.perf_counter)
        pick = "fft" if use_fft(args.images, C, F, K, H, H) else "im2col"
        print(f"{label:<18}{C:>5}{F:>5}{K:>4}{H:>5}{1e3 * t['im2col']:>9.1f}"
              f"{1e3 * t['fft']:>9.1f}{t['fft'] / t['im2col']:>11.2f}  {pick}", flush=True)


if __name__ == "__main__":
    main()
