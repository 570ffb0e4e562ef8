"""folders.py: reading a user's image folders, their layouts, and every refusal."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinysiamese import folders
from tinysiamese.folders import FolderDataError, FolderError
from tinysiamese.archive import DataError


def write_png(path: Path, seed: int = 0, size: int = 20, mode: str = "L") -> Path:
    """A dark-on-white drawing: a bar whose place depends on ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.full((size, size), 255, dtype=np.uint8)
    top = 2 + seed % (size - 8)
    grey[top:top + 5, 3:size - 3] = 0
    Image.fromarray(grey).convert(mode).save(path)
    return path


def make_tree(root: Path, names, size: int = 20) -> Path:
    """Write PNGs at the relative paths ``names`` (any other suffix: a text file)."""
    for i, name in enumerate(names):
        path = root / name
        if path.suffix == ".png":
            write_png(path, seed=i, size=size)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not an image")
    return root


def test_list_images_sorted_skips_non_images_and_hidden(tmp_path):
    make_tree(tmp_path, ["b/2.png", "a/1.png", "a/notes.txt", ".hidden.png", "a/10.png",
                         ".git/x.png"])
    listing = folders.list_images(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in listing.files] == \
        ["a/1.png", "a/10.png", "b/2.png"], "image files, sorted by relative path"
    assert listing.skipped == 2, "notes.txt and .hidden.png are skipped and counted"
    assert "skipped 2 file(s)" in listing.note()


def test_links_leading_out_are_not_followed(tmp_path):
    inside, outside = tmp_path / "in", tmp_path / "out"
    make_tree(inside, ["a/1.png", "a/2.png"])
    make_tree(outside, ["x.png", "sub/y.png"])
    os.symlink(outside / "x.png", inside / "a" / "3.png")       # a file link leading out
    os.symlink(outside / "sub", inside / "b")                   # a folder link leading out
    os.symlink(inside / "a" / "1.png", inside / "a" / "4.png")  # a link inside: read
    os.symlink(inside / "a", inside / "c")                      # a folder link inside: not walked
    listing = folders.list_images(inside)
    assert [f.name for f in listing.files] == ["1.png", "2.png", "4.png"]
    assert listing.links_out == 2, f"links out: {listing.links_out}"
    assert "did not follow 2 symbolic link(s)" in listing.note()


