"""``reglab mc-curve``: Monte-Carlo dropout accuracy and NLL against the number of passes."""

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


def mc_curve(
    dataset: str = DatasetOption,
    model: str = typer.Option("mlp:512,512", "--model", "-m", help="Model spec 'mlp:W1,W2,...' with at least one hidden layer."),
    dropout: float = typer.Option(0.5, "--dropout", help="Drop probability p after each hidden layer, in (0, 1)."),
    input_dropout: float = typer.Option(0.0, "--input-dropout", help="Drop probability on the input, in [0, 1)."),
    samples: str = typer.Option("1,2,5,10,20,50,100", "--samples", help="Numbers of passes T to score, comma-separated."),
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

    counts = parse_int_list("--samples", samples)
    out = prepare_output_folder(out)
    result = mc_dropout_curve(
        dataset,
        model=model,
        p=dropout,
        input_p=input_dropout,
        samples=counts,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        data_dir=str(data_dir) if data_dir else None,
        threads=threads,
    )
    written = render_mc_curve(result, out, dpi)

    table = Table(title=f"Monte-Carlo dropout on {result.dataset}, {result.model}, p={result.p:g}: mean over {seeds} seed(s)")
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
