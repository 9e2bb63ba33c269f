"""``reglab mc-curve``: Monte-Carlo dropout accuracy and NLL against the number of passes."""

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


def mc_curve(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("mc-curve"),
    dataset: str = DatasetOption,
    model: str = typer.Option("mlp:512,512", "--model", "-m", help="Model spec 'mlp:W1,W2,...' with at least one hidden layer."),
    dropout: float = typer.Option(0.5, "--dropout", help="Drop probability p after each hidden layer, in (0, 1)."),
    input_dropout: float = typer.Option(0.0, "--input-dropout", help="Drop probability on the input, in [0, 1)."),
    samples: str = typer.Option("1,2,5,10,20,50,100", "--samples", help="Numbers of passes T to score, comma-separated, from 1 to 1000."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0, 1, ...); one trained network each."),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Training epochs per seed."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    threads: int = ThreadsOption,
    out: Path = out_option("mc-curve", help="Output folder."),
    dpi: int = DpiOption,
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Score Monte-Carlo dropout (arithmetic and geometric mean) against the number of passes T."""
    from reglab.analysis.mc_curve import mc_dropout_curve, render_mc_curve

    run = resolve_analysis(
        ctx,
        "mc-curve",
        study_file,
        out,
        dataset=dataset,
        model=model,
        dropout=dropout,
        input_dropout=input_dropout,
        samples=parse_int_list("--samples", samples),
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        threads=threads,
        dpi=dpi,
    )
    settings = run.settings
    result = mc_dropout_curve(
        settings["dataset"],
        model=settings["model"],
        p=settings["dropout"],
        input_p=settings["input_dropout"],
        samples=settings["samples"],
        seeds=settings["seeds"],
        epochs=settings["epochs"],
        lr=settings["lr"],
        batch_size=settings["batch_size"],
        data_dir=str(data_dir) if data_dir else None,
        threads=settings["threads"],
    )
    written = [*render_mc_curve(result, run.out, settings["dpi"]), run.write_settings()]

    seed_count = len(settings["seeds"])
    table = Table(title=f"Monte-Carlo dropout on {result.dataset}, {result.model}, p={result.p:g}: mean over {seed_count} seed(s)")
    for column in ("T", "arithmetic acc %", "arithmetic NLL", "geometric acc %", "geometric NLL"):
        table.add_column(column, justify="right")
    for column, count in enumerate(result.samples):
        table.add_row(
            str(count),
            f"{result.accuracy['arithmetic'][:, column].mean() * 100:.2f}",
            f"{result.nll['arithmetic'][:, column].mean():.4f}",
            f"{result.accuracy['geometric'][:, column].mean() * 100:.2f}",
            f"{result.nll['geometric'][:, column].mean():.4f}",
        )
    table.add_row(
        "deterministic",
        f"{result.deterministic_accuracy.mean() * 100:.2f}",
        f"{result.deterministic_nll.mean():.4f}",
        "",
        "",
    )
    console.print(table)
    console.print(f"Wrote {', '.join(str(path) for path in written)}.", highlight=False)
