"""bce_with_logits and one_shot_softmax: values, gradients, and stability for
huge logits."""
import warnings

import numpy as np
import pytest

from reference import rel_err
from tinysiamese.groups import pairs_within
from tinysiamese.losses import bce_with_logits, one_shot_softmax


def naive_bce(z, y):
    p = 1 / (1 + np.exp(-z))
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def test_bce_equals_naive_formula(backend):
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(0)
    z = rng.uniform(-6, 6, size=9)
    y = (rng.random(9) < 0.5).astype(np.float64)
    loss, dz = bce_with_logits(b64.asarray(z), b64.asarray(y))
    assert abs(float(loss) - naive_bce(z, y)) < 1e-12 * naive_bce(z, y), "bce loss"
    p = 1 / (1 + np.exp(-z))
    assert rel_err(b64.to_numpy(dz), (p - y) / 9) < 1e-12, "bce dz"


def test_bce_by_hand():
    # z = 0: p = 1/2, loss = log 2 whatever the label; dz = (1/2 - y) / N
    loss, dz = bce_with_logits(np.zeros(2), np.array([1.0, 0.0]))
    assert abs(float(loss) - 0.6931471805599453) < 1e-15
    np.testing.assert_array_equal(dz, [-0.25, 0.25])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_huge_logits(backend, dtype):
    z = backend.asarray([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    y = backend.asarray([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        loss, dz = bce_with_logits(z, y)
        per_pair = [float(bce_with_logits(z[i:i + 1], y[i:i + 1])[0]) for i in range(4)]
    # wrong label: loss = |z|; right label: loss = log(1 + e^-1e4) = 0
    assert per_pair == [1e4, 1e4, 0.0, 0.0], per_pair
    assert float(loss) == 5000.0, f"mean loss {float(loss)}"
    assert dz.dtype == dtype
    np.testing.assert_array_equal(backend.to_numpy(dz), [0.25, -0.25, 0.0, 0.0])


def test_bce_dz_matches_finite_differences():
    rng = np.random.default_rng(1)
    z = rng.uniform(-4, 4, size=7)
    y = (rng.random(7) < 0.5).astype(np.float64)
    _, dz = bce_with_logits(z, y)
    h, num = 1e-6, np.zeros(7)
    for i in range(7):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        num[i] = (float(bce_with_logits(zp, y)[0]) - float(bce_with_logits(zm, y)[0])) / (2 * h)
    err = rel_err(dz, num)
    assert err < 1e-8, f"bce dz rel error {err:.2e}"


def test_bce_keeps_float32_gradient_with_float64_labels():
    _, dz = bce_with_logits(np.array([0.5, -0.5], dtype=np.float32), np.array([1.0, 0.0]))
    assert dz.dtype == np.float32


def test_weighted_bce_by_a_plain_loop_and_finite_differences():
    rng = np.random.default_rng(3)
    z = rng.uniform(-4, 4, size=6)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    w = rng.random(6)
    w /= w.sum()
    loss, dz = bce_with_logits(z, y, w)
    by_hand = sum(-w[i] * (y[i] * np.log(1 / (1 + np.exp(-z[i])))
                           + (1 - y[i]) * np.log(1 - 1 / (1 + np.exp(-z[i])))) for i in range(6))
    assert float(loss) == pytest.approx(by_hand, rel=1e-12)
    h, num = 1e-6, np.zeros(6)
    for i in range(6):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        num[i] = (float(bce_with_logits(zp, y, w)[0]) - float(bce_with_logits(zm, y, w)[0])) / (2 * h)
    err = rel_err(dz, num)
    assert err < 1e-8, f"weighted bce dz rel error {err:.2e}"


def test_equal_weights_are_the_mean():
    z, y = np.array([0.5, -2.0, 3.0, 0.1]), np.array([1.0, 0.0, 0.0, 1.0])
    mean, dz_mean = bce_with_logits(z, y)
    weighted, dz_weighted = bce_with_logits(z, y, np.full(4, 0.25))
    assert float(weighted) == pytest.approx(float(mean), rel=1e-15)
    np.testing.assert_allclose(dz_weighted, dz_mean, rtol=1e-15)


def one_shot_by_loops(z, first, second, labels):
    """The one-shot softmax the slow way: a 20-way-style trial per (anchor, positive)."""
    n = len(labels)
    S = np.zeros((n, n))
    for p in range(len(z)):
        S[first[p], second[p]] = S[second[p], first[p]] = z[p]
    terms = []
    for i in range(n):
        negatives = [S[i, k] for k in range(n) if labels[k] != labels[i]]
        for j in range(n):
            if j != i and labels[j] == labels[i]:
                terms.append(-S[i, j] + np.log(np.exp(S[i, j]) + np.sum(np.exp(negatives))))
    return float(np.mean(terms))


def test_one_shot_softmax_by_loops_and_finite_differences(backend):
    b64 = backend.with_dtype(np.float64)
    labels = np.array([0, 0, 1, 1, 1, 2, 2])  # uneven groups: 2, 3 and 2 drawings
    first, second, same, _ = pairs_within(labels)
    rng = np.random.default_rng(5)
    z = rng.uniform(-3, 3, size=len(first))
    loss, dz = one_shot_softmax(b64.asarray(z), b64.xp.asarray(first), b64.xp.asarray(second),
                                b64.asarray(same), len(labels))
    assert float(loss) == pytest.approx(one_shot_by_loops(z, first, second, labels), rel=1e-12)
    h, num = 1e-6, np.zeros(len(z))
    for i in range(len(z)):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        num[i] = (one_shot_by_loops(zp, first, second, labels)
                  - one_shot_by_loops(zm, first, second, labels)) / (2 * h)
    err = rel_err(b64.to_numpy(dz), num)
    assert err < 1e-8, f"one-shot softmax dz rel error {err:.2e}"


def test_one_shot_softmax_by_hand():
    # two characters of two drawings, all logits 0: each of the 4 anchors picks its one
    # positive among itself and 2 negatives, so the loss is log 3; the same pairs' logits
    # get -2/3 each (from both rows, / 4), the different ones 1/3 * 2 / 4 = 1/6
    first, second, same, _ = pairs_within(np.array([0, 0, 1, 1]))
    loss, dz = one_shot_softmax(np.zeros(6), first, second, same, 4)
    assert float(loss) == pytest.approx(np.log(3), rel=1e-15)
    np.testing.assert_allclose(dz, np.where(same > 0.5, -1 / 3, 1 / 6), rtol=1e-14)
    assert abs(dz.sum()) < 1e-15, "a shift of every logit leaves every softmax as it is"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_shot_softmax_huge_logits(dtype):
    first, second, same, _ = pairs_within(np.array([0, 0, 1, 1, 2, 2]))
    z = np.where(same > 0.5, -1e4, 1e4).astype(dtype)  # as wrong as can be
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dz = one_shot_softmax(z, first, second, same, 6)
    assert dz.dtype == dtype and np.isfinite(dz).all()
    # L = 1e4 + log 4 (four negatives at 1e4), softplus(L - z) = L + 1e4
    assert float(loss) == pytest.approx(2e4 + np.log(4), rel=1e-6)
    z = -z  # as right as can be: no loss, no gradient
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dz = one_shot_softmax(z, first, second, same, 6)
    assert float(loss) == 0.0 and not dz.any()
