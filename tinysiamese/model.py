"""The siamese network: one convolutional encoder shared by two twins, joined by weighted L1.

    x1 ─┐                                      ┌─ h1 ─┐
        ├─ encoder(conv-pool-relu ... dense-sigmoid) ┤      ├─ WeightedL1 ─ z ─ Sigmoid ─ p
    x2 ─┘                                      └─ h2 ─┘

Both twins run as *one* encoder call on the two inputs stacked along the batch axis, so
each layer keeps one cache and the matrix products of backward add the twins' gradients
into the one set of shared weights by themselves.
"""
from __future__ import annotations

import copy

import numpy as np

from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1

# Each preset: input size, conv layers as [filters, kernel], dense width, initialisation,
# and per-layer optimiser settings (see optim.py). Any key can be overridden by a config.
PRESETS = {
    # The paper's network (Koch et al. 2015, figure 4) at 105 x 105.
    "koch": {
        "image_size": 105,
        "conv": [[64, 10], [128, 7], [128, 4], [256, 4]],
        "dense": 4096,
        "init": "paper",
        "batch_size": 128,
        "pairs_per_epoch": 30000,
        "distortions": 8,
        "hard_negative_fraction": 0.0,
        "rotations": 1,
        "epochs": 200,
        "patience": 20,
        "optim": {"lr": 0.01, "momentum": 0.9, "momentum_epochs": 20, "l2": 2e-4,
                  "lr_decay": 0.99},
    },
    # The same shape at 52 x 52 with fewer filters: trains on 2 CPU cores in under an hour.
    "small": {
        "image_size": 52,
        "conv": [[32, 5], [64, 5], [64, 3], [128, 3]],
        "dense": 1024,
        "init": "fan_in",
        # every pair among 4 alphabets x 4 characters x 4 drawings a batch (groups.py): 64
        # images, 2,016 pairs; 720 batches an epoch. Chosen on validation, docs/tuning.md;
        # one_shot_weight: 0.3 x a one-shot softmax over the batch joins the cross-entropy
        # (losses.one_shot_softmax; round 20: 1.1 and 1.75 points over the shipped model of
        # the cross-entropy alone on two sets of 4,000 validation trials, round 21: 0.7-1.3 over
        # its runs of two more seeds; weights 1 and 3 diverged)
        "loader": "groups",
        "group": {"alphabets": 4, "characters": 4, "drawers": 4, "one_shot_weight": 0.3},
        "batches_per_epoch": 720,
        # the paper's independent pairs instead, with {"loader": "pairs"}: 64 a batch
        "batch_size": 64,
        "pairs_per_epoch": 25600,
        "hard_negative_fraction": 0.5,
        # each training character also turned by 90, 180 and 270 degrees, as 3 new ones
        # (omniglot.with_rotations): chosen on validation, see docs/tuning.md
        "rotations": 4,
        "epochs": 40,
        "time_budget_minutes": 55,
        "val_trials": 500,
        # lr 0.08: the best of 18 variants tuned on validation (scripts/tune_small.py);
        # average: the running average of the weights is validated and kept (optim.py),
        # 0.3-1.0 points over the last weights on 4,000 validation trials (round 8)
        "optim": {"lr": 0.08, "momentum": 0.9, "momentum_epochs": 5, "l2": 1e-4,
                  "lr_decay": 0.93, "average": 0.9995},
    },
    # A toy net for tests and gradient checks: seconds, not minutes.
    "tiny": {
        "image_size": 28,
        "conv": [[4, 5], [8, 3], [8, 3]],
        "dense": 32,
        "init": "fan_in",
        "batch_size": 32,
        "pairs_per_epoch": 256,
        "hard_negative_fraction": 0.0,
        "optim": {"lr": 0.05, "momentum": 0.9, "momentum_epochs": 5, "l2": 0.0,
                  "lr_decay": 0.99},
    },
}


