"""Same/different pairs for training the siamese net, prepared in a background thread.

A *same* pair is one character drawn by two different drawers (label 1); a *different*
pair is two different characters (label 0). Every minibatch holds half of each. To give
every alphabet an equal share, each pair first picks its alphabet uniformly, then its
characters; ``hard_negative_fraction`` of the different pairs take both characters from
that one alphabet, like the within-alphabet one-shot test does (the others pick a second
alphabet uniformly, which is the same one by chance 1 time in n_alphabets).

Distortions (the paper's affine distortions, see :mod:`tinysiamese.distort`), two ways:

* ``distort=True`` (the default, practical): every image of every batch gets a fresh
  random affine distortion - the net never sees the exact same pair twice.
* ``distortions=k`` (the paper's scheme, with ``distort=False``): each drawn pair is
  emitted once as is and k more times with random distortions, so an epoch holds
  ``(k + 1) * pairs_per_epoch`` pairs; the paper uses k = 8.

Every epoch draws new pairs. Everything epoch ``e`` produces depends only on ``(seed, e)``,
so the background thread and resuming at a batch change nothing (see
:mod:`tinysiamese.batches`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batches import EpochBatches
from .distort import apply_affine, check_distortion, random_affine_params
from .pixels import as_float

# Separate random streams: default_rng([seed, stream, ...]). (Trailing zeros do not change
# a numpy seed, so streams differ in their second word, never only in their length.)
_STREAM_PAIRS, _STREAM_ORDER = 1, 3


@dataclass
class _Plan:
    """One epoch, decided before any image is touched; batch b is rows [b*B, (b+1)*B).

    char1, drawer1, char2, drawer2: (n,) int64, drawer as an index into the subset's drawers
    same:   (n,) float32, 1 = same character
    warp1, warp2: (n, 2, 3) inverse affine maps, or None when nothing is distorted
    warped: (n,) bool, which rows to distort
    """

    char1: np.ndarray
    drawer1: np.ndarray
    char2: np.ndarray
    drawer2: np.ndarray
    same: np.ndarray
    warp1: np.ndarray | None
    warp2: np.ndarray | None
    warped: np.ndarray | None


class PairLoader(EpochBatches):
    """Minibatches ``(x1, x2, y)`` of pairs from a CharacterSet.

    x1, x2: (B, 1, H, W) arrays of ``backend`` in its float dtype, strokes 1
    y:      (B,) same dtype, 1 = same character, 0 = different; the first B/2 are same

    subset: a CharacterSet (``tinysiamese.characters``): ``images (n_chars, n_drawers, H, W)``
            uint8 and ``alphabet_of (n_chars,)``
    An epoch is ``(1 + distortions) * pairs_per_epoch // batch_size`` batches; the
    remainder of the last incomplete batch is dropped. ``iter(loader)`` runs the next
    epoch; :meth:`iter_epoch` runs a given one. ``prefetch`` batches are prepared ahead in
    a background thread (0: prepare them in the caller's thread). ``distort_p`` and
    ``distort_strength``: each distortion component's chance and a factor on its range
    (the paper's: 0.5 and 1; see :func:`tinysiamese.distort.draw_distortions`).
    """

    def __init__(self, subset, backend, *, batch_size: int = 128, pairs_per_epoch: int = 30_000,
                 distort: bool = True, distortions: int = 0, hard_negative_fraction: float = 0.0,
                 distort_p: float = 0.5, distort_strength: float = 1.0, seed: int = 0,
                 prefetch: int = 2):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(
                f"batch_size must be even (half same, half different pairs), not {batch_size}"
            )
        if distortions < 0:
            raise ValueError(f"distortions must be 0 or more, not {distortions}")
        if distort and distortions:
            raise ValueError(
                "choose distort=True (a fresh distortion of every image) or distortions=k "
                "(k distorted copies of each pair, the paper's scheme), not both"
            )
        if not 0.0 <= hard_negative_fraction <= 1.0:
            raise ValueError(
                f"hard_negative_fraction must lie in [0, 1], not {hard_negative_fraction}"
            )
        check_distortion(distort_p, distort_strength)
        super().__init__(backend, seed, prefetch)
        images = subset.images
        if images.ndim != 4 or images.shape[1] < 2:
            raise ValueError(f"need images (n_chars, n_drawers >= 2, H, W), got {images.shape}")
        counts = np.bincount(subset.alphabet_of)
        if counts[counts > 0].min() < 2:
            raise ValueError("every alphabet needs at least two characters to form different pairs")
        self.subset = subset
        self.batch_size = batch_size
        self.pairs_per_epoch = pairs_per_epoch
        self.distort = distort
        self.distortions = distortions
        self.hard_negative_fraction = hard_negative_fraction
        self.distort_p, self.distort_strength = distort_p, distort_strength
        if len(self) < 1:
            raise ValueError(
                f"pairs_per_epoch {pairs_per_epoch} gives no full batch of {batch_size}"
            )
        # The characters grouped by alphabet in one flat array, plus where each group starts:
        # "a random character of alphabet a" for many pairs at once is one vectorised lookup.
        n_chars = len(subset.alphabet_of)
        self._alphabets = np.flatnonzero(counts)                           # non-empty alphabets
        self._by_alphabet = np.argsort(subset.alphabet_of, kind="stable")  # (n_chars,)
        self._start = np.cumsum(counts) - counts                           # (n_alphabets,)
        self._count = counts
        position = np.empty(n_chars, dtype=np.int64)
        position[self._by_alphabet] = np.arange(n_chars)
        self._rank = position - self._start[subset.alphabet_of]  # place in its alphabet's group

    def __len__(self) -> int:
        """Batches per epoch."""
        return (1 + self.distortions) * self.pairs_per_epoch // self.batch_size

    # ----------------------------------------------------------------------------------
    # Planning an epoch: which pairs, which distortions, in which order

    def _pick_characters(self, rng, alphabet, n):
        """A uniform character of each given alphabet -> (n,) character indices."""
        j = rng.integers(0, self._count[alphabet], size=n)
        return self._by_alphabet[self._start[alphabet] + j]

    def _draw_pairs(self, rng, n_same, n_diff):
        n_drawers = self.subset.images.shape[1]
        # Same: one character, two different drawers.
        alphabet = rng.choice(self._alphabets, size=n_same)
        char = self._pick_characters(rng, alphabet, n_same)
        d1 = rng.integers(0, n_drawers, size=n_same)
        d2 = rng.integers(0, n_drawers - 1, size=n_same)
        d2 += d2 >= d1  # skip d1: uniform over the other drawers
        same = (char, d1, char, d2)
        # Different: two characters, any drawers; hard ones share the first one's alphabet.
        a1 = rng.choice(self._alphabets, size=n_diff)
        c1 = self._pick_characters(rng, a1, n_diff)
        hard = rng.random(n_diff) < self.hard_negative_fraction
        a2 = np.where(hard, a1, rng.choice(self._alphabets, size=n_diff))
        shared = a2 == a1
        j = rng.integers(0, self._count[a2] - shared, size=n_diff)
        j += shared & (j >= self._rank[c1])  # within one alphabet, skip c1 itself
        c2 = self._by_alphabet[self._start[a2] + j]
        d1, d2 = rng.integers(0, n_drawers, size=(2, n_diff))
        diff = (c1, d1, c2, d2)
        return same, diff

    def _plan(self, epoch: int) -> _Plan:
        size = self.subset.images.shape[-1]
        pair_rng = np.random.default_rng([self.seed, _STREAM_PAIRS, epoch])
        order_rng = np.random.default_rng([self.seed, _STREAM_ORDER, epoch])
        half = self.batch_size // 2
        n_batches = len(self)
        copies = 1 + self.distortions
        # Enough pairs of each kind to fill the epoch's batches once copied (a few more when
        # the numbers do not divide: the shuffle below then leaves the spare ones out).
        n_each = -(-n_batches * half // copies)
        same, diff = self._draw_pairs(pair_rng, n_each, n_each)

        def warps(rng, n):
            """The random distortions of both images of ``n`` pairs: two (n, 2, 3) maps."""
            return tuple(random_affine_params(rng, n, size, self.distort_p, self.distort_strength)
                         for _ in range(2))

        def expand(pairs):
            """Emit each pair `copies` times (copy 0 as is), shuffle, keep what fills batches."""
            n = len(pairs[0])
            cols = [np.repeat(a, copies) for a in pairs]                 # (n * copies,)
            warped = np.tile(np.arange(copies) > 0, n)
            if self.distortions:  # the paper's copies: drawn with the pairs, fixed with them
                w1, w2 = warps(pair_rng, n * copies)
            keep = order_rng.permutation(n * copies)[: n_batches * half]
            cols = [c[keep] for c in cols]
            if self.distortions:
                return cols, w1[keep], w2[keep], warped[keep]
            if self.distort:
                w1, w2 = warps(order_rng, len(keep))
                return cols, w1, w2, np.ones(len(keep), dtype=bool)
            return cols, None, None, None

        s_cols, s_w1, s_w2, s_warped = expand(same)
        d_cols, d_w1, d_w2, d_warped = expand(diff)

        def interleave(a, b):
            """Batch b = `half` same rows then `half` different rows."""
            if a is None:
                return None
            a = a.reshape(n_batches, half, *a.shape[1:])
            b = b.reshape(n_batches, half, *b.shape[1:])
            return np.concatenate([a, b], axis=1).reshape(n_batches * 2 * half, *a.shape[2:])

        label = np.concatenate([np.ones(half, np.float32), np.zeros(half, np.float32)])
        return _Plan(
            *(interleave(s, d) for s, d in zip(s_cols, d_cols)),
            same=np.tile(label, n_batches),
            warp1=interleave(s_w1, d_w1),
            warp2=interleave(s_w2, d_w2),
            warped=interleave(s_warped, d_warped),
        )

    def _make_batch(self, plan: _Plan, b: int):
        """Batch ``b`` of the plan as host arrays: x1, x2 (B, 1, H, W) float32, y (B,)."""
        rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
        images = self.subset.images
        out = []
        sides = ((plan.char1, plan.drawer1, plan.warp1), (plan.char2, plan.drawer2, plan.warp2))
        for char, drawer, warp in sides:
            x = as_float(images[char[rows], drawer[rows]])  # (B, H, W)
            if warp is not None:
                mask = plan.warped[rows]
                if mask.any():
                    x[mask] = apply_affine(x[mask], warp[rows][mask])
            out.append(x[:, None])  # (B, 1, H, W)
        return out[0], out[1], plan.same[rows]
