"""``reglab compare``: train a baseline and each regularizer over several seeds."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from reglab.study.strategies import StrategyDefaults
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    ModelOption,
    OutOption,
    QuietOption,
    console,
    parse_csv_list,
    prepare_output_folder,
)

DEFAULT_STRATEGIES = "baseline,l2,l1,dropout,early-stopping,augment,combined"
DEFAULT_EPOCHS = 50
_DEFAULTS = StrategyDefaults()


def compare(
    dataset: str = DatasetOption,
    model: str = ModelOption,
    strategies: str = typer.Option(
        DEFAULT_STRATEGIES,
        "--strategies",
        "-s",
        help=(
            "Comma-separated strategies: l2 (L2 penalty, --l2), l1 (L1 penalty, --l1), dropout (--dropout after "
            "hidden layers, --input-dropout on the input), early-stopping (on val_acc, --patience epochs, best "
            "weights restored), augment (the data set's default: digits get rotation ±20° and translation ±15%, "
            "clothing gets crops and flips), combined (l2 + dropout + augment + early stopping). The baseline, "
            "without regularization, is always trained."
        ),
    ),
    l2: float = typer.Option(_DEFAULTS.l2, "--l2", help="L2 strength: adds l2/2·Σw² to the mean loss (= SGD weight_decay)."),
    l1: float = typer.Option(_DEFAULTS.l1, "--l1", help="L1 strength: adds l1·Σ|w| to the mean loss."),
    dropout: float = typer.Option(_DEFAULTS.p, "--dropout", help="Drop probability p after hidden layers, in [0, 1)."),
    input_dropout: float = typer.Option(_DEFAULTS.input_p, "--input-dropout", help="Drop probability on the input, in [0, 1)."),
    patience: int = typer.Option(_DEFAULTS.patience, "--patience", help="Early-stopping patience in epochs."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of seeds (0, 1, ...) per strategy."),
    epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", min=1, help="Epoch budget of every run."),
    lr: str = typer.Option(
        "auto",
        "--lr",
        help=(
            "Learning rate of SGD (momentum 0.9). 'auto' picks it per strategy from 0.1, 0.03 and 0.01 by "
            "validation accuracy after half the epoch budget on the first seed."
        ),
    ),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Minibatch size."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (a folder under --out). Default: DATASET_MODEL."),
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Train a baseline and each regularization strategy over several seeds and compare them."""
    from reglab.cli._progress import RichProgress
    from reglab.study import CompareOptions, compare_study

    options = CompareOptions(
        dataset=dataset,
        model=model,
        strategies=parse_csv_list(strategies),
        seeds=seeds,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        name=name,
        defaults=StrategyDefaults(l2=l2, l1=l1, p=dropout, input_p=input_dropout, patience=patience),
    )
    spec = options.to_spec()
    out = prepare_output_folder(out)

    from reglab.study.runner import count_runs

    progress = contextlib.nullcontext(None) if quiet else RichProgress(count_runs(spec))
    try:
        with progress as bars:
            outcome = compare_study(
                spec,
                out,
                data_dir=str(data_dir) if data_dir else None,
                download=download,
                device=device,
                progress=bars,
            )
    except KeyboardInterrupt:
        console.print(
            f"\nInterrupted. Every finished run is stored in {out / 'reglab.db'}. "
            "Run the same command again to resume: finished runs are skipped."
        )
        raise typer.Exit(130) from None

    console.print(results_table(outcome.summaries, title=f"{spec.name}: {spec.dataset}, {spec.model}"))
    if outcome.result.failures:
        console.print(f"[red]{len(outcome.result.failures)} run(s) failed:[/]")
        for failure in outcome.result.failures:
            console.print(f"  {failure['strategy']} seed {failure['seed']}: {failure['error']}", highlight=False)
    console.print(f"Report: {outcome.report_path}\nResults: {outcome.results_path}\nRuns: {out / 'reglab.db'}")


def results_table(summaries, title: str) -> Table:
    """Build the terminal table: accuracies in percent with 95% intervals over seeds."""
    table = Table(
        title=title,
        caption="accuracies in %: mean±95% interval over seeds; ✓ = test accuracy above the baseline's, paired over seeds",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("strategy", no_wrap=True)
    for column in ("lr", "train", "val", "test", "gap", "Δ test", "epoch", "seconds"):
        table.add_column(column, justify="right", no_wrap=column in ("lr", "epoch", "seconds"))
    for summary in summaries:
        comparison = summary.vs_baseline
        delta = "" if comparison is None else comparison.difference.format(100) + (" ✓" if comparison.better else "")
        table.add_row(
            summary.strategy,
            f"{summary.lr:g}",
            summary.train_acc.format(100),
            summary.val_acc.format(100),
            summary.test_acc.format(100),
            summary.gap.format(100),
            delta,
            summary.best_epoch.format(1, 0),
            summary.seconds.format(1, 0),
        )
    return table
