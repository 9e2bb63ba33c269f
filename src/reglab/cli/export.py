"""``reglab export``: write every stored run of a study and its history as CSV or JSON."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from reglab.cli._common import OutOption, console, open_existing_store


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


def export(
    study: str = typer.Argument(..., help="The study's name, as listed by 'reglab runs'."),
    format: ExportFormat = typer.Option(
        ExportFormat.csv, "--format", "-f", help="csv: runs.csv and history.csv; json: runs.json."
    ),
    to: Optional[Path] = typer.Option(None, "--to", help="Folder for the exported files. Default: OUT/STUDY."),
    out: Path = OutOption,
) -> None:
    """Export all runs of a study (learning-rate search included) with their per-epoch history."""
    from reglab.study.export import export_study

    with open_existing_store(out) as store:
        written = export_study(store, study, format.value, to or out / study)
    for path in written:
        console.print(f"Wrote {path}", highlight=False)
