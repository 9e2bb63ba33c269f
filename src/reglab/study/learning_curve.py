"""The optional learning-curve section of a study: accuracy against the training-set size.

After the study, the baseline and the strategy with the highest mean validation accuracy
are trained again on growing stratified subsets of the first seed's training split, with
:func:`reglab.analysis.learning_curves.learning_curve`.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reglab.data import Dataset, load_dataset
from reglab.study.runner import StudyResult
from reglab.study.strategies import KNOWN_STRATEGY_NAMES, resolve_strategies
from reglab.study.summary import StrategySummary
from reglab.training.config import OptimizerSettings, RunConfig

if TYPE_CHECKING:
    from reglab.analysis.learning_curves import LearningCurveResult

logger = logging.getLogger(__name__)

LEARNING_CURVE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
CSV_COLUMNS = ("strategy", "lr", "size", "fraction", "seed", "epochs", "train_acc", "val_acc", "test_acc")


@dataclass(frozen=True)
class StudyLearningCurve:
    """Learning curves of the baseline and the best other strategy, keyed by strategy name.

    ``best`` is None when the study has no other strategy with finished runs. ``skipped``
    names the strategies whose curve was not trained, with the reason.
    """

    best: str | None
    best_val_acc: float | None
    curves: dict[str, LearningCurveResult]
    lrs: dict[str, float]
    skipped: dict[str, str]

    def rows(self) -> list[dict[str, Any]]:
        """Return one dict per strategy and training-set size, with the columns of ``CSV_COLUMNS``."""
        rows = []
        for name, curve in self.curves.items():
            for row in curve.rows():
                rows.append(
                    {
                        "strategy": name,
                        "lr": self.lrs[name],
                        "size": row["size"],
                        "fraction": row["size"] / curve.train_size,
                        "seed": row["seed"],
                        "epochs": row["epochs"],
                        "train_acc": row["train_acc"],
                        "val_acc": row["val_acc"],
                        "test_acc": row["test_acc"],
                    }
                )
        return rows


def best_strategy(summaries: list[StrategySummary], baseline: str = "baseline") -> StrategySummary | None:
    """Return the non-baseline strategy with the highest mean validation accuracy, or None.

    Test accuracy plays no part in the choice. A tie keeps the strategy listed first.
    """
    candidates = [summary for summary in summaries if summary.strategy != baseline and summary.n_runs > 0]
    if not candidates:
        return None
    return max(candidates, key=lambda summary: summary.val_acc.mean)


def _unsupported_reason(result: StudyResult, name: str) -> str | None:
    """Return why the analysis function cannot train strategy ``name`` as the study did, or None when it can.

    The analysis trains only built-in strategies with their default strengths, SGD with
    momentum 0.9, and the default 0.2 validation and test fractions.
    """
    spec = result.spec
    if name not in KNOWN_STRATEGY_NAMES:
        return f"{name!r} is not a built-in strategy"
    if spec.strategies[name].model_copy(update={"lr": None}) != resolve_strategies([name])[name]:
        return f"{name!r} uses settings other than the built-in defaults"
    if spec.optimizer != OptimizerSettings(lr=spec.optimizer.lr):
        return "the study's optimizer is not the default SGD with momentum 0.9"
    defaults = RunConfig.model_fields
    if spec.val_fraction != defaults["val_fraction"].default or spec.test_fraction != defaults["test_fraction"].default:
        return "the study's validation or test fraction differs from the default 0.2"
    return None


def run_learning_curve(
    result: StudyResult,
    summaries: list[StrategySummary],
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str = "cpu",
) -> StudyLearningCurve:
    """Train the learning curves of the baseline and of the best other strategy of ``result``.

    Each curve uses the study's model, batch size and epochs, the strategy's learning rate
    in the study, and the split of the study's first seed. Every size trains for the
    study's epoch budget (no step matching), so smaller subsets take fewer minibatch steps.
    """
    from reglab.analysis.learning_curves import learning_curve

    spec = result.spec
    dataset: Dataset = result.dataset or load_dataset(spec.dataset, data_dir=data_dir, download=download)
    by_name = {summary.strategy: summary for summary in summaries}
    best = best_strategy(summaries)
    names = [name for name in ("baseline", best.strategy if best else None) if name in by_name]

    curves: dict[str, LearningCurveResult] = {}
    lrs: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in names:
        lr = by_name[name].lr
        reason = _unsupported_reason(result, name)
        if reason is not None:
            logger.warning("learning curve of %s skipped: %s", name, reason)
            skipped[name] = reason
            continue
        lrs[name] = lr
        curves[name] = learning_curve(
            dataset,
            model=spec.model,
            strategy=name,
            sizes=list(LEARNING_CURVE_FRACTIONS),
            seeds=[spec.seeds[0]],
            epochs=spec.epochs,
            match_steps=False,
            lr=lr,
            batch_size=spec.batch_size,
            split_seed=spec.seeds[0],
            device=str(device),
        )
    return StudyLearningCurve(
        best=best.strategy if best else None,
        best_val_acc=best.val_acc.mean if best else None,
        curves=curves,
        lrs=lrs,
        skipped=skipped,
    )


def write_learning_curve_csv(curve: StudyLearningCurve, path: Path) -> Path:
    """Write one row per strategy and training-set size to ``path``."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(curve.rows())
    return path


def describe_learning_curve(curve: StudyLearningCurve, spec_epochs: int, seed: int) -> str:
    """Return the report's sentence on which strategies the curve shows and how they were chosen."""
    if curve.best is None:
        chosen = "The study has no strategy besides the baseline with finished runs, so only the baseline is shown."
    else:
        chosen = (
            f"It shows the baseline and {curve.best}, the strategy with the highest mean validation accuracy "
            f"({curve.best_val_acc * 100:.2f}%) among the other strategies of the study; test accuracy was not used "
            "for this choice."
        )
    method = (
        f" Each point is one run on seed {seed} with a stratified subset of that seed's training split, "
        f"trained for the study's {spec_epochs} epochs with the strategy's learning rate from the study, "
        "so smaller subsets take fewer minibatch steps. The held-out accuracy is measured on the same validation split for every size."
    )
    skipped = "".join(f" The curve of {name} was not trained because {reason}." for name, reason in curve.skipped.items())
    return chosen + method + skipped
