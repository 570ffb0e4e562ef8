"""The gradient checker: every layer passes, wrong layers fail, student layers load, and the
course exercises (docs/exercises.md) stay true."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tinysiamese import gradcheck
from tinysiamese.backend import get_backend
from tinysiamese.gradcheck import (LAYER_NAMES, STUDENT_ARGS, check_layer, check_siamese,
                                   check_standard, load_student_layer, numerical_gradient,
                                   rel_error)
from tinysiamese.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, WeightedL1
from tinysiamese.config import PRESETS, build_config
from tinysiamese.model import SiameseNet

DOCS = Path(__file__).resolve().parent.parent / "docs"


def assert_all_pass(results):
    assert results, "no results"
    for r in results:
        assert r.rel_error < 1e-6, f"{r.layer}.{r.tensor} rel error {r.rel_error:.2e}"
        assert r.passed, f"{r.layer}.{r.tensor} not marked passed"


# --------------------------------------------------------------------------- the helpers
def test_rel_error_by_hand():
    assert rel_error([1.0, 2.0], [1.0, 2.5]) == pytest.approx(0.5 / 4.5, rel=1e-15)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error([1e-300], [0.0]) == pytest.approx(1e-288, rel=1e-9)  # tiny floor 1e-12


def test_numerical_gradient_of_a_square_restores_v():
    v = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = v.copy()
    g = numerical_gradient(lambda: float((v ** 2).sum()), v)
    np.testing.assert_allclose(g, 2 * before, rtol=1e-8)
    np.testing.assert_array_equal(v, before)


# --------------------------------------------------------------------------- every layer passes
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", LAYER_NAMES)
def test_standard_checks_pass(backend, kind, seed):
    results = check_standard(kind, backend, seed=seed)
    assert_all_pass(results)
    assert {r.layer.partition(",")[0] for r in results} == {kind}


@pytest.mark.parametrize("kind, tensors", [
    ("Conv2D", ["dx", "dW", "db"] * 2),  # on im2col, then on the Fourier path
    ("MaxPool2D", ["dx"]), ("ConvPool2D", ["dx", "dW", "db"]), ("Dense", ["dx", "dW", "db"]),
    ("ReLU", ["dx"]), ("Sigmoid", ["dx"]), ("Flatten", ["dx"]),
    ("WeightedL1", ["dh1", "dh2", "dalpha", "db"]),
    ("SiameseNet", ["conv1.W", "conv1.b", "conv2.W", "conv2.b", "dense1.W", "dense1.b",
                    "join.alpha", "join.b"] * 2),  # twins, then all pairs among 6 images
])
def test_standard_checks_cover_every_tensor(kind, tensors):
    results = check_standard(kind, get_backend("numpy"))
    assert [r.tensor for r in results] == tensors
    if kind == "Conv2D":
        assert [r.shape for r in results] == [(2, 3, 7, 6), (4, 3, 3, 3), (4,)] * 2
        assert [r.layer for r in results] == ["Conv2D"] * 3 + ["Conv2D, Fourier"] * 3


def test_the_fourier_conv_check_goes_through_the_fourier_backward(monkeypatch):
    from tinysiamese import fftconv

    calls = []
    real = fftconv.conv2d_fft_backward
    monkeypatch.setattr(fftconv, "conv2d_fft_backward",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    check_standard("Conv2D", get_backend("numpy"))
    assert calls, "tinysiamese gradcheck never ran the Fourier path's backward"


def distinct(rng, shape):
    """Values spaced by 0.1 in random order: no two elements of a pooling window tie."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + 0.1, x - 0.1)