def test_read_folder_reads_as_verify_does(tmp_path):
    from tinysiamese.images import load_user_image
    make_tree(tmp_path, ["a.png", "deep/er/b.png"], size=30)
    listing, images = folders.read_folder(tmp_path, 12)
    assert images.shape == (2, 12, 12) and images.dtype == np.float32
    for f, x in zip(listing.files, images):
        np.testing.assert_array_equal(x, load_user_image(f, 12))
    assert images.max() > 0.5 and images[:, :, 0].max() < 0.1, "strokes bright on a dark border"


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "holds no images"),
    (lambda p: make_tree(p, ["a.txt", "b.csv"]), "holds no images (skipped 2 file(s)"),
])
def test_folder_without_images_is_a_usage_error(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(FolderError, match=re.escape(message)):
        folders.read_folder(tmp_path, 12)


def test_missing_folder_file_and_single_image(tmp_path):
    with pytest.raises(FolderError, match="does not exist"):
        folders.list_images(tmp_path / "nope")
    image = write_png(tmp_path / "one.png")
    with pytest.raises(FolderError, match="is not a folder"):
        folders.list_images(image)
    with pytest.raises(FolderError, match="holds 1 image.*at least 2"):
        folders.read_folder(tmp_path, 12, min_images=2)
    assert issubclass(FolderError, ValueError), "the command line maps it to exit 2"


def test_damaged_image_is_named_as_damaged_data(tmp_path):
    make_tree(tmp_path, ["a.png", "b.png"])
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(FolderDataError, match="c.png is not a readable image"):
        folders.read_folder(tmp_path, 12)
    assert issubclass(FolderDataError, DataError), "the command line maps it to exit 1"


def test_oversized_image_is_refused_as_verify_refuses_it(tmp_path, monkeypatch):
    make_tree(tmp_path, ["a.png", "b.png"], size=40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40 x 40 > 2 x 100: a "bomb"
    with pytest.raises(FolderDataError, match="a.png is too large to read safely"):
        folders.read_folder(tmp_path, 12)


def test_support_one_image_per_class(tmp_path):
    make_tree(tmp_path, ["dog.png", "cat.png", "readme.md"])
    s = folders.read_support(tmp_path, 12)
    assert s.classes == ["cat", "dog"]
    assert [s.classes[i] for i in s.labels] == [f.stem for f in s.files]
    assert s.images.shape == (2, 12, 12) and s.listing.skipped == 1


def test_support_one_subfolder_per_class(tmp_path):
    make_tree(tmp_path, ["dog/1.png", "dog/2.png", "cat/x.png"])
    s = folders.read_support(tmp_path, 12)
    assert s.classes == ["cat", "dog"]
    assert s.labels.tolist() == [0, 1, 1], "cat/x.png, dog/1.png, dog/2.png"


@pytest.mark.parametrize("names, message", [
    (["cat.png"], "holds one class .'cat'."),
    (["cat/1.png", "cat/2.png"], "holds one class"),
    (["cat.png", "cat.jpg.png", "dog.png", "dog/1.png"], "mixes layouts"),
    (["a/b/c.png", "d/e/f.png"], "mixes layouts"),
])
def test_support_refusals(tmp_path, names, message):
    make_tree(tmp_path, names)
    with pytest.raises(FolderError, match=message):
        folders.read_support(tmp_path, 12)


def test_support_two_classes_of_one_name(tmp_path):
    make_tree(tmp_path, ["cat.png", "dog.png"])
    Image.open(tmp_path / "cat.png").convert("RGB").save(tmp_path / "cat.jpg")
    with pytest.raises(FolderError, match="two classes of one name: cat.jpg, cat.png"):
        folders.read_support(tmp_path, 12)
    make_tree(tmp_path / "s2", ["Cat/1.png", "cat/1.png"])
    with pytest.raises(FolderError, match="two classes of one name, 'Cat' and 'cat'"):
        folders.read_support(tmp_path / "s2", 12)


def test_read_classes_both_layouts(tmp_path):
    make_tree(tmp_path / "flat", ["b/1.png", "b/2.png", "a/1.png", "a/2.png", "a/3.png"])
    flat = folders.read_classes(tmp_path / "flat", 12)
    assert flat.classes == ["a", "b"] and flat.groups == [""]
    assert flat.labels.tolist() == [0, 0, 0, 1, 1] and flat.group_of.tolist() == [0, 0]
    make_tree(tmp_path / "grouped", ["g2/x/1.png", "g2/x/2.png", "g1/x/1.png", "g1/x/2.png",
                                     "g1/y/1.png", "g1/y/2.png"])
    grouped = folders.read_classes(tmp_path / "grouped", 12)
    assert grouped.classes == ["g1/x", "g1/y", "g2/x"], "a class name within two groups is two classes"
    assert grouped.groups == ["g1", "g2"] and grouped.group_of.tolist() == [0, 0, 1]


@pytest.mark.parametrize("names, message", [
    (["a/1.png", "a/2.png", "b/1.png"], "class 'b' of .* has 1 image.*at least 2"),
    (["a/1.png", "a/2.png"], "holds one class"),
    (["a/1.png", "a/2.png", "g/b/1.png", "g/b/2.png"], "mixes layouts"),
    (["x.png", "a/1.png", "a/2.png"], "mixes layouts"),
])
def test_read_classes_refusals(tmp_path, names, message):
    make_tree(tmp_path, names)
    with pytest.raises(FolderError, match=message):
        folders.read_classes(tmp_path, 12)
