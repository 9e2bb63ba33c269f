"""``reglab compare``: train a baseline and each regularizer over several seeds."""

from __future__ import annotations

import contextlib
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from reglab._launch import INTERRUPTED
from reglab.study.bias_variance import BIAS_VARIANCE_BOOTSTRAPS, check_bootstraps
from reglab.study.mc_dropout import MC_SAMPLES, check_mc_samples
from reglab.study.strategies import StrategyDefaults
from reglab.study.summary import has_batched_runs
from reglab.cli._common import (
    DataDirOption,
    DatasetOption,
    DeviceOption,
    DownloadOption,
    ModelOption,
    OutOption,
    PrecisionOption,
    QuietOption,
    ScheduleOption,
    WarmupOption,
    console,
    error_console,
    given_on_command_line,
    parse_name_list,
    parse_int_list,
    prepare_output_folder,
)

DEFAULT_STRATEGIES = "baseline,l2,l1,dropout,early-stopping,augment,combined"
DEFAULT_EPOCHS = 50
McCurveOption = typer.Option(
    True,
    "--mc-curve/--no-mc-curve",
    help=(
        "Score each finished run of a strategy with dropout, from its stored weights, on its validation split "
        "by Monte-Carlo dropout (arithmetic and geometric mean of T passes) against the deterministic "
        "prediction: a 'Monte-Carlo dropout' section in the report and mc_curve.csv. Trains nothing."
    ),
)
McSamplesOption = typer.Option(
    ",".join(str(value) for value in MC_SAMPLES),
    "--mc-samples",
    help="Numbers of passes T for the Monte-Carlo dropout section, comma-separated ints from 1 to 1000.",
)
_DEFAULTS = StrategyDefaults()


