"""Training on a user's own image folders: ``class/*.png`` or ``group/class/*.png``.

The folder becomes the same :class:`tinysiamese.train.TrainingData` as Omniglot, so the
trainer, its loaders, checkpoints and validation trials run unchanged:

* a group plays an alphabet's part (its classes give the within-group negatives and the
  validation trials); without groups the whole folder is one group;
* the split is by class, seeded: in each group a seeded shuffle of its classes gives the
  first fifth (rounded up, at least 2) to validation, the rest to training; a group of
  fewer than 4 classes trains only. The rule and its outcome are the first of ``notes``;
* a character set holds an equal number of images of each class (``images`` is
  (n_chars, n_drawers, H, W)): every class keeps as many as the set's smallest class has,
  chosen by the same seed; the images left out are counted in ``notes``;
* validation trials are N-way within a group, N = min(20, the fewest validation classes of
  any group that has them).

Images are read as ``verify`` reads them (:mod:`tinysiamese.folders`) and stored as uint8
ink 0..255 like Omniglot's (:mod:`tinysiamese.pixels`).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from .characters import CharacterSet
from .folders import FolderError, LabelledImages, read_classes
from .pixels import INK
from .train import TrainingData

VAL_SHARE = 0.2   # of each group's classes
MAX_WAYS = 20


def split_rule(seed: int) -> str:
    """The split in one line, as the run's log states it."""
    return (f"classes split by seed {seed}: in each group a fifth of its classes (rounded up, at "
            f"least 2) validate, the rest train; groups of fewer than 4 classes only train")


def split_classes(data: LabelledImages, seed: int) -> tuple[list[int], list[int]]:
    """-> (training class indices, validation class indices), both sorted."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for g in range(len(data.groups)):
        mine = np.flatnonzero(data.group_of == g)
        if len(mine) < 4:
            train += mine.tolist()
            continue
        n_val = max(2, math.ceil(VAL_SHARE * len(mine)))
        order = rng.permutation(mine)
        val += order[:n_val].tolist()
        train += order[n_val:].tolist()
    return sorted(train), sorted(val)


def character_set(data: LabelledImages, classes: list[int], name: str,
                  rng: np.random.Generator) -> tuple[CharacterSet, int]:
    """Classes of ``data`` -> (CharacterSet with n_drawers = the fewest images of any of
    them, each class's images chosen by ``rng`` and kept in file order; images left out)."""
    members = [np.flatnonzero(data.labels == c) for c in classes]
    n = min(len(m) for m in members)
    chosen = np.stack([np.sort(rng.choice(m, size=n, replace=False)) for m in members])
    ink = np.rint(data.images[chosen] * INK).astype(np.uint8)      # (n_chars, n, H, W)
    groups = sorted({int(data.group_of[c]) for c in classes})
    names = [data.groups[g] or data.listing.root.name for g in groups]
    alphabet_of = np.array([groups.index(int(data.group_of[c])) for c in classes], dtype=np.int64)
    chars = [data.classes[c] if data.groups != [""] else f"{names[0]}/{data.classes[c]}"
             for c in classes]
    left_out = sum(len(m) for m in members) - n * len(members)
    return CharacterSet(name, ink, names, chars, alphabet_of, tuple(range(1, n + 1)),
                        source=str(data.listing.root), n_skipped=data.listing.skipped), left_out


def load_folder_data(root, size: int, seed: int = 0) -> TrainingData:
    """A training folder -> TrainingData(train, val, test=None, n_way, notes).

    FolderError (exit 2) when the folder cannot be split: fewer than 4 classes in every
    group, or a layout :func:`tinysiamese.folders.read_classes` refuses.
    """
    data = read_classes(root, size)
    train, val = split_classes(data, seed)
    if not val:
        raise FolderError(f"folder {data.listing.root} cannot be split into training and "
                          f"validation classes: give at least 4 classes in one group (it has "
                          f"{len(data.classes)} in {len(data.groups)} group(s))")
    rng = np.random.default_rng(seed)
    train_set, train_out = character_set(data, train, "folder train", rng)
    val_set, val_out = character_set(data, val, "folder val", rng)
    per_group = np.bincount(val_set.alphabet_of)
    n_way = int(min(MAX_WAYS, per_group[per_group > 0].min()))
    notes = [f"{split_rule(seed)}: {len(train)} classes train ({train_set.images.shape[1]} images "
             f"each), {len(val)} validate ({val_set.images.shape[1]} each) in "
             f"{n_way}-way trials"]
    if train_out + val_out:
        notes.append(f"{train_out + val_out} images left out so that each class of a set has "
                     "as many as its smallest class")
    if data.listing.note():
        notes.append(f"{data.listing.root}: {data.listing.note()}")
    names = sorted(data.classes)
    source = {"kind": "folder", "root": str(Path(root).resolve()), "classes": len(names),
              "names": hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]}
    return TrainingData(train_set, val_set, None, n_way, tuple(notes), source)
