"""Checkpoints: one ``.npz`` file with every array and a JSON header, never pickle.

Layout of the archive (all plain arrays, so ``np.load(..., allow_pickle=False)`` reads it):

    meta              0-d unicode array: JSON with format, config, epoch, step, rng state, ...
    param/conv1.W     every model parameter, by its flat name
    velocity/conv1.W  the optimiser's velocities (absent in weights-only files)
    average/conv1.W   the running weight average, when training keeps one (optim.average)

Files are written by :func:`tinysiamese.files.atomic_write`, so a crash, a kill or a full
disk mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import atomic_write

FORMAT = "tinysiamese-checkpoint-v1"


class CheckpointError(Exception):
    """A file that is not a usable tinysiamese checkpoint (the message says why)."""


@dataclass
class Checkpoint:
    """What a checkpoint holds, on the host: params/velocities/averages {name: array}, meta."""

    params: dict
    meta: dict
    velocities: dict = field(default_factory=dict)
    averages: dict = field(default_factory=dict)
    source: str = "checkpoint"  # the file it was read from, for messages

    @property
    def config(self) -> dict:
        return self.meta["config"]


def save_checkpoint(path, params: dict, meta: dict, velocities: dict | None = None,
                    dtype=None, averages: dict | None = None) -> None:
    """Write a checkpoint atomically.

    params, velocities, averages: {name: host array} (use ``backend.to_numpy``); meta:
    JSON-able dict (it must hold "config"); dtype: store parameters in this dtype (float16
    to ship small).
    """
    arrays = {"meta": np.array(json.dumps({"format": FORMAT, **meta}))}
    for k, v in params.items():
        arrays[f"param/{k}"] = np.asarray(v, dtype=dtype or np.asarray(v).dtype)
    for k, v in (velocities or {}).items():
        arrays[f"velocity/{k}"] = np.asarray(v)
    for k, v in (averages or {}).items():
        arrays[f"average/{k}"] = np.asarray(v)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path, weights: bool = True) -> Checkpoint:
    """Read a checkpoint, refusing anything that is not one (CheckpointError, one line).

    weights=False: its meta record only (config, progress), with no array read; what a
    resumed run checks before it loads its data (the paper's net holds 450 MB of arrays)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give the .npz file in it, "
                              f"e.g. {path / 'best.npz'}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (give the path of a .npz "
                              "written by `tinysiamese train`, e.g. runs/<run>/best.npz)")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path} ({exc.strerror or exc})") from None
    # np.load takes any non-zip, non-.npy file for a pickle: say what the file really is.
    if magic[:2] != b"PK":
        kind = ("a single .npy array" if magic == b"\x93NUM" else
                "a pickle, which is never loaded (it can run code)" if magic[:1] == b"\x80" else
                "not a zip archive" if magic else "empty")
        raise CheckpointError(f"{path} is not a tinysiamese checkpoint: it is {kind}; give a "
                              ".npz written by `tinysiamese train`, e.g. runs/<run>/best.npz")
    try:
        with np.load(path, allow_pickle=False) as z:  # lazy: each array is read when asked
            arrays = {k: z[k] for k in z.files if weights or k == "meta"}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(f"{path} holds pickled objects, which are never loaded "
                                  "(they can run code): not a tinysiamese checkpoint") from None
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a .npz checkpoint or is truncated ({exc}); "
                              "use another checkpoint, e.g. best.npz of the run") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a tinysiamese checkpoint "
                              "(no meta record)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its meta record is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT \
            or not isinstance(meta.get("config"), dict):
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: unknown checkpoint format {found!r} "
                              f"(this version reads {FORMAT})")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    velocities = {k[9:]: v for k, v in arrays.items() if k.startswith("velocity/")}
    averages = {k[8:]: v for k, v in arrays.items() if k.startswith("average/")}
    return Checkpoint(params, meta, velocities, averages, str(path))


def model_from_checkpoint(ckpt: Checkpoint, backend):
    """Build the SiameseNet that ``ckpt`` describes and load its weights onto ``backend``."""
    from .config import ConfigError, config_from_dict
    from .model import SiameseNet

    try:
        cfg = config_from_dict(ckpt.config, ckpt.source)
        model = SiameseNet(cfg.network, backend=backend, rng=np.random.default_rng(0))
    except (ConfigError, KeyError, TypeError, ValueError, IndexError) as exc:  # a damaged config
        raise CheckpointError(f"{ckpt.source}: its config cannot build a model "
                              f"({exc.__class__.__name__}: {exc})") from None
    try:
        model.load_params({k: v.astype(np.float32) for k, v in ckpt.params.items()})
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{ckpt.source}: its arrays do not match its config (preset "
                              f"{cfg.preset!r}): {exc}") from None
    return model
