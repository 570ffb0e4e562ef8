"""Example solutions of the four gradient exercises (docs/exercises.md).

Check them from this folder:  tinysiamese gradcheck --layer solutions:MyConv2D

Every class takes the constructor arguments of ``tinysiamese.gradcheck.STUDENT_ARGS`` and has
the API of ``tinysiamese.layers``: ``forward(x) -> y`` keeps what backward needs,
``backward(dy) -> dx`` fills ``grads[k]`` for every ``k`` in ``params`` and never changes dy.
Arrays are whatever the checker passes in (float64, NumPy or CuPy), so the array module is
taken from the backend (layers with weights) or from the input (layers without).
"""
import numpy as np

from tinysiamese.backend import array_module


class MyReLU:
    """y = max(x, 0). Any shape."""

    def __init__(self):
        self.params, self.grads = {}, {}
        self.mask = None

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        # dy/dx is 1 where x > 0 and 0 elsewhere: the gradient passes only where x did
        return dy * self.mask


class MyDense:
    """y = x W + b.  x: (N, Din), W: (Din, Dout), b: (Dout,) -> y: (N, Dout)."""

    def __init__(self, in_features, out_features, *, backend, rng):
        self.params = {
            "W": backend.asarray(rng.normal(0.0, np.sqrt(2.0 / in_features),
                                            (in_features, out_features))),
            "b": backend.asarray(np.zeros(out_features)),
        }
        self.grads = {k: backend.xp.zeros_like(v) for k, v in self.params.items()}
        self.x = None

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dy):
        # y[n, k] = sum_d x[n, d] W[d, k] + b[k], so
        # dW[d, k] = sum_n x[n, d] dy[n, k] = (xᵀ dy)[d, k];  db = sum_n dy[n];  dx = dy Wᵀ
        self.grads["W"][...] = self.x.T @ dy
        self.grads["b"][...] = dy.sum(axis=0)
        return dy @ self.params["W"].T


class MyMaxPool2D:
    """Non-overlapping max-pool: x (N, C, Hi, Wi) -> y (N, C, Hi // s, Wi // s)."""

    def __init__(self, size=2):
        self.size = size
        self.params, self.grads = {}, {}
        self.cache = None

    def _windows(self, x):
        """(N, C, Hi, Wi) -> (N, C, Ho, Wo, s*s): each window, row-major; odd edges dropped."""
        N, C, Hi, Wi = x.shape
        s = self.size
        Ho, Wo = Hi // s, Wi // s
        w = x[:, :, :Ho * s, :Wo * s].reshape(N, C, Ho, s, Wo, s)
        return w.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, s * s)

    def forward(self, x):
        xw = self._windows(x)
        self.cache = (x.shape, xw.argmax(axis=-1))  # argmax: the first maximum on ties
        return xw.max(axis=-1)

    def backward(self, dy):
        # y = x[argmax]: the whole gradient of a window goes to that one element
        xp = array_module(dy)
        x_shape, arg = self.cache
        N, C, Ho, Wo = dy.shape
        s = self.size
        onehot = xp.arange(s * s) == arg[..., None]  # (N, C, Ho, Wo, s*s)
        dw = (dy[..., None] * onehot).reshape(N, C, Ho, Wo, s, s)
        dx = xp.zeros(x_shape, dtype=dy.dtype)  # the dropped odd edge keeps 0
        dx[:, :, :Ho * s, :Wo * s] = dw.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho * s, Wo * s)
        return dx


class MyConv2D:
    """Valid, stride-1 convolution. x (N, C, Hi, Wi), W (F, C, K, K), b (F,) ->
    y (N, F, Ho, Wo) with Ho = Hi - K + 1, Wo = Wi - K + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, *, backend, rng):
        C, F, K = in_channels, out_channels, kernel_size
        self.xp = backend.xp
        self.params = {
            "W": backend.asarray(rng.normal(0.0, np.sqrt(2.0 / (C * K * K)), (F, C, K, K))),
            "b": backend.asarray(np.zeros(F)),
        }
        self.grads = {k: self.xp.zeros_like(v) for k, v in self.params.items()}
        self.x = None

    def forward(self, x):
        # y[n, f, ho, wo] = b[f] + sum_{c, i, j} W[f, c, i, j] x[n, c, ho + i, wo + j]:
        # one product per kernel offset (i, j), over the input window it sees
        W, b = self.params["W"], self.params["b"]
        K = W.shape[2]
        N, C, Hi, Wi = x.shape
        Ho, Wo = Hi - K + 1, Wi - K + 1
        y = self.xp.zeros((N, W.shape[0], Ho, Wo), dtype=x.dtype)
        for i in range(K):
            for j in range(K):
                y += self.xp.einsum("nchw,fc->nfhw", x[:, :, i:i + Ho, j:j + Wo], W[:, :, i, j])
        self.x = x
        return y + b[None, :, None, None]

    def backward(self, dy):
        # dW[f, c, i, j] = sum_{n, ho, wo} dy[n, f, ho, wo] x[n, c, ho + i, wo + j]
        # dx[n, c, ho + i, wo + j] += sum_f W[f, c, i, j] dy[n, f, ho, wo]: an input pixel
        #   sits in up to K*K windows, so the contributions of all offsets must be ADDED
        x, W = self.x, self.params["W"]
        K = W.shape[2]
        Ho, Wo = dy.shape[2], dy.shape[3]
        dx = self.xp.zeros_like(x)
        for i in range(K):
            for j in range(K):
                self.grads["W"][:, :, i, j] = self.xp.einsum(
                    "nfhw,nchw->fc", dy, x[:, :, i:i + Ho, j:j + Wo])
                dx[:, :, i:i + Ho, j:j + Wo] += self.xp.einsum("nfhw,fc->nchw", dy, W[:, :, i, j])
        self.grads["b"][...] = dy.sum(axis=(0, 2, 3))
        return dx
