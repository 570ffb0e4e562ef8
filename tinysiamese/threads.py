"""Elementwise work on every CPU core.

BLAS runs a matrix product on all the cores it is given, but NumPy runs each elementwise
operation (a max, a comparison, a multiply-add) on one. At two threads the pooling and the
optimiser's updates of the paper's net then take as long as at one: a third of its step.
NumPy releases the GIL inside those loops, so Python threads, each working on its own
slice of the arrays, do run at the same time. ``Workers.split`` cuts a range of rows into
one near-equal part per thread and runs them at once; the results are the same bit for
bit, since every element is computed by the same operations either way.

One catch: after a matrix product OpenBLAS's threads keep spinning on the cores for a
while, and a thread here would share a core with one of them (``short_blas_spin``).

The backend owns one ``Workers`` (``Backend.workers``), sized like BLAS (``cpu_threads``);
on a GPU, or with one thread, ``split`` simply calls the function once.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait

# OpenBLAS's threads spin for 2**28 cycles (~0.1 s) after each product before they sleep,
# holding the cores the threads here need; 2**20 (~0.3 ms) still spans the gaps between
# the products of one convolution (``short_blas_spin``).
BLAS_SPIN_EXPONENT = "20"
# Below this many elements a thread's hand-over (tens of microseconds) costs more than the
# half of the work it takes off the caller.
MIN_ELEMENTS = 2**17


def cpu_threads() -> int:
    """The threads the matrix products use: OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS,
    else the cores this process may run on."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def short_blas_spin() -> None:
    """Let OpenBLAS's idle threads sleep after ~0.3 ms instead of spinning ~0.1 s, so that
    the pooling and the optimiser's threads find the cores free (koch, 32 pairs, 2 threads:
    32.5 -> 39 pairs/s in ``scripts/bench.py``). OpenBLAS reads OPENBLAS_THREAD_TIMEOUT
    once, when NumPy loads it, so this must run before NumPy is imported: the command line
    does it first thing. A value the user set is kept."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_SPIN_EXPONENT)


class Workers:
    """A few threads for elementwise work, started on first use.

    threads: how many parts ``split`` makes (1: everything runs in the caller).
    """

    def __init__(self, threads: int = 1):
        self.threads = max(1, int(threads))
        self._pool, self._pid = None, None

    def split(self, fn, rows: int, elements: int | None = None) -> None:
        """Call fn(start, stop) on near-equal ranges that cover [0, rows), one per thread
        (the caller runs the first), and return when all are done. ``elements``: the work's
        size in array elements (default ``rows``); under MIN_ELEMENTS it is not split."""
        parts = min(self.threads, rows)
        if parts < 2 or (rows if elements is None else elements) < MIN_ELEMENTS:
            fn(0, rows)
            return
        if self._pid != os.getpid():  # first use, or a forked child, which has no threads
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="tinysiamese")
            self._pid = os.getpid()
        bounds = [rows * k // parts for k in range(parts + 1)]
        futures = [self._pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, parts)]
        try:
            fn(bounds[0], bounds[1])
        finally:
            wait(futures)  # no thread is still writing once split returns or raises
        for f in futures:
            f.result()  # re-raises a worker's exception here

    def __repr__(self) -> str:
        return f"Workers({self.threads})"
