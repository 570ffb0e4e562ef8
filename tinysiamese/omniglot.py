"""Omniglot: reading the archives, caching the decoded arrays, and the paper's splits.

Omniglot (Lake, Salakhutdinov & Tenenbaum 2015) holds 1,623 handwritten characters from
50 alphabets, each character drawn once by 20 different people ("drawers"). It ships as
two archives, laid out as::

    images_background/<alphabet>/<character>/<NNNN_DD>.png    30 alphabets, 964 characters
    images_evaluation/<alphabet>/<character>/<NNNN_DD>.png    20 alphabets, 659 characters

where ``DD`` (01-20) is the drawer. Each PNG is 105x105, 1-bit, black strokes on white.
:func:`load_split` reads a split straight from the zip (or from the unzipped folder) into
one array ``images: (n_chars, 20, H, W)`` indexed by drawer - 1.

Pixel convention, used by every data module of tinysiamese:
    uint8 arrays hold *ink*: 0 = background, 255 (``INK``) = full stroke; resized images
    hold the fraction of a pixel covered by ink, scaled to 0..255.
    :func:`as_float` turns them into the model's input: float32, strokes = 1, background = 0.
Strokes, not the paper, are the "on" value: zero-padding then adds blank paper around a
character, and the L1 distance between two images counts differing ink, not differing paper.

Decoding 19,280 PNGs takes seconds, so each decoded split is cached as one ``.npz`` (see
:func:`load_split`); the second load of a split reads one file.

The paper's train / validation / test split is data, not code: see ``PAPER_SPLITS``.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("background", "evaluation")
N_DRAWERS = 20
NATIVE_SIZE = 105
INK = 255  # uint8 value of a full stroke; as_float divides by it

# Image counts of the official release: what `tinysiamese data info` should report.
EXPECTED_COUNTS = {
    "background": (30, 964, 19_280),  # alphabets, characters, images
    "evaluation": (20, 659, 13_180),
}

_CACHE_VERSION = 2  # bump when the cached arrays change meaning
_FILE_NAME = re.compile(r"^(\d+)_(\d\d)\.png$")  # NNNN_DD.png: character id, drawer


class DataError(Exception):
    """The data is there but unusable: a corrupt image, a missing drawer, a bad archive."""


# --------------------------------------------------------------------------------------
# Data structures


@dataclass
class OmniglotSplit:
    """One decoded Omniglot archive ("background" or "evaluation").

    images:      (n_chars, 20, H, W) uint8, ink 0..255; ``images[c, d - 1]`` is character
                 ``c`` drawn by drawer ``d``
    alphabets:   the alphabet folder names, sorted
    characters:  (n_chars) names "Alphabet/characterNN", sorted by alphabet then character
    alphabet_of: (n_chars,) int64, index into ``alphabets``
    source:      the zip or folder the images came from
    n_skipped:   images skipped as unreadable (``on_bad_image="skip"``)
    dropped:     characters left out because a skipped image cost them a drawer
    """

    name: str
    images: np.ndarray
    alphabets: list[str]
    characters: list[str]
    alphabet_of: np.ndarray
    source: str
    n_skipped: int = 0
    dropped: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def n_images(self) -> int:
        return self.images.shape[0] * self.images.shape[1]


@dataclass
class OmniglotSubset:
    """A view of a split: some of its alphabets, some of its drawers.

    images:      (n_chars, n_drawers, H, W) uint8, ink 0..255; ``images[c, j]`` is
                 character ``c`` drawn by drawer ``drawers[j]``
    alphabets:   the alphabets present, in the split's order
    characters:  (n_chars) names "Alphabet/characterNN"
    alphabet_of: (n_chars,) int64, index into ``alphabets``
    drawers:     the drawers kept, 1-based (e.g. (1, ..., 12) for the paper's training set)
    n_skipped, dropped: those of the split it was cut from (the whole archive's)
    """

    name: str
    images: np.ndarray
    alphabets: list[str]
    characters: list[str]
    alphabet_of: np.ndarray
    drawers: tuple[int, ...]
    n_skipped: int = 0
    dropped: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.images.shape[-1]


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
    if not any(p.exists() for split in SPLITS for p in _split_paths(root, split)):
        raise FileNotFoundError(
            f"{root} does not hold Omniglot: expected images_background.zip or images_background/ "
            f"(and images_evaluation); run `tinysiamese data download --dest {root}`"
        )
    return root


# --------------------------------------------------------------------------------------
# Reading an archive or its unzipped folder


def _unreadable_zip(path: Path, exc: Exception) -> DataError:
    return DataError(f"{path} is not a readable zip archive ({exc}); download it again")


@contextmanager
def _open_source(root: Path, split: str):
    """Yield (source path, entries, read): the split's members relative to its top folder.

    entries: "alphabet/", "alphabet/character/", "alphabet/character/NNNN_DD.png", ...
    read(entry) -> the file's bytes. The zip is preferred to the folder: a download is
    renamed into place only once verified, whereas an unzipped folder may be half copied.
    """
    zip_path, folder = _split_paths(root, split)
    if zip_path.is_file():
        prefix = f"images_{split}/"
        try:
            zf = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise _unreadable_zip(zip_path, exc) from None
        with zf:
            # Only members under images_<split>/ count (this skips e.g. __MACOSX/ folders).
            names = zf.namelist()
            entries = [n[len(prefix):] for n in names if n.startswith(prefix) and n != prefix]
            yield zip_path, entries, lambda entry: zf.read(prefix + entry)
    elif folder.is_dir():
        entries = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(folder).as_posix()
            if rel != ".":
                entries.append(rel + "/")
                entries.extend(f"{rel}/{f}" for f in sorted(filenames) if not f.startswith("."))
        yield folder, entries, lambda entry: (folder / entry).read_bytes()
    else:
        raise FileNotFoundError(
            f"{root} holds neither images_{split}.zip nor images_{split}/; "
            f"run `tinysiamese data download --dest {root}`"
        )


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


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W) bool, True where there is ink (dark pixels)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L")) < 128


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 ink 0..255 (any shape) -> float32 in [0, 1], strokes = 1, background = 0."""
    return images.astype(np.float32) * np.float32(1.0 / INK)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W) float images -> (n, size, size) float32.

    Shrinking averages the pixels each output pixel covers (Pillow's BOX filter), so a thin
    stroke fades instead of vanishing; enlarging interpolates bilinearly.
    """
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    if (h, w) == (size, size):
        return images.copy()
    resample = Image.BOX if size < max(h, w) else Image.BILINEAR
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        out[i] = np.asarray(Image.fromarray(images[i], mode="F").resize((size, size), resample))
    return out


def strokes_to_ink(strokes: np.ndarray, size: int) -> np.ndarray:
    """(n, 105, 105) bool strokes -> (n, size, size) uint8 ink 0..255."""
    if size == strokes.shape[-1]:
        return strokes.astype(np.uint8) * np.uint8(INK)
    small = resize_images(strokes.astype(np.float32), size)
    return np.clip(np.rint(small * INK), 0, INK).astype(np.uint8)


def _decode_split(root: Path, split: str, size: int, on_bad_image: str) -> OmniglotSplit:
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
    return OmniglotSplit(split, np.stack(kept), alphabets, characters, alphabet_of,
                         str(source), n_skipped, dropped)


# --------------------------------------------------------------------------------------
# The cache: one .npz per (split, size), named after a fingerprint of the source


def _fingerprint(root: Path, split: str) -> str:
    """A digest that changes whenever the split's files change.

    For a zip: every member's name, size and CRC-32, read from the central directory (a
    content check that survives copying and touching the file). For a folder: every
    file's path, size and modification time.
    """
    zip_path, folder = _split_paths(root, split)
    digest = hashlib.sha1()
    if zip_path.is_file():
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for info in zf.infolist():
                    digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
        except (zipfile.BadZipFile, OSError) as exc:
            raise _unreadable_zip(zip_path, exc) from None
    elif folder.is_dir():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), folder)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        raise FileNotFoundError(
            f"{root} holds neither images_{split}.zip nor images_{split}/; "
            f"run `tinysiamese data download --dest {root}`"
        )
    return digest.hexdigest()


def _cache_path(cache_dir: Path, root: Path, split: str, size: int, on_bad_image: str) -> Path:
    key = hashlib.sha1(
        f"{_CACHE_VERSION}\0{split}\0{size}\0{on_bad_image}\0{_fingerprint(root, split)}".encode()
    ).hexdigest()[:16]
    return cache_dir / f"omniglot-{split}-{size}px-{key}.npz"


def _save_cache(path: Path, data: OmniglotSplit) -> None:
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
        # Write next to the target, then rename: a crash never leaves a half-written cache.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # uncompressed: loading is then a plain read
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        # The cache only saves time; a read-only home must not stop training.
        warnings.warn(
            f"could not write the Omniglot cache {path} ({exc}); the next load decodes again",
            stacklevel=3,  # point at the caller of load_split
        )


def _load_cache(path: Path, split: str) -> OmniglotSplit | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "packed" in z:
                images = np.unpackbits(z["packed"], axis=-1, count=NATIVE_SIZE)
                images *= np.uint8(INK)
            else:
                images = z["images"]
            data = OmniglotSplit(
                split, images, [str(a) for a in z["alphabets"]],
                [str(c) for c in z["characters"]], z["alphabet_of"], str(z["source"]),
                int(z["n_skipped"]), [str(c) for c in z["dropped"]],
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


def load_split(
    root: str | os.PathLike,
    split: str,
    size: int = NATIVE_SIZE,
    *,
    on_bad_image: str = "error",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> OmniglotSplit:
    """Read one Omniglot split from ``root`` (``images_<split>.zip`` or ``images_<split>/``).

    root:         folder holding the archives (see :func:`find_data_root`)
    split:        "background" or "evaluation" (or e.g. "background_small1")
    size:         side of the returned images; 105 keeps them as drawn, smaller sizes are
                  area-averaged (see :func:`resize_images`)
    on_bad_image: "error" raises DataError naming an unreadable PNG; "skip" leaves it out
                  and drops its character (counted in ``n_skipped`` and ``dropped``)
    cache_dir:    where decoded arrays are kept (default :func:`default_cache_dir`)
    use_cache:    False decodes every time and writes nothing

    Returns an OmniglotSplit with ``images: (n_chars, 20, size, size)`` uint8 ink 0..255.
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


# --------------------------------------------------------------------------------------
# Subsets and the paper's splits


def subset(
    split: OmniglotSplit,
    alphabets: tuple[str, ...] | list[str] | None,
    drawers: tuple[int, ...] | list[int],
    name: str = "subset",
) -> OmniglotSubset:
    """Keep the characters of ``alphabets`` (None: all) as drawn by ``drawers`` (1-based)."""
    drawers = tuple(int(d) for d in drawers)
    n_drawers = split.images.shape[1]
    in_range = all(1 <= d <= n_drawers for d in drawers)
    if not drawers or len(set(drawers)) != len(drawers) or not in_range:
        raise ValueError(f"drawers must be distinct numbers from 1 to {n_drawers}, not {drawers}")
    wanted = list(split.alphabets) if alphabets is None else list(alphabets)
    missing = [a for a in wanted if a not in split.alphabets]
    if missing:
        raise DataError(
            f"the {split.name} split ({split.source}) lacks alphabet(s) {', '.join(missing)}; "
            "is it the complete archive?"
        )
    wanted = [a for a in split.alphabets if a in wanted]  # keep the split's order
    old_index = [split.alphabets.index(a) for a in wanted]
    rows = np.flatnonzero(np.isin(split.alphabet_of, old_index))
    remap = {old: new for new, old in enumerate(old_index)}
    return OmniglotSubset(
        name=name,
        images=split.images[rows][:, [d - 1 for d in drawers]],  # (n_chars, n_drawers, H, W)
        alphabets=wanted,
        characters=[split.characters[r] for r in rows],
        alphabet_of=np.array([remap[int(a)] for a in split.alphabet_of[rows]], dtype=np.int64),
        drawers=drawers,
        n_skipped=split.n_skipped,
        dropped=list(split.dropped),
    )


def check_rotations(turns) -> None:
    """Raise ValueError unless ``turns`` is a valid ``rotations`` setting: 1, 2, 3 or 4."""
    whole = isinstance(turns, (int, np.integer)) and not isinstance(turns, bool)
    if not whole or turns not in (1, 2, 3, 4):
        raise ValueError(
            f"rotations must be 1, 2, 3 or 4 (quarter turns per character), not {turns!r}"
        )


def with_rotations(data: OmniglotSubset, turns: int) -> OmniglotSubset:
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
    return OmniglotSubset(
        name=f"{data.name} x{turns} rotations",
        images=np.concatenate([np.rot90(data.images, k, axes=(2, 3)) for k in range(turns)]),
        alphabets=turned_names(data.alphabets),
        characters=turned_names(data.characters),
        alphabet_of=np.concatenate([data.alphabet_of + k * n_alphabets for k in range(turns)]),
        drawers=data.drawers,
        n_skipped=data.n_skipped,
        dropped=list(data.dropped),
    )


def check_mirror(mirror) -> None:
    """Raise ValueError unless ``mirror`` is a valid ``mirror`` setting: true or false."""
    if not isinstance(mirror, (bool, np.bool_)):
        raise ValueError(f"mirror must be true or false (add each character's mirror image "
                         f"as a new character), not {mirror!r}")


def with_mirrors(data: OmniglotSubset, mirror: bool = True) -> OmniglotSubset:
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
    return OmniglotSubset(
        name=f"{data.name} and mirrors",
        images=np.concatenate([data.images, data.images[..., ::-1]]),
        alphabets=data.alphabets + [f"{n} (mirrored)" for n in data.alphabets],
        characters=data.characters + [f"{n} (mirrored)" for n in data.characters],
        alphabet_of=np.concatenate([data.alphabet_of, data.alphabet_of + len(data.alphabets)]),
        drawers=data.drawers,
        n_skipped=data.n_skipped,
        dropped=list(data.dropped),
    )


def paper_split(split: OmniglotSplit, which: str) -> OmniglotSubset:
    """The paper's "train", "val" or "test" set, cut from the archive it comes from.

    "train" needs the background split, "val" and "test" the evaluation split.
    """
    if which not in PAPER_SPLITS:
        raise ValueError(f"unknown set {which!r}: choose one of {', '.join(PAPER_SPLITS)}")
    spec = PAPER_SPLITS[which]
    if not split.name.startswith(spec.archive):
        raise ValueError(
            f"the paper's {which!r} set comes from the {spec.archive} split, not {split.name}"
        )
    return subset(split, spec.alphabets, spec.drawers, name=which)


def skipped_note(data: OmniglotSplit | OmniglotSubset) -> str | None:
    """One line on what ``on_bad_image="skip"`` left out of ``data``'s archive (None: nothing)."""
    if not data.n_skipped:
        return None
    shown = ", ".join(data.dropped[:5]) + (", ..." if len(data.dropped) > 5 else "")
    return (f"skipped {data.n_skipped} unreadable image(s) of the archive of the {data.name} "
            f"set, leaving out {len(data.dropped)} character(s): {shown}")


def load_paper_split(root: str | os.PathLike, which: str, size: int = NATIVE_SIZE,
                     **kwargs) -> OmniglotSubset:
    """Load the archive that the paper's ``which`` set needs and cut the set from it."""
    if which not in PAPER_SPLITS:
        raise ValueError(f"unknown set {which!r}: choose one of {', '.join(PAPER_SPLITS)}")
    return paper_split(load_split(root, PAPER_SPLITS[which].archive, size, **kwargs), which)
