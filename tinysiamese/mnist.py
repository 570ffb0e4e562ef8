"""MNIST as a one-shot test: read the IDX files, build 10-way one-shot trials.

Koch et al. (2015, section 4.4) test a net trained on Omniglot, unchanged, on MNIST: each
trial shows one image of each digit and asks which one a new image matches.

The IDX format (LeCun's): a 4-byte big-endian magic number - 2051 for images, 2049 for
labels; its third byte says the values are uint8 and its fourth how many dimensions
follow - then one big-endian uint32 per dimension, then the raw bytes. The files are
usually gzipped.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .archive import DataError
from .omniglot import NATIVE_SIZE
from .pixels import resize_images
from .trials import Trials

IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension (n,)
FILES = {
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one IDX file (gzipped or not) whose magic number must be ``magic`` -> uint8 array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    if raw[:2] == b"\x1f\x8b":  # the gzip signature, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is a damaged gzip file ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path} is too short to be an IDX file")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            f"{path} has magic number {found}, expected {magic}; is it the right MNIST file?"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} ends inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path} holds {len(raw) - header:,} bytes of data, but its header {shape} "
            f"says {expected:,}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{folder} has neither {name}.gz nor {name}; pass the folder holding the MNIST files"
    )


def load_mnist(folder: str | os.PathLike, kind: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST's ``kind`` set ("t10k" or "train") from ``folder``.

    Returns images (n, 28, 28) uint8 (white digits on black: 0 background, 255 ink) and
    labels (n,) uint8 in 0..9.
    """
    folder = Path(folder)
    if kind not in FILES:
        raise ValueError(f"unknown MNIST set {kind!r}: choose one of {', '.join(FILES)}")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder; pass the folder holding the MNIST files"
        )
    image_name, label_name = FILES[kind]
    images = read_idx(_find(folder, image_name), IMAGES_MAGIC)
    labels = read_idx(_find(folder, label_name), LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(
            f"MNIST images must be 3-D and labels 1-D, got {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images.shape[0]:,} MNIST images but {labels.shape[0]:,} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"MNIST labels must be digits 0-9, found {labels.max()}")
    return images, labels


def mnist_trials(images: np.ndarray, labels: np.ndarray, n_trials: int = 400, seed: int = 0,
                 size: int = NATIVE_SIZE) -> Trials:
    """10-way one-shot trials: one support image per digit, a test image of one of them.

    images (n, 28, 28) uint8, labels (n,). Every trial draws a random support image for each
    digit 0-9 and a test image of digit ``answer``, never the same image as its support.
    The answers cycle through the ten digits in a shuffled order, so each is tested
    equally often. Images are resized to ``size`` (bilinear when enlarging) and returned as
    float32 with strokes = 1 on a 0 background - MNIST is already white-on-black.
    """
    if n_trials < 1:
        raise ValueError(f"need at least one trial, not {n_trials}")
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    short = [d for d in range(10) if len(by_digit[d]) < 2]
    if short:
        raise DataError(
            f"one-shot trials need two images of every digit; digit(s) {short} have fewer"
        )
    rng = np.random.default_rng(seed)
    answer = rng.permutation(np.arange(n_trials) % 10)                      # (T,)
    counts = np.array([len(b) for b in by_digit])
    support_pos = rng.integers(0, counts, size=(n_trials, 10))  # (T, 10): place in by_digit
    # The test image: any other image of the answer's digit (skip over its support).
    test_pos = rng.integers(0, counts[answer] - 1)               # (T,)
    test_pos += test_pos >= support_pos[np.arange(n_trials), answer]
    support_idx = np.stack([by_digit[d][support_pos[:, d]] for d in range(10)], 1)  # (T, 10)
    test_idx = np.array([by_digit[a][p] for a, p in zip(answer, test_pos)])         # (T,)

    def prepare(idx: np.ndarray) -> np.ndarray:
        flat = images[idx.reshape(-1)].astype(np.float32) / 255.0
        return resize_images(flat, size).reshape(*idx.shape, size, size)

    return Trials(prepare(test_idx), prepare(support_idx), answer.astype(np.int64),
                  ["mnist"] * n_trials)
