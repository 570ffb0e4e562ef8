"""The command line: ``tinysiamese train | eval | verify | gradcheck | data | plot ...``.

The commands only parse options and print; the work happens in the modules. Errors in
what the user asked for (a missing path, a bad option) exit with status 2, failures of
the data or the download with status 1 - each as one line, never a traceback.
"""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from . import __version__, baselines, download as dl, gradcheck, mnist, omniglot, oneshot, ops, plots
from . import train as train_mod
from .archive import DataError
from .backend import BACKEND_NAMES, BackendUnavailableError, get_backend
from .characters import skipped_note
from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .images import ImageError, load_user_image
from .lake_runs import load_lake_runs
from .model import PRESETS, preset_config
from .pretrained import pretrained_path
from .trials import within_alphabet_trials

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DATA_HELP = ("Folder holding the Omniglot archives "
             "[default: $TINYSIAMESE_DATA or ~/.cache/tinysiamese/omniglot].")


def views_option(scored: str):
    """The --views option (an int in oneshot.VIEW_COUNTS) of a command that scores ``scored``."""
    return click.option(
        "--views", type=click.Choice([str(v) for v in oneshot.VIEW_COUNTS]), default="1",
        show_default=True, callback=lambda ctx, param, value: int(value),
        help=f"Score {scored} as the mean over copies of it, both images turned or mirrored "
             "alike: 2 mirrored, 4 its quarter turns, 8 both; 1 is the paper's single look.")


