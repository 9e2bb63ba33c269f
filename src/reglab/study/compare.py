"""The ``compare`` study as a Python function: train, store, summarize and report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reglab.data import load_dataset
from reglab._validation import check_int, check_non_negative, check_positive, check_probability
from reglab.errors import ConfigError, DataError
from reglab.study.learning_curve import StudyLearningCurve, run_learning_curve, write_learning_curve_csv
from reglab.study.report import build_report, render_report
from reglab.study.runner import StudyProgress, StudyResult, run_study
from reglab.study.spec import StudySpec, default_study_name
from reglab.study.store import RunStore
from reglab.study.stored import load_study_result
from reglab.study.strategies import STRATEGY_NAMES, StrategyDefaults, resolve_strategies
from reglab.study.summary import StrategySummary, summarize, write_results_csv, write_summary_csv
from reglab.training.config import OptimizerSettings, validate

logger = logging.getLogger(__name__)


@dataclass
class CompareOptions:
    """The options of ``reglab compare``, turned into a :class:`StudySpec` by :meth:`to_spec`.

    ``lr`` is a number, or ``"auto"`` to choose each strategy's learning rate on validation
    data from the spec's default grid.
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

    def to_spec(self) -> StudySpec:
        self._check_defaults()
        strategies = resolve_strategies(self.strategies or list(STRATEGY_NAMES), self.defaults)
        if self.seeds < 1:
            raise ConfigError(f"compare: seeds must be an int >= 1, got {self.seeds!r}.")

        data = {
            "name": self.name or default_study_name(self.dataset, self.model),
            "dataset": self.dataset,
            "model": self.model,
            "strategies": strategies,
            "seeds": list(range(self.seeds)),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
        }
        if str(self.lr) != "auto":
            try:
                lr = float(self.lr)
            except ValueError:
                raise ConfigError(f"compare: lr must be a positive number or 'auto', got {self.lr!r}.") from None
            check_positive("compare", "--lr", lr)
            data["optimizer"] = validate(OptimizerSettings, {"lr": lr}, "lr")
            data["lr_grid"] = None
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

    ``on_run_stored`` is called with each run's stored row as the run is committed, as in
    :func:`run_study`.
    """
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
    curve = None
    if learning_curve:
        descriptions = {name: config.describe() for name, config in spec.strategies.items()}
        curve = run_learning_curve(
            result, summarize(result.runs, descriptions), data_dir=data_dir, download=download, device=str(device)
        )
    return write_study_outputs(result, out, learning_curve=curve)


def report_study(
    name: str,
    out: str | Path = "reglab-runs",
    *,
    data_dir: str | None = None,
    download: bool = False,
) -> CompareOutcome:
    """Write the report and CSV files of stored study ``name`` again, without training.

    The data set is loaded only for the report's augmentation samples; when it cannot be
    loaded, the report leaves them out.

    Raises:
        ConfigError: ``out/reglab.db`` does not exist or does not hold the study.
    """
    out = Path(out)
    database = out / "reglab.db"
    if not database.is_file():
        raise ConfigError(f"run database '{database}' not found; pass the folder that contains reglab.db with --out.")

    with RunStore(database) as store:
        result = load_study_result(store, name)
    if any(config.augment for config in result.spec.strategies.values()):
        try:
            result.dataset = load_dataset(result.spec.dataset, data_dir=data_dir, download=download)
        except DataError as error:
            logger.warning("report of %s without augmentation samples: %s", name, error)
    return write_study_outputs(result, out)


def write_study_outputs(
    result: StudyResult, out: str | Path, *, learning_curve: StudyLearningCurve | None = None
) -> CompareOutcome:
    """Write ``report.html``, ``results.csv`` and ``summary.csv`` of ``result`` to ``out/<study>``.

    With ``learning_curve``, also write ``learning_curve.csv`` and the report's "Learning curve" section.
    """
    spec = result.spec
    study_dir = Path(out) / spec.name
    study_dir.mkdir(parents=True, exist_ok=True)

    descriptions = {name: config.describe() for name, config in spec.strategies.items()}
    summaries = summarize(result.runs, descriptions)
    results_path = study_dir / "results.csv"
    summary_path = study_dir / "summary.csv"
    write_results_csv(result.runs, results_path)
    write_summary_csv(summaries, summary_path)
    learning_curve_path = None
    if learning_curve is not None:
        learning_curve_path = write_learning_curve_csv(learning_curve, study_dir / "learning_curve.csv")
    report_path = render_report(build_report(result, learning_curve), study_dir / "report.html")
    return CompareOutcome(result, summaries, report_path, results_path, summary_path, learning_curve_path)
