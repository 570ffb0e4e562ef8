"""The backend object, CuPy's absence, and proof that the engine computes only through xp."""
import dataclasses
import sys
import types

import numpy as np
import pytest

import tinysiamese.backend
import tinysiamese.fftconv
import tinysiamese.layers
import tinysiamese.losses
import tinysiamese.model
import tinysiamese.ops
from tinysiamese.backend import (BACKEND_NAMES, Backend, BackendUnavailableError, array_module,
                                 get_backend)
from tinysiamese.config import PRESETS
from tinysiamese.model import SiameseNet


def test_numpy_backend_fields():
    be = get_backend("numpy")
    assert (be.name, be.xp, be.dtype) == ("numpy", np, np.float32)
    assert get_backend() == be
    a = be.asarray([1, 2, 3])
    assert type(a) is np.ndarray and a.dtype == np.float32
    assert be.asarray([1, 2], dtype=np.int64).dtype == np.int64
    assert be.to_numpy(a) is a, "to_numpy copied a host array"
    with pytest.raises(dataclasses.FrozenInstanceError):
        be.dtype = np.float64


def test_with_dtype(backend):
    b64 = backend.with_dtype("float64")
    assert (b64.name, b64.xp, b64.dtype) == (backend.name, backend.xp, np.float64)
    assert backend.dtype == np.float32, "with_dtype changed the original"
    assert b64.asarray([0.1]).dtype == np.float64
    assert get_backend(backend.name, np.float64) == b64
    x = b64.asarray([0.1, 0.2])
    assert b64.to_numpy(x).tolist() == [0.1, 0.2]
    assert isinstance(b64.to_numpy(x), np.ndarray)


def test_unknown_backend_names_the_valid_ones():
    assert BACKEND_NAMES == ("numpy", "cupy")
    with pytest.raises(ValueError, match=r"unknown backend 'torch': choose one of numpy, cupy"):
        get_backend("torch")


def _cupy_works():
    try:
        get_backend("cupy")
    except BackendUnavailableError:
        return False
    return True


def test_cupy_unavailable_here_says_how_to_install():
    if _cupy_works():
        pytest.skip("CuPy and a CUDA device are usable here")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("cupy")
    msg = str(info.value)
    if "cupy" not in sys.modules:  # not installed: the message says how to install it
        assert "pip install" in msg and "tinysiamese[gpu]" in msg, msg
    assert "--backend numpy" in msg, msg


def test_cupy_missing_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError, GPU or not
    with pytest.raises(BackendUnavailableError, match=r"pip install 'tinysiamese\[gpu\]'"):
        get_backend("cupy")


@pytest.mark.parametrize("count, fail, expected", [
    (0, None, "no CUDA device is usable"),
    (1, RuntimeError("cudaErrorInsufficientDriver"), "cudaErrorInsufficientDriver"),
])
def test_cupy_without_a_device(monkeypatch, count, fail, expected):
    def zeros(n):
        raise fail

    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: count)),
        zeros=zeros)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendUnavailableError, match=expected):
        get_backend("cupy")


def test_array_module_follows_the_input():
    assert array_module(np.zeros(2)) is np
    assert array_module(3.0) is np


# --------------------------------------------------------------------------- only xp
class SpyXP:
    """An array module that records every attribute asked of it and delegates to NumPy."""

    def __init__(self):
        self.names = set()

    def __getattr__(self, name):
        self.names.add(name)
        return getattr(np, name)


class Tripwire:
    """Stands in for a module's ``np`` global: any use of it fails the test."""

    def __init__(self, where):
        self.where = where

    def __getattr__(self, name):
        raise AssertionError(f"{self.where} called numpy.{name} directly instead of backend.xp")


