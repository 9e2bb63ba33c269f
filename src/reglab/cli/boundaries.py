"""``reglab boundaries``: decision regions of a network for a row of L2 strengths and a row of
dropout probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from reglab.cli._analysis import DpiOption, model_option, out_option, resolve_analysis, study_file_argument
from reglab.cli._common import (
    DataDirOption,
    LrOption,
    batch_size_option,
    console,
    parse_number_list,
)


def boundaries(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("boundaries"),
    dataset: str = typer.Option("moons", "--dataset", "-d", help="moons, circles, or csv:PATH with two feature columns."),
    model: str = model_option("mlp:64,64"),
    l2: str = typer.Option("0,1e-3,1e-2,1e-1", "--l2", help="L2 strengths of the top row, comma-separated."),
    dropout: str = typer.Option("0,0.2,0.5,0.8", "--dropout", help="Drop probabilities of the bottom row, comma-separated, each in [0, 1)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0, 1, ...) per setting."),
    epochs: int = typer.Option(300, "--epochs", min=1, help="Training epochs per run."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(32),
    samples: int = typer.Option(200, "--samples", min=6, help="Points drawn for moons and circles (60% train)."),
    noise: float = typer.Option(0.3, "--noise", help="Noise standard deviation of moons and circles."),
    grid: int = typer.Option(100, "--grid", min=2, help="Grid points per axis."),
    out: Path = out_option("boundaries", help="Output folder."),
    dpi: int = DpiOption,
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Draw decision regions for several L2 strengths and dropout probabilities, with accuracies."""
    from reglab.analysis.boundaries import decision_boundaries, render_boundaries

    run = resolve_analysis(
        ctx,
        "boundaries",
        study_file,
        out,
        dataset=dataset,
        model=model,
        l2=parse_number_list("--l2", l2),
        dropout=parse_number_list("--dropout", dropout),
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        samples=samples,
        noise=noise,
        grid=grid,
        dpi=dpi,
    )
    settings = run.settings
    result = decision_boundaries(
        settings["dataset"],
        model=settings["model"],
        l2_strengths=settings["l2"],
        dropout_ps=settings["dropout"],
        seeds=settings["seeds"],
        epochs=settings["epochs"],
        lr=settings["lr"],
        batch_size=settings["batch_size"],
        n_samples=settings["samples"],
        noise=settings["noise"],
        grid_size=settings["grid"],
        data_dir=str(data_dir) if data_dir else None,
    )
    written = [*render_boundaries(result, run.out, settings["dpi"]), run.write_settings()]

    table = Table(title=f"{result.model} on {result.dataset}: mean over {len(settings['seeds'])} seed(s)")
    for column in ("setting", "train %", "test %", "train − test", "boundary complexity"):
        table.add_column(column, justify="right")
    for panel in result.panels:
        table.add_row(
            panel.title,
            f"{panel.train_acc.mean() * 100:.1f}",
            f"{panel.test_acc.mean() * 100:.1f}",
            f"{panel.gap.mean() * 100:+.1f}",
            f"{panel.complexity.mean():.4f}",
        )
    console.print(table)
    console.print(f"Wrote {', '.join(str(path) for path in written)}.", highlight=False)
