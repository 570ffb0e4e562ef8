"""The pure ops against the plain-loop references (which are checked by hand first)."""
import numpy as np
import pytest

from reference import (BACKEND_PARAMS, backend_or_skip, conv2d_backward_loop,
                       conv2d_forward_loop, im2col_loop, maxpool_backward_loop,
                       maxpool_forward_loop, rel_err)
from tinysiamese import ops


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    return backend_or_skip(request.param, np.float64)


# --------------------------------------------------------------------------- the references, by hand
X33 = np.array([[[[1.0, 2.0, 3.0],
                  [4.0, 5.0, 6.0],
                  [7.0, 8.0, 9.0]]]])  # (1, 1, 3, 3)
K22 = np.array([[[[1.0, 2.0],
                  [3.0, 4.0]]]])  # (1, 1, 2, 2)


def test_conv_reference_forward_by_hand():
    # y[0,0] = 1*1 + 2*2 + 3*4 + 4*5 + 1 = 38;  y[0,1] = 1*2 + 2*3 + 3*5 + 4*6 + 1 = 48
    # y[1,0] = 1*4 + 2*5 + 3*7 + 4*8 + 1 = 68;  y[1,1] = 1*5 + 2*6 + 3*8 + 4*9 + 1 = 78
    y = conv2d_forward_loop(X33, K22, np.array([1.0]))
    assert y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[38.0, 48.0], [68.0, 78.0]])


def test_conv_reference_backward_by_hand():
    dy = np.array([[[[1.0, 0.0], [0.0, 2.0]]]])
    dx, dW, db = conv2d_backward_loop(dy, X33, K22)
    # dx: the kernel pasted at (0, 0) times 1 plus pasted at (1, 1) times 2, overlaps added
    np.testing.assert_array_equal(dx[0, 0], [[1.0, 2.0, 0.0], [3.0, 6.0, 4.0], [0.0, 6.0, 8.0]])
    # dW[i, j] = 1 * x[i, j] + 2 * x[1 + i, 1 + j]
    np.testing.assert_array_equal(dW[0, 0], [[11.0, 14.0], [20.0, 23.0]])
    np.testing.assert_array_equal(db, [3.0])


# 3 x 5 with an odd row and column (dropped), a tie 7 == 7 in the second window
XP = np.array([[[[1.0, 5.0, 2.0, 0.0, 9.0],
                 [3.0, 4.0, 7.0, 7.0, 1.0],
                 [0.0, 0.0, 0.0, 0.0, 0.0]]]])


def test_maxpool_reference_by_hand():
    y = maxpool_forward_loop(XP, 2)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0]]]])  # the 9 sits in the dropped column
    dx = maxpool_backward_loop(np.array([[[[10.0, 20.0]]]]), XP, 2)
    expected = np.zeros((1, 1, 3, 5))
    expected[0, 0, 0, 1] = 10.0  # the 5
    expected[0, 0, 1, 2] = 20.0  # the first of the tied 7s
    np.testing.assert_array_equal(dx, expected)


def test_im2col_reference_by_hand():
    cols = im2col_loop(X33, 2)  # rows (i, j), columns (ho, wo)
    np.testing.assert_array_equal(cols, [[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]])


# --------------------------------------------------------------------------- im2col / col2im
IM2COL_SHAPES = [((1, 1, 3, 3), 2), ((2, 3, 7, 6), 3), ((1, 1, 5, 5), 5), ((3, 2, 9, 8), 4)]


@pytest.mark.parametrize("shape, K", IM2COL_SHAPES)
def test_im2col_matches_loop(backend, shape, K):
    x = np.random.default_rng(0).standard_normal(shape)
    cols = backend.to_numpy(ops.im2col(backend.xp, backend.asarray(x), K))
    np.testing.assert_array_equal(cols, im2col_loop(x, K))