def preset_config(name: str, overrides: dict | None = None) -> dict:
    """A deep copy of preset ``name`` with ``overrides`` merged in (nested dicts merge)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    cfg = copy.deepcopy(PRESETS[name])
    cfg["preset"] = name
    _merge(cfg, overrides or {})
    return cfg


def _merge(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def encoder_shapes(cfg: dict) -> list[tuple[int, int]]:
    """Spatial size after each conv block; raises ValueError if the image gets too small."""
    size, sizes = cfg["image_size"], []
    for i, (_, K) in enumerate(cfg["conv"]):
        size = size - K + 1
        last = i == len(cfg["conv"]) - 1
        if size < 1 or (not last and size < 2):
            raise ValueError(f"image_size {cfg['image_size']} is too small for conv kernels "
                             f"{[k for _, k in cfg['conv']]}")
        if not last:
            size //= 2
        sizes.append(size)
    return sizes


class SiameseNet:
    """Twin encoders with shared weights, a weighted-L1 join and a sigmoid.

    x1, x2: (N, 1, H, W) -> forward: p (N,), the probability that each pair matches.
    ``forward_logits``/``backward_logits`` stop at the logit z, for the fused, stable
    ``bce_with_logits``. ``params()``/``grads()`` are flat views keyed "conv1.W", ...
    """

    def __init__(self, cfg: dict, *, backend, rng: np.random.Generator):
        self.cfg, self.backend = cfg, backend
        init, C, layers = cfg["init"], 1, []
        sizes = encoder_shapes(cfg)
        for i, (F, K) in enumerate(cfg["conv"], start=1):
            # conv1's input is the images: nothing needs their gradient (input_grad=False)
            layers.append((f"conv{i}", Conv2D(C, F, K, backend=backend, rng=rng, init=init,
                                              input_grad=i > 1)))
            # Max-pool and ReLU commute exactly, max(max(a, 0), max(b, 0)) = max(max(a, b), 0),
            # so the pool goes first and the ReLU runs on a quarter of the values. Gradients
            # are the same bit for bit: a window whose max is <= 0 gets none either way.
            if i < len(cfg["conv"]):
                layers.append((f"pool{i}", MaxPool2D(2, backend=backend)))
            layers.append((f"relu{i}", ReLU(backend=backend)))
            C = F
        features = C * sizes[-1] ** 2
        layers += [("flatten", Flatten()),
                   ("dense1", Dense(features, cfg["dense"], backend=backend, rng=rng, init=init)),
                   ("sigmoid1", Sigmoid(backend=backend))]
        self.encoder = layers  # a plain list of (name, layer), applied in order
        self.join = WeightedL1(cfg["dense"], backend=backend, rng=rng, init=init)
        self.out = Sigmoid(backend=backend)
        self._pair_index = None  # (first, second, M) of the last forward_pair_logits

    def encode(self, x):
        """x: (M, 1, H, W) -> h: (M, dense) features in (0, 1)."""
        for _, layer in self.encoder:
            x = layer.forward(x)
        return x

    def forward_logits(self, x1, x2):
        """x1, x2: (N, 1, H, W) -> z: (N,) logits, both twins in one encoder pass."""
        N = x1.shape[0]
        h = self.encode(self.backend.xp.concatenate([x1, x2]))  # (2N, dense)
        return self.join.forward(h[:N], h[N:])

    def backward_logits(self, dz):
        """dz: (N,) -> fills every layer's grads; the twins' gradients add up."""
        dh1, dh2 = self.join.backward(dz)
        return self._encoder_backward(self.backend.xp.concatenate([dh1, dh2]))  # (2N, dense)

    def forward_pair_logits(self, x, first, second):
        """Logits of many pairs among one batch of images, each image encoded once.

        x: (M, 1, H, W); first, second: (P,) integer indices into x, on the backend
        -> z: (P,), the logit that x[first[p]] and x[second[p]] show one character.
        A group batch of 64 images holds 2,016 pairs (``groups.GroupLoader``): 64 encoder
        passes instead of 4,032, and only the cheap join runs per pair.
        """
        h = self.encode(x)  # (M, dense)
        self._pair_index = (first, second, x.shape[0])
        return self.join.forward(h[first], h[second])

    def backward_pair_logits(self, dz):
        """dz: (P,) -> fills every layer's grads (after :meth:`forward_pair_logits`).

        An image in k pairs gets the sum of its k gradients:
        dh_m = sum_{p: first_p = m} dh1_p + sum_{p: second_p = m} dh2_p, i.e.
        dh (M, dense) = S1 @ dh1 + S2 @ dh2 with one-hot S1[m, p] = [first_p == m] (M, P).
        The product runs alike on NumPy and CuPy and beats ``np.add.at`` several times over.
        """
        first, second, M = self._pair_index
        dh1, dh2 = self.join.backward(dz)
        rows = self.backend.xp.arange(M)[:, None]
        dh = (rows == first).astype(dh1.dtype) @ dh1 + (rows == second).astype(dh2.dtype) @ dh2
        return self._encoder_backward(dh)

    def _encoder_backward(self, dh):
        """dh: (M, dense), the gradient at the encoder's output -> fills every layer's grads.

        Returns None: conv1 computes no gradient for the images (``input_grad=False``).
        """
        for _, layer in reversed(self.encoder):
            dh = layer.backward(dh)
        return dh

    def forward(self, x1, x2):
        """x1, x2: (N, 1, H, W) -> p: (N,) match probabilities."""
        return self.out.forward(self.forward_logits(x1, x2))

    def backward(self, dp):
        """dp: (N,), the gradient of a loss with respect to p."""
        return self.backward_logits(self.out.backward(dp))

    def named_layers(self):
        """(name, layer) for every layer holding parameters, in forward order."""
        return [(n, l) for n, l in self.encoder if l.params] + [("join", self.join)]

    def params(self) -> dict:
        """{"conv1.W": array, ...}: the model's own arrays, never copies."""
        return {f"{n}.{k}": v for n, l in self.named_layers() for k, v in l.params.items()}

    def grads(self) -> dict:
        """{"conv1.W": array, ...}: the gradients of the last backward pass."""
        return {f"{n}.{k}": v for n, l in self.named_layers() for k, v in l.grads.items()}

    def load_params(self, arrays: dict) -> None:
        """Copy host arrays into the parameters in place; names and shapes must match."""
        own = self.params()
        missing, extra = sorted(set(own) - set(arrays)), sorted(set(arrays) - set(own))
        if missing or extra:
            raise ValueError(f"parameters do not match the model: missing {missing[:3]}, "
                             f"unexpected {extra[:3]}")
        for k, v in own.items():  # check everything first: a refused load changes nothing
            if tuple(arrays[k].shape) != tuple(v.shape):
                raise ValueError(f"parameter {k} has shape {tuple(arrays[k].shape)}, the model "
                                 f"needs {tuple(v.shape)}")
        for k, v in own.items():
            v[...] = self.backend.asarray(arrays[k])

    def n_params(self) -> int:
        return int(sum(v.size for v in self.params().values()))
