"""``reglab learning-curve``: train and test accuracy against the number of training examples."""

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
    StrategyOption,
    batch_size_option,
    parse_csv_list,
)
from reglab.errors import ConfigError


def parse_sizes(text: str) -> list[int | float]:
    """Parse ``300,1000,0.5,1.0``: integers are counts, numbers with a point or exponent are fractions."""
    sizes: list[int | float] = []
    for item in parse_csv_list("--sizes", text, "300,1000,0.5,1.0"):
        try:
            sizes.append(float(item) if any(mark in item for mark in ".eE") else int(item))
        except ValueError:
            raise ConfigError(
                f"--sizes: expected comma-separated counts (300) or fractions (0.5), got {item!r} in {text!r}."
            ) from None
    return sizes


def learning_curve(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("learning-curve"),
    dataset: str = DatasetOption,
    model: str = model_option("softmax"),
    strategy: str = StrategyOption,
    sizes: Optional[str] = typer.Option(
        None,
        "--sizes",
        help=(
            "Training-set sizes: integers are example counts, numbers with a point are fractions of the "
            "training split (1.0 = all of it), e.g. 300,1000,0.5,1.0. Default: 6 sizes from 300 to the "
            "whole split, evenly spaced on a log scale."
        ),
    ),
    seeds: int = seeds_option(3),
    epochs: int = typer.Option(
        20,
        "--epochs",
        min=1,
        help="Epochs on the whole training split; a subset trains proportionally more epochs, so every run takes about the same number of steps.",
    ),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    out: Path = out_option("learning-curve"),
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Plot train and test accuracy against the number of training examples, over several seeds."""
    from reglab.analysis.learning_curves import learning_curve as compute, plot_learning_curve

    run = resolve_analysis(
        ctx,
        "learning-curve",
        study_file,
        out,
        dataset=dataset,
        model=model,
        strategy=strategy,
        sizes=parse_sizes(sizes) if sizes is not None else None,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
    )
    result = compute(
        **run.settings,
        on_run=progress_printer(quiet),
        data_dir=str(data_dir) if data_dir else None,
        download=download,
    )
    paths = plot_learning_curve(result, run.out)
    print_summary(result.summary(), [*paths, run.write_settings()])