@pytest.mark.parametrize("shape, K", IM2COL_SHAPES)
def test_col2im_is_adjoint_of_im2col(backend, shape, K):
    # <im2col(x), c> == <x, col2im(c)> for any x, c: col2im is im2col's transpose
    rng = np.random.default_rng(1)
    N, C, Hi, Wi = shape
    x = rng.standard_normal(shape)
    c = rng.standard_normal((C * K * K, N * (Hi - K + 1) * (Wi - K + 1)))
    xp = backend.xp
    lhs = float((ops.im2col(xp, backend.asarray(x), K) * backend.asarray(c)).sum())
    rhs = float((backend.asarray(x) * ops.col2im(xp, backend.asarray(c), shape, K)).sum())
    assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + abs(rhs)), f"<im2col x, c> {lhs} != <x, col2im c> {rhs}"


def test_col2im_counts_overlaps():
    # col2im of all-ones columns: each pixel receives the number of patches that hold it
    cols = np.ones((1 * 2 * 2, 1 * 2 * 2))
    np.testing.assert_array_equal(ops.col2im(np, cols, (1, 1, 3, 3), 2)[0, 0],
                                  [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_im2col_keeps_float32():
    x = np.ones((2, 3, 5, 5), dtype=np.float32)
    assert ops.im2col(np, x, 3).dtype == np.float32
    assert ops.col2im(np, np.ones((27, 18), dtype=np.float32), x.shape, 3).dtype == np.float32


@pytest.mark.parametrize("max_cols_bytes, at_least, expected", [
    (1, 1, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),    # less than a sample: one per chunk
    (2 * 27 * 9 * 8, 1, [(0, 1), (1, 3), (3, 5)]),      # two samples' columns: 3 chunks
    (2 * 27 * 9 * 8, 2, [(0, 1), (1, 2), (2, 3), (3, 5)]),  # 2 threads: 4, 2 each
    (4 * 27 * 9 * 8, 1, [(0, 2), (2, 5)]),              # four: 2 chunks, near-equal
    (4 * 27 * 9 * 8, 2, [(0, 2), (2, 5)]),              # as many as the threads already
    (2**30, 1, [(0, 5)]),                               # everything at once
    (2**30, 2, [(0, 2), (2, 5)]),                       # a chunk for each of 2 threads
    (2**30, 8, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),  # more threads than samples
])
def test_conv_chunks(max_cols_bytes, at_least, expected):
    # per sample: C*K*K * Ho*Wo * itemsize = 3*3*3 * 3*3 * 8 bytes
    assert ops.conv_chunks((5, 3, 5, 5), 3, max_cols_bytes, 8, at_least) == expected


# --------------------------------------------------------------------------- Conv2D
CONV_CASES = [((2, 3, 7, 6), 4, 3), ((1, 1, 5, 5), 2, 5), ((3, 2, 9, 8), 3, 4),
              ((1, 1, 3, 3), 1, 2)]  # (x shape, filters F, kernel K)


@pytest.mark.parametrize("max_cols_bytes", [1, 500, 8 * 2**20])
@pytest.mark.parametrize("shape, F, K", CONV_CASES)
def test_conv2d_matches_loop(backend, shape, F, K, max_cols_bytes):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    W = rng.standard_normal((F, shape[1], K, K))
    b = rng.standard_normal(F)
    a = backend.asarray
    y, cache = ops.conv2d_forward(backend.xp, a(x), a(W), a(b), max_cols_bytes)
    y_ref = conv2d_forward_loop(x, W, b)
    assert y.shape == y_ref.shape == (shape[0], F, shape[2] - K + 1, shape[3] - K + 1)
    assert rel_err(backend.to_numpy(y), y_ref) < 1e-12, "conv y differs from the loop"

    dy = rng.standard_normal(y_ref.shape)
    dx, dW, db = ops.conv2d_backward(backend.xp, a(dy), cache, a(W))
    for name, got, ref in zip(("dx", "dW", "db"), (dx, dW, db), conv2d_backward_loop(dy, x, W)):
        assert got.shape == ref.shape, f"{name} shape {got.shape} != {ref.shape}"
        err = rel_err(backend.to_numpy(got), ref)
        assert err < 1e-12, f"conv {name} rel error {err:.2e} (max_cols_bytes={max_cols_bytes})"


def test_conv2d_by_hand():
    y, cache = ops.conv2d_forward(np, X33, K22, np.array([1.0]))
    np.testing.assert_array_equal(y[0, 0], [[38.0, 48.0], [68.0, 78.0]])
    dx, dW, db = ops.conv2d_backward(np, np.array([[[[1.0, 0.0], [0.0, 2.0]]]]), cache, K22)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [3, 6, 4], [0, 6, 8]])
    np.testing.assert_array_equal(dW[0, 0], [[11, 14], [20, 23]])
    np.testing.assert_array_equal(db, [3.0])


