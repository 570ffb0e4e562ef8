"""The model shipped with the package, used when ``eval``/``verify`` get no checkpoint.

``small.npz`` is the best ``small``-preset checkpoint of the run described in the README,
stored in float16 (weights only). ``scripts/ship_model.py`` makes it from a run's best.npz.
"""
from __future__ import annotations

from pathlib import Path

PRETRAINED_NAME = "small.npz"


def pretrained_path() -> Path:
    """Where the shipped checkpoint lies inside the installed package."""
    return Path(__file__).resolve().parent / PRETRAINED_NAME
