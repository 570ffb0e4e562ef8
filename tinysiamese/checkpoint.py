"""Checkpoints: one ``.npz`` file with every array and a JSON header, never pickle.

Layout of the archive (all plain arrays, so ``np.load(..., allow_pickle=False)`` reads it):

    meta              0-d unicode array: JSON with format, config, epoch, step, rng state, ...
    param/conv1.W     every model parameter, by its flat name
    velocity/conv1.W  the optimiser's velocities (absent in weights-only files)

Files are written to a temporary file in the same folder, flushed to disk and then renamed
over the target, so a crash, a kill or a full disk mid-write leaves the previous checkpoint
intact: a reader sees either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "tinysiamese-checkpoint-v1"


class CheckpointError(Exception):
    """A file that is not a usable tinysiamese checkpoint (the message says why)."""


@dataclass
class Checkpoint:
    """What a checkpoint holds, on the host: params/velocities {name: array}, meta dict."""

    params: dict
    meta: dict
    velocities: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return self.meta["config"]


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX and Windows, so ``path`` is never half-written. On any
    error the temporary file is removed and the old ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_checkpoint(path, params: dict, meta: dict, velocities: dict | None = None,
                    dtype=None) -> None:
    """Write a checkpoint atomically.

    params, velocities: {name: host array} (use ``backend.to_numpy``); meta: JSON-able dict
    (it must hold "config"); dtype: store parameters in this dtype (float16 to ship small).
    """
    arrays = {"meta": np.array(json.dumps({"format": FORMAT, **meta}))}
    for k, v in params.items():
        arrays[f"param/{k}"] = np.asarray(v, dtype=dtype or np.asarray(v).dtype)
    for k, v in (velocities or {}).items():
        arrays[f"velocity/{k}"] = np.asarray(v)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint, refusing anything that is not one (CheckpointError, one line)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (give the path of a .npz "
                              "written by `tinysiamese train`, e.g. runs/<run>/best.npz)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
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
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r} "
                              f"(this version reads {FORMAT})")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    velocities = {k[9:]: v for k, v in arrays.items() if k.startswith("velocity/")}
    return Checkpoint(params, meta, velocities)


def model_from_checkpoint(ckpt: Checkpoint, backend):
    """Build the SiameseNet that ``ckpt`` describes and load its weights onto ``backend``."""
    from .model import SiameseNet

    model = SiameseNet(ckpt.config, backend=backend, rng=np.random.default_rng(0))
    try:
        model.load_params({k: v.astype(np.float32) for k, v in ckpt.params.items()})
    except ValueError as exc:
        raise CheckpointError(f"checkpoint does not match its own config: {exc}") from None
    return model
