"""Lake's official one-shot runs (``all_runs.zip``): 20 runs of 20 trials, 20-way each.

The runs of Lake, Salakhutdinov & Tenenbaum (2015) are the benchmark the paper reports
(Koch et al., table 2). Each ``runNN/`` holds ``training/classMM.png`` (the supports),
``test/itemKK.png`` and ``class_labels.txt``, which names each test item's correct support.
:func:`load_lake_runs` reads them from the zip or from its unzipped folder (see
:mod:`tinysiamese.archive`) into :class:`tinysiamese.trials.Trials`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import numpy as np

from .archive import DataError, open_tree
from .omniglot import NATIVE_SIZE
from .pixels import as_float, decode_png, strokes_to_ink
from .trials import Trials


def _is_run(name: str) -> bool:
    return re.fullmatch(r"run\d+", name) is not None


def _find_runs(path: Path, members: list[str], read) -> dict[str, tuple[str, str]]:
    """{run name: (prefix, class_labels.txt text)} of ``runNN/class_labels.txt`` members.

    The runs may sit one level down (``all_runs/runNN/``); names in class_labels.txt are
    relative to the folder holding the runs, which ``prefix`` names.
    """
    runs = {}
    for name in sorted(members):
        p = PurePosixPath(name)  # runNN/class_labels.txt or <folder>/runNN/class_labels.txt
        if p.name == "class_labels.txt" and len(p.parts) <= 3 and _is_run(p.parent.name):
            prefix = str(p.parent.parent) if len(p.parts) == 3 else ""
            runs[p.parent.name] = (prefix, read(name).decode())
    if not runs:
        raise DataError(f"{path} holds no runNN/class_labels.txt; is it Lake's all_runs?")
    return runs


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
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass all_runs.zip or the folder holding run01/ ... run20/"
        )
    tests, supports, answers, names = [], [], [], []
    with open_tree(path, max_depth=3) as (members, read):
        for run, (prefix, text) in _find_runs(path, members, read).items():
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


