"""A user's own image folders: which files are images, and which class each one shows.

Every image is read as ``tinysiamese verify`` reads it (:func:`tinysiamese.images.load_user_image`:
any format Pillow opens, colour and transparency flattened, dark-on-light inverted, resized).
The walk is recursive and safe:

* files whose suffix is no image format Pillow knows (``notes.txt``, ``.DS_Store``) and hidden
  files are skipped and counted, never an error;
* symbolic links are followed only to files inside the folder; a link that leads out of it is
  skipped and counted, and links to folders are never followed (a folder inside is read anyway);
* a file named like an image that cannot be read, or is too large to read safely, stops the
  command with its name (:class:`FolderDataError`): a silently missing image would change
  the answer.

Layouts (the depth of the image files below the folder decides):

    support  one image per class, the file's stem is its name:  SUPPORT/cat.png
             or one subfolder per class with one or more images:  SUPPORT/cat/1.png
    classes  class/*.png, or group/class/*.png where a group plays an alphabet's part

Two exception classes, so that the command line can give each its exit status:
:class:`FolderError` (a ``ValueError``: the request cannot be met, exit 2) and
:class:`FolderDataError` (an ``archive.DataError``: an image is damaged, exit 1).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .images import ImageError, load_user_image
from .archive import DataError

# Suffixes of every format this Pillow opens (.png, .jpg, .jpeg, .gif, .bmp, .tif, .webp, ...).
IMAGE_SUFFIXES = frozenset(Image.registered_extensions())


class FolderError(ValueError):
    """A folder that cannot serve the request: missing, empty, too few images or classes,
    a wrong layout, two classes of one name. The message names the folder and what to do."""


class FolderDataError(DataError):
    """An image in a folder that is damaged or too large to read; the message names it."""


@dataclass
class Listing:
    """The image files found below ``root``, in sorted order, and what the walk left out.

    files:     image paths (``root / relative``), sorted by their relative path
    skipped:   files that are no image (by suffix) or hidden
    links_out: symbolic links leading out of ``root`` (not followed)
    """

    root: Path
    files: list[Path]
    skipped: int = 0
    links_out: int = 0

    def note(self) -> str | None:
        """One line on what was left out (None: nothing)."""
        parts = []
        if self.skipped:
            parts.append(f"skipped {self.skipped} file(s) that are not images")
        if self.links_out:
            parts.append(f"did not follow {self.links_out} symbolic link(s) leading out of "
                         f"{self.root}")
        return "; ".join(parts) or None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):  # elsewhere, broken, or a loop of links
        return False


def list_images(root) -> Listing:
    """Walk ``root`` recursively -> its image files (see the module docstring for the rules)."""
    root = Path(root)
    if not root.exists():
        raise FolderError(f"folder {root} does not exist")
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder; give a folder of images")
    real_root = root.resolve()
    files, skipped, links_out = [], 0, 0
    for folder, dirs, names in os.walk(root, followlinks=False):
        folder = Path(folder)
        for d in list(dirs):
            if (folder / d).is_symlink():  # never walked; one leading out is counted
                links_out += not _inside(folder / d, real_root)
                dirs.remove(d)
            elif d.startswith("."):
                dirs.remove(d)
        for name in names:
            path = folder / name
            if path.is_symlink() and not _inside(path, real_root):
                links_out += 1
            elif name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
            else:
                files.append(path)
    files.sort(key=lambda p: p.relative_to(root).parts)
    return Listing(root, files, skipped, links_out)


def read_images(files, size: int) -> np.ndarray:
    """files -> (N, size, size) float32, strokes 1 on 0; a damaged file -> FolderDataError."""
    out = np.empty((len(files), size, size), dtype=np.float32)
    for i, path in enumerate(files):
        try:
            out[i] = load_user_image(path, size)
        except ImageError as exc:
            raise FolderDataError(str(exc)) from None
    return out


def _no_images(listing: Listing) -> FolderError:
    left = listing.note()
    return FolderError(f"folder {listing.root} holds no images" + (f" ({left})" if left else "")
                       + "; give a folder of PNG or JPEG files")


def read_folder(root, size: int, min_images: int = 1) -> tuple[Listing, np.ndarray]:
    """Every image below ``root``, whatever the layout -> (listing, (N, size, size) float32)."""
    listing = list_images(root)
    if not listing.files:
        raise _no_images(listing)
    if len(listing.files) < min_images:
        raise FolderError(f"folder {listing.root} holds {len(listing.files)} image(s); "
                          f"give at least {min_images}")
    return listing, read_images(listing.files, size)


@dataclass
class LabelledImages:
    """Images with a class each.

    images:  (N, size, size) float32, strokes 1; ``labels[i]`` is the class of ``images[i]``
    labels:  (N,) int64 index into ``classes``
    classes: class names, sorted ("cat", or "group/cat" in the group layout)
    group_of: (n_classes,) int64 index into ``groups`` (one group "" without groups)
    listing: the walk's files (row order) and what it skipped
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    group_of: np.ndarray
    groups: list[str]
    listing: Listing

    @property
    def files(self) -> list[Path]:
        return self.listing.files


