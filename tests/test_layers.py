"""Layer classes: forward against direct formulas or the loop references, backward against
the loop references, dtype kept, dy never mutated, CPU/GPU parity."""
import warnings

import numpy as np
import pytest

from reference import (conv2d_backward_loop,
                       conv2d_forward_loop, maxpool_backward_loop, maxpool_forward_loop,
                       rel_err)
from tinysiamese.backend import get_backend
from tinysiamese.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1


def host(backend, a):
    return backend.to_numpy(a).astype(np.float64)


# --------------------------------------------------------------------------- Conv2D, MaxPool2D
@pytest.mark.parametrize("max_cols_bytes", [1, 8 * 2**20])
@pytest.mark.parametrize("shape, F, K", [((2, 3, 7, 6), 4, 3), ((1, 1, 5, 5), 2, 5),
                                         ((3, 2, 9, 8), 3, 4)])
def test_conv2d_layer_matches_loop(backend, shape, F, K, max_cols_bytes):
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(0)
    layer = Conv2D(shape[1], F, K, backend=b64, rng=rng, max_cols_bytes=max_cols_bytes)
    x = rng.standard_normal(shape)
    y = layer.forward(b64.asarray(x))
    W, b = host(b64, layer.params["W"]), host(b64, layer.params["b"])
    assert rel_err(host(b64, y), conv2d_forward_loop(x, W, b)) < 1e-12, "conv layer y"
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(b64.asarray(dy))
    ref = conv2d_backward_loop(dy, x, W)
    for name, got, r in zip(("dx", "dW", "db"), (dx, layer.grads["W"], layer.grads["b"]), ref):
        err = rel_err(host(b64, got), r)
        assert err < 1e-12, f"Conv2D {name} rel error {err:.2e} (max_cols_bytes={max_cols_bytes})"


@pytest.mark.parametrize("shape, s", [((2, 3, 7, 6), 2), ((1, 1, 5, 5), 2), ((3, 2, 9, 8), 3)])
def test_maxpool_layer_matches_loop(backend, shape, s):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = MaxPool2D(s)  # no backend: follows its input
    y = layer.forward(backend.asarray(x))
    np.testing.assert_array_equal(host(backend, y), maxpool_forward_loop(x, s))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(backend.asarray(dy))
    np.testing.assert_array_equal(host(backend, dx), maxpool_backward_loop(dy, x, s))


def test_maxpool_backward_one_element_per_window_with_ties(backend):
    # window 0: all zero (a 4-way tie); window 1: a 2-way tie; window 2: distinct; the odd
    # column and row are dropped and must get nothing.
    x = np.zeros((1, 1, 5, 7), dtype=np.float32)
    x[0, 0, 0:2, 2:4] = [[3.0, 1.0], [3.0, 2.0]]
    x[0, 0, 0:2, 4:6] = [[1.0, 2.0], [4.0, 0.5]]
    x[0, 0, 4, :] = 100.0
    x[0, 0, :, 6] = 100.0
    layer = MaxPool2D(2)
    y = layer.forward(backend.asarray(x))
    dy = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3)
    dx = host(backend, layer.backward(backend.asarray(dy)))
    assert not dx[0, 0, 4, :].any() and not dx[0, 0, :, 6].any(), "gradient on the dropped edge"
    for ho in range(2):
        for wo in range(3):
            win = dx[0, 0, 2 * ho:2 * ho + 2, 2 * wo:2 * wo + 2]
            assert win.sum() == dy[0, 0, ho, wo], f"window ({ho},{wo}) dx sums to {win.sum()}"
            assert np.count_nonzero(win) == 1, f"window ({ho},{wo}) routes to {np.count_nonzero(win)} elements"
    assert dx[0, 0, 0, 0] == 1.0 and dx[0, 0, 0, 2] == 2.0 and dx[0, 0, 1, 4] == 3.0, \
        "not the first arg-max of each window"
    np.testing.assert_array_equal(host(backend, y)[0, 0], [[0, 3, 4], [0, 0, 0]])


