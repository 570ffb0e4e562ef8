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
from tinysiamese.threads import MIN_ELEMENTS, Workers, cpu_threads


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


CHECK_SPIN = """
import os, sys
import tinysiamese.threads as threads
seen = []
real = threads.short_blas_spin
threads.short_blas_spin = lambda: (seen.append("numpy" in sys.modules), real())
import tinysiamese.cli
print(seen, os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
"""


@pytest.mark.parametrize("given, want", [(None, "20"), ("28", "28")])
def test_the_command_line_shortens_blas_spin_before_numpy_loads(given, want):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if given:
        env["OPENBLAS_THREAD_TIMEOUT"] = given
    out = subprocess.run([sys.executable, "-c", CHECK_SPIN], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["[False]", want]  # called once, NumPy not yet loaded; the user's value kept


def test_transposing_in_threads_copies_every_value():
    from tinysiamese import fftconv

    rng = np.random.default_rng(3)
    a = rng.standard_normal((700, 300)).astype(np.float32)  # slabs of 54 rows, the last short
    np.testing.assert_array_equal(fftconv.transposed(np, a, Workers(3), slab_bytes=2**16), a.T)


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_a_conv_with_threads_is_the_conv_without(method):
    from tinysiamese.layers import Conv2D

    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 40, 40)).astype(np.float32)
    outs = []
    for threads in (1, 2):
        be = Backend("numpy", np, np.float32, workers=Workers(threads))
        conv = Conv2D(16, 8, 5, backend=be, rng=np.random.default_rng(0), method=method)
        y = conv.forward(x)
        dx = conv.backward(np.ones_like(y))
        outs.append((y, dx, conv.grads["W"].copy(), conv.grads["b"].copy()))
    for one, two in zip(*outs):
        np.testing.assert_array_equal(one, two)
