"""similarity.py: pair logits from embeddings against the model's own join, pair by pair,
and classify against ``oneshot.evaluate`` on real trials laid out as folders."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tinysiamese import characters, folders, oneshot, pixels, similarity
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint
from tinysiamese.config import PRESETS
from tinysiamese.model import SiameseNet
from tinysiamese.pretrained import pretrained_path
from tinysiamese.oneshot import model_score
from tinysiamese.trials import within_alphabet_trials


@pytest.fixture(scope="module")
def tiny():
    return SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"), rng=np.random.default_rng(3))


@pytest.fixture(scope="module")
def shipped():
    return model_from_checkpoint(load_checkpoint(pretrained_path()), get_backend("numpy"))


def images(n, size=28, seed=0):
    return np.random.default_rng(seed).random((n, size, size), dtype=np.float32)


@pytest.mark.parametrize("a, b, block", [(5, 7, 2**23), (9, 4, 100), (13, 13, 64)])
def test_pair_logits_match_the_join_pair_by_pair(tiny, monkeypatch, a, b, block):
    monkeypatch.setattr(similarity, "BLOCK_ELEMENTS", block)  # force many odd-sized blocks
    xa, xb = images(a, seed=1), images(b, seed=2)
    alpha, bias = similarity.join_params(tiny)
    z = similarity.pair_logits(similarity.encode(tiny, xa), similarity.encode(tiny, xb), alpha, bias)
    ref = np.empty((a, b))
    for i in range(a):  # the plain loop: the model's own forward on each pair
        for k in range(b):
            ref[i, k] = tiny.forward_logits(xa[i][None, None], xb[k][None, None])[0]
    err = np.abs(z - ref).max()
    assert z.shape == (a, b) and err < 1e-4, f"pair logits off by {err:.2e}"


def test_symmetric_blocks_give_the_full_matrix(tiny, monkeypatch):
    monkeypatch.setattr(similarity, "BLOCK_ELEMENTS", 32 * 7)  # 7 rows x 1 col blocks... odd
    h = similarity.encode(tiny, images(23, seed=4), views=2)
    alpha, bias = similarity.join_params(tiny)
    full = similarity.pair_logits(h, h, alpha, bias)
    sym = similarity.pair_logits(h, h, alpha, bias, symmetric=True)
    np.testing.assert_allclose(sym, full, atol=1e-6, err_msg="symmetric shortcut")
    np.testing.assert_allclose(sym, sym.T, atol=0, err_msg="z must be exactly symmetric")


@pytest.mark.parametrize("views", [2, 4, 8])
def test_views_equal_oneshot_with_views(tiny, views):
    xa, xb = images(6, seed=5), images(6, seed=6)
    alpha, bias = similarity.join_params(tiny)
    z = similarity.pair_logits(similarity.encode(tiny, xa, views), similarity.encode(tiny, xb, views),
                               alpha, bias)
    score = oneshot.with_views(model_score(tiny), views)
    ref = score(np.repeat(xa, 6, axis=0)[:, None], np.tile(xb, (6, 1, 1))[:, None]).reshape(6, 6)
    err = np.abs(z - ref).max()
    assert err < 1e-4, f"{views} views: logits off by {err:.2e}"


def test_class_scores_are_the_mean_of_each_class(tiny):
    z = np.random.default_rng(0).normal(size=(4, 6))
    labels = np.array([2, 0, 2, 1, 2, 0])
    got = similarity.class_scores(z, labels, 3)
    for q in range(4):
        for c in range(3):
            want = np.mean([z[q, s] for s in range(6) if labels[s] == c])
            assert abs(got[q, c] - want) < 1e-12, f"score[{q}, {c}]"


def write_ink(path, ink: np.ndarray) -> None:
    """(H, W) ink in [0, 1] -> a dark-on-white PNG, as a user's scan would be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(255 * (1 - ink)).astype(np.uint8)).save(path)


def test_classify_agrees_with_eval_trial_for_trial(real_evaluation, shipped, tmp_path):
    size = shipped.network.image_size
    test = characters.paper_split(real_evaluation, "test")
    small = pixels.strokes_to_ink(test.images.reshape(-1, *test.images.shape[2:]) > 0, size)
    test.images = small.reshape(*test.images.shape[:2], size, size)  # as load_paper_split(.., 52)
    trials = within_alphabet_trials(test, n_way=20, n_trials=60, seed=5)
    expected = oneshot.evaluate(oneshot.with_views(model_score(shipped), 2), trials).predicted
    chosen = []
    for s in range(0, trials.n_trials, 20):  # a set of 20 trials shares its 20 supports
        support, queries = tmp_path / f"set{s}" / "support", tmp_path / f"set{s}" / "query"
        for j in range(20):
            write_ink(support / f"c{j:02d}.png", trials.support[s, j])
            write_ink(queries / f"q{j:02d}.png", trials.test[s + j])
        sup = folders.read_support(support, size)
        listing, q = folders.read_folder(queries, size)
        results = similarity.classify(shipped, sup.images, sup.labels, sup.classes, q, views=2)
        chosen += [int(r["class"][1:]) for r in results]
        assert all(len(r["top"]) == 3 and r["top"][0][0] == r["class"] for r in results)
    assert chosen == expected.tolist(), "classify must choose what eval chooses, trial for trial"
    assert np.mean(np.array(chosen) == trials.answer) > 0.8, "the shipped model is right mostly"


def test_logits_of_an_ensemble_is_the_mean_and_self_pairs_are_symmetric(tiny):
    other = SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"),
                       rng=np.random.default_rng(4))
    x = images(9, seed=7)
    one = [similarity.logits(m, x, x, views=2) for m in (tiny, other)]
    both = similarity.logits([tiny, other], x, views=2)  # x against itself, half the pairs
    np.testing.assert_allclose(both, (one[0] + one[1]) / 2, atol=1e-5, err_msg="ensemble mean")
