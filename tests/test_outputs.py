"""outputs.py: clusters.csv, clusters.png and X.npy + X.txt, written whole or not at all."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from tinysiamese import outputs


def test_clusters_csv(tmp_path):
    path = outputs.write_clusters_csv(tmp_path / "clusters.csv", ["a.png", "b,c.png", "d.png"],
                                      np.array([0, 0, 1]), np.array([0.9, 0.85, np.nan]))
    rows = list(csv.reader(open(path)))
    assert rows == [["file", "cluster", "mean_p_same"], ["a.png", "0", "0.9000"],
                    ["b,c.png", "0", "0.8500"], ["d.png", "1", ""]]


def test_clusters_png_rows_largest_first(tmp_path):
    ink = np.zeros((7, 10, 10), dtype=np.float32)
    ink[:, 3:7, 3:7] = 1.0
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    path = outputs.write_clusters_png(tmp_path / "clusters.png", ink, labels, title="test")
    with Image.open(path) as im:
        picture = np.asarray(im.convert("L"))
    rows = [picture[y:y + outputs.THUMB, outputs.LABEL_WIDTH:] for y in
            (28 + c * (outputs.THUMB + 4) for c in range(3))]
    dark = [int((r[outputs.THUMB // 2] < 128).sum()) for r in rows]  # ink across each row's middle
    assert dark[0] > dark[1] > dark[2] > 0, f"thumbnails per row {dark}: 4, 2, 1 images"


def test_many_clusters_are_counted_not_drawn():
    labels = np.arange(outputs.MAX_ROWS + 5)
    picture = outputs.clusters_image(np.zeros((len(labels), 8, 8)), labels)
    assert picture.height < (outputs.MAX_ROWS + 2) * (outputs.THUMB + 4)


def test_embeddings_npy_and_txt(tmp_path):
    features = np.random.default_rng(0).random((3, 5))
    npy, txt = outputs.write_embeddings(tmp_path / "out" / "X.npy", features, ["a.png", "b/c.png", "d.png"])
    loaded = np.load(npy)
    assert loaded.dtype == np.float32 and loaded.shape == (3, 5)
    np.testing.assert_allclose(loaded, features, rtol=1e-6)
    assert txt.name == "X.txt" and txt.read_text().splitlines() == ["a.png", "b/c.png", "d.png"]


@pytest.mark.parametrize("name, files, message", [
    ("X.csv", ["a"], "ending in .npy"),
    ("X.npy", ["a\nb"], "line break"),
    ("X.npy", ["a", "b"], "1 rows of features for 2 files"),
])
def test_embeddings_refusals_write_nothing(tmp_path, name, files, message):
    with pytest.raises(ValueError, match=message):
        outputs.write_embeddings(tmp_path / name, np.zeros((1, 2)), files)
    assert list(tmp_path.iterdir()) == [], "nothing half-written"


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "clusters.csv"
    path.write_text("old")

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "save", broken)
    with pytest.raises(OSError):
        outputs.write_embeddings(tmp_path / "X.npy", np.zeros((1, 2)), ["a"])
    assert path.read_text() == "old" and not (tmp_path / "X.npy").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["clusters.csv"], "no temporary file left"