# --------------------------------------------------------------------------- direct formulas
def test_dense_layer(backend):
    rng = np.random.default_rng(2)
    layer = Dense(5, 3, backend=backend, rng=rng)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    W, b = host(backend, layer.params["W"]), host(backend, layer.params["b"])
    y = layer.forward(backend.asarray(x))
    assert y.shape == (4, 3)
    assert rel_err(host(backend, y), x @ W + b) < 1e-6, "Dense y"
    dy = rng.standard_normal((4, 3)).astype(np.float32)
    dx = layer.backward(backend.asarray(dy))
    for name, got, ref in (("dx", dx, dy @ W.T), ("dW", layer.grads["W"], x.T @ dy),
                           ("db", layer.grads["b"], dy.sum(0))):
        err = rel_err(host(backend, got), ref)
        assert err < 1e-6, f"Dense {name} rel error {err:.2e}"


def test_relu_layer(backend):
    x = np.array([[-1.5, 0.0, 2.0], [3.0, -0.25, 1e-3]], dtype=np.float32)
    layer = ReLU()
    np.testing.assert_array_equal(host(backend, layer.forward(backend.asarray(x))),
                                  np.maximum(x, 0))
    dy = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    np.testing.assert_array_equal(host(backend, layer.backward(backend.asarray(dy))),
                                  [[0, 0, 3], [4, 0, 6]])


def test_sigmoid_layer(backend):
    x = np.linspace(-8, 8, 17).astype(np.float32)
    layer = Sigmoid()
    y = host(backend, layer.forward(backend.asarray(x)))
    assert rel_err(y, 1 / (1 + np.exp(-x.astype(np.float64)))) < 1e-6, "Sigmoid y"
    dx = host(backend, layer.backward(backend.asarray(np.ones(17, dtype=np.float32))))
    assert rel_err(dx, y * (1 - y)) < 1e-6, "Sigmoid dx"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_stable_and_exact_at_the_limits(backend, dtype):
    x = np.array([-1e4, -1e3, -100.0, -20.0, 0.0, 20.0, 100.0, 1e3, 1e4], dtype=dtype)
    layer = Sigmoid()
    # Overflow, 0/0 or 0-division would raise; underflow of e^-|x| to 0 is the harmless,
    # intended result (NumPy ignores it by default, so it is allowed here).
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = backend.to_numpy(layer.forward(backend.asarray(x, dtype=dtype)))
        dx = backend.to_numpy(layer.backward(backend.asarray(np.ones_like(x), dtype=dtype)))
    assert y.dtype == dtype
    assert y[0] == 0.0 and y[1] == 0.0 and y[-1] == 1.0 and y[-2] == 1.0, f"limits: {y}"
    assert y[4] == 0.5
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert dx[0] == 0.0 and dx[-1] == 0.0, "sigma' at +-1e4"
    assert np.all(np.diff(y) >= 0), "sigmoid not monotone"
    if dtype == np.float64:  # e^-100 is still a normal float64: the small tail is kept
        assert abs(y[2] - np.exp(-100.0)) <= 1e-12 * np.exp(-100.0), f"sigma(-100) = {y[2]}"


def test_flatten_layer(backend):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    layer = Flatten()
    y = host(backend, layer.forward(backend.asarray(x)))
    np.testing.assert_array_equal(y, x.reshape(2, 60))
    dy = np.arange(120, dtype=np.float32).reshape(2, 60) * 2
    dx = layer.backward(backend.asarray(dy))
    assert dx.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(host(backend, dx), dy.reshape(2, 3, 4, 5))


