"""GroupLoader and pairs_within: the layout of group batches, their pairs and weights."""
import numpy as np
import pytest
from conftest import fake_subset

from tinysiamese.backend import get_backend
from tinysiamese.distort import apply_affine
from tinysiamese.groups import GroupLoader, pairs_within

NUMPY = get_backend("numpy")


def _loader(subset=None, **kwargs):
    settings = dict(alphabets=2, characters=3, drawers=2, batches_per_epoch=6, seed=0, prefetch=2)
    settings.update(kwargs)
    return GroupLoader(subset or fake_subset(), NUMPY, **settings)


def _epoch(loader, epoch=0, **kwargs):
    return [tuple(np.asarray(a) for a in batch) for batch in loader.iter_epoch(epoch, **kwargs)]


def test_pairs_within_by_a_plain_loop():
    labels = np.array([5, 5, 2, 7, 2])
    first, second, same, weight = pairs_within(labels, same_weight=0.4)
    expected = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    assert list(zip(first.tolist(), second.tolist())) == expected
    assert same.tolist() == [float(labels[i] == labels[j]) for i, j in expected]
    assert same.sum() == 2 and weight.dtype == np.float32
    np.testing.assert_allclose(weight[same == 1], 0.2)     # 0.4 shared by 2 same pairs
    np.testing.assert_allclose(weight[same == 0], 0.6 / 8)  # 0.6 shared by 8 different ones
    assert weight.sum() == pytest.approx(1.0)


def test_pairs_within_splits_the_different_share_by_alphabet():
    labels = np.array([0, 0, 1, 1, 2, 2])       # three characters, two drawings each
    alphabets = np.array([0, 0, 0, 0, 1, 1])    # characters 0 and 1 share an alphabet
    first, second, same, weight = pairs_within(labels, 0.5, alphabets, hard_weight=0.7)
    for i, j, w in zip(first, second, weight):
        if labels[i] == labels[j]:
            assert w == pytest.approx(0.5 / 3)          # 3 same pairs share 0.5
        elif alphabets[i] == alphabets[j]:
            assert w == pytest.approx(0.5 * 0.7 / 4)    # 4 within alphabet 0 share 0.35
        else:
            assert w == pytest.approx(0.5 * 0.3 / 8)    # 8 across alphabets share 0.15
    assert weight.sum() == pytest.approx(1.0)
    # without hard_weight every different pair weighs the same, whatever the alphabets
    plain = pairs_within(labels, 0.5)[3]
    np.testing.assert_array_equal(pairs_within(labels, 0.5, alphabets)[3], plain)
    with pytest.raises(ValueError, match="within one alphabet and across alphabets"):
        pairs_within(labels, 0.5, np.zeros(6), hard_weight=0.7)
    with pytest.raises(ValueError, match="the alphabet of each image"):
        pairs_within(labels, 0.5, hard_weight=0.7)


def test_the_loader_gives_hard_weight_to_its_within_alphabet_pairs():
    subset = fake_subset(alphabet_sizes=(3, 5, 4), n_drawers=4)
    loader = _loader(subset, alphabets=2, characters=3, drawers=2, hard_weight=0.6)
    char = loader._plan(0).char[0]  # (B,) the character of each image of batch 0
    first, second, same, weight = loader.pairs
    alphabet = subset.alphabet_of[char]
    hard = (same == 0) & (alphabet[first] == alphabet[second])
    assert hard.sum() == 2 * 3 * 2 * 2  # 2 alphabets x 3 character pairs x 2 x 2 drawings
    assert weight[hard].sum() == pytest.approx(0.5 * 0.6)
    assert weight[(same == 0) & ~hard].sum() == pytest.approx(0.5 * 0.4)


@pytest.mark.parametrize("labels", [[1, 2, 3], [4, 4, 4]])
def test_pairs_within_needs_both_kinds(labels):
    with pytest.raises(ValueError, match="both same and different pairs"):
        pairs_within(np.array(labels))