@contextmanager
def _errors():
    """Turn the modules' exceptions into click's one-line errors."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    except (DataError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="tinysiamese")
def main():
    """Siamese networks for one-shot image recognition (Koch et al. 2015), from scratch.

    \b
    Start with:
      tinysiamese verify a.png b.png           # the model shipped with the package
      tinysiamese data download                # the Omniglot archives
      tinysiamese train                        # train the small preset (CPU, < 1 hour)
      tinysiamese eval runs/<run>/best.npz     # 20-way one-shot accuracy
      tinysiamese gradcheck                    # prove every backward pass
    """


# --------------------------------------------------------------------------------------
# tinysiamese data ...


@main.group(context_settings=CONTEXT)
def data():
    """Get and inspect the Omniglot data."""


@data.command("download", context_settings=CONTEXT)
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to put the archives in [default: as for --data].")
@click.option("--from", "source", type=click.Path(path_type=Path), default=None,
              help="Copy the zips from this local folder instead (checked by content).")
@click.option("--url", default=None,
              help="Base URL of the archives [default: $TINYSIAMESE_OMNIGLOT_URL or GitHub].")
@click.option("--unzip", is_flag=True,
              help="Also unzip the archives (tinysiamese itself reads the zips).")
def download_command(dest, source, url, unzip):
    """Download the Omniglot archives, verify their size and MD5, and keep them.

    Files already present and verified are skipped; a failed or corrupted transfer
    leaves nothing behind, so running the command again retries.

    \b
    Examples:
      tinysiamese data download
      tinysiamese data download --dest data/omniglot
      tinysiamese data download --from /mnt/usb/omniglot --dest data/omniglot
    """
    dest = dest if dest is not None else omniglot.default_data_root()
    with _errors():
        if source is not None:
            results = dl.copy_archives(source, dest, dl.OFFICIAL_ARCHIVES)
        else:
            click.echo(f"downloading from {dl.base_url(url)} into {dest}", err=True)
            results = []
            for spec in dl.OFFICIAL_ARCHIVES:
                results.append(dl.download_archive(spec, dest, url=url))
        for result in results:
            click.echo(f"{result.status:10s} {result.path}")
            folder = dest / result.name.removesuffix(".zip")
            if unzip and folder.exists():
                click.echo(f"{'kept':10s} {folder} (exists; not unzipped again)")
            elif unzip:
                dl.extract_archive(result.path, dest)
                click.echo(f"{'unzipped':10s} {folder}")


@data.command("info", context_settings=CONTEXT)
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None, help=DATA_HELP)
def info_command(data_path):
    """Show where the Omniglot data is and how many alphabets, characters and images it has.

    \b
    Example:
      tinysiamese data info --data ../shared/data/omniglot
    """
    with _errors():
        root = omniglot.find_data_root(data_path)
        click.echo(f"Omniglot data in {root}")
        click.echo(f"{'split':12s}{'alphabets':>10s}{'characters':>12s}{'images':>9s}  source")
        for split in omniglot.SPLITS:
            try:
                s = omniglot.split_summary(root, split)
            except FileNotFoundError:
                click.echo(f"{split:12s}{'-':>10s}{'-':>12s}{'-':>9s}  missing")
                continue
            note = ""
            if (s.n_alphabets, s.n_characters, s.n_images) != omniglot.EXPECTED_COUNTS[split]:
                a, c, i = omniglot.EXPECTED_COUNTS[split]
                note = f"  (the official archive has {a}/{c}/{i:,})"
            counts = f"{s.n_alphabets:>10d}{s.n_characters:>12d}{s.n_images:>9,d}"
            click.echo(f"{split:12s}{counts}  {s.source}{note}")


# --------------------------------------------------------------------------------------
# tinysiamese eval


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


@main.command("eval", context_settings=CONTEXT)
@click.argument("checkpoints", nargs=-1, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Choice(["nn", "hausdorff"]), default=None,
              help="Score with 1-nearest-neighbour on pixels, or Lake's modified Hausdorff "
                   "distance, instead of a model.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None,
              help=DATA_HELP + " Trials are within-alphabet.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The paper's set to draw Omniglot trials from.")
@click.option("--runs", type=click.Path(path_type=Path), default=None,
              help="Lake's all_runs.zip (or its unzipped folder): his official 400 trials.")
@click.option("--mnist", "mnist_path", type=click.Path(path_type=Path), default=None,
              help="Folder with MNIST's t10k IDX files: 10-way trials.")
@click.option("--ways", type=int, default=None, help="Ways per Omniglot trial [default: 20].")
@click.option("--trials", "n_trials", type=int, default=400, show_default=True,
              help="Number of trials.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for drawing the trials.")
@click.option("--size", type=int, default=None,
              help="Image side in pixels [default: the model's input; 105 for baselines].")
@click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES), default="numpy",
              show_default=True, help="Array backend for the model.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Cache of decoded Omniglot arrays [default: $TINYSIAMESE_CACHE or "
                   "~/.cache/tinysiamese/arrays].")
@click.option("--skip-bad-images", is_flag=True,
              help="Leave out unreadable Omniglot images (and their characters) instead of "
                   "stopping; how many were left out is reported.")
@views_option("each pair")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def eval_command(checkpoints, baseline, data_path, split, runs, mnist_path, ways, n_trials, seed,
                 size, backend_name, cache_dir, skip_bad_images, views, as_json):
    """One-shot accuracy of a model (or a baseline) on N-way trials, with a 95% interval.

    CHECKPOINTS are .npz files written by `tinysiamese train`; without one (and without
    --baseline) the model shipped with the package is scored. Several make an ensemble:
    each pair is scored as the mean of their logits. The interval is Wilson's.

    \b
    Examples:
      tinysiamese eval --data ../shared/data/omniglot
      tinysiamese eval runs/my-run/best.npz --data ../shared/data/omniglot --json
      tinysiamese eval runs/run-a/best.npz runs/run-b/best.npz --data ../shared/data/omniglot
      tinysiamese eval --data ../shared/data/omniglot --views 8
      tinysiamese eval --mnist ../shared/data/mnist
      tinysiamese eval --baseline hausdorff --runs all_runs.zip
      tinysiamese eval --baseline nn --mnist ../shared/data/mnist --json
    """
    if baseline is not None and checkpoints:
        raise click.UsageError("give CHECKPOINTS or --baseline, not both")
    if n_trials < 1:
        raise click.UsageError(f"--trials must be at least 1, not {n_trials}")
    if baseline is not None:
        score = {"nn": baselines.nn_score, "hausdorff": baselines.hausdorff_score}[baseline]
        scorer, size = f"baseline {baseline}", size or omniglot.NATIVE_SIZE
    else:
        models = _models(checkpoints, backend_name)
        model_size = models[0][0].cfg["image_size"]
        if size not in (None, model_size):
            raise click.UsageError(f"this model reads {model_size}px images; leave out --size")
        score, scorer = _scorer(models)
        size = model_size
    if views > 1:
        score, scorer = oneshot.with_views(score, views), f"{scorer}, mean of {views} views"
    with _errors():
        trials, source = _load_trials(data_path, split, runs, mnist_path, ways, n_trials, seed,
                                      size, cache_dir, "skip" if skip_bad_images else "error")
        result = oneshot.evaluate(score, trials)
    _print_result(result, scorer, source, as_json)


# --------------------------------------------------------------------------------------
# tinysiamese gradcheck


@main.command("gradcheck", context_settings=CONTEXT)
@click.option("--layer", "layer_spec", default=None,
              help="Check one layer: a name (Conv2D, MaxPool2D, Dense, ReLU, Sigmoid, Flatten, "
                   "WeightedL1, SiameseNet) or your own class as module:Class.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for shapes' values.")
@click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES), default="numpy",
              show_default=True, help="Array backend to check on (always in float64).")
def gradcheck_command(layer_spec, seed, backend_name):
    """Prove every backward pass by central finite differences in float64.

    Prints one row per tensor: layer, tensor, shape, relative error
    max|a - n| / max(|a| + |n|), and pass/fail (error < 1e-6). Exits 0 when all pass.

    \b
    Examples:
      tinysiamese gradcheck
      tinysiamese gradcheck --layer Conv2D --seed 3
      tinysiamese gradcheck --layer mylayers:MyConv2D    # your own layer, same API
    """
    backend = _backend(backend_name)
    cls = None
    if layer_spec is None:
        kinds = list(gradcheck.LAYER_NAMES)
    elif ":" in layer_spec:
        with _errors():
            cls, kind = gradcheck.load_student_layer(layer_spec)
        kinds = [kind]
        click.echo(f"checking {layer_spec} as a {kind}: built as {gradcheck.STUDENT_ARGS[kind]}",
                   err=True)
    elif layer_spec in gradcheck.LAYER_NAMES:
        kinds = [layer_spec]
    else:
        raise click.UsageError(f"unknown layer {layer_spec!r}: choose one of "
                               f"{', '.join(gradcheck.LAYER_NAMES)} or give module:Class")
    results = []
    for kind in kinds:
        try:
            results += gradcheck.check_standard(kind, backend, seed, cls)
        except Exception as exc:  # a student's layer may fail in any way: report, don't crash
            if cls is None:
                raise
            raise click.ClickException(f"{layer_spec} raised {exc.__class__.__name__}: {exc}") from None
    rows = [("layer", "tensor", "shape", "rel. error", "result")]
    rows += [(r.layer, r.tensor, str(r.shape), f"{r.rel_error:.2e}", "ok" if r.passed else "FAIL")
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    failed = [r for r in results if not r.passed]
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed (tolerance "
               f"{gradcheck.TOLERANCE:g}, float64, backend {backend.name})", err=True)
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------------------
# tinysiamese train


def _backend(name, dtype="float32"):
    try:
        return get_backend(name, dtype)
    except BackendUnavailableError as exc:
        raise click.UsageError(str(exc)) from None


def _read_config(path: Path) -> dict:
    """A JSON or TOML file of preset overrides -> dict (one-line errors)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise click.UsageError("TOML configs need Python 3.11+; write the config as JSON") from None
            cfg = tomllib.loads(text.decode())
        else:
            cfg = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"config {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    if not isinstance(cfg, dict):
        raise click.UsageError(f"config {path} must hold an object of settings, e.g. {{\"epochs\": 50}}")
    return cfg


