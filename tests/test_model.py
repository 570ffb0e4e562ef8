"""SiameseNet: presets, shapes, parameter views, shared twins, loading, CPU/GPU parity."""
import numpy as np
import pytest

from reference import rel_err
from tinysiamese.backend import get_backend
from tinysiamese.gradcheck import check_siamese_pairs
from tinysiamese.losses import bce_with_logits
from tinysiamese.config import PRESETS, ConfigError, build_config, encoder_shapes
from tinysiamese.model import SiameseNet


def images(rng, n, size):
    return rng.random((n, 1, size, size)).astype(np.float32)


# --------------------------------------------------------------------------- shapes of presets
@pytest.mark.parametrize("name, sizes", [("koch", [48, 21, 9, 6]), ("small", [24, 10, 4, 2]),
                                         ("tiny", [12, 5, 3])])
def test_encoder_shapes_of_presets(name, sizes):
    # koch: 105 -conv10-> 96 -pool-> 48 -conv7-> 42 -> 21 -conv4-> 18 -> 9 -conv4-> 6
    assert encoder_shapes(PRESETS[name].network) == sizes


def test_encoder_shapes_smallest_image():
    # tiny: 20 -conv5-> 16 -> 8 -conv3-> 6 -> 3 -conv3-> 1 is the smallest that fits
    assert encoder_shapes(build_config("tiny", {"network": {"image_size": 20}}).network) == [8, 3, 1]
    for size in (19, 10):
        with pytest.raises(ConfigError, match=f"image_size {size} is too small"):
            build_config("tiny", {"network": {"image_size": size}})


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name, n_params, features", [("tiny", 3353, 72), ("small", 689217, 512)])
def test_forward_shapes(backend, name, n_params, features):
    # tiny: conv1 4*25+4, conv2 8*4*9+8, conv3 8*8*9+8, dense1 72*32+32, join 32+1
    cfg = PRESETS[name].network
    rng = np.random.default_rng(0)
    model = SiameseNet(cfg, backend=backend, rng=rng)
    assert model.n_params() == n_params
    assert model.params()["dense1.W"].shape == (features, cfg.dense)
    x1 = backend.asarray(images(rng, 3, cfg.image_size))
    x2 = backend.asarray(images(rng, 3, cfg.image_size))
    h = model.encode(x1)
    assert h.shape == (3, cfg.dense) and h.dtype == np.float32
    z = model.forward_logits(x1, x2)
    assert z.shape == (3,) and z.dtype == np.float32
    p = backend.to_numpy(model.forward(x1, x2))
    assert p.shape == (3,) and p.dtype == np.float32 and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-backend.to_numpy(z).astype(np.float64))),
                               rtol=1e-6)
    dx = model.backward(backend.asarray(np.ones(3, dtype=np.float32)))
    assert dx is None, "conv1 should compute no gradient for the images (input_grad=False)"
    for k, g in model.grads().items():
        assert g.shape == model.params()[k].shape and g.dtype == np.float32, k


def test_layer_names_and_order():
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend(), rng=np.random.default_rng(0))
    # conv1 + pool1 are one layer (ConvPool2D): the images' block
    assert [n for n, _ in model.encoder] == ["conv1", "relu1", "conv2", "pool2", "relu2",
                                             "conv3", "relu3", "flatten", "dense1", "sigmoid1"]
    assert list(model.params()) == ["conv1.W", "conv1.b", "conv2.W", "conv2.b", "conv3.W",
                                    "conv3.b", "dense1.W", "dense1.b", "join.alpha", "join.b"]


