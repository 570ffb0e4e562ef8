"""Layers: thin classes over the pure ops in :mod:`tinysiamese.ops`.

Every layer has the same small API and no base class::

    layer.forward(x) -> y        # keeps one cache for backward
    layer.backward(dy) -> dx     # fills layer.grads[k] for every k in layer.params
    layer.params, layer.grads    # dicts: name -> array, same keys and shapes

Parameters are drawn on the host from an explicit ``numpy.random.Generator`` and then
moved to the backend, so one seed gives the same model on NumPy and on CuPy.

Initialisation (``init``):
  * ``"paper"`` (Koch et al. 2015, section 3.3): conv weights N(0, 1e-2), dense weights
    N(0, 2e-1), biases N(0.5, 1e-2). The numbers are standard deviations.
  * ``"fan_in"``: weights N(0, sqrt(2 / fan_in)) (He et al.), biases 0 for conv/dense.
    Small nets start training much sooner with it; the presets choose.
"""
from __future__ import annotations

import numpy as np

from . import convpool, fftconv, ops
from .backend import array_module
from .threads import SERIAL

INITS = ("paper", "fan_in")
CONV_METHODS = ("auto", "im2col", "fft")


def init_weight(rng: np.random.Generator, shape, fan_in: int, paper_std: float, init: str):
    """Draw a weight tensor on the host (float64) for the given scheme."""
    if init == "paper":
        return rng.normal(0.0, paper_std, size=shape)
    if init == "fan_in":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")


def init_bias(rng: np.random.Generator, shape, init: str):
    """Paper: N(0.5, 1e-2), which keeps ReLUs active at the start; fan_in: zeros."""
    if init == "paper":
        return rng.normal(0.5, 1e-2, size=shape)
    return np.zeros(shape)


def _with_params(layer, backend, **host) -> None:
    """A layer's params: ``host`` (name -> host array; the caller draws them in order, so
    one seed gives one net) moved to the backend, and its grads, zeros alike."""
    layer.xp = backend.xp
    layer.params = {k: backend.asarray(v) for k, v in host.items()}
    layer.grads = {k: layer.xp.zeros_like(v) for k, v in layer.params.items()}


class Conv2D:
    """Valid, stride-1 convolution (cross-correlation).

    x: (N, C, Hi, Wi) -> y: (N, F, Hi-K+1, Wi-K+1).
    params: W (F, C, K, K), b (F,). cache: on the im2col path (x, max_cols_bytes, workers),
    the input and the chunk bound (backward unfolds x again instead of keeping the im2col
    buffer); on the FFT path the spectra of the input and the weights.
    backward: dW = dY · colsᵀ, dx = col2im(Wᵀ · dY), db = sum of dY over (N, Ho, Wo).
    ``method``: "im2col" (``ops.conv2d_*``, the reference), "fft" (``fftconv``, the same
    result up to rounding) or "auto" (the default): FFT where ``fftconv.use_fft`` says it
    is faster, decided at each forward from the input's size.
    ``max_cols_bytes`` bounds the im2col buffer: the batch is done in chunks that fit
    (default: the backend's ``im2col_bytes``, small on a CPU, large on a GPU).
    ``input_grad=False`` (a first layer, whose input is the data): backward returns None
    instead of dx and skips its cost; dW and db are the same.
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, backend, rng,
                 init="paper", max_cols_bytes=None, method="auto", input_grad=True):
        C, F, K = in_channels, out_channels, kernel_size
        if method not in CONV_METHODS:
            raise ValueError(f"unknown conv method {method!r}: choose one of "
                             f"{', '.join(CONV_METHODS)}")
        _with_params(self, backend, W=init_weight(rng, (F, C, K, K), C * K * K, 1e-2, init),
                     b=init_bias(rng, (F,), init))
        self.method, self.input_grad = method, input_grad
        self.max_cols_bytes = max_cols_bytes or backend.im2col_bytes
        self.workers = backend.workers  # threads for the products and the Fourier slabs
        self.cache, self.fft = None, False
        self.dft_matrices = {}  # the Fourier path's DFT matrices, made once per size

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        self.fft = self.method == "fft" or (self.method == "auto" and fftconv.use_fft(
            *x.shape[:2], W.shape[0], W.shape[-1], *x.shape[2:]))
        if self.fft:
            y, self.cache = fftconv.conv2d_fft_forward(self.xp, x, W, b, workers=self.workers,
                                                       memo=self.dft_matrices)
        else:
            y, self.cache = ops.conv2d_forward(self.xp, x, W, b, self.max_cols_bytes,
                                               workers=self.workers)
        return y

    def backward(self, dy):
        backward = fftconv.conv2d_fft_backward if self.fft else ops.conv2d_backward
        dx, self.grads["W"][...], self.grads["b"][...] = backward(
            self.xp, dy, self.cache, self.params["W"], self.input_grad)
        return dx


def _no_params(layer, backend) -> None:
    """A parameter-free layer starts with no params, no grads and no cache; its array
    module is the backend's, or (built without a backend) its first input's, and its
    threads the backend's, or none."""
    layer.xp = backend.xp if backend is not None else None
    layer.params, layer.grads, layer.cache = {}, {}, None
    layer.workers = backend.workers if backend is not None else SERIAL