def test_batches_hold_characters_drawers_and_alphabets_as_laid_out():
    subset = fake_subset(alphabet_sizes=(3, 5, 4), n_drawers=4)
    loader = _loader(subset, alphabets=2, characters=3, drawers=3, batches_per_epoch=20)
    batches, plan = _epoch(loader), loader._plan(0)
    assert len(batches) == len(loader) == 20
    for b, (x, first, second, same, weight) in enumerate(batches):
        assert x.shape == (18, 1, 12, 12) and x.dtype == np.float32
        # the images are the plan's drawings, each with the plan's distortion
        plain = subset.images[plan.char[b], plan.drawer[b]] / np.float32(255)
        np.testing.assert_allclose(x[:, 0], apply_affine(plain, plan.warp[b]), atol=1e-6)
        char = plan.char[b].reshape(6, 3)   # 6 character slots (2 alphabets x 3), 3 drawings each
        drawer = plan.drawer[b].reshape(6, 3)
        assert (char == char[:, :1]).all(), "a slot must hold one character"
        assert all(len(set(d)) == 3 for d in drawer), "... drawn by different drawers"
        assert len(set(char[:, 0])) == 6, "characters must not repeat within a batch"
        alphabet = subset.alphabet_of[char[:, 0]].reshape(2, 3)
        assert (alphabet == alphabet[:, :1]).all() and alphabet[0, 0] != alphabet[1, 0]
        np.testing.assert_array_equal(same, plan.char[b][first] == plan.char[b][second])
        assert len(first) == 18 * 17 // 2 and weight.sum() == pytest.approx(1.0)


def test_alphabets_and_characters_are_drawn_evenly():
    subset = fake_subset(alphabet_sizes=(2, 6, 4))
    plan = _loader(subset, alphabets=1, characters=2, batches_per_epoch=3000)._plan(0)
    first_image = plan.char[:, 0]
    share = np.bincount(subset.alphabet_of[first_image], minlength=3) / len(first_image)
    np.testing.assert_allclose(share, 1 / 3, atol=0.03)
    in_big = plan.char[subset.alphabet_of[plan.char[:, 0]] == 1].ravel()
    counts = np.bincount(in_big, minlength=12)[2:8]
    np.testing.assert_allclose(counts / counts.sum(), 1 / 6, atol=0.02)


def test_same_seed_same_batches_whatever_the_thread_and_resuming():
    threaded = _epoch(_loader(seed=7, prefetch=3), epoch=2)
    inline = _epoch(_loader(seed=7, prefetch=0), epoch=2)
    resumed = _epoch(_loader(seed=7), epoch=2, start_batch=4)
    for a, b in zip(threaded, inline):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    for a, b in zip(threaded[4:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(threaded[0][0], _epoch(_loader(seed=8), epoch=2)[0][0])
    assert not np.array_equal(threaded[0][0], _epoch(_loader(seed=7), epoch=3)[0][0])


def test_every_image_is_distorted():
    loader = _loader()
    x = _epoch(loader)[0][0][:, 0]
    plan = loader._plan(0)
    plain = loader.subset.images[plan.char[0], plan.drawer[0]] / 255.0
    moved = [not np.allclose(a, b) for a, b in zip(x, plain)]
    assert np.mean(moved) > 0.8, "group batches must carry the paper's distortions"


def test_distortion_settings_reach_the_images():
    plain = _loader(distort_p=0.0)
    x = _epoch(plain)[0][0][:, 0]
    plan = plain._plan(0)
    undistorted = plain.subset.images[plan.char[0], plan.drawer[0]] / 255.0
    np.testing.assert_allclose(x, undistorted, rtol=1e-6, atol=1e-7)  # p = 0: the identity
    # the same draw of characters and drawers, distorted further with a larger strength
    mild, strong = _loader(distort_p=1.0), _loader(distort_p=1.0, distort_strength=2.0)
    assert np.array_equal(mild._plan(0).char, strong._plan(0).char)
    def moved(loader):
        x = _epoch(loader)[0][0][:, 0]
        return np.abs(x - undistorted).mean()
    assert moved(strong) > 1.2 * moved(mild)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alphabets=4), "group alphabets must be 1 to 3"),
    (dict(characters=4), "group characters must be 1 to 3"),
    (dict(alphabets=1, characters=1), "at least 2 in a batch"),
    (dict(drawers=1), "group drawers must be 2 to 4"),
    (dict(drawers=5), "group drawers must be 2 to 4"),
    (dict(batches_per_epoch=0), "batches_per_epoch must be 1 or more"),
    (dict(same_weight=1.0), "same_weight must lie strictly between 0 and 1"),
    (dict(hard_weight=0.0), "hard_weight must lie strictly between 0 and 1"),
    (dict(distort_p=-0.1), r"distort p .* must lie in \[0, 1\]"),
])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _loader(fake_subset(alphabet_sizes=(3, 5, 4), n_drawers=4), **kwargs)


