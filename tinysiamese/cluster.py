"""Clustering images by the net's answer to "same class?": spectral clustering on a kNN graph.

Input: z (N, N), the symmetric matrix of pair logits (:func:`tinysiamese.similarity.pair_logits`).

1. Graph. Each image keeps its ``neighbours`` most similar others (highest z); a and b are
   joined when either is among the other's, with weight A_ab = exp((z_ab - max z) / T).
   Keeping only near neighbours matters: the net's logits rank a few images well but are
   noisy far away, and a dense affinity lets that noise join clusters (Lake's test
   alphabets, one view: dense exp(z/10), 85.7% with K known; see docs/clustering.md).
2. Spectrum. The normalised affinity L = D^-1/2 A D^-1/2 (D the row sums) has eigenvalue 1
   once for each connected part of the graph, and close to 1 once for each group that is
   nearly cut off from the rest; its top K eigenvectors, rows scaled to unit length,
   put each group near one point (Ng, Jordan & Weiss 2001).
3. K. Given, or estimated as the largest gap lambda_K - lambda_{K+1} between the
   eigenvalues sorted in descending order (K in [2, N / 2]): the count of near-1 values.
4. k-means on the rows of the K eigenvectors (k-means++ starts, ``restarts`` tries, the
   lowest within-cluster sum of squares kept).

Choices (neighbours 10, T = 5, 10 k-means restarts, 8 views) were made on the validation alphabets by
``scripts/cluster_eval.py --alphabets val``; docs/clustering.md has the table.
Memory: z (N x N float64), A (float32) and one float32 eigendecomposition (5,000 images:
200 MB, 100 MB and about 400 MB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import sigmoid
from .similarity import one_hot

NEIGHBOURS = 10
TEMPERATURE = 5.0
RESTARTS = 10  # k-means tries; more find better optima on validation (docs/clustering.md)


@dataclass
class Clustering:
    """labels: (N,) int64, cluster 0 the largest; k: the count; how: one line on how K was
    chosen; eigenvalues: the top eigenvalues of the normalised affinity, descending."""

    labels: np.ndarray
    k: int
    how: str
    eigenvalues: np.ndarray


def knn_affinity(z: np.ndarray, neighbours: int = NEIGHBOURS,
                 temperature: float = TEMPERATURE, block: int = 256) -> np.ndarray:
    """z: (N, N) symmetric logits -> A: (N, N) float32, exp((z - max z) / T) on the edges of
    the symmetric kNN graph (a-b an edge when either is among the other's ``neighbours``
    highest z), 0 elsewhere and on the diagonal.

    The neighbours are found ``block`` rows at a time, so beside z and A only a block of
    rows is ever held: for 5,000 images A is 100 MB, and no N x N temporary is made.
    """
    n = z.shape[0]
    k = min(neighbours, n - 1)
    edge = np.zeros((n, n), dtype=bool)
    top = -np.inf                                                      # max z off the diagonal
    for r in range(0, n, block):
        rows = z[r:r + block].copy()                                   # (b, N)
        rows[np.arange(len(rows)), np.arange(r, r + len(rows))] = -np.inf  # not itself
        near = np.argpartition(-rows, k - 1, axis=1)[:, :k]            # (b, k)
        np.put_along_axis(edge[r:r + block], near, True, axis=1)
        top = max(top, float(rows.max()))
    edge |= edge.T                                                     # either one's neighbour
    a = np.empty((n, n), dtype=np.float32)  # float32 halves the eigensolver's memory
    for r in range(0, n, block):            # exp(-inf) = 0 off the edges
        a[r:r + block] = np.exp((np.where(edge[r:r + block], z[r:r + block], -np.inf) - top)
                                / temperature)
    return a


def spectrum(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A: (N, N) -> eigenvalues (N,) descending and eigenvectors (N, N) (columns) of
    L = D^-1/2 A D^-1/2. Scales ``a`` in place (it becomes L)."""
    scale = 1.0 / np.sqrt(np.maximum(a.sum(axis=1), 1e-300))
    a *= scale[:, None]
    a *= scale[None, :]
    values, vectors = np.linalg.eigh(a)
    return values[::-1], vectors[:, ::-1]


