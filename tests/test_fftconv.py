"""The FFT convolution: against the loop reference and im2col, by finite differences in
float64, and the layer's choice of path."""
import numpy as np
import pytest

from reference import conv2d_backward_loop, conv2d_forward_loop, rel_err
from tinysiamese import fftconv, ops
from tinysiamese.gradcheck import check_layer
from tinysiamese.fftconv import use_fft
from tinysiamese.layers import Conv2D, ConvPool2D
from tinysiamese.backend import get_backend
from tinysiamese.config import PRESETS, encoder_shapes

SHAPES = [((2, 3, 7, 6), 4, 3), ((1, 1, 5, 5), 2, 5), ((3, 2, 9, 8), 3, 4),
          ((2, 3, 11, 13), 5, 7)]  # odd and even sizes, non-square, a 1x1 output


def host(backend, a):
    return backend.to_numpy(a).astype(np.float64)


def complex_rel_err(a, b):
    """rel_err over the real and the imaginary parts together."""
    return rel_err(np.stack([a.real, a.imag]), np.stack([b.real, b.imag]))


@pytest.mark.parametrize("max_bytes", [1, fftconv.FFT_CHUNK_BYTES])  # 1: a sample a chunk
@pytest.mark.parametrize("shape, F, K", SHAPES)
def test_fft_forward_and_backward_match_the_loops(backend, shape, F, K, max_bytes):
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(0)
    x, W, b = (rng.standard_normal(shape), rng.standard_normal((F, shape[1], K, K)),
               rng.standard_normal(F))
    y, cache = fftconv.conv2d_fft_forward(b64.xp, b64.asarray(x), b64.asarray(W),
                                          b64.asarray(b), max_bytes)
    assert len(cache[0]) == (shape[0] if max_bytes == 1 else 1), "chunks of the batch"
    err = rel_err(host(b64, y), conv2d_forward_loop(x, W, b))
    assert err < 1e-12, f"fft conv y rel error {err:.2e}"
    dy = rng.standard_normal(y.shape)
    got = fftconv.conv2d_fft_backward(b64.xp, b64.asarray(dy), cache, b64.asarray(W))
    for name, g, r in zip(("dx", "dW", "db"), got, conv2d_backward_loop(dy, x, W)):
        assert g.shape == r.shape, f"{name} shape {g.shape}, want {r.shape}"
        err = rel_err(host(b64, g), r)
        assert err < 1e-12, f"fft conv {name} rel error {err:.2e}"


@pytest.mark.parametrize("shape, F, K", SHAPES)
def test_fft_and_im2col_agree_in_float32(backend, shape, F, K):
    rng = np.random.default_rng(1)
    x, W, b = (backend.asarray(rng.standard_normal(shape)),
               backend.asarray(rng.standard_normal((F, shape[1], K, K))),
               backend.asarray(rng.standard_normal(F)))
    y1, c1 = ops.conv2d_forward(backend.xp, x, W, b)
    y2, c2 = fftconv.conv2d_fft_forward(backend.xp, x, W, b)
    assert y2.dtype == y1.dtype == np.float32, f"fft conv y dtype {y2.dtype}"
    assert rel_err(host(backend, y2), host(backend, y1)) < 1e-5, "fft y vs im2col y"
    dy = backend.asarray(rng.standard_normal(y1.shape))
    g1 = ops.conv2d_backward(backend.xp, dy, c1, W)
    g2 = fftconv.conv2d_fft_backward(backend.xp, dy, c2, W)
    for name, a, r in zip(("dx", "dW", "db"), g2, g1):
        assert a.dtype == np.float32, f"fft {name} dtype {a.dtype}"
        err = rel_err(host(backend, a), host(backend, r))
        assert err < 1e-5, f"fft {name} vs im2col rel error {err:.2e}"


def test_fft_backward_leaves_dy_alone(backend):
    rng = np.random.default_rng(2)
    x = backend.asarray(rng.standard_normal((2, 2, 6, 6)))
    W, b = backend.asarray(rng.standard_normal((3, 2, 3, 3))), backend.asarray(np.zeros(3))
    y, cache = fftconv.conv2d_fft_forward(backend.xp, x, W, b)
    dy = backend.asarray(rng.standard_normal(y.shape))
    before = host(backend, dy)
    fftconv.conv2d_fft_backward(backend.xp, dy, cache, W)
    np.testing.assert_array_equal(host(backend, dy), before)