def test_group_step_weighs_same_and_different_pairs_half_each():
    """train.group_step: its loss and its (balanced) accuracy, by a plain loop over pairs."""
    from tinysiamese.config import PRESETS
    from tinysiamese.model import SiameseNet
    from tinysiamese.steps import group_step

    backend = get_backend("numpy", np.float64)
    subset = fake_subset(alphabet_sizes=(3, 5, 4), n_drawers=4, size=28)
    loader = GroupLoader(subset, backend, alphabets=2, characters=2, drawers=2,
                         batches_per_epoch=1, prefetch=0)
    batch = next(iter(loader))
    x, first, second, same, weight = batch
    model = SiameseNet(PRESETS["tiny"].network, backend=backend, rng=np.random.default_rng(0))
    loss, right, n_pairs = group_step(model, batch)
    z = [model.forward_logits(x[i:i + 1], x[j:j + 1])[0] for i, j in zip(first, second)]
    n_same = int(same.sum())
    by_hand_loss = by_hand_right = 0.0
    for zp, y, w in zip(z, same, weight):
        assert w == pytest.approx(0.5 / n_same if y else 0.5 / (len(same) - n_same), rel=1e-6)
        p = 1 / (1 + np.exp(-zp))
        by_hand_loss -= w * (y * np.log(p) + (1 - y) * np.log(1 - p))
        by_hand_right += w * ((zp > 0) == (y > 0.5))
    assert n_pairs == 28 and n_same == 4
    assert float(loss) == pytest.approx(by_hand_loss, rel=1e-9)
    assert float(right) == pytest.approx(by_hand_right, rel=1e-12)


def test_group_step_adds_the_one_shot_softmax_and_its_gradient():
    """group_step with one_shot_weight: the loss is bce + w * one_shot_softmax, and every
    layer's gradient is that sum's, by finite differences through the whole tiny net."""
    from tinysiamese.gradcheck import numerical_gradient, rel_error
    from tinysiamese.losses import bce_with_logits, one_shot_softmax
    from tinysiamese.config import PRESETS
    from tinysiamese.model import SiameseNet
    from tinysiamese.steps import group_step

    backend = get_backend("numpy", np.float64)
    loader = GroupLoader(fake_subset(alphabet_sizes=(3, 5, 4), n_drawers=4, size=28), backend,
                         alphabets=2, characters=2, drawers=3, batches_per_epoch=1, prefetch=0)
    batch = next(iter(loader))
    x, first, second, same, weight = batch
    model = SiameseNet(PRESETS["tiny"].network, backend=backend, rng=np.random.default_rng(1))
    for name, b in model.params().items():  # blank paper gives pre-activations of exactly b:
        if name.startswith("conv") and name.endswith(".b"):  # keep them off ReLU's kink at 0
            b[...] = np.random.default_rng(2).uniform(0.05, 0.2, b.shape)

    def total():
        z = model.forward_pair_logits(x, first, second)
        return float(bce_with_logits(z, same, weight)[0]
                     + 0.7 * one_shot_softmax(z, first, second, same, len(x))[0])

    plain, _, _ = group_step(model, batch)
    loss, _, n_pairs = group_step(model, batch, one_shot_weight=0.7)
    assert n_pairs == 66 and float(loss) == pytest.approx(total(), rel=1e-12)
    assert float(loss) > float(plain) + 0.7 * np.log(2), "the softmax term is there"
    analytic = {k: v.copy() for k, v in model.grads().items()}
    params = model.params()
    for name in ("conv1.b", "conv3.W", "join.alpha", "join.b"):
        err = rel_error(analytic[name], numerical_gradient(total, params[name]))
        assert err < 1e-6, f"{name}: rel error {err:.2e}"


def test_a_group_batch_too_large_for_memory_is_refused_in_one_line(paper20, tmp_path):
    import json

    from cli_helpers import assert_one_line_error, run

    config = tmp_path / "huge.json"
    config.write_text(json.dumps({"loader": {"group": {"alphabets": 12, "drawers": 12}},
                                  "run": {"val_trials": 20, "test_trials": 0}}))
    result = run("train", "--data", paper20, "--config", config, "--out", tmp_path / "run")
    assert_one_line_error(result, 2, "a group batch of 576 images (12 x 4 x 12)",
                          "at most 512 images")
