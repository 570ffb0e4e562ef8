"""Pictures: learning curves, one-shot trials, filter grids, and the commands that save them.

Pixel tests find things by colour, not by the layout code: candidates are filled with
distinct uniform greys, so a test can locate candidate i and look at the frame around it.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import write_fake_split
from PIL import Image

from tinysiamese import characters, drawing, plots
from tinysiamese.backend import get_backend
from tinysiamese.checkpoint import save_checkpoint
from tinysiamese.cli.pictures import _loss_heading, _run_title
from tinysiamese.config import PRESETS, build_config
from tinysiamese.model import SiameseNet
from cli_helpers import assert_one_line_error, run, train_run




def pixels(image) -> np.ndarray:
    """(H, W, 3) int array of an RGB image or PNG path."""
    image = Image.open(image) if not isinstance(image, Image.Image) else image
    return np.asarray(image.convert("RGB")).astype(int)


def near(a: np.ndarray, colour, tol: int = 0) -> np.ndarray:
    """(H, W) bool: pixels within ``tol`` of ``colour`` in every channel."""
    return (np.abs(a - np.array(colour)) <= tol).all(axis=-1)


def is_grey(a: np.ndarray) -> np.ndarray:
    return (a[..., 0] == a[..., 1]) & (a[..., 1] == a[..., 2])


def metrics_records(n_epochs: int) -> list[dict]:
    return [{"epoch": e, "loss": 0.7 * math.exp(-e / 10) + 0.05, "train_accuracy": 0.6 + e / 200,
             "val_accuracy": min(0.9, 0.3 + e / 60), "lr": {"conv1": 0.01}, "momentum": 0.9}
            for e in range(1, n_epochs + 1)]


# --------------------------------------------------------------------------------------
# Learning curves


@pytest.mark.parametrize("lo, hi, integer, expected", [
    (0, 0.73, False, [0, 0.2, 0.4, 0.6, 0.8]),
    (0.35, 0.6, False, [0.35, 0.4, 0.45, 0.5, 0.55, 0.6]),
    (0, 50, True, [0, 10, 20, 30, 40, 50]),
    (0, 4, True, [0, 1, 2, 3, 4]),
    (0.5, 0.5, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # no range: widened around the value
])
def test_nice_ticks_by_hand(lo, hi, integer, expected):
    ticks = drawing.nice_ticks(lo, hi, max_ticks=6, integer=integer)
    assert ticks == pytest.approx(expected), f"ticks for [{lo}, {hi}]: {ticks}"


@pytest.mark.parametrize("value, step, percent, expected", [
    (0.75, 0.25, False, "0.75"),  # was "0.8": one decimal for every step under 1
    (1.25, 0.25, False, "1.25"),
    (0.4, 0.2, False, "0.4"),
    (0.45, 0.05, False, "0.45"),
    (7.5, 2.5, False, "7.5"),
    (20, 10, False, "20"),
    (0.85, 0.05, True, "85%"),
    (0.825, 0.025, True, "82.5%"),
])
def test_tick_labels_show_the_step_s_decimals(value, step, percent, expected):
    assert drawing.tick_label(value, step, percent) == expected


@pytest.mark.parametrize("n_epochs", [1, 2, 37, 120])
def test_learning_curves_draw_both_curves_at_the_asked_size(n_epochs):
    image = plots.learning_curves(metrics_records(n_epochs), title="a run")
    assert image.size == (800, 500) and image.mode == "RGB"
    a = pixels(image)
    for name, colour in [("loss", plots.LOSS_COLOUR), ("validation", plots.VAL_COLOUR),
                         ("train accuracy", plots.TRAIN_ACC_COLOUR)]:
        n = near(a, colour, tol=12).sum()
        assert n > 20, f"the {name} curve has only {n} pixels of its colour"
    assert plots.learning_curves(metrics_records(3), size=(640, 400)).size == (640, 400)


def test_learning_curves_take_gaps_missing_keys_and_repeated_epochs():
    records = metrics_records(6)
    records[2]["loss"] = float("nan")          # a diverged epoch
    del records[3]["train_accuracy"]           # an older run without the key
    records.append(dict(records[4], val_accuracy=0.1))  # a resumed run logs epoch 5 again
    image = plots.learning_curves(records)
    assert image.size == (800, 500)
    only_loss = [{"epoch": 1, "loss": 0.69}]   # no accuracy at all: still a picture
    assert plots.learning_curves(only_loss).size == (800, 500)


def test_learning_curves_refuse_no_epochs():
    with pytest.raises(ValueError, match="no epochs"):
        plots.learning_curves([])


def test_read_metrics_leaves_out_a_half_written_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"epoch": 1}) + "\n\n" + json.dumps({"epoch": 2}) + '\n{"epo')
    assert [r["epoch"] for r in plots.read_metrics(path)] == [1, 2]
    path.write_text('{"epo\n' + json.dumps({"epoch": 2}) + "\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        plots.read_metrics(path)


# --------------------------------------------------------------------------------------
# One trial


N, SIZE = 20, 28
GREYS = [int(np.rint(255 * (1 - (0.05 + 0.04 * i)))) for i in range(N)]  # 242 ... 48, all apart


def uniform_trial():
    """Candidates filled with distinct uniform inks (greys GREYS[i]); the test darker still."""
    inks = 0.05 + 0.04 * np.arange(N, dtype=np.float32)
    support = np.broadcast_to(inks[:, None, None], (N, SIZE, SIZE))  # (N, H, W)
    test = np.full((SIZE, SIZE), 0.95, np.float32)
    scores = np.linspace(0.1, 0.9, N)
    return test, support, scores


def frame_colours(a: np.ndarray, i: int) -> set:
    """The colours within 10 px outside candidate i, on its four sides (found by its grey)."""
    ys, xs = np.nonzero(is_grey(a) & (np.abs(a[..., 0] - GREYS[i]) <= 1))
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    assert (y1 - y0 + 1, x1 - x0 + 1) == (84, 84), f"candidate {i} drawn {x1 - x0 + 1} px wide"
    ym, xm = (y0 + y1) // 2, (x0 + x1) // 2
    bands = [a[y0 - 10:y0, xm], a[y1 + 1:y1 + 11, xm], a[ym, x0 - 10:x0], a[ym, x1 + 1:x1 + 11]]
    return {tuple(p) for band in bands for p in band}


COLOURS = {"green": plots.GREEN, "blue": plots.BLUE, "red": plots.RED}


@pytest.mark.parametrize("answer, chosen", [(7, 7), (7, 12), (0, 19), (19, 0)])
def test_trial_frames_the_answer_and_the_choice_in_their_colours(answer, chosen):
    test, support, scores = uniform_trial()
    image = plots.trial_image(test, support, scores, answer, chosen, title="a trial")
    assert 600 <= image.width <= 1200 and 450 <= image.height <= 900, image.size
    a = pixels(image)
    for i in range(N):
        found = {name for name, c in COLOURS.items() if c in frame_colours(a, i)}
        expected = set()
        if i == answer:
            expected.add("green")
        if i == chosen:
            expected.add("blue" if chosen == answer else "red")
        assert found == expected, f"candidate {i}: frames {found}, expected {expected}"


def test_trial_draws_strokes_dark_on_white():
    test, support, _ = uniform_trial()
    test = np.zeros((SIZE, SIZE), np.float32)
    test[10:18, 4:24] = 1.0                       # a black bar on an empty page
    image = plots.trial_image(test, support, np.zeros(N), 0, 0)
    a = pixels(image)
    assert near(a, (0, 0, 0), tol=2).sum() > 1000, "the test's stroke is not drawn black"
    assert (a == 255).all(axis=-1).mean() > 0.5, "the page is not mostly white"


def test_trial_scores_need_not_be_probabilities():
    test, support, _ = uniform_trial()
    image = plots.trial_image(test, support, np.linspace(-30, 12, N), 3, 3)  # logits
    assert image.width > 600


@pytest.mark.parametrize("kwargs, message", [
    ({"support": np.zeros((N, SIZE, SIZE + 1))}, "same H, W"),
    ({"scores": np.zeros(N - 1)}, "one score per candidate"),
    ({"answer": N}, "answer must be"),
    ({"chosen": -1}, "chosen must be"),
])
def test_trial_refuses_inconsistent_input(kwargs, message):
    test, support, scores = uniform_trial()
    args = {"test": test, "support": support, "scores": scores, "answer": 0, "chosen": 0}
    with pytest.raises(ValueError, match=message):
        plots.trial_image(**{**args, **kwargs})


# --------------------------------------------------------------------------------------
# Filters


def grey_cells(a: np.ndarray) -> list[np.ndarray]:
    """The grey blocks of a picture on a non-grey backdrop, row by row: each filter's cell."""
    grey = is_grey(a)

    def runs(v):
        edges = np.flatnonzero(np.diff(np.r_[0, v.astype(int), 0]))
        return list(zip(edges[::2], edges[1::2]))

    return [a[r0:r1, c0:c1, 0] for r0, r1 in runs(grey.any(axis=1))
            for c0, c1 in runs(grey.any(axis=0)) if grey[r0:r1, c0:c1].any()]


