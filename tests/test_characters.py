"""characters: the CharacterSet, cutting it (subsets, the paper's sets), growing it
(rotations, mirrors)."""
import numpy as np
import pytest
from conftest import read_ids
from tinysiamese import characters, omniglot
from tinysiamese.archive import DataError


# --------------------------------------------------------------------------------------
# Subsets and the paper's sets


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
# Turned and mirrored characters


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
