"""Momentum SGD: schedules and update rule against hand-computed numbers."""
import numpy as np
import pytest

from tinysiamese.config import ConfigError, OptimConfig, build_config
from tinysiamese.optim import (MomentumSGD, WeightAverage, learning_rate, make_groups, momentum,
                               momentum_step)


def test_learning_rate_schedule():
    assert learning_rate(0.1, 0) == 0.1
    assert learning_rate(0.1, 3) == pytest.approx(0.0970299, rel=1e-12)  # 0.1 * 0.99**3
    assert learning_rate(0.1, 3, decay=0.5) == pytest.approx(0.0125, rel=1e-12)
    assert learning_rate(0.01, 1) == pytest.approx(0.0099, rel=1e-12)


@pytest.mark.parametrize("epoch, expected", [(0, 0.5), (5, 0.7), (10, 0.9), (20, 0.9),
                                             (1, 0.54), (9, 0.86)])
def test_momentum_ramp(epoch, expected):
    # linear from 0.5 at epoch 0 to 0.9 at epoch 10, then flat
    assert momentum(0.9, epoch, 10) == pytest.approx(expected, rel=1e-12)


def test_momentum_without_ramp_is_final():
    assert momentum(0.95, 0, 0) == 0.95
    assert momentum(0.6, 2, 4, start=0.2) == pytest.approx(0.4, rel=1e-12)


def test_momentum_step_by_hand_without_l2():
    w, v = np.array([1.0, -2.0]), np.array([0.1, 0.2])
    w_id, v_id = id(w), id(v)
    momentum_step(w, v, np.array([0.5, -1.0]), lr=0.1, mu=0.9, l2=0.0)
    # v = 0.9 v - 0.1 g = [0.09 - 0.05, 0.18 + 0.1];  w = w + v
    np.testing.assert_allclose(v, [0.04, 0.28], rtol=1e-12)
    np.testing.assert_allclose(w, [1.04, -1.72], rtol=1e-12)
    assert id(w) == w_id and id(v) == v_id


def test_momentum_step_by_hand_with_l2():
    w, v = np.array([1.0, -2.0]), np.array([0.1, 0.2])
    momentum_step(w, v, np.array([0.5, -1.0]), lr=0.1, mu=0.9, l2=0.5)
    # g + 2 * 0.5 * w = [1.5, -3.0];  v = [0.09 - 0.15, 0.18 + 0.3];  w = w + v
    np.testing.assert_allclose(v, [-0.06, 0.48], rtol=1e-12)
    np.testing.assert_allclose(w, [0.94, -1.52], rtol=1e-12)


def test_make_groups_defaults_and_overrides():
    cfg = OptimConfig(lr=0.01, momentum=0.9, l2=2e-4, lr_decay=0.99, momentum_epochs=20,
                      layers={"conv1": {"lr": 0.001, "l2": 0}})
    groups = make_groups(["conv1", "dense1", "join"], cfg)
    assert groups == {"conv1": {"lr": 0.001, "momentum": 0.9, "l2": 0.0},
                      "dense1": {"lr": 0.01, "momentum": 0.9, "l2": 2e-4},
                      "join": {"lr": 0.01, "momentum": 0.9, "l2": 2e-4}}
    groups["dense1"]["lr"] = 1.0
    assert groups["join"]["lr"] == 0.01, "groups share one dict"


def test_per_layer_settings_for_an_unknown_layer_are_refused():
    with pytest.raises(ConfigError, match="conv9"):
        build_config("tiny", {"optim": {"layers": {"conv9": {"lr": 0.5}}}})


def make_sgd():
    params = {"conv1.W": np.array([1.0, -2.0]), "conv1.b": np.array([1.0, -2.0]),
              "join.alpha": np.array([1.0, -2.0])}
    grads = {k: np.array([0.5, 0.5]) for k in params}
    groups = {"conv1": {"lr": 0.1, "momentum": 0.9, "l2": 0.01},
              "join": {"lr": 0.2, "momentum": 0.9, "l2": 0.01}}
    return MomentumSGD(params, grads, groups, lr_decay=0.99, momentum_epochs=10)


def test_sgd_state_is_keyed_by_parameter_name():
    opt = make_sgd()
    assert set(opt.velocities) == set(opt.params)
    for k, v in opt.velocities.items():
        assert not v.any() and not np.shares_memory(v, opt.params[k]), k


