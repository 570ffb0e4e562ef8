"""The conv and its max-pool as one product (convpool, ConvPool2D) against the plain loops."""
import numpy as np
import pytest

from reference import (BACKEND_PARAMS, backend_or_skip, conv2d_backward_loop,
                       conv2d_forward_loop, maxpool_backward_loop, maxpool_forward_loop, rel_err)
from tinysiamese import convpool
from tinysiamese.gradcheck import check_layer
from tinysiamese.layers import Conv2D, ConvPool2D, MaxPool2D
from tinysiamese.threads import Workers


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    return backend_or_skip(request.param, np.float64)


def host(backend, a):
    return None if a is None else backend.to_numpy(a)


# (N, C, F, K, Hi, Wi, pool): one channel as in the model, several, odd edges, a 3 x 3 pool
SHAPES = [(3, 1, 4, 5, 13, 12, 2), (2, 3, 2, 3, 9, 8, 2), (2, 2, 3, 2, 10, 11, 3),
          (1, 1, 2, 4, 5, 6, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_the_conv_then_pool_loops(backend, shape):
    N, C, F, K, Hi, Wi, size = shape
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(s) for s in ((N, C, Hi, Wi), (F, C, K, K), (F,)))
    xp, a = backend.xp, backend.asarray
    y, cache = convpool.conv_pool_forward(xp, a(x), a(W), a(b), size)
    conv = conv2d_forward_loop(x, W, b)
    assert rel_err(host(backend, y), maxpool_forward_loop(conv, size)) < 1e-12
    dy = rng.standard_normal(y.shape)
    dx, dW, db = convpool.conv_pool_backward(xp, a(dy), cache, a(W))
    dconv = maxpool_backward_loop(dy, conv, size)  # each window's gradient to its arg-max
    dx_ref, dW_ref, db_ref = conv2d_backward_loop(dconv, x, W)
    assert rel_err(host(backend, dx), dx_ref) < 1e-12
    assert rel_err(host(backend, dW), dW_ref) < 1e-12
    assert rel_err(host(backend, db), db_ref) < 1e-12


def test_on_ties_the_first_window_offset_gets_the_gradient(backend):
    # Columns alternate between two integer images A and B, and each kernel row is
    # (c, c, 0): the outputs at wo and wo + 1 are then c (A + B) both, exactly, so every
    # window ties with its right-hand neighbour, while the patches differ (A first or B
    # first). The gradient must go to the first offset, as MaxPool2D sends it.
    rng = np.random.default_rng(1)
    A, B = rng.integers(-4, 5, size=(2, 1, 8, 1)), rng.integers(-4, 5, size=(2, 1, 8, 1))
    x = np.where(np.arange(8) % 2 == 0, A, B).astype(np.float64)  # (2, 1, 8, 8)
    c = rng.integers(1, 4, size=(2, 1, 3, 1))
    W = np.concatenate([c, c, np.zeros_like(c)], axis=3).astype(np.float64)
    b = np.zeros(2)
    xp, a = backend.xp, backend.asarray
    y, cache = convpool.conv_pool_forward(xp, a(x), a(W), a(b))
    conv = conv2d_forward_loop(x, W, b)
    assert np.all(conv[..., 0:6:2] == conv[..., 1:6:2]), "the test's windows should tie"
    dy = rng.standard_normal(y.shape)
    _, dW, db = convpool.conv_pool_backward(xp, a(dy), cache, a(W), need_dx=False)
    _, dW_ref, db_ref = conv2d_backward_loop(maxpool_backward_loop(dy, conv), x, W)
    np.testing.assert_allclose(host(backend, dW), dW_ref, rtol=1e-12)
    np.testing.assert_allclose(host(backend, db), db_ref, rtol=1e-12)


def test_the_layer_gives_what_conv2d_then_maxpool2d_give(backend):
    rng = np.random.default_rng(2)
    fused = ConvPool2D(1, 4, 5, backend=backend, rng=np.random.default_rng(3))
    conv = Conv2D(1, 4, 5, backend=backend, rng=np.random.default_rng(3), method="im2col")
    pool = MaxPool2D(2, backend=backend)
    for k in ("W", "b"):  # the same seed draws the same weights
        np.testing.assert_array_equal(host(backend, fused.params[k]), host(backend, conv.params[k]))
    x = backend.asarray(rng.standard_normal((3, 1, 14, 15)))
    y = fused.forward(x)
    np.testing.assert_allclose(host(backend, y), host(backend, pool.forward(conv.forward(x))),
                               rtol=1e-12)
    dy = backend.asarray(rng.standard_normal(y.shape))
    before = dict(fused.grads)
    dx = fused.backward(dy)
    dx_ref = conv.backward(pool.backward(dy))
    assert all(fused.grads[k] is before[k] for k in before), "the optimiser holds the grads"
    np.testing.assert_allclose(host(backend, dx), host(backend, dx_ref), rtol=1e-12, atol=1e-14)
    for k in ("W", "b"):
        np.testing.assert_allclose(host(backend, fused.grads[k]), host(backend, conv.grads[k]),
                                   rtol=1e-12)


def test_no_image_gradient_skips_dx_only(backend):
    rng = np.random.default_rng(4)
    x = backend.asarray(rng.standard_normal((2, 1, 9, 9)))
    grads = {}
    for input_grad in (True, False):
        layer = ConvPool2D(1, 3, 3, backend=backend, rng=np.random.default_rng(5),
                           input_grad=input_grad)
        y = layer.forward(x)
        dx = layer.backward(backend.asarray(np.ones(y.shape)))
        assert (dx is None) == (not input_grad)
        grads[input_grad] = {k: host(backend, v) for k, v in layer.grads.items()}
    for k in ("W", "b"):
        np.testing.assert_array_equal(grads[False][k], grads[True][k], f"d{k} without dx")


@pytest.mark.parametrize("seed", [0, 1])
def test_finite_differences(backend, seed):
    rng = np.random.default_rng(seed)
    layer = ConvPool2D(2, 3, 3, backend=backend, rng=rng, max_cols_bytes=1)  # chunk a sample
    results = check_layer(layer, (backend.asarray(rng.standard_normal((3, 2, 8, 9))),),
                          name="ConvPool2D", rng=rng, to_numpy=backend.to_numpy)
    assert [r.tensor for r in results] == ["dx", "dW", "db"]
    assert all(r.passed for r in results), results


def test_chunks_and_threads_give_the_same_result():
    # whole chunks on two threads, or one sample a chunk, against the batch in one piece
    rng = np.random.default_rng(6)
    x, W, b = rng.standard_normal((5, 1, 12, 12)), rng.standard_normal((3, 1, 3, 3)), np.zeros(3)
    dy = rng.standard_normal((5, 3, 5, 5))
    base = None
    for workers, max_bytes in ((Workers(1), 2**30), (Workers(2, products=True), 2**30),
                               (Workers(1), 1), (Workers(2, products=True), 1)):
        y, cache = convpool.conv_pool_forward(np, x, W, b, 2, max_bytes, workers)
        got = (y,) + convpool.conv_pool_backward(np, dy, cache, W)
        if base is None:
            base = got
            assert len(cache[2]) == 1
        for g, r in zip(got, base):
            np.testing.assert_allclose(g, r, rtol=1e-13, atol=1e-15)
    assert len(cache[2]) == 5, "one sample a chunk under a 1-byte bound"


def test_the_patches_and_the_shifted_kernels():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 9, 8))
    K, size = 3, 2
    patches = convpool.pool_patches(np, x, K, size)  # (C*S*S, N*Hp*Wp), S = 4, Hp, Wp = 3
    assert patches.shape == (2 * 4 * 4, 2 * 3 * 3)
    c, s, t, n, hp, wp = 1, 3, 2, 1, 2, 1
    assert patches[(c * 4 + s) * 4 + t, (n * 3 + hp) * 3 + wp] == x[n, c, 2 * hp + s, 2 * wp + t]
    W = rng.standard_normal((3, 2, K, K))
    stack = convpool.shifted_kernels(np, W, size).reshape(3, 2, 2, 2, 4, 4)
    np.testing.assert_array_equal(stack[:, 1, 0, :, 1:4, 0:3], W)  # offset (1, 0): W moved down
    assert np.count_nonzero(stack[:, 1, 0, :, 0]) == 0 and np.count_nonzero(stack[:, 1, 0, :, :, 3]) == 0
    # fold_shifted is the adjoint: <shifted(W), G> = <W, fold(G)>
    G = rng.standard_normal((3 * 4, 2 * 16))
    lhs = np.sum(convpool.shifted_kernels(np, W, size) * G)
    assert lhs == pytest.approx(np.sum(W * convpool.fold_shifted(np, G, W.shape, size)), rel=1e-12)


@pytest.mark.parametrize("preset", ["tiny", "small", "koch"])
def test_the_images_block_never_takes_the_fourier_path(preset):
    # why auto may fuse it for good: with one input channel im2col wins at any batch
    from tinysiamese.config import PRESETS
    from tinysiamese.fftconv import use_fft

    network = PRESETS[preset].network
    F, K = network.conv[0]
    S = network.image_size
    assert not any(use_fft(N, 1, F, K, S, S) for N in (1, 64, 4096, 10**7))
