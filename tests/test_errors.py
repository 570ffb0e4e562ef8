"""Bad input meets one line: data, images, options and checkpoints given to the CLI.

Every case asserts the exit status (2: the user asked for something wrong, 1: the data or a
file is broken), a single ``Error:`` line naming the problem and the way out, no traceback,
and - where files are involved - that nothing half-made is left behind.
"""
import hashlib
import os
import pathlib
import pickle
import struct
import sys
import types
import zipfile
import zlib

import numpy as np
import pytest
from conftest import fake_strokes, png_bytes, write_fake_split
from PIL import Image

from tinysiamese import download as dl
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from tinysiamese.images import load_user_image
from tinysiamese.config import PRESETS, build_config
from tinysiamese.model import SiameseNet
from cli_helpers import assert_one_line_error, run




def rewrite_zip(path, replace=None, extra=None):
    """Rewrite the zip at ``path`` with some members' bytes replaced and others added."""
    with zipfile.ZipFile(path) as zf:
        members = {info: zf.read(info.filename) for info in zf.infolist()}
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members.items():
            zf.writestr(info, (replace or {}).get(info.filename, data))
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A freshly initialised tiny model saved as a checkpoint (28 px input)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.npz"
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend(), rng=np.random.default_rng(0))
    save_checkpoint(path, {k: np.asarray(v) for k, v in model.params().items()},
                    {"config": PRESETS["tiny"].to_dict()})
    return path


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """Two plain 1-bit character drawings, as Omniglot has them."""
    folder = tmp_path_factory.mktemp("png")
    for i in (1, 2):
        (folder / f"char{i}.png").write_bytes(png_bytes(fake_strokes(i, 1)))
    return folder


# --------------------------------------------------------------------------------------
# Data


@pytest.mark.parametrize("command", [["train"], ["eval", "CKPT"], ["data", "info"]])
def test_data_folder_that_does_not_exist(command, tiny_ckpt, tmp_path):
    args = [tiny_ckpt if a == "CKPT" else a for a in command]
    result = run(*args, "--data", tmp_path / "nowhere")
    assert_one_line_error(result, 2, "does not exist", "tinysiamese data download")


def test_data_folder_that_is_not_omniglot(tmp_path, tiny_ckpt):
    (tmp_path / "README.txt").write_text("not omniglot")
    result = run("train", "--data", tmp_path)
    assert_one_line_error(result, 2, "does not hold Omniglot", "images_background")
    result = run("eval", tiny_ckpt, "--data", tmp_path / "README.txt")
    assert_one_line_error(result, 2, "is not a folder")


def test_images_background_folder_without_alphabets(tmp_path):
    (tmp_path / "images_background").mkdir()
    (tmp_path / "images_background" / "notes.txt").write_text("hello")
    assert_one_line_error(run("data", "info", "--data", tmp_path), 1, "holds no alphabets")


