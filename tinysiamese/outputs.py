"""The files that ``cluster`` and ``embed`` write, each atomically (temporary file, then rename).

* ``clusters.csv``: one row per image, ``file,cluster,mean_p_same`` (the image's mean
  P(same) with the other members of its cluster; empty for an image alone);
* ``clusters.png``: a row of thumbnails per cluster, largest cluster first;
* ``X.npy`` (N, dense) float32 features and ``X.txt`` beside it, the file of each row.

Either all of a command's files are written or, on an error, none is replaced half-way:
each goes to a temporary file that is renamed over the target only when complete.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .drawing import font
from .files import atomic_write
from .plots import ink_image, save_png

THUMB = 40          # px, one thumbnail
PER_ROW = 16        # thumbnails shown per cluster; the rest are counted
MAX_ROWS = 60       # clusters drawn; the rest are counted
LABEL_WIDTH = 130   # px, the column naming each row


def write_clusters_csv(path, files, labels: np.ndarray, mean_p: np.ndarray) -> Path:
    """files (N) paths as shown to the user, labels (N,), mean_p (N,) -> ``path``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "cluster", "mean_p_same"])
    for f, c, p in zip(files, labels, mean_p):
        writer.writerow([str(f), int(c), "" if np.isnan(p) else f"{p:.4f}"])
    path = Path(path)
    atomic_write(path, lambda fh: fh.write(out.getvalue().encode()))
    return path


def clusters_image(images: np.ndarray, labels: np.ndarray, title: str = "") -> Image.Image:
    """images (N, H, W) ink, labels (N,) with cluster 0 the largest -> one RGB picture.

    Row c shows cluster c: its size, then up to PER_ROW of its images in file order.
    """
    k = int(labels.max()) + 1
    shown = min(k, MAX_ROWS)
    gap, head = 4, 28 if title else 6
    width = LABEL_WIDTH + PER_ROW * (THUMB + gap) + 40
    height = head + shown * (THUMB + gap) + (20 if k > shown else 4)
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    small = font(12)
    if title:
        draw.text((8, 6), title, fill=(30, 41, 59), font=font(14))
    for c in range(shown):
        members = np.flatnonzero(labels == c)
        y = head + c * (THUMB + gap)
        draw.text((8, y + THUMB // 2 - 7), f"cluster {c}: {len(members)}", fill=(30, 41, 59),
                  font=small)
        for j, i in enumerate(members[:PER_ROW]):
            picture.paste(ink_image(images[i], THUMB), (LABEL_WIDTH + j * (THUMB + gap), y))
        if len(members) > PER_ROW:
            draw.text((LABEL_WIDTH + PER_ROW * (THUMB + gap), y + THUMB // 2 - 7),
                      f"+{len(members) - PER_ROW}", fill=(100, 116, 139), font=small)
    if k > shown:
        draw.text((8, height - 18), f"... and {k - shown} smaller clusters (all in clusters.csv)",
                  fill=(100, 116, 139), font=small)
    return picture


def write_clusters_png(path, images: np.ndarray, labels: np.ndarray, title: str = "") -> Path:
    return save_png(clusters_image(images, labels, title), path)


def check_embeddings_path(path) -> Path:
    """``path`` as a Path, or ValueError unless it ends in .npy (the command line asks before
    it reads a folder, ``write_embeddings`` again before it writes)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"the embeddings are written as NumPy .npy; give a name ending in .npy, "
                         f"not {path.name}")
    return path


def write_embeddings(path, features: np.ndarray, files) -> tuple[Path, Path]:
    """features (N, dense) -> ``path`` (.npy, float32) and the same name with .txt: one file
    name a line, row i of the array being the image on line i. Returns both paths."""
    path = check_embeddings_path(path)
    names = [str(f) for f in files]
    bad = [n for n in names if "\n" in n or "\r" in n]
    if bad:
        raise ValueError(f"file name {bad[0]!r} holds a line break; it cannot be listed one a line")
    if len(names) != len(features):
        raise ValueError(f"{len(features)} rows of features for {len(names)} files")
    listing = path.with_suffix(".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.ascontiguousarray(features, dtype=np.float32)
    atomic_write(path, lambda fh: np.save(fh, array))
    atomic_write(listing, lambda fh: fh.write("".join(n + "\n" for n in names).encode()))
    return path, listing
