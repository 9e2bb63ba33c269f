"""Pieces shared by the analysis subcommands: output folders, list parsing and progress lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from reglab.cli._common import (
    MODEL_HELP,
    console,
    error_console,
    given_on_command_line,
    prepare_output_folder,
)

ANALYSES_FOLDER = Path("reglab-runs") / "analyses"


def out_option(command: str, help: str = "Output folder for the figure (PNG, SVG) and the CSV of numbers.") -> Any:
    """Return the ``--out`` option of an analysis, defaulting to ``reglab-runs/analyses/<command>``."""
    return typer.Option(ANALYSES_FOLDER / command, "--out", "-o", help=help)


def study_file_argument(command: str) -> Any:
    """Return the optional STUDY_FILE argument of analysis ``command``."""
    section = command.replace("-", "_")
    return typer.Argument(
        None,
        help=(
            f"YAML study file: the settings shared with 'reglab compare' plus a '{section}:' section "
            f"(write an example with 'reglab init --analysis {command}'). Options given explicitly override it."
        ),
        show_default=False,
    )


@dataclass
class AnalysisRun:
    """The settings an analysis runs with and the folder it writes to.

    Attributes:
        command: the analysis command, e.g. ``learning-curve``.
        settings: option values by parameter name, after the study file and the command line.
        out: the output folder, created and checked for writing.
        name: the study file's ``name``, kept in the ``study.yaml`` written beside the results.
    """

    command: str
    settings: dict[str, Any]
    out: Path
    name: Optional[str] = None

    def write_settings(self) -> Path:
        """Write :attr:`settings` to ``out/study.yaml``, a study file that runs the analysis again."""
        from reglab.study.analysisfile import write_analysis_settings

        return write_analysis_settings(self.out, self.command, self.settings, name=self.name)


def resolve_analysis(
    ctx: typer.Context, command: str, study_file: Optional[Path], out: Path, **settings: Any
) -> AnalysisRun:
    """Merge the study file into the options of analysis ``command`` and prepare the output folder.

    ``settings`` are the command's option values by parameter name (defaults or given). A
    value the study file sets replaces an option's default but not a value given on the
    command line. When the file sets ``name`` and ``--out`` is not given, the output goes
    to ``reglab-runs/analyses/<name>/<command>``.

    Raises:
        ConfigError: the study file is invalid for ``command``, or the output folder is not writable.
    """
    name = None
    if study_file is not None:
        from reglab.study.analysisfile import read_analysis_file

        contents = read_analysis_file(study_file, command)
        for option, value in contents.values.items():
            if not given_on_command_line(ctx, option):
                settings[option] = value
        name = contents.name
        if name is not None and not given_on_command_line(ctx, "out"):
            out = ANALYSES_FOLDER / name / command
    out = prepare_output_folder(out)
    if study_file is not None:
        warn_other_study_file(out, study_file)
    return AnalysisRun(command, settings, out, name)


#: The file in an analysis's output folder that names the study file that last wrote there.
SOURCE_FILE = ".study-file"


def warn_other_study_file(out: Path, study_file: Path) -> list[Path]:
    """Warn when the outputs in ``out`` came from another study file, and record ``study_file`` as their source.

    Two study files with the same ``name`` share ``reglab-runs/analyses/<name>/<command>``,
    so the second overwrites the first's figures and CSV files. The run goes on, as with
    any output folder, and the warning names the files that it overwrites.

    Returns:
        The existing files that the analysis overwrites; empty when ``out`` held results of
        the same study file, or none.
    """
    marker = out / SOURCE_FILE
    source = str(study_file.resolve())
    previous = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    overwritten = []
    if previous is not None and previous != source:
        overwritten = sorted(path for path in out.iterdir() if path.is_file() and path.name != SOURCE_FILE)
        if overwritten:
            names = ", ".join(path.name for path in overwritten)
            error_console.print(
                f"[yellow]Warning:[/] {escape(str(out))} holds the results of study file {escape(previous)}, which has "
                f"the same name; this run of {escape(source)} overwrites {escape(names)}. Give one of the files "
                "another name, or pass --out, to keep both.",
                highlight=False,
                soft_wrap=True,
            )
    marker.write_text(source + "\n", encoding="utf-8")
    return overwritten


def model_option(default: str) -> Any:
    """Return the ``--model`` option of an analysis with the model spec ``default``."""
    return typer.Option(default, "--model", "-m", help=MODEL_HELP)


DpiOption = typer.Option(110, "--dpi", min=10, help="Resolution of the PNG figure in dots per inch.")
ThreadsOption = typer.Option(1, "--threads", min=1, help="CPU threads for torch. Raise it on a machine with idle cores.")


def seeds_option(default: int) -> Any:
    """Return the ``--seeds`` option: the number of seeds, used as 0, 1, ..., n-1."""
    return typer.Option(default, "--seeds", min=1, help="Number of seeds (0, 1, ...); the figure shows their spread.")


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
