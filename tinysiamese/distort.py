"""The paper's affine distortions, in pure NumPy, for a whole batch at once.

Koch et al. (2015, "Affine distortions"): each training image may be distorted by an affine map
with parameters T = (theta, rho_x, rho_y, s_x, s_y, t_x, t_y):

    rotation     theta      in [-10, 10] degrees
    shear        rho_x, rho_y in [-0.3, 0.3]
    scale        s_x, s_y   in [0.8, 1.2]
    translation  t_x, t_y   in [-2, 2] pixels (at 105x105; scaled with the image size)

and each of these seven components is included independently with probability 0.5
(left out, it is the identity: 0 rotation, 0 shear, scale 1, no shift).

An image is distorted by *inverse* mapping: for every output pixel we ask which input
point lands there, and sample the input there (bilinearly, with zeros outside - blank
paper, since ink is 1). So the matrices handed around here are the inverse maps
``(x_in, y_in) = M @ (x_out, y_out, 1)``, about the image centre, with x the column and
y the row.
"""
from __future__ import annotations

import numpy as np

ROTATION_DEG = 10.0
SHEAR = 0.3
SCALE = (0.8, 1.2)
TRANSLATION = 2.0      # pixels at REFERENCE_SIZE
REFERENCE_SIZE = 105   # the paper's image side


def _inverse_matrices(theta_deg, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y, size):
    """Vectors (n,) of parameters -> (n, 2, 3) float64 inverse maps about the centre.

    The forward map is  out = A (in - c) + c + t  with  A = R(theta) Sh(rho) S(s);
    its inverse is      in  = A^-1 out + (c - A^-1 (c + t)).
    """
    theta = np.deg2rad(np.asarray(theta_deg, dtype=np.float64))
    cos, sin = np.cos(theta), np.sin(theta)
    # A = [[cos, -sin], [sin, cos]] @ [[1, rho_x], [rho_y, 1]] @ diag(s_x, s_y)
    a = (cos - sin * shear_y) * scale_x
    b = (cos * shear_x - sin) * scale_y
    c = (sin + cos * shear_y) * scale_x
    d = (sin * shear_x + cos) * scale_y
    det = a * d - b * c
    inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)  # (n, 2, 2) adjugate
    inv /= det[..., None, None]
    centre = (size - 1) / 2.0  # pixel centres sit at 0 .. size-1
    moved = np.stack([centre + shift_x, centre + shift_y], -1)  # (n, 2): c + t
    offset = centre - np.einsum("nij,nj->ni", inv, moved)       # (n, 2): c - A^-1 (c + t)
    return np.concatenate([inv, offset[..., None]], axis=-1)    # (n, 2, 3)


def affine_matrix(theta: float = 0.0, shear=(0.0, 0.0), scale=(1.0, 1.0), shift=(0.0, 0.0),
                  size: int = REFERENCE_SIZE) -> np.ndarray:
    """One distortion, given explicitly -> its (2, 3) inverse map for ``size`` x ``size`` images.

    theta in degrees (positive turns clockwise on screen, where y points down);
    shear (rho_x, rho_y); scale (s_x, s_y); shift (t_x, t_y) in pixels of
    this image (a positive t_x moves the ink right, a positive t_y moves it down).
    """
    params = [np.array([v], dtype=np.float64) for v in (theta, *shear, *scale, *shift)]
    return _inverse_matrices(*params, size)[0]


# strength stretches every range about its identity value; the scale range 1 +- 0.2 *
# strength must stay above 0 (a zero scale has no inverse), so strength stays below 5.
MAX_STRENGTH = 5.0


