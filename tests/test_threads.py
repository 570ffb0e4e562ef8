"""Elementwise work split over threads: every row done once, and the same bits as one thread."""
import os
import signal
import threading
import time

import numpy as np
import pytest

from tinysiamese import ops
from tinysiamese.backend import Backend
from tinysiamese.layers import MaxPool2D
from tinysiamese.optim import MomentumSGD, WeightAverage
from tinysiamese.threads import MIN_ELEMENTS, SERIAL, Workers, cpu_threads


def test_split_covers_every_row_once_in_as_many_threads():
    seen, names = [], set()

    def part(a, b):
        seen.append((a, b))
        names.add(threading.current_thread().name)

    Workers(3).split(part, 10, elements=MIN_ELEMENTS)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]
    assert threading.current_thread().name in names and len(names) >= 2  # and a worker


@pytest.mark.parametrize("threads, rows, elements", [(1, 10, 10**9), (4, 1, 10**9), (4, 10, 10)])
def test_split_runs_once_in_the_caller_when_it_cannot_pay(threads, rows, elements):
    seen = []
    Workers(threads).split(lambda a, b: seen.append((a, b, threading.current_thread())), rows,
                           elements=elements)
    assert seen == [(0, rows, threading.current_thread())]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_forked_child_starts_threads_of_its_own():
    workers, seen = Workers(2), []
    workers.split(lambda a, b: seen.append(a), 4, elements=MIN_ELEMENTS)  # threads started
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are not here; split must not hang
        try:
            workers.split(lambda a, b: None, 4, elements=MIN_ELEMENTS)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert status == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("a forked child's split waited for its parent's threads")


def test_a_workers_exception_reaches_the_caller():
    def part(a, b):
        if a > 0:
            raise RuntimeError(f"rows {a}:{b}")

    with pytest.raises(RuntimeError, match="rows 5:10"):
        Workers(2).split(part, 10, elements=MIN_ELEMENTS)


def test_split_waits_for_the_workers_when_the_callers_part_fails():
    finished = []

    def part(a, b):
        if a == 0:
            raise ValueError("the caller's part")
        time.sleep(0.2)
        finished.append(a)

    with pytest.raises(ValueError, match="the caller's part"):
        Workers(2).split(part, 10, elements=MIN_ELEMENTS)
    assert finished == [5], "split returned while a worker was still at its part"


def test_cpu_threads_follows_blas(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert cpu_threads() >= 1


@pytest.mark.parametrize("size, shape", [(2, (3, 6, 96, 97)), (3, (3, 5, 100, 98))])
@pytest.mark.parametrize("channel_major", [True, False])
def test_pool_in_threads_is_the_pool_in_one(size, shape, channel_major):
    rng = np.random.default_rng(1)
    N, C, H, W = shape
    x = np.round(rng.standard_normal((C, N, H, W) if channel_major else shape), 1)  # ties
    x = (x.transpose(1, 0, 2, 3) if channel_major else x).astype(np.float32)
    assert x.size >= MIN_ELEMENTS  # so that the layer does split
    layer = MaxPool2D(size, backend=Backend("numpy", np, np.float32, workers=Workers(3)))
    y = layer.forward(x)
    y1, cache1 = ops.maxpool_forward(np, x, size)
    np.testing.assert_array_equal(y, y1)
    np.testing.assert_array_equal(layer.cache[0], cache1[0])
    assert ops.is_channel_major(y) == channel_major  # the layout conv backward wants
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx, ops.maxpool_backward(np, dy, cache1, size))
    assert ops.is_channel_major(dx) == channel_major


def test_optimiser_and_average_in_threads_are_bit_for_bit():
    shapes = {"dense1.W": (700, 300), "dense1.b": (300,), "join.alpha": (300,)}
    results = []
    for threads in (1, 3):
        rng = np.random.default_rng(2)  # the same arrays for both runs
        params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        grads = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        groups = {n: {"lr": 0.1, "momentum": 0.9, "l2": 1e-2} for n in ("dense1", "join")}
        opt = MomentumSGD(params, grads, groups, workers=Workers(threads))
        avg = WeightAverage(params, 0.9, workers=Workers(threads))
        for _ in range(3):
            opt.step()
            avg.update()
        results.append((params, opt.velocities, avg.averages))
    assert params["dense1.W"].size >= MIN_ELEMENTS  # so that the update does split
    for one, three in zip(*results):
        for k in shapes:
            np.testing.assert_array_equal(one[k], three[k], err_msg=k)