def test_engine_computes_only_through_the_backends_xp(monkeypatch):
    cfg = PRESETS["tiny"].network
    rng = np.random.default_rng(0)
    x1 = rng.random((3, 1, 28, 28)).astype(np.float32)
    x2 = rng.random((3, 1, 28, 28)).astype(np.float32)
    dz = np.array([0.5, -1.0, 0.25], dtype=np.float32)

    plain = SiameseNet(cfg, backend=get_backend("numpy"), rng=np.random.default_rng(1))
    z_plain = plain.forward_logits(x1, x2)
    dx_plain = plain.backward_logits(dz)

    spy = SpyXP()
    model = SiameseNet(cfg, backend=Backend("spy", spy, np.float32), rng=np.random.default_rng(1))
    # Weights are drawn on the host with numpy (allowed); from here on numpy is off limits.
    for module in (tinysiamese.layers, tinysiamese.model, tinysiamese.backend):
        monkeypatch.setattr(module, "np", Tripwire(module.__name__))
    spy.names.clear()
    z = model.forward_logits(x1, x2)
    dx = model.backward_logits(dz)
    monkeypatch.undo()

    expected = {"concatenate", "empty", "maximum", "exp", "abs", "where", "sign", "zeros",
                "zeros_like", "uint8"}
    assert expected <= spy.names, f"never asked the spy for {sorted(expected - spy.names)}"
    np.testing.assert_array_equal(z, z_plain)
    assert dx is None and dx_plain is None, "conv1 computed an image gradient"
    for k, g in plain.grads().items():
        np.testing.assert_array_equal(model.grads()[k], g, err_msg=k)


def test_fourier_conv_computes_only_through_the_backends_xp(monkeypatch):
    from tinysiamese.layers import Conv2D

    rng = np.random.default_rng(0)
    x, dy = rng.random((3, 2, 7, 6)), rng.random((3, 4, 5, 4))
    plain = Conv2D(2, 4, 3, backend=get_backend("numpy", np.float64),
                   rng=np.random.default_rng(1), method="fft")
    y_plain, dx_plain = plain.forward(x), plain.backward(dy)
    spy = SpyXP()
    conv = Conv2D(2, 4, 3, backend=Backend("spy", spy, np.float64), rng=np.random.default_rng(1),
                  method="fft")
    for module in (tinysiamese.layers, tinysiamese.fftconv):
        monkeypatch.setattr(module, "np", Tripwire(module.__name__), raising=False)
    spy.names.clear()
    y, dx = conv.forward(x), conv.backward(dy)
    monkeypatch.undo()
    assert {"matmul", "cos", "exp"} <= spy.names, f"the spy saw only {sorted(spy.names)}"
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(dx, dx_plain)


@pytest.mark.parametrize("module", [tinysiamese.ops, tinysiamese.losses, tinysiamese.fftconv])
def test_ops_and_losses_do_not_import_numpy(module):
    g = vars(module)
    assert "np" not in g and "numpy" not in g
    for name, v in g.items():
        owner = v.__name__ if isinstance(v, types.ModuleType) else getattr(v, "__module__", None)
        assert not str(owner).startswith("numpy"), f"{module.__name__}.{name} comes from numpy"


def test_conv_chunk_size_comes_from_the_backend():
    """A GPU backend unfolds a whole batch at once; a CPU one in cache-sized chunks."""
    from tinysiamese.backend import CPU_IM2COL_BYTES, GPU_IM2COL_BYTES
    from tinysiamese.layers import Conv2D

    assert get_backend("numpy").im2col_bytes == CPU_IM2COL_BYTES < GPU_IM2COL_BYTES
    big = Backend("numpy", np, np.float32, im2col_bytes=GPU_IM2COL_BYTES)
    assert big.with_dtype("float64").im2col_bytes == GPU_IM2COL_BYTES
    rng = np.random.default_rng(0)
    x = rng.random((6, 2, 9, 9)).astype(np.float32)
    outputs = []
    for be, explicit in ((big, None), (get_backend("numpy"), None), (big, 2 * 2 * 9 * 4)):
        conv = Conv2D(2, 3, 3, backend=be, rng=np.random.default_rng(1), max_cols_bytes=explicit)
        assert conv.max_cols_bytes == (explicit or be.im2col_bytes)
        outputs.append(conv.forward(x))
    np.testing.assert_allclose(outputs[2], outputs[0], rtol=1e-6)  # 1-sample chunks, same y
