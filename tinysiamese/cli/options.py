"""What the commands share: their options (written once, as decorators), loading the models
they score with, and the one map from the package's exceptions to exit codes.

Errors in what the user asked for (a missing path, a bad option, an unknown config key)
exit with status 2, failures of the data, the files or the run with status 1: each as one
line, never a traceback.
"""
from __future__ import annotations

from pathlib import Path

import click

from .. import oneshot
from ..backend import BACKEND_NAMES, BackendUnavailableError, get_backend
from ..checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from ..config import ConfigError
from ..images import ImageError
from ..archive import DataError
from ..pretrained import pretrained_path
from ..runfolder import ResumeError, TrainingError
from ..oneshot import model_score

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# First match wins: ResumeError is a TrainingError, FileNotFoundError an OSError.
EXIT_CODES = (
    ((ResumeError, ConfigError, CheckpointError, ImageError, BackendUnavailableError,
      FileNotFoundError, NotADirectoryError, ValueError), 2),
    ((TrainingError, DataError, OSError), 1),
)


class Commands(click.Group):
    """The command group, turning the package's exceptions into one-line errors."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except MemoryError:
            raise click.ClickException("out of memory: the network, the batch or the folder "
                                       "is too large for this machine; make it smaller") from None
        except Exception as exc:
            for kinds, code in EXIT_CODES:
                if isinstance(exc, kinds):
                    if code == 2:
                        raise click.UsageError(str(exc)) from None
                    raise click.ClickException(str(exc)) from None
            raise


def backend_option(f):
    return click.option("--backend", "backend_name", type=click.Choice(BACKEND_NAMES),
                        default="numpy", show_default=True,
                        help="Array backend: numpy (CPU) or cupy (an NVIDIA GPU).")(f)


def data_option(extra: str = ""):
    return click.option(
        "--data", "data_path", type=click.Path(path_type=Path), default=None,
        help="Folder holding the Omniglot archives (the zips or unzipped) [default: "
             f"$TINYSIAMESE_DATA or ~/.cache/tinysiamese/omniglot].{extra}")


def cache_dir_option(f):
    return click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                        help="Cache of decoded Omniglot arrays [default: $TINYSIAMESE_CACHE or "
                             "~/.cache/tinysiamese/arrays].")(f)


def views_option(scored: str):
    """The --views option (an int in oneshot.VIEW_COUNTS) of a command that scores ``scored``."""
    return click.option(
        "--views", type=click.Choice([str(v) for v in oneshot.VIEW_COUNTS]), default="1",
        show_default=True, callback=lambda ctx, param, value: int(value),
        help=f"Score {scored} as the mean over copies of it, both images turned or mirrored "
             "alike: 2 mirrored, 4 its quarter turns, 8 both; 1 is the paper's single look.")


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object instead of text.")(f)


def scoring_options(scored: str):
    """--backend, --views and --json: the options of a command that scores ``scored`` and
    prints its answers (verify, classify, cluster)."""
    def apply(f):
        return backend_option(views_option(scored)(json_option(f)))
    return apply


def load_models(checkpoints, backend_name):
    """Load CHECKPOINTs (default: the model shipped in the package) -> [(SiameseNet, path)].

    Several checkpoints make an ensemble (:func:`oneshot.ensemble`), so they must read
    images of one size.
    """
    paths = [Path(c) for c in checkpoints] or [pretrained_path()]
    if not checkpoints and not paths[0].is_file():
        raise click.ClickException("no checkpoint given and no pretrained model is installed; "
                                   "train one with `tinysiamese train` and pass its best.npz")
    b = get_backend(backend_name)
    models = [model_from_checkpoint(load_checkpoint(p), b) for p in paths]
    sizes = [m.network.image_size for m in models]
    if len(set(sizes)) > 1:
        listed = ", ".join(f"{p.name} {s}px" for p, s in zip(paths, sizes))
        raise click.UsageError(f"an ensemble needs checkpoints that read one image size, not "
                               f"{listed}; give checkpoints of one preset")
    return list(zip(models, paths))


def short(path: Path) -> str:
    """runs/my-run/best.npz -> "my-run/best.npz": enough to tell checkpoints apart."""
    return f"{path.resolve().parent.name}/{path.name}"


def short_all(models, sep: str = " + ") -> str:
    """The checkpoints of :func:`load_models`, each as :func:`short` names it."""
    return sep.join(short(path) for _, path in models)


def model_name(models, views: int = 1) -> str:
    """"best.npz", or "a/best.npz + b/best.npz" for an ensemble (runs' files all share the
    name best.npz), and ", mean of V views" when V > 1."""
    name = models[0][1].name if len(models) == 1 else short_all(models)
    return name + (f", mean of {views} views" if views > 1 else "")


def scorer(models):
    """The score of the loaded ``models`` (the mean of their logits) -> (score, its name)."""
    score = oneshot.ensemble([model_score(m) for m, _ in models])
    if len(models) == 1:
        return score, f"model {models[0][1]}"
    return score, f"ensemble of {len(models)} models ({short_all(models, ', ')})"
