"""``reglab validation-curve``: train and validation accuracy against a regularization strength."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._analysis import (
    model_option,
    out_option,
    parse_numbers,
    print_summary,
    progress_printer,
    seeds_option,
)
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    LrOption,
    QuietOption,
    batch_size_option,
    prepare_output_folder,
)
from reglab.errors import ConfigError


def validation_curve(
    dataset: str = DatasetOption,
    model: str = model_option("mlp:256"),
    param: str = typer.Option(
        "l2",
        "--param",
        help=(
            "The strength to vary: l2 or l1 (penalty strength), dropout (drop probability p after hidden "
            "layers), dropconnect (probability p that a weight of a fully connected hidden layer is zeroed) "
            "or max-norm (bound on each unit's incoming weight norm; 0 = off)."
        ),
    ),
    values: Optional[str] = typer.Option(
        None, "--values", help="Comma-separated strengths, e.g. 0,1e-4,1e-3,1e-2. Excludes --grid."
    ),
    grid: Optional[str] = typer.Option(
        None, "--grid", help="Generate the strengths: 'log' or 'linear' spacing from --min to --max."
    ),
    minimum: Optional[float] = typer.Option(None, "--min", help="Smallest strength of --grid."),
    maximum: Optional[float] = typer.Option(None, "--max", help="Largest strength of --grid."),
    num: int = typer.Option(7, "--num", min=2, help="Number of strengths of --grid."),
    seeds: int = seeds_option(3),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Epochs of every run (no early stopping)."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    out: Path = out_option("validation-curve"),
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Plot train and validation accuracy against one regularization strength and mark the best value.

    Without --values or --grid: l2 and l1 use 7 strengths from 1e-5 to 1e-1 on a log scale,
    dropout and dropconnect use 0 to 0.8 in steps of 0.1, max-norm uses 5 bounds from 0.5 to 8.
    """
    from reglab.analysis.validation_curves import plot_validation_curve, strength_grid
    from reglab.analysis.validation_curves import validation_curve as compute

    if values is not None and grid is not None:
        raise ConfigError("--values and --grid exclude each other; give the strengths one way.")
    strengths = None
    if values is not None:
        strengths = parse_numbers("--values", values)
    elif grid is not None:
        if minimum is None or maximum is None:
            raise ConfigError(f"--grid {grid} needs --min and --max, got --min {minimum} and --max {maximum}.")
        strengths = strength_grid(grid, minimum, maximum, num)
    elif minimum is not None or maximum is not None:
        raise ConfigError("--min and --max only apply with --grid log or --grid linear.")

    out = prepare_output_folder(out)
    result = compute(
        dataset,
        model=model,
        param=param,
        values=strengths,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        on_run=progress_printer(quiet),
        data_dir=str(data_dir) if data_dir else None,
        download=download,
    )
    paths = plot_validation_curve(result, out)
    print_summary(result.summary(), paths)
