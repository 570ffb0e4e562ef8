"""``tinysiamese classify | cluster | embed``: the net on a user's own image folders.

Folders are read by :mod:`tinysiamese.folders` (any format ``verify`` reads; non-images and
links leading out skipped and counted, on stderr); pairs are scored from each image's
features, encoded once (:mod:`tinysiamese.similarity`); clusters come from
:mod:`tinysiamese.cluster`. What is written is written atomically (:mod:`tinysiamese.outputs`).
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from .. import cluster as clustering, folders, outputs, similarity
from ..images import load_user_image
from .options import CONTEXT, backend_option, load_models, model_name, scoring_options


def _split_checkpoints(paths, least: int, usage: str):
    """PATHS -> (checkpoints, the rest): the leading paths ending in .npz are checkpoints."""
    n = 0
    while n < len(paths) and paths[n].suffix.lower() == ".npz":
        n += 1
    if len(paths) - n < least:
        raise click.UsageError(f"give {usage} (checkpoints, ending in .npz, first)")
    return list(paths[:n]), list(paths[n:])


def _note(listing) -> None:
    if listing.note():
        click.echo(f"{listing.root}: {listing.note()}", err=True)


def _read_queries(paths, size: int):
    """QUERY files and folders -> (names, (Q, H, W) float32): a folder gives all its images."""
    names, images = [], []
    for path in paths:
        if path.is_dir():
            listing, x = folders.read_folder(path, size)
            _note(listing)
            names += [str(f) for f in listing.files]
            images.append(x)
        else:
            names.append(str(path))
            images.append(load_user_image(path, size)[None])
    return names, np.concatenate(images)


@click.command("classify", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@scoring_options("each query-support pair")
def classify_command(paths, backend_name, views, as_json):
    """Which support class each query shows: [CHECKPOINT...] SUPPORT QUERY...

    SUPPORT is a folder of one image per class (the file's stem names the class) or of one
    subfolder per class holding one or more images (the class scores the mean of its
    images' logits). QUERY is an image or a folder of them. Per query: the predicted class,
    its P(same) and the top 3. Each image is encoded once; only the join runs per pair.
    With --json: {"results": [{"query", "class", "probability", "top": [[name, p], ...]}]}.

    \b
    Examples:
      tinysiamese classify support/ query.png
      tinysiamese classify support/ queries/ --views 8 --json
      tinysiamese classify runs/my-run/best.npz support/ a.png b.png
    """
    checkpoints, rest = _split_checkpoints(paths, 2, "a SUPPORT folder and at least one QUERY")
    support_path, queries = rest[0], rest[1:]
    models = load_models(checkpoints, backend_name)
    size = models[0][0].network.image_size
    support = folders.read_support(support_path, size)
    _note(support.listing)
    names, x = _read_queries(queries, size)
    results = similarity.classify([m for m, _ in models], support.images, support.labels,
                                  support.classes, x, views)
    if as_json:
        click.echo(json.dumps({"results": [{"query": n, **r} for n, r in zip(names, results)]}))
        return
    width = max(len(n) for n in names)
    for name, r in zip(names, results):
        top = ", ".join(f"{c} {p:.3f}" for c, p in r["top"])
        click.echo(f"{name:{width}s}  {r['class']}  P(same) {r['probability']:.3f}  (top: {top})")
    click.echo(f"{len(names)} queries against {len(support.classes)} classes "
               f"({len(support.files)} support images); model {model_name(models, views)}",
               err=True)


@click.command("cluster", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--k", "k", type=click.IntRange(min=1), default=None,
              help="Exactly K clusters [default: K estimated from the similarity graph].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for clusters.csv and clusters.png, outside FOLDER [default: "
                   "FOLDER-clusters beside FOLDER].")
@scoring_options("each pair")
def cluster_command(paths, k, out, backend_name, views, as_json):
    """Group the images of a folder by the net's similarity: [CHECKPOINT...] FOLDER

    All images below FOLDER (any format verify reads). Pairs are scored from each image's
    features, then clustered spectrally on the graph of each image's 10 most similar
    others; without --k, K is the largest gap in that graph's spectrum. Writes
    clusters.csv (file, cluster, its mean P(same) with its cluster's other members) and
    clusters.png (a row per cluster, largest first). With --json:
    {"k": K, "assignments": [{"file", "cluster"}, ...]}.

    \b
    Examples:
      tinysiamese cluster drawings/                  # writes drawings-clusters/
      tinysiamese cluster drawings/ --k 12 --out results/ --views 8
    """
    checkpoints, rest = _split_checkpoints(paths, 1, "a FOLDER of images")
    if len(rest) > 1:
        raise click.UsageError(f"give one FOLDER to cluster, not {len(rest)} paths")
    root = rest[0].resolve()
    out = out if out is not None else root.parent / f"{root.name}-clusters"
    if out.resolve() == root or root in out.resolve().parents:
        raise click.UsageError(f"--out {out} lies inside {rest[0]}: the next cluster of the "
                               "folder would read clusters.png as one of its images; give "
                               "--out outside it")
    models = load_models(checkpoints, backend_name)
    listing, x = folders.read_folder(rest[0], models[0][0].network.image_size, min_images=2)
    _note(listing)
    if k is not None and k > len(x):
        raise click.UsageError(f"--k {k} is more clusters than the {len(x)} images of {rest[0]}")
    z = similarity.logits([m for m, _ in models], x, views=views)     # (N, N)
    found = clustering.cluster(z, k)
    mean_p = clustering.mean_same_probability(z, found.labels)
    names = [str(f) for f in listing.files]
    out.mkdir(parents=True, exist_ok=True)
    outputs.write_clusters_csv(out / "clusters.csv", names, found.labels, mean_p)
    outputs.write_clusters_png(out / "clusters.png", x, found.labels,
                               title=f"{len(x)} images of {rest[0]} in {found.k} clusters")
    click.echo(f"{found.how}; model {model_name(models, views)}", err=True)
    if as_json:
        click.echo(json.dumps({"k": found.k, "assignments": [
            {"file": n, "cluster": int(c)} for n, c in zip(names, found.labels)]}))
        return
    for c in range(found.k):
        members = np.flatnonzero(found.labels == c)
        shown = ", ".join(Path(names[i]).name for i in members[:4])
        more = f", ... ({len(members) - 4} more)" if len(members) > 4 else ""
        p = np.nanmean(mean_p[members]) if len(members) > 1 else float("nan")
        click.echo(f"cluster {c:3d}: {len(members):4d} images, mean P(same) {p:.3f}: {shown}{more}")
    click.echo(f"wrote {out / 'clusters.csv'} and {out / 'clusters.png'}")


@click.command("embed", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .npy file to write; the file names go beside it, as .txt.")
@backend_option
def embed_command(paths, out, backend_name):
    """The encoder's features of every image of a folder: [CHECKPOINT] FOLDER --out X.npy

    X.npy holds an (N, dense) float32 array; X.txt beside it the N image files, one a line,
    in row order. Those are the features h that the join compares, logit
    z = sum_j alpha_j |h_aj - h_bj| + b, for use in other tools.

    \b
    Examples:
      tinysiamese embed drawings/ --out drawings.npy
      tinysiamese embed runs/my-run/best.npz drawings/ --out drawings.npy
    """
    checkpoints, rest = _split_checkpoints(paths, 1, "a FOLDER of images")
    if len(checkpoints) > 1 or len(rest) > 1:
        raise click.UsageError("give at most one CHECKPOINT and one FOLDER: the features of "
                               "an ensemble have no single meaning")
    try:
        outputs.check_embeddings_path(out)  # before the folder is read
    except ValueError as exc:
        raise click.UsageError(f"--out: {exc}") from None
    (model, path), = load_models(checkpoints, backend_name)
    listing, x = folders.read_folder(rest[0], model.network.image_size)
    _note(listing)
    h = similarity.encode(model, x)[0]                                  # (N, dense)
    npy, txt = outputs.write_embeddings(out, h, listing.files)
    click.echo(f"wrote {npy} ({h.shape[0]} x {h.shape[1]} float32, model {path.name}) and {txt}")


COMMANDS = [classify_command, cluster_command, embed_command]
