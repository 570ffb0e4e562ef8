"""Many pairs from few encoder passes: encode each image once, join every pair from its features.

The net's logit that images a and b show one class is the weighted-L1 join
(:class:`tinysiamese.layers.WeightedL1`) of their features h = encoder(x) in (0, 1)^D:

    z_ab = sum_j alpha_j |h_aj - h_bj| + b,      P(same) = sigmoid(z_ab)

The encoder costs millions of multiply-adds an image and the join D of them a pair, so for
A x B pairs we run the encoder A + B times, not 2AB. The join of a block of rows against a
block of columns makes an (rows, cols, D) tensor; :data:`BLOCK_ELEMENTS` bounds its size, so
memory stays a few tens of MB whatever A and B are.

Views (``--views``, as :func:`tinysiamese.oneshot.with_views`): a pair's view turns or mirrors
both images alike, so the view v of pair (a, b) is the pair (view_v(a), view_v(b)) and its
logit is the join of h_v(a) and h_v(b), the features of the turned images. The score is the
mean over views of those logits: z_ab = (1 / V) sum_v z_v(a, b).

A class with several images scores the mean of its images' logits:
score(q, c) = (1 / |c|) sum_{s in c} z_qs.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .oneshot import pair_views, posed_view

BLOCK_ELEMENTS = 2**23  # floats in one (rows, cols, D) block of |h_a - h_b|: 32 MB in float32


def encode(model, images: np.ndarray, views: int = 1, batch_size: int = 256) -> np.ndarray:
    """images: (N, H, W) float32 host -> h: (V, N, D) float32 host, the features of each view.

    ``h[v]`` are the features of every image turned/mirrored as view v of
    :func:`tinysiamese.oneshot.pair_views`; h[0] is the images as drawn.
    """
    backend = model.backend
    x = np.asarray(images, dtype=np.float32)[:, None]  # (N, 1, H, W)
    out = []
    for turns, mirrored in pair_views(views):
        posed = posed_view(x, turns, mirrored) if (turns or mirrored) else x
        out.append(np.concatenate(
            [backend.to_numpy(model.encode(backend.asarray(posed[s:s + batch_size])))
             for s in range(0, len(posed), batch_size)]
            or [np.zeros((0, model.network.dense), np.float32)]))
    return np.stack(out).astype(np.float32, copy=False)  # (V, N, D)


def join_params(model) -> tuple[np.ndarray, float]:
    """The join's alpha (D,) float32 and bias b, on the host."""
    backend = model.backend
    return (backend.to_numpy(model.join.params["alpha"]).astype(np.float32),
            float(backend.to_numpy(model.join.params["b"])[0]))


def pair_logits(ha: np.ndarray, hb: np.ndarray, alpha: np.ndarray, b: float,
                symmetric: bool = False) -> np.ndarray:
    """Every pair's logit, mean over views: ha (V, A, D), hb (V, B, D) -> z (A, B) float64.

    z[i, k] = (1 / V) sum_v (sum_j alpha_j |ha[v, i, j] - hb[v, k, j]| + b).
    Blocks of rows x cols with rows * cols * D <= BLOCK_ELEMENTS keep memory bounded.
    ``symmetric`` (ha is hb): only blocks on and above the diagonal are computed, the
    others mirrored, since |h_a - h_b| = |h_b - h_a|.
    """
    V, A, D = ha.shape
    B = hb.shape[1]
    z = np.zeros((A, B), dtype=np.float64)
    cols = max(1, min(B, 256))
    rows = max(1, BLOCK_ELEMENTS // (cols * D))
    buf = np.empty((rows, cols, D), dtype=np.float32)
    for r in range(0, A, rows):
        for c in range((r // cols) * cols if symmetric else 0, B, cols):
            for v in range(V):
                a, bb = ha[v, r:r + rows, None], hb[v, None, c:c + cols]  # (r, 1, D), (1, c, D)
                d = buf[:a.shape[0], :bb.shape[1]]
                np.subtract(a, bb, out=d)
                np.abs(d, out=d)
                z[r:r + rows, c:c + cols] += d @ alpha  # (r, c)
    z /= V
    z += b
    if symmetric:  # blocks below the diagonal were skipped: copy them from above, in place
        for r in range(rows, A, rows):
            z[r:r + rows, :r] = z[:r, r:r + rows].T
    return z


def class_scores(z: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """z: (Q, S) query-support logits, labels: (S,) class of each support -> (Q, C).

    score[q, c] = mean of z[q, s] over the supports s of class c (a matrix product with
    the one-hot (S, C) matrix divided by the class sizes).
    """
    onehot = one_hot(labels, n_classes)
    return (z @ onehot) / onehot.sum(axis=0)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """labels: (S,) integers in [0, n_classes) -> (S, n_classes) float64, 1 at each label."""
    onehot = np.zeros((len(labels), n_classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    return onehot


def logits(models, xa: np.ndarray, xb: np.ndarray | None = None, views: int = 1) -> np.ndarray:
    """The pair logits of images xa (A, H, W) against xb (B, H, W) -> z (A, B) float64.

    ``models``: one net or several trained apart, whose logits are averaged (an ensemble,
    as :func:`tinysiamese.oneshot.ensemble`). xb None: xa against itself, encoded once and
    only half the pairs joined (z is symmetric).
    """
    models = models if isinstance(models, (list, tuple)) else [models]
    total = None
    for model in models:
        alpha, b = join_params(model)
        ha = encode(model, xa, views)
        hb = ha if xb is None else encode(model, xb, views)
        z = pair_logits(ha, hb, alpha, b, symmetric=xb is None)
        total = z if total is None else total + z
    return total / len(models)


def classify(models, support_images: np.ndarray, labels: np.ndarray, classes: list[str],
             queries: np.ndarray, views: int = 1, top: int = 3) -> list[dict]:
    """Each query's class: the support class of the highest mean logit.

    support_images (S, H, W), labels (S,) into ``classes``; queries (Q, H, W) ->
    [{"class": name, "probability": P(same), "top": [[name, P], ...]}] in query order,
    ``top`` classes best first; ties go to the first class in name order.
    """
    z = logits(models, queries, support_images, views)               # (Q, S)
    scores = class_scores(z, labels, len(classes))                   # (Q, C)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    p = ops.sigmoid(np, scores)                                      # P(same)
    return [{"class": classes[o[0]], "probability": float(p[q, o[0]]),
             "top": [[classes[c], float(p[q, c])] for c in o]}
            for q, o in enumerate(order)]
