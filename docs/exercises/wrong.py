"""Typical wrong answers to the gradient exercises (docs/exercises.md), one mistake each.

Each class is the correct one from solutions.py with only its backward changed, so the
gradient checker has exactly one bug to find:

    tinysiamese gradcheck --layer wrong:MyDense
"""
import solutions
from tinysiamese.backend import array_module


class MyReLU(solutions.MyReLU):
    def backward(self, dy):
        return dy.copy()  # MISTAKE: the mask is forgotten, x <= 0 gets a gradient too


class MyDense(solutions.MyDense):
    def backward(self, dy):
        # MISTAKE: dyᵀ x is the transpose of dW; reshaping it to W's shape hides the error
        self.grads["W"][...] = (dy.T @ self.x).reshape(self.params["W"].shape)
        self.grads["b"][...] = dy.sum(axis=0)
        return dy @ self.params["W"].T


class MyMaxPool2D(solutions.MyMaxPool2D):
    def backward(self, dy):
        # MISTAKE: the gradient is copied to every element of the window, not only the max
        xp = array_module(dy)
        x_shape, _ = self.cache
        s = self.size
        N, C, Ho, Wo = dy.shape
        dx = xp.zeros(x_shape, dtype=dy.dtype)
        dx[:, :, :Ho * s, :Wo * s] = dy.repeat(s, axis=2).repeat(s, axis=3)
        return dx


class TiedMaxPool2D(solutions.MyMaxPool2D):
    def forward(self, x):
        xw = self._windows(x)
        y = xw.max(axis=-1)
        self.cache = (x.shape, xw == y[..., None])  # every element equal to the max
        return y

    def backward(self, dy):
        # MISTAKE: with ties, the gradient goes to *every* tied maximum, so a window passes
        # on k times its gradient. The standard check has no ties (there the derivative is
        # not defined), so it passes; tests/test_layers.py's tie test catches it.
        xp = array_module(dy)
        x_shape, is_max = self.cache
        N, C, Ho, Wo = dy.shape
        s = self.size
        dw = (dy[..., None] * is_max).reshape(N, C, Ho, Wo, s, s)
        dx = xp.zeros(x_shape, dtype=dy.dtype)
        dx[:, :, :Ho * s, :Wo * s] = dw.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho * s, Wo * s)
        return dx


class MyConv2D(solutions.MyConv2D):
    def backward(self, dy):
        x, W = self.x, self.params["W"]
        K = W.shape[2]
        Ho, Wo = dy.shape[2], dy.shape[3]
        dx = self.xp.zeros_like(x)
        for i in range(K):
            for j in range(K):
                self.grads["W"][:, :, i, j] = self.xp.einsum(
                    "nfhw,nchw->fc", dy, x[:, :, i:i + Ho, j:j + Wo])
                # MISTAKE: "=" instead of "+=": each offset overwrites the windows before it,
                # so a pixel keeps only the last window's gradient, not the sum over all
                dx[:, :, i:i + Ho, j:j + Wo] = self.xp.einsum("nfhw,fc->nchw", dy, W[:, :, i, j])
        self.grads["b"][...] = dy.sum(axis=(0, 2, 3))
        return dx
