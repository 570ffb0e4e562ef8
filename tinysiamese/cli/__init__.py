"""The command line: ``tinysiamese train | eval | verify | gradcheck | data | plot ...``.

One module per group of commands; they only parse options and print, and the work happens
in the package's modules. What the commands share (options, models, the exit codes of the
package's exceptions) is in options.py.
"""
from __future__ import annotations

import click

from .. import __version__
from ..threads import products_on_our_threads

products_on_our_threads()  # before NumPy loads OpenBLAS, which the commands below import
from . import data, evaluate, gradcheck, images, pictures, train  # noqa: E402
from .options import CONTEXT, Commands


@click.group(cls=Commands, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="tinysiamese")
def main():
    """Siamese networks for one-shot image recognition (Koch et al. 2015), from scratch.

    \b
    Start with:
      tinysiamese verify a.png b.png           # the model shipped with the package
      tinysiamese data download                # the Omniglot archives
      tinysiamese train --epochs 1 --steps-per-epoch 20   # a one-minute try
      tinysiamese train                        # train the small preset (CPU, < 1 hour)
      tinysiamese eval runs/<run>/best.npz     # 20-way one-shot accuracy
      tinysiamese gradcheck                    # prove every backward pass
    """


for module in (data, train, evaluate, images, gradcheck, pictures):
    for command in module.COMMANDS:
        main.add_command(command)
