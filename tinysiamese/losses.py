"""Losses: binary cross-entropy from logits, and the one-shot softmax of a group batch.

(The paper's L2 weight penalty is not a loss term here: the optimiser adds its gradient,
see :mod:`tinysiamese.optim`.)"""
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


def one_shot_softmax(z, first, second, same, n_images: int):
    """A one-shot trial for every (image, other drawing of its character) of a group batch.

    z: (P,) logits of the pairs (first[p], second[p]) among M = ``n_images`` images, each
    unordered pair once (``groups.pairs_within``); same: (P,) 1 where both show one
    character -> (loss: 0-d array, dz: (P,)).
    The test asks which of N candidates shows the test character, so train on that
    question: anchor i, its positive j and every image k of another character, softmax
    cross-entropy -log e^z_ij / (e^z_ij + sum_k e^z_ik) = softplus(L_i - z_ij) with
    L_i = logsumexp_k z_ik, averaged over the K ordered (i, j). Then
      dloss/dz_ij = -s_ij / K                    s_ij = sigmoid(L_i - z_ij)
      dloss/dz_ik = softmax_i(k) sum_j s_ij / K  softmax_i over row i's negatives
    and a pair's logit sits in rows i and j both, so dz_p = dS[i, j] + dS[j, i].
    The join's bias cancels in every softmax: this loss leaves it to the cross-entropy.
    """
    xp = array_module(z)
    S = xp.zeros((n_images, n_images), dtype=z.dtype)  # (M, M), symmetric
    S[first, second] = z
    S[second, first] = z
    Y = xp.zeros((n_images, n_images), dtype=bool)  # (M, M), the positives
    Y[first, second] = same > 0.5
    Y[second, first] = same > 0.5
    negative = ~Y
    negative[xp.arange(n_images), xp.arange(n_images)] = False
    # logsumexp over each row's negatives, shifted by the row's largest for stability
    masked = xp.where(negative, S, -xp.inf)
    top = masked.max(axis=1, keepdims=True)  # (M, 1)
    e = xp.exp(masked - top)  # (M, M), 0 off the negatives
    row_sum = e.sum(axis=1, keepdims=True)  # (M, 1)
    L = top + xp.log(row_sum)  # (M, 1)
    K = Y.sum()
    margin = xp.where(Y, L - S, 0.0)
    per_pos = xp.maximum(margin, 0) + xp.log1p(xp.exp(-xp.abs(margin)))  # softplus, stable
    loss = xp.where(Y, per_pos, 0.0).sum() / K
    s = xp.where(Y, sigmoid(xp, margin), 0.0)  # (M, M), zero off the positives
    dS = (e / row_sum) * s.sum(axis=1, keepdims=True) - s
    dS = dS / K
    return loss, (dS[first, second] + dS[second, first]).astype(z.dtype, copy=False)
