"""``tinysiamese gradcheck``: prove every backward pass by finite differences."""
from __future__ import annotations

import json
import sys

import click

from .. import gradcheck
from ..backend import get_backend
from .options import CONTEXT, backend_option, json_option


@click.command("gradcheck", context_settings=CONTEXT)
@click.option("--layer", "layer_spec", default=None,
              help="Check one layer: a name (Conv2D, MaxPool2D, ConvPool2D, Dense, ReLU, Sigmoid, "
                   "Flatten, WeightedL1, SiameseNet) or your own class as module:Class.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for shapes' values.")
@backend_option
@json_option
def gradcheck_command(layer_spec, seed, backend_name, as_json):
    """Prove every backward pass by central finite differences in float64.

    Prints one row per tensor: layer, tensor, shape, relative error
    max|a - n| / max(|a| + |n|), and pass/fail (error < 1e-6). Exits 0 when all pass.
    With --json, one object {"results": [{"layer", "tensor", "shape", "rel_error",
    "passed"}, ...], "passed": bool}, for autograders.

    \b
    Examples:
      tinysiamese gradcheck
      tinysiamese gradcheck --layer Conv2D --seed 3
      tinysiamese gradcheck --layer mylayers:MyConv2D    # your own layer, same API
      tinysiamese gradcheck --json
    """
    backend = get_backend(backend_name, "float32")
    cls = None
    if layer_spec is None:
        kinds = list(gradcheck.LAYER_NAMES)
    elif ":" in layer_spec:
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
    failed = [r for r in results if not r.passed]
    if as_json:
        click.echo(json.dumps({"results": [
            {"layer": r.layer, "tensor": r.tensor, "shape": list(r.shape),
             "rel_error": float(r.rel_error), "passed": bool(r.passed)} for r in results],
            "passed": not failed}))
    else:
        rows = [("layer", "tensor", "shape", "rel. error", "result")]
        rows += [(r.layer, r.tensor, str(r.shape), f"{r.rel_error:.2e}", "ok" if r.passed else "FAIL")
                 for r in results]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed (tolerance "
                   f"{gradcheck.TOLERANCE:g}, float64, backend {backend.name})", err=True)
    sys.exit(1 if failed else 0)


COMMANDS = [gradcheck_command]
