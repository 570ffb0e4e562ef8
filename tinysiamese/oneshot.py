"""N-way one-shot trials and the evaluator that scores any similarity function on them.

A trial shows one test image and N support images, exactly one of the same character;
a model answers with the support it scores most similar. Three sources of trials:

* :func:`within_alphabet_trials` - Lake et al.'s protocol on an Omniglot subset (Koch et
  al. section 4.3): all N characters come from one alphabet, which is harder than mixing
  alphabets;
* :func:`load_lake_runs` - Lake's official 20 runs (``all_runs.zip``), 400 trials;
* :func:`tinysiamese.mnist.mnist_trials` - 10-way trials on MNIST digits.

:func:`evaluate` takes a ``score(x1, x2)`` function, so the siamese net and the baselines
of :mod:`tinysiamese.baselines` are measured by the same code; :func:`with_views` turns any
such function into the mean over turned and mirrored copies of each pair, and
:func:`ensemble` several of them (nets trained apart) into the mean of their scores.
"""
from __future__ import annotations

import math
import os
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from .omniglot import NATIVE_SIZE, DataError, OmniglotSubset, as_float, decode_png, strokes_to_ink


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


def within_alphabet_trials(subset: OmniglotSubset, n_way: int = 20, n_trials: int = 400,
                           seed: int = 0) -> Trials:
    """Lake's within-alphabet N-way trials from an Omniglot subset.

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


# --------------------------------------------------------------------------------------
# Lake's official 20 runs


def _is_run(name: str) -> bool:
    return re.fullmatch(r"run\d+", name) is not None


@contextmanager
def _open_runs(path: Path):
    """Yield (read, runs): read(relative path) -> bytes; runs = {name: (prefix, labels text)}.

    ``path`` is ``all_runs.zip`` or a folder holding ``runNN/`` (possibly one level down,
    as in ``all_runs/runNN/``). Names in class_labels.txt are relative to the folder
    holding the runs, which ``prefix`` names.
    """
    runs = {}
    if path.is_file():
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{path} is not a readable zip archive ({exc})") from None

        def read(rel: str) -> bytes:
            try:
                return zf.read(rel)
            except KeyError:
                raise DataError(f"{path} has no {rel}, named in its class_labels.txt") from None

        with zf:
            for name in sorted(zf.namelist()):
                p = PurePosixPath(name)  # runNN/class_labels.txt or <folder>/runNN/class_labels.txt
                if p.name == "class_labels.txt" and len(p.parts) <= 3 and _is_run(p.parent.name):
                    prefix = str(p.parent.parent) if len(p.parts) == 3 else ""
                    runs[p.parent.name] = (prefix, zf.read(name).decode())
            _check_found(path, runs)
            yield read, runs
    elif path.is_dir():

        def read(rel: str) -> bytes:
            try:
                return (path / rel).read_bytes()
            except FileNotFoundError:
                raise DataError(
                    f"{path / rel}, named in a class_labels.txt, does not exist"
                ) from None

        candidates = sorted(path.glob("run*/class_labels.txt"))
        candidates += sorted(path.glob("*/run*/class_labels.txt"))
        for labels in candidates:
            if _is_run(labels.parent.name):
                prefix = labels.parent.parent.relative_to(path).as_posix()
                runs[labels.parent.name] = ("" if prefix == "." else prefix, labels.read_text())
        _check_found(path, runs)
        yield read, runs
    else:
        raise FileNotFoundError(
            f"{path} does not exist; pass all_runs.zip or the folder holding run01/ ... run20/"
        )


def _check_found(path: Path, runs: dict) -> None:
    if not runs:
        raise DataError(f"{path} holds no runNN/class_labels.txt; is it Lake's all_runs?")


def _load_run_image(read, rel: str, size: int) -> np.ndarray:
    try:
        strokes = decode_png(read(rel))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read image {rel}: {exc}") from None
    return as_float(strokes_to_ink(strokes[None], size))[0]  # quantised like the training data


def _parse_labels(run: str, text: str) -> list[tuple[str, str]]:
    """A run's class_labels.txt -> [(test image, its correct support image)]."""
    pairs = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(
                f"{run}/class_labels.txt line {i}: expected 'test-image support-image', "
                f"got {line!r}"
            )
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise DataError(f"{run}/class_labels.txt lists no trials")
    if len({support for _, support in pairs}) != len(pairs):
        raise DataError(f"{run}: two test items share a support; each class should appear once")
    return pairs


def load_lake_runs(path: str | os.PathLike, size: int = NATIVE_SIZE) -> Trials:
    """Lake's official one-shot runs -> Trials (20 runs x 20 tests = 400 trials, 20-way).

    Each ``runNN/`` holds ``training/classMM.png`` (the supports, in name order),
    ``test/itemKK.png`` and ``class_labels.txt``, one line per test item:
    ``runNN/test/itemKK.png runNN/training/classMM.png`` (its correct support).
    Images are 105x105 black on white; they come back as strokes = 1, resized to ``size``.
    """
    tests, supports, answers, names = [], [], [], []
    with _open_runs(Path(path)) as (read, runs):
        for run, (prefix, text) in runs.items():
            pairs = _parse_labels(run, text)
            classes = sorted(support for _, support in pairs)
            folder = f"{prefix}/" if prefix else ""
            # (N, H, W): the supports, shared by the run's N trials
            support = np.stack([_load_run_image(read, folder + c, size) for c in classes])
            for item, answer in sorted(pairs):
                tests.append(_load_run_image(read, folder + item, size))
                supports.append(support)
                answers.append(classes.index(answer))
                names.append(run)
    n_ways = {s.shape[0] for s in supports}
    if len(n_ways) != 1:
        raise DataError(f"the runs in {path} have different numbers of ways: {sorted(n_ways)}")
    return Trials(np.stack(tests), np.stack(supports), np.array(answers, dtype=np.int64), names)


# --------------------------------------------------------------------------------------
# The evaluator


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


def _view(x: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
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
            return score(_view(x1, turns, mirrored), _view(x2, turns, mirrored))
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
