"""lake_runs: Lake's official runs, from a zip or a folder, with the runs one level down or not."""
import numpy as np
import pytest
from conftest import fake_strokes, read_ids, write_lake_runs
from tinysiamese.archive import DataError
from tinysiamese.lake_runs import load_lake_runs


@pytest.mark.parametrize("as_zip, prefix",
                         [(False, ""), (False, "all_runs"), (True, "all_runs"), (True, "")])
def test_load_lake_runs(tmp_path, as_zip, prefix):
    path, perms = write_lake_runs(tmp_path, as_zip=as_zip, prefix=prefix)
    trials = load_lake_runs(path)
    assert trials.support.shape == (6, 3, 105, 105) and trials.test.shape == (6, 105, 105)
    assert trials.alphabet == ["run01"] * 3 + ["run02"] * 3
    assert trials.answer.tolist() == perms["run01"].tolist() + perms["run02"].tolist()
    for t in range(6):
        assert read_ids(trials.test[t])[0] == read_ids(trials.support[t, trials.answer[t]])[0]
    # Black on white in the file, strokes = 1 here.
    np.testing.assert_array_equal(trials.support[0, 0] == 1.0, fake_strokes(10, 1))
    assert set(np.unique(trials.support)) == {0.0, 1.0}


def test_lake_runs_resized(tmp_path):
    path, _ = write_lake_runs(tmp_path, n_runs=1, prefix="")
    trials = load_lake_runs(path, size=35)
    assert trials.support.shape == (3, 3, 35, 35) and trials.support.max() <= 1.0


def test_lake_runs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_lake_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no runNN/class_labels.txt"):
        load_lake_runs(tmp_path / "empty")
    root, _ = write_lake_runs(tmp_path / "a", n_runs=1, prefix="")
    (root / "run01" / "class_labels.txt").write_text("run01/test/item01.png\n")
    with pytest.raises(DataError, match="line 1"):
        load_lake_runs(root)
    root, _ = write_lake_runs(tmp_path / "b", n_runs=1, prefix="")
    (root / "run01" / "test" / "item02.png").unlink()
    with pytest.raises(DataError, match="item02.png"):
        load_lake_runs(root)
