"""Run a study: every strategy over every seed, skipping runs that already finished.

Runs are stored one by one as they finish, so an interrupted study keeps every finished run
and the same call resumes it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Protocol

import torch

from reglab.data import Dataset, load_dataset, make_split
from reglab.errors import ReglabError
from reglab.study.spec import StudySpec
from reglab.study.store import RunStore
from reglab.training.config import RunConfig
from reglab.training.fit import fit
from reglab.training.fit_batched import batching_problem, fit_batched

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
    """The runs of a study as stored, with the learning-rate choices and failures.

    ``dataset`` is None for a study rebuilt from the store without loading its data.
    """

    spec: StudySpec
    runs: list[dict[str, Any]]
    lr_choices: dict[str, LearningRateChoice]
    failures: list[dict[str, Any]]
    dataset: Dataset | None


def learning_rate_choice(
    spec: StudySpec, strategy: str, search: Callable[[float], float | None]
) -> LearningRateChoice:
    """Choose a strategy's learning rate: its own, the study's, or the best of ``lr_grid``.

    Args:
        spec: the study.
        strategy: the strategy's name in ``spec.strategies``.
        search: returns the validation accuracy of the search run with a learning rate, or
            None when that run failed (or, when rebuilding a study, is not stored).
    """
    own_lr = spec.strategies[strategy].lr
    if own_lr is not None:
        return LearningRateChoice(own_lr, "set by the strategy")
    if not spec.lr_grid:
        return LearningRateChoice(spec.optimizer.lr, "set by the study")

    scores: dict[float, float] = {}
    for lr in spec.lr_grid:
        score = search(lr)
        if score is not None:
            scores[lr] = score
    if not scores:
        return LearningRateChoice(spec.optimizer.lr, "every search run failed; the study's value")

    best = max(scores, key=lambda lr: scores[lr])
    source = f"best validation accuracy after {spec.search_epochs} epochs on seed {spec.seeds[0]}"
    return LearningRateChoice(best, source, scores)


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
    batched: bool = True,
) -> StudyResult:
    """Train every strategy of ``spec`` over its seeds and store each run as it finishes.

    Runs already stored as finished under the same settings are skipped. A run that raises a
    :class:`reglab.errors.ReglabError` (for example a NaN loss) is stored as failed and the
    study goes on; ``StudyResult.failures`` lists them.

    With ``batched``, the unfinished runs of one seed that
    :func:`reglab.training.fit_batched.batching_problem` accepts (SGD, no refit) train
    together in one :func:`~reglab.training.fit_batched.fit_batched` call. They share that
    seed's split, minibatch order, masks and augmentation, as they would one at a time, so
    each run follows :func:`fit`'s computation up to floating-point rounding. That rounding
    grows over many steps: after one Fashion-MNIST epoch (375 steps) the validation loss
    differed from :func:`fit`'s by 2%.
    The other runs train one at a time. The learning-rate search always runs one at a time.
    """
    progress = progress or _LogProgress()
    dataset = load_dataset(spec.dataset, data_dir=data_dir, download=download)
    store.save_study(spec.name, spec.model_dump(mode="json"))
    runner = _Runner(spec, store, dataset, torch.device(device), progress)

    lr_choices = {name: runner.choose_lr(name) for name in spec.strategies}

    runs, failures = [], []
    for seed in spec.seeds:
        configs = [spec.run_config(name, seed, lr=lr_choices[name].lr) for name in spec.strategies]
        batch = runner.train_batch(configs, role="run", evaluate_test=True) if batched else {}
        for config in configs:
            run = batch.get(config.key()) or runner.run(config, role="run", evaluate_test=True)
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
        def search(lr: float) -> float | None:
            config = self.spec.run_config(strategy, self.spec.seeds[0], lr=lr, epochs=self.spec.search_epochs)
            run = self.run(config, role="lr-search", evaluate_test=False)
            return run["final_metrics"]["val_acc"] if run["status"] == "finished" else None

        return learning_rate_choice(self.spec, strategy, search)

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

    def train_batch(self, configs: list[RunConfig], *, role: str, evaluate_test: bool) -> dict[str, dict[str, Any]]:
        """Train the unfinished ``configs`` that can be batched in one call, and store each run.

        Returns:
            The stored runs by :meth:`RunConfig.key`; empty when fewer than two runs qualify.
        """
        pending = [config for config in configs if self.store.finished_run(self.spec.name, config.key()) is None]
        batch = [config for config in pending if batching_problem([config]) is None]
        if len(batch) < 2 or batching_problem(batch) is not None:
            return {}

        seed = batch[0].seed
        self.progress.run_started(f"{len(batch)} strategies seed={seed} (batched)", max(c.epochs for c in batch))
        # The runs share the seed and fractions, so their splits are equal: make one and
        # give every run its own sealed copy of the test set.
        first = make_split(
            self.dataset, seed=seed, val_fraction=batch[0].val_fraction, test_fraction=batch[0].test_fraction
        )
        splits = [first] + [dataclasses.replace(first, test=first.test.unopened_copy()) for _ in batch[1:]]

        def on_epoch_end(member: int, epoch: int, row: dict[str, float]) -> None:
            if member == 0:
                self.progress.epoch_finished(epoch, row)

        results = fit_batched(
            batch, splits, self.device, on_epoch_end=on_epoch_end, evaluate_test=evaluate_test, errors="return"
        )

        stored: dict[str, dict[str, Any]] = {}
        for config, result in zip(batch, results):
            label = f"{config.strategy} seed={config.seed}"
            if isinstance(result, ReglabError):
                run_id = self.store.save_failure(self.spec.name, config, str(result), role=role)
                stored[config.key()] = {
                    "id": run_id,
                    "status": "failed",
                    "strategy": config.strategy,
                    "seed": config.seed,
                    "error": str(result),
                }
                self.progress.run_finished(label, skipped=False, error=str(result))
                continue
            self.store.save_run(self.spec.name, result, role=role)
            run = self.store.finished_run(self.spec.name, config.key())
            assert run is not None
            stored[config.key()] = run
            self.progress.run_finished(label, skipped=False)
        return stored
