"""The array backend: NumPy on the CPU or CuPy on an NVIDIA GPU.

Every op and layer receives a :class:`Backend` and computes only through its array
module ``xp``, so one piece of code runs on both. Nothing here is global: two backends
(float32 for training, float64 for gradient checks) can live side by side.

Weights are always drawn on the host from a ``numpy.random.Generator`` and then moved
with :meth:`Backend.asarray`, so one seed gives the same model on either backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .threads import Workers, blas_on_one_thread, cpu_threads

BACKEND_NAMES = ("numpy", "cupy")
CPU_IM2COL_BYTES = 8 * 2**20  # fits in a CPU's L2/L3 cache
GPU_IM2COL_BYTES = 2 * 2**30  # the paper's conv2 on 128 pairs is 5.6 GB: 3 chunks


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (e.g. CuPy missing or no CUDA device)."""


@dataclass(frozen=True)
class Backend:
    """An array module plus the dtype every array of a model uses.

    name:  "numpy" or "cupy"
    xp:    the array module (``numpy`` or ``cupy``)
    dtype: the floating dtype of data and parameters (float32 by default)
    im2col_bytes: how big one im2col buffer of a convolution may grow. On the CPU a few MB
        stay in cache between the unfolding copy and the matrix product; on a GPU every
        chunk costs K*K kernel launches, so there it is large and a batch is one chunk.
    workers: threads for the elementwise work NumPy runs on one core, and for the products
        when BLAS runs on one (``threads.Workers``: ``threads.cpu_threads`` on the CPU, one
        on a GPU). Not part of the backend's identity.
    """

    name: str
    xp: Any
    dtype: Any = np.float32
    im2col_bytes: int = CPU_IM2COL_BYTES
    workers: Workers = field(default_factory=Workers, compare=False)

    def asarray(self, a, dtype=None):
        """Host or device array -> array of this backend, in ``dtype`` (default: ``self.dtype``)."""
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype)

    def to_numpy(self, a) -> np.ndarray:
        """Array of this backend -> NumPy array on the host (a copy only when needed)."""
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def with_dtype(self, dtype) -> "Backend":
        """The same backend computing in another dtype (float64 for gradient checks)."""
        return Backend(self.name, self.xp, np.dtype(dtype).type, self.im2col_bytes,
                       self.workers)


def _load_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'cupy' needs CuPy: install it with `pip install 'tinysiamese[gpu]'` "
            "(or the cupy-cudaXXx wheel matching your CUDA), or use --backend numpy"
        ) from exc
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendUnavailableError("no CUDA device found")
        cupy.zeros(1).sum().item()  # fails early if the driver or device is unusable
    except BackendUnavailableError:
        raise BackendUnavailableError(
            "backend 'cupy': CuPy is installed but no CUDA device is usable; use --backend numpy"
        ) from None
    except Exception as exc:  # CUDA driver/runtime errors have many types
        raise BackendUnavailableError(
            f"backend 'cupy': CuPy is installed but no CUDA device is usable ({exc}); "
            "use --backend numpy"
        ) from None
    return cupy


def get_backend(name: str = "numpy", dtype=np.float32) -> Backend:
    """Return the backend called ``name`` ("numpy" or "cupy") computing in ``dtype``.

    Raises ValueError for an unknown name and BackendUnavailableError when CuPy or a
    CUDA device is missing.
    """
    if name == "numpy":
        workers = Workers(cpu_threads(), products=blas_on_one_thread())
        return Backend("numpy", np, np.dtype(dtype).type, workers=workers)
    if name == "cupy":
        return Backend("cupy", _load_cupy(), np.dtype(dtype).type, GPU_IM2COL_BYTES)
    raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")


def array_module(x):
    """The array module that owns ``x``: CuPy for a CuPy array, else NumPy.

    Lets parameter-free layers (ReLU, MaxPool2D, ...) be built without a backend and
    follow their input. CuPy is imported only when the input already is a CuPy array.
    """
    if hasattr(x, "__cuda_array_interface__"):
        import cupy

        return cupy
    return np


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the system.

    A training step allocates its large activations afresh (hundreds of MB for the paper's
    net); glibc hands blocks over 32 MB back to the kernel on free, and touching fresh pages
    again costs more than the arithmetic on some machines (scripts/bench.py --tune-malloc:
    koch at batch 128 went from 8 to 12.5 pairs/s). Linux/glibc only; elsewhere a no-op.
    Returns whether the setting took.
    """
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # mallopt takes a C int: 2**31 - 1 bytes (2 GB) is the largest trim threshold.
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError, TypeError):
        return False