def _forward(layer, op, x, *args):
    """y = op(x) of a parameter-free layer, keeping the op's cache for its backward."""
    layer.xp = layer.xp or array_module(x)
    y, layer.cache = op(layer.xp, x, *args)
    return y


class MaxPool2D:
    """Non-overlapping max-pool. x: (N, C, Hi, Wi) -> y: (N, C, Hi//s, Wi//s).

    No params. cache: (arg, x.shape, channel_major), each window's arg-max offset as uint8
    (the first on ties), the input's shape and layout. backward: each window's gradient
    goes to its arg-max element only.
    """

    def __init__(self, size=2, *, backend=None, rng=None):
        self.size = size
        _no_params(self, backend)

    def forward(self, x):
        # The pool is elementwise work on one core in NumPy: the threads take a slice of
        # the channels each (threads.Workers), writing into one y and one arg-max.
        xp = self.xp = self.xp or array_module(x)
        N, C, Hi, Wi = x.shape
        shape, layout = (N, C, Hi // self.size, Wi // self.size), ops.is_channel_major(x)
        y = ops.empty_nchw(xp, shape, x.dtype, layout)
        arg = ops.empty_nchw(xp, shape, xp.uint8, layout)

        def part(a, b):
            ops.maxpool_forward(xp, x[:, a:b], self.size, out=(y[:, a:b], arg[:, a:b]))

        self.workers.split(part, C, elements=x.size)
        self.cache = (arg, x.shape, layout)
        return y

    def backward(self, dy):
        arg, (N, C, Hi, Wi), layout = self.cache
        dx = ops.empty_nchw(self.xp, (N, C, Hi, Wi), dy.dtype, layout)

        def part(a, b):
            cache = (arg[:, a:b], (N, b - a, Hi, Wi), layout)
            ops.maxpool_backward(self.xp, dy[:, a:b], cache, self.size, out=dx[:, a:b])

        self.workers.split(part, C, elements=dx.size)
        return dx


class ConvPool2D:
    """A Conv2D and the MaxPool2D after it, as one layer: the images' block.

    x: (N, C, Hi, Wi) -> y: (N, F, (Hi-K+1)//s, (Wi-K+1)//s), what
    MaxPool2D(s).forward(Conv2D(C, F, K).forward(x)) gives with the same weights.
    params: W (F, C, K, K), b (F,), drawn as Conv2D draws them (one seed, the same net).
    The conv's outputs are computed grouped by pool window offset, s*s planes from one
    product with the kernels shifted to each offset (``convpool``), and pooled while they
    are in the cache: the conv's full-size output and its full-size gradient are never
    made, for (K + s - 1)^2 / K^2 times the multiply-adds. ``SiameseNet`` uses it for the
    images' block: one input channel, a thin product, never on the Fourier path (small's
    conv1 + pool1 in the training step, 2 threads: 15.2 -> 9.2 ms; see ``convpool``).
    cache: (patches, arg, chunks, x.shape, size, workers). backward: dW = fold(dY ·
    patchesᵀ), db = sum of dy, dx = fold of the patches' gradients (``input_grad``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, size=2, *, backend, rng,
                 init="paper", max_cols_bytes=None, input_grad=True):
        C, F, K = in_channels, out_channels, kernel_size
        _with_params(self, backend, W=init_weight(rng, (F, C, K, K), C * K * K, 1e-2, init),
                     b=init_bias(rng, (F,), init))  # drawn as Conv2D draws them
        self.size, self.input_grad = size, input_grad
        self.max_cols_bytes = max_cols_bytes or backend.im2col_bytes
        self.workers = backend.workers
        self.cache, self.fft = None, False  # fft: the conv's path, as Conv2D reports it

    def forward(self, x):
        y, self.cache = convpool.conv_pool_forward(
            self.xp, x, self.params["W"], self.params["b"], self.size, self.max_cols_bytes,
            workers=self.workers)
        return y

    def backward(self, dy):
        dx, self.grads["W"][...], self.grads["b"][...] = convpool.conv_pool_backward(
            self.xp, dy, self.cache, self.params["W"], self.input_grad)
        return dx


class Dense:
    """Fully connected layer. x: (N, Din) -> y = x W + b: (N, Dout).

    params: W (Din, Dout), b (Dout,). cache: x.
    backward: dx = dy Wᵀ, dW = xᵀ dy, db = sum_n dy.
    """

    def __init__(self, in_features, out_features, *, backend, rng, init="paper"):
        _with_params(self, backend, W=init_weight(rng, (in_features, out_features),
                                                  in_features, 2e-1, init),
                     b=init_bias(rng, (out_features,), init))
        self.cache, self.workers = None, backend.workers

    def forward(self, x):
        y, self.cache = ops.dense_forward(self.xp, x, self.params["W"], self.params["b"],
                                          workers=self.workers)
        return y

    def backward(self, dy):
        # dW is written straight into the grads: the paper's dense1.W holds 37.7M weights,
        # and copying 151 MB costs ~20 ms, a sixth of the product that makes it
        dx, _, self.grads["b"][...] = ops.dense_backward(
            self.xp, dy, self.cache, self.params["W"], workers=self.workers,
            dW=self.grads["W"])
        return dx


class ReLU:
    """y = max(x, 0). Any shape. cache: y (y > 0 exactly where x > 0). backward:
    dx = dy * (y > 0)."""

    def __init__(self, *, backend=None, rng=None):
        _no_params(self, backend)

    def forward(self, x):
        # elementwise on one core in NumPy: the threads take a slice of axis 1 each, as in
        # MaxPool2D, and y keeps x's memory layout (empty_like)
        xp = self.xp = self.xp or array_module(x)
        y = xp.empty_like(x)

        def part(a, b):
            ops.relu_forward(xp, _part(x, a, b), out=_part(y, a, b))

        self.workers.split(part, _parts(x), elements=x.size)
        self.cache = y
        return y

    def backward(self, dy):
        # the kink at 0: a unit that was off passes no gradient, one that was on passes all
        y, dx = self.cache, self.xp.empty_like(dy)

        def part(a, b):
            ops.relu_backward(self.xp, _part(dy, a, b), _part(y, a, b), out=_part(dx, a, b))

        self.workers.split(part, _parts(dy), elements=dy.size)
        return dx


def _parts(x) -> int:
    """How many slices along axis 1 a layer's threads may share (1 for a 1-D x)."""
    return x.shape[1] if x.ndim > 1 else 1


def _part(x, a, b):
    """x[:, a:b], or all of a 1-D x."""
    return x[:, a:b] if x.ndim > 1 else x


class Sigmoid:
    """y = 1 / (1 + e^-x), stable for any |x|. cache: y. backward: dx = dy y (1 - y)."""

    def __init__(self, *, backend=None, rng=None):
        _no_params(self, backend)

    def forward(self, x):
        # caching y, not x: the derivative y (1 - y) needs no second exponential
        return _forward(self, ops.sigmoid_forward, x)

    def backward(self, dy):
        return ops.sigmoid_backward(self.xp, dy, self.cache)


class Flatten:
    """x: (N, C, H, W) -> y: (N, C*H*W). cache: the input shape. backward: reshape back."""

    def __init__(self, *, backend=None, rng=None):
        self.params, self.grads = {}, {}
        self.cache = None

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.cache)


