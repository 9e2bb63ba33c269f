"""The ``compare`` study as a Python function: train, store, summarize and report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reglab.analysis._output import write_csv
from reglab.data import load_dataset
from reglab._paths import prepare_writable_folder
from reglab._validation import check_int, check_non_negative, check_positive, check_probability
from reglab.errors import ConfigError, DataError
from reglab.study.bias_variance import (
    BIAS_VARIANCE_BOOTSTRAPS,
    StudyBiasVariance,
    check_bootstraps,
    run_bias_variance,
)
from reglab.study.learning_curve import StudyLearningCurve, run_learning_curve, write_learning_curve_csv
from reglab.study.mc_dropout import (
    MC_SAMPLES,
    StudyMCCurve,
    check_mc_samples,
    dropout_strategies,
    run_mc_curve,
)
from reglab.study.report import build_report, render_report
from reglab.study.runner import StudyProgress, StudyResult, run_study
from reglab.study.spec import StudySpec, default_study_name
from reglab.study.store import RunStore
from reglab.study.stored import load_study_result
from reglab.study.studyfile import schedule_settings
from reglab.study.strategies import DEFAULT_STRATEGY_NAMES, StrategyDefaults, resolve_strategies
from reglab.study.summary import StrategySummary, summarize, write_results_csv, write_summary_csv
from reglab.training.config import OptimizerSettings, validate

logger = logging.getLogger(__name__)


@dataclass
class CompareOptions:
    """The options of ``reglab compare``, turned into a :class:`StudySpec` by :meth:`to_spec`.

    ``lr`` is a number, or ``"auto"`` to choose each strategy's learning rate on validation
    data from the spec's default grid. ``schedule`` names the learning-rate schedule of every
    strategy (``cosine``, ``step`` or ``one-cycle``, see
    :class:`~reglab.training.config.ScheduleSettings`), with ``warmup_epochs`` of linear
    warm-up; None trains with a constant rate. ``precision`` is ``"fp32"`` or ``"bf16"``
    (:mod:`reglab.training.precision`).
    """

    dataset: str = "mnist-5k"
    model: str = "mlp:512,512"
    strategies: list[str] | None = None
    seeds: int = 3
    epochs: int = 50
    lr: str | float = "auto"
    batch_size: int = 128
    name: str | None = None
    defaults: StrategyDefaults = StrategyDefaults()
    schedule: str | None = None
    warmup_epochs: int = 0
    precision: str = "fp32"

    def to_spec(self) -> StudySpec:
        self._check_defaults()
        strategies = resolve_strategies(self.strategies or list(DEFAULT_STRATEGY_NAMES), self.defaults)
        if self.seeds < 1:
            raise ConfigError(f"compare: seeds must be an int >= 1, got {self.seeds!r}.")

        data = {
            "name": self.name if self.name is not None else default_study_name(self.dataset, self.model),
            "dataset": self.dataset,
            "model": self.model,
            "strategies": strategies,
            "seeds": list(range(self.seeds)),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "precision": self.precision,
        }
        optimizer: dict[str, object] = schedule_settings(self.schedule, self.warmup_epochs)
        if str(self.lr) != "auto":
            try:
                lr = float(self.lr)
            except ValueError:
                raise ConfigError(f"compare: lr must be a positive number or 'auto', got {self.lr!r}.") from None
            check_positive("compare", "--lr", lr)
            optimizer["lr"] = lr
            data["lr_grid"] = None
        if optimizer:
            data["optimizer"] = validate(OptimizerSettings, optimizer, "optimizer")
        return validate(StudySpec, data)


    def _check_defaults(self) -> None:
        """Check the strength options under their command-line names, before they reach the strategies."""
        defaults = self.defaults
        check_non_negative("compare", "--l2", defaults.l2)
        check_non_negative("compare", "--l1", defaults.l1)
        check_probability("compare", "--dropout", defaults.p, allow_one=False)
        check_probability("compare", "--input-dropout", defaults.input_p, allow_one=False)
        check_int("compare", "--patience", defaults.patience, minimum=0)


@dataclass
class CompareOutcome:
    """The paths of the files ``compare`` wrote, with its result and summaries."""

    result: StudyResult
    summaries: list[StrategySummary]
    report_path: Path
    results_path: Path
    summary_path: Path
    learning_curve_path: Path | None = None
    mc_curve_path: Path | None = None
    bias_variance_path: Path | None = None


def compare_study(
    spec: StudySpec,
    out: str | Path = "reglab-runs",
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    progress: StudyProgress | None = None,
    backend: str = "local",
    address: str | None = None,
    learning_curve: bool = False,
    mc_curve: bool = True,
    mc_samples: Sequence[int] = MC_SAMPLES,
    bias_variance: bool = False,
    bias_variance_bootstraps: int = BIAS_VARIANCE_BOOTSTRAPS,
    on_run_stored: Callable[[dict[str, Any]], None] | None = None,
) -> CompareOutcome:
    """Run ``spec``, store its runs in ``out/reglab.db`` and write its report and CSV files.

    Writes ``out/<study>/report.html``, ``results.csv`` (one row per run) and ``summary.csv``
    (one row per strategy). Finished runs already in the database are not trained again.
    ``backend`` and ``address`` choose where runs train, as in :func:`run_study`.

    With ``learning_curve``, the baseline and the strategy with the highest mean validation
    accuracy are then trained on 10%, 25%, 50% and 100% of the first seed's training split,
    in this process and without storing the runs. The report gets a "Learning curve" section
    and the numbers go to ``learning_curve.csv``.

    With ``mc_curve`` (on by default), each finished run of a strategy with dropout is loaded
    from its checkpoint and scored on its validation split by Monte-Carlo dropout with each
    number of passes in ``mc_samples``: the "Monte-Carlo dropout" section and
    ``mc_curve.csv``. With ``bias_variance``, the baseline and the best other strategy are
    trained again on ``bias_variance_bootstraps`` bootstrap samples per seed, without storing
    the runs, and their validation error is decomposed: the "Bias and variance" section and
    ``bias_variance.csv``. Neither section opens a test set.

    ``on_run_stored`` is called with each run's stored row as the run is committed, as in
    :func:`run_study`.

    Raises:
        ConfigError: ``mc_samples`` or ``bias_variance_bootstraps`` is invalid; raised before any training.
    """
    if mc_curve:
        mc_samples = check_mc_samples(mc_samples)
    if bias_variance:
        check_bootstraps(bias_variance_bootstraps)
    out = Path(out)
    with RunStore(out / "reglab.db") as store:
        result = run_study(
            spec,
            store,
            data_dir=data_dir,
            download=download,
            device=device,
            progress=progress,
            backend=backend,
            address=address,
            on_run_stored=on_run_stored,
        )
    descriptions = {name: config.describe() for name, config in spec.strategies.items()}
    summaries = summarize(result.runs, descriptions)
    curve = None
    if learning_curve:
        curve = run_learning_curve(result, summaries, data_dir=data_dir, download=download, device=str(device))
    mc_section = run_mc_curve(result, out, mc_samples, data_dir=data_dir, download=download) if mc_curve else None
    bias_variance_section = None
    if bias_variance:
        bias_variance_section = run_bias_variance(
            result, summaries, bias_variance_bootstraps, data_dir=data_dir, download=download, device=device
        )
    return write_study_outputs(
        result, out, learning_curve=curve, mc_curve=mc_section, bias_variance=bias_variance_section
    )


def report_study(
    name: str,
    out: str | Path = "reglab-runs",
    *,
    data_dir: str | None = None,
    download: bool = False,
    mc_curve: bool = True,
    mc_samples: Sequence[int] = MC_SAMPLES,
) -> CompareOutcome:
    """Write the report and CSV files of stored study ``name`` again, without training.

    The data set is loaded for the report's augmentation samples and, with ``mc_curve``,
    for the "Monte-Carlo dropout" section, which is computed again from the runs' stored
    checkpoints as :func:`compare_study` computes it. When the data set cannot be loaded,
    the report leaves those parts out. The learning-curve and bias-variance sections train
    new models, so only :func:`compare_study` writes them.

    Raises:
        ConfigError: ``out/reglab.db`` does not exist or does not hold the study, or the
            report folder ``out/<study>`` cannot be created or written.
    """
    out = Path(out)
    if mc_curve:
        mc_samples = check_mc_samples(mc_samples, owner="report")
    with RunStore(out / "reglab.db", read_only=True) as store:
        result = load_study_result(store, name)
    # Checked before the Monte-Carlo dropout section spends minutes on a report it cannot write.
    prepare_writable_folder(out / result.spec.name, "--out")
    mc_curve = mc_curve and bool(dropout_strategies(result))
    if mc_curve or any(config.augment for config in result.spec.strategies.values()):
        try:
            result.dataset = load_dataset(result.spec.dataset, data_dir=data_dir, download=download)
        except DataError as error:
            logger.warning("report of %s without augmentation samples and Monte-Carlo dropout: %s", name, error)
            mc_curve = False
    mc_section = run_mc_curve(result, out, mc_samples) if mc_curve else None
    return write_study_outputs(result, out, mc_curve=mc_section)


def write_study_outputs(
    result: StudyResult,
    out: str | Path,
    *,
    learning_curve: StudyLearningCurve | None = None,
    mc_curve: StudyMCCurve | None = None,
    bias_variance: StudyBiasVariance | None = None,
) -> CompareOutcome:
    """Write ``report.html``, ``results.csv`` and ``summary.csv`` of ``result`` to ``out/<study>``.

    With ``learning_curve``, also write ``learning_curve.csv`` and the report's "Learning
    curve" section; likewise ``mc_curve.csv`` with ``mc_curve`` when a strategy was scored,
    and ``bias_variance.csv`` with ``bias_variance``.
    """
    spec = result.spec
    study_dir = prepare_writable_folder(Path(out) / spec.name, "--out")

    descriptions = {name: config.describe() for name, config in spec.strategies.items()}
    summaries = summarize(result.runs, descriptions)
    results_path = study_dir / "results.csv"
    summary_path = study_dir / "summary.csv"
    write_results_csv(result.runs, results_path)
    write_summary_csv(summaries, summary_path)
    learning_curve_path = None
    if learning_curve is not None:
        learning_curve_path = write_learning_curve_csv(learning_curve, study_dir / "learning_curve.csv")
    mc_curve_path = None
    if mc_curve is not None and mc_curve.curves:
        mc_curve_path = write_csv(study_dir / "mc_curve.csv", mc_curve.rows())
    bias_variance_path = None
    if bias_variance is not None:
        bias_variance_path = write_csv(study_dir / "bias_variance.csv", bias_variance.rows())
    report = build_report(result, learning_curve, mc_curve, bias_variance)
    report_path = render_report(report, study_dir / "report.html")
    return CompareOutcome(
        result,
        summaries,
        report_path,
        results_path,
        summary_path,
        learning_curve_path,
        mc_curve_path,
        bias_variance_path,
    )
