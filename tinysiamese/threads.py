"""Every CPU core, for the elementwise work and for the matrix products.

NumPy runs each elementwise operation (a max, a comparison, a multiply-add) on one core.
At two threads the pooling and the optimiser's updates of the paper's net then take as
long as at one: a third of its step. NumPy releases the GIL inside those loops, so Python
threads, each working on its own slice of the arrays, do run at the same time.
``Workers.split`` cuts a range of rows into one near-equal part per thread and runs them
at once; the results are the same bit for bit, since every element is computed by the
same operations either way.

The products. OpenBLAS shares a big product over its own threads, but runs the small
ones a convolution makes by the hundred on one, and serves two threads calling it at once
one after the other. So the command line holds OpenBLAS to one thread before NumPy loads
it (``products_on_our_threads``) and ``Workers`` shares the products instead: a product's
rows between the threads (``Workers.matmul``), or a convolution's chunks of the batch,
each thread unfolding and multiplying its own (``Workers.share``). Every element of a
result is the same dot product either way, though BLAS may round a thinner slice's sums
in another order (the last bit of float32). Outside the command line (tests, notebooks)
BLAS keeps its threads and ``Workers`` leaves the products to it.

The backend owns one ``Workers`` (``Backend.workers``), sized by ``cpu_threads``; on a
GPU, or with one thread, every call simply runs once in the caller.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor, wait

# OpenBLAS's threads spin for 2**28 cycles (~0.1 s) after each product before they sleep,
# holding the cores the threads here need; 2**20 (~0.3 ms) still spans the gaps between
# the products of one convolution (``short_blas_spin``).
BLAS_SPIN_EXPONENT = "20"
# Below this many elements a thread's hand-over (tens of microseconds) costs more than the
# half of the work it takes off the caller.
MIN_ELEMENTS = 2**17
# A product under ~2**20 multiply-adds takes ~0.1 ms on one core: not worth sharing.
MIN_MADDS = 2**20
# The threads tinysiamese itself runs, when BLAS is held to one (``products_on_our_threads``).
THREADS_VARIABLE = "TINYSIAMESE_THREADS"


def cpu_threads() -> int:
    """The threads to compute on: TINYSIAMESE_THREADS, else OPENBLAS_NUM_THREADS, else
    OMP_NUM_THREADS, else the cores this process may run on."""
    for name in (THREADS_VARIABLE, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def short_blas_spin() -> None:
    """When OpenBLAS keeps threads of its own: let them sleep after ~0.3 ms instead of
    spinning ~0.1 s after each product on the cores the pooling and the optimiser's threads
    need (koch, 32 pairs, 2 threads: 32.5 -> 39 pairs/s in ``scripts/bench.py --products
    blas``). OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when NumPy loads it, so this must
    run before NumPy is imported. A value the user set is kept."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_SPIN_EXPONENT)


def blas_on_one_thread() -> bool:
    """Whether OpenBLAS was told to run every product on the calling thread alone."""
    return os.environ.get("OPENBLAS_NUM_THREADS") == "1"


def products_on_our_threads() -> None:
    """Hold OpenBLAS to one thread and give its threads to ``Workers``, which then shares
    the matrix products too (``Workers.matmul``). Why: OpenBLAS runs a product the size of
    the small preset's per-frequency ones (64 x 32 by 32 x 64) on one thread, and when it
    has threads of its own it serves two callers' products one after the other, so
    threads of ours gain nothing on them; held to one thread it runs them side by side
    (two halves at once: 3.4 -> 1.7 ms, ``scripts/blas_callers.py``). Must run before
    NumPy loads OpenBLAS, which reads the variable once, so it does nothing once NumPy is
    imported (a test run, a notebook). TINYSIAMESE_THREADS (default: the threads BLAS
    would have used) keeps the count."""
    if "numpy" in sys.modules:
        return
    os.environ.setdefault(THREADS_VARIABLE, str(cpu_threads()))
    os.environ["OPENBLAS_NUM_THREADS"] = "1"