def extra_cases(b, rng):
    """(name, layer, inputs) on odd shapes beyond the standard ones, float64."""
    a = b.asarray
    return [
        ("Conv2D k4 3x2x9x8", Conv2D(2, 3, 4, backend=b, rng=rng), (a(rng.standard_normal((3, 2, 9, 8))),)),
        ("Conv2D k5 -> 1x1", Conv2D(1, 2, 5, backend=b, rng=rng), (a(rng.standard_normal((1, 1, 5, 5))),)),
        ("Conv2D chunked", Conv2D(2, 2, 3, backend=b, rng=rng, max_cols_bytes=1),
         (a(rng.standard_normal((3, 2, 5, 4))),)),
        ("MaxPool2D s3 7x8", MaxPool2D(3), (a(distinct(rng, (2, 2, 7, 8))),)),
        ("MaxPool2D 1x1x3x5", MaxPool2D(2), (a(distinct(rng, (1, 1, 3, 5))),)),
        ("Dense 7->1", Dense(7, 1, backend=b, rng=rng), (a(rng.standard_normal((3, 7))),)),
        ("Dense batch 1", Dense(1, 4, backend=b, rng=rng), (a(rng.standard_normal((1, 1))),)),
        ("ReLU 5x3", ReLU(), (a(away_from_zero(rng, (5, 3))),)),
        ("Sigmoid 3x1x5", Sigmoid(), (a(rng.standard_normal((3, 1, 5)) * 4),)),
        ("Flatten 1x1x3x1", Flatten(), (a(rng.standard_normal((1, 1, 3, 1))),)),
        ("WeightedL1 1x3", WeightedL1(3, backend=b, rng=rng),
         (a(np.array([[0.1, 0.9, 0.5]])), a(np.array([[0.4, 0.2, 0.7]])))),
    ]


def test_extra_shapes_pass(backend):
    b64 = backend.with_dtype(np.float64)
    rng = np.random.default_rng(11)
    for name, layer, inputs in extra_cases(b64, rng):
        assert_all_pass(check_layer(layer, inputs, name=name, rng=rng, to_numpy=b64.to_numpy))


def test_check_siamese_on_the_tiny_preset_with_odd_batch():
    be = get_backend("numpy", np.float64)
    rng = np.random.default_rng(12)
    cfg = build_config("tiny", {"image_size": 21, "conv": [[2, 4], [2, 3]], "dense": 3}).network
    model = SiameseNet(cfg, backend=be, rng=rng)
    x1, x2 = rng.random((1, 1, 21, 21)), rng.random((1, 1, 21, 21))
    results = check_siamese(model, x1, x2, np.array([0.0]))
    assert [r.tensor for r in results] == list(model.params())
    assert_all_pass(results)


# --------------------------------------------------------------------------- the checker can fail
class ScaledDense(Dense):
    """dW off by 1%."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] *= 1.01
        return dx


class UntransposedDense(Dense):
    """dx = dy W instead of dy Wᵀ (the shapes agree for a square W)."""

    def backward(self, dy):
        super().backward(dy)
        return dy @ self.params["W"]


class UnmaskedReLU(ReLU):
    def backward(self, dy):
        return dy.copy()


class MeanBiasConv2D(Conv2D):
    """db averaged over the batch instead of summed."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["b"] /= dy.shape[0]
        return dx


def verdicts(results):
    return {r.tensor: r for r in results}


def test_checker_catches_a_one_percent_error_in_dW():
    b = get_backend("numpy", np.float64)
    rng = np.random.default_rng(0)
    r = verdicts(check_layer(ScaledDense(6, 5, backend=b, rng=rng),
                             (b.asarray(rng.standard_normal((4, 6))),), name="ScaledDense"))
    assert not r["dW"].passed
    # max|1.01 a - a| / max(|1.01 a| + |a|) = 0.01 / 2.01
    assert r["dW"].rel_error == pytest.approx(0.01 / 2.01, rel=1e-4), f"{r['dW'].rel_error:.6e}"
    assert r["dx"].passed and r["db"].passed, "the error is not pinned on dW alone"


def test_checker_catches_a_missing_transpose():
    b = get_backend("numpy", np.float64)
    rng = np.random.default_rng(1)
    r = verdicts(check_layer(UntransposedDense(5, 5, backend=b, rng=rng),
                             (b.asarray(rng.standard_normal((3, 5))),)))
    assert not r["dx"].passed and r["dx"].rel_error > 0.1, f"dx rel error {r['dx'].rel_error:.2e}"
    assert r["dW"].passed and r["db"].passed


def test_checker_catches_an_unmasked_relu():
    b = get_backend("numpy", np.float64)
    rng = np.random.default_rng(2)
    (r,) = check_layer(UnmaskedReLU(), (b.asarray(away_from_zero(rng, (4, 5))),))
    assert not r.passed and r.rel_error > 0.1, f"dx rel error {r.rel_error:.2e}"


def test_checker_catches_a_mean_instead_of_a_sum():
    b = get_backend("numpy", np.float64)
    rng = np.random.default_rng(3)
    r = verdicts(check_layer(MeanBiasConv2D(2, 3, 3, backend=b, rng=rng),
                             (b.asarray(rng.standard_normal((4, 2, 5, 5))),)))
    assert not r["db"].passed and r["db"].rel_error == pytest.approx(0.75 / 1.25, rel=1e-6)
    assert r["dx"].passed and r["dW"].passed


