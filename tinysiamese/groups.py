"""Group batches: every pair among a few characters' drawings, from one encoder pass.

The paper trains on independent pairs: a batch of B pairs runs 2B images through the
encoder, and each image serves one pair. A *group batch* instead draws ``alphabets``
alphabets, ``characters`` characters of each and ``drawers`` drawings of each character
(4 x 4 x 4 = 64 images), and the loss takes **every pair** among them: 64 images hold
2,016 pairs, 96 of them same pairs (two drawings of one character) and 384 different
pairs within one alphabet (the hard negatives of the within-alphabet test). The encoder,
which is nearly all the cost, runs once per image; only the cheap join runs per pair
(``SiameseNet.forward_pair_logits``). The loss is the paper's, the binary cross-entropy of
each pair, with the same pairs and the different pairs each given half of the weight:
they are 1 in 21 of the pairs, and an unweighted mean would teach the net mostly to say
"different". ``{"group": {"one_shot_weight": w}}`` adds ``w`` times a one-shot softmax over
the same pairs (``losses.one_shot_softmax``, in ``train.group_step``).

Every image gets a fresh random affine distortion (the paper's, see
:mod:`tinysiamese.distort`). Like :class:`~tinysiamese.pairs.PairLoader`, everything epoch
``e`` produces depends only on ``(seed, e)``, so the background thread and resuming at a
batch change nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batches import EpochBatches
from .distort import apply_affine, check_distortion, random_affine_params
from .pixels import as_float

MAX_IMAGES = 512  # a batch's images: 130,816 pairs
_STREAM_GROUPS = 4  # a random stream of its own (pairs.py uses 1 and 3)


def pairs_within(labels, same_weight: float = 0.5, alphabets=None, hard_weight=None):
    """Every pair (i < j) of a batch's images, labelled and weighted.

    labels: (B,) the character of each image ->
      first, second: (P,) int64 image indices, P = B (B - 1) / 2
      same:          (P,) float32, 1 where both images show one character
      weight:        (P,) float32, summing to 1: ``same_weight`` shared equally by the same
                     pairs, the rest by the different ones
    With ``alphabets`` ((B,) the alphabet of each image) and ``hard_weight``, the different
    pairs' share is split: ``hard_weight`` of it goes to the different pairs within one
    alphabet (the within-alphabet test's kind), the rest to the others, equally within each.
    Without them every different pair weighs the same (in a 4 x 4 x 4 batch the 384 within
    one alphabet then hold 384 / 1,920 = 0.2 of the different pairs' share).
    """
    labels = np.asarray(labels)
    first, second = np.triu_indices(len(labels), k=1)
    same = labels[first] == labels[second]
    n_same = int(same.sum())
    if n_same == 0 or n_same == len(same):
        raise ValueError("a group batch needs both same and different pairs: at least two "
                         "drawings of a character and at least two characters")
    weight = np.where(same, same_weight / n_same, (1.0 - same_weight) / (len(same) - n_same))
    if hard_weight is not None:
        if alphabets is None:
            raise ValueError("hard_weight needs the alphabet of each image (alphabets)")
        alphabets = np.asarray(alphabets)
        hard = ~same & (alphabets[first] == alphabets[second])
        easy = ~same & ~hard
        if not hard.any() or not easy.any():
            raise ValueError("hard_weight needs different pairs both within one alphabet and "
                             "across alphabets: at least two alphabets of two characters each")
        weight = np.where(hard, (1.0 - same_weight) * hard_weight / hard.sum(), weight)
        weight = np.where(easy, (1.0 - same_weight) * (1.0 - hard_weight) / easy.sum(), weight)
    return first, second, same.astype(np.float32), weight.astype(np.float32)


@dataclass
class _Plan:
    """One epoch of group batches, decided before any image is touched.

    char, drawer: (n_batches, B) int64, image k of batch b is drawing ``drawer[b, k]``
                  (an index into the subset's drawers) of character ``char[b, k]``
    warp:         (n_batches, B, 2, 3) inverse affine maps
    """

    char: np.ndarray
    drawer: np.ndarray
    warp: np.ndarray


def _first_k(rng, n_rows: int, sizes: np.ndarray, k: int) -> np.ndarray:
    """k distinct values of range(sizes[r]) for each row r, uniformly -> (n_rows, k).

    The k smallest of sizes[r] random keys are a uniform k-subset; keys past a row's size
    are made infinite so that they never come first.
    """
    keys = rng.random((n_rows, int(sizes.max())))
    keys[np.arange(keys.shape[1]) >= sizes[:, None]] = np.inf
    return np.argsort(keys, axis=1)[:, :k]


class GroupLoader(EpochBatches):
    """Group batches ``(x, first, second, same, weight)`` from a CharacterSet.

    x: (B, 1, H, W) in the backend's float dtype, strokes 1, B = alphabets * characters *
       drawers, ordered alphabet by alphabet, character by character
    first, second, same, weight: (P,) the pairs among them, as :func:`pairs_within` gives
       them (the same for every batch, since the layout is)

    subset: a CharacterSet with ``images (n_chars, n_drawers, H, W)`` uint8 and
    ``alphabet_of (n_chars,)``. Alphabets are drawn uniformly (without replacement within a
    batch), then characters and drawers uniformly without replacement, so every alphabet
    needs at least ``characters`` characters and every character ``drawers`` drawings.
    ``distort_p`` and ``distort_strength``: each distortion component's chance and a factor
    on its range (the paper's: 0.5 and 1; see :func:`tinysiamese.distort.draw_distortions`).
    """

    def __init__(self, subset, backend, *, alphabets: int = 4, characters: int = 4,
                 drawers: int = 4, batches_per_epoch: int = 720, same_weight: float = 0.5,
                 hard_weight: float | None = None, distort_p: float = 0.5,
                 distort_strength: float = 1.0, seed: int = 0, prefetch: int = 2):
        images = subset.images
        n_drawers = images.shape[1] if images.ndim == 4 else 0
        counts = np.bincount(subset.alphabet_of)
        counts = counts[counts > 0]
        if images.ndim != 4:
            raise ValueError(f"need images (n_chars, n_drawers, H, W), got {images.shape}")
        if not 1 <= alphabets <= len(counts):
            raise ValueError(f"group alphabets must be 1 to {len(counts)} (the training set "
                             f"has {len(counts)} alphabets), not {alphabets}")
        if not 1 <= characters <= counts.min() or alphabets * characters < 2:
            raise ValueError(f"group characters must be 1 to {counts.min()} (its smallest "
                             f"alphabet has {counts.min()}) and at least 2 in a batch, not "
                             f"{characters} of {alphabets} alphabet(s)")
        if not 2 <= drawers <= n_drawers:
            raise ValueError(f"group drawers must be 2 to {n_drawers} (same pairs need two "
                             f"drawings of a character; it has {n_drawers} drawers), not {drawers}")
        if batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be 1 or more, not {batches_per_epoch}")
        m = alphabets * characters * drawers
        if m > MAX_IMAGES:  # the join's (pairs, dense) arrays grow with m^2: 512 -> 0.5 GB each
            raise ValueError(f"a group batch of {m} images ({alphabets} x {characters} x "
                             f"{drawers}) holds {m * (m - 1) // 2:,} pairs, more than memory "
                             f"allows; give group sizes of at most {MAX_IMAGES} images")
        if not 0.0 < same_weight < 1.0:
            raise ValueError(f"same_weight must lie strictly between 0 and 1, not {same_weight}")
        if hard_weight is not None and not 0.0 < hard_weight < 1.0:
            raise ValueError(f"hard_weight must lie strictly between 0 and 1, not {hard_weight}")
        check_distortion(distort_p, distort_strength)
        super().__init__(backend, seed, prefetch)
        self.subset = subset
        self.distort_p, self.distort_strength = distort_p, distort_strength
        self.alphabets, self.characters, self.drawers = alphabets, characters, drawers
        self.batch_size = alphabets * characters * drawers  # images per batch
        self.batches_per_epoch = batches_per_epoch
        # The characters grouped by alphabet, and where each alphabet's group starts.
        self._by_alphabet = np.argsort(subset.alphabet_of, kind="stable")
        self._count = counts
        self._start = np.cumsum(counts) - counts
        layout = np.repeat(np.arange(alphabets * characters), drawers)  # which character slot
        self.pairs = pairs_within(layout, same_weight, layout // characters, hard_weight)
        self.pairs_per_batch = len(self.pairs[0])

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.batches_per_epoch

    def _plan(self, epoch: int) -> _Plan:
        rng = np.random.default_rng([self.seed, _STREAM_GROUPS, epoch])
        n, A, C, D = len(self), self.alphabets, self.characters, self.drawers
        n_alphabets = len(self._count)
        alphabet = _first_k(rng, n, np.full(n, n_alphabets), A).reshape(n * A)
        rank = _first_k(rng, n * A, self._count[alphabet], C)                # (n*A, C)
        char = self._by_alphabet[self._start[alphabet][:, None] + rank]      # (n*A, C)
        n_drawers = self.subset.images.shape[1]
        drawer = _first_k(rng, n * A * C, np.full(n * A * C, n_drawers), D)  # (n*A*C, D)
        size = self.subset.images.shape[-1]
        return _Plan(char=np.repeat(char.reshape(n, A * C), D, axis=1),
                     drawer=drawer.reshape(n, A * C * D),
                     warp=random_affine_params(rng, n * self.batch_size, size,
                                               self.distort_p, self.distort_strength)
                     .reshape(n, self.batch_size, 2, 3))

    def _make_batch(self, plan: _Plan, b: int):
        """Batch ``b`` of the plan as host arrays: x (B, 1, H, W) float32 and the pairs."""
        x = as_float(self.subset.images[plan.char[b], plan.drawer[b]])  # (B, H, W)
        return (apply_affine(x, plan.warp[b])[:, None], *self.pairs)

    def _to_backend(self, batch):
        x, first, second, same, weight = batch
        xp = self.backend.xp
        return (self.backend.asarray(x), xp.asarray(first), xp.asarray(second),
                self.backend.asarray(same), self.backend.asarray(weight))