# --------------------------------------------------------------------------- views
def test_params_and_grads_are_views(backend):
    model = SiameseNet(PRESETS["tiny"].network, backend=backend, rng=np.random.default_rng(1))
    layers = dict(model.named_layers())
    for k, v in model.params().items():
        layer, tensor = k.split(".")
        assert v is layers[layer].params[tensor], f"params()[{k!r}] is a copy"
        assert model.grads()[k] is layers[layer].grads[tensor], f"grads()[{k!r}] is a copy"
    model.params()["conv1.W"][0, 0, 0, 0] = 42.0
    model.params()["join.b"][...] = -3.0
    assert float(layers["conv1"].params["W"][0, 0, 0, 0]) == 42.0
    assert float(layers["join"].params["b"][0]) == -3.0


def test_same_seed_same_model():
    be = get_backend()
    a = SiameseNet(PRESETS["tiny"].network, backend=be, rng=np.random.default_rng(7))
    b = SiameseNet(PRESETS["tiny"].network, backend=be, rng=np.random.default_rng(7))
    c = SiameseNet(PRESETS["tiny"].network, backend=be, rng=np.random.default_rng(8))
    for k in a.params():
        np.testing.assert_array_equal(a.params()[k], b.params()[k], err_msg=k)
    assert not np.array_equal(a.params()["conv1.W"], c.params()["conv1.W"])


# --------------------------------------------------------------------------- shared twins
@pytest.fixture
def net64():
    be = get_backend("numpy", np.float64)
    rng = np.random.default_rng(2)
    model = SiameseNet(PRESETS["tiny"].network, backend=be, rng=rng)
    return model, images(rng, 4, 28).astype(np.float64), images(rng, 4, 28).astype(np.float64)


def copy_grads(model):
    return {k: v.copy() for k, v in model.grads().items()}


def test_swapping_the_twins_changes_nothing(net64):
    model, x1, x2 = net64
    dz = np.array([0.3, -1.0, 0.5, 2.0])
    z12 = model.forward_logits(x1, x2)
    model.backward_logits(dz)
    g12 = copy_grads(model)
    z21 = model.forward_logits(x2, x1)
    model.backward_logits(dz)
    assert rel_err(z12, z21) < 1e-12, "z(x1, x2) != z(x2, x1)"
    for k, g in copy_grads(model).items():
        assert rel_err(g, g12[k]) < 1e-12, f"{k} gradient depends on the twins' order"


def twin_gradients(net64, dz):
    """The grads of one forward/backward of the twins (x1, x2) of ``net64`` for ``dz``."""
    model, x1, x2 = net64
    model.forward_logits(x1, x2)
    model.backward_logits(dz)
    return copy_grads(model)


def test_twin_gradients_add_into_the_shared_weights(net64):
    model, x1, x2 = net64
    dz = np.array([0.3, -1.0, 0.5, 2.0])
    together = twin_gradients(net64, dz)
    # the same gradient, one twin at a time: through the join, then each encoder pass alone
    model.join.forward(model.encode(x1).copy(), model.encode(x2).copy())
    dh1, dh2 = model.join.backward(dz)
    per_twin = []
    for x, dh in ((x1, dh1), (x2, dh2)):
        model.encode(x)
        for _, layer in reversed(model.encoder):
            dh = layer.backward(dh)
        per_twin.append(copy_grads(model))
    for k in together:
        if k.startswith("join."):
            continue
        err = rel_err(together[k], per_twin[0][k] + per_twin[1][k])
        assert err < 1e-12, f"{k}: twin gradients do not add up (rel error {err:.2e})"
        assert rel_err(per_twin[0][k], per_twin[1][k]) > 1e-3, f"{k}: twins got the same gradient"


def test_identical_pair(net64):
    # h1 == h2: z = b for every pair, and only the join's bias gets a gradient (sign(0) = 0)
    model, x1, _ = net64
    z = model.forward_logits(x1, x1)
    np.testing.assert_array_equal(z, np.full(4, model.params()["join.b"][0]))
    dz = np.array([0.3, -1.0, 0.5, 2.0])
    model.backward_logits(dz)
    for k, g in model.grads().items():
        if k == "join.b":
            assert g[0] == pytest.approx(1.8, rel=1e-12)
        else:
            assert not g.any(), f"{k} gradient is not 0 for a pair (x, x)"


