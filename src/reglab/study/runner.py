"""Run a study: every strategy over every seed, skipping runs that already finished.

Runs are stored one by one as they finish, so an interrupted study keeps every finished run
and the same call resumes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from reglab.data import Dataset, load_dataset, make_split
from reglab.errors import ReglabError
from reglab.study.spec import StudySpec
from reglab.study.store import RunStore
from reglab.training.config import RunConfig
from reglab.training.fit import fit

logger = logging.getLogger(__name__)


class StudyProgress(Protocol):
    """Receives progress events; the command line draws them as progress bars."""

    def run_started(self, label: str, epochs: int) -> None: ...

    def epoch_finished(self, epoch: int, row: dict[str, float]) -> None: ...

    def run_finished(self, label: str, *, skipped: bool, error: str | None = None) -> None: ...


class _LogProgress:
    def run_started(self, label: str, epochs: int) -> None:
        logger.info("start %s (%d epochs)", label, epochs)

    def epoch_finished(self, epoch: int, row: dict[str, float]) -> None:
        logger.debug("epoch %d: %s", epoch, row)

    def run_finished(self, label: str, *, skipped: bool, error: str | None = None) -> None:
        if error:
            logger.warning("%s failed: %s", label, error)
        else:
            logger.info("%s %s", "skip finished" if skipped else "done", label)


@dataclass
class LearningRateChoice:
    """The learning rate a strategy trained with and how it was chosen."""

    lr: float
    source: str
    val_acc: dict[float, float] = field(default_factory=dict)


@dataclass
class StudyResult:
    """The runs of a study as stored, with the learning-rate choices and failures."""

    spec: StudySpec
    runs: list[dict[str, Any]]
    lr_choices: dict[str, LearningRateChoice]
    failures: list[dict[str, Any]]
    dataset: Dataset


def count_runs(spec: StudySpec) -> int:
    """Return how many runs the study trains at most, learning-rate search included."""
    searched = sum(1 for config in spec.strategies.values() if config.lr is None) if spec.lr_grid else 0
    return len(spec.strategies) * len(spec.seeds) + searched * len(spec.lr_grid or [])


def run_study(
    spec: StudySpec,
    store: RunStore,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    progress: StudyProgress | None = None,
) -> StudyResult:
    """Train every strategy of ``spec`` over its seeds and store each run as it finishes.

    Runs already stored as finished under the same settings are skipped. A run that raises a
    :class:`reglab.errors.ReglabError` (for example a NaN loss) is stored as failed and the
    study goes on; ``StudyResult.failures`` lists them.
    """
    progress = progress or _LogProgress()
    dataset = load_dataset(spec.dataset, data_dir=data_dir, download=download)
    store.save_study(spec.name, spec.model_dump(mode="json"))
    runner = _Runner(spec, store, dataset, torch.device(device), progress)

    lr_choices = {name: runner.choose_lr(name) for name in spec.strategies}

    runs, failures = [], []
    for seed in spec.seeds:
        for name in spec.strategies:
            config = spec.run_config(name, seed, lr=lr_choices[name].lr)
            run = runner.run(config, role="run", evaluate_test=True)
            (runs if run["status"] == "finished" else failures).append(run)

    return StudyResult(spec, runs, lr_choices, failures, dataset)


class _Runner:
    def __init__(
        self, spec: StudySpec, store: RunStore, dataset: Dataset, device: torch.device, progress: StudyProgress
    ) -> None:
        self.spec = spec
        self.store = store
        self.dataset = dataset
        self.device = device
        self.progress = progress

    def choose_lr(self, strategy: str) -> LearningRateChoice:
        own_lr = self.spec.strategies[strategy].lr
        if own_lr is not None:
            return LearningRateChoice(own_lr, "set by the strategy")
        if not self.spec.lr_grid:
            return LearningRateChoice(self.spec.optimizer.lr, "set by the study")

        scores: dict[float, float] = {}
        for lr in self.spec.lr_grid:
            config = self.spec.run_config(strategy, self.spec.seeds[0], lr=lr, epochs=self.spec.search_epochs)
            run = self.run(config, role="lr-search", evaluate_test=False)
            if run["status"] == "finished":
                scores[lr] = run["final_metrics"]["val_acc"]
        if not scores:
            return LearningRateChoice(self.spec.optimizer.lr, "every search run failed; the study's value")

        best = max(scores, key=lambda lr: scores[lr])
        source = f"best validation accuracy after {self.spec.search_epochs} epochs on seed {self.spec.seeds[0]}"
        return LearningRateChoice(best, source, scores)

    def run(self, config: RunConfig, *, role: str, evaluate_test: bool) -> dict[str, Any]:
        label = f"{config.strategy} seed={config.seed}"
        if role == "lr-search":
            label += f" lr={config.regularization.lr:g} (learning-rate search)"

        finished = self.store.finished_run(self.spec.name, config.key())
        if finished is not None:
            self.progress.run_finished(label, skipped=True)
            return finished

        self.progress.run_started(label, config.epochs)
        split = make_split(
            self.dataset, seed=config.seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction
        )
        try:
            result = fit(
                config,
                split,
                device=self.device,
                on_epoch_end=self.progress.epoch_finished,
                evaluate_test=evaluate_test,
            )
        except ReglabError as error:
            run_id = self.store.save_failure(self.spec.name, config, str(error), role=role)
            self.progress.run_finished(label, skipped=False, error=str(error))
            return {"id": run_id, "status": "failed", "strategy": config.strategy, "seed": config.seed, "error": str(error)}

        self.store.save_run(self.spec.name, result, role=role)
        self.progress.run_finished(label, skipped=False)
        stored = self.store.finished_run(self.spec.name, config.key())
        assert stored is not None
        return stored
