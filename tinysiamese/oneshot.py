"""Scoring any similarity function on one-shot trials: one evaluator for every model.

:func:`evaluate` takes a ``score(x1, x2)`` function and :class:`tinysiamese.trials.Trials`,
so the siamese net and the baselines of :mod:`tinysiamese.baselines` are measured by the
same code; :func:`with_views` turns any such function into the mean over turned and
mirrored copies of each pair, and :func:`ensemble` several of them (nets trained apart)
into the mean of their scores. :func:`wilson_interval` says how far 400 trials pin the
accuracy down. :func:`model_score` is the siamese net's score: each distinct image encoded
once, the join per pair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .trials import Trials


VIEW_COUNTS = (1, 2, 4, 8)


def pair_views(views: int) -> list[tuple[int, bool]]:
    """The copies of a pair that ``views`` looks at: [(quarter turns, mirrored)].

    1: the pair as drawn (the paper); 2: as drawn and mirrored; 4: its four quarter turns;
    8: the four turns of the pair and of its mirror image.
    """
    if views not in VIEW_COUNTS:
        raise ValueError(f"views must be one of {', '.join(map(str, VIEW_COUNTS))}, not {views}")
    turns = range(4) if views >= 4 else range(1)
    mirrors = (False, True) if views in (2, 8) else (False,)
    return [(k, m) for m in mirrors for k in turns]


def posed_view(x: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """x (M, 1, H, H), mirrored left to right, then turned ``turns`` quarter turns."""
    if mirrored:
        x = x[..., ::-1]
    return np.ascontiguousarray(np.rot90(x, turns, axes=(-2, -1)))


def with_views(score: Callable[[np.ndarray, np.ndarray], np.ndarray],
               views: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``score`` averaged over ``views`` copies of each pair (see :func:`pair_views`).

    Both images of a pair are turned (or mirrored) alike, which keeps a same pair same and
    a different pair different, so every copy asks the model the same question in another
    pose. For a net trained on turned characters as new classes, each pose is a view it
    has learnt to judge, and the mean over them is an ensemble that costs no training.
    x1, x2: (M, 1, H, H) -> (M,) float64, the mean of ``score`` over the copies.
    """
    copies = pair_views(views)
    if views == 1:
        return score

    def posed(turns, mirrored):
        def score_posed(x1, x2):
            height, width = x1.shape[-2:]
            if height != width:
                raise ValueError(f"turned views need square images, not {height}x{width}")
            return score(posed_view(x1, turns, mirrored), posed_view(x2, turns, mirrored))
        return score_posed

    return ensemble([posed(turns, mirrored) for turns, mirrored in copies])