def test_sgd_step_decays_weights_not_biases():
    opt = make_sgd()
    w, b, alpha = opt.params["conv1.W"], opt.params["conv1.b"], opt.params["join.alpha"]
    opt.step()  # epoch 0: mu = 0.5, v = 0
    # W:     v = -0.1 (0.5 + 2*0.01*w) = -0.1 [0.52, 0.46]
    np.testing.assert_allclose(opt.velocities["conv1.W"], [-0.052, -0.046], rtol=1e-12)
    np.testing.assert_allclose(w, [0.948, -2.046], rtol=1e-12)
    # b:     no L2, v = -0.1 * 0.5
    np.testing.assert_allclose(b, [0.95, -2.05], rtol=1e-12)
    # alpha: decayed like W, with the join's lr 0.2
    np.testing.assert_allclose(alpha, [0.896, -2.092], rtol=1e-12)
    opt.step()
    # W: v = 0.5 [-0.052, -0.046] - 0.1 (0.5 + 0.02 [0.948, -2.046])
    np.testing.assert_allclose(opt.velocities["conv1.W"], [-0.077896, -0.068908], rtol=1e-12)
    np.testing.assert_allclose(w, [0.870104, -2.114908], rtol=1e-12)
    np.testing.assert_allclose(b, [0.875, -2.125], rtol=1e-12)
    assert opt.params["conv1.W"] is w, "step replaced the model's array instead of updating it"


def test_sgd_end_epoch_changes_lr_and_momentum():
    opt = make_sgd()
    opt.step()
    opt.step()  # b = [0.875, -2.125], v_b = -0.075
    for _ in range(5):
        opt.end_epoch()
    assert opt.epoch == 5
    lr, mu, l2 = opt.hyper("conv1")
    assert lr == pytest.approx(0.09509900499, rel=1e-12)  # 0.1 * 0.99**5
    assert mu == pytest.approx(0.7, rel=1e-12) and l2 == 0.01
    opt.step()
    # v_b = 0.7 * -0.075 - 0.09509900499 * 0.5
    np.testing.assert_allclose(opt.velocities["conv1.b"], -0.100049502495, rtol=1e-12)
    np.testing.assert_allclose(opt.params["conv1.b"], [0.774950497505, -2.225049502495],
                               rtol=1e-12)
    for _ in range(10):
        opt.end_epoch()
    assert opt.hyper("join")[1] == 0.9  # ramp finished


@pytest.mark.gpu
def test_sgd_on_cupy_matches_numpy(cupy_backend):
    """The optimiser only uses in-place array arithmetic, so it runs on the GPU unchanged."""
    host = make_sgd()
    dev = MomentumSGD({k: cupy_backend.asarray(v, np.float64) for k, v in make_sgd().params.items()},
                      {k: cupy_backend.asarray(v, np.float64) for k, v in make_sgd().grads.items()},
                      make_sgd().groups, lr_decay=0.99, momentum_epochs=10)
    for _ in range(3):
        host.step()
        dev.step()
        host.end_epoch()
        dev.end_epoch()
    for k, w in host.params.items():
        np.testing.assert_allclose(cupy_backend.to_numpy(dev.params[k]), w, rtol=1e-12, err_msg=k)
        np.testing.assert_allclose(cupy_backend.to_numpy(dev.velocities[k]), host.velocities[k],
                                   rtol=1e-12, err_msg=k)


def test_weight_average_follows_its_formula_step_by_step():
    rng = np.random.default_rng(0)
    w = {"a.W": rng.normal(size=(3, 4)), "a.b": rng.normal(size=4)}
    avg = WeightAverage(w, decay=0.95)
    ref = {k: v.copy() for k, v in w.items()}
    for t in range(1, 201):  # through the warm-up (β_t reaches 0.95 at t = 170) and past it
        for v in w.values():
            v += rng.normal(size=v.shape)  # an optimiser step, in place
        beta = min(0.95, (1 + t) / (10 + t))
        for k in w:
            ref[k] = beta * ref[k] + (1 - beta) * w[k]
        avg.update()
        for k in w:
            np.testing.assert_allclose(avg.averages[k], ref[k], rtol=1e-12, atol=1e-12)
    assert avg.steps == 200 and avg.beta() == 0.95
    assert not np.shares_memory(avg.averages["a.W"], w["a.W"])


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.99", True, None])
def test_a_weight_average_decay_must_be_a_decay(bad):
    with pytest.raises(ConfigError, match="optim.average must be a number from 0"):
        build_config("tiny", {"optim": {"average": bad}})


def test_the_weight_average_is_off_unless_asked_for():
    assert build_config("tiny").optim.average == 0.0
    assert build_config("tiny", {"optim": {"average": 0.999}}).optim.average == 0.999