def _depths(listing: Listing) -> dict[int, Path]:
    """{depth of the image files below the root: an example}; depth 1 = root/x.png."""
    seen = {}
    for f in listing.files:
        seen.setdefault(len(f.relative_to(listing.root).parts), f)
    return seen


def _mixed(listing: Listing, seen: dict[int, Path], expected: str) -> FolderError:
    examples = ", ".join(str(p.relative_to(listing.root)) for _, p in sorted(seen.items())[:3])
    return FolderError(f"folder {listing.root} mixes layouts ({examples}); lay it out as "
                       f"{expected}")


def _labelled(listing: Listing, names: list[str], size: int) -> LabelledImages:
    """Image files and their class names (one per file) -> LabelledImages; refuses two
    classes whose names differ only in case (they would be one class on macOS or Windows)."""
    classes = sorted(set(names))
    folded = {}
    for c in classes:
        other = folded.setdefault(c.casefold(), c)
        if other != c:
            raise FolderError(f"folder {listing.root} has two classes of one name, {other!r} "
                              f"and {c!r}; rename one")
    index = {c: i for i, c in enumerate(classes)}
    groups = sorted({c.rpartition("/")[0] for c in classes})
    group_of = np.array([groups.index(c.rpartition("/")[0]) for c in classes], dtype=np.int64)
    labels = np.array([index[n] for n in names], dtype=np.int64)
    return LabelledImages(read_images(listing.files, size), labels, classes, group_of, groups,
                          listing)


def read_support(root, size: int) -> LabelledImages:
    """A support folder -> its classes: one image per class (``cat.png``: class "cat") or one
    subfolder per class (``cat/*.png``). Needs at least two classes."""
    listing = list_images(root)
    if not listing.files:
        raise _no_images(listing)
    seen = _depths(listing)
    layout = "one image per class (cat.png, dog.png) or one subfolder per class (cat/1.png)"
    if len(seen) > 1 or max(seen) > 2:
        raise _mixed(listing, seen, layout)
    rel = [f.relative_to(listing.root) for f in listing.files]
    if 1 in seen:
        names = [r.stem for r in rel]
        twice = sorted(n for n, c in Counter(names).items() if c > 1)
        if twice:
            shown = [str(r) for r in rel if r.stem == twice[0]]
            raise FolderError(f"support folder {listing.root} has two classes of one name: "
                              f"{', '.join(shown)}; keep one image per name, or give the class "
                              "a subfolder")
    else:
        names = [r.parts[0] for r in rel]
    if len(set(names)) < 2:
        raise FolderError(f"support folder {listing.root} holds one class ({names[0]!r}); "
                          "a query needs at least two classes to choose between")
    return _labelled(listing, names, size)


def read_classes(root, size: int, min_per_class: int = 2) -> LabelledImages:
    """A training folder: ``class/*.png`` or ``group/class/*.png`` -> its classes.

    Classes are named "class", or "group/class" with groups; every class needs at least
    ``min_per_class`` images (a pair of one class needs two) and the folder two classes.
    """
    listing = list_images(root)
    if not listing.files:
        raise _no_images(listing)
    seen = _depths(listing)
    if len(seen) > 1 or min(seen) < 2 or max(seen) > 3:
        raise _mixed(listing, seen, "class/*.png or group/class/*.png")
    rel = [f.relative_to(listing.root) for f in listing.files]
    names = ["/".join(r.parts[:-1]) for r in rel]
    counts = Counter(names)
    few = [n for n, c in counts.items() if c < min_per_class]
    if few:
        raise FolderError(f"class {few[0]!r} of {listing.root} has {counts[few[0]]} image(s); "
                          f"each class needs at least {min_per_class} (add images or remove "
                          f"the class{f'; {len(few)} classes are short' if len(few) > 1 else ''})")
    if len(counts) < 2:
        raise FolderError(f"folder {listing.root} holds one class ({names[0]!r}); "
                          "give at least two classes")
    return _labelled(listing, names, size)
