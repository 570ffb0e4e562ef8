"""Reading a user's own image for ``tinysiamese verify``: any format Pillow opens.

The network was trained on Omniglot: strokes = 1 on a background of 0, at the model's
input size. A user's file may be colour, have an alpha channel, be any size, and show
dark strokes on white (like Omniglot's PNGs) or light strokes on black (like MNIST), so:

1. transparent pixels are laid on white, colour is turned into grey;
2. the image is inverted when its border is light, so that strokes become the bright part;
3. it is resized (area filter) to ``size`` x ``size``, non-square images are padded first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageError(Exception):
    """A file that cannot be used as an image (the message names it and says why)."""


def load_user_image(path, size: int) -> np.ndarray:
    """path -> (size, size) float32 in [0, 1], strokes bright (1) on a dark (0) background."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"image {path} is a folder; give an image file (PNG or JPEG)")
    if not path.is_file():
        raise ImageError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            grey = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except Image.DecompressionBombError as exc:  # refused before decoding: no memory spent
        raise ImageError(f"{path} is too large to read safely ({exc}); "
                         "give a smaller image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path} is not a readable image ({exc.__class__.__name__}: {exc}); "
                         "give a PNG or JPEG file") from None
    if grey.size == 0 or min(grey.shape) < 2:
        raise ImageError(f"{path} is too small ({grey.shape[1]}x{grey.shape[0]} pixels)")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    ink = 1.0 - grey if border.mean() > 0.5 else grey
    h, w = ink.shape
    if h != w:  # pad to a square with background, keeping the drawing centred
        side = max(h, w)
        square = np.zeros((side, side), dtype=np.float32)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = ink
        ink = square
    resized = Image.fromarray(ink, mode="F").resize((size, size), Image.BOX)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
