"""``tinysiamese train``: train a siamese net, validate every epoch, test the best one."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .. import omniglot
from ..backend import get_backend, keep_freed_memory
from ..config import PRESETS, ConfigError, build_config, read_config_file, with_overrides
from ..folderdata import load_folder_data
from ..folders import list_images
from ..runfolder import ResumeError, RunFolder
from ..train import omniglot_data, train
from .options import CONTEXT, backend_option, data_option


def _positive(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, not {value}")
    return value


def command_line_settings(cfg, epochs, steps_per_epoch, batch_size, distortions, seed) -> dict:
    """The options of `train` as config overrides, in the terms of the config's loader:
    --batch-size is a pairs batch, or a group batch's images (it sets group.alphabets), and
    --steps-per-epoch sets batches_per_epoch, or the pairs that fill that many batches."""
    run, loader = {} if seed is None else {"seed": seed}, {}
    if epochs is not None:
        run["epochs"] = epochs
    if distortions is not None:
        loader["distortions"] = distortions
    lc = cfg.loader
    batch, k = batch_size or lc.batch_size, loader.get("distortions", lc.distortions)
    if lc.kind == "groups" and batch_size is not None:
        per_alphabet = lc.group.characters * lc.group.drawers
        if batch_size % per_alphabet:
            raise ConfigError(f"--batch-size: a group batch is alphabets x {lc.group.characters} "
                              f"characters x {lc.group.drawers} drawings, so it must be a multiple "
                              f"of {per_alphabet}, not {batch_size}")
        loader["group"] = {"alphabets": batch_size // per_alphabet}
    elif batch_size is not None:
        loader["batch_size"] = batch_size
    if steps_per_epoch is not None and lc.kind == "groups":
        loader["batches_per_epoch"] = steps_per_epoch
    elif steps_per_epoch is not None:  # (1 + k) * pairs // batch == steps
        loader["pairs_per_epoch"] = -(-steps_per_epoch * batch // (1 + k))
    return {"run": run, "loader": loader}


@click.command("train", context_settings=CONTEXT)
@data_option()
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="Network and schedule: small (default; CPU, under an hour), koch (the "
                   "paper's, for a GPU), tiny (tests).")
@backend_option
@click.option("--epochs", type=int, default=None, callback=_positive,
              help="Most epochs to train [default: the preset's].")
@click.option("--steps-per-epoch", type=int, default=None, callback=_positive,
              help="Batches per epoch [default: the preset's].")
@click.option("--batch-size", type=int, default=None, callback=_positive,
              help="The loader's batch: images of a group batch (small), or pairs (koch, even).")
@click.option("--distortions", type=click.IntRange(min=0), default=None,
              help="Pairs loader: 0, a fresh random distortion of every image; K>0, the "
                   "paper's K distorted copies per pair.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the weights, batches and trials [default: the config's, 0].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/<timestamp>].")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue the run in this folder from its last.npz.")
@click.option("--overwrite", is_flag=True,
              help="Start afresh in an --out folder that holds a run, deleting its files.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help='JSON or TOML file overriding any preset setting, by section (e.g. '
                   '{"optim": {"lr": 0.01}}; every key: docs/config.md).')
@click.option("--skip-bad-images", is_flag=True,
              help="Leave out unreadable Omniglot images (and their characters) instead of "
                   "stopping; how many were left out is reported.")
def train_command(data_path, preset, backend_name, epochs, steps_per_epoch, batch_size,
                  distortions, seed, out, resume, overwrite, config_path, skip_bad_images):
    """Train a siamese net on Omniglot's background alphabets, then test its best epoch.

    After every epoch the model answers validation one-shot trials (500 for small); the
    best model is kept, and at the end it is scored on the 400 within-alphabet 20-way test
    trials. --data may also be a folder of your own images, class/*.png or
    group/class/*.png (a group plays an alphabet): its classes are split into training and
    validation by the seed, as the log says; there is no test set. Ctrl-C finishes the
    step, saves and tells how to resume. A folder holds one run: a new run refuses a
    folder that holds one (see --resume, --overwrite), and one trainer at a time may use it.

    \b
    Examples:
      tinysiamese train --epochs 1 --steps-per-epoch 20     # a one-minute try
      tinysiamese train --data ~/data/omniglot --out runs/small
      tinysiamese train --data ~/my-images --config pairs.json   # {"loader": {"kind": "pairs"}}
      tinysiamese train --preset koch --backend cupy --out runs/koch
      tinysiamese train --resume runs/koch
    """
    if overwrite and resume is not None:
        raise click.UsageError("--overwrite starts a run afresh; --resume goes on with one: "
                               "give one of them")
    if resume is not None:
        cfg = _resumed(resume, preset, epochs, steps_per_epoch, batch_size, distortions,
                       seed, config_path, out)
    else:
        cfg = build_config(preset, read_config_file(config_path) if config_path else {},
                           str(config_path or "config"))
        cfg = with_overrides(cfg, command_line_settings(cfg, epochs, steps_per_epoch,
                                                        batch_size, distortions, seed))
    # Omniglot where the folder holds it (or none is given); else the folder's own images
    own_images = data_path is not None and Path(data_path).is_dir() \
        and not omniglot.holds_omniglot(data_path) and bool(list_images(data_path).files)
    root = Path(data_path) if own_images else omniglot.find_data_root(data_path)
    folder = RunFolder(resume or out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"), root)
    backend = get_backend(backend_name, "float32")
    # refused (unwritable, holding a run, in use) before the data is loaded
    folder.open(resume=resume is not None, overwrite=overwrite)
    if backend.name == "numpy":
        keep_freed_memory()
    size = cfg.network.image_size
    _log_line(f"loading {'the images of ' + str(root) if own_images else 'Omniglot'} at "
              f"{size}x{size} ...")
    if own_images:
        data = load_folder_data(root, size, cfg.run.seed)
        groups, g = len(set(data.train.alphabet_of)), cfg.loader.group
        if cfg.loader.kind == "groups" and groups < g.alphabets:
            raise ConfigError(f"{root} has {groups} group(s) of training classes; group batches "
                              f"of preset {cfg.preset} need {g.alphabets}: train on independent "
                              'pairs with --config FILE holding {"loader": {"kind": "pairs"}}')
    else:
        data = omniglot_data(root, size, cfg.run.test_trials > 0,
                             "skip" if skip_bad_images else "error")
    progress = _progress_line if sys.stderr.isatty() else None
    result = train(cfg, data, backend, folder, resume=resume is not None, log=_log_line,
                   progress=progress)
    if result.stopped == "diverged":
        sys.exit(1)
    if result.stopped == "interrupted":
        sys.exit(130)


def _resumed(resume: Path, preset, epochs, steps_per_epoch, batch_size, distortions, seed,
             config_path, out):
    """The config a resumed run goes on with: its own, with only --epochs changed."""
    if out is not None:
        raise click.UsageError("--resume continues in its own folder; leave out --out")
    if not (resume / "last.npz").is_file():
        raise click.UsageError(f"nothing to resume: {resume / 'last.npz'} does not exist")
    given = [name for name, value in [("--steps-per-epoch", steps_per_epoch),
                                      ("--batch-size", batch_size),
                                      ("--distortions", distortions), ("--seed", seed),
                                      ("--config", config_path)] if value is not None]
    if given:  # the run's own settings win on resume: say so rather than ignore
        raise click.UsageError(f"--resume continues with the run's own settings; leave out "
                               f"{', '.join(given)} (or start a new run with --out)")
    cfg = RunFolder(resume).resume(epochs, weights=False)[0]  # train() reads the arrays
    if preset is not None and preset != cfg.preset:
        raise ResumeError(f"{resume / 'last.npz'} was trained with preset {cfg.preset!r}, not "
                          f"{preset!r}: drop --preset when resuming, or start a new run with --out")
    return cfg


def _progress_line(text):
    click.echo("\r" + text.ljust(79)[:79], nl=False, err=True)


def _log_line(text):
    if sys.stderr.isatty():
        click.echo("\r" + " " * 79 + "\r", nl=False, err=True)
    click.echo(text)


COMMANDS = [train_command]
