"""``reglab capacity``: accuracy, gap, dead ReLUs and weight norms over MLP widths and depths."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from reglab.cli._analysis import DpiOption, ThreadsOption, out_option
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    LrOption,
    batch_size_option,
    console,
    parse_int_list,
    prepare_output_folder,
)


def capacity(
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

    width_list = parse_int_list("--widths", widths)
    depth_list = parse_int_list("--depths", depths)
    out = prepare_output_folder(out)
    result = capacity_sweep(
        dataset,
        widths=width_list,
        depths=depth_list,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        data_dir=str(data_dir) if data_dir else None,
        threads=threads,
    )
    written = render_capacity(result, out, dpi)

    table = Table(title=f"Capacity sweep on {result.dataset}: mean over {seeds} seed(s)")
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
