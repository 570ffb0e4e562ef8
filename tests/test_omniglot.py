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
# Subsets and the paper's splits


def test_paper_split_table_is_disjoint():
    spec = characters.PAPER_SPLITS
    assert len(characters.VAL_ALPHABETS) == len(characters.TEST_ALPHABETS) == 10
    assert not set(characters.VAL_ALPHABETS) & set(characters.TEST_ALPHABETS)
    assert spec["train"].archive == "background" and spec["train"].drawers == tuple(range(1, 13))
    assert spec["val"].drawers == (13, 14, 15, 16) and spec["test"].drawers == (17, 18, 19, 20)
    train, val, test = (set(s.drawers) for s in spec.values())
    assert not (train & val or train & test or val & test)


def test_paper_split_on_fake_paper_tree(fake_paper_root, tmp_path):
    evaluation = omniglot.load_split(fake_paper_root, "evaluation", cache_dir=tmp_path)
    background = omniglot.load_split(fake_paper_root, "background", cache_dir=tmp_path)
    sets = {
        "train": characters.paper_split(background, "train"),
        "val": characters.paper_split(evaluation, "val"),
        "test": characters.paper_split(evaluation, "test"),
    }
    assert sets["train"].images.shape == (12, 12, 105, 105)
    assert sets["val"].images.shape == sets["test"].images.shape == (30, 4, 105, 105)
    assert sets["test"].alphabets == sorted(characters.TEST_ALPHABETS)
    # The images really are those drawers: drawer ids are written into the fake pixels.
    assert [read_ids(sets["test"].images[0, j])[1] for j in range(4)] == [17, 18, 19, 20]
    pairs = {name: {(a, d) for a in s.alphabets for d in s.drawers} for name, s in sets.items()}
    assert not pairs["train"] & pairs["val"] and not pairs["train"] & pairs["test"]
    assert not pairs["val"] & pairs["test"]
    with pytest.raises(ValueError, match="comes from the background split"):
        characters.paper_split(evaluation, "train")
    with pytest.raises(ValueError, match="unknown set"):
        characters.paper_split(evaluation, "dev")


def test_paper_split_needs_the_named_alphabets(fake_omniglot, tmp_path):
    root = fake_omniglot("evaluation", {"Angelic": 2})
    split = omniglot.load_split(root, "evaluation", cache_dir=tmp_path)
    with pytest.raises(DataError, match="lacks alphabet"):
        characters.paper_split(split, "test")


def test_subset_keeps_order_and_checks_drawers(fake_omniglot, tmp_path):
    root = fake_omniglot("background", {"Alpha": 2, "Beta": 3})
    split = omniglot.load_split(root, "background", cache_dir=tmp_path)
    sub = characters.subset(split, ["Beta"], [20, 1])
    assert sub.images.shape == (3, 2, 105, 105) and sub.alphabets == ["Beta"]
    assert sub.alphabet_of.tolist() == [0, 0, 0]
    # Beta holds characters 3-5, so its second one is character 4.
    assert read_ids(sub.images[1, 0]) == (4, 20) and read_ids(sub.images[1, 1]) == (4, 1)
    with pytest.raises(ValueError, match="drawers"):
        characters.subset(split, None, [0, 1])
    with pytest.raises(ValueError, match="drawers"):
        characters.subset(split, None, [3, 3])


def test_a_subset_of_a_subset_picks_drawers_by_number(fake_omniglot, tmp_path):
    root = fake_omniglot("background", {"Alpha": 2, "Beta": 3})
    split = omniglot.load_split(root, "background", cache_dir=tmp_path)
    sub = characters.subset(split, None, [5, 9, 12])
    again = characters.subset(sub, ["Alpha"], [12, 5])
    assert again.drawers == (12, 5) and again.source == split.source
    assert [read_ids(again.images[1, j]) for j in range(2)] == [(2, 12), (2, 5)]
    with pytest.raises(ValueError, match="drawers must be distinct numbers among 5, 9, 12"):
        characters.subset(sub, None, [1])


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


