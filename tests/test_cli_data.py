import json
import os
import zipfile

import pytest
from conftest import write_fake_split, write_lake_runs

from tinysiamese import __version__, characters, omniglot
from tinysiamese import download as dl
from cli_helpers import assert_one_line_error, run




def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", [["data", "download"], ["data", "info"], ["eval"], []])
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "tinysiamese" in result.output
    assert "Example" in result.output or "Start with" in result.output


# --------------------------------------------------------------------------------------
# data info


def test_info_on_real_data(omniglot_dir):
    result = run("data", "info", "--data", omniglot_dir)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Omniglot data in {omniglot_dir}"
    background = next(line for line in lines if line.startswith("background")).split()
    evaluation = next(line for line in lines if line.startswith("evaluation")).split()
    assert background[1:4] == ["30", "964", "19,280"]
    assert background[4].endswith("images_background.zip")
    assert evaluation[1:4] == ["20", "659", "13,180"]
    assert "official" not in result.output


def test_info_finds_data_through_the_environment(tmp_path):
    write_fake_split(tmp_path, "background", {"A": 2})
    result = run("data", "info", env={"TINYSIAMESE_DATA": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert f"Omniglot data in {tmp_path}" in result.output
    assert "(the official archive has 30/964/19,280)" in result.output
    evaluation = next(line for line in result.output.splitlines() if line.startswith("evaluation"))
    assert evaluation.split()[-1] == "missing"


def test_info_errors(tmp_path):
    assert_one_line_error(run("data", "info", "--data", tmp_path / "nowhere"), 2, "does not exist")
    assert_one_line_error(run("data", "info", "--data", tmp_path), 2, "does not hold Omniglot")


# --------------------------------------------------------------------------------------
# data download


def test_download_failure_is_one_line_and_keeps_nothing(server, tmp_path):
    env = {"TINYSIAMESE_OMNIGLOT_URL": server.url}
    result = run("data", "download", "--dest", tmp_path / "d", env=env)
    assert_one_line_error(result, 1, "404")
    assert "run the command again" in result.output
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []
    assert server.requests == ["images_background.zip"]


def test_download_from_local_copy(omniglot_dir, tmp_path):
    dest = tmp_path / "data"
    result = run("data", "download", "--from", omniglot_dir, "--dest", dest)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == ["images_background.zip",
                                                     "images_evaluation.zip"]
    assert "copied" in result.output
    again = run("data", "download", "--from", omniglot_dir, "--dest", dest)
    assert again.exit_code == 0 and again.output.count("present") == 2
    assert "copied" not in again.output


def test_download_from_refuses_an_incomplete_archive(tmp_path):
    src = tmp_path / "src"
    write_fake_split(src, "background", {"A": 1})
    # The fake has 20 images instead of 19,280: the content check must refuse it.
    result = run("data", "download", "--from", src, "--dest", tmp_path / "dest")
    assert_one_line_error(result, 1, "holds 20 images, expected 19,280")
    assert not (tmp_path / "dest").exists() or list((tmp_path / "dest").iterdir()) == []


def test_download_and_unzip_small_archives(server, omniglot_dir, tmp_path, monkeypatch):
    # The official table swapped for the two small archives, which the shared data has verbatim.
    monkeypatch.setattr(dl, "OFFICIAL_ARCHIVES", dl.SMALL_ARCHIVES)
    monkeypatch.setattr(dl, "RUNS_ARCHIVES", ())  # tests/test_download_runs.py has Lake's runs
    for spec in dl.SMALL_ARCHIVES:
        server.files[spec.name] = (omniglot_dir / spec.name).read_bytes()
    dest = tmp_path / "data"
    env = {"TINYSIAMESE_OMNIGLOT_URL": server.url}
    result = run("data", "download", "--dest", dest, "--unzip", env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("downloaded") == 2 and result.output.count("unzipped") == 2
    assert sorted(p.name for p in dest.iterdir()) == [
        "images_background_small1", "images_background_small1.zip",
        "images_background_small2", "images_background_small2.zip",
    ]
    assert len(list((dest / "images_background_small1").glob("*/*/*.png"))) == 2720
    again = run("data", "download", "--dest", dest, "--unzip", "--url", server.url)
    assert again.exit_code == 0 and again.output.count("present") == 2
    assert "not unzipped again" in again.output
    assert len(server.requests) == 2
    # The unzipped folder reads like the zip.
    a = omniglot.load_split(dest, "background_small1", use_cache=False)
    (dest / "images_background_small1.zip").unlink()
    b = omniglot.load_split(dest, "background_small1", use_cache=False)
    assert a.images.shape == b.images.shape == (136, 20, 105, 105) and (a.images == b.images).all()


def test_download_from_errors(tmp_path):
    result = run("data", "download", "--from", tmp_path / "nowhere", "--dest", tmp_path)
    assert_one_line_error(result, 2, "not a folder")
    write_fake_split(tmp_path / "unzipped", "background", {"A": 1}, as_zip=False)
    result = run("data", "download", "--from", tmp_path / "unzipped", "--dest", tmp_path / "d")
    assert_one_line_error(result, 2, "--data")


# --------------------------------------------------------------------------------------
# eval


def test_eval_omniglot_json(fake_paper_root, tmp_path):
    result = run("eval", "--baseline", "nn", "--data", fake_paper_root, "--ways", 3, "--trials", 12,
                 "--cache-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trials"] == 12 and out["ways"] == 3
    assert 0.0 <= out["ci95"][0] <= out["accuracy"] <= out["ci95"][1] <= 1.0
    # 12 trials are 4 sets of 3, each from one test alphabet.
    assert len(out["per_alphabet"]) == 4
    assert set(out["per_alphabet"]) <= set(characters.TEST_ALPHABETS)
    assert out["accuracy"] == 1.0, "fake characters differ by position: 1-NN must be perfect"


def test_eval_val_split_text(fake_paper_root, tmp_path):
    result = run("eval", "--baseline", "hausdorff", "--data", fake_paper_root, "--split", "val",
                 "--ways", 3, "--trials", 6, "--cache-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Omniglot val set" in result.output and "accuracy" in result.output
    assert set(result.output.split()) & set(characters.VAL_ALPHABETS)


def test_eval_lake_runs(tmp_path):
    path, _ = write_lake_runs(tmp_path, n_runs=2, n_way=3, as_zip=True)
    result = run("eval", "--baseline", "nn", "--runs", path, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trials"] == 6 and out["ways"] == 3
    assert set(out["per_alphabet"]) == {"run01", "run02"}


def test_eval_mnist(mnist_dir):
    result = run("eval", "--baseline", "nn", "--mnist", mnist_dir, "--size", 28, "--trials", 50,
                 "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trials"] == 50 and out["ways"] == 10
    assert out["per_alphabet"] == {"mnist": {"accuracy": out["accuracy"], "trials": 50}}


def test_eval_usage_errors(fake_paper_root, tmp_path):
    cases = [
        (["--data", fake_paper_root, "--cache-dir", tmp_path], "use at most 3 ways"),
        (["--runs", tmp_path, "--mnist", tmp_path], "choose one trial source"),
        (["--mnist", tmp_path, "--ways", 20], "10-way"),
        (["--mnist", tmp_path / "nowhere"], "not a folder"),
        (["--data", tmp_path / "nowhere"], "does not exist"),
    ]
    for args, message in cases:
        assert_one_line_error(run("eval", "--baseline", "nn", *args), 2, message)


def test_eval_bad_data_is_a_failure(tmp_path):
    root = tmp_path / "root"
    names = sorted(characters.VAL_ALPHABETS + characters.TEST_ALPHABETS)
    zip_path = write_fake_split(root, "evaluation", {name: 3 for name in names})
    with zipfile.ZipFile(zip_path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    [bad] = [n for n in members
             if n.startswith("images_evaluation/Tibetan/character02/") and n.endswith("_04.png")]
    members[bad] = b"not a png"
    with zipfile.ZipFile(zip_path.with_suffix(".new"), "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    os.replace(zip_path.with_suffix(".new"), zip_path)
    result = run("eval", "--baseline", "nn", "--data", root, "--ways", 3,
                 "--cache-dir", tmp_path / "c")
    assert_one_line_error(result, 1, bad.rsplit("/", 1)[-1])


def test_eval_runs_alone_reads_the_downloaded_runs(tmp_path, monkeypatch):
    """`eval --runs` with no path: Lake's runs where `data download` keeps them."""
    from conftest import write_lake_runs

    monkeypatch.setenv("TINYSIAMESE_DATA", str(tmp_path))
    write_lake_runs(tmp_path, n_runs=2, n_way=3, as_zip=True)
    result = run("eval", "--baseline", "nn", "--runs", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["trials"] == 6 and str(tmp_path / "all_runs.zip") in report["source"]
    missing = run("eval", "--baseline", "nn", "--runs", "--json",
                  env={"TINYSIAMESE_DATA": str(tmp_path / "none")})
    assert missing.exit_code == 2 and "all_runs.zip" in missing.output, missing.output
