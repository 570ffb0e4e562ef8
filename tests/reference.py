"""Plain-loop references for the tests, and the backend fixture's helper.

The references are the definitions written out one multiply-add at a time (pure Python
loops over n, c, ho, wo, i, j on host NumPy arrays): slow, obvious, and checked themselves
on hand-worked examples in test_ops.py. The fast ops are then tested against them.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinysiamese.backend import BackendUnavailableError, get_backend

# The two backends every engine test runs on; the cupy cases skip where there is no GPU.
BACKEND_PARAMS = [pytest.param("numpy", id="numpy"),
                  pytest.param("cupy", id="cupy", marks=pytest.mark.gpu)]


def backend_or_skip(name: str, dtype=np.float32):
    """get_backend(name, dtype), or skip the test with the reason CuPy cannot run here."""
    try:
        return get_backend(name, dtype)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


def rel_err(a, b) -> float:
    """max|a - b| / max(|a| + |b|) on host arrays (0 when both are all zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = float((np.abs(a) + np.abs(b)).max()) if a.size else 0.0
    return float(np.abs(a - b).max() / denom) if denom else 0.0


# --------------------------------------------------------------------------- Conv2D
def conv2d_forward_loop(x, W, b):
    """Valid, stride-1 cross-correlation. x: (N, C, Hi, Wi), W: (F, C, K, K), b: (F,).

    y[n, f, ho, wo] = b[f] + sum_{c, i, j} W[f, c, i, j] x[n, c, ho + i, wo + j]
    """
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    y = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for ho in range(Ho):
                for wo in range(Wo):
                    s = float(b[f])
                    for c in range(C):
                        for i in range(K):
                            for j in range(K):
                                s += float(W[f, c, i, j]) * float(x[n, c, ho + i, wo + j])
                    y[n, f, ho, wo] = s
    return y


def conv2d_backward_loop(dy, x, W):
    """dy: (N, F, Ho, Wo) -> (dx, dW, db): every output's gradient goes back along each of
    the C*K*K products that made it."""
    N, C, Hi, Wi = x.shape
    F, _, K, _ = W.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    dx, dW, db = np.zeros(x.shape), np.zeros(W.shape), np.zeros(F)
    for n in range(N):
        for f in range(F):
            for ho in range(Ho):
                for wo in range(Wo):
                    g = float(dy[n, f, ho, wo])
                    db[f] += g
                    for c in range(C):
                        for i in range(K):
                            for j in range(K):
                                dx[n, c, ho + i, wo + j] += float(W[f, c, i, j]) * g
                                dW[f, c, i, j] += float(x[n, c, ho + i, wo + j]) * g
    return dx, dW, db


# --------------------------------------------------------------------------- MaxPool2D
def _first_argmax(x, n, c, ho, wo, s):
    """(row, col) of the first maximum, row-major, of window (ho, wo) of x[n, c]."""
    best, where = None, None
    for i in range(s):
        for j in range(s):
            v = float(x[n, c, ho * s + i, wo * s + j])
            if best is None or v > best:  # strict: ties keep the first
                best, where = v, (ho * s + i, wo * s + j)
    return best, where


def maxpool_forward_loop(x, s=2):
    """Non-overlapping max-pool, window and stride s; odd edges are dropped (floor)."""
    N, C, Hi, Wi = x.shape
    Ho, Wo = Hi // s, Wi // s
    y = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    y[n, c, ho, wo] = _first_argmax(x, n, c, ho, wo, s)[0]
    return y


def maxpool_backward_loop(dy, x, s=2):
    """dy: (N, C, Ho, Wo) -> dx: each window's gradient to its first arg-max only."""
    N, C, Ho, Wo = dy.shape
    dx = np.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    r, q = _first_argmax(x, n, c, ho, wo, s)[1]
                    dx[n, c, r, q] += float(dy[n, c, ho, wo])
    return dx


# --------------------------------------------------------------------------- im2col
def im2col_loop(x, K):
    """cols[(c, i, j), (n, ho, wo)] = x[n, c, ho + i, wo + j], row-major in both indices."""
    N, C, Hi, Wi = x.shape
    Ho, Wo = Hi - K + 1, Wi - K + 1
    cols = np.zeros((C * K * K, N * Ho * Wo))
    for c in range(C):
        for i in range(K):
            for j in range(K):
                for n in range(N):
                    for ho in range(Ho):
                        for wo in range(Wo):
                            cols[(c * K + i) * K + j, (n * Ho + ho) * Wo + wo] = \
                                x[n, c, ho + i, wo + j]
    return cols
