"""One training step on each loader's batches, and the loader a config asks for.

``pair_step`` is the paper's: a minibatch of independent pairs, both twins in one encoder
call. ``group_step`` trains on every pair among a group batch's images, each image encoded
once (groups.py). Both fill the model's grads and return (loss, right, pairs), left on the
device, so that the training loop syncs with the host only now and then.
"""
from __future__ import annotations

from functools import partial

from .config import Config
from .groups import GroupLoader
from .losses import bce_with_logits, one_shot_softmax
from .model import SiameseNet
from .pairs import PairLoader


def pair_step(model: SiameseNet, batch):
    """The paper's step on a batch of independent pairs (x1, x2, y) -> (loss, right, pairs).

    loss: the mean cross-entropy, right: the fraction of pairs on the right side of 0.5
    (both 0-d arrays, left on the device). Fills the model's grads.
    """
    x1, x2, y = batch
    z = model.forward_logits(x1, x2)
    loss, dz = bce_with_logits(z, y)
    model.backward_logits(dz)
    return loss, ((z > 0) == (y > 0.5)).mean(), y.shape[0]


def group_step(model: SiameseNet, batch, one_shot_weight: float = 0.0):
    """A step on every pair of a group batch (``groups.GroupLoader``) -> (loss, right, pairs).

    The loss is weighted: same pairs and different pairs count half each, and so does
    ``right`` (a balanced accuracy, comparable with :func:`pair_step`'s half-and-half
    batches). ``one_shot_weight`` > 0 adds that times the batch's one-shot softmax
    (``losses.one_shot_softmax``: each image picks its character's other drawings out of
    the other characters' images), and the gradients add alike.
    """
    x, first, second, same, weight = batch
    z = model.forward_pair_logits(x, first, second)
    loss, dz = bce_with_logits(z, same, weight)
    if one_shot_weight:
        extra, dz_extra = one_shot_softmax(z, first, second, same, x.shape[0])
        loss, dz = loss + one_shot_weight * extra, dz + one_shot_weight * dz_extra
    model.backward_pair_logits(dz)
    return loss, (weight * ((z > 0) == (same > 0.5))).sum(), same.shape[0]


def make_loader(cfg: Config, train_set, backend):
    """The training batches the config asks for, and the step that trains on them."""
    lc, seed = cfg.loader, cfg.run.seed
    distort = {"distort_p": lc.distort.p, "distort_strength": lc.distort.strength}
    if lc.kind == "pairs":
        return PairLoader(train_set, backend, batch_size=lc.batch_size,
                          pairs_per_epoch=lc.pairs_per_epoch, distort=lc.distortions == 0,
                          distortions=lc.distortions,
                          hard_negative_fraction=lc.hard_negative_fraction,
                          **distort, seed=seed), pair_step
    g = lc.group
    step = partial(group_step, one_shot_weight=g.one_shot_weight) if g.one_shot_weight else group_step
    return GroupLoader(train_set, backend, alphabets=g.alphabets, characters=g.characters,
                       drawers=g.drawers, same_weight=g.same_weight, hard_weight=g.hard_weight,
                       batches_per_epoch=lc.batches_per_epoch, **distort, seed=seed), step


def images_per_pair(loader) -> float:
    """Images encoded per pair trained on: 2 for independent pairs, far fewer in groups."""
    if isinstance(loader, GroupLoader):
        return loader.batch_size / loader.pairs_per_batch
    return 2.0