def _positive(name):
    def check(ctx, param, value):
        if value is not None and value < 1:
            raise click.BadParameter(f"must be at least 1, not {value}")
        return value
    return check


@main.command("train", context_settings=CONTEXT)
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None,
              help="Omniglot folder (the zips or unzipped) [default: $TINYSIAMESE_DATA or ~/.cache/tinysiamese/omniglot].")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="Network and schedule: small (default; CPU, under an hour), koch (the paper's, for a GPU), tiny (tests).")
@click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES), default="numpy", show_default=True)
@click.option("--epochs", type=int, default=None, callback=_positive("epochs"), help="Most epochs to train [default: the preset's].")
@click.option("--pairs-per-epoch", type=int, default=None, callback=_positive("pairs"), help="Pairs per epoch (the pairs loader).")
@click.option("--batch-size", type=int, default=None, callback=_positive("batch"), help="Pairs per minibatch (even; the pairs loader).")
@click.option("--distortions", type=int, default=None,
              help="0: a fresh random distortion of every image (default); K>0: the paper's K distorted copies per pair.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder [default: runs/<timestamp>].")
@click.option("--resume", type=click.Path(path_type=Path), default=None, help="Continue the run in this folder from its last.npz.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="JSON or TOML file overriding any preset setting (e.g. {\"optim\": {\"lr\": 0.01}}).")
@click.option("--skip-bad-images", is_flag=True,
              help="Leave out unreadable Omniglot images (and their characters) instead of "
                   "stopping; how many were left out is reported.")
def train_command(data_path, preset, backend_name, epochs, pairs_per_epoch, batch_size, distortions,
                  seed, out, resume, config_path, skip_bad_images):
    """Train a siamese net on Omniglot's background alphabets, then test its best epoch.

    After every epoch the model answers validation one-shot trials (500 for small); the
    best model is kept, and at the end it is scored on the 400 within-alphabet 20-way test
    trials.
    Ctrl-C finishes the step, saves and tells how to resume.

    \b
    Examples:
      tinysiamese train --data ../shared/data/omniglot
      tinysiamese train --preset koch --backend cupy --out runs/koch
      tinysiamese train --resume runs/koch
    """
    if resume is not None and out is not None:
        raise click.UsageError("--resume continues in its own folder; leave out --out")
    if resume is not None and not (resume / "last.npz").is_file():
        raise click.UsageError(f"nothing to resume: {resume / 'last.npz'} does not exist")
    if resume is not None:  # the run's own settings win on resume: say so rather than ignore
        given = [name for name, value in [("--pairs-per-epoch", pairs_per_epoch),
                                          ("--batch-size", batch_size),
                                          ("--distortions", distortions),
                                          ("--config", config_path)] if value is not None]
        if given:
            raise click.UsageError(f"--resume continues with the run's own settings; leave out "
                                   f"{', '.join(given)} (or start a new run with --out)")
    overrides = _read_config(config_path) if config_path else {}
    for key, value in [("epochs", epochs), ("pairs_per_epoch", pairs_per_epoch),
                       ("batch_size", batch_size), ("distortions", distortions)]:
        if value is not None:
            overrides[key] = value
    if distortions is not None and distortions < 0:
        raise click.UsageError(f"--distortions must be 0 or more, not {distortions}")
    with _errors():
        cfg = preset_config(preset or overrides.pop("preset", "small"), overrides)
        cfg["preset_given"] = preset is not None
        if resume is not None and epochs is None:
            cfg.pop("epochs", None)  # a resumed run goes on to its own number of epochs
        elif resume is None:
            cfg.setdefault("epochs", 200)
        if cfg.get("loader", "pairs") == "groups" and (pairs_per_epoch or batch_size):
            raise ValueError("--pairs-per-epoch and --batch-size set the pairs loader, but this "
                             "config trains on group batches: set batches_per_epoch and group "
                             "in a --config file instead")
        train_mod.check_loader(cfg)
        if cfg["batch_size"] % 2:
            raise ValueError(f"--batch-size must be even (half same, half different pairs), not {cfg['batch_size']}")
        root = omniglot.find_data_root(data_path)
    backend = _backend(backend_name)
    if backend.name == "numpy":
        train_mod.keep_freed_memory()
    run_dir = resume or out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    progress = _progress_line if sys.stderr.isatty() else None
    try:
        result = train_mod.train(cfg, data_root=root, backend=backend, out_dir=run_dir, seed=seed,
                                 resume=resume is not None, log=_log_line, progress=progress,
                                 on_bad_image="skip" if skip_bad_images else "error")
    except train_mod.ResumeError as exc:
        raise click.UsageError(str(exc)) from None
    except (train_mod.TrainingError, CheckpointError) as exc:
        raise click.ClickException(str(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    except (DataError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if result.stopped == "diverged":
        sys.exit(1)
    if result.stopped == "interrupted":
        sys.exit(130)


def _progress_line(text):
    click.echo("\r" + text.ljust(79)[:79], nl=False, err=True)


def _log_line(text):
    if sys.stderr.isatty():
        click.echo("\r" + " " * 79 + "\r", nl=False, err=True)
    click.echo(text)


# --------------------------------------------------------------------------------------
# tinysiamese verify (and the shipped model)


def _models(checkpoints, backend_name):
    """Load CHECKPOINTs (default: the model shipped in the package) -> [(SiameseNet, path)].

    Several checkpoints make an ensemble (:func:`oneshot.ensemble`), so they must read
    images of one size.
    """
    paths = [Path(c) for c in checkpoints] or [pretrained_path()]
    if not checkpoints and not paths[0].is_file():
        raise click.ClickException("no checkpoint given and no pretrained model is installed; "
                                   "train one with `tinysiamese train` and pass its best.npz")
    backend = _backend(backend_name)
    try:
        models = [model_from_checkpoint(load_checkpoint(p), backend) for p in paths]
    except CheckpointError as exc:
        raise click.UsageError(str(exc)) from None
    sizes = [m.cfg["image_size"] for m in models]
    if len(set(sizes)) > 1:
        listed = ", ".join(f"{p.name} {s}px" for p, s in zip(paths, sizes))
        raise click.UsageError(f"an ensemble needs checkpoints that read one image size, not "
                               f"{listed}; give checkpoints of one preset")
    return list(zip(models, paths))


def _scorer(models):
    """The score of the loaded ``models`` (the mean of their logits) -> (score, its name)."""
    score = oneshot.ensemble([train_mod.model_score(m) for m, _ in models])
    if len(models) == 1:
        return score, f"model {models[0][1]}"
    return score, f"ensemble of {len(models)} models ({_short_all(models, ', ')})"


@main.command("verify", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES), default="numpy", show_default=True)
@views_option("the pair")
def verify_command(files, backend_name, views):
    """The probability that two images show the same character: [CHECKPOINT...] IMAGE_A IMAGE_B.

    Any PNG or JPEG works: colour and transparency are flattened, dark-on-light drawings
    are inverted, and the images are resized to the model's input. Without CHECKPOINT the
    model shipped with the package is used; several checkpoints answer as an ensemble
    (the sigmoid of the mean of their logits).

    \b
    Examples:
      tinysiamese verify a.png b.png
      tinysiamese verify a.png b.png --views 8
      tinysiamese verify runs/my-run/best.npz a.png b.png
    """
    if len(files) < 2:
        raise click.UsageError(f"give two images (and optionally checkpoints first), got {len(files)} path")
    *checkpoints, image_a, image_b = files
    models = _models(checkpoints, backend_name)
    size = models[0][0].cfg["image_size"]
    try:
        a, b = (load_user_image(f, size) for f in (image_a, image_b))
    except ImageError as exc:
        raise click.UsageError(str(exc)) from None
    score, _ = _scorer(models)
    logit = oneshot.with_views(score, views)(a[None, None], b[None, None])
    p = float(ops.sigmoid(np, logit)[0])
    names = (models[0][1].name if len(models) == 1 else
             _short_all(models))  # runs' files all share the name best.npz
    seen = f", mean of {views} views" if views > 1 else ""
    click.echo(f"{p:.4f}  probability that {image_a.name} and {image_b.name} show the same character "
               f"({'same' if p >= 0.5 else 'different'}; model {names}{seen})")


# --------------------------------------------------------------------------------------
# tinysiamese plot | show-trial | show-filters: pictures (PNG, drawn with Pillow)


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


def _short(path: Path) -> str:
    """runs/my-run/best.npz -> "my-run/best.npz": enough to tell checkpoints apart."""
    return f"{path.resolve().parent.name}/{path.name}"


def _short_all(models, sep: str = " + ") -> str:
    """The checkpoints of ``_models(...)``, each as :func:`_short` names it."""
    return sep.join(_short(path) for _, path in models)


def _run_file(run_dir: Path, name: str) -> dict:
    """A JSON file of a run folder (config.json, summary.json) as a dict; {} if unreadable."""
    try:
        data = json.loads((run_dir / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _loss_heading(run_dir: Path) -> str:
    """What the run's training loss was, from its config.json: the cross-entropy per pair,
    plus w times the one-shot softmax when the config set group.one_shot_weight w."""
    cfg = _run_file(run_dir, "config.json")
    group = cfg.get("group") if cfg.get("loader") == "groups" else None
    weight = group.get("one_shot_weight", 0) if isinstance(group, dict) else 0
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


@main.command("plot", context_settings=CONTEXT)
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


@main.command("show-trial", context_settings=CONTEXT)
@click.argument("checkpoints", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None, help=DATA_HELP)
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The paper's set to draw the trial from.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which trial: the alphabet, characters, drawers and the answer's place.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("trial.png"),
              callback=_png_path, show_default=True, help=OUT_HELP + ".")
@click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES), default="numpy",
              show_default=True, help="Array backend for the model.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Cache of decoded Omniglot arrays [default: $TINYSIAMESE_CACHE or "
                   "~/.cache/tinysiamese/arrays].")
@views_option("each pair")
def show_trial_command(checkpoints, data_path, split, seed, out, backend_name, cache_dir, views):
    """Draw one 20-way within-alphabet trial as the model answers it, and say if it is right.

    The picture shows the test character, the 20 candidates of its alphabet with the
    model's probability that each is the same character, the right answer framed green
    and the model's choice framed blue (red when wrong). Without CHECKPOINTS the model
    shipped with the package answers; several answer as an ensemble.

    \b
    Examples:
      tinysiamese show-trial --data ../shared/data/omniglot --seed 3
      tinysiamese show-trial runs/my-run/best.npz --data ../shared/data/omniglot \\
          --out docs/trial.png
    """
    models = _models(checkpoints, backend_name)
    n_way = 20
    with _errors():
        root = omniglot.find_data_root(data_path)
        subset = omniglot.load_paper_split(root, split, models[0][0].cfg["image_size"],
                                           cache_dir=cache_dir)
        trials = within_alphabet_trials(subset, n_way, n_way, seed)  # one set of N tests
    k = int(np.random.default_rng([seed, 1]).integers(trials.n_trials))   # which test of the set
    test, support, answer = trials.test[k], trials.support[k], int(trials.answer[k])
    x1 = np.repeat(test[None, None], n_way, axis=0)                       # (N, 1, H, W)
    score, scorer = _scorer(models)
    logits = oneshot.with_views(score, views)(x1, support[:, None])  # (N,)
    if not np.isfinite(logits).all():
        raise click.ClickException(f"the {scorer} gives non-finite scores (diverged?)")
    p = ops.sigmoid(np, logits)
    chosen = int(np.argmax(logits))  # ties go to the first, as in `tinysiamese eval`
    alphabet = trials.alphabet[k].replace("_", " ")
    image = plots.trial_image(test, support, p, answer, chosen, score_label="P(same)",
                              title=f"{alphabet}: a {n_way}-way within-alphabet trial (Omniglot "
                                    f"{split} set, seed {seed}, model "
                                    f"{_short_all(models)}"
                                    f"{f', {views} views' if views > 1 else ''})")
    _save_picture(image, out)
    said = f"the model chose candidate {chosen + 1} of {n_way}, P(same) {p[chosen]:.3f}"
    if chosen == answer:
        click.echo(f"right: {said}")
    else:
        click.echo(f"wrong: {said}; the answer is candidate {answer + 1}, P(same) {p[answer]:.3f}")


@main.command("show-filters", context_settings=CONTEXT)
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
    model, path = _models([checkpoint] if checkpoint else [], "numpy")[0]
    W = model.backend.to_numpy(model.params()["conv1.W"])  # (F, C, K, K)
    F, C, K, _ = W.shape
    _save_picture(plots.filter_grid(W, title=f"First-layer filters of {_short(path)}: "
                                             f"{F} of {C}x{K}x{K}"), out)
