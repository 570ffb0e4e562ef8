"""The siamese network: one convolutional encoder shared by two twins, joined by weighted L1.

    x1 ─┐                                      ┌─ h1 ─┐
        ├─ encoder(conv-pool-relu ... dense-sigmoid) ┤      ├─ WeightedL1 ─ z ─ Sigmoid ─ p
    x2 ─┘                                      └─ h2 ─┘

Both twins run as *one* encoder call on the two inputs stacked along the batch axis, so
each layer keeps one cache and the matrix products of backward add the twins' gradients
into the one set of shared weights by themselves.
"""
from __future__ import annotations

import numpy as np

from .config import NetworkConfig, encoder_shapes
from .layers import Conv2D, ConvPool2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1


class SiameseNet:
    """Twin encoders with shared weights, a weighted-L1 join and a sigmoid.

    x1, x2: (N, 1, H, W) -> forward: p (N,), the probability that each pair matches.
    ``forward_logits``/``backward_logits`` stop at the logit z, for the fused, stable
    ``bce_with_logits``. ``params()``/``grads()`` are flat views keyed "conv1.W", ...
    """

    def __init__(self, network: NetworkConfig, *, backend, rng: np.random.Generator):
        self.network, self.backend = network, backend
        init, C, layers = network.init, 1, []
        sizes = encoder_shapes(network)
        for i, (F, K) in enumerate(network.conv, start=1):
            pooled = i < len(network.conv)
            # conv1's input is the images: nothing needs their gradient (input_grad=False)
            kwargs = dict(backend=backend, rng=rng, init=init, input_grad=i > 1)
            # Max-pool and ReLU commute exactly, max(max(a, 0), max(b, 0)) = max(max(a, b), 0),
            # so the pool goes first and the ReLU runs on a quarter of the values. Gradients
            # are the same bit for bit: a window whose max is <= 0 gets none either way.
            if pooled and C == 1 and network.conv_method == "auto":
                # The images' block: one input channel, so its conv is a thin product, its
                # output the biggest array of the net, and never on the Fourier path;
                # ConvPool2D pools each chunk of it in the cache instead (the same
                # weights, drawn alike, as "conv1"). conv_method "im2col" or "fft" keeps
                # Conv2D and MaxPool2D, every conv on that one path.
                layers.append((f"conv{i}", ConvPool2D(C, F, K, 2, **kwargs)))
            else:
                layers.append((f"conv{i}", Conv2D(C, F, K, method=network.conv_method,
                                                  **kwargs)))
                if pooled:
                    layers.append((f"pool{i}", MaxPool2D(2, backend=backend)))
            layers.append((f"relu{i}", ReLU(backend=backend)))
            C = F
        features = C * sizes[-1] ** 2
        layers += [("flatten", Flatten()),
                   ("dense1", Dense(features, network.dense, backend=backend, rng=rng, init=init)),
                   ("sigmoid1", Sigmoid(backend=backend))]
        self.encoder = layers  # a plain list of (name, layer), applied in order
        self.join = WeightedL1(network.dense, backend=backend, rng=rng, init=init)
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
        return self.join.forward_pairs(h, first, second)  # forward(h[first], h[second])

    def backward_pair_logits(self, dz):
        """dz: (P,) -> fills every layer's grads (after :meth:`forward_pair_logits`).

        An image in k pairs gets the sum of its k gradients:
        dh_m = sum_{p: first_p = m} dh1_p + sum_{p: second_p = m} dh2_p, which the join
        adds up in one product over the pairs (``ops.weighted_l1_backward_pairs``).
        """
        first, second, M = self._pair_index
        return self._encoder_backward(self.join.backward_pairs(dz, first, second, M))

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
