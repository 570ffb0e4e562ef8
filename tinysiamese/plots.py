"""Pictures of a run and of a model, drawn with Pillow alone (no plotting library).

    learning_curves(metrics)                  loss and validation one-shot accuracy per epoch
    trial_image(test, support, scores, ...)   one N-way trial: test, candidates, their scores
    filter_grid(W)                            the first layer's convolution filters
    save_png(image, path)                     written atomically, like the checkpoints

The three pictures are pure functions: arrays and numbers in, a ``PIL.Image.Image`` out;
the colours, fonts, text and axes they share are in :mod:`tinysiamese.drawing`.
In a trial, green frames the right answer, blue the model's choice when it is right and
red its choice when it is wrong. Characters are drawn dark on white, like Omniglot's scans.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .drawing import (EDGE, GRID, MUTED, RESAMPLE, TEXT, WHITE, axes_panel, fit, font,
                      line_height, nice_ticks, put_text, scalable, text_width, wrap)
from .files import atomic_write

GREEN = (0, 170, 80)       # the right answer
BLUE = (30, 90, 230)       # the model's choice, when right
RED = (220, 30, 40)        # the model's choice, when wrong
# Curves in the Okabe-Ito palette, which colour-blind readers can tell apart.
LOSS_COLOUR = (213, 94, 0)
VAL_COLOUR = (0, 114, 178)
TRAIN_ACC_COLOUR = (0, 158, 115)


def save_png(image: Image.Image, path) -> Path:
    """Write ``image`` as PNG atomically (temporary file, then rename); makes the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path


# --------------------------------------------------------------------------------------
# Learning curves


def read_metrics(path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``, one dict per epoch.

    A half-written last line (the run is appending to it right now) is left out; any other
    line that is not a JSON object raises ValueError naming it.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ValueError(f"{path} line {n} is not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path} line {n} is not a JSON object")
        records.append(record)
    return records


def _number(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def learning_curves(metrics: list[dict], title: str | None = None,
                    size: tuple[int, int] = (800, 500),
                    loss_heading: str = "training loss (cross-entropy per pair)") -> Image.Image:
    """Training loss (left) and one-shot accuracy (right) against the epoch.

    metrics: the records of ``metrics.jsonl``, one dict per epoch with "epoch", "loss",
             "val_accuracy" and, drawn too when present, "train_accuracy" (of same/different
             pairs). Missing or non-finite values leave gaps; a resumed run that logged an
             epoch twice is drawn with its last record. The best validation epoch is marked.
    size:    (width, height) in pixels.
    loss_heading: what the loss is (a run with the one-shot softmax adds it to the
             cross-entropy, see ``cli.plot``).
    """
    if not metrics:
        raise ValueError("no epochs to plot: the run has not finished an epoch yet")
    by_epoch = {}
    for i, record in enumerate(metrics):
        epoch = _number(record.get("epoch", i + 1))
        by_epoch[epoch if math.isfinite(epoch) else float(i + 1)] = record
    xs = sorted(by_epoch)
    loss = [_number(by_epoch[e].get("loss")) for e in xs]
    val = [_number(by_epoch[e].get("val_accuracy")) for e in xs]
    train_acc = [_number(by_epoch[e].get("train_accuracy")) for e in xs]
    has_train_acc = any(math.isfinite(a) for a in train_acc)

    s = 2 if scalable() else 1  # draw twice as large and shrink: smooth lines
    W, H = size
    image = Image.new("RGB", (W * s, H * s), WHITE)
    draw = ImageDraw.Draw(image)
    title = fit(title or "Learning curves", font(20 * s), (W - 40) * s)
    put_text(draw, (W * s / 2, 14 * s), title, font(20 * s), TEXT, align="center")

    entries = [("training loss", LOSS_COLOUR), ("validation 20-way one-shot accuracy", VAL_COLOUR)]
    if has_train_acc:
        entries.append(("training pair accuracy (same/different)", TRAIN_ACC_COLOUR))
    f = font(13 * s)
    widths = [28 * s + text_width(label, f) for label, _ in entries]
    x = (W * s - sum(widths) - 24 * s * (len(entries) - 1)) / 2
    y = (22 + 20) * s + line_height(f) / 2
    for (label, colour), w in zip(entries, widths):
        draw.line([(x, y), (x + 20 * s, y)], fill=colour, width=3 * s)
        put_text(draw, (x + 28 * s, y), label, f, TEXT, valign="middle")
        x += w + 24 * s

    finite_epochs = [e for e in xs if math.isfinite(e)]
    xticks = nice_ticks(0, max(max(finite_epochs), 4), max_ticks=6, integer=True)
    finite_loss = [v for v in loss if math.isfinite(v)] or [0.0, 1.0]
    loss_ticks = nice_ticks(min(0.0, min(finite_loss)), max(finite_loss), max_ticks=6)
    accs = [v for v in val + train_acc if math.isfinite(v)] or [0.0, 1.0]
    acc_ticks = [t for t in nice_ticks(max(0.0, min(accs)), min(1.0, max(accs)), max_ticks=6)]

    marker = None
    if any(math.isfinite(v) for v in val):
        best = int(np.nanargmax(np.array(val)))  # the first best epoch, as train.py keeps it
        marker = (xs[best], val[best], VAL_COLOUR,
                  f"best {100 * val[best]:.1f}% (epoch {xs[best]:g})")

    top, bottom = 100 * s, (H - 52) * s
    half = W * s / 2
    best_x = None if marker is None else marker[0]
    axes_panel(draw, (70 * s, top, half - 24 * s, bottom), xs, [(loss, LOSS_COLOUR)], xticks,
               loss_ticks, loss_heading, s, best_x=best_x)
    acc_series = [(val, VAL_COLOUR)] + ([(train_acc, TRAIN_ACC_COLOUR)] if has_train_acc else [])
    axes_panel(draw, (half + 58 * s, top, W * s - 24 * s, bottom), xs, acc_series, xticks,
               acc_ticks, "accuracy", s, percent=True, best_x=best_x, marker=marker)
    if s > 1:
        image = image.resize((W, H), RESAMPLE.LANCZOS)
    return image


# --------------------------------------------------------------------------------------
# One one-shot trial


def ink_image(x: np.ndarray, side: int) -> Image.Image:
    """(H, W) ink in [0, 1] (strokes 1) -> a side x side greyscale image, dark on white."""
    grey = np.rint(255 * (1 - np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64)), 0, 1)))
    image = Image.fromarray(grey.astype(np.uint8))
    if image.size != (side, side):
        image = image.resize((side, side), RESAMPLE.BICUBIC)
    return image