def test_weighted_l1_layer(backend):
    rng = np.random.default_rng(3)
    layer = WeightedL1(6, backend=backend, rng=rng)
    h1 = rng.random((4, 6)).astype(np.float32)
    h2 = rng.random((4, 6)).astype(np.float32)
    alpha, b = host(backend, layer.params["alpha"]), host(backend, layer.params["b"])
    z = layer.forward(backend.asarray(h1), backend.asarray(h2))
    assert z.shape == (4,)
    assert rel_err(host(backend, z), np.abs(h1 - h2) @ alpha + b[0]) < 1e-6, "WeightedL1 z"
    dz = rng.standard_normal(4).astype(np.float32)
    dh1, dh2 = layer.backward(backend.asarray(dz))
    ref = dz[:, None] * alpha[None, :] * np.sign(h1 - h2)
    for name, got, r in (("dh1", dh1, ref), ("dh2", dh2, -ref),
                         ("dalpha", layer.grads["alpha"], np.abs(h1 - h2).T @ dz),
                         ("db", layer.grads["b"], [dz.sum()])):
        err = rel_err(host(backend, got), r)
        assert err < 1e-6, f"WeightedL1 {name} rel error {err:.2e}"


# --------------------------------------------------------------------------- dtype and dy
def make_layers(backend, rng):
    """Every layer with an input of its own; (name, layer, inputs) in float32 host arrays."""
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return [
        ("Conv2D", Conv2D(3, 4, 3, backend=backend, rng=rng, max_cols_bytes=1), (f32(2, 3, 7, 6),)),
        ("MaxPool2D", MaxPool2D(2, backend=backend), (f32(2, 3, 7, 6),)),
        ("Dense", Dense(6, 5, backend=backend, rng=rng), (f32(4, 6),)),
        ("ReLU", ReLU(backend=backend), (f32(3, 5),)),
        ("Sigmoid", Sigmoid(backend=backend), (f32(3, 5),)),
        ("Flatten", Flatten(backend=backend), (f32(2, 3, 4, 5),)),
        ("WeightedL1", WeightedL1(6, backend=backend, rng=rng), (f32(4, 6), f32(4, 6))),
    ]


def test_layers_keep_float32_and_never_mutate_dy(backend):
    rng = np.random.default_rng(4)
    for name, layer, inputs in make_layers(backend, rng):
        for k, v in layer.params.items():
            assert v.dtype == np.float32, f"{name}.{k} is {v.dtype}"
        y = layer.forward(*(backend.asarray(x) for x in inputs))
        assert y.dtype == np.float32, f"{name} output is {y.dtype}"
        dy_host = rng.standard_normal(y.shape).astype(np.float32)
        dy = backend.asarray(dy_host)
        dxs = layer.backward(dy)
        np.testing.assert_array_equal(backend.to_numpy(dy), dy_host,
                                      err_msg=f"{name}.backward mutated dy")
        for dx in dxs if isinstance(dxs, tuple) else (dxs,):
            assert dx.dtype == np.float32, f"{name} dx is {dx.dtype}"
        for k, g in layer.grads.items():
            assert g.dtype == np.float32 and g.shape == layer.params[k].shape, f"{name}.d{k}"


def test_layers_never_mutate_their_input(backend):
    rng = np.random.default_rng(5)
    for name, layer, inputs in make_layers(backend, rng):
        xs = [backend.asarray(x) for x in inputs]
        y = layer.forward(*xs)
        layer.backward(backend.asarray(rng.standard_normal(y.shape).astype(np.float32)))
        for x, x_host in zip(xs, inputs):
            np.testing.assert_array_equal(backend.to_numpy(x), x_host,
                                          err_msg=f"{name} mutated its input")