def test_real_paper_splits(real_background, real_evaluation):
    train = characters.paper_split(real_background, "train")
    val = characters.paper_split(real_evaluation, "val")
    test = characters.paper_split(real_evaluation, "test")
    assert train.images.shape == (964, 12, 105, 105)
    assert val.images.shape == (277, 4, 105, 105) and test.images.shape == (382, 4, 105, 105)
    assert not set(test.alphabets) & set(train.alphabets)
    assert not set(test.alphabets) & set(val.alphabets)
    assert not set(val.characters) & set(test.characters)
    first = real_evaluation.characters.index(test.characters[0])
    np.testing.assert_array_equal(test.images[0, 0], real_evaluation.images[first, 16])  # drawer 17


def test_with_rotations_adds_turned_characters_as_new_alphabets(fake_omniglot, tmp_path):
    root = fake_omniglot("background", {"Alpha": 2, "Beta": 3})
    sub = characters.subset(omniglot.load_split(root, "background", cache_dir=tmp_path), None, [1, 2])
    assert characters.with_rotations(sub, 1) is sub
    turned = characters.with_rotations(sub, 4)
    assert turned.images.shape == (20, 2, 105, 105) and turned.drawers == sub.drawers
    for k in range(4):
        rows = slice(5 * k, 5 * (k + 1))
        # Turning back by k quarter turns gives the original drawings, pixel for pixel.
        np.testing.assert_array_equal(np.rot90(turned.images[rows], -k, axes=(2, 3)), sub.images)
        assert turned.alphabet_of[rows].tolist() == (sub.alphabet_of + 2 * k).tolist()
    assert not np.array_equal(turned.images[5], turned.images[0])  # a turn changes the picture
    assert turned.alphabets == ["Alpha", "Beta", "Alpha (90)", "Beta (90)", "Alpha (180)",
                                "Beta (180)", "Alpha (270)", "Beta (270)"]
    assert turned.characters[5] == sub.characters[0] + " (90)"
    assert len(characters.with_rotations(sub, 2).characters) == 10
    for bad in (0, 5, -1):
        with pytest.raises(ValueError, match="rotations must be 1, 2, 3 or 4"):
            characters.with_rotations(sub, bad)


def test_with_mirrors_adds_mirrored_characters_as_new_alphabets(fake_omniglot, tmp_path):
    root = fake_omniglot("background", {"Alpha": 2, "Beta": 3})
    sub = characters.subset(omniglot.load_split(root, "background", cache_dir=tmp_path), None, [1, 2])
    assert characters.with_mirrors(sub, False) is sub
    both = characters.with_mirrors(sub)
    assert both.images.shape == (10, 2, 105, 105) and both.drawers == sub.drawers
    np.testing.assert_array_equal(both.images[:5], sub.images)
    for c in range(5):  # column x of a mirror is column W-1-x of its original
        for x in (0, 40, 104):
            np.testing.assert_array_equal(both.images[5 + c, :, :, x], sub.images[c, :, :, 104 - x])
    assert not np.array_equal(both.images[5], both.images[0])  # drawings are not symmetric
    assert both.alphabets == ["Alpha", "Beta", "Alpha (mirrored)", "Beta (mirrored)"]
    assert both.alphabet_of.tolist() == sub.alphabet_of.tolist() + (sub.alphabet_of + 2).tolist()
    assert both.characters[5] == sub.characters[0] + " (mirrored)"
    # after four turns: the eight turns and flips, as 8 x 2 alphabets
    eight = characters.with_mirrors(characters.with_rotations(sub, 4))
    assert len(eight.characters) == 40 and len(eight.alphabets) == 16
    for bad in (1, "true", None):
        with pytest.raises(ValueError, match="mirror must be true or false"):
            characters.with_mirrors(sub, bad)
