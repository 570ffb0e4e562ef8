import os
import zipfile

import numpy as np
import pytest
from conftest import fake_strokes, png_bytes, read_ids, write_fake_split

from tinysiamese import characters, omniglot, pixels
from tinysiamese.archive import DataError


# --------------------------------------------------------------------------------------
# Reading fake trees


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_load_split_layout_and_pixels(fake_omniglot, tmp_path, as_zip):
    root = fake_omniglot("background", {"Beta": 2, "Alpha": 3}, as_zip=as_zip)
    s = omniglot.load_split(root, "background", cache_dir=tmp_path / "cache")
    assert s.images.shape == (5, 20, 105, 105) and s.images.dtype == np.uint8
    assert s.alphabets == ["Alpha", "Beta"]  # sorted, whatever the writing order
    assert s.characters == ["Alpha/character01", "Alpha/character02", "Alpha/character03",
                            "Beta/character01", "Beta/character02"]
    assert s.alphabet_of.tolist() == [0, 0, 0, 1, 1]
    # Beta was written first, so its characters are numbered 1-2 and Alpha's 3-5.
    expected_char = [3, 4, 5, 1, 2]
    for c in range(5):
        for d in (1, 7, 20):
            assert read_ids(s.images[c, d - 1]) == (expected_char[c], d), f"char {c} drawer {d}"
    # Strokes are the 'on' value: black pixels of the PNG become 255, white paper 0.
    assert set(np.unique(s.images)) == {0, pixels.INK}
    np.testing.assert_array_equal(s.images[3, 4] > 0, fake_strokes(1, 5))
    assert s.n_images == 100 and s.n_skipped == 0 and s.dropped == []


def test_zip_and_folder_give_identical_arrays(tmp_path):
    write_fake_split(tmp_path / "z", "evaluation", {"A": 2, "B": 2}, as_zip=True)
    write_fake_split(tmp_path / "f", "evaluation", {"A": 2, "B": 2}, as_zip=False)
    a = omniglot.load_split(tmp_path / "z", "evaluation", use_cache=False)
    b = omniglot.load_split(tmp_path / "f", "evaluation", use_cache=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.characters == b.characters
    assert a.source.endswith("images_evaluation.zip") and b.source.endswith("images_evaluation")


def test_as_float_is_strokes_one(fake_omniglot, tmp_path):
    s = omniglot.load_split(fake_omniglot(), "background", cache_dir=tmp_path / "c")
    x = pixels.as_float(s.images[:2])
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x[0, 0] == 1.0, s.images[0, 0] == pixels.INK)


def test_resized_split_averages_ink(fake_omniglot, tmp_path):
    root = fake_omniglot()
    full = omniglot.load_split(root, "background", cache_dir=tmp_path / "c")
    small = omniglot.load_split(root, "background", size=35, cache_dir=tmp_path / "c")
    assert small.images.shape == (5, 20, 35, 35) and small.images.dtype == np.uint8
    # A 3x3 box filter: each small pixel is the mean of 9 full pixels, so the total ink is kept.
    ink_full = pixels.as_float(full.images).sum(axis=(2, 3)) / 9
    ink_small = pixels.as_float(small.images).sum(axis=(2, 3))
    np.testing.assert_allclose(ink_small, ink_full, atol=35 * 35 / 255)
    assert len(np.unique(small.images)) > 2, "partial coverage should give grey levels"


# --------------------------------------------------------------------------------------
# Errors


def _rewrite_zip(path, drop=(), replace=None):
    """Copy a zip without the members in ``drop`` and with ``replace = {name: bytes}``."""
    replace = replace or {}
    tmp = path.with_suffix(".new")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
    os.replace(tmp, path)


def test_missing_drawer_is_an_error(fake_omniglot):
    root = fake_omniglot("background", {"Alpha": 2})
    gone = "images_background/Alpha/character02/0002_07.png"
    _rewrite_zip(root / "images_background.zip", drop={gone})
    with pytest.raises(DataError, match=r"Alpha/character02 lacks drawer\(s\) 7"):
        omniglot.load_split(root, "background", use_cache=False)


def test_corrupt_png_is_named_or_skipped(fake_omniglot):
    root = fake_omniglot("background", {"Alpha": 2, "Beta": 2})
    bad = "images_background/Beta/character01/0003_05.png"
    _rewrite_zip(root / "images_background.zip", replace={bad: b"\x89PNG\r\n\x1a\n garbage"})
    with pytest.raises(DataError, match="0003_05.png"):
        omniglot.load_split(root, "background", use_cache=False)
    s = omniglot.load_split(root, "background", on_bad_image="skip", use_cache=False)
    assert s.n_skipped == 1
    assert s.dropped == ["Beta/character01"]
    assert s.characters == ["Alpha/character01", "Alpha/character02", "Beta/character02"]
    assert s.alphabet_of.tolist() == [0, 0, 1]
    assert read_ids(s.images[2, 0]) == (4, 1)


def test_wrong_image_size_is_a_bad_image(fake_omniglot):
    root = fake_omniglot("background", {"Alpha": 2})
    bad = "images_background/Alpha/character01/0001_01.png"
    _rewrite_zip(root / "images_background.zip", replace={bad: png_bytes(np.zeros((50, 50), bool))})
    with pytest.raises(DataError, match="0001_01.png.*105x105"):
        omniglot.load_split(root, "background", use_cache=False)


def test_empty_alphabet_is_an_error(fake_omniglot):
    root = fake_omniglot("background", {"Alpha": 2}, as_zip=False)
    (root / "images_background" / "Empty").mkdir()
    with pytest.raises(DataError, match="alphabet Empty has no characters"):
        omniglot.load_split(root, "background", use_cache=False)