def test_siamese_bce_gradient_decreases_the_loss(net64):
    # one small step against the gradient must lower the loss (a sign error would raise it)
    model, x1, x2 = net64
    y = np.array([1.0, 0.0, 1.0, 0.0])
    loss0, dz = bce_with_logits(model.forward_logits(x1, x2), y)
    model.backward_logits(dz)
    for k, v in model.params().items():
        v -= 1e-2 * model.grads()[k]
    loss1, _ = bce_with_logits(model.forward_logits(x1, x2), y)
    assert float(loss1) < float(loss0), f"loss {float(loss0):.6f} -> {float(loss1):.6f}"


# --------------------------------------------------------------------------- pairs within a batch
def test_pair_logits_match_the_twins_pair_by_pair(net64):
    model, x1, x2 = net64
    x = np.concatenate([x1, x2])                         # 8 images
    first, second = np.array([0, 0, 5, 7, 3, 2]), np.array([1, 4, 6, 0, 3, 6])
    z = model.forward_pair_logits(x, first, second)
    for p, (i, j) in enumerate(zip(first, second)):      # the plain loop: one pair at a time
        one = model.forward_logits(x[i:i + 1], x[j:j + 1])
        assert z[p] == pytest.approx(one[0], rel=1e-12), f"pair ({i}, {j})"


def test_pair_gradients_are_the_twins_gradients_for_disjoint_pairs(net64):
    # pairs (k, N + k) of the stacked twins are the twin path exactly, gradients included
    model, x1, x2 = net64
    dz = np.array([0.3, -1.0, 0.5, 2.0])
    twins = twin_gradients(net64, dz)
    k = np.arange(4)
    model.forward_pair_logits(np.concatenate([x1, x2]), k, 4 + k)
    model.backward_pair_logits(dz)
    for name, g in copy_grads(model).items():
        assert rel_err(g, twins[name]) < 1e-12, name


def test_group_loss_gradient_matches_finite_differences():
    # every pair of 5 images, one of them in every pair it can be: the scatter-add is tested
    be = get_backend("numpy", np.float64)
    rng = np.random.default_rng(4)
    model = SiameseNet(build_config("tiny", {"dense": 6}).network, backend=be, rng=rng)
    x = images(rng, 5, 28).astype(np.float64)
    first, second = np.triu_indices(5, k=1)
    same = np.array([1.0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0])
    weight = np.where(same > 0, 0.25, 0.5 / 8)

    for r in check_siamese_pairs(model, x, first, second, same, weight):
        assert r.passed, f"{r.tensor}: rel error {r.rel_error:.2e}"


# --------------------------------------------------------------------------- load_params
def test_load_params_round_trip(backend):
    cfg = PRESETS["tiny"].network
    rng = np.random.default_rng(3)
    a = SiameseNet(cfg, backend=backend, rng=np.random.default_rng(4))
    b = SiameseNet(cfg, backend=backend, rng=np.random.default_rng(5))
    x1, x2 = backend.asarray(images(rng, 2, 28)), backend.asarray(images(rng, 2, 28))
    arrays = {k: backend.to_numpy(v).copy() for k, v in a.params().items()}
    before = {k: id(v) for k, v in b.params().items()}
    b.load_params(arrays)
    assert {k: id(v) for k, v in b.params().items()} == before, "load_params replaced arrays"
    np.testing.assert_array_equal(backend.to_numpy(b.forward_logits(x1, x2)),
                                  backend.to_numpy(a.forward_logits(x1, x2)))


