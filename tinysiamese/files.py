"""Writing files atomically: a reader sees the old file or the new one, never half of one.

Checkpoints, pictures, a run's config and summary are all written by :func:`atomic_write`:
to a temporary file in the same folder, flushed to disk, then renamed over the target.
A crash, a kill or a full disk mid-write leaves the previous file intact.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"  # atomic_write's temporary files: .<name>.<random>.tmp


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on POSIX and Windows, so ``path`` is never half-written. On any
    error the temporary file is removed and the old ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the mode open() would
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


def remove_stale_temp_files(folder) -> list[Path]:
    """Delete the temporary files that a killed :func:`atomic_write` left in ``folder``.

    They are named ``.<target>.<random>.tmp``: hidden, never ending in ``.npz``, so nothing
    takes them for a checkpoint; this only frees their space. Returns the paths removed.
    """
    removed = []
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed
