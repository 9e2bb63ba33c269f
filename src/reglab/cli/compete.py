"""``reglab compete``: the best-known recipe for a data set within a wall-clock budget."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from reglab.cli._common import (
    DataDirOption,
    DeviceOption,
    DownloadOption,
    OutOption,
    QuietOption,
    console,
    percent,
    prepare_output_folder,
)


def compete(
    dataset: str = typer.Option(
        "fashion-mnist", "--dataset", "-d", help="Data set: fashion-mnist, mnist, mnist-5k, digits, csv:PATH, ..."
    ),
    budget: str = typer.Option("30m", "--budget", help="Wall-clock budget, e.g. 30m, 90s, 1h or 1h30m."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the split and of every run."),
    verify: bool = typer.Option(
        False, "--verify", help="Keep half of the training time for a reproduction of the final run."
    ),
    name: Optional[str] = typer.Option(
        None,
        "--name",
        help="Study name in the run database, compete-DATASET by default. A rerun with the same name resumes "
        "from its stored runs and their epoch times; a new name probes and trains afresh.",
    ),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help=(
            "Precision of every candidate: fp32, bf16 (forward passes in bfloat16), or auto: bf16 where the "
            "device computes bfloat16 natively (CPUs with AMX or AVX-512 BF16, recent GPUs), else fp32."
        ),
    ),
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Select a recipe on validation data, train it within the budget and evaluate the test set once."""
    from reglab.study.compete import compete as run_compete
    from reglab.study.compete import format_seconds, overrun_message, parse_budget, resolve_precision
    from reglab.study.store import RunStore

    budget_seconds = parse_budget(budget)
    precision = resolve_precision(precision, device)
    out = prepare_output_folder(out)

    def say(text: str) -> None:
        if not quiet:
            console.print(text, highlight=False)

    def show_epoch(epoch: int, row: dict[str, float]) -> None:
        say(f"epoch {epoch:3d}  train_acc {percent(row['train_acc'])}%  val_acc {percent(row['val_acc'])}%  ({row['seconds']:.0f} s)")

    with RunStore(out / "reglab.db") as store:
        result = run_compete(
            dataset,
            budget_seconds,
            store,
            seed=seed,
            device=device,
            verify=verify,
            data_dir=str(data_dir) if data_dir else None,
            download=download,
            precision=precision,
            name=name,
            on_message=say,
            on_epoch_end=show_epoch,
        )

    folder = prepare_output_folder(out / result.study)
    (folder / "compete.json").write_text(json.dumps(asdict(result), indent=2) + "\n")

    probes = Table(title="selection on validation data", box=box.SIMPLE_HEAD)
    for column in ("recipe", "probe epochs", "val %", "s / epoch", "note"):
        probes.add_column(column, justify="left" if column in ("recipe", "note") else "right")
    for probe in result.probes:
        probes.add_row(
            probe.recipe,
            str(probe.epochs),
            percent(probe.val_acc) if probe.val_acc is not None else "–",
            f"{probe.seconds_per_epoch:.1f}" if probe.seconds_per_epoch is not None else "–",
            probe.note,
        )
    console.print(probes)

    verdict = {True: "✓ identical", False: "✗ mismatch", None: "not run (no time left)"}[result.verified]
    reused = " (the stored final run of an earlier competition with this name)" if result.reused else ""
    console.print(
        f"[bold]{result.recipe}[/bold]{reused} ({result.model}, {result.precision}; {result.description}): "
        f"test accuracy {percent(result.test_acc)}% after {result.epochs} epochs "
        f"(weights of epoch {result.best_epoch}, validation {percent(result.val_acc)}%), "
        f"{format_seconds(result.seconds)} of a {format_seconds(result.budget_seconds)} budget. Reproduction: {verdict}.",
        highlight=False,
    )
    overrun = overrun_message(result)
    if overrun is not None:
        console.print(f"[yellow]Over budget:[/] it {overrun}", highlight=False)
    console.print(f"Stored as run {result.run_id} of study {result.study!r} in {out / 'reglab.db'}; see `reglab leaderboard`.")
