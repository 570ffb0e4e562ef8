"""``tinysiamese data download | info``: get the Omniglot archives and see what is there."""
from __future__ import annotations

from pathlib import Path

import click

from .. import download as dl, omniglot
from .options import CONTEXT, data_option


@click.group(context_settings=CONTEXT)
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
    """Download the Omniglot archives and Lake's one-shot runs (all_runs.zip, for
    `eval --runs`), verify their size and MD5, and keep them.

    Files already present and verified are skipped; a failed or corrupted transfer
    leaves nothing behind, so running the command again retries.

    \b
    Examples:
      tinysiamese data download
      tinysiamese data download --dest data/omniglot
      tinysiamese data download --from /mnt/usb/omniglot --dest data/omniglot
    """
    dest = dest if dest is not None else omniglot.default_data_root()
    if source is not None:
        results = dl.copy_archives(source, dest, dl.OFFICIAL_ARCHIVES)
    else:
        click.echo(f"downloading from {dl.base_url(url)} into {dest}", err=True)
        results = []
        for spec in dl.OFFICIAL_ARCHIVES + dl.RUNS_ARCHIVES:  # the archives, then Lake's runs
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
@data_option()
def info_command(data_path):
    """Show where the Omniglot data is and how many alphabets, characters and images it has.

    \b
    Examples:
      tinysiamese data info
      tinysiamese data info --data ~/data/omniglot
    """
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


COMMANDS = [data]
