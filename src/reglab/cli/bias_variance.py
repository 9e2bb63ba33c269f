"""``reglab bias-variance``: bias-variance decomposition of the test error, per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

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
    console,
    parse_name_list,
)


def bias_variance(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("bias-variance"),
    dataset: str = DatasetOption,
    model: str = model_option("mlp:128"),
    strategies: str = typer.Option(
        "baseline,l2,dropout",
        "--strategies",
        "-s",
        help="Comma-separated built-in strategies, as listed by 'reglab compare --help'; the baseline is always included.",
    ),
    bootstraps: int = typer.Option(
        5, "--bootstraps", min=1, help="Number of bootstrap samples of the training split (same for every strategy)."
    ),
    seeds: int = seeds_option(2),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Epochs of every run."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", min=0, help="Seed of the bootstrap draws."),
    out: Path = out_option("bias-variance"),
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Decompose each strategy's test error into bias and variance over bootstrap samples and seeds."""
    from reglab.analysis.bias_variance import bias_variance_decomposition, plot_bias_variance

    run = resolve_analysis(
        ctx,
        "bias-variance",
        study_file,
        out,
        dataset=dataset,
        model=model,
        strategies=parse_name_list("--strategies", strategies),
        bootstraps=bootstraps,
        seeds=list(range(seeds)),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        bootstrap_seed=bootstrap_seed,
        device=device,
    )
    result = bias_variance_decomposition(
        **run.settings,
        on_run=progress_printer(quiet),
        data_dir=str(data_dir) if data_dir else None,
        download=download,
    )
    paths = [*plot_bias_variance(result, run.out), run.write_settings()]

    table = Table(title=f"Bias-variance: {result.model} on {result.dataset}, {result.test_size} test points")
    table.add_column("strategy", no_wrap=True)
    for column in ("sq loss", "bias²", "var data", "var seed", "0-1 loss", "0-1 bias", "net var"):
        table.add_column(column, justify="right")
    for item in result.strategies:
        table.add_row(
            item.strategy,
            f"{item.squared.expected_loss:.3f}",
            f"{item.squared.bias_squared:.3f}",
            f"{item.variance_bootstrap:.3f}",
            f"{item.variance_seed:.3f}",
            f"{item.zero_one.expected_loss:.3f}",
            f"{item.zero_one.bias:.3f}",
            f"{item.zero_one.net_variance:.3f}",
        )
    console.print(table)
    console.print(
        "sq loss = bias² + var data + var seed (squared loss of probabilities vs one-hot labels); "
        "0-1 loss = 0-1 bias + net var for two classes (Domingos 2000).",
        highlight=False,
    )
    print_summary(result.summary(), paths)