def ensemble(scores: Sequence[Callable[[np.ndarray, np.ndarray], np.ndarray]]
             ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The mean of several scorers' logits for each pair: nets trained apart as one.

    Two runs of one preset with different seeds reach about the same accuracy but do not
    make all the same mistakes, so the mean of their logits is often right where one of
    them is wrong (though for the small preset, 8 views of each pair already give that
    gain: tuning round 16). Averaging logits (not probabilities) keeps it the same kind of
    score as one net's, and commutes with :func:`with_views`, which is the ensemble of one
    scorer's poses. x1, x2: (M, 1, H, W) -> (M,) float64.
    """
    scores = list(scores)
    if not scores:
        raise ValueError("an ensemble needs at least one scorer")
    if len(scores) == 1:
        return scores[0]

    def averaged(x1, x2):
        total = np.zeros(x1.shape[0])
        for score in scores:
            total += np.asarray(score(x1, x2), dtype=np.float64).reshape(-1)
        return total / len(scores)

    return averaged


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``correct / n``.

    Unlike the normal approximation p +- z sqrt(p(1-p)/n), it stays inside [0, 1] and
    does not collapse to a point at 0% or 100% - which matters for 400 trials at 95%.
    """
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class OneShotResult:
    """Accuracy over T trials.

    accuracy:     fraction correct, in [0, 1]
    ci95:         (low, high) 95% Wilson interval of the accuracy
    per_alphabet: {group: {"accuracy": float, "trials": int}}
    predicted:    (T,) int64, the support each trial chose
    """

    accuracy: float
    ci95: tuple[float, float]
    n_trials: int
    n_correct: int
    n_way: int
    per_alphabet: dict
    predicted: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-trial predictions)."""
        return {
            "accuracy": self.accuracy,
            "ci95": list(self.ci95),
            "trials": self.n_trials,
            "correct": self.n_correct,
            "ways": self.n_way,
            "per_alphabet": self.per_alphabet,
        }


def evaluate(score: Callable[[np.ndarray, np.ndarray], np.ndarray], trials: Trials,
             batch_size: int = 1024) -> OneShotResult:
    """Run every trial through ``score`` and count how often the right support wins.

    score(x1, x2): x1, x2 (M, 1, H, W) float32 NumPy -> (M,) scores, higher = more similar.
    Each trial's test image is paired with each of its N supports; pairs of several trials
    go to ``score`` together, about ``batch_size`` pairs per call. Ties go to the first
    support with the top score (argmax), so a constant score is right 1/N of the time.
    """
    t_total, n_way = trials.n_trials, trials.n_way
    if t_total == 0:
        raise ValueError("no trials to evaluate")
    h, w = trials.test.shape[1:]
    per_call = max(1, batch_size // n_way)  # trials per call
    scores = np.empty((t_total, n_way), dtype=np.float64)
    for start in range(0, t_total, per_call):
        stop = min(start + per_call, t_total)
        x1 = np.repeat(trials.test[start:stop], n_way, axis=0)[:, None]           # (t*N, 1, H, W)
        x2 = np.ascontiguousarray(trials.support[start:stop]).reshape(-1, 1, h, w)  # (t*N, 1, H, W)
        s = np.asarray(score(x1.astype(np.float32, copy=False), x2.astype(np.float32, copy=False)),
                       dtype=np.float64).reshape(-1)
        if s.shape[0] != x1.shape[0]:
            raise ValueError(f"score returned {s.shape[0]} values for {x1.shape[0]} pairs")
        if np.isnan(s).any():
            raise ValueError("score returned NaN; a diverged model cannot be evaluated")
        scores[start:stop] = s.reshape(stop - start, n_way)
    predicted = scores.argmax(axis=1)
    right = predicted == trials.answer
    per_alphabet = {}
    labels = np.array(trials.alphabet)
    for name in dict.fromkeys(trials.alphabet):  # first-seen order
        mine = labels == name
        per_alphabet[name] = {"accuracy": float(right[mine].mean()), "trials": int(mine.sum())}
    n_correct = int(right.sum())
    return OneShotResult(
        accuracy=n_correct / t_total,
        ci95=wilson_interval(n_correct, t_total),
        n_trials=t_total,
        n_correct=n_correct,
        n_way=n_way,
        per_alphabet=per_alphabet,
        predicted=predicted,
    )


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rows (M, D) -> (first, which): rows[first] are the distinct rows in order of first
    appearance, and rows == rows[first][which]. Hashes each row's bytes: for image-sized
    rows this is ~50x faster than ``np.unique(rows, axis=0)``, which sorts them."""
    seen, first = {}, []
    which = np.empty(len(rows), dtype=np.intp)
    for i, row in enumerate(rows):
        which[i] = seen.setdefault(row.tobytes(), len(seen))
        if which[i] == len(first):
            first.append(i)
    return np.array(first, dtype=np.intp), which


def model_score(model, batch_size: int = 512):
    """A ``score(x1, x2)`` function for :func:`oneshot.evaluate`: the model's logits.

    x1, x2: (M, 1, H, W) host float32 -> (M,) host float64.
    Each distinct image is encoded once, ``batch_size`` images per encoder call, and only
    the cheap join runs per pair: in one-shot trials a test image meets all N supports and
    N trials share one set of supports, so the 2M images of M pairs hold only about M/8
    distinct ones, and scoring trials costs a small fraction of encoding every pair.
    """
    backend = model.backend

    def score(x1, x2):
        m = x1.shape[0]
        flat = np.concatenate([x1, x2]).reshape(2 * m, -1)
        first, which = distinct_rows(flat)
        distinct = flat[first]
        which = backend.xp.asarray(which)  # integer indices, on the device
        h = backend.xp.concatenate([
            model.encode(backend.asarray(distinct[s:s + batch_size].reshape(-1, *x1.shape[1:])))
            for s in range(0, len(distinct), batch_size)])                 # (distinct, dense)
        z = model.join.forward(h[which[:m]], h[which[m:]])
        return backend.to_numpy(z).astype(np.float64)

    return score
