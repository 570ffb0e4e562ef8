"""Finite-difference gradient checks: the proof that every backward pass is right.

For a layer y = f(x; θ) we pick a *random* upstream gradient g and check the scalar
L = sum(g * y). Backward must return dL/dx and dL/dθ; central differences estimate them:

    dL/dv[i] ≈ (L(v[i] + h) - L(v[i] - h)) / 2h          for every element v[i]

A random g (not all ones) makes sure a transposed or mis-summed gradient cannot cancel out.
Each tensor's result is the relative error  max|a - n| / max(max(|a| + |n|), tiny).

Work in float64 only: in float32 a step h small enough for an accurate derivative drowns
in rounding error, so the check would fail correct code. Inputs must also stay away from
kinks, where the derivative jumps: ReLU at 0, ties inside a max-pool window, h1 == h2 in
the L1 join. That is the caller's job; :func:`standard_cases` shows how.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

import numpy as np

from .backend import array_module
from .layers import Conv2D, ConvPool2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1
from .losses import bce_with_logits
from .config import NetworkConfig
from .model import SiameseNet

TOLERANCE = 1e-6


@dataclass(frozen=True)
class CheckResult:
    """One tensor's verdict: which layer, which tensor, its shape, the error, pass/fail."""

    layer: str
    tensor: str
    shape: tuple
    rel_error: float
    passed: bool