class InPlaceReLU(ReLU):
    """Right values, but masks the caller's dy in place (the API forbids touching dy)."""

    def backward(self, dy):
        dy[~(self.cache > 0)] = 0
        return dy


def test_checker_rejects_a_backward_that_modifies_dy():
    b = get_backend("numpy", np.float64)
    rng = np.random.default_rng(5)
    results = check_layer(InPlaceReLU(), (b.asarray(away_from_zero(rng, (4, 5))),))
    assert not all(r.passed for r in results), "a backward that overwrites dy passed the check"


def test_checker_refuses_float32():
    b32 = get_backend("numpy")
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="float64"):
        check_layer(Dense(3, 2, backend=b32, rng=rng), (b32.asarray(np.ones((2, 3))),))
    with pytest.raises(ValueError, match="float64"):  # float32 input to a parameter-free layer
        check_layer(ReLU(), (np.ones((2, 3), dtype=np.float32),))
    model = SiameseNet(PRESETS["tiny"].network, backend=b32, rng=rng)
    x = b32.asarray(np.ones((1, 1, 28, 28)))
    with pytest.raises(ValueError, match="float64"):
        check_siamese(model, x, x, np.ones(1))
    # check_standard switches any backend to float64 itself
    assert_all_pass(check_standard("Dense", b32))


# --------------------------------------------------------------------------- student layers
STUDENT_MODULE = '''
import numpy as np
from tinysiamese.layers import Dense, ReLU


class MyDense(Dense):
    pass


class MyReLU(ReLU):
    def backward(self, dy):
        return dy.copy()


class Whatever:
    pass


class DenseHelper:  # names a layer, but not at its end
    pass
'''


@pytest.fixture
def student_module(tmp_path, monkeypatch):
    name = f"student_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(STUDENT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_load_student_layer(student_module):
    cls, kind = load_student_layer(f"{student_module}:MyDense")
    assert (cls.__name__, kind) == ("MyDense", "Dense")
    assert_all_pass(check_standard(kind, get_backend("numpy"), cls=cls))
    assert {r.layer for r in check_standard(kind, get_backend("numpy"), cls=cls)} == {"MyDense"}
    cls, kind = load_student_layer(f"{student_module}:MyReLU")
    assert kind == "ReLU"
    (r,) = check_standard(kind, get_backend("numpy"), cls=cls)
    assert not r.passed and r.rel_error > 0.1, f"MyReLU.dx rel error {r.rel_error:.2e}"


