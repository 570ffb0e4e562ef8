"""Every layer's docstring says what it caches, and the layer caches exactly that.

The "cache:" line is teaching text a learner trusts while writing a backward pass; this
test runs each layer once and checks the cache against the line (ReLU keeps y, not a
mask; MaxPool2D keeps its arg-max offsets, not its input).
"""
import numpy as np
import pytest
from tinysiamese.backend import Backend, get_backend
from tinysiamese.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1
from tinysiamese.threads import Workers

NUMPY = get_backend("numpy", np.float64)


def _run(layer_class):
    rng = np.random.default_rng(0)
    kwargs = {"backend": NUMPY, "rng": rng}
    if layer_class is Conv2D:
        layer, x = Conv2D(2, 3, 3, **kwargs, method="im2col"), rng.standard_normal((2, 2, 6, 6))
    elif layer_class is Dense:
        layer, x = Dense(4, 3, **kwargs), rng.standard_normal((2, 4))
    elif layer_class is MaxPool2D:
        layer, x = MaxPool2D(2, **kwargs), rng.standard_normal((2, 2, 4, 4))
    else:
        layer, x = layer_class(**kwargs), rng.standard_normal((2, 2, 3, 3))
    return layer, x, layer.forward(x)


# layer -> (the docstring's words, what the cache must then be, given x and y)
CASES = {
    Conv2D: ("cache: on the im2col path (x, max_cols_bytes, workers)",
             lambda c, x, y: c[0] is x and isinstance(c[1], int) and len(c) == 3),
    MaxPool2D: ("cache: (arg, x.shape, channel_major)",
                lambda c, x, y: c[0].dtype == np.uint8 and c[0].shape == y.shape
                and c[1] == x.shape and isinstance(c[2], bool)),
    Dense: ("cache: x", lambda c, x, y: c is x),
    ReLU: ("cache: y", lambda c, x, y: c is y),
    Sigmoid: ("cache: y", lambda c, x, y: c is y),
    Flatten: ("cache: the input shape", lambda c, x, y: c == x.shape),
}


@pytest.mark.parametrize("layer_class", list(CASES), ids=lambda c: c.__name__)
def test_the_cache_line_matches_the_cache(layer_class):
    words, holds = CASES[layer_class]
    doc = " ".join(layer_class.__doc__.split())
    assert words in doc, f"{layer_class.__name__}'s docstring should say {words!r}"
    layer, x, y = _run(layer_class)
    assert holds(layer.cache, x, y), f"{layer_class.__name__} does not cache what it says"


@pytest.mark.parametrize("threads", [1, 3])
def test_the_join_caches_the_differences_sign_and_size(threads):
    words = "cache: (s, a) with s = sign(h1 - h2) and a = |h1 - h2|"
    assert words in " ".join(WeightedL1.__doc__.split())
    rng = np.random.default_rng(1)
    backend = Backend("numpy", np, np.float64, workers=Workers(threads))
    layer = WeightedL1(300, backend=backend, rng=rng)
    h = np.round(rng.standard_normal((40, 300)), 1)  # some differences exactly 0
    first, second = np.triu_indices(40, 1)  # 780 pairs: 234,000 elements, shared by threads
    for z in (layer.forward(h[first], h[second]), layer.forward_pairs(h, first, second)):
        s, a = layer.cache
        np.testing.assert_array_equal(s, np.sign(h[first] - h[second]))
        np.testing.assert_array_equal(a, np.abs(h[first] - h[second]))
        np.testing.assert_allclose(z, a @ layer.params["alpha"] + layer.params["b"][0],
                                   rtol=1e-12)


def test_the_fourier_path_caches_what_it_says():
    from tinysiamese import fftconv

    words = "cache: (chunks, Ws, x.shape, grid, workers, memo)"
    assert words in " ".join(fftconv.conv2d_fft_forward.__doc__.split())
    assert "on the FFT path the spectra of the input and the weights" in " ".join(
        Conv2D.__doc__.split())
    rng = np.random.default_rng(2)
    layer = Conv2D(2, 3, 3, backend=NUMPY, rng=rng, method="fft")
    x = rng.standard_normal((4, 2, 6, 5))
    layer.forward(x)
    chunks, Ws, shape, grid, workers, memo = layer.cache
    Q = 6 * (5 // 2 + 1)  # the input's own grid, half of the last axis
    assert [(s, e) for s, e, _ in chunks] == [(0, 4)] and chunks[0][2].shape == (Q, 2, 4)
    assert Ws.shape == (Q, 3, 2) and shape == x.shape and grid == (6, 5)
    assert workers is layer.workers and memo is layer.dft_matrices
    # the matrices of x's and y's size (forward) are kept, and reused from the next step on
    assert len(memo) == 3  # W's, x's spectra; y's signal
    kept = dict(memo)
    layer.backward(np.ones((4, 3, 4, 3)))
    layer.forward(x)
    assert all(memo[k] is v for k, v in kept.items()) and len(memo) == 6  # + dy, dx, dW