@pytest.mark.parametrize("shape, F, K", SHAPES)
def test_fft_layer_passes_finite_differences(backend, shape, F, K):
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(3)
    layer = Conv2D(shape[1], F, K, backend=b64, rng=rng, method="fft")
    results = check_layer(layer, (b64.asarray(rng.standard_normal(shape)),),
                          name="Conv2D fft", rng=rng, to_numpy=b64.to_numpy)
    assert layer.fft, "method='fft' did not take the FFT path"
    for r in results:
        assert r.passed, f"Conv2D fft {r.tensor} rel error {r.rel_error:.2e}"


def test_a_wrong_fft_backward_fails_the_check(backend, monkeypatch):
    # dx = conv(dy, w) needs the weight spectrum itself; given its conjugate (the forward's
    # correlation), backward computes another op's gradient, and the check must say so.
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(4)
    layer = Conv2D(2, 3, 3, backend=b64, rng=rng, method="fft")
    real_backward = fftconv.conv2d_fft_backward

    def wrong(xp, dy, cache, W, need_dx=True):
        Xs, Ws, shape, grid, workers, memo = cache
        return real_backward(xp, dy, (Xs, xp.conj(Ws), shape, grid, workers, memo), W, need_dx)

    monkeypatch.setattr(fftconv, "conv2d_fft_backward", wrong)
    results = check_layer(layer, (b64.asarray(rng.standard_normal((2, 2, 7, 7))),),
                          rng=rng, to_numpy=b64.to_numpy)
    verdict = {r.tensor: r.passed for r in results}
    assert not verdict["dx"], "a dx through the unconjugated weight spectrum passed"
    assert verdict["dW"] and verdict["db"], "dW and db do not use the weight spectrum"


def preset_convs(name):
    """(C, F, K, Hi) of each conv of a preset."""
    network = PRESETS[name].network
    C, size, rows = 1, network.image_size, []
    for (F, K), out in zip(network.conv, encoder_shapes(network)):
        rows.append((C, F, K, size))
        C, size = F, out
    return rows


def test_auto_keeps_the_tiny_preset_on_im2col_at_any_batch():
    # tests/test_golden.py pins tiny runs bit for bit: they must stay on im2col
    for N in (1, 4, 12, 64, 256, 4096):
        for C, F, K, H in preset_convs("tiny"):
            assert not use_fft(N, C, F, K, H, H), f"tiny conv C={C} K={K} on FFT at N={N}"


def test_auto_picks_by_size():
    assert use_fft(64, 64, 128, 7, 48, 48), "koch conv2 should take the FFT"
    assert not use_fft(64, 64, 128, 3, 4, 4), "a 3x3 kernel on a 4x4 map should not"


def test_layer_follows_method(backend):
    rng = np.random.default_rng(5)
    x = backend.asarray(rng.standard_normal((2, 3, 9, 9)))
    for method, fft in (("im2col", False), ("fft", True), ("auto", use_fft(2, 3, 4, 3, 9, 9))):
        layer = Conv2D(3, 4, 3, backend=backend, rng=np.random.default_rng(0), method=method)
        layer.forward(x)
        assert layer.fft == fft, f"method {method!r} took fft={layer.fft}"
    with pytest.raises(ValueError, match="unknown conv method 'winograd'"):
        Conv2D(3, 4, 3, backend=backend, rng=rng, method="winograd")


@pytest.mark.parametrize("h, w, grid", [(5, 5, (5, 5)), (7, 6, (8, 6)), (3, 4, (9, 10)),
                                         (11, 13, (12, 15))])
