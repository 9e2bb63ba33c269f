"""``reglab tune``: an Optuna search over regularization strengths and the learning rate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    LrOption,
    ModelOption,
    OutOption,
    QuietOption,
    batch_size_option,
    console,
    parse_name_list,
    percent,
    prepare_output_folder,
)


def tune(
    dataset: str = DatasetOption,
    model: str = ModelOption,
    trials: int = typer.Option(20, "--trials", min=1, help="Number of Optuna trials."),
    epochs: int = typer.Option(30, "--epochs", min=1, help="Epochs of every trial and of the final run."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the sampler, the split, initialization and batch order."),
    study: Optional[str] = typer.Option(
        None, "--study", help="Study name in the run database; default tune_<dataset>_<model>."
    ),
    params: str = typer.Option(
        "l2,dropout,lr",
        "--params",
        help="Settings to search, comma-separated: l2 (1e-6..1e-1, log), l1 (1e-6..1e-2, log), "
        "dropout (p in 0..0.8), input_p (0..0.5), lr (1e-3..0.3, log).",
    ),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Search settings on validation accuracy, then evaluate the best one's test set once.

    Completed trials are stored with role tune-trial and no test metrics. Pruned trials are counted but not stored.

    The best trial is trained again as strategy 'tuned', the only run whose test set is evaluated, and appears on the leaderboard.

    --lr is used only when lr is not searched.
    """
    from reglab.study.store import RunStore
    from reglab.study.tune import SEARCH_SPACE, TrialRecord, check_params, import_optuna
    from reglab.study.tune import tune as run_tune

    optuna = import_optuna()
    names = check_params(parse_name_list("--params", params))
    # Optuna logs every trial at INFO level through its own handler; the lines below replace them.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = prepare_output_folder(out)

    def show_trial(record: TrialRecord) -> None:
        if quiet:
            return
        settings = ", ".join(f"{name}={value:.3g}" for name, value in record.params.items())
        outcome = f"val_acc {percent(record.val_acc)}%" if record.val_acc is not None else f"after epoch {record.epochs}"
        console.print(f"trial {record.number:3d}  {record.state:8s}  {outcome}  {settings}", highlight=False)

    with RunStore(out / "reglab.db") as store:
        result = run_tune(
            store,
            dataset=dataset,
            model=model,
            trials=trials,
            epochs=epochs,
            seed=seed,
            params=names,
            study=study,
            lr=lr,
            batch_size=batch_size,
            device=device,
            data_dir=str(data_dir) if data_dir else None,
            download=download,
            on_trial_end=show_trial,
        )

    final = result.final_run
    table = Table(title=f"tuned {final['model']} on {dataset}, seed {seed}", box=box.SIMPLE_HEAD)
    table.add_column("setting")
    table.add_column("value", justify="right")
    for name in names:
        table.add_row(SEARCH_SPACE[name].description, f"{result.best.params[name]:.4g}")
    table.add_row("best trial", str(result.best.number))
    table.add_row("validation accuracy %", percent(final["final_metrics"]["val_acc"]))
    table.add_row("test accuracy % (evaluated once)", percent(final["test_metrics"]["test_acc"]))
    counts = result.counts
    table.add_row("trials", f"{counts['complete']} completed, {counts['pruned']} pruned, {counts['failed']} failed")
    console.print(table)
    console.print(
        f"Stored as run {final['id']} (strategy 'tuned') of study '{result.study}' in {out / 'reglab.db'}; "
        "pruned trials are not stored.",
        highlight=False,
    )