@pytest.mark.parametrize("F, K", [(4, 5), (7, 3), (32, 5), (64, 10)])
def test_filter_grid_has_one_cell_per_filter(F, K):
    W = np.random.default_rng(F).standard_normal((F, 1, K, K))
    image = plots.filter_grid(W)
    cells = grey_cells(pixels(image))
    assert len(cells) == F, f"{len(cells)} cells for {F} filters"
    assert all(c.shape[0] >= 40 for c in cells), "filters are not enlarged enough to see"
    assert image.width <= 1000


def test_filter_grid_scales_each_filter_to_its_own_range():
    base = np.arange(25, dtype=np.float64).reshape(1, 5, 5) - 3.0
    W = np.stack([base, 1e-4 * base + 7, -50 * base, np.zeros((1, 5, 5))])  # (4, 1, 5, 5)
    cells = grey_cells(pixels(plots.filter_grid(W)))
    for i in range(3):
        assert cells[i].min() == 0 and cells[i].max() == 255, f"filter {i} not stretched"
    assert cells[0][0, 0] == 0 and cells[2][0, 0] == 255, "sign of the weights lost"
    assert (cells[3] == 128).all(), "a constant filter is not mid-grey"


def test_filter_grid_takes_channels_and_refuses_other_shapes():
    assert plots.filter_grid(np.ones((3, 2, 4, 4))).width > 0
    with pytest.raises(ValueError, match=r"\(F, C, K, K\)"):
        plots.filter_grid(np.ones((3, 4, 4)))