def compare(
    ctx: typer.Context,
    study_file: Optional[Path] = typer.Argument(
        None,
        help="YAML study file (write an example with 'reglab init'). Options given explicitly override its values.",
        show_default=False,
    ),
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
            "clothing gets crops and flips), combined (l2 + dropout + augment + early stopping). Also built in, "
            "but trained only when named: label-smoothing (0.1), mixup (alpha 0.2), random-erasing (p 0.5, "
            "images only), weight-decay (decoupled, 1e-3), clip (gradient norm at most 1.0), cosine (cosine "
            "learning-rate schedule), dropconnect (p = 0.5 on the weights of fully connected hidden layers). "
            "The baseline, without regularization, is always trained."
        ),
    ),
    l2: float = typer.Option(_DEFAULTS.l2, "--l2", help="L2 strength: adds l2/2·Σw² to the mean loss (= SGD weight_decay)."),
    l1: float = typer.Option(_DEFAULTS.l1, "--l1", help="L1 strength: adds l1·Σ|w| to the mean loss."),
    dropout: float = typer.Option(_DEFAULTS.p, "--dropout", help="Drop probability p after fully connected hidden layers (p/2 after conv blocks), in [0, 1)."),
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
    schedule: str = ScheduleOption,
    warmup_epochs: int = WarmupOption,
    precision: str = PrecisionOption,
    name: Optional[str] = typer.Option(None, "--name", help="Study name (a folder under --out). Default: DATASET_MODEL."),
    out: Path = OutOption,
    device: str = DeviceOption,
    data_dir: Optional[Path] = DataDirOption,
    download: bool = DownloadOption,
    quiet: bool = QuietOption,
    backend: str = typer.Option(
        "local",
        "--backend",
        help=(
            "Where runs train: local (this process) or ray (each run, or each seed's batched runs, is a task "
            "on a Ray cluster; needs pip install 'reglab[ray]'). Only this process writes to the run database."
        ),
    ),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help=(
            "HOST:PORT of a running Ray cluster's head node (ray start --head prints it). Without it, "
            "--backend ray starts a local Ray instance on 127.0.0.1 for this command."
        ),
        show_default=False,
    ),
    learning_curve: bool = typer.Option(
        False,
        "--learning-curve",
        help=(
            "After the study, train the baseline and the strategy with the highest mean validation accuracy on "
            "10%, 25%, 50% and 100% of the first seed's training split (study epochs, each strategy's learning "
            "rate), and add a 'Learning curve' section to the report and learning_curve.csv to the study folder."
        ),
    ),
    mc_curve: bool = McCurveOption,
    mc_samples: str = McSamplesOption,
    bias_variance: bool = typer.Option(
        False,
        "--bias-variance",
        help=(
            "After the study, train the baseline and the strategy with the highest mean validation accuracy on "
            "--bias-variance-bootstraps bootstrap samples of the first seed's training split, once per seed "
            "(2 × bootstraps × seeds extra runs, not stored), and decompose their validation error into bias and "
            "variance: a 'Bias and variance' section in the report and bias_variance.csv."
        ),
    ),
    bias_variance_bootstraps: int = typer.Option(
        BIAS_VARIANCE_BOOTSTRAPS,
        "--bias-variance-bootstraps",
        help="Number of bootstrap samples of the training split for --bias-variance.",
    ),
    tensorboard: Optional[Path] = typer.Option(
        None,
        "--tensorboard",
        help=(
            "Also write each run's per-epoch metrics and test metrics as TensorBoard scalars under DIR/STUDY, "
            "as soon as the run is stored, so 'tensorboard --logdir DIR' shows the study while it trains "
            "(needs 'pip install tensorboard')."
        ),
    ),
) -> None:
    """Train a baseline and each regularization strategy over several seeds and compare them.

    Exit status: 0 when every run finished; 1 when any run failed (the report, the CSV files
    and the run database are written first); 2 on bad input; 130 on Ctrl-C.
    """
    from reglab.cli._progress import RichProgress
    from reglab.study import CompareOptions, compare_study

    if study_file is not None:
        from reglab.study.studyfile import StudyOverrides, read_study_file

        def given(parameter: str, value: object) -> object:
            """Return ``value`` when the option was given on the command line, else None."""
            return value if given_on_command_line(ctx, parameter) else None

        overrides = StudyOverrides(
            name=given("name", name),
            dataset=given("dataset", dataset),
            model=given("model", model),
            strategies=parse_name_list("--strategies", strategies) if given("strategies", strategies) is not None else None,
            seeds=given("seeds", seeds),
            epochs=given("epochs", epochs),
            lr=given("lr", lr),
            batch_size=given("batch_size", batch_size),
            l2=given("l2", l2),
            l1=given("l1", l1),
            p=given("dropout", dropout),
            input_p=given("input_dropout", input_dropout),
            patience=given("patience", patience),
            backend=given("backend", backend),
            address=given("address", address),
            schedule=given("schedule", schedule),
            warmup_epochs=given("warmup_epochs", warmup_epochs),
            precision=given("precision", precision),
        )
        study = read_study_file(study_file, overrides)
        spec, backend, address = study.spec, study.backend, study.address
        if not given_on_command_line(ctx, "device") and study.device is not None:
            device = study.device
    else:
        options = CompareOptions(
            dataset=dataset,
            model=model,
            strategies=parse_name_list("--strategies", strategies),
            seeds=seeds,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            name=name,
            defaults=StrategyDefaults(l2=l2, l1=l1, p=dropout, input_p=input_dropout, patience=patience),
            schedule=schedule,
            warmup_epochs=warmup_epochs,
            precision=precision,
        )
        spec = options.to_spec()
    from reglab.study.runner import check_backend, count_runs

    samples = check_mc_samples(parse_int_list("--mc-samples", mc_samples)) if mc_curve else list(MC_SAMPLES)
    if bias_variance:
        check_bootstraps(bias_variance_bootstraps)
    check_backend(backend, address)
    out = prepare_output_folder(out)
    scalars = None
    if tensorboard is not None:
        from reglab.study.tensorboard import LiveScalars

        scalars = LiveScalars(spec.name, tensorboard)

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
                backend=backend,
                address=address,
                learning_curve=learning_curve,
                mc_curve=mc_curve,
                mc_samples=samples,
                bias_variance=bias_variance,
                bias_variance_bootstraps=bias_variance_bootstraps,
                on_run_stored=scalars,
            )
    except KeyboardInterrupt:
        error_console.print(
            f"\nInterrupted. Every finished run is stored in {out / 'reglab.db'}. "
            "Run the same command again to resume: finished runs are skipped."
        )
        raise typer.Exit(INTERRUPTED) from None

    console.print(results_table(outcome.summaries, f"{spec.name}: {spec.dataset}, {spec.model}", outcome.result.runs))
    if outcome.result.failures:
        console.print(f"[red]{len(outcome.result.failures)} run(s) failed:[/]")
        for failure in outcome.result.failures:
            console.print(f"  {failure['strategy']} seed {failure['seed']}: {failure['error']}", highlight=False)
    console.print(f"Report: {outcome.report_path}\nResults: {outcome.results_path}\nRuns: {out / 'reglab.db'}")
    if outcome.learning_curve_path is not None:
        console.print(f"Learning curve: {outcome.learning_curve_path}", highlight=False)
    if outcome.mc_curve_path is not None:
        console.print(f"Monte-Carlo dropout: {outcome.mc_curve_path}", highlight=False)
    if outcome.bias_variance_path is not None:
        console.print(f"Bias and variance: {outcome.bias_variance_path}", highlight=False)
    if scalars is not None:
        scalars.write_all(outcome.result.runs)
        console.print(f"TensorBoard: {len(scalars.written)} new run log(s) in {tensorboard / spec.name}", highlight=False)
    failed = len(outcome.result.failures)
    if failed:
        console.print(
            f"[red]{failed} of {failed + len(outcome.result.runs)} run(s) failed[/], so the exit status is 1; "
            "the report lists them, and 'reglab runs --status failed' shows their errors.",
            highlight=False,
        )
        raise typer.Exit(1)


def results_table(summaries, title: str, runs: Sequence[dict[str, Any]] = ()) -> Table:
    """Build the terminal table: accuracies in percent with 95% intervals over seeds.

    When some of ``runs`` trained in a batch, the seconds column is named ``seconds*`` and
    the caption explains that a batched run's time is an equal share of its batch's time.
    """
    caption = "accuracies in %: mean±95% interval over seeds; ✓ = test accuracy above the baseline's, paired over seeds"
    seconds = "seconds"
    if has_batched_runs(runs):
        seconds = "seconds*"
        caption += "; seconds* = a batched run's equal share of its batch's time (one seed's runs train together), not its own"
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("strategy", no_wrap=True)
    for column in ("lr", "train", "val", "test", "gap", "Δ test", "epoch", seconds):
        table.add_column(column, justify="right", overflow="fold")
    for summary in summaries:
        comparison = summary.vs_baseline
        delta = ""
        if comparison is not None:
            delta = comparison.difference.format(100)
            if comparison.better:
                delta += " ✓"
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
