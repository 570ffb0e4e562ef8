import gzip
import struct

import numpy as np
import pytest

from tinysiamese import mnist
from tinysiamese.archive import DataError


def _idx(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, images, labels, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    files = {"t10k-images-idx3-ubyte": _idx(images, 2051),
             "t10k-labels-idx1-ubyte": _idx(labels, 2049)}
    for name, data in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def _digits(per_class=3, size=28):
    """Image i has pixel [0, 0] = i + 1 (its identity) and its label in pixel [0, 1]."""
    labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
    images = np.zeros((len(labels), size, size), np.uint8)
    images[:, 0, 0] = np.arange(1, len(labels) + 1)
    images[:, 0, 1] = labels * 20
    images[:, 10:18, 12:16] = 255
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images, labels = _digits()
    _write_mnist(tmp_path, images, labels, gz=gz)
    got_images, got_labels = mnist.load_mnist(tmp_path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8


def test_read_idx_errors(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(_idx(np.zeros((2, 3, 3)), 2051))
    with pytest.raises(DataError, match="magic number 2051, expected 2049"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)
    path.write_bytes(_idx(np.zeros((2, 3, 3)), 2051)[:-1])
    with pytest.raises(DataError, match="17 bytes of data, but its header \\(2, 3, 3\\) says 18"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="damaged gzip"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    with pytest.raises(FileNotFoundError):
        mnist.read_idx(tmp_path / "nowhere", mnist.IMAGES_MAGIC)


def test_load_mnist_checks_consistency(tmp_path):
    images, labels = _digits()
    _write_mnist(tmp_path / "a", images, labels[:-1])
    with pytest.raises(DataError, match="30 MNIST images but 29 labels"):
        mnist.load_mnist(tmp_path / "a")
    bad = labels.copy()
    bad[0] = 11
    _write_mnist(tmp_path / "b", images, bad)
    with pytest.raises(DataError, match="digits 0-9"):
        mnist.load_mnist(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        mnist.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        mnist.load_mnist(tmp_path / "nowhere")


def test_mnist_trials_structure():
    images, labels = _digits(per_class=3)
    trials = mnist.mnist_trials(images, labels, n_trials=50, seed=2, size=28)
    assert trials.support.shape == (50, 10, 28, 28) and trials.test.shape == (50, 28, 28)
    assert trials.test.dtype == np.float32
    assert 0.0 <= trials.support.min() and trials.support.max() == 1.0
    ident = lambda x: np.rint(x[..., 0, 0] * 255).astype(int) - 1  # noqa: E731
    support_ids, test_ids = ident(trials.support), ident(trials.test)
    for t in range(50):
        # One support per digit, in digit order:
        np.testing.assert_array_equal(labels[support_ids[t]], np.arange(10))
        assert labels[test_ids[t]] == trials.answer[t]
        assert test_ids[t] != support_ids[t, trials.answer[t]], "test image = its own support"
    assert np.bincount(trials.answer, minlength=10).tolist() == [5] * 10
    assert trials.alphabet == ["mnist"] * 50
    again = mnist.mnist_trials(images, labels, n_trials=50, seed=2, size=28)
    np.testing.assert_array_equal(again.support, trials.support)


def test_mnist_trials_resize_and_errors():
    images, labels = _digits(per_class=2)
    trials = mnist.mnist_trials(images, labels, n_trials=10, size=105)
    assert trials.support.shape == (10, 10, 105, 105)
    assert trials.support.max() <= 1.0 and trials.support[..., 50, 50].max() == pytest.approx(1.0)
    with pytest.raises(DataError, match=r"digit\(s\) \[3\]"):
        keep = ~((labels == 3) & (np.arange(len(labels)) % 2 == 0))
        mnist.mnist_trials(images[keep], labels[keep], n_trials=5)


def test_real_mnist(mnist_dir):
    images, labels = mnist.load_mnist(mnist_dir)
    assert images.shape == (10_000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    trials = mnist.mnist_trials(images, labels, n_trials=40, seed=0, size=35)
    assert trials.support.shape == (40, 10, 35, 35)
    # White digits on black already: a corner is background, and ink is a minority.
    assert trials.support[..., 0, 0].max() == 0.0 and 0.05 < trials.support.mean() < 0.35
