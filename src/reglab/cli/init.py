"""``reglab init``: write a commented example study file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._common import console


def init(
    path: Path = typer.Argument(Path("study.yaml"), help="Where to write the study file."),
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
    analysis: Optional[str] = typer.Option(
        None,
        "--analysis",
        help=(
            "Write the example of an analysis command instead of 'reglab compare': learning-curve, "
            "validation-curve, bias-variance, boundaries, geometry, mc-curve or capacity."
        ),
        show_default=False,
    ),
) -> None:
    """Write a commented example study file to run with 'reglab compare PATH' (or 'reglab ANALYSIS PATH')."""
    from reglab.study.studyfile import write_example_study_file

    written = write_example_study_file(path, overwrite=force, analysis=analysis)
    command = analysis or "compare"
    console.print(f"Wrote {written}. Edit it, then run: reglab {command} {written}", highlight=False)
