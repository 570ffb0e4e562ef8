"""oneshot: the evaluator, test-time views, ensembles and the Wilson interval."""
import numpy as np
import pytest
from conftest import fake_subset, subset_ids

from tinysiamese import oneshot
from tinysiamese.trials import within_alphabet_trials


# --------------------------------------------------------------------------------------
# Evaluation


def _trials(n_trials):
    """5-way trials from three small fake alphabets."""
    return within_alphabet_trials(fake_subset(alphabet_sizes=(6, 7, 5)), n_way=5,
                                          n_trials=n_trials)


def _oracle(x1, x2):
    """Knows the fake characters: 1 for the same character, 0 otherwise."""
    return (subset_ids(x1)[0] == subset_ids(x2)[0]).astype(np.float32)


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_evaluate_oracle_and_constant(batch_size):
    trials = _trials(n_trials=30)
    perfect = oneshot.evaluate(_oracle, trials, batch_size=batch_size)
    assert perfect.accuracy == 1.0 and perfect.n_correct == 30 and perfect.n_way == 5
    assert perfect.predicted.tolist() == trials.answer.tolist()
    assert set(perfect.per_alphabet) == set(trials.alphabet)
    assert sum(r["trials"] for r in perfect.per_alphabet.values()) == 30
    # A constant score ties everywhere; ties go to support 0, right exactly when answer == 0.
    flat = oneshot.evaluate(lambda a, b: np.zeros(len(a)), trials, batch_size=batch_size)
    assert flat.accuracy == pytest.approx(np.mean(trials.answer == 0)) == pytest.approx(0.2)
    assert (flat.predicted == 0).all()


def test_evaluate_calls_score_with_pairs_of_the_right_shape():
    trials = _trials(n_trials=15)
    shapes = []

    def spy(x1, x2):
        shapes.append((x1.shape, x2.shape, x1.dtype, x2.dtype))
        return _oracle(x1, x2)

    oneshot.evaluate(spy, trials, batch_size=10)
    assert shapes[0] == ((10, 1, 12, 12), (10, 1, 12, 12), np.float32, np.float32)
    assert sum(s[0][0] for s in shapes) == 15 * 5


def test_distinct_rows_finds_each_row_once_in_order_of_first_appearance():
    from tinysiamese.oneshot import distinct_rows

    rows = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [1, 2]], dtype=np.float32)
    first, which = distinct_rows(rows)
    assert first.tolist() == [0, 1, 3] and which.tolist() == [0, 1, 0, 2, 1, 0]
    np.testing.assert_array_equal(rows[first][which], rows)


@pytest.mark.parametrize("batch_size", [3, 512])
def test_model_score_encodes_each_distinct_image_once_and_scores_like_the_pairs(batch_size):
    from tinysiamese.backend import get_backend
    from tinysiamese.config import PRESETS
    from tinysiamese.model import SiameseNet
    from tinysiamese.oneshot import model_score

    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"),
                       rng=np.random.default_rng(0))
    images = np.random.default_rng(1).random((7, 1, 28, 28), dtype=np.float32)
    pick = np.random.default_rng(2).integers(0, 7, size=(2, 40))  # 40 pairs of 7 images
    x1, x2 = images[pick[0]], images[pick[1]]
    expected = model.forward_logits(x1, x2)  # every pair through both twins
    encoded = []
    plain_encode = model.encode
    model.encode = lambda x: encoded.append(len(x)) or plain_encode(x)
    got = model_score(model, batch_size=batch_size)(x1, x2)
    assert got.dtype == np.float64 and got.shape == (40,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert sum(encoded) == len(np.unique(pick)), f"encoded {sum(encoded)} images, not each once"
    assert max(encoded) <= batch_size


def test_evaluate_rejects_bad_scores():
    trials = _trials(n_trials=5)
    with pytest.raises(ValueError, match="returned 1 values for 5 pairs"):
        oneshot.evaluate(lambda a, b: np.zeros(1), trials, batch_size=5)
    with pytest.raises(ValueError, match="NaN"):
        oneshot.evaluate(lambda a, b: np.full(len(a), np.nan), trials)


# --------------------------------------------------------------------------------------
# Test-time views


def _turned_by_loops(image, turns, mirrored):
    """Plain-loop reference: mirror left to right, then turn a quarter anticlockwise, turns times."""
    n = image.shape[0]
    out = image[:, ::-1].copy() if mirrored else image.copy()
    for _ in range(turns):
        turned = np.empty_like(out)
        for i in range(n):
            for j in range(n):
                turned[i, j] = out[j, n - 1 - i]  # row i of the turned image is column n-1-i
        out = turned
    return out


def test_pair_views_lists_each_pose_once():
    assert oneshot.pair_views(1) == [(0, False)]
    assert oneshot.pair_views(2) == [(0, False), (0, True)]
    assert oneshot.pair_views(4) == [(0, False), (1, False), (2, False), (3, False)]
    assert sorted(oneshot.pair_views(8)) == [(k, m) for k in range(4) for m in (False, True)]
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="views must be one of 1, 2, 4, 8"):
            oneshot.pair_views(bad)


