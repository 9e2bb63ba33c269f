"""The ``reglab`` command line.

Each subcommand lives in its own module and imports torch lazily, so ``reglab --help``
answers quickly. Errors a user can fix are printed as one message, without a traceback,
and exit with status 2.
"""

from __future__ import annotations

import logging

import typer

from reglab.cli._common import console, handle_errors
from reglab.cli.compare import compare
from reglab.cli.train import train

app = typer.Typer(
    name="reglab",
    help="Regularize PyTorch networks and measure how much each regularizer helps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(handle_errors(compare))
app.command()(handle_errors(train))


def main() -> None:
    """Run the ``reglab`` command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


__all__ = ["app", "console", "main"]