def test_load_params_rejects_wrong_names_and_shapes():
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend(), rng=np.random.default_rng(6))
    good = {k: v.copy() for k, v in model.params().items()}
    missing = dict(good)
    del missing["conv2.b"]
    with pytest.raises(ValueError, match="conv2.b"):
        model.load_params(missing)
    with pytest.raises(ValueError, match="conv9.W"):
        model.load_params({**good, "conv9.W": np.zeros(3)})
    with pytest.raises(ValueError, match=r"dense1.W has shape \(32, 72\)"):
        model.load_params({**good, "dense1.W": good["dense1.W"].T.copy()})
    with pytest.raises(ValueError, match=r"join.alpha has shape \(5,\)"):
        model.load_params({**good, "join.alpha": np.zeros(5)})


def test_rejected_load_leaves_the_model_unchanged():
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend(), rng=np.random.default_rng(6))
    before = {k: v.copy() for k, v in model.params().items()}
    bad = {k: v + 1 for k, v in before.items()}
    bad["join.alpha"] = np.zeros(5)  # the last parameter has the wrong shape
    with pytest.raises(ValueError):
        model.load_params(bad)
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} changed by a rejected load")


# --------------------------------------------------------------------------- GPU parity
@pytest.mark.gpu
def test_model_cupy_matches_numpy(cupy_backend):
    cfg = PRESETS["tiny"].network
    cpu = SiameseNet(cfg, backend=get_backend(), rng=np.random.default_rng(9))
    gpu = SiameseNet(cfg, backend=cupy_backend, rng=np.random.default_rng(9))
    for k, v in cpu.params().items():
        np.testing.assert_array_equal(cupy_backend.to_numpy(gpu.params()[k]), v, err_msg=k)
    rng = np.random.default_rng(10)
    x1, x2 = images(rng, 8, 28), images(rng, 8, 28)
    y = (rng.random(8) < 0.5).astype(np.float32)
    lc, dzc = bce_with_logits(cpu.forward_logits(x1, x2), y)
    zg = gpu.forward_logits(cupy_backend.asarray(x1), cupy_backend.asarray(x2))
    lg, dzg = bce_with_logits(zg, cupy_backend.asarray(y))
    cpu.backward_logits(dzc)
    gpu.backward_logits(dzg)
    assert_same_on_gpu(cpu, gpu, (lc, dzc), (lg, dzg), cupy_backend)


def assert_same_on_gpu(cpu, gpu, cpu_loss, gpu_loss, cupy_backend):
    """The loss and every gradient of one step agree between the CPU and GPU models."""
    (lc, _), (lg, _) = cpu_loss, gpu_loss
    assert abs(float(lg) - float(lc)) < 1e-5 * abs(float(lc)), "loss differs on the GPU"
    for k, g in cpu.grads().items():
        err = rel_err(cupy_backend.to_numpy(gpu.grads()[k]), g)
        assert err < 1e-5, f"{k} gradient rel error {err:.2e} between GPU and CPU"


def test_pair_logits_cupy_match_numpy(cupy_backend):
    """The group path on the GPU: device indices, the one-hot scatter-add, weighted loss."""
    cfg = PRESETS["tiny"].network
    cpu = SiameseNet(cfg, backend=get_backend(), rng=np.random.default_rng(9))
    gpu = SiameseNet(cfg, backend=cupy_backend, rng=np.random.default_rng(9))
    x = images(np.random.default_rng(11), 8, 28)
    first, second = np.triu_indices(8, k=1)
    same = (first // 2 == second // 2).astype(np.float32)
    weight = np.where(same > 0, 0.5 / same.sum(), 0.5 / (len(same) - same.sum())).astype(np.float32)
    lc, dzc = bce_with_logits(cpu.forward_pair_logits(x, first, second), same, weight)
    xp = cupy_backend.xp
    zg = gpu.forward_pair_logits(cupy_backend.asarray(x), xp.asarray(first), xp.asarray(second))
    lg, dzg = bce_with_logits(zg, cupy_backend.asarray(same), cupy_backend.asarray(weight))
    cpu.backward_pair_logits(dzc)
    gpu.backward_pair_logits(dzg)
    assert_same_on_gpu(cpu, gpu, (lc, dzc), (lg, dzg), cupy_backend)