def estimate_k(eigenvalues: np.ndarray) -> int:
    """The K of the largest eigengap lambda_K - lambda_{K+1}, K in [2, N / 2]."""
    n = len(eigenvalues)
    top = max(2, n // 2)
    gaps = eigenvalues[1:top] - eigenvalues[2:top + 1]  # gaps[i] = lambda_{i+2} - lambda_{i+3}
    return int(np.argmax(gaps)) + 2 if len(gaps) else min(2, n)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 5,
           iterations: int = 100) -> np.ndarray:
    """x: (N, F) -> labels (N,) int64 of the best of ``restarts`` runs of Lloyd's k-means.

    Starts by k-means++ (each next centre drawn with probability proportional to the squared
    distance to the nearest one so far); squared distances as |x|^2 - 2 x.c + |c|^2.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    sq = (x * x).sum(axis=1)
    best, best_cost = None, np.inf
    for _ in range(restarts):
        centres = np.empty((k, x.shape[1]))
        centres[0] = x[rng.integers(n)]
        d2 = ((x - centres[0]) ** 2).sum(axis=1)
        for j in range(1, k):
            total = d2.sum()
            centres[j] = x[rng.choice(n, p=d2 / total)] if total > 0 else x[rng.integers(n)]
            d2 = np.minimum(d2, ((x - centres[j]) ** 2).sum(axis=1))
        labels = np.full(n, -1)
        for _ in range(iterations):
            dist = sq[:, None] - 2 * x @ centres.T + (centres * centres).sum(axis=1)[None]
            new = dist.argmin(axis=1)
            if (new == labels).all():
                break
            labels = new
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, x)
            counts = np.bincount(labels, minlength=k)
            filled = counts > 0  # an empty cluster keeps its old centre
            centres[filled] = sums[filled] / counts[filled, None]
        cost = dist[np.arange(n), labels].sum()
        if cost < best_cost:
            best, best_cost = labels, cost
    return best


def by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, ... from the largest down (ties: the first image's first)."""
    _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True,
                                          return_counts=True)
    order = np.lexsort((first, -counts))       # old cluster ids, largest first
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)


def linked_groups(linked: np.ndarray) -> int:
    """linked: (N, N) bool, symmetric -> the number of connected groups (a breadth-first walk)."""
    n, seen, groups = len(linked), np.zeros(len(linked), dtype=bool), 0
    for start in range(n):
        if seen[start]:
            continue
        groups, frontier = groups + 1, np.zeros(n, dtype=bool)
        frontier[start] = True
        while frontier.any():
            seen |= frontier
            frontier = linked[frontier].any(axis=0) & ~seen
    return groups


def cluster(z: np.ndarray, k: int | None = None, neighbours: int = NEIGHBOURS,
            temperature: float = TEMPERATURE, seed: int = 0, restarts: int = RESTARTS) -> Clustering:
    """Spectral clustering of N images from their pair logits z (N, N); see the module
    docstring. ``k``: the number of clusters, or None to estimate it."""
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"clustering needs at least 2 images, not {n}")
    if k is not None and not 1 <= k <= n:
        raise ValueError(f"--k must lie between 1 and the number of images ({n}), not {k}")
    values, vectors = spectrum(knn_affinity(z, neighbours, temperature))
    if k is None and n < 4:  # too few eigenvalues to show a gap: ask the net directly
        k = linked_groups(z > 0)
        how = f"K = {k} estimated: the groups of the {n} images that P(same) > 1/2 links"
    elif k is None:
        k = estimate_k(values)
        how = (f"K = {k} estimated: the largest gap in the spectrum of the similarity graph, "
               f"between eigenvalues {values[k - 1]:.3f} and {values[k]:.3f}")
    else:
        how = f"K = {k} given"
    rows = vectors[:, :k]
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    labels = kmeans(rows, k, np.random.default_rng(seed), restarts)
    return Clustering(by_size(labels), int(len(np.unique(labels))), how, values[:max(k + 1, 2)])


def mean_same_probability(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) each image's mean P(same) = sigmoid(z) with the other members of its cluster
    (NaN for an image alone in its cluster)."""
    p = sigmoid(np, z)
    np.fill_diagonal(p, 0.0)
    onehot = one_hot(labels, labels.max() + 1)
    within = (p @ onehot)[np.arange(len(labels)), labels]
    others = onehot.sum(axis=0)[labels] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(others > 0, within / np.maximum(others, 1), np.nan)
