"""Two baselines without learning, scored by the same evaluator as the siamese net.

* 1-nearest neighbour on raw pixels: score = -(Euclidean distance between the images).
  Koch et al. report 21.7% on 20-way Omniglot and 26.5% on 10-way MNIST.
* Lake's Modified Hausdorff Distance (Dubuisson & Jain 1994) between the sets of ink
  pixels, each set first centred on its own centroid as in Lake's demo code:

      MHD(A, B) = max( mean_{a in A} min_{b in B} |a - b|,  mean_{b in B} min_{a in A} |a - b| )

  score = -MHD. Lake's demo reports 38.8% error (61.2% accuracy) on his 20 runs.

Both take ``x1, x2: (M, 1, H, W)`` float images (strokes = 1) and return ``(M,)`` scores,
higher = more similar, as :func:`tinysiamese.oneshot.evaluate` expects.
"""
from __future__ import annotations

import numpy as np

_FAR = 1.0e4  # stands for "no ink in this row": farther than any real pixel


def nn_score(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """(M, 1, H, W) x2 -> (M,) minus the Euclidean distance between raw pixel vectors."""
    diff = x1.reshape(len(x1), -1).astype(np.float32) - x2.reshape(len(x2), -1).astype(np.float32)
    return -np.sqrt(np.einsum("mi,mi->m", diff, diff))


# --------------------------------------------------------------------------------------
# Modified Hausdorff distance: the plain version, then the fast one


def ink_points(image: np.ndarray, center: bool = True) -> np.ndarray:
    """(H, W) image -> (P, 2) float64 (row, col) of its ink pixels (> 0.5), centred if asked."""
    points = np.argwhere(image > 0.5).astype(np.float64)
    if center and len(points):
        points -= points.mean(axis=0)
    return points


def modified_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """MHD between point sets a (P, 2) and b (Q, 2), by brute force (the reference).

    Two empty sets are at distance 0 (two blank images are alike); an empty set is
    infinitely far from a non-empty one.
    """
    if len(a) == 0 or len(b) == 0:
        return 0.0 if len(a) == len(b) else float("inf")
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # (P, Q)
    return float(max(d.min(axis=1).mean(), d.min(axis=0).mean()))


def _row_tables(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, H, W) bool -> the nearest ink column on each side, per row, (M, H, W+1) float32.

    left[m, r, k + 1]:  the last ink column <= k in row r (k = -1 .. W-1), or -FAR
    right[m, r, k + 1]: the first ink column >= k + 1 in row r (k = -1 .. W-1), or +FAR
    """
    m, h, w = ink.shape
    cols = np.arange(w, dtype=np.float32)
    left = np.full((m, h, w + 1), -_FAR, dtype=np.float32)
    left[:, :, 1:] = np.maximum.accumulate(np.where(ink, cols, -_FAR), axis=2)
    right = np.full((m, h, w + 1), _FAR, dtype=np.float32)
    from_right = np.where(ink, cols, _FAR)[:, :, ::-1]  # scan each row right to left
    right[:, :, :w] = np.minimum.accumulate(from_right, axis=2)[:, :, ::-1]
    return left, right


def _mean_nearest(a_ink: np.ndarray, b_ink: np.ndarray, center: bool,
                  max_elements: int) -> np.ndarray:
    """(M, H, W) bool x2 -> (M,) mean over a's ink of the distance to the nearest ink of b.

    For a query point q (real-valued once the sets are centred), the squared distance to
    the nearest ink of b is  min over rows r of  (q_y - r)^2 + (q_x - c_r)^2,  where c_r is
    the ink column of row r closest to q_x - and c_r is one of two table look-ups: the last
    ink at or left of floor(q_x), the first ink right of it. So each point costs H steps
    instead of one step per ink pixel of b (about 10 times fewer on Omniglot).
    """
    m, h, w = a_ink.shape
    left, right = _row_tables(b_ink)
    pair, ys, xs = np.nonzero(a_ink)  # every ink pixel of every a, grouped by pair
    qy, qx = ys.astype(np.float32), xs.astype(np.float32)
    if center:
        shift = _centroids(b_ink) - _centroids(a_ink)  # (M, 2): move a's centroid onto b's
        qy += shift[pair, 0]
        qx += shift[pair, 1]
    rows = np.arange(h, dtype=np.float32)
    row_start = np.arange(h) * (w + 1)             # offset of each row in one flat table
    left, right = left.ravel(), right.ravel()
    dist = np.empty(len(pair), dtype=np.float32)
    step = max(1, max_elements // h)
    for s in range(0, len(pair), step):  # chunks bound the (points, H) temporaries
        y, x = qy[s:s + step, None], qx[s:s + step, None]
        # Column k = floor(x) reads left[.., k + 1] and right[.., k + 1]: one flat index for both.
        col = np.clip(np.floor(x).astype(np.intp) + 1, 0, w)
        index = (pair[s:s + step, None] * (h * (w + 1)) + col) + row_start  # (P, H)
        dx2 = np.minimum((x - left[index]) ** 2, (right[index] - x) ** 2)    # (P, H): per row
        dist[s:s + step] = np.sqrt(((y - rows) ** 2 + dx2).min(axis=1))
    counts = np.bincount(pair, minlength=m)
    sums = np.bincount(pair, weights=dist, minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _centroids(ink: np.ndarray) -> np.ndarray:
    """(M, H, W) bool -> (M, 2) float32 mean (row, col) of the ink; 0 for a blank image."""
    m, h, w = ink.shape
    counts = np.maximum(ink.sum(axis=(1, 2)), 1).astype(np.float32)
    rows = (ink.sum(axis=2) * np.arange(h)).sum(axis=1) / counts
    cols = (ink.sum(axis=1) * np.arange(w)).sum(axis=1) / counts
    return np.stack([rows, cols], axis=1).astype(np.float32)


def hausdorff_score(x1: np.ndarray, x2: np.ndarray, center: bool = True,
                    max_elements: int = 262_144) -> np.ndarray:
    """(M, 1, H, W) x2 -> (M,) minus the modified Hausdorff distance between the ink sets.

    Ink is every pixel > 0.5. Same result as :func:`modified_hausdorff` on
    :func:`ink_points` (up to float32 rounding), vectorised over all pairs; temporaries
    hold at most about ``max_elements`` values. Blank vs blank scores 0, blank vs ink -inf.
    """
    a = x1[:, 0] > 0.5
    b = x2[:, 0] > 0.5
    mhd = np.maximum(_mean_nearest(a, b, center, max_elements),
                     _mean_nearest(b, a, center, max_elements))
    n_a, n_b = a.sum(axis=(1, 2)), b.sum(axis=(1, 2))
    mhd = np.where((n_a == 0) & (n_b == 0), 0.0, np.where((n_a == 0) | (n_b == 0), np.inf, mhd))
    return -mhd
