"""``reglab runs`` and ``reglab show``: find stored studies and runs, and look at one run."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from reglab.cli._common import OutOption, console, open_existing_store, percent


class RunStatus(str, Enum):
    finished = "finished"
    failed = "failed"


class RunRole(str, Enum):
    run = "run"
    lr_search = "lr-search"
    all = "all"


def runs(
    study: Optional[str] = typer.Option(None, "--study", help="Only runs of this study."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only runs on this data set."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="Only runs of this strategy."),
    status: Optional[RunStatus] = typer.Option(None, "--status", help="Only finished or only failed runs."),
    role: RunRole = typer.Option(
        RunRole.run, "--role", help="'run' for the compared runs, 'lr-search' for learning-rate search runs, or 'all'."
    ),
    out: Path = OutOption,
) -> None:
    """List the stored studies and their runs, with filters."""
    with open_existing_store(out) as store:
        if study is None:
            console.print(studies_table(store.study_overview()))
        found = store.find_runs(
            study=study,
            dataset=dataset,
            strategy=strategy,
            status=status.value if status else None,
            role=None if role is RunRole.all else role.value,
        )
        verdicts = {item["run_id"]: item["identical"] for item in store.verifications()}

    if not found:
        console.print("No runs match these filters.")
        return
    console.print(runs_table(found, verdicts, show_role=role is not RunRole.run))
    console.print("Show one run with: reglab show RUN_ID", highlight=False)


def studies_table(rows: list[dict[str, Any]]) -> Table:
    """Build the table of studies: name, data, last update and counts of runs (role 'run')."""
    table = Table(title="studies", box=box.SIMPLE_HEAD, caption="times in UTC")
    for column in ("study", "dataset", "model", "updated", "finished", "failed"):
        table.add_column(column, justify="right" if column in ("finished", "failed") else "left", overflow="fold")
    for row in rows:
        updated = row["updated"].replace("T", " ")[:16]
        table.add_row(row["name"], row["dataset"], row["model"], updated, str(row["finished"]), str(row["failed"]))
    return table


def runs_table(found: list[dict[str, Any]], verdicts: dict[int, bool], *, show_role: bool = False) -> Table:
    """Build the table of runs: study, strategy, seed, metrics in percent and the reproduction verdict."""
    show_verdicts = any(run["id"] in verdicts for run in found)
    show_errors = any(run["error"] for run in found)
    caption = "accuracies in %" + ("; reproduced: ✓ identical, ✗ mismatch, blank never reproduced" if show_verdicts else "")
    table = Table(title="runs", caption=caption, box=box.SIMPLE_HEAD)
    columns = ("id", "study", "role", "strategy", "seed", "status") if show_role else ("id", "study", "strategy", "seed", "status")
    for column in columns:
        table.add_column(column, justify="right" if column in ("id", "seed") else "left", overflow="fold")
    for column in ("epochs", "val", "test") + (("reproduced",) if show_verdicts else ()):
        table.add_column(column, justify="right")
    if show_errors:
        table.add_column("error", overflow="fold", min_width=20)
    for run in found:
        final = run["final_metrics"] or {}
        test = run["test_metrics"] or {}
        identity = [str(run["id"]), run["study"]] + ([run["role"]] if show_role else []) + [run["strategy"]]
        cells = [
            *identity,
            str(run["seed"]),
            run["status"],
            str(len(run["history"])),
            percent(final.get("val_acc")),
            percent(test.get("test_acc")),
        ]
        if show_verdicts:
            verdict = verdicts.get(run["id"])
            if verdict is None:
                cells.append("")
            else:
                cells.append("✓" if verdict else "✗")
        if show_errors:
            cells.append(run["error"] or "")
        table.add_row(*cells)
    return table


def show(
    run_id: int = typer.Argument(..., help="The run's id, as listed by 'reglab runs'."),
    out: Path = OutOption,
) -> None:
    """Print one run: its settings, per-epoch history, metrics, test accesses and reproductions."""
    from reglab.errors import ConfigError

    with open_existing_store(out) as store:
        run = store.run(run_id)
        if run is None:
            raise ConfigError(f"run {run_id} not found in {store.path}; list the runs with 'reglab runs'.")
        verifications = store.verifications(run_id)

    console.print(
        f"[bold]Run {run['id']}[/] of study {run['study']!r}: strategy {run['strategy']!r}, seed {run['seed']}, "
        f"role {run['role']}, {run['status']} {run['finished']}",
        highlight=False,
    )
    if run["error"]:
        console.print(f"[red]error:[/] {run['error']}", highlight=False)
    console.print("[bold]Settings[/]")
    console.print_json(json.dumps(run["config"]))
    if run["split"]:
        console.print(f"Split: seed {run['split'].get('seed')}, sizes {run['split'].get('sizes')}", highlight=False)
    console.print(f"Versions: {', '.join(f'{k} {v}' for k, v in (run['versions'] or {}).items())}", highlight=False)

    if run["history"]:
        console.print(history_table(run["history"], run["best_epoch"]))
    if run["final_metrics"]:
        console.print(f"Stopped: {run['stop_reason']}; weights of epoch {run['best_epoch']} kept.", highlight=False)
        console.print(metrics_table(run["final_metrics"], run["test_metrics"] or {}))
    for access in run["test_accesses"] or []:
        console.print(f"Test set opened {access['time']}: {access['purpose']}", highlight=False)
    for item in verifications:
        verdict = "identical" if item["identical"] else "MISMATCH"
        differing = ", ".join(d["metric"] for d in item["details"]["differences"][:5])
        console.print(
            f"Reproduced {item['created']}: {verdict}" + (f" ({differing})" if differing else ""), highlight=False
        )


def history_table(history: list[dict[str, float]], best_epoch: int | None) -> Table:
    """Build the per-epoch table; the kept epoch is marked with *."""
    table = Table(title="history", box=box.SIMPLE_HEAD, caption="accuracies in %; * = weights kept")
    for column in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap", "seconds"):
        table.add_column(column, justify="right")
    for row in history:
        marker = "*" if row["epoch"] == best_epoch else ""
        table.add_row(
            f"{row['epoch']}{marker}",
            f"{row['train_loss']:.4f}",
            percent(row["train_acc"]),
            f"{row['val_loss']:.4f}",
            percent(row["val_acc"]),
            percent(row["gap"]),
            f"{row['seconds']:.2f}",
        )
    return table


def metrics_table(final: dict[str, float], test: dict[str, float]) -> Table:
    """Build the table of final train and validation metrics and the sealed test metrics."""
    table = Table(title="metrics of the kept weights", box=box.SIMPLE_HEAD)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in {**final, **test}.items():
        text = percent(value) + " %" if name.endswith("_acc") or name.endswith("gap") else f"{value:.4f}"
        table.add_row(name, text)
    return table
