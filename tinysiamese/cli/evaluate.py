"""``tinysiamese eval | verify``: one-shot accuracy on N-way trials, and one pair's answer."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from .. import baselines, mnist, omniglot, oneshot, ops
from ..characters import skipped_note
from ..images import load_user_image
from ..lake_runs import load_lake_runs
from ..trials import within_alphabet_trials
from .options import (CONTEXT, backend_option, cache_dir_option, data_option, json_option,
                      load_models, model_name, scorer, scoring_options, views_option)


def _load_trials(data_path, split, runs, mnist_path, ways, n_trials, seed, size, cache_dir,
                 on_bad_image="error"):
    """Build the trials the options ask for -> (Trials, a one-line description)."""
    if runs is not None and mnist_path is not None:
        raise ValueError("choose one trial source: --runs or --mnist (or Omniglot via --data)")
    if (runs is not None or mnist_path is not None) and data_path is not None:
        raise ValueError("--data picks Omniglot trials; leave it out with --runs or --mnist")
    if mnist_path is not None:
        if ways not in (None, 10):
            raise ValueError("MNIST trials are always 10-way (one image per digit)")
        images, labels = mnist.load_mnist(mnist_path)
        trials = mnist.mnist_trials(images, labels, n_trials, seed, size)
        return trials, f"MNIST t10k, 10-way, {n_trials} trials, seed {seed}, {size}px"
    if runs is not None:  # --runs alone: where `tinysiamese data download` puts the file
        runs = Path(runs) if runs else omniglot.default_data_root() / "all_runs.zip"
    if runs is not None:
        if ways not in (None, 20):
            raise ValueError("Lake's runs are 20-way; leave out --ways")
        trials = load_lake_runs(runs, size)
        return trials, (f"Lake's runs in {runs}, {trials.n_way}-way, {trials.n_trials} trials, "
                        f"{size}px")
    root = omniglot.find_data_root(data_path)
    subset = omniglot.load_paper_split(root, split, size, cache_dir=cache_dir,
                                       on_bad_image=on_bad_image)
    if skipped_note(subset):
        click.echo(skipped_note(subset), err=True)
    ways = 20 if ways is None else ways
    trials = within_alphabet_trials(subset, ways, n_trials, seed)
    return trials, (f"Omniglot {split} set, within-alphabet, {ways}-way, {n_trials} trials, "
                    f"seed {seed}, {size}px")


def _print_result(result: oneshot.OneShotResult, scorer: str, source: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"scorer": scorer, "source": source, **result.to_dict()}))
        return
    low, high = result.ci95
    click.echo(f"{scorer} on {source}")
    click.echo(f"accuracy {100 * result.accuracy:.1f}% ({result.n_correct}/{result.n_trials}), "
               f"95% CI {100 * low:.1f}-{100 * high:.1f}%")
    if len(result.per_alphabet) > 1:
        width = max(len(name) for name in result.per_alphabet)
        for name, r in result.per_alphabet.items():
            click.echo(f"  {name:{width}s} {100 * r['accuracy']:5.1f}% of {r['trials']}")


@click.command("eval", context_settings=CONTEXT)
@click.argument("checkpoints", nargs=-1, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Choice(["nn", "hausdorff"]), default=None,
              help="Score with 1-nearest-neighbour on pixels, or Lake's modified Hausdorff "
                   "distance, instead of a model.")
@data_option(" Trials are within-alphabet.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The paper's set to draw Omniglot trials from.")
@click.option("--runs", type=click.Path(), default=None, is_flag=False, flag_value="",
              help="Lake's all_runs.zip (or its unzipped folder): his "
              "official 400 trials; --runs alone reads the one `data download` keeps.")
@click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None,
              help="Folder with MNIST's t10k IDX files: 10-way trials.")
@click.option("--ways", type=int, default=None, help="Ways per Omniglot trial [default: 20].")
@click.option("--trials", "n_trials", type=int, default=400, show_default=True,
              help="Number of trials.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for drawing the trials.")
@click.option("--size", type=int, default=None,
              help="Image side in pixels [default: the model's input; 105 for baselines].")
@backend_option
@cache_dir_option
@click.option("--skip-bad-images", is_flag=True,
              help="Leave out unreadable Omniglot images (and their characters) instead of "
                   "stopping; how many were left out is reported.")
@views_option("each pair")
@json_option
def eval_command(checkpoints, baseline, data_path, split, runs, mnist_path, ways, n_trials, seed,
                 size, backend_name, cache_dir, skip_bad_images, views, as_json):
    """One-shot accuracy of a model (or a baseline) on N-way trials, with a 95% interval.

    CHECKPOINTS are .npz files written by `tinysiamese train`; without one (and without
    --baseline) the model shipped with the package is scored. Several make an ensemble:
    each pair is scored as the mean of their logits. The interval is Wilson's.

    \b
    Examples:
      tinysiamese eval
      tinysiamese eval runs/my-run/best.npz --data ~/data/omniglot --json
      tinysiamese eval runs/run-a/best.npz runs/run-b/best.npz
      tinysiamese eval --views 8
      tinysiamese eval --mnist ~/data/mnist
      tinysiamese eval --runs                         # after `tinysiamese data download`
      tinysiamese eval --baseline hausdorff --runs all_runs.zip
      tinysiamese eval --baseline nn --mnist ~/data/mnist --json
    """
    if baseline is not None and checkpoints:
        raise click.UsageError("give CHECKPOINTS or --baseline, not both")
    if n_trials < 1:
        raise click.UsageError(f"--trials must be at least 1, not {n_trials}")
    if baseline is not None:
        score = {"nn": baselines.nn_score, "hausdorff": baselines.hausdorff_score}[baseline]
        name, size = f"baseline {baseline}", size or omniglot.NATIVE_SIZE
    else:
        models = load_models(checkpoints, backend_name)
        model_size = models[0][0].network.image_size
        if size not in (None, model_size):
            raise click.UsageError(f"this model reads {model_size}px images; leave out --size")
        score, name = scorer(models)
        size = model_size
    if views > 1:
        score, name = oneshot.with_views(score, views), f"{name}, mean of {views} views"
    trials, source = _load_trials(data_path, split, runs, mnist_path, ways, n_trials, seed,
                                  size, cache_dir, "skip" if skip_bad_images else "error")
    _print_result(oneshot.evaluate(score, trials), name, source, as_json)


@click.command("verify", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@scoring_options("the pair")
def verify_command(files, backend_name, views, as_json):
    """The probability that two images show the same character: [CHECKPOINT...] IMAGE_A IMAGE_B.

    Any PNG or JPEG works: colour and transparency are flattened, dark-on-light drawings
    are inverted, and the images are resized to the model's input. Without CHECKPOINT the
    model shipped with the package is used; several checkpoints answer as an ensemble
    (the sigmoid of the mean of their logits). With --json, one object {"a", "b",
    "probability", "same", "model", "views"}.

    \b
    Examples:
      tinysiamese verify a.png b.png
      tinysiamese verify a.png b.png --views 8
      tinysiamese verify runs/my-run/best.npz a.png b.png --json
    """
    if len(files) < 2:
        raise click.UsageError(f"give two images (and optionally checkpoints first), got {len(files)} path")
    *checkpoints, image_a, image_b = files
    models = load_models(checkpoints, backend_name)
    size = models[0][0].network.image_size
    a, b = (load_user_image(f, size) for f in (image_a, image_b))
    score, _ = scorer(models)
    logit = oneshot.with_views(score, views)(a[None, None], b[None, None])
    p = float(ops.sigmoid(np, logit)[0])
    if as_json:
        click.echo(json.dumps({"a": str(image_a), "b": str(image_b), "probability": p,
                               "same": p >= 0.5, "model": model_name(models), "views": views}))
        return
    click.echo(f"{p:.4f}  probability that {image_a.name} and {image_b.name} show the same character "
               f"({'same' if p >= 0.5 else 'different'}; model {model_name(models, views)})")


COMMANDS = [eval_command, verify_command]
