"""``reglab leaderboard``: finished runs ranked by sealed test accuracy, with their reproductions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from reglab.cli._common import OutOption, console, open_existing_store, percent


def leaderboard(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this data set."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many ranked runs."),
    out: Path = OutOption,
) -> None:
    """Rank finished runs by sealed test accuracy; runs whose test set was opened twice are excluded."""
    from reglab.study.leaderboard import build_leaderboard

    with open_existing_store(out) as store:
        board = build_leaderboard(store, dataset=dataset)

    if not board.entries and not board.excluded:
        console.print("No finished runs" + (f" on {dataset!r}" if dataset else "") + " in the store.")
        return

    table = Table(title="leaderboard", caption=board.caption, box=box.SIMPLE_HEAD)
    columns = ["rank", "run", "study"] + (["dataset"] if dataset is None else []) + ["strategy", "seed", "val %", "test %"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("study", "dataset", "strategy") else "right", overflow="fold")
    table.add_column("min", justify="right")
    table.add_column("reproduced")
    table.add_column("settings", overflow="fold")
    for entry in board.entries[:limit]:
        verified = {True: "✓ identical", False: "✗ mismatch", None: "–"}[entry.verified]
        cells = [str(entry.rank), str(entry.run_id), entry.study] + ([entry.dataset] if dataset is None else [])
        minutes = f"{entry.seconds / 60:.1f}" if entry.seconds is not None else "–"
        cells += [entry.strategy, str(entry.seed), percent(entry.val_acc), percent(entry.test_acc), minutes, verified]
        cells.append(entry.settings)
        table.add_row(*cells)
    console.print(table)
    if len(board.entries) > limit:
        console.print(f"{len(board.entries) - limit} more ranked run(s); show them with --limit.")

    if board.excluded:
        excluded = Table(title="excluded from the ranking", box=box.SIMPLE_HEAD)
        for column in ("run", "study", "strategy", "seed", "reason"):
            excluded.add_column(column, justify="right" if column in ("run", "seed") else "left", overflow="fold")
        for run in board.excluded:
            excluded.add_row(str(run.run_id), run.study, run.strategy, str(run.seed), run.reason)
        console.print(excluded)