@pytest.mark.parametrize("spec, message", [
    ("MyDense", "module:Class"),
    (":MyDense", "module:Class"),
    ("{mod}:", "module:Class"),
    ("no_such_module_xyz:MyDense", "cannot import module 'no_such_module_xyz'"),
    ("{mod}:MyConv2D", "has no class 'MyConv2D'"),
    ("{mod}:Whatever", "end its name with one of Conv2D, MaxPool2D, Dense"),
    ("{mod}:DenseHelper", "cannot tell which layer 'DenseHelper' replaces"),
])
def test_load_student_layer_errors(student_module, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_student_layer(spec.format(mod=student_module))


def test_load_student_layer_from_the_current_folder(tmp_path, monkeypatch):
    name = f"cwd_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(STUDENT_MODULE)
    monkeypatch.chdir(tmp_path)
    # what a console script sees: its own bin folder first, neither '' nor the cwd
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    try:
        cls, kind = load_student_layer(f"{name}:MyDense")
    finally:
        sys.modules.pop(name, None)
    assert kind == "Dense"


# --------------------------------------------------------------------------- the course exercises
EXERCISES = DOCS / "exercises.md"
SOLUTIONS = {"ReLU": "MyReLU", "Dense": "MyDense", "MaxPool2D": "MyMaxPool2D",
             "Conv2D": "MyConv2D"}


@pytest.fixture
def exercise_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS / "exercises"))
    import solutions
    import wrong
    yield solutions, wrong
    for name in ("solutions", "wrong"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("kind", list(SOLUTIONS))
def test_exercise_solutions_pass(exercise_modules, backend, kind):
    solutions, _ = exercise_modules
    for seed in (0, 1):
        assert_all_pass(check_standard(kind, backend, seed=seed,
                                       cls=getattr(solutions, SOLUTIONS[kind])))


@pytest.mark.parametrize("kind, bad", [("ReLU", "dx"), ("Dense", "dW"), ("MaxPool2D", "dx"),
                                       ("Conv2D", "dx")])
def test_exercise_wrong_answers_fail(exercise_modules, backend, kind, bad):
    _, wrong = exercise_modules
    for seed in (0, 1):
        results = check_standard(kind, backend, seed=seed, cls=getattr(wrong, SOLUTIONS[kind]))
        for r in results:
            if r.tensor == bad:
                assert not r.passed and r.rel_error > 0.1, f"{r.layer}.{r.tensor} {r.rel_error:.2e}"
            else:
                assert r.passed, f"{r.layer}.{r.tensor} should pass: one mistake per class"


def test_exercise_tied_maxpool_passes_the_check_but_not_the_tie_test(exercise_modules):
    _, wrong = exercise_modules
    assert_all_pass(check_standard("MaxPool2D", get_backend("numpy"), cls=wrong.TiedMaxPool2D))
    x = np.zeros((1, 1, 2, 2))  # one window, a four-way tie
    layer = wrong.TiedMaxPool2D(2)
    layer.forward(x)
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    assert dx.sum() == 4.0, "the tie mistake is no longer what the exercise describes"
    solutions, _ = exercise_modules
    good = solutions.MyMaxPool2D(2)
    good.forward(x)
    dx = good.backward(np.ones((1, 1, 1, 1)))
    assert dx.sum() == 1.0 and np.count_nonzero(dx) == 1 and dx[0, 0, 0, 0] == 1.0


def documented_runs():
    """Every '$ tinysiamese gradcheck --layer module:Class' block of exercises.md, with its
    table rows split on runs of 2+ spaces, and the exit status stated after it."""
    text = EXERCISES.read_text()
    pattern = (r"\$ tinysiamese gradcheck --layer (\w+):(\w+)\n(layer +tensor +shape +rel\. "
               r"error +result)\n((?:\S.*\n)+?)\$ echo \$\?\n(\d)\n")
    runs = re.findall(pattern, text)
    return [(mod, cls, [re.split(r" {2,}", row.strip()) for row in rows.splitlines()],
             int(status)) for mod, cls, _, rows, status in runs]


def test_exercises_document_every_run():
    runs = documented_runs()
    assert {(m, c) for m, c, _, _ in runs} == {
        ("solutions", c) for c in SOLUTIONS.values()} | {
        ("wrong", c) for c in SOLUTIONS.values()} | {("wrong", "TiedMaxPool2D")}


@pytest.mark.parametrize("run", documented_runs(), ids=lambda r: f"{r[0]}:{r[1]}")
def test_exercises_document_real_numbers(exercise_modules, run):
    module, cls_name, rows, status = run
    cls, kind = load_student_layer(f"{module}:{cls_name}")
    results = check_standard(kind, get_backend("numpy"), cls=cls)
    assert len(rows) == len(results)
    for row, r in zip(rows, results):
        layer, tensor, shape, err, verdict = row
        assert (layer, tensor, shape) == (r.layer, r.tensor, str(r.shape))
        assert verdict == ("ok" if r.passed else "FAIL"), f"{layer}.{tensor}"
        if r.passed:  # round-off in the last digits depends on the machine's BLAS
            assert float(err) < 1e-6
        else:
            assert float(err) == pytest.approx(r.rel_error, rel=1e-2), f"{layer}.{tensor}"
    assert status == (0 if all(r.passed for r in results) else 1)


def test_exercises_quote_the_checkers_constructors():
    text = EXERCISES.read_text()
    for kind in SOLUTIONS:
        assert STUDENT_ARGS[kind].split("  #")[0] in text, f"{kind} constructor missing"
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        compile(block, "exercises.md", "exec")  # every code block at least parses


def test_student_args_match_the_standard_cases():
    # the constructor each exercise documents is the one check_standard calls
    calls = []

    class Probe:
        def __init__(self, *args, **kwargs):
            calls.append((args, sorted(kwargs)))
            raise RuntimeError("probe")

    for kind in SOLUTIONS:
        with pytest.raises(RuntimeError, match="probe"):
            gradcheck.make_case(kind, get_backend("numpy", np.float64), np.random.default_rng(0),
                                cls=Probe)
    assert calls == [((), []), ((6, 5), ["backend", "rng"]), ((2,), []),
                     ((3, 4, 3), ["backend", "rng"])]