def _score_text(scores: np.ndarray) -> list[str]:
    if np.all((scores >= 0) & (scores <= 1)):
        return [f"{v:.3f}" for v in scores]
    return [f"{v:+.2f}" for v in scores]


def trial_image(test: np.ndarray, support: np.ndarray, scores: np.ndarray, answer: int,
                chosen: int, *, title: str | None = None, score_label: str = "score",
                cell: int = 84) -> Image.Image:
    """One N-way one-shot trial: the test image, the N candidates in a grid, their scores.

    test:    (H, W) ink in [0, 1], strokes 1 (as in ``trials.Trials``)
    support: (N, H, W) the candidates, the same way
    scores:  (N,) the model's score of each candidate (shown with 3 decimals when all lie
             in [0, 1], e.g. probabilities); ``score_label`` names them in the caption
    answer:  index of the candidate of the test's character; chosen: the model's choice
    cell:    side of a candidate in pixels (the test image is twice as large)

    The right answer gets a green frame; the model's choice a blue frame inside it when
    the choice is right, a red frame when it is wrong.
    """
    test, support = np.asarray(test), np.asarray(support)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if support.ndim != 3 or test.shape != support.shape[1:]:
        raise ValueError(f"need test (H, W) and support (N, H, W) of the same H, W; got "
                         f"test {test.shape}, support {support.shape}")
    n = support.shape[0]
    if scores.shape != (n,):
        raise ValueError(f"need one score per candidate: {n} candidates, {scores.size} scores")
    for name, index in (("answer", answer), ("chosen", chosen)):
        if not 0 <= int(index) < n:
            raise ValueError(f"{name} must be a candidate index in [0, {n}), not {index}")
    answer, chosen = int(answer), int(chosen)

    cols = min(n, max(1, math.ceil(math.sqrt(n * 5 / 4))))  # 20 -> 5 x 4
    rows = math.ceil(n / cols)
    big, gap, pad, ring = 2 * cell, 26, 20, 4
    f_title, f_text, f_small = font(17), font(14), font(13)
    lh_title, lh_text, lh_small = line_height(f_title), line_height(f_text), line_height(f_small)
    score_h = lh_small + 12
    row_h = cell + score_h + gap - 8

    grid_left = pad + big + 48
    grid_w = cols * cell + (cols - 1) * gap
    width = max(grid_left + grid_w + pad + 2 * ring, 2 * pad + big + 48 + 280)
    title_lines = wrap(title or f"A {n}-way one-shot trial", f_title, width - 2 * pad)
    header = pad + len(title_lines) * (lh_title + 6) + 4 + lh_text + 22
    grid_top = header + lh_small + 16
    legend_y = grid_top + rows * row_h + 6
    height = legend_y + lh_small + pad + 4
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)

    right = answer == chosen
    for j, line in enumerate(title_lines):
        put_text(draw, (pad, pad + j * (lh_title + 6)), line, f_title, TEXT)
    verdict = (f"The model chose candidate {chosen + 1}: right."
               if right else f"The model chose candidate {chosen + 1}: wrong - "
                             f"the answer is candidate {answer + 1}.")
    put_text(draw, (pad, header - 22 - lh_text), verdict, f_text, GREEN if right else RED)

    put_text(draw, (pad, header), "test image", f_small, TEXT)
    draw.rectangle([pad - 1, grid_top - 1, pad + big, grid_top + big], outline=EDGE)
    image.paste(ink_image(test, big), (pad, grid_top))
    put_text(draw, (grid_left, header),
             f"{n} candidates, one of them the same character ({score_label} under each)",
             f_small, TEXT)

    texts = _score_text(scores)
    for i in range(n):
        x = grid_left + (i % cols) * (cell + gap)
        y = grid_top + (i // cols) * row_h
        draw.rectangle([x - 1, y - 1, x + cell, y + cell], outline=EDGE)
        image.paste(ink_image(support[i], cell), (x, y))
        if i == answer:   # outer ring
            draw.rectangle([x - 2 * ring - 1, y - 2 * ring - 1, x + cell + 2 * ring,
                            y + cell + 2 * ring], outline=GREEN, width=ring)
        if i == chosen:   # inner ring
            draw.rectangle([x - ring - 1, y - ring - 1, x + cell + ring, y + cell + ring],
                           outline=BLUE if right else RED, width=ring)
        colour = GREEN if i == answer else (RED if i == chosen else TEXT)
        number = f"{i + 1}:"
        w_num, w_score = text_width(number, f_small), text_width(texts[i], f_small)
        tx = x + (cell - w_num - 5 - w_score) / 2
        ty = y + cell + 2 * ring + 5
        put_text(draw, (tx, ty), number, f_small, MUTED)
        put_text(draw, (tx + w_num + 5, ty), texts[i], f_small, colour)

    x = grid_left
    for label, colour in (("right answer", GREEN), ("model's choice, right", BLUE),
                          ("model's choice, wrong", RED)):
        draw.rectangle([x, legend_y, x + 14, legend_y + 14], outline=colour, width=3)
        put_text(draw, (x + 20, legend_y + 7), label, f_small, TEXT, valign="middle")
        x += 20 + text_width(label, f_small) + 24
    return image


# --------------------------------------------------------------------------------------
# Filters


def filter_grid(W: np.ndarray, *, title: str | None = None, cell: int = 60) -> Image.Image:
    """Convolution filters as a grid: W (F, C, K, K) -> a picture with one cell per filter.

    Each filter is scaled to its own range - its smallest weight black, its largest white
    (a constant filter is mid-grey) - and enlarged by whole pixels (nearest
    neighbour) to about ``cell`` px; the C channels of a filter sit side by side in its cell.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 4 or W.shape[2] != W.shape[3] or 0 in W.shape:
        raise ValueError(f"need filters W of shape (F, C, K, K), got {W.shape}")
    F, C, K, _ = W.shape
    scale = max(1, round(cell / K))
    side = K * scale
    cell_w = C * side + (C - 1) * 4
    cols = max(math.ceil(math.sqrt(F)), min(F, 8))
    rows = math.ceil(F / cols)
    gap, pad = 8, 18

    f_title, f_small = font(17), font(13)
    title = title or f"First-layer filters: {F} of {C}x{K}x{K}"
    caption = "each scaled to its own range: black = its smallest weight, white = its largest"
    grid_w = cols * cell_w + (cols - 1) * gap
    width = max(grid_w, text_width(title, f_title), text_width(caption, f_small)) + 2 * pad
    top = pad + line_height(f_title) + 10 + line_height(f_small) + 16
    height = top + rows * side + (rows - 1) * gap + pad
    image = Image.new("RGB", (width, height), GRID)
    draw = ImageDraw.Draw(image)
    put_text(draw, (pad, pad), title, f_title, TEXT)
    put_text(draw, (pad, pad + line_height(f_title) + 10), caption, f_small, MUTED)

    left = (width - grid_w) // 2
    for i in range(F):
        w = W[i]
        lo, hi = np.nanmin(w), np.nanmax(w)
        grey = (w - lo) / (hi - lo) if hi > lo else np.full_like(w, 0.5)  # (C, K, K)
        x = left + (i % cols) * (cell_w + gap)
        y = top + (i // cols) * (side + gap)
        draw.rectangle([x - 1, y - 1, x + cell_w, y + side], outline=EDGE)
        for c in range(C):
            tile = Image.fromarray(np.rint(255 * grey[c]).astype(np.uint8))
            image.paste(tile.resize((side, side), RESAMPLE.NEAREST), (x + c * (side + 4), y))
    return image
