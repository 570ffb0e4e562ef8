"""A set of characters, each drawn by the same drawers, and the ways to cut and grow one.

:class:`CharacterSet` is what every data module passes around: a whole Omniglot archive
(as :func:`tinysiamese.omniglot.load_split` reads it), the paper's training, validation or
test set cut from one (:func:`paper_split`), or a training set grown by turned and mirrored
copies (:func:`with_rotations`, :func:`with_mirrors`). All of them are one array
``images: (n_chars, n_drawers, H, W)`` uint8 ink (see :mod:`tinysiamese.pixels`) and the
names of its rows.

The paper's train / validation / test split is data, not code: see ``PAPER_SPLITS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .archive import DataError


@dataclass
class CharacterSet:
    """Characters drawn by the same drawers.

    name:        what the set is: "background", "train", "train x4 rotations", ...
    images:      (n_chars, n_drawers, H, W) uint8, ink 0..255; ``images[c, j]`` is
                 character ``c`` drawn by drawer ``drawers[j]``
    alphabets:   the alphabet names, in the archive's (sorted) order
    characters:  (n_chars) names "Alphabet/characterNN", sorted by alphabet then character
    alphabet_of: (n_chars,) int64, index into ``alphabets``
    drawers:     the drawers kept, 1-based: (1, ..., 20) for a whole archive, (1, ..., 12)
                 for the paper's training set
    source:      the zip or folder the images came from ("" when made in memory)
    n_skipped:   images of the archive skipped as unreadable (``on_bad_image="skip"``)
    dropped:     characters left out because a skipped image cost them a drawer
    """

    name: str
    images: np.ndarray
    alphabets: list[str]
    characters: list[str]
    alphabet_of: np.ndarray
    drawers: tuple[int, ...]
    source: str = ""
    n_skipped: int = 0
    dropped: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def n_images(self) -> int:
        return self.images.shape[0] * self.images.shape[1]


def subset(data: CharacterSet, alphabets: tuple[str, ...] | list[str] | None,
           drawers: tuple[int, ...] | list[int], name: str = "subset") -> CharacterSet:
    """Keep the characters of ``alphabets`` (None: all) as drawn by ``drawers`` (1-based)."""
    drawers = tuple(int(d) for d in drawers)
    if not drawers or len(set(drawers)) != len(drawers) or not set(drawers) <= set(data.drawers):
        lo, hi = min(data.drawers), max(data.drawers)
        among = (f"from {lo} to {hi}" if data.drawers == tuple(range(lo, hi + 1))
                 else f"among {', '.join(map(str, data.drawers))}")
        raise ValueError(f"drawers must be distinct numbers {among}, not {drawers}")
    wanted = list(data.alphabets) if alphabets is None else list(alphabets)
    missing = [a for a in wanted if a not in data.alphabets]
    if missing:
        raise DataError(
            f"the {data.name} split ({data.source}) lacks alphabet(s) {', '.join(missing)}; "
            "is it the complete archive?"
        )
    wanted = [a for a in data.alphabets if a in wanted]  # keep the set's order
    old_index = [data.alphabets.index(a) for a in wanted]
    rows = np.flatnonzero(np.isin(data.alphabet_of, old_index))
    remap = {old: new for new, old in enumerate(old_index)}
    columns = [data.drawers.index(d) for d in drawers]
    return replace(
        data,
        name=name,
        images=data.images[rows][:, columns],  # (n_chars, n_drawers, H, W)
        alphabets=wanted,
        characters=[data.characters[r] for r in rows],
        alphabet_of=np.array([remap[int(a)] for a in data.alphabet_of[rows]], dtype=np.int64),
        drawers=drawers,
        dropped=list(data.dropped),
    )


# --------------------------------------------------------------------------------------
# The paper's sets


@dataclass(frozen=True)
class SplitSpec:
    """Which alphabets and drawers of which archive make up one of the paper's sets."""

    archive: str                       # "background" or "evaluation"
    alphabets: tuple[str, ...] | None  # None: every alphabet of the archive
    drawers: tuple[int, ...]           # 1-based


# Koch et al. (2015), section 4.1: train on the 30 background alphabets with 12 of the 20
# drawers; validate on 10 evaluation alphabets with 4 other drawers; test on the other 10
# evaluation alphabets - the ones Lake et al. used for their within-alphabet one-shot
# task - with the last 4 drawers. No (alphabet, drawer) pair is shared between the sets.
VAL_ALPHABETS = (
    "Angelic", "Atemayar_Qelisayer", "Aurek-Besh", "Avesta", "Keble",
    "Mongolian", "Oriya", "Sylheti", "Syriac_(Serto)", "ULOG",
)
TEST_ALPHABETS = (
    "Atlantean", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada",
    "Malayalam", "Manipuri", "Old_Church_Slavonic_(Cyrillic)", "Tengwar", "Tibetan",
)
PAPER_SPLITS = {
    "train": SplitSpec("background", None, tuple(range(1, 13))),
    "val": SplitSpec("evaluation", VAL_ALPHABETS, (13, 14, 15, 16)),
    "test": SplitSpec("evaluation", TEST_ALPHABETS, (17, 18, 19, 20)),
}


