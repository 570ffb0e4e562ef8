import numpy as np
import pytest

from tinysiamese import distort


def _images(n, h, w, seed=0):
    return (np.random.default_rng(seed).random((n, h, w)) < 0.2).astype(np.float32)


@pytest.mark.parametrize("shape", [(3, 105, 105), (2, 35, 35), (4, 17, 23)])
def test_identity_reproduces_images_exactly(shape):
    x = _images(*shape)
    out = distort.apply_affine(x, distort.identity_params(shape[0]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x)
    # ... and so does a drawn distortion with every component left out (p = 0).
    m = distort.random_affine_params(np.random.default_rng(1), shape[0], size=shape[1], p=0.0)
    np.testing.assert_array_equal(distort.apply_affine(x, m), x)


@pytest.mark.parametrize("dx, dy", [(2, 0), (0, -2), (-1, 2), (5, 3)])
@pytest.mark.parametrize("h, w", [(105, 105), (21, 19)])
def test_integer_translation_moves_strokes_exactly(dx, dy, h, w):
    x = _images(2, h, w, seed=abs(dx * 10 + dy))
    m = np.repeat(distort.affine_matrix(shift=(dx, dy), size=w)[None], 2, axis=0)
    out = distort.apply_affine(x, m)
    expected = np.zeros_like(x)
    # out[y, x] = in[y - dy, x - dx]; what comes in from outside the image is blank paper.
    expected[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    np.testing.assert_array_equal(out, expected)


def test_rotation_direction_and_scale_about_the_centre():
    x = np.zeros((1, 5, 5), np.float32)
    x[0, 0, 4] = 1.0  # top right
    out = distort.apply_affine(x, distort.affine_matrix(theta=90, size=5)[None])
    assert out[0, 4, 4] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)  # -> bottom right
    y = np.zeros((1, 9, 9), np.float32)
    y[0, 3, 3] = 1.0  # one pixel up-left of the centre (4, 4)
    out = distort.apply_affine(y, distort.affine_matrix(scale=(2.0, 2.0), size=9)[None])
    assert out[0, 2, 2] == pytest.approx(1.0)  # twice as far from the centre
    assert out[0, 4, 4] == 0.0


def test_shear_moves_rows_sideways():
    x = np.zeros((1, 11, 11), np.float32)
    x[0, :, 5] = 1.0  # a vertical line through the centre
    out = distort.apply_affine(x, distort.affine_matrix(shear=(0.2, 0.0), size=11)[None])
    # x_out = x_in + 0.2 * (y - 5): the row 5 pixels below the centre moves 1 pixel right.
    assert out[0, 10, 6] == pytest.approx(1.0) and out[0, 0, 4] == pytest.approx(1.0)
    assert out[0, 5, 5] == pytest.approx(1.0)


def test_drawn_parameters_respect_the_paper_ranges():
    rng = np.random.default_rng(0)
    p = distort.draw_distortions(rng, 20_000, size=105)
    identity = {"theta_deg": 0, "shear_x": 0, "shear_y": 0, "scale_x": 1, "scale_y": 1,
                "shift_x": 0, "shift_y": 0}
    ranges = {"theta_deg": (-10, 10), "shear_x": (-0.3, 0.3), "shear_y": (-0.3, 0.3),
              "scale_x": (0.8, 1.2), "scale_y": (0.8, 1.2), "shift_x": (-2, 2), "shift_y": (-2, 2)}
    for name, (low, high) in ranges.items():
        assert low <= p[name].min() and p[name].max() <= high, name
        on = p[name] != identity[name]
        assert 0.48 < on.mean() < 0.52, f"{name} applied {on.mean():.3f} of the time, expected 0.5"
        margin = 0.05 * (high - low)  # the draws reach both ends of the range
        assert p[name][on].min() < low + margin and p[name][on].max() > high - margin
    # The components are independent: 'rotation on' says nothing about 'shift on'.
    both = ((p["theta_deg"] != 0) & (p["shift_x"] != 0)).mean()
    assert 0.23 < both < 0.27
    # Translations scale with the image: +-2 px at 105 is +-2/3 px at 35.
    small = distort.draw_distortions(rng, 5_000, size=35)
    assert np.abs(small["shift_x"]).max() <= 2 / 3 and np.abs(small["shift_x"]).max() > 0.6


def test_p_and_strength_set_how_often_and_how_far():
    identity = {"theta_deg": 0, "shear_x": 0, "shear_y": 0, "scale_x": 1, "scale_y": 1,
                "shift_x": 0, "shift_y": 0}
    # strength 1.5 stretches each range about its identity value by half again
    ranges = {"theta_deg": (-15, 15), "shear_x": (-0.45, 0.45), "shear_y": (-0.45, 0.45),
              "scale_x": (0.7, 1.3), "scale_y": (0.7, 1.3), "shift_x": (-3, 3), "shift_y": (-3, 3)}
    always = distort.draw_distortions(np.random.default_rng(1), 20_000, size=105, p=1.0,
                                      strength=1.5)
    for name, (low, high) in ranges.items():
        assert (always[name] != identity[name]).all(), f"{name} left out with p = 1"
        margin = 0.05 * (high - low)
        assert low <= always[name].min() < low + margin, name
        assert high - margin < always[name].max() <= high, name
    never = distort.draw_distortions(np.random.default_rng(1), 100, size=105, p=0.0, strength=2)
    for name, value in identity.items():
        assert (never[name] == value).all(), f"{name} applied with p = 0"
    # the defaults are the paper's, draw for draw
    paper = distort.draw_distortions(np.random.default_rng(2), 50, size=105)
    same = distort.draw_distortions(np.random.default_rng(2), 50, size=105, p=0.5, strength=1.0)
    assert all(np.array_equal(paper[k], same[k]) for k in paper)


@pytest.mark.parametrize("p, strength, message", [
    (1.5, 1.0, r"distort p .* must lie in \[0, 1\], not 1.5"),
    (True, 1.0, r"distort p .* not True"),
    (0.5, 0.0, r"distort strength .* strictly between 0 and 5, not 0.0"),
    (0.5, 5, r"distort strength .* not 5"),  # scales would reach 0
    (0.5, "x", r"distort strength .* not 'x'"),
])
def test_bad_distortion_settings_say_what_is_wrong(p, strength, message):
    with pytest.raises(ValueError, match=message):
        distort.draw_distortions(np.random.default_rng(0), 4, p=p, strength=strength)


def test_random_matrices_are_the_drawn_parameters():
    m = distort.random_affine_params(np.random.default_rng(5), 4, size=105)
    p = distort.draw_distortions(np.random.default_rng(5), 4, size=105)
    for i in range(4):
        one = distort.affine_matrix(p["theta_deg"][i], (p["shear_x"][i], p["shear_y"][i]),
                                    (p["scale_x"][i], p["scale_y"][i]),
                                    (p["shift_x"][i], p["shift_y"][i]))
        np.testing.assert_allclose(m[i], one, atol=1e-12)


def test_matrix_inverts_the_forward_map():
    m = distort.affine_matrix(theta=7, shear=(0.1, -0.2), scale=(0.9, 1.1), shift=(1.5, -0.5),
                              size=105)
    c = 52.0
    theta = np.deg2rad(7)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    a = rot @ np.array([[1, 0.1], [-0.2, 1]]) @ np.diag([0.9, 1.1])
    point_in = np.array([30.0, 70.0])
    point_out = a @ (point_in - c) + c + np.array([1.5, -0.5])
    np.testing.assert_allclose(m @ np.append(point_out, 1.0), point_in, atol=1e-9)


def test_batch_of_256_keeps_shape_and_range():
    x = _images(256, 105, 105)
    m = distort.random_affine_params(np.random.default_rng(0), 256)
    out = distort.apply_affine(x, m)
    assert out.shape == x.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one \\(2, 3\\) matrix per image"):
        distort.apply_affine(_images(3, 8, 8), distort.identity_params(2))
