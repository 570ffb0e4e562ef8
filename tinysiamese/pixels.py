"""Pixels: from a scanned PNG to the model's input, the one convention every data module keeps.

    uint8 arrays hold *ink*: 0 = background, 255 (``INK``) = full stroke; resized images
    hold the fraction of a pixel covered by ink, scaled to 0..255.
    :func:`as_float` turns them into the model's input: float32, strokes = 1, background = 0.

Strokes, not the paper, are the "on" value: zero-padding then adds blank paper around a
character, and the L1 distance between two images counts differing ink, not differing paper.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

INK = 255  # uint8 value of a full stroke; as_float divides by it


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
    """(n, H, W) bool strokes -> (n, size, size) uint8 ink 0..255."""
    if size == strokes.shape[-1]:
        return strokes.astype(np.uint8) * np.uint8(INK)
    small = resize_images(strokes.astype(np.float32), size)
    return np.clip(np.rint(small * INK), 0, INK).astype(np.uint8)