def test_conv2d_chunked_equals_unchunked():
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((7, 2, 8, 9)), rng.standard_normal((3, 2, 3, 3)), np.zeros(3)
    dy = rng.standard_normal((7, 3, 6, 7))
    y1, c1 = ops.conv2d_forward(np, x, W, b, 1)
    y2, c2 = ops.conv2d_forward(np, x, W, b, 2**30)
    assert rel_err(y1, y2) < 1e-14, "chunked y differs"
    for name, g1, g2 in zip(("dx", "dW", "db"), ops.conv2d_backward(np, dy, c1, W),
                            ops.conv2d_backward(np, dy, c2, W)):
        assert rel_err(g1, g2) < 1e-14, f"chunked {name} differs"


# --------------------------------------------------------------------------- MaxPool2D
POOL_CASES = [((1, 1, 3, 5), 2), ((2, 3, 7, 6), 2), ((1, 2, 5, 5), 2), ((3, 2, 9, 8), 2),
              ((2, 2, 7, 8), 3), ((1, 1, 2, 2), 2)]


@pytest.mark.parametrize("shape, s", POOL_CASES)
def test_maxpool_matches_loop(backend, shape, s):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    y, cache = ops.maxpool_forward(backend.xp, backend.asarray(x), s)
    y_ref = maxpool_forward_loop(x, s)
    assert y.shape == y_ref.shape == (shape[0], shape[1], shape[2] // s, shape[3] // s)
    np.testing.assert_array_equal(backend.to_numpy(y), y_ref)
    dy = rng.standard_normal(y_ref.shape)
    dx = ops.maxpool_backward(backend.xp, backend.asarray(dy), cache, s)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(backend.to_numpy(dx), maxpool_backward_loop(dy, x, s))


@pytest.mark.parametrize("shape, s", POOL_CASES)
def test_maxpool_matches_loop_with_ties(backend, shape, s):
    # small integers: most windows hold ties; the first arg-max must win, as in the loop
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    y, cache = ops.maxpool_forward(backend.xp, backend.asarray(x), s)
    np.testing.assert_array_equal(backend.to_numpy(y), maxpool_forward_loop(x, s))
    dy = rng.standard_normal(y.shape) + 5.0  # nonzero everywhere
    dx = backend.to_numpy(ops.maxpool_backward(backend.xp, backend.asarray(dy), cache, s))
    np.testing.assert_array_equal(dx, maxpool_backward_loop(dy, x, s))


def test_maxpool_by_hand():
    y, cache = ops.maxpool_forward(np, XP, 2)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0]]]])
    dx = ops.maxpool_backward(np, np.array([[[[10.0, 20.0]]]]), cache, 2)
    assert dx[0, 0, 0, 1] == 10.0 and dx[0, 0, 1, 2] == 20.0, "gradient not at the first arg-max"
    assert np.count_nonzero(dx) == 2, "gradient leaked to a non-max (or dropped-edge) element"


@pytest.mark.parametrize("channel_major", [False, True])
def test_pool_then_relu_is_relu_then_pool_bit_for_bit(backend, channel_major):
    # The model pools before its ReLU (a quarter of the values); that must change no bit:
    # y, dx, the sign of every zero in dx and dx's memory layout. Blank background: many
    # windows of equal negative values (ties that the ReLU turns into zeros), and ties of
    # equal positive values.
    xp = backend.xp
    rng = np.random.default_rng(6)
    x = rng.integers(-2, 3, size=(4, 3, 9, 8)).astype(np.float64)
    x[:, :, :3] = -0.5
    x = backend.asarray(np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
                        if channel_major else x)
    dy = backend.asarray(rng.standard_normal((4, 3, 4, 4)))  # both signs: signed zeros
    r, r_cache = ops.relu_forward(xp, x)
    y1, p_cache = ops.maxpool_forward(xp, r)
    dx1 = ops.relu_backward(xp, ops.maxpool_backward(xp, dy, p_cache), r_cache)
    p, p_cache = ops.maxpool_forward(xp, x)
    y2, r_cache = ops.relu_forward(xp, p)
    dx2 = ops.maxpool_backward(xp, ops.relu_backward(xp, dy, r_cache), p_cache)
    np.testing.assert_array_equal(backend.to_numpy(y2), backend.to_numpy(y1))
    a, b = backend.to_numpy(dx1), backend.to_numpy(dx2)
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(np.signbit(b), np.signbit(a), "the signs of dx's zeros")
    assert dx2.strides == dx1.strides == x.strides, f"dx layout {dx2.strides}, x {x.strides}"


