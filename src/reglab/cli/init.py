"""``reglab init``: write a commented example study file."""

from __future__ import annotations

from pathlib import Path

import typer

from reglab.cli._common import console


def init(
    path: Path = typer.Argument(Path("study.yaml"), help="Where to write the study file."),
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
) -> None:
    """Write a commented example study file to run with 'reglab compare PATH'."""
    from reglab.study.studyfile import write_example_study_file

    written = write_example_study_file(path, overwrite=force)
    console.print(f"Wrote {written}. Edit it, then run: reglab compare {written}", highlight=False)