def test_bad_file_name_and_drawer_number(fake_omniglot):
    root = fake_omniglot("background", {"Alpha": 1}, as_zip=False)
    folder = root / "images_background" / "Alpha" / "character01"
    os.rename(folder / "0001_03.png", folder / "0001_21.png")
    with pytest.raises(DataError, match="drawer 21"):
        omniglot.load_split(root, "background", use_cache=False)
    os.rename(folder / "0001_21.png", folder / "scan.png")
    with pytest.raises(DataError, match="unexpected file name"):
        omniglot.load_split(root, "background", use_cache=False)


def test_not_a_zip(tmp_path):
    (tmp_path / "images_background.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        omniglot.load_split(tmp_path, "background", use_cache=False)


def test_bad_arguments(fake_omniglot):
    root = fake_omniglot()
    with pytest.raises(ValueError, match="on_bad_image"):
        omniglot.load_split(root, "background", on_bad_image="ignore")
    with pytest.raises(ValueError, match="image size"):
        omniglot.load_split(root, "background", size=0)
    with pytest.raises(ValueError, match="bad split name"):
        omniglot.load_split(root, "../etc")
    with pytest.raises(FileNotFoundError, match="images_evaluation"):
        omniglot.load_split(root, "evaluation")


# --------------------------------------------------------------------------------------
# Finding the data


def test_find_data_root_order_and_errors(fake_omniglot, tmp_path, monkeypatch):
    root = fake_omniglot()
    other = fake_omniglot(root=tmp_path / "other")
    assert omniglot.find_data_root(root) == root
    monkeypatch.setenv("TINYSIAMESE_DATA", str(other))
    assert omniglot.find_data_root() == other           # the environment variable...
    assert omniglot.find_data_root(root) == root        # ...loses to an explicit path
    with pytest.raises(FileNotFoundError, match="does not exist"):
        omniglot.find_data_root(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="does not hold Omniglot"):
        omniglot.find_data_root(tmp_path / "empty")
    monkeypatch.setenv("TINYSIAMESE_DATA", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match=r"\$TINYSIAMESE_DATA"):
        omniglot.find_data_root()


def test_default_root_is_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert omniglot.default_data_root() == tmp_path / ".cache" / "tinysiamese" / "omniglot"
    with pytest.raises(FileNotFoundError, match="tinysiamese data download"):
        omniglot.find_data_root()


# --------------------------------------------------------------------------------------
# The cache


def test_second_load_comes_from_the_cache(fake_omniglot, tmp_path, monkeypatch):
    root, cache = fake_omniglot(), tmp_path / "cache"
    first = omniglot.load_split(root, "background", cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz", files

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(omniglot, "_decode_split", no_decoding)
    second = omniglot.load_split(root, "background", cache_dir=cache)
    np.testing.assert_array_equal(first.images, second.images)
    assert second.characters == first.characters and second.alphabets == first.alphabets
    np.testing.assert_array_equal(second.alphabet_of, first.alphabet_of)


def test_cache_follows_the_archive_and_survives_damage(fake_omniglot, tmp_path):
    root, cache = fake_omniglot("background", {"Alpha": 2}), tmp_path / "cache"
    omniglot.load_split(root, "background", cache_dir=cache)
    # New contents (a third character) must not be answered from the old cache.
    write_fake_split(root, "background", {"Alpha": 3})
    assert len(omniglot.load_split(root, "background", cache_dir=cache).characters) == 3
    # Another size is another cache file; a damaged cache file is rebuilt, not trusted.
    omniglot.load_split(root, "background", size=21, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 3
    newest = max(cache.glob("*-105px-*.npz"), key=os.path.getmtime)
    newest.write_bytes(b"garbage")
    assert len(omniglot.load_split(root, "background", cache_dir=cache).characters) == 3
    assert not list(cache.glob("*.tmp")), "no temporary file may be left behind"


def test_no_cache_writes_nothing(fake_omniglot, tmp_path):
    root = fake_omniglot()
    omniglot.load_split(root, "background", cache_dir=tmp_path / "cache", use_cache=False)
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------------------
# The real archives


def test_real_counts_from_listing(omniglot_dir):
    for split, expected in omniglot.EXPECTED_COUNTS.items():
        s = omniglot.split_summary(omniglot_dir, split)
        assert (s.n_alphabets, s.n_characters, s.n_images) == expected, split


def test_real_splits_decode_completely(real_background, real_evaluation):
    assert real_background.images.shape == (964, 20, 105, 105)
    assert len(real_background.alphabets) == 30 and real_background.n_images == 19_280
    assert real_evaluation.images.shape == (659, 20, 105, 105)
    assert len(real_evaluation.alphabets) == 20 and real_evaluation.n_images == 13_180
    assert set(characters.VAL_ALPHABETS + characters.TEST_ALPHABETS) == set(real_evaluation.alphabets)
    # Strokes are 255 and rare: ink covers a few percent of an Omniglot image, never most.
    ink = (real_evaluation.images[:50] > 0).mean()
    assert 0.02 < ink < 0.2, f"ink fraction {ink:.3f}: polarity inverted?"
    assert set(np.unique(real_evaluation.images[:50])) == {0, 255}


def test_real_cached_load_decodes_nothing(omniglot_dir, session_cache, real_evaluation,
                                          monkeypatch):
    # The cache is what makes a second load take well under a second (timed in
    # scripts/, not here): with it, not one PNG may be decoded again.
    def no_decoding(data):
        raise AssertionError("a cached split decoded a PNG again")

    monkeypatch.setattr(omniglot, "decode_png", no_decoding)
    again = omniglot.load_split(omniglot_dir, "evaluation", cache_dir=session_cache)
    np.testing.assert_array_equal(again.images[::50], real_evaluation.images[::50])