# --------------------------------------------------------------------------- elementwise ops
def test_relu_ops():
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0])
    y, cache = ops.relu_forward(np, x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(ops.relu_backward(np, np.array([1.0, 2, 3, 4, 5]), cache),
                                  [0.0, 0.0, 0.0, 4.0, 5.0])  # the kink at 0 gets 0


def test_sigmoid_ops():
    x = np.array([-3.0, 0.0, 2.0])
    y, cache = ops.sigmoid_forward(np, x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(ops.sigmoid_backward(np, np.ones(3), cache), y * (1 - y),
                               rtol=1e-15)


def test_weighted_l1_ops_by_hand():
    h1 = np.array([[1.0, 2.0], [0.0, 0.0]])
    h2 = np.array([[3.0, 1.0], [0.0, 1.0]])
    alpha, b = np.array([0.5, -1.0]), np.array([0.25])
    z, cache = ops.weighted_l1_forward(np, h1, h2, alpha, b)
    # z0 = 0.5*|1-3| - 1*|2-1| + 0.25 = 0.25;  z1 = 0.5*0 - 1*|0-1| + 0.25 = -0.75
    np.testing.assert_array_equal(z, [0.25, -0.75])
    dh1, dh2, dalpha, db = ops.weighted_l1_backward(np, np.array([1.0, 2.0]), cache, alpha)
    # dh1 = dz alpha sign(h1 - h2): row 0: [0.5 * -1, -1 * +1]; row 1: [0 (kink), -1*2*-1]
    np.testing.assert_array_equal(dh1, [[-0.5, -1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(dh2, -dh1)
    np.testing.assert_array_equal(dalpha, [2.0, 1.0 + 2.0])  # |d|ᵀ dz
    np.testing.assert_array_equal(db, [3.0])


def test_weighted_l1_pairs_backward_adds_each_rows_pairs(backend):
    # 4 rows, 5 pairs: row 0 is in three (twice first, once second), row 3 in none
    xp, rng = backend.xp, np.random.default_rng(7)
    h, alpha, b = rng.standard_normal((4, 3)), rng.standard_normal(3), np.array([0.1])
    first, second = np.array([0, 0, 1, 2, 2]), np.array([1, 2, 2, 0, 1])
    dz = rng.standard_normal(5)
    _, cache = ops.weighted_l1_forward(xp, *map(backend.asarray, (h[first], h[second], alpha, b)))
    dh, dalpha, db = ops.weighted_l1_backward_pairs(
        xp, backend.asarray(dz), cache, backend.asarray(alpha), xp.asarray(first),
        xp.asarray(second), 4)
    # the plain loop: each pair's twin gradients added onto its two rows
    want = np.zeros_like(h)
    for p, (i, j) in enumerate(zip(first, second)):
        g = dz[p] * alpha * np.sign(h[i] - h[j])
        want[i] += g
        want[j] -= g
    assert rel_err(backend.to_numpy(dh), want) < 1e-12
    assert not want[3].any()
    # and finite differences of L = dz . z(h) in every entry of h
    def loss(hh):
        return dz @ (np.abs(hh[first] - hh[second]) @ alpha + b[0])
    num = np.zeros_like(h)
    for idx in np.ndindex(*h.shape):
        e = np.zeros_like(h)
        e[idx] = 1e-6
        num[idx] = (loss(h + e) - loss(h - e)) / 2e-6
    assert rel_err(backend.to_numpy(dh), num) < 1e-7
    np.testing.assert_allclose(backend.to_numpy(dalpha),
                               np.abs(h[first] - h[second]).T @ dz, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(db), [dz.sum()], rtol=1e-12)