def test_backward_fills_grads_in_place(backend):
    # the grads dicts hold the same arrays before and after backward (the optimiser keeps them)
    rng = np.random.default_rng(6)
    layer = Conv2D(2, 3, 3, backend=backend, rng=rng)
    before = dict(layer.grads)
    y = layer.forward(backend.asarray(rng.standard_normal((2, 2, 5, 5)).astype(np.float32)))
    layer.backward(backend.asarray(np.ones(y.shape, dtype=np.float32)))
    assert all(layer.grads[k] is before[k] for k in before)
    assert float(layer.grads["b"][0]) == 2 * 3 * 3, "db = sum of dy over N, Ho, Wo"
    dense = Dense(4, 3, backend=backend, rng=rng)  # dW is written into the grads array
    before = dict(dense.grads)
    y = dense.forward(backend.asarray(rng.standard_normal((5, 4)).astype(np.float32)))
    dense.backward(backend.asarray(np.ones(y.shape, dtype=np.float32)))
    assert all(dense.grads[k] is before[k] for k in before)
    assert float(dense.grads["b"][0]) == 5, "db = sum of dy over the batch"
    join = WeightedL1(3, backend=backend, rng=rng)
    before = dict(join.grads)
    h = backend.asarray(rng.standard_normal((4, 3)).astype(np.float32))
    first, second = (backend.xp.asarray(i) for i in np.triu_indices(4, 1))
    join.forward_pairs(h, first, second)
    join.backward_pairs(backend.asarray(np.ones(6, np.float32)), first, second, 4)
    assert all(join.grads[k] is before[k] for k in before)


# --------------------------------------------------------------------------- init
def test_paper_init_statistics():
    rng = np.random.default_rng(7)
    be = get_backend("numpy", np.float64)
    conv = Conv2D(8, 64, 5, backend=be, rng=rng, init="paper")
    dense = Dense(400, 500, backend=be, rng=rng, init="paper")
    assert abs(conv.params["W"].std() - 1e-2) < 1e-3 and abs(conv.params["W"].mean()) < 1e-3
    assert abs(dense.params["W"].std() - 2e-1) < 5e-3
    assert abs(dense.params["b"].mean() - 0.5) < 5e-3 and dense.params["b"].std() < 2e-2
    fan = Dense(400, 500, backend=be, rng=rng, init="fan_in")
    assert abs(fan.params["W"].std() - np.sqrt(2 / 400)) < 2e-3
    assert not fan.params["b"].any()
    with pytest.raises(ValueError, match="paper"):
        Dense(2, 2, backend=be, rng=rng, init="xavier")


def test_same_seed_same_layer():
    be = get_backend("numpy")
    a = Conv2D(2, 3, 3, backend=be, rng=np.random.default_rng(8))
    b = Conv2D(2, 3, 3, backend=be, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])


# --------------------------------------------------------------------------- GPU parity
@pytest.mark.gpu
def test_layers_cupy_matches_numpy(cupy_backend):
    """Same seed -> same layer on both backends; forward and backward agree in float32."""
    cpu = get_backend("numpy")
    for (name, lc, inputs), (_, lg, _) in zip(make_layers(cpu, np.random.default_rng(9)),
                                              make_layers(cupy_backend, np.random.default_rng(9))):
        for k in lc.params:
            np.testing.assert_array_equal(cupy_backend.to_numpy(lg.params[k]), lc.params[k])
        yc = lc.forward(*inputs)
        yg = lg.forward(*(cupy_backend.asarray(x) for x in inputs))
        assert rel_err(cupy_backend.to_numpy(yg), yc) < 1e-5, f"{name} y differs on the GPU"
        dy = np.random.default_rng(10).standard_normal(yc.shape).astype(np.float32)
        dxc, dxg = lc.backward(dy), lg.backward(cupy_backend.asarray(dy))
        dxc = dxc if isinstance(dxc, tuple) else (dxc,)
        dxg = dxg if isinstance(dxg, tuple) else (dxg,)
        for a, b in zip(dxc, dxg):
            assert rel_err(cupy_backend.to_numpy(b), a) < 1e-5, f"{name} dx differs on the GPU"
        for k in lc.grads:
            err = rel_err(cupy_backend.to_numpy(lg.grads[k]), lc.grads[k])
            assert err < 1e-5, f"{name}.d{k} rel error {err:.2e} between GPU and CPU"
