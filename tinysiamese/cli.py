"""The command line: ``tinysiamese data download|info`` and ``tinysiamese eval``.

The commands only parse options and print; the work happens in the modules. Errors in
what the user asked for (a missing path, a bad option) exit with status 2, failures of
the data or the download with status 1 - each as one line, never a traceback.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click

from . import __version__, baselines, download as dl, mnist, omniglot, oneshot

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DATA_HELP = ("Folder holding the Omniglot archives "
             "[default: $TINYSIAMESE_DATA or ~/.cache/tinysiamese/omniglot].")



@contextmanager
def _errors():
    """Turn the modules' exceptions into click's one-line errors."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    except (omniglot.DataError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="tinysiamese")
def main():
    """Siamese networks for one-shot image recognition (Koch et al. 2015), from scratch.

    \b
    Start with:
      tinysiamese data download
      tinysiamese data info
      tinysiamese eval --baseline nn
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


def _load_trials(data_path, split, runs, mnist_path, ways, n_trials, seed, size, cache_dir):
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
        trials = oneshot.load_lake_runs(runs, size)
        return trials, (f"Lake's runs in {runs}, {trials.n_way}-way, {trials.n_trials} trials, "
                        f"{size}px")
    root = omniglot.find_data_root(data_path)
    subset = omniglot.load_paper_split(root, split, size, cache_dir=cache_dir)
    ways = 20 if ways is None else ways
    trials = oneshot.within_alphabet_trials(subset, ways, n_trials, seed)
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
@click.option("--baseline", type=click.Choice(["nn", "hausdorff"]), required=True,
              help="1-nearest-neighbour on pixels, or Lake's modified Hausdorff distance.")
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for drawing the trials.")
@click.option("--size", type=int, default=omniglot.NATIVE_SIZE, show_default=True,
              help="Image side in pixels.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Cache of decoded Omniglot arrays [default: $TINYSIAMESE_CACHE or "
                   "~/.cache/tinysiamese/arrays].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def eval_command(baseline, data_path, split, runs, mnist_path, ways, n_trials, seed, size,
                 cache_dir, as_json):
    """One-shot accuracy of a scorer on N-way trials, with a 95% Wilson interval.

    \b
    Examples:
      tinysiamese eval --baseline nn --data ../shared/data/omniglot
      tinysiamese eval --baseline hausdorff --runs all_runs.zip
      tinysiamese eval --baseline nn --mnist ../shared/data/mnist --json
    """
    with _errors():
        trials, source = _load_trials(data_path, split, runs, mnist_path, ways, n_trials, seed,
                                      size, cache_dir)
        score = {"nn": baselines.nn_score, "hausdorff": baselines.hausdorff_score}[baseline]
        result = oneshot.evaluate(score, trials)
    _print_result(result, f"baseline {baseline}", source, as_json)
