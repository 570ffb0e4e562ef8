"""``tinysiamese classify | cluster | embed`` on folders the tests build and on real Omniglot
files laid out as a user would, with the shipped model; every refusal is one line."""
from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from cli_helpers import assert_one_line_error, run


def drawing(path, kind: int, jitter: int = 0):
    """Dark strokes on white: kind 0 a vertical bar, 1 a horizontal bar, 2 a cross."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.full((60, 60), 255, dtype=np.uint8)
    j = jitter
    if kind in (0, 2):
        grey[10 + j:50 + j, 27:33] = 0
    if kind in (1, 2):
        grey[27:33, 10 + j:50 + j] = 0
    Image.fromarray(grey).save(path)
    return path


@pytest.fixture
def shapes(tmp_path):
    """support/{bar,flat,cross}.png, query/ with one of each, all/ with 4 of each."""
    for name, kind in (("bar", 0), ("flat", 1), ("cross", 2)):
        drawing(tmp_path / "support" / f"{name}.png", kind)
        drawing(tmp_path / "query" / f"q-{name}.png", kind, jitter=3)
        for j in range(4):
            drawing(tmp_path / "all" / f"{name}{j}.png", kind, jitter=j)
    (tmp_path / "all" / "notes.txt").write_text("not an image")
    return tmp_path


def test_classify_text_and_json(shapes):
    result = run("classify", shapes / "support", shapes / "query" / "q-bar.png", shapes / "query")
    assert result.exit_code == 0, result.output
    lines = [l for l in result.output.splitlines() if "P(same)" in l]
    assert len(lines) == 4, result.output
    result = run("classify", shapes / "support", shapes / "query", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.splitlines()[0])
    assert set(out) == {"results"} and len(out["results"]) == 3
    for r in out["results"]:
        assert set(r) == {"query", "class", "probability", "top"}
        assert [c for c, _ in r["top"]][0] == r["class"] and len(r["top"]) == 3
        assert 0 <= r["probability"] <= 1 and r["top"][0][1] == r["probability"]
        assert r["top"][0][1] >= r["top"][1][1] >= r["top"][2][1], "best first"
    assert {r["class"] for r in out["results"]} == {"bar", "flat", "cross"}


def test_classify_refusals(shapes, tmp_path):
    one = tmp_path / "one"
    drawing(one / "bar.png", 0)
    assert_one_line_error(run("classify", one, shapes / "query"), 2, "one class")
    assert_one_line_error(run("classify", shapes / "support"), 2, "SUPPORT folder and at least one QUERY")
    assert_one_line_error(run("classify", tmp_path / "nope", shapes / "query"), 2, "does not exist")
    (shapes / "support" / "bad.png").write_bytes(b"not a png")
    assert_one_line_error(run("classify", shapes / "support", shapes / "query"), 1,
                          "bad.png is not a readable image")


def test_cluster_writes_csv_png_and_json(shapes, tmp_path):
    out = tmp_path / "out"
    result = run("cluster", shapes / "all", "--k", 3, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads([l for l in result.output.splitlines() if l.startswith("{")][0])
    assert set(got) == {"k", "assignments"} and got["k"] == 3
    assert [set(a) for a in got["assignments"]] == [{"file", "cluster"}] * 12
    labels = {a["file"].rsplit("/", 1)[-1]: a["cluster"] for a in got["assignments"]}
    for name in ("bar", "flat", "cross"):  # each shape's 4 drawings in one cluster
        assert len({labels[f"{name}{j}.png"] for j in range(4)}) == 1, labels
    rows = list(csv.DictReader(open(out / "clusters.csv")))
    assert [r["file"] for r in rows] == [a["file"] for a in got["assignments"]]
    assert all(0 <= float(r["mean_p_same"]) <= 1 for r in rows)
    with Image.open(out / "clusters.png") as im:
        assert im.width > 100 and im.height > 100
    assert "skipped 1 file(s)" in result.output, "notes.txt is counted on stderr"


def test_cluster_estimates_k_and_says_how(shapes, tmp_path):
    result = run("cluster", shapes / "all", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "estimated: the largest gap in the spectrum" in result.output


def test_cluster_refusals(shapes, tmp_path):
    drawing(tmp_path / "single" / "a.png", 0)
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("cluster", tmp_path / "single"), 2, "holds 1 image", "at least 2")
    assert_one_line_error(run("cluster", tmp_path / "empty"), 2, "holds no images")
    assert_one_line_error(run("cluster", shapes / "all", "--k", 13, "--out", tmp_path / "o"), 2,
                          "--k 13 is more clusters than the 12 images")
    assert not (tmp_path / "o").exists(), "nothing written for a refused request"


def test_embed_writes_npy_and_txt(shapes, tmp_path):
    result = run("embed", shapes / "all", "--out", tmp_path / "X.npy")
    assert result.exit_code == 0, result.output
    x = np.load(tmp_path / "X.npy")
    names = (tmp_path / "X.txt").read_text().splitlines()
    assert x.dtype == np.float32 and x.shape == (12, 1024) and len(names) == 12
    assert names[0].endswith("bar0.png") and names == sorted(names)
    assert np.all((x >= 0) & (x <= 1)), "features of a sigmoid"


def test_embed_refusals(shapes, tmp_path):
    assert_one_line_error(run("embed", shapes / "all", "--out", tmp_path / "X.csv"), 2, "ending in .npy")
    assert_one_line_error(run("embed", "a.npz", "b.npz", shapes / "all", "--out", tmp_path / "X.npy"),
                          2, "at most one CHECKPOINT")
    assert not (tmp_path / "X.npy").exists()


def test_real_omniglot_as_a_user_lays_it_out(omniglot_dir, tmp_path):
    """Tengwar's first 10 characters from the archive: drawer 01 as the support, drawers 02
    and 03 as queries, and all 20 drawings as a folder to cluster."""
    with zipfile.ZipFile(omniglot_dir / "images_evaluation.zip") as zf:
        names = sorted(n for n in zf.namelist() if "/Tengwar/character" in n and n.endswith(".png"))
        chars = sorted({n.split("/")[-2] for n in names})[:10]
        for n in names:
            char, file = n.split("/")[-2:]
            if char not in chars:
                continue
            data, drawer = zf.read(n), int(file[-6:-4])
            (tmp_path / "all" / char).mkdir(parents=True, exist_ok=True)
            (tmp_path / "all" / char / file).write_bytes(data)
            if drawer == 1:
                (tmp_path / "support").mkdir(exist_ok=True)
                (tmp_path / "support" / f"{char}.png").write_bytes(data)
            elif drawer in (2, 3):
                (tmp_path / "query").mkdir(exist_ok=True)
                (tmp_path / "query" / f"{char}-{file}").write_bytes(data)
    result = run("classify", tmp_path / "support", tmp_path / "query", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.output.splitlines()[0])["results"]
    right = np.mean([r["class"] == r["query"].rsplit("/", 1)[-1].split("-")[0] for r in results])
    assert len(results) == 20 and right >= 0.8, f"10-way accuracy {right:.0%}"
    result = run("cluster", tmp_path / "all", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads([l for l in result.output.splitlines() if l.startswith("{")][0])
    assert 8 <= got["k"] <= 12, f"estimated K {got['k']} for 10 characters"


def test_an_ensemble_of_one_model_twice_answers_as_the_model(shapes):
    from tinysiamese.pretrained import pretrained_path
    one = run("classify", shapes / "support", shapes / "query", "--json")
    two = run("classify", pretrained_path(), pretrained_path(), shapes / "support",
              shapes / "query", "--json")
    assert one.exit_code == two.exit_code == 0, two.output
    a, b = (json.loads(r.output.splitlines()[0])["results"] for r in (one, two))
    assert [r["class"] for r in a] == [r["class"] for r in b]
    assert np.allclose([r["probability"] for r in a], [r["probability"] for r in b])


def test_cluster_writes_beside_the_folder_and_never_inside_it(shapes, tmp_path):
    import shutil

    folder = shutil.copytree(shapes / "all", tmp_path / "drawings")
    result = run("cluster", folder, "--k", 3)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "drawings-clusters" / "clusters.png").is_file()
    again = run("cluster", folder, "--k", 3)  # the same 12 images, not 13
    assert again.exit_code == 0 and again.output.count("images") == result.output.count("images")
    assert_one_line_error(run("cluster", folder, "--out", folder / "results"), 2,
                          "lies inside", "give --out outside it")
    assert not (folder / "results").exists()
