"""``reglab capacity``: accuracy, gap, dead ReLUs and weight norms over MLP widths and depths."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from reglab.cli._analysis import DpiOption, ThreadsOption, out_option, resolve_analysis, study_file_argument
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    LrOption,
    batch_size_option,
    console,
    parse_int_list,
)


def capacity(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("capacity"),
    dataset: str = DatasetOption,
    widths: str = typer.Option("16,64,256,1024", "--widths", help="Units per hidden layer, comma-separated."),
    depths: str = typer.Option("1,2", "--depths", help="Numbers of hidden layers, comma-separated."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0, 1, ...) per size."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Training epochs per run."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    threads: int = ThreadsOption,
    out: Path = out_option("capacity", help="Output folder."),
    dpi: int = DpiOption,
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Train unregularized MLPs of several widths and depths and compare their fit."""
    from reglab.analysis.capacity import capacity_sweep, render_capacity

    run = resolve_analysis(
        ctx,
        "capacity",
        study_file,
        out,
        dataset=dataset,
        widths=parse_int_list("--widths", widths),
        depths=parse_int_list("--depths", depths),
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        threads=threads,
        dpi=dpi,
    )
    settings = dict(run.settings)
    dpi = settings.pop("dpi")
    result = capacity_sweep(**settings, data_dir=str(data_dir) if data_dir else None)
    written = [*render_capacity(result, run.out, dpi), run.write_settings()]

    table = Table(title=f"Capacity sweep on {result.dataset}: mean over {len(settings['seeds'])} seed(s)")
    for column in ("depth", "width", "parameters", "train %", "val %", "gap", "dead ReLUs % per layer"):
        table.add_column(column, justify="right")
    for depth in result.depths:
        for width in result.widths:
            runs = result.select(width, depth)
            dead = [sum(run.dead_fraction[layer] for run in runs) / len(runs) * 100 for layer in range(depth)]
            table.add_row(
                str(depth),
                str(width),
                f"{runs[0].n_params:,}",
                f"{sum(run.train_acc for run in runs) / len(runs) * 100:.2f}",
                f"{sum(run.val_acc for run in runs) / len(runs) * 100:.2f}",
                f"{sum(run.gap for run in runs) / len(runs) * 100:+.2f}",
                " / ".join(f"{value:.1f}" for value in dead),
            )
    console.print(table)
    console.print(f"Wrote {', '.join(str(path) for path in written)}.", highlight=False)
