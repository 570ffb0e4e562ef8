"""N-way one-shot trials: a test image, N support images, exactly one of its character.

A model answers a trial with the support it scores most similar (see
:func:`tinysiamese.oneshot.evaluate`). Three sources of trials:

* :func:`within_alphabet_trials` - Lake et al.'s protocol on a set of Omniglot characters
  (Koch et al. section 4.3): all N characters come from one alphabet, which is harder than
  mixing alphabets;
* :func:`tinysiamese.lake_runs.load_lake_runs` - Lake's official 20 runs, 400 trials;
* :func:`tinysiamese.mnist.mnist_trials` - 10-way trials on MNIST digits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .characters import CharacterSet
from .pixels import as_float


@dataclass
class Trials:
    """T one-shot trials of N ways each.

    test:     (T, H, W) float32, strokes 1, background 0
    support:  (T, N, H, W) float32; ``support[t, answer[t]]`` is the test's character
    answer:   (T,) int64 in [0, N)
    alphabet: (T) the group each trial is reported under: alphabet, Lake run, or "mnist"
    """

    test: np.ndarray
    support: np.ndarray
    answer: np.ndarray
    alphabet: list[str]

    def __post_init__(self):
        t, n = self.support.shape[:2]
        consistent = (self.test.shape == (t, *self.support.shape[2:])
                      and self.answer.shape == (t,) and len(self.alphabet) == t)
        if not consistent:
            raise ValueError(
                f"inconsistent trials: test {self.test.shape}, support {self.support.shape}, "
                f"answer {self.answer.shape}, {len(self.alphabet)} alphabet labels"
            )
        if t and not ((0 <= self.answer.min()) and (self.answer.max() < n)):
            raise ValueError(f"answers must lie in [0, {n})")

    @property
    def n_trials(self) -> int:
        return self.support.shape[0]

    @property
    def n_way(self) -> int:
        return self.support.shape[1]

    @property
    def size(self) -> int:
        return self.support.shape[-1]


def within_alphabet_trials(subset: CharacterSet, n_way: int = 20, n_trials: int = 400,
                           seed: int = 0) -> Trials:
    """Lake's within-alphabet N-way trials from a set of Omniglot characters.

    Trials come in sets of ``n_way``: pick an alphabet, ``n_way`` of its characters and two
    of the subset's drawers; each character as drawn by the first drawer is a test image,
    matched against all ``n_way`` characters as drawn by the second. Alphabets are taken
    in turn (in a seeded order), so with the paper's test set (10 alphabets, drawers
    17-20) 400 trials are two sets of 20 per alphabet; 320 validation trials give 6
    alphabets two sets and 4 one. A last incomplete set is cut short.
    Deterministic for a given ``seed``.
    """
    if n_way < 2:
        raise ValueError(f"a one-shot trial needs at least 2 ways, not {n_way}")
    if n_trials < 1:
        raise ValueError(f"need at least one trial, not {n_trials}")
    if len(subset.drawers) < 2:
        raise ValueError(
            f"within-alphabet trials need two drawers; the subset has {list(subset.drawers)}"
        )
    counts = np.bincount(subset.alphabet_of, minlength=len(subset.alphabets))
    if counts.min() < n_way:
        smallest = int(counts.argmin())
        raise ValueError(
            f"{n_way}-way trials need {n_way} characters per alphabet, but "
            f"{subset.alphabets[smallest]} has {counts[smallest]}: use at most {counts.min()} ways"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(subset.alphabets))
    tests, supports, answers, names = [], [], [], []
    for s in range(math.ceil(n_trials / n_way)):
        a = int(order[s % len(order)])
        chars = rng.choice(np.flatnonzero(subset.alphabet_of == a), size=n_way, replace=False)
        first, second = rng.choice(len(subset.drawers), size=2, replace=False)
        support = as_float(subset.images[chars, second])                  # (N, H, W)
        tests.append(as_float(subset.images[chars, first]))             # (N, H, W): j tests char j
        supports.append(np.broadcast_to(support, (n_way, *support.shape)))  # (N, N, H, W)
        answers.append(np.arange(n_way))
        names += [subset.alphabets[a]] * n_way
    return Trials(
        test=np.concatenate(tests)[:n_trials],
        support=np.concatenate(supports)[:n_trials],
        answer=np.concatenate(answers)[:n_trials].astype(np.int64),
        alphabet=names[:n_trials],
    )
