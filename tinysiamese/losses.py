"""Losses: binary cross-entropy from logits, and the L2 weight penalty."""
from __future__ import annotations

from .backend import array_module
from .ops import sigmoid


def bce_with_logits(z, y, weights=None):
    """Binary cross-entropy of logits ``z`` against labels ``y``, and its gradient.

    z: (N,) logits, y: (N,) in {0, 1}, weights: (N,) summing to 1, or None for the mean
    (1/N each) -> (loss: 0-d array, dz: (N,)).
    With p = sigma(z):  -[y log p + (1-y) log(1-p)] = max(z, 0) - z y + log(1 + e^-|z|),
    which never takes log(0) nor overflows (|z| up to 1e4 and beyond).
    dloss/dz = w (p - y): sigmoid and cross-entropy fused, so no 0 * inf appears.
    The loss stays an array (no host round-trip on a GPU); ``float(loss)`` to print it.
    """
    xp = array_module(z)
    per_pair = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    if weights is None:
        N = z.shape[0]
        return per_pair.mean(), ((sigmoid(xp, z) - y) / N).astype(z.dtype, copy=False)
    return (weights * per_pair).sum(), (weights * (sigmoid(xp, z) - y)).astype(z.dtype, copy=False)


def l2_penalty(params, lambdas):
    """The L2 regulariser sum_k lambda_k |w_k|^2 and its gradient.

    params:  {name: array}, e.g. a model's flat parameter view ``model.params()``
    lambdas: {name: float}, the weight decay of each penalised tensor; names that are
             absent (or 0) are not penalised (the presets leave biases out).
    Returns (penalty: 0-d array or 0.0, grads: {name: 2 lambda_k w_k}).
    """
    penalty, grads = 0.0, {}
    for name, lam in lambdas.items():
        if lam:
            w = params[name]
            penalty = penalty + lam * (w * w).sum()
            grads[name] = (2.0 * lam) * w
    return penalty, grads