class WeightedL1:
    """The siamese join: z = |h1 - h2| alpha + b, the logit that the pair matches.

    forward(h1, h2): h1, h2 (N, D) -> z (N,); the probability is Sigmoid()(z).
    backward(dz) -> (dh1, dh2): dh1 = dz alpha sign(h1 - h2) = -dh2,
    dalpha = |h1 - h2|ᵀ dz, db = sum_n dz.
    params: alpha (D,), b (1,). cache: (s, a) with s = sign(h1 - h2) and a = |h1 - h2|.
    Paper init: alpha ~ N(0, 2e-1), b ~ N(0.5, 1e-2).
    """

    def __init__(self, features, *, backend, rng, init="paper"):
        _with_params(self, backend, alpha=init_weight(rng, (features,), features, 2e-1, init),
                     b=init_bias(rng, (1,), init))
        self.cache, self.workers = None, backend.workers

    def forward(self, h1, h2):
        z, self.cache = ops.weighted_l1_forward(self.xp, h1, h2, self.params["alpha"],
                                                self.params["b"], workers=self.workers)
        return z

    def forward_pairs(self, h, first, second):
        """forward(h[first], h[second]) for the rows of one h (M, D), first, second (P,)
        -> z (P,). The gathering and the differences are elementwise work on one core in
        NumPy, so the threads take a share of the pairs each, writing into one cache."""
        xp, P, D = self.xp, first.shape[0], h.shape[1]
        z = xp.empty(P, dtype=h.dtype)
        s, a = xp.empty((P, D), dtype=h.dtype), xp.empty((P, D), dtype=h.dtype)

        def pairs(i, j):
            z[i:j] = ops.weighted_l1_forward(xp, h[first[i:j]], h[second[i:j]],
                                             self.params["alpha"], self.params["b"],
                                             out=(s[i:j], a[i:j]))[0]

        self.workers.split(pairs, P, elements=P * D)
        self.cache = (s, a)
        return z

    def backward(self, dz):
        dh1, dh2, self.grads["alpha"][...], self.grads["b"][...] = ops.weighted_l1_backward(
            self.xp, dz, self.cache, self.params["alpha"])
        return dh1, dh2

    def backward_pairs(self, dz, first, second, n_rows):
        """After forward(h[first], h[second]) for one h (n_rows, D): dz (P,) -> dh (n_rows, D),
        each row's gradient summed over the pairs it is in."""
        dh, self.grads["alpha"][...], self.grads["b"][...] = ops.weighted_l1_backward_pairs(
            self.xp, dz, self.cache, self.params["alpha"], first, second, n_rows,
            workers=self.workers)
        return dh