CHECK_CLI = """
import os, sys
import tinysiamese.threads as threads
seen = []
real = threads.products_on_our_threads
threads.products_on_our_threads = lambda: (seen.append("numpy" in sys.modules), real())
import tinysiamese.cli
from tinysiamese.backend import get_backend
w = get_backend("numpy").workers
print(seen, os.environ["OPENBLAS_NUM_THREADS"], os.environ["TINYSIAMESE_THREADS"],
      w.threads, w.products)
"""


@pytest.mark.parametrize("given, want", [({"OPENBLAS_NUM_THREADS": "3"}, "3"),
                                         ({"TINYSIAMESE_THREADS": "2"}, "2"),
                                         ({"OPENBLAS_NUM_THREADS": "1"}, "1")])
def test_the_command_line_gives_blas_threads_to_ours_before_numpy_loads(given, want):
    import os
    import subprocess
    import sys

    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "TINYSIAMESE_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in names} | given
    out = subprocess.run([sys.executable, "-c", CHECK_CLI], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    # called once, NumPy not yet loaded; BLAS on one thread, the count the user asked for ours
    assert out == ["[False]", "1", want, want, "True"]


def test_giving_blas_threads_away_is_a_no_op_once_numpy_is_loaded(monkeypatch):
    from tinysiamese.threads import products_on_our_threads

    monkeypatch.delenv("TINYSIAMESE_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    products_on_our_threads()  # NumPy is loaded in this process: OpenBLAS keeps its threads
    assert "TINYSIAMESE_THREADS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ


def test_cpu_threads_reads_ours_first(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("TINYSIAMESE_THREADS", "4")
    assert cpu_threads() == 4


class RecordingNumpy:
    """numpy, with every matmul's shape and thread recorded: proves a product was shared."""

    def __init__(self):
        self.calls, self._lock = [], threading.Lock()

    def matmul(self, a, b, out=None):
        with self._lock:
            self.calls.append((a.shape, b.shape, threading.current_thread().name))
        return np.matmul(a, b, out=out)

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.parametrize("a_shape, b_shape, parts_of", [
    ((300, 200), (200, 100), "rows"), ((40, 200), (200, 900), "columns"),
    ((2000, 600), (600,), "rows"), ((12, 60, 40), (12, 40, 60), "stack"),
    ((60, 40), (12, 40, 60), "stack")])  # one a for the whole stack, as a DFT matrix
@pytest.mark.parametrize("given_out", [False, True])
def test_a_shared_product_is_the_product(a_shape, b_shape, parts_of, given_out):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    want = a @ b
    out = None
    if given_out and want.ndim == 2:  # a view with a row stride of its own, as conv's y is
        out = np.full((want.shape[0], want.shape[1] + 3), 7.0)[:, 2 : 2 + want.shape[1]]
    elif given_out:
        out = np.empty(want.shape)
    xp = RecordingNumpy()
    got = Workers(3, products=True).matmul(xp, a, b, out=out)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert out is None or got is out
    # three parts: the caller's and two run by the pool's threads (one may run both)
    assert len(xp.calls) == 3 and len({t for *_, t in xp.calls}) >= 2
    # which axis of which operand the parts cut: a's rows, b's columns, b's stack
    axis, side = {"rows": (0, 0), "columns": (1, 1), "stack": (0, 1)}[parts_of]
    assert sum(call[side][axis] for call in xp.calls) == (a_shape, b_shape)[side][axis]


def test_a_product_is_not_shared_without_products_or_when_small():
    a, b = np.ones((300, 200)), np.ones((200, 100))
    for workers in (Workers(3), Workers(1, products=True)):
        xp = RecordingNumpy()
        workers.matmul(xp, a, b)
        assert [c[:2] for c in xp.calls] == [((300, 200), (200, 100))]
    xp = RecordingNumpy()
    Workers(3, products=True).matmul(xp, np.ones((10, 10)), np.ones((10, 10)))  # 1,000 madds
    assert len(xp.calls) == 1


def test_share_hands_whole_pieces_to_threads_with_plain_products():
    seen = []
    workers = Workers(3, products=True)
    workers.share(lambda i, j, mm: seen.append((i, j, mm == workers.matmul,
                                                threading.current_thread().name)), 7)
    assert sorted(s[:2] for s in seen) == [(0, 2), (2, 4), (4, 7)]
    assert not any(s[2] for s in seen) and len({s[3] for s in seen}) >= 2
    for n, w in ((2, workers), (7, Workers(3))):  # fewer pieces than threads; no products
        seen.clear()
        w.share(lambda i, j, mm: seen.append((i, j, mm == w.matmul)), n)
        assert seen == [(0, n, True)]


def test_share_sums_adds_the_ranges_sums_in_their_order():
    # float32 sums whose order shows in the last bits: the result must not depend on
    # which thread finished first, and must be the sum in range order
    parts = np.float32([1e8, 1.0, -1e8, 3.0, 0.5, 7.0, 2.5])

    def piece(first, stop, matmul):
        if first == 0:
            time.sleep(0.01)  # the first range finishes last
        return parts[first:stop].sum(keepdims=True), np.float64(stop - first)

    for workers in (Workers(3, products=True), Workers(1)):
        total, count = workers.share_sums(piece, 7)
        ranges = [(0, 2), (2, 4), (4, 7)] if workers.threads > 1 else [(0, 7)]
        want = sum(parts[i:j].sum(keepdims=True) for i, j in ranges)
        assert total.tobytes() == want.tobytes() and count == 7


@pytest.mark.parametrize("n, per_piece, threads, want", [
    (10, 4, 1, 3),    # as few as fit
    (10, 4, 2, 4),    # then a multiple of the threads
    (10, 100, 3, 3),  # one would fit: one for each thread
    (2, 100, 3, 2),   # never more than the items
    (5, 0, 1, 5),     # an item bigger than a piece: one each
])
def test_piece_count(n, per_piece, threads, want):
    from tinysiamese.threads import piece_count

    assert piece_count(n, per_piece, threads) == want


def test_the_batch_is_cut_into_a_piece_for_each_thread_only_when_products_are_ours():
    from tinysiamese import fftconv

    assert [Workers(3, products=True).pieces, Workers(3).pieces, SERIAL.pieces] == [3, 1, 1]
    x = np.zeros((6, 2, 7, 7), dtype=np.float32)
    W, b = np.zeros((4, 2, 3, 3), dtype=np.float32), np.zeros(4, dtype=np.float32)
    for workers, pieces in ((Workers(3, products=True), 3), (Workers(3), 1)):
        seen = []
        real_share = workers.share
        workers.share = lambda fn, n, seen=seen, real=real_share: (seen.append(n), real(fn, n))
        ops.conv2d_forward(np, x, W, b, max_cols_bytes=2**30, workers=workers)
        assert seen == [pieces]  # the whole batch fits one chunk; each thread gets one
    # the Fourier transforms' slabs: near-equal, as many for each thread
    assert fftconv._slab_rows(np, 100, fftconv.SLAB_BYTES // 40) == 34  # 3 slabs of 34, 32
    assert fftconv._slab_rows(np, 100, fftconv.SLAB_BYTES // 40, at_least=2) == 25  # 4
    assert fftconv._slab_rows(np, 100, 1, at_least=3) == 34
    assert fftconv._slab_rows(np, 2, 1, at_least=3) == 1


def test_the_fourier_transforms_in_slabs_on_threads_are_the_transforms(monkeypatch):
    from tinysiamese import fftconv

    rng = np.random.default_rng(3)
    a = rng.standard_normal((7, 50, 12, 11))  # 350 signals of 12 x 6 complex128 spectra
    grid, row_bytes = (12, 11), 12 * 6 * 16
    assert fftconv._slab_rows(np, 350, row_bytes) == 350  # one slab at the real size
    want = fftconv._spectrum(np, a, grid)
    monkeypatch.setattr(fftconv, "SLAB_BYTES", 30 * row_bytes)
    assert fftconv._slab_rows(np, 350, row_bytes) == 30  # 12 slabs, the last short
    for workers in (Workers(1), Workers(3), Workers(3, products=True)):
        got = fftconv._spectrum(np, a, grid, workers=workers)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        back = fftconv._signal(np, got, grid, 12, 11, np.float64, workers=workers)
        np.testing.assert_allclose(back, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_a_conv_with_threads_is_the_conv_without(method):
    from tinysiamese.layers import Conv2D

    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 40, 40)).astype(np.float32)
    outs = []
    # one thread; two for the elementwise work; three sharing the products, in chunks of
    # 2 samples on the im2col path (so that each thread takes whole chunks)
    for threads, products in ((1, False), (2, False), (3, True)):
        be = Backend("numpy", np, np.float32, workers=Workers(threads, products))
        conv = Conv2D(16, 8, 5, backend=be, rng=np.random.default_rng(0), method=method,
                      max_cols_bytes=2 * 16 * 25 * 36 * 36 * 4)
        y = conv.forward(x)
        dx = conv.backward(np.ones_like(y))
        outs.append((y, dx, conv.grads["W"].copy(), conv.grads["b"].copy()))
    for one, two, shared in zip(*outs):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_allclose(shared, one, rtol=1e-5, atol=1e-5 * np.abs(one).max())
    if method == "im2col":  # whole chunks: the same products, each chunk's bits unchanged
        np.testing.assert_array_equal(outs[2][0], outs[0][0])
        np.testing.assert_array_equal(outs[2][1], outs[0][1])


def test_dense_and_the_join_with_shared_products_match_one_thread():
    from tinysiamese.layers import Dense, WeightedL1

    rng = np.random.default_rng(6)
    h = rng.standard_normal((64, 600)).astype(np.float32)
    first, second = np.triu_indices(64, 1)  # 2,016 pairs, as in a group batch
    results, shared = [], []
    for workers in (Workers(1), Workers(3, products=True)):
        real = workers.matmul
        workers.matmul = lambda xp, a, b, out=None: (shared.append(workers.products),
                                                     real(xp, a, b, out))[1]
        be = Backend("numpy", np, np.float32, workers=workers)
        dense = Dense(600, 300, backend=be, rng=np.random.default_rng(0))
        join = WeightedL1(300, backend=be, rng=np.random.default_rng(1))
        f = dense.forward(h)
        z = join.forward(f[first], f[second])
        dh = dense.backward(join.backward_pairs(np.tanh(z), first, second, 64))
        results.append((f, z, dh, dense.grads["W"].copy(), join.grads["alpha"].copy()))
    assert shared.count(True) == 6  # every product of both layers went through the threads
    for one, three in zip(*results):
        np.testing.assert_allclose(three, one, rtol=1e-5, atol=1e-5 * np.abs(one).max())


@pytest.mark.parametrize("channel_major", [True, False])
def test_relu_in_threads_is_relu_in_one(channel_major):
    from tinysiamese.layers import ReLU

    rng = np.random.default_rng(7)
    shape = (4, 6, 90, 90) if not channel_major else (6, 4, 90, 90)
    x = np.round(rng.standard_normal(shape), 1).astype(np.float32)  # zeros: the kink
    x = x.transpose(1, 0, 2, 3) if channel_major else x
    assert x.size >= MIN_ELEMENTS  # so that the layer does split
    layer = ReLU(backend=Backend("numpy", np, np.float32, workers=Workers(3)))
    y = layer.forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert ops.is_channel_major(y) == channel_major  # the layout the next conv wants
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy * (x > 0))
    for flat in (rng.standard_normal(7), rng.standard_normal((3, 5))):  # 1-D and 2-D too
        np.testing.assert_array_equal(layer.forward(flat), np.maximum(flat, 0))