@pytest.mark.parametrize("command", [["data", "info"], ["train", "--preset", "tiny"]])
def test_truncated_archive(command, tmp_path):
    zip_path = write_fake_split(tmp_path, "background", {"A": 2})
    data = zip_path.read_bytes()
    zip_path.write_bytes(data[: len(data) // 2])
    out = ["--out", tmp_path / "run"] if command[0] == "train" else []
    result = run(*command, "--data", tmp_path, *out)
    assert_one_line_error(result, 1, "images_background.zip is not a readable zip archive",
                          "download it again")


def test_copy_of_a_truncated_archive_is_refused_and_not_kept(tmp_path):
    src = tmp_path / "src"
    zip_path = write_fake_split(src, "background", {"A": 1})
    data = zip_path.read_bytes()
    zip_path.write_bytes(data[: len(data) - 100])  # the central directory is cut off
    result = run("data", "download", "--from", src, "--dest", tmp_path / "dest")
    assert_one_line_error(result, 1, "is not a readable zip archive")
    assert not (tmp_path / "dest").exists() or list((tmp_path / "dest").iterdir()) == []


def test_download_with_a_wrong_checksum_keeps_nothing(server, tmp_path, monkeypatch):
    good = b"the real archive" * 100
    spec = dl.ArchiveSpec("images_background.zip", len(good), hashlib.md5(good).hexdigest(), 0)
    monkeypatch.setattr(dl, "OFFICIAL_ARCHIVES", (spec,))
    server.files[spec.name] = good[:-1] + b"?"  # same size, other MD5
    result = run("data", "download", "--dest", tmp_path, "--url", server.url)
    assert_one_line_error(result, 1, "MD5", "nothing was kept", "run the command again")
    assert list(tmp_path.iterdir()) == []


def _evil_zip(path, evil_name):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images_background/A/character01/0001_01.png", png_bytes(fake_strokes(1, 1)))
        zf.writestr(zipfile.ZipInfo(evil_name), png_bytes(fake_strokes(2, 1)))


@pytest.mark.parametrize("evil", ["../escape.png", "images_background/../../escape.png", "ABS"])
def test_unzip_refuses_members_outside_the_target(evil, tmp_path, monkeypatch):
    src, dest = tmp_path / "src", tmp_path / "box" / "dest"
    src.mkdir()
    dest.mkdir(parents=True)
    evil = str(tmp_path / "escape.png") if evil == "ABS" else evil
    _evil_zip(src / "images_background.zip", evil)
    # A table entry the evil zip satisfies by content (2 images), so it reaches the unzip step.
    monkeypatch.setattr(dl, "OFFICIAL_ARCHIVES",
                        (dl.ArchiveSpec("images_background.zip", 0, "0" * 32, 2),))
    result = run("data", "download", "--from", src, "--dest", dest, "--unzip")
    assert_one_line_error(result, 1, "refusing to extract unsafe member", "outside the target")
    assert not list(tmp_path.rglob("escape.png")), "a member was written outside the target"
    assert sorted(p.name for p in dest.iterdir()) == ["images_background.zip"], \
        "not even the safe members may be extracted, and no temporary folder may stay"


def test_corrupt_png_is_named_or_skipped_and_counted(fake_paper_root, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "images_evaluation.zip").write_bytes((fake_paper_root / "images_evaluation.zip")
                                                 .read_bytes())
    with zipfile.ZipFile(root / "images_evaluation.zip") as zf:  # a test drawer (17-20)
        folder = "images_evaluation/Tibetan/character02/"
        [bad] = [n for n in zf.namelist() if n.startswith(folder) and n.endswith("_18.png")]
    rewrite_zip(root / "images_evaluation.zip", replace={bad: b"\x89PNG\r\n\x1a\n garbage"})
    args = ["eval", "--baseline", "nn", "--data", root, "--ways", 2, "--trials", 6,
            "--cache-dir", tmp_path / "cache"]
    assert_one_line_error(run(*args), 1, "cannot read image", bad.rsplit("/", 1)[1],
                          "--skip-bad-images")
    result = run(*args, "--skip-bad-images")
    assert result.exit_code == 0, result.output
    assert ("skipped 1 unreadable image(s) of the archive of the test set, leaving out "
            "1 character(s): Tibetan/character02") in result.output


def test_empty_alphabet(tmp_path):
    write_fake_split(tmp_path, "background", {"A": 1}, as_zip=False)
    (tmp_path / "images_background" / "Empty").mkdir()
    for command in (["data", "info"], ["train", "--preset", "tiny", "--out", tmp_path / "run"]):
        assert_one_line_error(run(*command, "--data", tmp_path), 1,
                              "alphabet Empty has no characters")


def test_a_leftover_part_file_is_not_trusted(tmp_path):
    """A download killed mid-transfer leaves only <name>.part, which nothing reads as data."""
    (tmp_path / "images_background.zip.part").write_bytes(b"PK\x03\x04 half a zip")
    assert_one_line_error(run("data", "info", "--data", tmp_path), 2, "does not hold Omniglot")


# --------------------------------------------------------------------------------------
# Images given to verify


def _save(folder, name, array, mode=None, **kwargs):
    path = folder / name
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    image.save(path, **kwargs)
    return path


def _bomb_png(path):
    """A PNG header promising 30000 x 30000 pixels (Pillow refuses it before decoding)."""
    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc
    header = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_verify_refuses_what_is_not_an_image(tiny_ckpt, pngs, tmp_path):
    good = pngs / "char1.png"
    (tmp_path / "text.png").write_text("hello")
    truncated = pngs.joinpath("char2.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(truncated[: len(truncated) // 2])
    (tmp_path / "folder.png").mkdir()
    _save(tmp_path, "dot.png", np.zeros((1, 1), np.uint8))
    cases = [
        (tmp_path / "text.png", "is not a readable image", "give a PNG or JPEG"),
        (tmp_path / "cut.png", "is not a readable image", "truncated"),
        (tmp_path / "missing.png", "missing.png does not exist", ""),
        (tmp_path / "folder.png", "is a folder", "give an image file"),
        (tmp_path / "dot.png", "is too small (1x1 pixels)", ""),
        (_bomb_png(tmp_path / "bomb.png"), "is too large to read safely", "smaller image"),
    ]
    for bad, *patterns in cases:
        assert_one_line_error(run("verify", tiny_ckpt, good, bad), 2, bad.name, *patterns)
        assert_one_line_error(run("verify", tiny_ckpt, bad, good), 2, bad.name, *patterns)


def test_verify_counts_its_paths(tiny_ckpt, pngs):
    assert_one_line_error(run("verify", pngs / "char1.png"), 2, "give two images", "got 1")
    # With more than two paths, the ones before the last two are checkpoints.
    result = run("verify", pngs / "char1.png", pngs / "char1.png", pngs / "char2.png")
    assert_one_line_error(result, 2, "char1.png is not a tinysiamese checkpoint")


def test_verify_converts_colour_alpha_and_odd_sizes(tiny_ckpt, pngs, tmp_path):
    rng = np.random.default_rng(0)
    rgb = (rng.random((37, 23, 3)) * 255).astype(np.uint8)
    files = [
        _save(tmp_path, "rgb.png", rgb),
        _save(tmp_path, "rgba.png", (rng.random((20, 20, 4)) * 255).astype(np.uint8), "RGBA"),
        _save(tmp_path, "la.png", (rng.random((9, 30, 2)) * 255).astype(np.uint8), "LA"),
        _save(tmp_path, "grey16.png", (rng.random((16, 16)) * 65535).astype(np.uint16)),
        _save(tmp_path, "thin.png", (rng.random((300, 2)) * 255).astype(np.uint8)),
        _save(tmp_path, "photo.jpg", rgb),
        tmp_path / "cmyk.jpg",
        tmp_path / "palette.png",
    ]
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png", transparency=0)
    for f in files:
        result = run("verify", tiny_ckpt, pngs / "char1.png", f)
        assert result.exit_code == 0, f"{f.name}: {result.output}"
        p = float(result.output.split()[0])
        assert 0.0 <= p <= 1.0 and "probability" in result.output, result.output


def test_alpha_is_laid_on_white_and_colour_made_grey(tmp_path):
    """A black stroke on a transparent background reads like one on white paper."""
    rgba = np.zeros((40, 40, 4), np.uint8)    # transparent black everywhere...
    rgba[10:30, 18:22] = (0, 0, 0, 255)       # ...but an opaque black bar
    x = load_user_image(_save(tmp_path, "a.png", rgba, "RGBA"), 20)
    assert x.shape == (20, 20) and x.dtype == np.float32
    assert x[2, 2] == 0.0 and x[17, 3] == 0.0, "transparent paper must become background"
    assert x[10, 9:11].max() > 0.9, "the stroke must become ink"
    red = np.full((40, 40, 3), 255, np.uint8)
    red[10:30, 18:22] = (200, 0, 0)            # a red stroke on white
    y = load_user_image(_save(tmp_path, "red.png", red), 20)
    assert y[2, 2] == 0.0 and y[10, 9:11].max() > 0.5


# --------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("args, patterns", [
    (["train", "--epochs", 0], ["'--epochs'", "at least 1, not 0"]),
    (["train", "--epochs", -3], ["'--epochs'", "at least 1, not -3"]),
    (["train", "--batch-size", 0], ["'--batch-size'", "at least 1, not 0"]),
    (["train", "--steps-per-epoch", 0], ["'--steps-per-epoch'", "at least 1"]),
    (["train", "--distortions", -1], ["'--distortions'", "-1 is not in the range"]),
    (["train", "--seed", -1], ["'--seed'", "-1 is not in the range"]),
    (["eval", "--seed", -1], ["'--seed'", "-1 is not in the range"]),
    (["gradcheck", "--seed", -1], ["'--seed'", "-1 is not in the range"]),
    (["train", "--preset", "nope"], ["'--preset'", "'nope' is not one of", "tiny"]),
    (["train", "--backend", "nope"], ["'--backend'", "'nope' is not one of", "numpy"]),
    (["eval", "--backend", "nope"], ["'--backend'", "'nope' is not one of"]),
    (["verify", "--backend", "nope", "a.png", "b.png"], ["'--backend'", "is not one of"]),
    (["gradcheck", "--backend", "nope"], ["'--backend'", "is not one of"]),
    (["gradcheck", "--layer", "Nope"], ["unknown layer 'Nope'", "Conv2D"]),
    (["eval", "--trials", 0], ["--trials must be at least 1, not 0"]),
    (["train", "--resume", "nowhere"], ["nothing to resume", "last.npz does not exist"]),
    (["train", "--resume", "r", "--out", "o"], ["leave out --out"]),
])
def test_bad_options(args, patterns):
    assert_one_line_error(run(*args), 2, *patterns)


def test_odd_batch_size(fake_paper_root):
    result = run("train", "--preset", "tiny", "--batch-size", 3, "--data", fake_paper_root)
    assert_one_line_error(result, 2, "batch_size must be an even whole number", "not 3")


@pytest.mark.parametrize("ways, patterns", [
    (100, ["100-way trials need 100 characters per alphabet", "use at most 3 ways"]),
    (1, ["at least 2 ways, not 1"]),
])
def test_more_ways_than_an_alphabet_has(ways, patterns, tiny_ckpt, fake_paper_root, tmp_path):
    result = run("eval", tiny_ckpt, "--data", fake_paper_root, "--ways", ways,
                 "--cache-dir", tmp_path)
    assert_one_line_error(result, 2, *patterns)


def test_size_that_the_model_does_not_read(tiny_ckpt):
    assert_one_line_error(run("eval", tiny_ckpt, "--size", 50), 2, "reads 28px images")
    assert_one_line_error(run("eval", tiny_ckpt, "--baseline", "nn"), 2, "not both")


def _cupy_commands(ckpt, pngs, data):
    return [["train", "--data", data, "--backend", "cupy"],
            ["eval", ckpt, "--backend", "cupy"],
            ["verify", ckpt, pngs / "char1.png", pngs / "char2.png", "--backend", "cupy"],
            ["gradcheck", "--backend", "cupy"]]


def test_cupy_not_installed(tiny_ckpt, pngs, fake_paper_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    for command in _cupy_commands(tiny_ckpt, pngs, fake_paper_root):
        assert_one_line_error(run(*command), 2, "needs CuPy", "pip install", "--backend numpy")


def test_cupy_without_a_gpu(tiny_ckpt, pngs, fake_paper_root, monkeypatch):
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 0)
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    for command in _cupy_commands(tiny_ckpt, pngs, fake_paper_root):
        assert_one_line_error(run(*command), 2, "no CUDA device is usable", "--backend numpy")


# --------------------------------------------------------------------------------------
# Checkpoints


class _Trap:
    """Unpickling this touches a file: proof that a loader ran pickled code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _bad_checkpoints(folder, good):
    """name -> (path, exit status, message parts) for every kind of broken checkpoint."""
    ckpt = load_checkpoint(good)
    marker = folder / "pickle-ran"
    cases = {}

    def case(name, code, *patterns):
        cases[name] = (folder / name, code, patterns)
        return folder / name

    case("text.npz", 2, "not a tinysiamese checkpoint", "not a zip archive").write_text("hi")
    case("empty.npz", 2, "it is empty").write_bytes(b"")
    data = good.read_bytes()
    case("truncated.npz", 2, "is not a .npz checkpoint or is truncated").write_bytes(
        data[: len(data) // 2])
    np.savez(case("no_meta.npz", 2, "not a tinysiamese checkpoint", "no meta record"),
             x=np.zeros(3))
    np.savez(case("object.npz", 2, "holds pickled objects", "never loaded"),
             meta=np.array([_Trap(marker)], dtype=object))
    case("pickle.npz", 2, "it is a pickle, which is never loaded").write_bytes(
        pickle.dumps(_Trap(marker)))
    with open(case("array.npz", 2, "a single .npy array"), "wb") as f:
        np.save(f, np.zeros(3))
    np.savez(case("meta_list.npz", 2, "unknown checkpoint format"), meta=np.array("[1, 2]"))
    case("folder.npz", 2, "is a folder", "best.npz").mkdir()
    cases["missing.npz"] = (folder / "missing.npz", 2, ("does not exist", "runs/<run>/best.npz"))
    shapes = dict(ckpt.params, **{"conv1.W": np.zeros((3, 3), np.float32)})
    save_checkpoint(case("shapes.npz", 2, "its arrays do not match its config (preset 'tiny')",
                         "conv1.W has shape (3, 3)"), shapes, ckpt.meta)
    names = dict(ckpt.params)
    names["encoder.W"] = names.pop("conv1.W")
    save_checkpoint(case("names.npz", 2, "its arrays do not match", "missing ['conv1.W']",
                         "unexpected ['encoder.W']"), names, ckpt.meta)
    save_checkpoint(case("other_preset.npz", 2, "its arrays do not match its config (preset "
                         "'small')"), ckpt.params, {"config": PRESETS["small"].to_dict()})
    save_checkpoint(case("bad_config.npz", 2, "its config cannot build a model", "too small"),
                    ckpt.params, {"config": {"image_size": 28}})
    return cases, marker


@pytest.mark.parametrize("command", ["eval", "verify"])
def test_bad_checkpoints(command, tiny_ckpt, pngs, tmp_path):
    cases, marker = _bad_checkpoints(tmp_path, tiny_ckpt)
    for name, (path, code, patterns) in cases.items():
        extra = [pngs / "char1.png", pngs / "char2.png"] if command == "verify" else []
        result = run(command, path, *extra)
        assert_one_line_error(result, code, path.name, *patterns)
    assert not marker.exists(), "a pickle in a checkpoint was executed"


def test_good_checkpoint_still_works(tiny_ckpt, pngs):
    result = run("verify", tiny_ckpt, pngs / "char1.png", pngs / "char2.png")
    assert result.exit_code == 0, result.output
    assert "probability that char1.png and char2.png" in result.output


def test_verify_with_views_is_the_sigmoid_of_the_mean_logit(tiny_ckpt, pngs):
    model = model_from_checkpoint(load_checkpoint(tiny_ckpt), get_backend())
    a, b = (load_user_image(pngs / f"char{i}.png", 28)[None, None] for i in (1, 2))
    logits = [model.forward_logits(np.rot90(a[..., ::-1] if m else a, k, axes=(2, 3)).copy(),
                                   np.rot90(b[..., ::-1] if m else b, k, axes=(2, 3)).copy())[0]
              for k in range(4) for m in (False, True)]
    for views, wanted in ((1, logits[0]), (8, np.mean(logits))):
        result = run("verify", tiny_ckpt, pngs / "char1.png", pngs / "char2.png", "--views", views)
        assert result.exit_code == 0, result.output
        assert float(result.output.split()[0]) == pytest.approx(1 / (1 + np.exp(-wanted)), abs=1e-4)
        assert ("mean of 8 views" in result.output) == (views == 8)


# --------------------------------------------------------------------------------------
# Several checkpoints: an ensemble


def _tiny_checkpoint(path, seed, **overrides):
    cfg = build_config("tiny", overrides)
    model = SiameseNet(cfg.network, backend=get_backend(), rng=np.random.default_rng(seed))
    save_checkpoint(path, {k: np.asarray(v) for k, v in model.params().items()},
                    {"config": cfg.to_dict()})
    return path, model


def test_verify_with_two_checkpoints_is_the_sigmoid_of_their_mean_logit(tiny_ckpt, tmp_path, pngs):
    other, model_b = _tiny_checkpoint(tmp_path / "other.npz", seed=1)
    model_a = model_from_checkpoint(load_checkpoint(tiny_ckpt), get_backend())
    a, b = (load_user_image(pngs / f"char{i}.png", 28)[None, None] for i in (1, 2))
    logit_a, logit_b = (m.forward_logits(a, b)[0] for m in (model_a, model_b))
    assert abs(logit_a - logit_b) > 1e-3, "the two nets must disagree for the test to tell"
    result = run("verify", tiny_ckpt, other, pngs / "char1.png", pngs / "char2.png")
    assert result.exit_code == 0, result.output
    wanted = 1 / (1 + np.exp(-(logit_a + logit_b) / 2))
    assert float(result.output.split()[0]) == pytest.approx(wanted, abs=1e-4)
    assert f"model {tiny_ckpt.parent.name}/tiny.npz + {tmp_path.name}/other.npz" in result.output


def test_eval_with_two_checkpoints_scores_their_ensemble(tiny_ckpt, tmp_path, fake_paper_root):
    other, _ = _tiny_checkpoint(tmp_path / "other.npz", seed=1)
    args = ["--data", fake_paper_root, "--ways", 3, "--trials", 12, "--cache-dir", tmp_path]
    result = run("eval", tiny_ckpt, other, *args)
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 models" in result.output and "other.npz" in result.output


@pytest.mark.parametrize("command", ["eval", "verify", "show-trial"])
def test_an_ensemble_refuses_nets_of_two_image_sizes(command, tiny_ckpt, tmp_path, pngs):
    wide, _ = _tiny_checkpoint(tmp_path / "wide.npz", seed=1, image_size=36)
    extra = [pngs / "char1.png", pngs / "char2.png"] if command == "verify" else []
    assert_one_line_error(run(command, tiny_ckpt, wide, *extra), 2, "one image size",
                          "tiny.npz 28px, wide.npz 36px")


def test_checkpoint_files_get_the_usual_mode(tmp_path):
    """atomic_write goes through mkstemp (0600): the result must not stay private."""
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.npz", {"w": np.zeros(2)}, {"config": {}})
    finally:
        os.umask(old)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o644


def test_running_out_of_memory_is_one_line(tiny_ckpt, pngs, monkeypatch):
    def too_big(self, x):
        raise MemoryError

    monkeypatch.setattr(SiameseNet, "encode", too_big)
    assert_one_line_error(run("verify", tiny_ckpt, pngs / "char1.png", pngs / "char2.png"), 1,
                          "out of memory", "make it smaller")
