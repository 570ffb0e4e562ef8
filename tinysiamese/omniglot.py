"""Omniglot: where the archives live, reading them, and caching the decoded arrays.

Omniglot (Lake, Salakhutdinov & Tenenbaum 2015) holds 1,623 handwritten characters from
50 alphabets, each character drawn once by 20 different people ("drawers"). It ships as
two archives, laid out as::

    images_background/<alphabet>/<character>/<NNNN_DD>.png    30 alphabets, 964 characters
    images_evaluation/<alphabet>/<character>/<NNNN_DD>.png    20 alphabets, 659 characters

where ``DD`` (01-20) is the drawer. Each PNG is 105x105, 1-bit, black strokes on white.
:func:`load_split` reads a split straight from the zip (or from the unzipped folder, see
:mod:`tinysiamese.archive`) into a :class:`~tinysiamese.characters.CharacterSet` with
``images: (n_chars, 20, H, W)`` uint8 ink (see :mod:`tinysiamese.pixels`), indexed by
drawer - 1; :func:`load_paper_split` cuts one of the paper's sets from it.

Decoding 19,280 PNGs takes seconds, so each decoded split is cached as one ``.npz``.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import DataError, fingerprint, open_tree
from .characters import CharacterSet, check_paper_set, paper_split
from .files import atomic_write
from .pixels import INK, decode_png, strokes_to_ink

SPLITS = ("background", "evaluation")
N_DRAWERS = 20
NATIVE_SIZE = 105

# Image counts of the official release: what `tinysiamese data info` should report.
EXPECTED_COUNTS = {
    "background": (30, 964, 19_280),  # alphabets, characters, images
    "evaluation": (20, 659, 13_180),
}

_CACHE_VERSION = 2  # bump when the cached arrays change meaning
_FILE_NAME = re.compile(r"^(\d+)_(\d\d)\.png$")  # NNNN_DD.png: character id, drawer


@dataclass(frozen=True)
class SplitSummary:
    """Counts of one archive, read from its listing without decoding any image."""

    name: str
    source: str
    n_alphabets: int
    n_characters: int
    n_images: int


# --------------------------------------------------------------------------------------
# Where the data and the cache live


def default_data_root() -> Path:
    """``$TINYSIAMESE_DATA`` if set, else ``~/.cache/tinysiamese/omniglot``."""
    env = os.environ.get("TINYSIAMESE_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tinysiamese" / "omniglot"


def default_cache_dir() -> Path:
    """``$TINYSIAMESE_CACHE`` if set, else ``~/.cache/tinysiamese/arrays``."""
    env = os.environ.get("TINYSIAMESE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tinysiamese" / "arrays"


def _split_paths(root: Path, split: str) -> tuple[Path, Path]:
    return root / f"images_{split}.zip", root / f"images_{split}"


def _split_source(root: Path, split: str) -> Path:
    """The split's zip if there is one (a download is renamed into place only once
    verified, whereas an unzipped folder may be half copied), else its folder."""
    zip_path, folder = _split_paths(root, split)
    if zip_path.is_file():
        return zip_path
    if folder.is_dir():
        return folder
    raise FileNotFoundError(
        f"{root} holds neither images_{split}.zip nor images_{split}/; "
        f"run `tinysiamese data download --dest {root}`"
    )


def holds_omniglot(root) -> bool:
    """Whether ``root`` holds a split of Omniglot, zipped or unzipped."""
    return any(p.exists() for split in SPLITS for p in _split_paths(Path(root), split))


def find_data_root(path: str | os.PathLike | None = None) -> Path:
    """The folder holding the Omniglot archives: ``path`` > ``$TINYSIAMESE_DATA`` > default.

    The folder must hold ``images_background.zip`` or ``images_background/`` (or the
    evaluation one). Raises FileNotFoundError, naming the folder and how to get the data.
    """
    if path is not None:
        root, origin = Path(path).expanduser(), "the data folder"
    elif os.environ.get("TINYSIAMESE_DATA"):
        root, origin = default_data_root(), "$TINYSIAMESE_DATA"
    else:
        root, origin = default_data_root(), "the default data folder"
    if not root.exists():
        raise FileNotFoundError(
            f"{origin} {root} does not exist; run `tinysiamese data download --dest {root}` "
            "or pass --data PATH"
        )
    if not root.is_dir():
        raise FileNotFoundError(
            f"{origin} {root} is not a folder; pass the folder holding the archives"
        )
    if not holds_omniglot(root):
        raise FileNotFoundError(
            f"{root} does not hold Omniglot: expected images_background.zip or images_background/ "
            f"(and images_evaluation); run `tinysiamese data download --dest {root}`"
        )
    return root


# --------------------------------------------------------------------------------------
# Reading an archive or its unzipped folder


@contextmanager
def _open_source(root: Path, split: str):
    """Yield (source, entries, read): the split's zip or folder, its members relative to
    its top folder ("alphabet/", "alphabet/character/NNNN_DD.png", ...), read(entry) -> bytes."""
    source = _split_source(root, split)
    with open_tree(source, f"images_{split}/" if source.is_file() else "") as (entries, read):
        yield source, entries, read


def _parse_entries(entries: list[str], source: Path) -> dict[str, dict[str, dict[int, str]]]:
    """entries -> {alphabet: {character: {drawer: entry}}}, checking the folder structure."""
    tree: dict[str, dict[str, dict[int, str]]] = {}
    for entry in entries:
        parts = entry.rstrip("/").split("/")
        if entry.endswith("/") or len(parts) < 3:  # a folder, or a stray file above characters
            if entry.endswith("/"):
                tree.setdefault(parts[0], {})
                if len(parts) == 2:
                    tree[parts[0]].setdefault(parts[1], {})
            continue
        if len(parts) != 3 or not parts[2].endswith(".png"):
            continue  # not an image (a README, a thumbnail database...)
        alphabet, character, file_name = parts
        match = _FILE_NAME.match(file_name)
        if match is None:
            raise DataError(
                f"{source}: unexpected file name {entry} (Omniglot names are NNNN_DD.png)"
            )
        drawer = int(match.group(2))
        if not 1 <= drawer <= N_DRAWERS:
            raise DataError(f"{source}: {entry} names drawer {drawer}; Omniglot drawers are 01-20")
        drawers = tree.setdefault(alphabet, {}).setdefault(character, {})
        if drawer in drawers:
            raise DataError(
                f"{source}: {character} of {alphabet} has two images of drawer {drawer}"
            )
        drawers[drawer] = entry
    if not tree:
        raise DataError(f"{source} holds no alphabets; is it an Omniglot archive?")
    for alphabet, characters in tree.items():
        if not characters:
            raise DataError(
                f"{source}: alphabet {alphabet} has no characters; the archive is incomplete"
            )
        for character, drawers in characters.items():
            missing = sorted(set(range(1, N_DRAWERS + 1)) - set(drawers))
            if missing:
                raise DataError(
                    f"{source}: {alphabet}/{character} lacks drawer(s) "
                    f"{', '.join(map(str, missing))}; "
                    "every Omniglot character has 20 - the archive is incomplete"
                )
    return tree


def split_summary(root: str | os.PathLike, split: str) -> SplitSummary:
    """Count alphabets, characters and images of a split from its listing (no decoding)."""
    _check_split_name(split)
    with _open_source(Path(root), split) as (source, entries, _):
        tree = _parse_entries(entries, source)
    n_chars = sum(len(chars) for chars in tree.values())
    n_images = sum(len(d) for chars in tree.values() for d in chars.values())
    return SplitSummary(split, str(source), len(tree), n_chars, n_images)


def _decode_split(root: Path, split: str, size: int, on_bad_image: str) -> CharacterSet:
    with _open_source(root, split) as (source, entries, read):
        tree = _parse_entries(entries, source)
        alphabets, characters, kept, n_skipped, dropped = [], [], [], 0, []
        for alphabet in sorted(tree):
            for character in sorted(tree[alphabet]):
                drawers = tree[alphabet][character]
                strokes = np.zeros((N_DRAWERS, NATIVE_SIZE, NATIVE_SIZE), dtype=bool)
                complete = True
                for drawer in range(1, N_DRAWERS + 1):
                    entry = drawers[drawer]
                    try:
                        image = decode_png(read(entry))
                        if image.shape != (NATIVE_SIZE, NATIVE_SIZE):
                            h, w = image.shape
                            raise ValueError(f"it is {w}x{h}, not 105x105")
                    except Exception as exc:  # Pillow and zlib raise many types for bad bytes
                        if on_bad_image == "error":
                            raise DataError(
                                f"cannot read image {source}/{entry}: {exc}; download the "
                                "archive again, or leave such images out with "
                                "--skip-bad-images (on_bad_image='skip')"
                            ) from None
                        n_skipped += 1
                        complete = False
                        continue
                    strokes[drawer - 1] = image
                # A character missing a drawer would break the (n_chars, 20, H, W) array and
                # the drawer-based splits, so a skipped image costs its whole character.
                if not complete:
                    dropped.append(f"{alphabet}/{character}")
                    continue
                if not alphabets or alphabets[-1] != alphabet:
                    alphabets.append(alphabet)
                characters.append(f"{alphabet}/{character}")
                kept.append(strokes_to_ink(strokes, size))
    if not kept:
        raise DataError(f"{source}: no character has all 20 images readable")
    alphabet_of = np.array([alphabets.index(c.split("/")[0]) for c in characters], dtype=np.int64)
    return CharacterSet(split, np.stack(kept), alphabets, characters, alphabet_of,
                        drawers=tuple(range(1, N_DRAWERS + 1)), source=str(source),
                        n_skipped=n_skipped, dropped=dropped)


# --------------------------------------------------------------------------------------
# The cache: one .npz per (split, size), named after a fingerprint of the source


def _cache_path(cache_dir: Path, root: Path, split: str, size: int, on_bad_image: str) -> Path:
    files = fingerprint(_split_source(root, split))
    key = hashlib.sha1(
        f"{_CACHE_VERSION}\0{split}\0{size}\0{on_bad_image}\0{files}".encode()
    ).hexdigest()[:16]
    return cache_dir / f"omniglot-{split}-{size}px-{key}.npz"


def _save_cache(path: Path, data: CharacterSet) -> None:
    arrays = {
        "alphabets": np.array(data.alphabets),
        "characters": np.array(data.characters),
        "alphabet_of": data.alphabet_of,
        "source": np.array(data.source),
        "n_skipped": np.array(data.n_skipped),
        "dropped": np.array(data.dropped, dtype=str),
    }
    if data.size == NATIVE_SIZE:
        # Unresized images are pure 0/255: eight pixels per byte cut the file from 213 MB
        # to 27 MB (background split), and unpacking is faster than reading the difference.
        arrays["packed"] = np.packbits(data.images > 0, axis=-1)
    else:
        arrays["images"] = data.images
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # uncompressed: loading is then a plain read; atomic: never a half-written cache
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        # The cache only saves time; a read-only home must not stop training.
        warnings.warn(
            f"could not write the Omniglot cache {path} ({exc}); the next load decodes again",
            stacklevel=3,  # point at the caller of load_split
        )


def _load_cache(path: Path, split: str) -> CharacterSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "packed" in z:
                images = np.unpackbits(z["packed"], axis=-1, count=NATIVE_SIZE)
                images *= np.uint8(INK)
            else:
                images = z["images"]
            data = CharacterSet(
                split, images, [str(a) for a in z["alphabets"]],
                [str(c) for c in z["characters"]], z["alphabet_of"],
                drawers=tuple(range(1, images.shape[1] + 1)), source=str(z["source"]),
                n_skipped=int(z["n_skipped"]), dropped=[str(c) for c in z["dropped"]],
            )
    except FileNotFoundError:
        return None
    except Exception:  # a damaged cache file is rebuilt, never trusted
        return None
    if data.images.ndim != 4 or data.images.shape[0] != len(data.characters):
        return None
    return data


def _check_split_name(split: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(f"bad split name {split!r}: use 'background' or 'evaluation'")


def load_split(root: str | os.PathLike, split: str, size: int = NATIVE_SIZE, *,
               on_bad_image: str = "error", cache_dir: str | os.PathLike | None = None,
               use_cache: bool = True) -> CharacterSet:
    """Read one Omniglot split from ``root`` (``images_<split>.zip`` or ``images_<split>/``).

    root:         folder holding the archives (see :func:`find_data_root`)
    split:        "background" or "evaluation" (or e.g. "background_small1")
    size:         side of the returned images; 105 keeps them as drawn, smaller sizes are
                  area-averaged (see :func:`tinysiamese.pixels.resize_images`)
    on_bad_image: "error" raises DataError naming an unreadable PNG; "skip" leaves it out
                  and drops its character (counted in ``n_skipped`` and ``dropped``)
    cache_dir:    where decoded arrays are kept (default :func:`default_cache_dir`)
    use_cache:    False decodes every time and writes nothing

    Returns a CharacterSet with ``images: (n_chars, 20, size, size)`` uint8 ink 0..255.
    """
    _check_split_name(split)
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip', not {on_bad_image!r}")
    if not isinstance(size, (int, np.integer)) or not 1 <= size <= 4 * NATIVE_SIZE:
        raise ValueError(
            f"image size must be an integer between 1 and {4 * NATIVE_SIZE}, not {size!r}"
        )
    root = Path(root)
    if not use_cache:
        return _decode_split(root, split, int(size), on_bad_image)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = _cache_path(cache_dir, root, split, int(size), on_bad_image)
    data = _load_cache(path, split)
    if data is None:
        data = _decode_split(root, split, int(size), on_bad_image)
        _save_cache(path, data)
    return data


def load_paper_split(root: str | os.PathLike, which: str, size: int = NATIVE_SIZE,
                     **kwargs) -> CharacterSet:
    """Load the archive that the paper's ``which`` set needs and cut the set from it."""
    return paper_split(load_split(root, check_paper_set(which).archive, size, **kwargs), which)
