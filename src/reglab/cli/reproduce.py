"""``reglab reproduce``: retrain a stored run and check that its metrics come out identical."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._common import (
    DataDirOption,
    DeviceOption,
    DownloadOption,
    OutOption,
    console,
    error_console,
    open_existing_store,
)


def reproduce(
    run_id: int = typer.Argument(..., help="The run's id, as listed by 'reglab runs'."),
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
) -> None:
    """Retrain a run from its stored settings and seed, and compare every metric exactly.

    Exits with status 1 when any metric differs (on a GPU: by more than the stated
    tolerance). The verdict is stored with the run.
    """
    from reglab.study.reproduce import reproduce_run

    with open_existing_store(out, read_only=False) as store:
        verification = reproduce_run(
            store, run_id, data_dir=str(data_dir) if data_dir else None, download=download, device=device
        )

    for note in verification.notes:
        console.print(f"Note: {note}", highlight=False)
    if verification.identical:
        console.print(
            f"Run {run_id} reproduced: all {verification.compared} values identical "
            "(history, final metrics, test metrics). The reproduction opened a fresh copy of the "
            "sealed test set; it is stored as a reproduction and the run still counts one evaluation.",
            highlight=False,
        )
        return
    if verification.passed:
        console.print(
            f"Run {run_id} reproduced within the tolerance {verification.tolerance:g}: "
            f"{len(verification.differences)} of {verification.compared} values differ, by at most "
            f"{verification.largest_difference:.3g}.",
            highlight=False,
        )
        return

    error_console.print(
        f"[bold red]MISMATCH:[/] run {run_id} did not reproduce; "
        f"{len(verification.differences)} of {verification.compared} values differ:",
        highlight=False,
    )
    for difference in verification.differences[:20]:
        error_console.print(
            f"  {difference.metric}: stored {difference.stored!r}, reproduced {difference.reproduced!r}", highlight=False
        )
    if len(verification.differences) > 20:
        error_console.print(f"  ... and {len(verification.differences) - 20} more", highlight=False)
    raise typer.Exit(1)

