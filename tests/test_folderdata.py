"""folderdata.py: a user's class folders as the trainer's TrainingData, split by a seeded rule."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from test_folders import make_tree
from tinysiamese.folderdata import load_folder_data, split_rule
from tinysiamese.folders import FolderError
from tinysiamese.trials import within_alphabet_trials


def flat_folder(root, counts):
    """class cNN with counts[NN] images each."""
    return make_tree(root, [f"c{c:02d}/{i}.png" for c, n in enumerate(counts) for i in range(n)])


def test_flat_folder_split_and_fixed_drawers(tmp_path):
    counts = [3, 4, 5, 3, 6, 4, 3, 5, 4, 7]
    data = load_folder_data(flat_folder(tmp_path / "mine", counts), 16, seed=1)
    train, val = data.train, data.val
    assert len(train.characters) == 8 and len(val.characters) == 2, "a fifth of 10 classes"
    assert not set(train.characters) & set(val.characters)
    assert train.images.dtype == np.uint8 and train.images.shape[2:] == (16, 16)
    pick = {c: counts[int(c.split("/c")[1])] for c in train.characters + val.characters}
    assert train.images.shape[1] == min(pick[c] for c in train.characters), "smallest class"
    assert val.images.shape[1] == min(pick[c] for c in val.characters)
    assert train.alphabets == ["mine"] and all(c.startswith("mine/c") for c in train.characters)
    assert data.n_way == 2 and data.test is None
    assert data.notes[0].startswith(split_rule(1)) and "8 classes train" in data.notes[0]
    trials = within_alphabet_trials(val, n_way=data.n_way, n_trials=4, seed=0)
    assert trials.n_way == 2, "the trainer's validation trials build from it"


def test_the_split_is_seeded(tmp_path):
    root = flat_folder(tmp_path / "mine", [2] * 12)
    splits = {s: load_folder_data(root, 8, seed=s).val.characters for s in range(4)}
    assert splits[0] == load_folder_data(root, 8, seed=0).val.characters, "same seed, same split"
    assert len({tuple(v) for v in splits.values()}) > 1, "other seeds, other splits"


def test_groups_play_alphabets(tmp_path):
    names = [f"g1/k{c}/{i}.png" for c in range(6) for i in range(3)]
    names += [f"g2/k{c}/{i}.png" for c in range(3) for i in range(2)]   # < 4 classes: trains only
    data = load_folder_data(make_tree(tmp_path / "mine", names), 8, seed=0)
    assert data.val.alphabets == ["g1"] and len(data.val.characters) == 2
    assert data.train.alphabets == ["g1", "g2"] and len(data.train.characters) == 7
    assert data.train.images.shape[1] == 2, "g2's classes have 2 images"
    assert any("4 images left out" in n for n in data.notes), data.notes  # g1's 4 train classes


def test_too_few_classes_to_split(tmp_path):
    with pytest.raises(FolderError, match="give at least 4 classes in one group"):
        load_folder_data(flat_folder(tmp_path / "mine", [2, 2, 2]), 8)
    with pytest.raises(FolderError, match="has 1 image"):
        load_folder_data(flat_folder(tmp_path / "two", [2, 1, 2, 2]), 8)


def test_real_omniglot_alphabets_as_groups(omniglot_dir, tmp_path):
    """Two background alphabets, 5 characters each, copied out as group/class/*.png."""
    with zipfile.ZipFile(omniglot_dir / "images_background.zip") as zf:
        for n in zf.namelist():
            parts = n.split("/")
            if (n.endswith(".png") and parts[-3] in ("Greek", "Korean")
                    and parts[-2] in {f"character{c:02d}" for c in range(1, 6)}):
                target = tmp_path / "mine" / parts[-3] / parts[-2] / parts[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(n))
    data = load_folder_data(tmp_path / "mine", 52, seed=0)
    assert data.val.alphabets == ["Greek", "Korean"] and data.n_way == 2
    assert data.train.images.shape == (6, 20, 52, 52) and data.val.images.shape == (4, 20, 52, 52)
    assert data.train.images.max() == 255 and np.median(data.train.images) == 0, "ink on black"


def test_the_trainer_runs_on_folder_data(tmp_path):
    """One short epoch of the tiny preset on a folder: the TrainingData fits the trainer as is."""
    from tinysiamese.backend import get_backend
    from tinysiamese.config import PRESETS
    from tinysiamese.runfolder import RunFolder
    from tinysiamese.train import train
    data = load_folder_data(flat_folder(tmp_path / "mine", [4] * 10), 28, seed=0)
    cfg = PRESETS["tiny"].replace("run", epochs=1, val_trials=4, test_trials=0)
    cfg = cfg.replace("loader", batches_per_epoch=3)
    lines = []
    result = train(cfg, data, get_backend("numpy"), RunFolder(tmp_path / "run"), log=lines.append)
    assert result.best_epoch == 1 and (tmp_path / "run" / "best.npz").is_file(), lines
    assert any(split_rule(0) in line for line in lines), "the run's log states the split"
