"""``reglab train``: one run, with its per-epoch history and sealed test metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    LrOption,
    ModelOption,
    OutOption,
    PrecisionOption,
    QuietOption,
    ScheduleOption,
    StrategyOption,
    WarmupOption,
    abort,
    batch_size_option,
    console,
    prepare_output_folder,
)


def train(
    dataset: str = DatasetOption,
    model: str = ModelOption,
    strategy: str = StrategyOption,
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the split, initialization, batch order and masks."),
    epochs: int = typer.Option(30, "--epochs", min=1, help="Maximum number of epochs."),
    lr: float = LrOption,
    batch_size: int = batch_size_option(),
    schedule: str = ScheduleOption,
    warmup_epochs: int = WarmupOption,
    precision: str = PrecisionOption,
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
) -> None:
    """Train one model with one strategy, print its history and evaluate the test set once."""
    from reglab.analysis._common import run_config
    from reglab.data import load_dataset, make_split
    from reglab.errors import ReglabError
    from reglab.nn.model_spec import parse_model_spec
    from reglab.study.runner import user_module_failure
    from reglab.study.store import RunStore
    from reglab.study.strategies import resolve_strategies
    from reglab.study.studyfile import schedule_settings
    from reglab.training.config import RunConfig, validate
    from reglab.training.fit import fit

    config = run_config(
        dataset=dataset,
        model=model,
        strategy=strategy,
        regularization=resolve_strategies([strategy])[strategy],
        seed=seed,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        precision=precision,
    )
    optimizer = schedule_settings(schedule, warmup_epochs)
    if optimizer:
        optimizer = {**config.optimizer.model_dump(), **optimizer}
        config = validate(RunConfig, {**config.model_dump(), "optimizer": optimizer})
    out = prepare_output_folder(out)
    data = load_dataset(dataset, data_dir=str(data_dir) if data_dir else None, download=download)
    split = make_split(data, seed=seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)

    def show_epoch(epoch: int, row: dict[str, float]) -> None:
        if not quiet:
            console.print(
                f"epoch {epoch:3d}  train_loss {row['train_loss']:.4f}  train_acc {row['train_acc'] * 100:5.2f}%  "
                f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc'] * 100:5.2f}%  gap {row['gap'] * 100:+5.2f}",
                highlight=False,
            )

    # The store is opened before training, so that a store that cannot be written fails
    # before the run instead of after it.
    with RunStore(out / "reglab.db") as store:
        # The store keeps one run per settings and seed, and a run is reproducible, so an
        # identical finished run is shown instead of being trained again and replaced.
        stored = store.finished_run("train", config.key())
        if stored is None:
            try:
                result = fit(config, split, device=device, on_epoch_end=show_epoch)
            except (Exception, SystemExit) as error:
                # A user module's own failure gets one message, as in `reglab compare`. Without this,
                # a module that calls sys.exit would end the command with no message at all.
                if isinstance(error, ReglabError) or parse_model_spec(config.model).kind != "module":
                    raise
                abort(user_module_failure(config, error))
            store.save_study("train", {"command": "train"})
            run_id = store.save_run("train", result)
            outcome = (result.best_epoch, result.stop_reason, result.final_metrics, result.test_metrics, result.timings)
        else:
            run_id = stored["id"]
            outcome = (stored["best_epoch"], stored["stop_reason"], stored["final_metrics"], stored["test_metrics"], stored["timings"])

    best_epoch, stop_reason, final_metrics, test_metrics, timings = outcome
    table = Table(title=f"{strategy} on {dataset}, {config.model}, seed {seed}")
    for column in ("selected epoch", "stop reason", "train %", "val %", "test %", "gap", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(best_epoch),
        stop_reason,
        f"{final_metrics['train_acc'] * 100:.2f}",
        f"{final_metrics['val_acc'] * 100:.2f}",
        f"{test_metrics['test_acc'] * 100:.2f}",
        f"{final_metrics['gap'] * 100:+.2f}",
        f"{timings['total_seconds']:.1f}",
    )
    console.print(table)
    if stored is None:
        console.print(f"Stored as run {run_id} of study 'train' in {out / 'reglab.db'}.")
    else:
        console.print(
            f"Run {run_id} of study 'train' in {out / 'reglab.db'} has the same settings and seed, so nothing was "
            "trained and the table shows that run. Change --seed or a setting to train another run."
        )