def test_save_png_is_atomic_and_makes_the_folder(tmp_path):
    path = plots.save_png(Image.new("RGB", (3, 2)), tmp_path / "new" / "x.png")
    assert Image.open(path).size == (3, 2)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"], "a temporary file was left"


# --------------------------------------------------------------------------------------
# The commands


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained tiny model saved as a checkpoint: 4 first-layer filters of 1x5x5."""
    model = SiameseNet(PRESETS["tiny"].network, backend=get_backend("numpy"),
                       rng=np.random.default_rng(0))
    path = tmp_path_factory.mktemp("ckpt") / "best.npz"
    save_checkpoint(path, model.params(), {"config": PRESETS["tiny"].to_dict()})
    return path


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """(data root, run folder): a tiny model trained for 2 short epochs on fake Omniglot
    whose evaluation alphabets (the paper's 20) have 20 characters each, as 20-way needs."""
    root = tmp_path_factory.mktemp("fake-omniglot")
    write_fake_split(root, "background", {"Aa": 4, "Bb": 4, "Cc": 4})
    names = sorted(characters.VAL_ALPHABETS + characters.TEST_ALPHABETS)
    write_fake_split(root, "evaluation", {name: 20 for name in names}, first_char=100)
    out = root / "run"
    cfg = build_config("tiny", {"epochs": 2, "pairs_per_epoch": 64, "val_trials": 40,
                                 "test_trials": 20})
    with pytest.MonkeyPatch.context() as mp:  # module scope: keep the cache out of ~/.cache
        mp.setenv("TINYSIAMESE_CACHE", str(root / "cache"))
        train_run(cfg, data_root=root, out_dir=out)
    return root, out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as `tinysiamese train` leaves it, with 12 epochs of metrics."""
    path = tmp_path_factory.mktemp("run")
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics_records(12)))
    (path / "config.json").write_text(json.dumps({"preset": "tiny"}))
    (path / "summary.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    return path


@pytest.mark.parametrize("command", ["plot", "show-trial", "show-filters"])
def test_picture_commands_have_help_with_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Example" in result.output
    assert f"tinysiamese {command} " in result.output


def test_plot_writes_curves_into_the_run_folder(run_dir, tmp_path):
    result = run("plot", run_dir)
    assert result.exit_code == 0, result.output
    assert Image.open(run_dir / "curves.png").size == (800, 500)
    result = run("plot", run_dir, "--out", tmp_path / "docs" / "curves.png")
    assert result.exit_code == 0 and (tmp_path / "docs" / "curves.png").is_file(), result.output


@pytest.mark.parametrize("setup, code, message", [
    ("missing", 2, "does not exist"),
    ("file", 2, "is not a folder"),
    ("no-metrics", 2, "has no metrics.jsonl"),
    ("empty", 2, "holds no epoch yet"),
    ("bad-line", 2, "line 1 is not JSON"),
])
def test_plot_refuses_what_is_not_a_run(tmp_path, setup, code, message):
    target = tmp_path / "run"
    if setup == "file":
        target.write_text("x")
    elif setup != "missing":
        target.mkdir()
        if setup == "empty":
            (target / "metrics.jsonl").write_text("")
        if setup == "bad-line":
            (target / "metrics.jsonl").write_text('{"epo\n{"epoch": 1}\n')
    assert_one_line_error(run("plot", target), code, message)


def test_plot_refuses_an_out_that_is_not_png(run_dir):
    assert_one_line_error(run("plot", run_dir, "--out", "curves.jpg"), 2, "ending in .png")


def test_show_filters_draws_every_filter(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("show-filters", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert len(grey_cells(pixels(tmp_path / "filters.png"))) == 4
    result = run("show-filters", tiny_checkpoint, "--out", "docs/filters.png")
    assert result.exit_code == 0 and (tmp_path / "docs" / "filters.png").is_file()


def test_show_filters_refuses_what_is_not_a_checkpoint(tmp_path):
    (tmp_path / "x.npz").write_text("not a checkpoint")
    assert_one_line_error(run("show-filters", tmp_path / "x.npz", "--out", tmp_path / "f.png"),
                          2, "not a tinysiamese checkpoint")
    assert_one_line_error(run("show-filters", tmp_path / "none.npz"), 2, "does not exist")


def test_show_trial_draws_the_trial_it_reports(fake_run, tmp_path):
    root, run_dir = fake_run
    out = tmp_path / "trial.png"
    args = ["show-trial", run_dir / "best.npz", "--data", root, "--seed", 3,
            "--cache-dir", root / "cache", "--out", out]
    result = run(*args)
    assert result.exit_code == 0, result.output
    verdict = result.output.strip().splitlines()[-1]
    assert verdict.startswith(("right: ", "wrong: ")), verdict
    a = pixels(out)
    assert near(a, plots.GREEN).sum() > 300, "no green frame around the answer"
    wrong = near(a, plots.RED).sum() > 300
    assert wrong == verdict.startswith("wrong"), f"red frame {wrong} for {verdict!r}"
    again = run(*args[:-1], tmp_path / "again.png")
    assert (pixels(tmp_path / "again.png") == a).all(), "the same seed drew another picture"
    assert again.output.splitlines()[-1] == verdict
    viewed = run(*args[:-1], tmp_path / "views.png", "--views", 8)
    assert viewed.exit_code == 0, viewed.output
    assert viewed.output.splitlines()[-1] != verdict, "8 views gave the very same P(same)"


def test_plot_reads_what_train_writes(fake_run, tmp_path):
    _, run_dir = fake_run
    result = run("plot", run_dir, "--out", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    a = pixels(tmp_path / "curves.png")
    for colour in (plots.LOSS_COLOUR, plots.VAL_COLOUR, plots.TRAIN_ACC_COLOUR):
        assert near(a, colour, tol=12).sum() > 20, f"no curve of colour {colour}"
    assert "preset tiny, test 20-way" in _run_title(run_dir)


def test_show_trial_needs_the_data(tiny_checkpoint, tmp_path):
    assert_one_line_error(run("show-trial", tiny_checkpoint, "--data", tmp_path / "nowhere"),
                          2, "does not exist")
    assert_one_line_error(run("show-trial", tiny_checkpoint, "--seed", -1), 2, "--seed")


def test_pictures_on_the_real_data(tiny_checkpoint, omniglot_dir, tmp_path):
    for split in ("test", "val"):
        out = tmp_path / f"{split}.png"
        result = run("show-trial", tiny_checkpoint, "--data", omniglot_dir, "--split", split,
                     "--out", out)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1].startswith(("right: ", "wrong: "))
        assert 600 <= Image.open(out).width <= 1200


def test_plot_names_the_one_shot_softmax_in_the_loss_heading(run_dir, tmp_path):
    """A run trained with group.one_shot_weight had more than the cross-entropy as its loss:
    the heading says so, and the picture differs from the same metrics without it."""
    one_shot = tmp_path / "one-shot"
    one_shot.mkdir()
    (one_shot / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text())
    (one_shot / "config.json").write_text(json.dumps(
        {"preset": "tiny", "loader": "groups", "group": {"one_shot_weight": 3.0}}))
    assert _loss_heading(one_shot) == "training loss (cross-entropy + 3 x softmax)"
    assert _loss_heading(run_dir) == "training loss (cross-entropy per pair)"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text())
    (plain / "config.json").write_text(json.dumps({"preset": "tiny"}))
    for folder in (one_shot, plain):
        assert run("plot", folder).exit_code == 0
    pixels = [np.asarray(Image.open(folder / "curves.png")) for folder in (one_shot, plain)]
    assert (pixels[0] != pixels[1]).any(), "the heading did not reach the picture"
