"""``tinysiamese plot | show-trial | show-filters``: pictures (PNG, drawn with Pillow)."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from .. import omniglot, oneshot, ops, plots
from ..config import ConfigError, config_from_dict
from ..trials import within_alphabet_trials
from .options import (CONTEXT, backend_option, cache_dir_option, data_option, load_models,
                      scorer, short, short_all, views_option)


def _png_path(ctx, param, value):
    if value is not None and value.suffix.lower() != ".png":
        raise click.BadParameter(f"the picture is written as PNG; give a name ending in .png, "
                                 f"not {value.name}")
    return value


OUT_HELP = "PNG file to write (its folder is made if missing)"


def _save_picture(image, out: Path) -> None:
    try:
        plots.save_png(image, out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out} ({image.width}x{image.height})")


def _run_file(run_dir: Path, name: str) -> dict:
    """A JSON file of a run folder (config.json, summary.json) as a dict; {} if unreadable."""
    try:
        data = json.loads((run_dir / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _loss_heading(run_dir: Path) -> str:
    """What the run's training loss was, from its config.json: the cross-entropy per pair,
    plus w times the one-shot softmax when the config set loader.group.one_shot_weight w."""
    try:
        loader = config_from_dict(_run_file(run_dir, "config.json")).loader
    except ConfigError:
        loader = None
    weight = loader.group.one_shot_weight if loader and loader.kind == "groups" else 0
    if weight:
        return f"training loss (cross-entropy + {weight:g} x softmax)"
    return "training loss (cross-entropy per pair)"


def _run_title(run_dir: Path) -> str:
    """"<run>: preset small, test 20-way 87.5%", from what the run folder holds."""
    parts = []
    preset = _run_file(run_dir, "config.json").get("preset")
    if preset:
        parts.append(f"preset {preset}")
    test = _run_file(run_dir, "summary.json").get("test")
    try:
        parts.append(f"test 20-way {100 * test['accuracy']:.1f}%")
    except (KeyError, TypeError):
        pass
    name = run_dir.resolve().name
    return f"{name}: {', '.join(parts)}" if parts else name


@click.command("plot", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=_png_path, help=OUT_HELP + " [default: RUN_DIR/curves.png].")
def plot_command(run_dir, out):
    """Learning curves of a run: training loss and validation one-shot accuracy per epoch.

    Reads RUN_DIR/metrics.jsonl, to which `tinysiamese train` adds a line after every
    epoch, so it also works while the run goes on. The best validation epoch is marked.

    \b
    Examples:
      tinysiamese plot runs/my-run
      tinysiamese plot runs/my-run --out docs/curves.png
    """
    if not run_dir.exists():
        raise click.UsageError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise click.UsageError(f"{run_dir} is not a folder; give a run folder written by "
                               "`tinysiamese train`, e.g. runs/<run>")
    metrics_path = run_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        raise click.UsageError(f"{run_dir} has no metrics.jsonl: not a run folder, or no "
                               "epoch has finished yet")
    try:
        metrics = plots.read_metrics(metrics_path)
    except OSError as exc:
        raise click.ClickException(f"cannot read {metrics_path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(str(exc)) from None
    if not metrics:
        raise click.UsageError(f"{metrics_path} holds no epoch yet; plot again after the first")
    _save_picture(plots.learning_curves(metrics, title=_run_title(run_dir),
                                        loss_heading=_loss_heading(run_dir)),
                  out or run_dir / "curves.png")


@click.command("show-trial", context_settings=CONTEXT)
@click.argument("checkpoints", nargs=-1, type=click.Path(path_type=Path))
@data_option()
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The paper's set to draw the trial from.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which trial: the alphabet, characters, drawers and the answer's place.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("trial.png"),
              callback=_png_path, show_default=True, help=OUT_HELP + ".")
@backend_option
@cache_dir_option
@views_option("each pair")
def show_trial_command(checkpoints, data_path, split, seed, out, backend_name, cache_dir, views):
    """Draw one 20-way within-alphabet trial as the model answers it, and say if it is right.

    The picture shows the test character, the 20 candidates of its alphabet with the
    model's probability that each is the same character, the right answer framed green
    and the model's choice framed blue (red when wrong). Without CHECKPOINTS the model
    shipped with the package answers; several answer as an ensemble.

    \b
    Examples:
      tinysiamese show-trial --seed 3
      tinysiamese show-trial runs/my-run/best.npz --data ~/data/omniglot --out trial.png
    """
    models = load_models(checkpoints, backend_name)
    n_way = 20
    root = omniglot.find_data_root(data_path)
    subset = omniglot.load_paper_split(root, split, models[0][0].network.image_size,
                                       cache_dir=cache_dir)
    trials = within_alphabet_trials(subset, n_way, n_way, seed)  # one set of N tests
    k = int(np.random.default_rng([seed, 1]).integers(trials.n_trials))   # which test of the set
    test, support, answer = trials.test[k], trials.support[k], int(trials.answer[k])
    x1 = np.repeat(test[None, None], n_way, axis=0)                       # (N, 1, H, W)
    score, name = scorer(models)
    logits = oneshot.with_views(score, views)(x1, support[:, None])  # (N,)
    if not np.isfinite(logits).all():
        raise click.ClickException(f"the {name} gives non-finite scores (diverged?)")
    p = ops.sigmoid(np, logits)
    chosen = int(np.argmax(logits))  # ties go to the first, as in `tinysiamese eval`
    alphabet = trials.alphabet[k].replace("_", " ")
    image = plots.trial_image(test, support, p, answer, chosen, score_label="P(same)",
                              title=f"{alphabet}: a {n_way}-way within-alphabet trial (Omniglot "
                                    f"{split} set, seed {seed}, model "
                                    f"{short_all(models)}"
                                    f"{f', {views} views' if views > 1 else ''})")
    _save_picture(image, out)
    said = f"the model chose candidate {chosen + 1} of {n_way}, P(same) {p[chosen]:.3f}"
    if chosen == answer:
        click.echo(f"right: {said}")
    else:
        click.echo(f"wrong: {said}; the answer is candidate {answer + 1}, P(same) {p[answer]:.3f}")


@click.command("show-filters", context_settings=CONTEXT)
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("filters.png"),
              callback=_png_path, show_default=True, help=OUT_HELP + ".")
def show_filters_command(checkpoint, out):
    """Draw the first convolution layer's filters as a grid, each scaled to its own range.

    Without CHECKPOINT the filters of the model shipped with the package are drawn.

    \b
    Examples:
      tinysiamese show-filters
      tinysiamese show-filters runs/my-run/best.npz --out docs/filters.png
    """
    model, path = load_models([checkpoint] if checkpoint else [], "numpy")[0]
    W = model.backend.to_numpy(model.params()["conv1.W"])  # (F, C, K, K)
    F, C, K, _ = W.shape
    _save_picture(plots.filter_grid(W, title=f"First-layer filters of {short(path)}: "
                                             f"{F} of {C}x{K}x{K}"), out)


COMMANDS = [plot_command, show_trial_command, show_filters_command]
