"""How well a clustering matches the true classes: accuracy (Hungarian), NMI and ARI.

All three compare ``truth`` (N,) and ``pred`` (N,) through their contingency table
C[i, j] = #{images of true class i put in cluster j}; cluster numbers are arbitrary, and
none of the scores depends on them.

* clustering accuracy: the fraction of images right under the best one-to-one match of
  clusters to classes, max over matchings m of sum_i C[i, m(i)] / N, found by the
  Hungarian method (:func:`linear_assignment`) in O(n^2 m);
* NMI: the mutual information I(T; P) over the mean of the entropies (H(T) + H(P)) / 2;
* ARI (Hubert & Arabie 1985): the pairs the two partitions agree on, corrected for chance,
  (sum_ij C(n_ij, 2) - E) / ((sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2 - E) with
  E = sum_i C(a_i, 2) sum_j C(b_j, 2) / C(N, 2); 1 for a perfect match, about 0 for chance.
"""
from __future__ import annotations

import numpy as np


def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one assignment of rows to columns of least total cost.

    cost: (n, m) -> (rows, cols), min(n, m) pairs, rows ascending, minimising
    cost[rows, cols].sum(). The Hungarian method with potentials u (rows) and v (columns):
    rows join one at a time; each finds the shortest augmenting path in the reduced costs
    cost[i, j] - u[i] - v[j] >= 0 (Dijkstra over the columns, ``minv`` the distances) and
    the potentials shift by each step's ``delta`` so that the matched edges stay tight.
    """
    cost = np.asarray(cost, dtype=np.float64)
    flipped = cost.shape[0] > cost.shape[1]
    if flipped:  # the method wants n <= m
        cost = cost.T
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)        # potentials; index 0 is a dummy
    match = np.zeros(m + 1, dtype=np.int64)        # match[j]: the row (1-based) on column j
    way = np.zeros(m + 1, dtype=np.int64)          # the previous column on the shortest path
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            free = ~used[1:]
            reduced = cost[match[j0] - 1] - u[match[j0]] - v[1:]   # (m,)
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[match[used]] += delta   # the rows on the tree keep their edges tight
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if match[j0] == 0:        # a free column: augment along the path
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    cols = np.flatnonzero(match[1:])
    rows = match[1:][cols] - 1
    order = np.argsort(rows)
    rows, cols = rows[order], cols[order]
    return (cols, rows) if flipped else (rows, cols)


def contingency(truth, pred) -> np.ndarray:
    """truth, pred: (N,) any labels -> C (classes, clusters) int64 counts."""
    _, t = np.unique(np.asarray(truth), return_inverse=True)
    _, p = np.unique(np.asarray(pred), return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table


def clustering_accuracy(truth, pred) -> float:
    """The fraction right under the best one-to-one match of clusters to classes."""
    table = contingency(truth, pred)
    rows, cols = linear_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(truth, pred) -> float:
    """I(T; P) / ((H(T) + H(P)) / 2), in [0, 1]; 1 when both put everything in one group."""
    table = contingency(truth, pred).astype(np.float64)
    joint = table / table.sum()
    pt, pp = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(pt, pp)[nz])).sum())
    mean_entropy = (_entropy(table.sum(axis=1)) + _entropy(table.sum(axis=0))) / 2
    return mutual / mean_entropy if mean_entropy > 0 else 1.0


def ari(truth, pred) -> float:
    """The adjusted Rand index: agreement on pairs, 0 expected by chance, 1 at most."""
    table = contingency(truth, pred).astype(np.float64)
    pairs = lambda x: x * (x - 1) / 2  # noqa: E731  C(x, 2), elementwise
    both = pairs(table).sum()
    rows, cols = pairs(table.sum(axis=1)).sum(), pairs(table.sum(axis=0)).sum()
    expected = rows * cols / pairs(table.sum())
    top = (rows + cols) / 2
    return float((both - expected) / (top - expected)) if top != expected else 1.0