def rel_error(a, n, tiny: float = 1e-12) -> float:
    """max|a - n| / max(max(|a| + |n|), tiny) for two host arrays."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return float(np.abs(a - n).max() / max(float((np.abs(a) + np.abs(n)).max()), tiny))


def numerical_gradient(f, v, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function f() with respect to the array v.

    v is perturbed in place, one element at a time, and restored; works for NumPy and
    CuPy arrays. Returns a host float64 array shaped like v.
    """
    grad = np.zeros(v.shape)
    for i in np.ndindex(*v.shape):
        old = float(v[i])
        v[i] = old + h
        plus = f()
        v[i] = old - h
        minus = f()
        v[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def _require_float64(arrays, where):
    for a in arrays:
        if a.dtype != np.float64:
            raise ValueError(f"gradient check of {where} needs float64 arrays, got {a.dtype}: "
                             "in float32 the finite differences drown in rounding error "
                             "(build the layer with backend.with_dtype('float64'))")


def check_layer(layer, inputs, *, name="layer", rng=None, to_numpy=np.asarray, h=1e-6,
                tol=TOLERANCE) -> list[CheckResult]:
    """Check the input and parameter gradients of one layer.

    layer:  any object with forward(*inputs), backward(dy) and params/grads dicts
    inputs: a tuple of float64 backend arrays (two for WeightedL1, one otherwise)
    Returns one CheckResult per input ("dx", or "dh1"/"dh2") and per parameter.
    """
    rng = rng or np.random.default_rng(0)
    _require_float64(list(inputs) + list(layer.params.values()), name)
    y = layer.forward(*inputs)
    g = array_module(y).asarray(rng.standard_normal(tuple(y.shape)), dtype=y.dtype)

    def loss():
        return float((layer.forward(*inputs) * g).sum())

    layer.forward(*inputs)
    dy = g.copy()  # backward gets a copy: a backward that overwrites dy must not fool us
    dxs = layer.backward(dy)
    dxs = dxs if isinstance(dxs, tuple) else (dxs,)
    dy_changed = rel_error(to_numpy(dy), to_numpy(g))
    analytic = {("dx" if len(inputs) == 1 else f"dh{i + 1}"): dx for i, dx in enumerate(dxs)}
    targets = {k: x for k, x in zip(analytic, inputs)}
    for k, v in layer.params.items():
        analytic[f"d{k}"] = layer.grads[k].copy()
        targets[f"d{k}"] = v
    results = []
    for k, v in targets.items():
        num = numerical_gradient(loss, v, h)
        err = rel_error(to_numpy(analytic[k]), num)
        results.append(CheckResult(name, k, tuple(v.shape), err, err < tol))
    if dy_changed > 0:  # the upstream gradient belongs to the caller: never write into it
        results.append(CheckResult(name, "dy unchanged", tuple(g.shape), dy_changed, False))
    return results


def check_siamese(model: SiameseNet, x1, x2, y, *, h=1e-6, tol=TOLERANCE) -> list[CheckResult]:
    """End-to-end check of the loss bce(model(x1, x2), y) for every model parameter."""
    _require_float64(list(model.params().values()) + [x1, x2], "the siamese net")
    return _check_whole_net(model, "SiameseNet", lambda: model.forward_logits(x1, x2),
                            model.backward_logits, y, None, h, tol)


def check_siamese_pairs(model: SiameseNet, x, first, second, y, weight, *, h=1e-6,
                        tol=TOLERANCE) -> list[CheckResult]:
    """The same for many pairs among one batch of images (group batches): the weighted loss
    bce(model.forward_pair_logits(x, first, second), y, weight). An image in several pairs
    must get the sum of their gradients: this is what proves the scatter-add."""
    _require_float64(list(model.params().values()) + [x], "the siamese net")
    return _check_whole_net(model, "SiameseNet, all pairs",
                            lambda: model.forward_pair_logits(x, first, second),
                            model.backward_pair_logits, y, weight, h, tol)


def _check_whole_net(model, name, logits, backward, y, weight, h, tol) -> list[CheckResult]:
    """Every parameter's gradient of bce(logits(), y, weight), by ``backward`` and numerically."""

    def loss():
        return float(bce_with_logits(logits(), y, weight)[0])

    _, dz = bce_with_logits(logits(), y, weight)
    backward(dz)
    analytic = {k: model.backend.to_numpy(v).copy() for k, v in model.grads().items()}
    results = []
    for k, v in model.params().items():
        err = rel_error(analytic[k], numerical_gradient(loss, v, h))
        results.append(CheckResult(name, k, tuple(v.shape), err, err < tol))
    return results


# --------------------------------------------------------------------------- the standard cases
LAYER_NAMES = ("Conv2D", "MaxPool2D", "ConvPool2D", "Dense", "ReLU", "Sigmoid", "Flatten",
               "WeightedL1", "SiameseNet")

# What a student's replacement class is constructed with, by the layer it replaces.
STUDENT_ARGS = {
    "Conv2D": "Conv2D(3, 4, 3, backend=backend, rng=rng)  # in, out channels, kernel size",
    "MaxPool2D": "MaxPool2D(2)",
    "Dense": "Dense(6, 5, backend=backend, rng=rng)  # in, out features",
    "ReLU": "ReLU()",
    "Sigmoid": "Sigmoid()",
    "Flatten": "Flatten()",
    "WeightedL1": "WeightedL1(6, backend=backend, rng=rng)  # features",
}


def _away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so that no ReLU kink is within a step h."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def make_case(kind: str, backend, rng, cls=None):
    """Build the tiny standard check for layer ``kind``: returns (layer, inputs).

    ``cls`` replaces the tinysiamese class (a student's own layer with the same API).
    Odd sizes are used on purpose: they catch off-by-one errors and odd-edge pooling.
    """
    a = backend.asarray
    if kind == "Conv2D":
        layer = (cls or Conv2D)(3, 4, 3, backend=backend, rng=rng)
        return layer, (a(rng.standard_normal((2, 3, 7, 6))),)
    if kind == "MaxPool2D":
        # A permutation of distinct values keeps every window free of ties.
        x = rng.permutation(2 * 3 * 5 * 7).reshape(2, 3, 5, 7) / 10.0
        return (cls or MaxPool2D)(2), (a(x),)
    if kind == "ConvPool2D":
        # two input channels and odd sizes (9 x 8 -> 7 x 6 -> 3 x 3): dx, the shifted
        # kernels' fold and the pool's dropped edge are all in play
        layer = (cls or ConvPool2D)(2, 3, 3, 2, backend=backend, rng=rng)
        return layer, (a(rng.standard_normal((2, 2, 9, 8))),)
    if kind == "Dense":
        layer = (cls or Dense)(6, 5, backend=backend, rng=rng)
        return layer, (a(rng.standard_normal((4, 6))),)
    if kind == "ReLU":
        return (cls or ReLU)(), (a(_away_from_zero(rng, (3, 2, 4, 5))),)
    if kind == "Sigmoid":
        return (cls or Sigmoid)(), (a(rng.standard_normal((4, 7)) * 3),)
    if kind == "Flatten":
        return (cls or Flatten)(), (a(rng.standard_normal((2, 3, 4, 5))),)
    if kind == "WeightedL1":
        layer = (cls or WeightedL1)(6, backend=backend, rng=rng)
        h1 = rng.random((5, 6))
        h2 = h1 + _away_from_zero(rng, (5, 6), 0.05) * 0.2  # h1 != h2 everywhere
        return layer, (a(h1), a(h2))
    raise ValueError(f"unknown layer {kind!r}: choose one of {', '.join(LAYER_NAMES)}")


def check_standard(kind: str, backend, seed: int = 0, cls=None) -> list[CheckResult]:
    """Run the standard check of ``kind`` (a layer name or "SiameseNet") in float64."""
    backend = backend.with_dtype(np.float64)
    rng = np.random.default_rng(seed)
    if kind == "SiameseNet":
        network = NetworkConfig(image_size=12, conv=((2, 3), (3, 3)), dense=4, init="fan_in")
        model = SiameseNet(network, backend=backend, rng=rng)
        for name, layer in model.named_layers():
            if name.startswith("conv"):
                layer.params["b"] += 0.5  # keep the ReLUs alive: a dead net gives h1 == h2, a kink
        x1 = backend.asarray(rng.random((3, 1, 12, 12)))
        x2 = backend.asarray(rng.random((3, 1, 12, 12)))
        y = backend.asarray([1.0, 0.0, 1.0])
        # and every pair among the 6 images, as in group batches: each image in 5 pairs
        first, second = np.triu_indices(6, k=1)
        same = (first % 3 == second % 3).astype(np.float64)  # x1[k] and x2[k] "match"
        weight = np.where(same > 0, 0.5 / same.sum(), 0.5 / (len(same) - same.sum()))
        xp = backend.xp
        return check_siamese(model, x1, x2, y) + check_siamese_pairs(
            model, xp.concatenate([x1, x2]), xp.asarray(first), xp.asarray(second),
            backend.asarray(same), backend.asarray(weight))
    layer, inputs = make_case(kind, backend, rng, cls)
    results = check_layer(layer, inputs, name=kind if cls is None else cls.__name__, rng=rng,
                          to_numpy=backend.to_numpy)
    if kind == "Conv2D" and cls is None:  # the same conv through the Fourier path (fftconv)
        layer.method = "fft"
        results += check_layer(layer, inputs, name="Conv2D, Fourier", rng=rng,
                               to_numpy=backend.to_numpy)
    return results


def load_student_layer(spec: str):
    """'module:Class' -> (the class, the tinysiamese layer it replaces).

    The layer it replaces is read from the end of the class name (``MyConv2D`` ->
    ``Conv2D``), so the student's class must take the constructor arguments in STUDENT_ARGS.
    """
    module_name, _, cls_name = spec.partition(":")
    if not module_name or not cls_name:
        raise ValueError(f"--layer {spec!r}: write a layer name or module:Class")
    if os.getcwd() not in sys.path:  # the console script, unlike `python -m`, leaves it out
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} ({exc}); run from the folder "
                         "that holds it or put it on PYTHONPATH") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ValueError(f"module {module_name!r} has no class {cls_name!r}")
    for kind in sorted(STUDENT_ARGS, key=len, reverse=True):
        if cls_name.endswith(kind):
            return cls, kind
    raise ValueError(f"cannot tell which layer {cls_name!r} replaces: end its name with one of "
                     f"{', '.join(STUDENT_ARGS)} (e.g. MyConv2D)")
