"""Lake's all_runs.zip: `data download` fetches it from its own path and `eval --runs` reads it."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from cli_helpers import run
from conftest import write_lake_runs
from tinysiamese import download as dl
from tinysiamese.lake_runs import load_lake_runs


def test_the_spec_is_the_official_file():
    spec = dl.LAKE_RUNS
    assert (spec.name, spec.size, spec.md5) == ("all_runs.zip", 352_787,
                                                "e8996daecdf12afeeb4a53a179f06b19")
    assert spec.remote == "one-shot-classification/all_runs.zip"
    assert dl.RUNS_ARCHIVES == (spec,) and spec not in dl.OFFICIAL_ARCHIVES, \
        "copying the two archives --from a folder must not need it"


def fake_runs(tmp_path):
    """A zip in Lake's layout and a spec of the official kind that it satisfies."""
    tmp_path.mkdir(parents=True)
    path, perms = write_lake_runs(tmp_path, n_runs=2, n_way=3, as_zip=True)
    data = path.read_bytes()
    spec = dataclasses.replace(dl.LAKE_RUNS, size=len(data), md5=hashlib.md5(data).hexdigest())
    return spec, data, perms


def test_download_fetches_the_runs_path_and_keeps_all_runs_zip(server, tmp_path):
    spec, data, perms = fake_runs(tmp_path / "src")
    server.files["all_runs.zip"] = data
    result = dl.download_archive(spec, tmp_path / "dest", url=server.url)
    assert result.status == "downloaded" and result.path == tmp_path / "dest" / "all_runs.zip"
    assert server.paths == ["/python/one-shot-classification/all_runs.zip"], server.paths
    trials = load_lake_runs(result.path, 28)
    assert trials.n_trials == 6 and trials.n_way == 3
    expected = np.concatenate([perms["run01"], perms["run02"]])
    assert trials.answer.tolist() == expected.tolist()


def test_data_download_then_eval_runs(server, omniglot_dir, tmp_path, monkeypatch):
    spec, data, _ = fake_runs(tmp_path / "src")
    monkeypatch.setattr(dl, "OFFICIAL_ARCHIVES", dl.SMALL_ARCHIVES[:1])
    monkeypatch.setattr(dl, "RUNS_ARCHIVES", (spec,))
    server.files[dl.SMALL_ARCHIVES[0].name] = (omniglot_dir / dl.SMALL_ARCHIVES[0].name).read_bytes()
    server.files["all_runs.zip"] = data
    dest = tmp_path / "data"
    result = run("data", "download", "--dest", dest, "--url", server.url)
    assert result.exit_code == 0, result.output
    assert result.output.count("downloaded") == 2 and (dest / "all_runs.zip").is_file()
    scored = run("eval", "--runs", dest / "all_runs.zip", "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output.splitlines()[-1])["trials"] == 6