def check_paper_set(which: str) -> SplitSpec:
    """The spec of the paper's set ``which``; ValueError naming the choices otherwise."""
    if which not in PAPER_SPLITS:
        raise ValueError(f"unknown set {which!r}: choose one of {', '.join(PAPER_SPLITS)}")
    return PAPER_SPLITS[which]


def paper_split(data: CharacterSet, which: str) -> CharacterSet:
    """The paper's "train", "val" or "test" set, cut from the archive it comes from.

    "train" needs the background archive, "val" and "test" the evaluation archive.
    """
    spec = check_paper_set(which)
    if not data.name.startswith(spec.archive):
        raise ValueError(
            f"the paper's {which!r} set comes from the {spec.archive} split, not {data.name}"
        )
    return subset(data, spec.alphabets, spec.drawers, name=which)


def skipped_note(data: CharacterSet) -> str | None:
    """One line on what ``on_bad_image="skip"`` left out of ``data``'s archive (None: nothing)."""
    if not data.n_skipped:
        return None
    shown = ", ".join(data.dropped[:5]) + (", ..." if len(data.dropped) > 5 else "")
    return (f"skipped {data.n_skipped} unreadable image(s) of the archive of the {data.name} "
            f"set, leaving out {len(data.dropped)} character(s): {shown}")


# --------------------------------------------------------------------------------------
# More classes for training: turned and mirrored characters


def check_rotations(turns) -> None:
    """Raise ValueError unless ``turns`` is a valid ``rotations`` setting: 1, 2, 3 or 4."""
    whole = isinstance(turns, (int, np.integer)) and not isinstance(turns, bool)
    if not whole or turns not in (1, 2, 3, 4):
        raise ValueError(
            f"rotations must be 1, 2, 3 or 4 (quarter turns per character), not {turns!r}"
        )


def with_rotations(data: CharacterSet, turns: int) -> CharacterSet:
    """Each character turned by 0, 90, ..., (turns - 1) * 90 degrees, each turn a new character.

    images (n_chars, n_drawers, H, W) -> (turns * n_chars, n_drawers, H, W); the copies
    turned by k quarter turns come k * n_chars rows after the originals and form alphabets
    of their own ("Name (90)", ...), so a same-alphabet negative stays within one script
    and one orientation. A character turned upside down is a different character to a
    reader (a "p" becomes a "d"), so this multiplies the training classes: the remedy used
    by Santoro et al. (2016) and Vinyals et al. (2016) for Omniglot's few classes.
    turns = 1 returns ``data`` itself. Only ever for training: the test characters are
    never turned.
    """
    check_rotations(turns)
    if turns == 1:
        return data

    def turned_names(names):  # "Name", then "Name (90)", "Name (180)", ...
        return [n if k == 0 else f"{n} ({90 * k})" for k in range(turns) for n in names]

    n_alphabets = len(data.alphabets)
    return replace(
        data,
        name=f"{data.name} x{turns} rotations",
        images=np.concatenate([np.rot90(data.images, k, axes=(2, 3)) for k in range(turns)]),
        alphabets=turned_names(data.alphabets),
        characters=turned_names(data.characters),
        alphabet_of=np.concatenate([data.alphabet_of + k * n_alphabets for k in range(turns)]),
        dropped=list(data.dropped),
    )


def check_mirror(mirror) -> None:
    """Raise ValueError unless ``mirror`` is a valid ``mirror`` setting: true or false."""
    if not isinstance(mirror, (bool, np.bool_)):
        raise ValueError(f"mirror must be true or false (add each character's mirror image "
                         f"as a new character), not {mirror!r}")


def with_mirrors(data: CharacterSet, mirror: bool = True) -> CharacterSet:
    """Each character and its mirror image (flipped left to right), the mirror a new character.

    images (n_chars, n_drawers, H, W) -> (2 * n_chars, n_drawers, H, W); the mirrored
    copies follow the originals and form alphabets of their own ("Name (mirrored)"), as in
    :func:`with_rotations`: a reader tells a "b" from a "d". After ``with_rotations(data, 4)``
    this gives all eight turns and flips of each character. mirror = False returns ``data``
    itself. Only ever for training.
    """
    check_mirror(mirror)
    if not mirror:
        return data
    return replace(
        data,
        name=f"{data.name} and mirrors",
        images=np.concatenate([data.images, data.images[..., ::-1]]),
        alphabets=data.alphabets + [f"{n} (mirrored)" for n in data.alphabets],
        characters=data.characters + [f"{n} (mirrored)" for n in data.characters],
        alphabet_of=np.concatenate([data.alphabet_of, data.alphabet_of + len(data.alphabets)]),
        dropped=list(data.dropped),
    )
