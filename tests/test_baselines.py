import numpy as np
import pytest
from conftest import fake_subset

from tinysiamese import baselines, oneshot
from tinysiamese.characters import paper_split
from tinysiamese.trials import Trials, within_alphabet_trials


def test_nn_score_hand_example():
    x1 = np.zeros((2, 1, 2, 2), np.float32)
    x2 = np.zeros((2, 1, 2, 2), np.float32)
    x2[0, 0, 0, 0] = 3.0
    x2[0, 0, 1, 1] = 4.0  # distance 5
    x1[1] = x2[1] = 1.0   # identical
    np.testing.assert_allclose(baselines.nn_score(x1, x2), [-5.0, 0.0])


def test_modified_hausdorff_hand_example():
    a = np.array([[0.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 2.0]])
    # a -> b: 0; b -> a: mean(0, 2) = 1; MHD = max = 1.
    assert baselines.modified_hausdorff(a, b) == 1.0
    assert baselines.modified_hausdorff(b, a) == 1.0
    assert baselines.modified_hausdorff(a, a) == 0.0
    assert baselines.modified_hausdorff(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0
    assert baselines.modified_hausdorff(a, np.zeros((0, 2))) == float("inf")


def test_ink_points_are_centred():
    image = np.zeros((5, 5))
    image[1, 1] = image[3, 3] = 1.0
    np.testing.assert_array_equal(baselines.ink_points(image, center=False), [[1, 1], [3, 3]])
    np.testing.assert_array_equal(baselines.ink_points(image), [[-1, -1], [1, 1]])


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("h, w", [(21, 17), (9, 30)])
def test_fast_hausdorff_matches_brute_force(center, h, w):
    rng = np.random.default_rng(h * w)
    x1 = (rng.random((40, 1, h, w)) < rng.uniform(0.02, 0.3, (40, 1, 1, 1))).astype(np.float32)
    x2 = (rng.random((40, 1, h, w)) < rng.uniform(0.02, 0.3, (40, 1, 1, 1))).astype(np.float32)
    x1[0] = 0.0
    x2[0] = 0.0   # blank vs blank
    x2[1] = 0.0   # ink vs blank
    x1[2, 0, 0, 0] = x2[2, 0, h - 1, w - 1] = 1.0  # far corners
    fast = baselines.hausdorff_score(x1, x2, center=center, max_elements=100)  # many small chunks
    points = [(baselines.ink_points(a[0], center), baselines.ink_points(b[0], center))
              for a, b in zip(x1, x2)]
    ref = np.array([-baselines.modified_hausdorff(a, b) for a, b in points])
    assert fast[0] == 0.0 and fast[1] == -np.inf and ref[1] == -np.inf
    np.testing.assert_allclose(fast[2:], ref[2:], rtol=1e-5, atol=1e-4)


def test_centring_ignores_position():
    a = np.zeros((1, 1, 20, 20), np.float32)
    a[0, 0, 2:6, 3] = 1.0
    b = np.roll(a, (7, 9), axis=(2, 3))
    assert baselines.hausdorff_score(a, b)[0] == 0.0
    assert baselines.hausdorff_score(a, b, center=False)[0] < -5


def test_baselines_through_the_evaluator():
    # Support and test are drawn by different drawers, which differ only in pixel [0, 1]:
    # nearest neighbour on pixels still finds the character (pixel [0, 0]).
    trials = within_alphabet_trials(fake_subset(alphabet_sizes=(6, 7, 5)), n_way=5,
                                            n_trials=30)
    assert oneshot.evaluate(baselines.nn_score, trials).accuracy == 1.0


def test_real_baselines_beat_chance(real_evaluation):
    test = paper_split(real_evaluation, "test")
    trials = within_alphabet_trials(test, n_way=20, n_trials=60, seed=0)
    small = Trials(trials.test[:, ::3, ::3].copy(), trials.support[:, :, ::3, ::3].copy(),
                           trials.answer, trials.alphabet)  # 35x35: keeps the test quick
    # Chance is 1/20; Hausdorff is far better than raw pixels (about 60% vs 15-20%).
    for score, floor in ((baselines.nn_score, 0.08), (baselines.hausdorff_score, 0.4)):
        result = oneshot.evaluate(score, small)
        assert result.accuracy > floor, f"{score.__name__}: {result.accuracy:.2f}"
