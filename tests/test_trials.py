"""trials: Lake's within-alphabet protocol and the Trials container's checks."""
import numpy as np
import pytest
from conftest import fake_subset, subset_ids
from tinysiamese.characters import paper_split
from tinysiamese.trials import Trials, within_alphabet_trials


# --------------------------------------------------------------------------------------
# Within-alphabet trials


def test_within_alphabet_trials_follow_lakes_protocol():
    subset = fake_subset(alphabet_sizes=(6, 7, 5), n_drawers=4, size=10)
    trials = within_alphabet_trials(subset, n_way=5, n_trials=30, seed=1)
    assert trials.test.shape == (30, 10, 10) and trials.support.shape == (30, 5, 10, 10)
    assert trials.test.dtype == trials.support.dtype == np.float32
    assert trials.answer.dtype == np.int64
    for t in range(30):
        tc, td = subset_ids(trials.test[t:t + 1])
        sc, sd = subset_ids(trials.support[t])
        assert sc[trials.answer[t]] == tc[0], "the answer is the test image's character"
        assert len(set(sc)) == 5, "N different characters"
        alphabet = subset.alphabets.index(trials.alphabet[t])
        assert set(subset.alphabet_of[sc]) == {alphabet}, "all from the trial's alphabet"
        assert len(set(sd)) == 1 and sd[0] != td[0], "supports by one drawer, the test by another"
    # Trials come in sets of N sharing supports; each set tests each of its characters once.
    for s in range(6):
        block = slice(5 * s, 5 * s + 5)
        assert sorted(trials.answer[block]) == [0, 1, 2, 3, 4]
        np.testing.assert_array_equal(trials.support[5 * s], trials.support[5 * s + 4])
    # Alphabets are taken in turn: 6 sets over 3 alphabets = 2 sets each.
    assert sorted(np.unique(trials.alphabet, return_counts=True)[1]) == [10, 10, 10]


def test_trials_are_deterministic_and_cut_short():
    subset = fake_subset(alphabet_sizes=(6, 7, 5))
    a = within_alphabet_trials(subset, n_way=4, n_trials=10, seed=3)
    b = within_alphabet_trials(subset, n_way=4, n_trials=10, seed=3)
    c = within_alphabet_trials(subset, n_way=4, n_trials=10, seed=4)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.alphabet == b.alphabet
    assert not np.array_equal(a.support, c.support)
    assert a.n_trials == 10 and a.answer.tolist()[8:] == [0, 1]  # the third set of 4 is cut at 2


def test_too_many_ways_is_a_clear_error():
    subset = fake_subset(alphabet_sizes=(6, 3, 5))
    with pytest.raises(ValueError, match="A1 has 3: use at most 3 ways"):
        within_alphabet_trials(subset, n_way=4)
    with pytest.raises(ValueError, match="at least 2 ways"):
        within_alphabet_trials(subset, n_way=1)


def test_real_test_set_trials(real_evaluation):
    test = paper_split(real_evaluation, "test")
    trials = within_alphabet_trials(test, n_way=20, n_trials=400, seed=0)
    assert trials.support.shape == (400, 20, 105, 105)
    names, counts = np.unique(trials.alphabet, return_counts=True)
    assert len(names) == 10 and set(counts) == {40}, "two sets of 20 per test alphabet"
    assert set(names) == set(test.alphabets)
    val = within_alphabet_trials(paper_split(real_evaluation, "val"), n_trials=320)
    assert sorted(np.unique(val.alphabet, return_counts=True)[1]) == [20] * 4 + [40] * 6


def test_trials_check_their_shapes():
    with pytest.raises(ValueError, match="inconsistent trials"):
        Trials(np.zeros((3, 4, 4)), np.zeros((2, 5, 4, 4)), np.zeros(2, int), ["a", "b"])
    with pytest.raises(ValueError, match="answers must lie"):
        Trials(np.zeros((1, 4, 4)), np.zeros((1, 5, 4, 4)), np.array([5]), ["a"])