def check_distortion(p, strength) -> None:
    """ValueError unless 0 <= p <= 1 and 0 < strength < MAX_STRENGTH (5: scales stay > 0)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"distort p (the chance of each component) must lie in [0, 1], not {p!r}")
    if (isinstance(strength, bool) or not isinstance(strength, (int, float))
            or not 0.0 < strength < MAX_STRENGTH):
        raise ValueError(f"distort strength (a factor on the paper's ranges) must lie strictly "
                         f"between 0 and {MAX_STRENGTH:g}, not {strength!r}")


def draw_distortions(rng: np.random.Generator, n: int, size: int = REFERENCE_SIZE,
                     p: float = 0.5, strength: float = 1.0) -> dict[str, np.ndarray]:
    """Draw the seven parameters of ``n`` random distortions -> {name: (n,) float64}.

    Each component is included with probability ``p`` (else it is the identity value);
    the translation range is scaled by ``size / 105`` so a distortion means the same at
    any resolution. ``strength`` multiplies every range about its identity value (1: the
    paper's; 1.5: rotations to 15 degrees, scales 0.7-1.3, ...).
    """
    check_distortion(p, strength)

    def component(low, high, identity):
        on = rng.random(n) < p
        low, high = identity + strength * (low - identity), identity + strength * (high - identity)
        return np.where(on, rng.uniform(low, high, n), identity)

    max_shift = TRANSLATION * size / REFERENCE_SIZE
    return {
        "theta_deg": component(-ROTATION_DEG, ROTATION_DEG, 0.0),
        "shear_x": component(-SHEAR, SHEAR, 0.0),
        "shear_y": component(-SHEAR, SHEAR, 0.0),
        "scale_x": component(*SCALE, 1.0),
        "scale_y": component(*SCALE, 1.0),
        "shift_x": component(-max_shift, max_shift, 0.0),
        "shift_y": component(-max_shift, max_shift, 0.0),
    }


def random_affine_params(rng: np.random.Generator, n: int, size: int = REFERENCE_SIZE,
                         p: float = 0.5, strength: float = 1.0) -> np.ndarray:
    """``n`` of the paper's random distortions -> (n, 2, 3) float64 inverse maps."""
    return _inverse_matrices(**draw_distortions(rng, n, size, p, strength), size=size)


def identity_params(n: int) -> np.ndarray:
    """(n, 2, 3) inverse maps that leave images unchanged."""
    eye = np.zeros((n, 2, 3))
    eye[:, 0, 0] = eye[:, 1, 1] = 1.0
    return eye


def apply_affine(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Distort a batch: images (n, H, W), matrices (n, 2, 3) inverse maps -> (n, H, W) float32.

    Output pixel (x, y) takes the input at M @ (x, y, 1), bilinearly interpolated; points
    outside the image read 0. An identity matrix, or a shift by whole pixels, reproduces
    the pixels exactly (the interpolation weights are then exactly 0 and 1).
    """
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    if matrices.shape != (n, 2, 3):
        raise ValueError(f"need one (2, 3) matrix per image: got {matrices.shape} for {n} images")
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w, np.float32)])  # (3, H*W)
    out = np.empty_like(images)
    # A few images at a time: the dozen temporaries per pixel then stay in the CPU cache,
    # which makes a batch of 256 images at 105x105 about twice as fast as all at once.
    step = max(1, 2**18 // (h * w))
    for i in range(0, n, step):
        out[i:i + step] = _warp(images[i:i + step], matrices[i:i + step].astype(np.float32), grid)
    return out


def _warp(images: np.ndarray, matrices: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """apply_affine on a few images; grid (3, H*W) holds every output pixel's (x, y, 1)."""
    n, h, w = images.shape
    # Zero border: 1 pixel before and 2 after, so both neighbours of any clipped point exist.
    padded = np.zeros((n, h + 3, w + 3), dtype=np.float32)
    padded[:, 1:h + 1, 1:w + 1] = images
    src = matrices @ grid  # (n, 2, H*W): where each output pixel reads the input
    # A point beyond -1 or past the last pixel reads only zeros; clipping it to that edge
    # keeps every neighbour inside the padded array without changing its value.
    x = np.clip(src[:, 0], -1, w)
    y = np.clip(src[:, 1], -1, h)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    stride = w + 3
    top_left = (y0.astype(np.intp) + 1) * stride + (x0.astype(np.intp) + 1)  # (n, H*W), per image
    top_left += (np.arange(n) * padded[0].size)[:, None]                      # ... in the batch
    flat = padded.ravel()
    top = (1 - fx) * flat[top_left] + fx * flat[top_left + 1]
    bottom = (1 - fx) * flat[top_left + stride] + fx * flat[top_left + stride + 1]
    return ((1 - fy) * top + fy * bottom).reshape(n, h, w)
