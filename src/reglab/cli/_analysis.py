"""Pieces shared by the analysis subcommands: output folders, list parsing and progress lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from reglab.cli._common import MODEL_HELP, console, parse_csv_list
from reglab.errors import ConfigError

ANALYSES_FOLDER = Path("reglab-runs") / "analyses"


def out_option(command: str, help: str = "Output folder for the figure (PNG, SVG) and the CSV of numbers.") -> Any:
    """Return the ``--out`` option of an analysis, defaulting to ``reglab-runs/analyses/<command>``."""
    return typer.Option(ANALYSES_FOLDER / command, "--out", "-o", help=help)


def model_option(default: str) -> Any:
    """Return the ``--model`` option of an analysis with the model spec ``default``."""
    return typer.Option(default, "--model", "-m", help=MODEL_HELP)


DpiOption = typer.Option(110, "--dpi", min=10, help="Resolution of the PNG figure in dots per inch.")
ThreadsOption = typer.Option(1, "--threads", min=1, help="CPU threads for torch. Raise it on a machine with idle cores.")


def seeds_option(default: int) -> Any:
    """Return the ``--seeds`` option: the number of seeds, used as 0, 1, ..., n-1."""
    return typer.Option(default, "--seeds", min=1, help="Number of seeds (0, 1, ...); the figure shows their spread.")


def parse_numbers(option: str, text: str) -> list[float]:
    """Parse a comma-separated list of numbers, raising ConfigError that names the option."""
    numbers = []
    for item in parse_csv_list(text):
        try:
            numbers.append(float(item))
        except ValueError:
            raise ConfigError(f"{option}: expected comma-separated numbers, got {item!r} in {text!r}.") from None
    if not numbers:
        raise ConfigError(f"{option}: expected at least one number, got {text!r}.")
    return numbers


def progress_printer(quiet: bool) -> Optional[Callable[[str], None]]:
    """Return an ``on_run`` callback that prints ``run i: description``, or None when quiet."""
    if quiet:
        return None
    count = 0

    def show(description: str) -> None:
        nonlocal count
        count += 1
        console.print(f"run {count}: {description}", highlight=False, markup=False)

    return show


def print_summary(summary: str, paths: list[Path]) -> None:
    """Print an analysis's summary, then list the files it wrote."""
    console.print(summary, highlight=False)
    print_written(paths)


def print_written(paths: list[Path]) -> None:
    """List the files an analysis wrote."""
    console.print("Wrote " + ", ".join(str(path) for path in paths), highlight=False, markup=False)
