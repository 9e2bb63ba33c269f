"""The ``reglab`` command line.

Each subcommand lives in its own module. Errors a user can fix are printed as one message,
without a traceback, and exit with status 2.
"""

from __future__ import annotations

import logging

import typer

from reglab.cli._common import console, escape_help_texts, fold_long_help_words, handle_errors
from reglab.cli.boundaries import boundaries
from reglab.cli.capacity import capacity
from reglab.cli.compare import compare
from reglab.cli.export import export
from reglab.cli.init import init
from reglab.cli.leaderboard import leaderboard
from reglab.cli.report import report
from reglab.cli.reproduce import reproduce
from reglab.cli.runs import runs, show
from reglab.cli.geometry import geometry
from reglab.cli.mc_curve import mc_curve
from reglab.cli.train import train
from reglab.cli.compete import compete
from reglab.cli.tune import tune
from reglab.cli.learning_curve import learning_curve
from reglab.cli.validation_curve import validation_curve
from reglab.cli.bias_variance import bias_variance

app = typer.Typer(
    name="reglab",
    help="Regularize PyTorch networks and measure how much each regularizer helps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(handle_errors(compare))
app.command()(handle_errors(train))
app.command()(handle_errors(init))
app.command()(handle_errors(runs))
app.command()(handle_errors(show))
app.command()(handle_errors(report))
app.command()(handle_errors(export))
app.command()(handle_errors(reproduce))
app.command()(handle_errors(leaderboard))
app.command(name="geometry")(handle_errors(geometry))
app.command(name="boundaries")(handle_errors(boundaries))
app.command(name="mc-curve")(handle_errors(mc_curve))
app.command(name="capacity")(handle_errors(capacity))
app.command(name="learning-curve")(handle_errors(learning_curve))
app.command(name="validation-curve")(handle_errors(validation_curve))
app.command(name="bias-variance")(handle_errors(bias_variance))
app.command()(handle_errors(tune))
app.command()(handle_errors(compete))
escape_help_texts(app)
fold_long_help_words()


def main() -> None:
    """Run the ``reglab`` command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


__all__ = ["app", "console", "main"]
