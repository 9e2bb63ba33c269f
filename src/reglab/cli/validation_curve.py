"""``reglab validation-curve``: train and validation accuracy against a regularization strength."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._analysis import (
    model_option,
    out_option,
    print_summary,
    progress_printer,
    resolve_analysis,
    seeds_option,
    study_file_argument,
)
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    LrOption,
    QuietOption,
    batch_size_option,
    parse_number_list,
)
from reglab.errors import ConfigError


def validation_curve(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("validation-curve"),
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

    run = resolve_analysis(
        ctx,
        "validation-curve",
        study_file,
        out,
        dataset=dataset,
        model=model,
        param=param,
        values=parse_number_list("--values", values) if values is not None else None,
        grid=grid,
        minimum=minimum,
        maximum=maximum,
        num=num,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
    )
    settings = run.settings
    # The study file and the command line can each give the strengths, so the checks run on the merged values.
    if settings["values"] is not None and settings["grid"] is not None:
        raise ConfigError("--values and --grid exclude each other, also as values and grid in a study file; give the strengths one way.")
    strengths = settings["values"]
    if settings["grid"] is not None:
        if settings["minimum"] is None or settings["maximum"] is None:
            raise ConfigError(
                f"--grid {settings['grid']} needs --min and --max (min and max in a study file), "
                f"got --min {settings['minimum']} and --max {settings['maximum']}."
            )
        strengths = strength_grid(settings["grid"], settings["minimum"], settings["maximum"], settings["num"])
    elif settings["minimum"] is not None or settings["maximum"] is not None:
        raise ConfigError("--min and --max only apply with --grid log or --grid linear, also as min, max and grid in a study file.")

    result = compute(
        settings["dataset"],
        model=settings["model"],
        param=settings["param"],
        values=strengths,
        seeds=settings["seeds"],
        epochs=settings["epochs"],
        lr=settings["lr"],
        batch_size=settings["batch_size"],
        device=settings["device"],
        on_run=progress_printer(quiet),
        data_dir=str(data_dir) if data_dir else None,
        download=download,
    )
    paths = plot_validation_curve(result, run.out)
    print_summary(result.summary(), [*paths, run.write_settings()])
