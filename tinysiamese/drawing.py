"""Drawing with Pillow alone: the colours, fonts, text and axes that the pictures share.

    font(size), put_text(draw, xy, text, font, fill, align, valign)   text with its ink box
    text_width, line_height, wrap, fit                                measuring and fitting
    nice_ticks, tick_label, axes_panel                                 one plot with its axes

Pillow's own text anchors work with TrueType fonts only, and older Pillows ship a single
bitmap font, so text is aligned here by its measured ink box: the same code then serves
both fonts. The pictures themselves are in :mod:`tinysiamese.plots`.
"""
from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

WHITE = (255, 255, 255)
TEXT = (30, 41, 59)        # titles, axes (a slate, not a grey: tests tell it from images)
MUTED = (100, 116, 139)    # captions and tick labels
GRID = (226, 232, 240)     # grid lines, and the backdrop behind filters
EDGE = (148, 163, 184)     # thin borders around images

RESAMPLE = getattr(Image, "Resampling", Image)  # Pillow < 9.1 keeps the filters on Image


@lru_cache(maxsize=None)
def font(size: int):
    """Pillow's built-in font at ``size`` px (Pillow >= 10.1); older Pillows have one small
    bitmap font, which is used at its own size."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def scalable() -> bool:
    return isinstance(font(12), ImageFont.FreeTypeFont)


def put_text(draw, xy, text, f, fill, align="left", valign="top") -> tuple[int, int, int, int]:
    """Draw ``text`` with its ink box aligned at ``xy``; returns that box. (Pillow's own
    anchors work with TrueType fonts only, so the bitmap fallback is aligned by hand.)"""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
    w, h = x1 - x0, y1 - y0
    x = xy[0] - {"left": 0, "center": w / 2, "right": w}[align]
    y = xy[1] - {"top": 0, "middle": h / 2, "bottom": h}[valign]
    draw.text((round(x - x0), round(y - y0)), text, font=f, fill=fill)
    return round(x), round(y), round(x) + w, round(y) + h


def text_width(text, f) -> int:
    x0, _, x1, _ = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=f)
    return x1 - x0


def wrap(text: str, f, width: int) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``width`` px (a longer word stays)."""
    lines = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", f) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def fit(text: str, f, width: int) -> str:
    """``text``, cut short with "..." where it is wider than ``width`` px."""
    if text_width(text, f) <= width:
        return text
    while len(text) > 1 and text_width(text + "...", f) > width:
        text = text[:-1]
    return text.rstrip() + "..."


def line_height(f) -> int:
    _, y0, _, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), "Ag0%", font=f)
    return y1 - y0


def nice_ticks(lo: float, hi: float, max_ticks: int = 6, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(1, max_ticks - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * magnitude
        if integer:
            step = max(1.0, round(step))
        if math.ceil(hi / step - 1e-9) - math.floor(lo / step + 1e-9) <= max_ticks - 1:
            break
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def tick_label(value: float, step: float, percent: bool = False) -> str:
    if percent:
        value, step = 100 * value, 100 * step
    step = round(step, 9)  # 100 * 0.05 is 5.000000000000001
    # as many decimals as the step needs, so that ticks 0.25 apart never read 0.2 and 0.5
    decimals = next(d for d in range(10) if abs(round(step, d) - step) <= 1e-9 * step)
    return f"{value:.{decimals}f}" + ("%" if percent else "")


def dashed_vline(draw, x, y0, y1, fill, width, dash):
    for y in range(int(y0), int(y1), 2 * dash):
        draw.line([(x, y), (x, min(y + dash, y1))], fill=fill, width=width)


def axes_panel(draw, box, xs, series, xticks, yticks, heading, s, percent=False,
               best_x=None, marker=None):
    """One plot: frame, grid, ticks and their labels, x label, curves.

    box: (left, top, right, bottom) of the plotting area; series: [(ys, colour)];
    best_x: an epoch to mark with a dashed line; marker: None or (x, y, colour, label), a
    point to highlight; s: supersampling factor.
    """
    left, top, right, bottom = box
    x_lo, x_hi, y_lo, y_hi = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def px(x, y):
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    small = font(12 * s)
    ystep = yticks[1] - yticks[0] if len(yticks) > 1 else 1.0
    for y in yticks:
        _, py = px(x_lo, y)
        draw.line([(left, py), (right, py)], fill=GRID, width=s)
        put_text(draw, (left - 6 * s, py), tick_label(y, ystep, percent), small, MUTED,
                 align="right", valign="middle")
    for x in xticks:
        qx, _ = px(x, y_lo)
        draw.line([(qx, top), (qx, bottom)], fill=GRID, width=s)
        draw.line([(qx, bottom), (qx, bottom + 4 * s)], fill=TEXT, width=s)
        put_text(draw, (qx, bottom + 7 * s), f"{x:g}", small, MUTED, align="center")
    draw.rectangle([left, top, right, bottom], outline=TEXT, width=s)
    put_text(draw, (left, top - 8 * s), heading, font(14 * s), TEXT, valign="bottom")
    put_text(draw, ((left + right) / 2, bottom + 14 * s + line_height(small)), "epoch",
             font(13 * s), TEXT, align="center")
    if best_x is not None:
        dashed_vline(draw, px(best_x, y_lo)[0], top + s, bottom, EDGE, s, 5 * s)
    for ys, colour in series:
        points = [px(x, y) for x, y in zip(xs, ys)]
        finite = [math.isfinite(y) for y in ys]
        run = []
        for p, ok in zip(points + [None], finite + [False]):  # lines through finite stretches
            if ok:
                run.append(p)
                continue
            if len(run) > 1:
                draw.line(run, fill=colour, width=2 * s, joint="curve")
            if len(xs) <= 30:
                for q in run:
                    r = 2.5 * s
                    draw.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=colour)
            run = []
    if marker is not None:
        mx, my, colour, label = marker
        qx, qy = px(mx, my)
        r = 5 * s
        draw.ellipse([qx - r, qy - r, qx + r, qy + r], fill=WHITE, outline=colour, width=2 * s)
        f = font(12 * s)
        right_side = qx < (left + right) / 2
        below = qy < top + 40 * s
        args = ((qx + (10 if right_side else -10) * s, qy + (14 if below else -14) * s), label, f)
        kw = {"align": "left" if right_side else "right", "valign": "top" if below else "bottom"}
        x0, y0, x1, y1 = put_text(draw, *args, WHITE, **kw)  # measure, then box it
        m = 4 * s
        draw.rectangle([x0 - m, y0 - m, x1 + m, y1 + m], fill=WHITE, outline=colour, width=s)
        put_text(draw, *args, colour, **kw)