def test_dft_matrices_are_rfft2_and_irfft2(backend, h, w, grid):
    # the transforms are matrix products; xp.fft is their reference: padding and cut,
    # odd and even grids (the Nyquist bin), float64 and float32
    xp = backend.xp
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 3, h, w))
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        got = fftconv._spectrum(xp, backend.asarray(a, dtype), grid)  # (Q, 2, 3)
        want = np.fft.rfft2(a, s=grid).reshape(2, 3, -1).transpose(2, 0, 1)
        assert got.dtype == np.result_type(dtype, np.complex64), f"spectrum dtype {got.dtype}"
        err = complex_rel_err(backend.to_numpy(got), want)
        assert err < tol, f"spectrum vs rfft2 rel error {err:.2e} ({dtype.__name__})"
        back = fftconv._signal(xp, got, grid, h, w, dtype)  # the inverse, cut to (h, w)
        assert back.dtype == dtype and back.shape == (2, 3, h, w), (back.dtype, back.shape)
        err = rel_err(backend.to_numpy(back), a)
        assert err < tol, f"signal of the spectrum rel error {err:.2e} ({dtype.__name__})"
    spec = rng.standard_normal(want.shape) + 1j * rng.standard_normal(want.shape)
    spec = spec.transpose(1, 2, 0).reshape(2, 3, grid[0], grid[1] // 2 + 1)
    want = np.fft.irfft2(spec, s=grid)[:, :, :h, :w]  # drops Im of the DC and Nyquist bins
    got = fftconv._signal(xp, backend.asarray(spec.reshape(2, 3, -1).transpose(2, 0, 1),
                                               np.complex128), grid, h, w, np.float64)
    err = rel_err(backend.to_numpy(got), want)
    assert err < 1e-12, f"signal vs irfft2 on any spectrum, rel error {err:.2e}"


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_a_first_layer_skips_dx_and_keeps_dw_db(backend, method):
    # conv1 of the model: input_grad=False returns no dx, and dW, db bit for bit as with it
    rng = np.random.default_rng(8)
    x = backend.asarray(rng.standard_normal((3, 2, 9, 8)))
    dy = backend.asarray(rng.standard_normal((3, 4, 7, 6)))
    grads = {}
    for input_grad in (True, False):
        conv = Conv2D(2, 4, 3, backend=backend, rng=np.random.default_rng(0), method=method,
                      input_grad=input_grad)
        conv.forward(x)
        dx = conv.backward(dy)
        assert (dx is None) == (not input_grad), f"input_grad={input_grad} gave dx {type(dx)}"
        grads[input_grad] = {k: host(backend, v) for k, v in conv.grads.items()}
    for k in ("W", "b"):
        np.testing.assert_array_equal(grads[False][k], grads[True][k], f"d{k} without dx")


def test_the_model_asks_no_image_gradient_of_conv1(backend):
    from tinysiamese.model import SiameseNet

    model = SiameseNet(PRESETS["tiny"].network, backend=backend, rng=np.random.default_rng(0))
    convs = [(n, l.input_grad) for n, l in model.encoder if isinstance(l, (Conv2D, ConvPool2D))]
    assert convs == [("conv1", False), ("conv2", True), ("conv3", True)], convs


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_the_config_picks_the_conv_path(method):
    from tinysiamese.config import build_config
    from tinysiamese.model import SiameseNet

    network = build_config("small", {"network": {"conv_method": method}}).network
    model = SiameseNet(network, backend=get_backend(), rng=np.random.default_rng(0))
    assert {l.method for _, l in model.encoder if isinstance(l, Conv2D)} == {method}
    # every conv on the one path: the images' block stays a Conv2D and a MaxPool2D
    assert [n for n, _ in model.encoder][:3] == ["conv1", "pool1", "relu1"]


def test_auto_fuses_the_images_block_and_every_path_gives_the_same_logits():
    from tinysiamese.config import build_config
    from tinysiamese.model import SiameseNet

    rng = np.random.default_rng(1)
    x1, x2 = rng.random((2, 3, 1, 52, 52), dtype=np.float32)
    z = {}
    for method in ("auto", "im2col", "fft"):
        network = build_config("small", {"network": {"conv_method": method}}).network
        model = SiameseNet(network, backend=get_backend(), rng=np.random.default_rng(0))
        kinds = [type(l).__name__ for _, l in model.encoder][:2]
        assert kinds == (["ConvPool2D", "ReLU"] if method == "auto" else ["Conv2D", "MaxPool2D"])
        z[method] = model.forward_logits(x1, x2)
    for method in ("im2col", "fft"):
        np.testing.assert_allclose(z["auto"], z[method], rtol=1e-4, atol=1e-4)


def test_on_a_gpu_a_transform_is_one_slab(monkeypatch):
    # CuPy takes the whole batch in one slab (few, big kernels): the same transforms as the
    # CPU's slabs; a stand-in module named like CuPy runs that branch on NumPy
    import types

    gpu_like = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np)
                                        if not k.startswith("__")}, __name__="cupy")
    rng = np.random.default_rng(9)
    a = rng.standard_normal((6, 40, 10, 9))  # 240 signals
    grid = (10, 9)
    monkeypatch.setattr(fftconv, "SLAB_BYTES", 16 * 10 * 5 * 16)  # slabs of 16 on the CPU
    assert fftconv._slab_rows(np, 240, 10 * 5 * 16) == 16
    assert fftconv._slab_rows(gpu_like, 240, 10 * 5 * 16) == 240
    cpu = fftconv._spectrum(np, a, grid)
    gpu = fftconv._spectrum(gpu_like, a, grid)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fftconv._signal(gpu_like, gpu, grid, 10, 9, np.float64),
                               fftconv._signal(np, cpu, grid, 10, 9, np.float64),
                               rtol=1e-12, atol=1e-12)
