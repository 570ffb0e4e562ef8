"""Momentum SGD with per-layer learning rates, momenta and L2 weights (Koch et al. 3.2).

For the parameters w of layer j, at step t of epoch e:

    Δw_t = μ_j(e) Δw_{t-1} - η_j(e) (∇L(w) + 2 λ_j w)
    w    ← w + Δw_t

η_j(e) = η_j · d^e (the paper decays by 1% per epoch: d = 0.99), and μ_j(e) rises
linearly from 0.5 at epoch 0 to its final value μ_j, reached after ``momentum_epochs``.
The schedules are pure functions of the epoch; the hyper-parameters (``groups``) are kept
apart from the state (velocities keyed by parameter name, and the epoch).

``WeightAverage`` optionally keeps a running average of the weights beside them (not in
the paper; ``"average"`` in the optim config): training steps the weights as above, and
the average is what gets validated and kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from .backend import array_module
from .threads import Workers

# Biases are not decayed: L2 on them only slows training (the paper's λ is on weights).
DECAYED = ("W", "alpha")


def learning_rate(lr0: float, epoch: int, decay: float = 0.99) -> float:
    """η(e) = η_0 · decay^e."""
    return lr0 * decay ** epoch


def momentum(final: float, epoch: int, ramp_epochs: int, start: float = 0.5) -> float:
    """μ(e): linear from ``start`` at epoch 0 to ``final`` at ``ramp_epochs``, then flat."""
    if ramp_epochs <= 0 or epoch >= ramp_epochs:
        return final
    return start + (final - start) * epoch / ramp_epochs


def momentum_step(w, v, g, lr: float, mu: float, l2: float, scratch=None):
    """One update in place: v ← μ v - η (g + 2 λ w); w ← w + v. All arrays one shape.

    ``scratch`` (same shape) holds η (g + 2 λ w), so that a step allocates nothing: the
    dense layer of the paper's net has 37.7M weights, and fresh temporaries of that size
    cost more than the arithmetic.
    """
    xp = array_module(w)
    step = xp.empty_like(g) if scratch is None else scratch
    if l2:
        xp.multiply(w, 2.0 * l2, out=step)  # one pass: no copy of w first
        step += g
        step *= lr
    else:
        xp.multiply(g, lr, out=step)
    v *= mu
    v -= step
    w += v


def _momentum_rows(arrays, lr, mu, l2, start, stop):
    """momentum_step on rows [start, stop) of (w, v, g, scratch): one thread's part."""
    w, v, g, scratch = (a[start:stop] for a in arrays)
    momentum_step(w, v, g, lr, mu, l2, scratch)


def make_groups(layer_names, optim) -> dict:
    """Per-layer hyper-parameters from an ``config.OptimConfig``: its defaults, then its
    ``layers`` overrides -> {"conv1": {"lr", "momentum", "l2"}, ...}."""
    groups = {}
    for name in layer_names:
        g = {"lr": float(optim.lr), "momentum": float(optim.momentum), "l2": float(optim.l2)}
        g.update({k: float(v) for k, v in optim.layers.get(name, {}).items()})
        groups[name] = g
    return groups


@dataclass
class MomentumSGD:
    """The optimiser: hyper-parameter groups (per layer) + state (velocities, epoch).

    params, grads: a model's flat views {"conv1.W": array, ...} (the model's own arrays).
    groups: {"conv1": {"lr": η_j, "momentum": μ_j, "l2": λ_j}, ...}, keyed by layer name.
    workers: threads that share each update by rows (``Backend.workers``; the updates are
    elementwise, on one core in NumPy, and the paper's dense layer has 37.7M weights).
    """

    params: dict
    grads: dict
    groups: dict
    lr_decay: float = 0.99
    momentum_epochs: int = 10
    epoch: int = 0
    velocities: dict = field(default_factory=dict)
    workers: Workers = field(default_factory=Workers, repr=False, compare=False)

    def __post_init__(self):
        for k, w in self.params.items():
            if k not in self.velocities:
                self.velocities[k] = w * 0
        # One reusable buffer per parameter for momentum_step (not state: never saved).
        self._scratch = {k: w * 0 for k, w in self.params.items()}

    def hyper(self, layer: str) -> tuple[float, float, float]:
        """(η, μ, λ) of ``layer`` at the current epoch."""
        g = self.groups[layer]
        return (learning_rate(g["lr"], self.epoch, self.lr_decay),
                momentum(g["momentum"], self.epoch, self.momentum_epochs), g["l2"])

    def step(self) -> None:
        """Apply one update to every parameter, from the gradients of the last backward."""
        for k, w in self.params.items():
            layer, tensor = k.split(".")
            lr, mu, l2 = self.hyper(layer)
            arrays = (w, self.velocities[k], self.grads[k], self._scratch[k])
            rows = partial(_momentum_rows, arrays, lr, mu, l2 if tensor in DECAYED else 0.0)
            self.workers.split(rows, len(w), elements=w.size)

    def end_epoch(self) -> None:
        """Advance the schedules: the next epoch's η and μ."""
        self.epoch += 1


@dataclass
class WeightAverage:
    """An exponential moving average of the weights (Polyak averaging), kept beside them.

    After each optimiser step t (counting from 1):

        a ← a + (1 - β_t) (w - a),   β_t = min(β, (1 + t) / (10 + t))

    SGD's last weights jitter around a minimum at the scale of the learning rate; their
    average over the last ~1/(1 - β) steps sits closer to its centre, and often generalises
    better. The warm-up β_t forgets the random initial weights within the first few dozen
    steps instead of over 1/(1 - β) of them. The average never feeds back into training:
    it is the model that is validated and kept as best.npz.

    params: a model's flat views {"conv1.W": array, ...}; averages: the state to go on from
    (a copy of ``params`` when fresh); workers: as for ``MomentumSGD``.
    """

    params: dict
    decay: float
    steps: int = 0
    averages: dict = field(default_factory=dict)
    workers: Workers = field(default_factory=Workers, repr=False, compare=False)

    def __post_init__(self):
        for k, w in self.params.items():
            if k not in self.averages:
                self.averages[k] = w.copy()
        self._scratch = {k: w * 0 for k, w in self.params.items()}  # not state: never saved

    def beta(self) -> float:
        """β_t of the next update."""
        t = self.steps + 1
        return min(self.decay, (1.0 + t) / (10.0 + t))

    def update(self) -> None:
        """Move every average towards its weights after an optimiser step."""
        rate = 1.0 - self.beta()
        for k, w in self.params.items():
            rows = partial(_average_rows, (w, self.averages[k], self._scratch[k]), rate)
            self.workers.split(rows, len(w), elements=w.size)
        self.steps += 1


def _average_rows(arrays, rate, start, stop):
    """a ← a + rate (w - a) on rows [start, stop) of (w, a, scratch): one thread's part."""
    w, a, scratch = (x[start:stop] for x in arrays)
    step = array_module(w).subtract(w, a, out=scratch)
    step *= rate
    a += step