@pytest.mark.parametrize("views", [2, 4, 8])
def test_with_views_averages_the_score_over_poses_like_a_plain_loop(views):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 6))  # a score that is neither turn- nor mirror-invariant

    def score(x1, x2):
        return (x1[:, 0] * weight * x2[:, 0] ** 2).sum(axis=(1, 2))

    x1, x2 = rng.random((2, 5, 1, 6, 6), dtype=np.float32)
    got = oneshot.with_views(score, views)(x1, x2)
    want = np.zeros(5)
    for m in range(5):
        for turns, mirrored in oneshot.pair_views(views):
            a, b = (_turned_by_loops(x[m, 0], turns, mirrored) for x in (x1, x2))
            want[m] += (a * weight * b ** 2).sum() / views
    assert got.dtype == np.float64 and got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(got, score(x1, x2)), "the views must change a pose-dependent score"
    # Distinct poses: the copies scored are all different images.
    seen = []
    oneshot.with_views(lambda a, b: seen.append(a[0, 0].tobytes()) or np.zeros(len(a)), views)(x1, x2)
    assert len(set(seen)) == views


def test_with_views_one_is_the_score_itself_and_needs_square_images():
    score = lambda a, b: np.zeros(len(a))  # noqa: E731
    assert oneshot.with_views(score, 1) is score
    with pytest.raises(ValueError, match="square images, not 4x6"):
        oneshot.with_views(score, 4)(np.zeros((2, 1, 4, 6)), np.zeros((2, 1, 4, 6)))


def test_views_leave_a_pose_invariant_score_unchanged():
    # Ink totals do not change when both images turn or mirror alike: every copy scores the same.
    def ink_product(x1, x2):
        return x1.sum(axis=(1, 2, 3)) * x2.sum(axis=(1, 2, 3))

    x1, x2 = np.random.default_rng(1).random((2, 4, 1, 7, 7), dtype=np.float32)
    np.testing.assert_allclose(oneshot.with_views(ink_product, 8)(x1, x2), ink_product(x1, x2),
                               rtol=1e-6)


def test_ensemble_is_the_mean_of_the_scores_pair_by_pair():
    rng = np.random.default_rng(2)
    weights = rng.standard_normal((3, 6, 6))  # three different scorers

    def scorer(w):
        return lambda x1, x2: (x1[:, 0] * w * x2[:, 0]).sum(axis=(1, 2)).astype(np.float32)

    x1, x2 = rng.random((2, 5, 1, 6, 6), dtype=np.float32)
    got = oneshot.ensemble([scorer(w) for w in weights])(x1, x2)
    want = [sum((x1[m, 0] * w * x2[m, 0]).sum() for w in weights) / 3 for m in range(5)]
    assert got.dtype == np.float64 and got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # It commutes with the views: the mean over nets of the mean over poses.
    both = oneshot.with_views(oneshot.ensemble([scorer(w) for w in weights]), 8)(x1, x2)
    each = np.mean([oneshot.with_views(scorer(w), 8)(x1, x2) for w in weights], axis=0)
    np.testing.assert_allclose(both, each, rtol=1e-5)


def test_ensemble_of_one_is_the_score_itself_and_of_none_an_error():
    score = lambda a, b: np.zeros(len(a))  # noqa: E731
    assert oneshot.ensemble([score]) is score
    with pytest.raises(ValueError, match="at least one"):
        oneshot.ensemble([])


def test_result_to_dict_is_json_ready():
    import json

    trials = _trials(n_trials=10)
    d = json.loads(json.dumps(oneshot.evaluate(_oracle, trials).to_dict()))
    assert d["accuracy"] == 1.0 and d["trials"] == 10 and d["ways"] == 5 and len(d["ci95"]) == 2
    assert all(set(v) == {"accuracy", "trials"} for v in d["per_alphabet"].values())


def test_wilson_interval_hand_values():
    # 5/10: centre (0.5 + 1.96^2/20) / (1 + 1.96^2/10) = 0.5, half-width 0.26340.
    low, high = oneshot.wilson_interval(5, 10)
    assert low == pytest.approx(0.23659, abs=1e-5) and high == pytest.approx(0.76341, abs=1e-5)
    low, high = oneshot.wilson_interval(0, 10)  # no collapse to a point at 0%
    assert low == 0.0 and high == pytest.approx(0.38416 / 1.38416, abs=1e-6)
    low, high = oneshot.wilson_interval(370, 400)
    assert low == pytest.approx(0.8949, abs=1e-4) and high == pytest.approx(0.9470, abs=1e-4)