def piece_count(n: int, per_piece: int, threads: int = 1) -> int:
    """How many pieces ``n`` items are cut into, ``per_piece`` at most in each: as few as
    that allows, then a multiple of ``threads`` (so that threads taking whole pieces get
    as many each), and never more than ``n``."""
    count = -(-n // max(1, per_piece))
    return min(n, -(-count // threads) * threads)


class Workers:
    """A few threads for elementwise work and matrix products, started on first use.

    threads: how many parts ``split`` makes (1: everything runs in the caller).
    products: whether ``matmul`` shares products over the threads too; only worth it when
    BLAS runs each product on one thread (``products_on_our_threads``).
    """

    def __init__(self, threads: int = 1, products: bool = False):
        self.threads = max(1, int(threads))
        self.products = bool(products)
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

    def matmul(self, xp, a, b, out=None):
        """a @ b (into ``out`` if given) for a (M, K) and b (K, N) or (K,), or a stack
        b (S, K, N) with a (S, M, K) or one a (M, K) for all. With ``products`` on, each
        thread computes a share of the result's rows (of its columns when they are more,
        of the stack for stacks): every element is the same dot product as in one call."""
        stacked = b.ndim == 3 and (a.ndim == 2 or (a.ndim == 3 and len(a) == len(b)))
        flat = a.ndim == 2 and b.ndim <= 2
        if not self.products or self.threads < 2 or not (stacked or flat):
            return xp.matmul(a, b, out=out)
        if out is None:
            shape = (len(b), a.shape[-2], b.shape[-1]) if stacked else (
                a.shape[:1] + b.shape[1:])
            out = xp.empty(shape, xp.result_type(a, b))
        if out.size * a.shape[-1] < MIN_MADDS:
            return xp.matmul(a, b, out=out)
        if stacked:
            def part(i, j):
                xp.matmul(a if a.ndim == 2 else a[i:j], b[i:j], out=out[i:j])
            n = len(b)
        elif b.ndim == 1 or a.shape[0] >= b.shape[1]:  # share the rows
            def part(i, j):
                xp.matmul(a[i:j], b, out=out[i:j])
            n = a.shape[0]
        else:  # share the columns
            def part(i, j):
                xp.matmul(a, b[:, i:j], out=out[:, i:j])
            n = b.shape[1]
        self.split(part, n, elements=MIN_ELEMENTS)  # big enough: checked in madds above
        return out

    @property
    def pieces(self) -> int:
        """How many independent pieces of work ``share`` runs side by side: one per thread
        with ``products`` on, else 1 (then the threads share each product instead). A
        convolution cuts its batch into a multiple of this many chunks, so no thread idles."""
        return self.threads if self.products else 1

    def share(self, fn, n: int) -> None:
        """fn(first, stop, matmul) on ranges covering [0, n) of independent pieces of work
        (a convolution's chunks of the batch), with ``matmul(xp, a, b, out=None)`` to
        multiply by. With ``products`` on and a piece for every thread, each thread takes
        a range of whole pieces, whose copies then run side by side too, and multiplies on
        its own; otherwise one call takes them all and the threads share each product."""
        if self.products and 1 < self.threads <= n:
            # whole pieces are worth a thread each (elements: no size threshold here)
            self.split(lambda first, stop: fn(first, stop, SERIAL.matmul), n,
                       elements=MIN_ELEMENTS)
        else:
            fn(0, n, self.matmul)

    def share_sums(self, fn, n: int) -> tuple:
        """``share`` for pieces whose work is sums: fn(first, stop, matmul) returns a tuple
        of arrays summed over its range (a convolution's dW and db over its chunks) ->
        those tuples added up, in the ranges' order, so that a run gives the same bits
        whichever thread finishes first."""
        sums = {}  # by the range's first piece
        self.share(lambda first, stop, matmul: sums.__setitem__(first, fn(first, stop, matmul)),
                   n)
        ranges = [sums[first] for first in sorted(sums)]
        return tuple(sum(parts) for parts in zip(*ranges))

    def __repr__(self) -> str:
        return f"Workers({self.threads}{', products' if self.products else ''})"


SERIAL = Workers(1)  # no threads: what a function handed no workers uses
