"""Run a study: every strategy over every seed, skipping runs that already finished.

Runs are stored one by one as they finish, so an interrupted study keeps every finished run
and the same call resumes it. Where runs train is the backend's choice: ``"local"`` trains
them in this process, one call after another, and ``"ray"`` sends each call to a Ray cluster
as a task (:mod:`reglab.study.ray_backend`). Either way, only this process writes to the
store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from reglab.data import Dataset, load_dataset, make_split
from reglab.errors import ConfigError, ReglabError
from reglab.nn.model_spec import parse_model_spec
from reglab.nn.user_module import describe_failure
from reglab.study.checkpoints import commit_checkpoint, pending_checkpoint_path, save_checkpoint
from reglab.study.spec import StudySpec
from reglab.study.store import RunStore
from reglab.training.config import RunConfig
from reglab.training.device import resolve_device
from reglab.training.fit import EpochCallback, RunResult, fit
from reglab.training.fit_batched import (
    MAX_BATCH_MEMBERS,
    batch_chunks,
    batching_problem,
    fit_batched,
    members_per_call,
)
from reglab.training.model_builder import build_run_model
from reglab.training.step import check_image_settings

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")


class StudyProgress(Protocol):
    """Receives progress events; the command line draws them as progress bars.

    On the ``"ray"`` backend, runs train in other processes, so only ``run_finished`` is
    called, as each result arrives.
    """

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


def check_backend(backend: str, address: str | None) -> None:
    """Check a backend name and cluster address before anything trains.

    Raises:
        ConfigError: ``backend`` is not ``"local"`` or ``"ray"``, ``address`` is given
            without the ray backend, or the ray backend is chosen and Ray is not installed.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}.")
    if address is not None and backend != "ray":
        raise ConfigError(
            f"address {address!r} is only used by the ray backend; choose backend 'ray' or remove the address."
        )
    if backend == "ray":
        from reglab.study.ray_backend import import_ray

        import_ray(local=address is None)


def _check_models(spec: StudySpec, dataset: Dataset) -> None:
    """Build each strategy's network once and check its image-only settings, so that a model or a
    setting unfit for the data or the strategy fails before training."""
    input_shape = tuple(dataset.x_train.shape[1:])
    with torch.random.fork_rng():
        for name in spec.strategies:
            config = spec.run_config(name, spec.seeds[0])
            check_image_settings(config, input_shape)
            build_run_model(config, input_shape, len(dataset.classes))


def run_study(
    spec: StudySpec,
    store: RunStore,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    progress: StudyProgress | None = None,
    batched: bool = True,
    backend: str = "local",
    address: str | None = None,
    on_run_stored: Callable[[dict[str, Any]], None] | None = None,
) -> StudyResult:
    """Train every strategy of ``spec`` over its seeds and store each run as it finishes.

    Runs already stored as finished under the same settings are skipped. A run that raises a
    :class:`reglab.errors.ReglabError` (for example a NaN loss) is stored as failed and the
    study goes on; ``StudyResult.failures`` lists them.

    With ``batched``, the unfinished runs of one seed that
    :func:`reglab.training.fit_batched.batching_problem` accepts (SGD, no refit, none of the
    options of :mod:`reglab.training.step`) train together in one
    :func:`~reglab.training.fit_batched.fit_batched` call. They share that
    seed's split, minibatch order, masks and augmentation, as they would one at a time, so
    each run follows :func:`fit`'s computation up to floating-point rounding. That rounding
    grows over many steps: after one Fashion-MNIST epoch (375 steps) the validation loss
    differed from :func:`fit`'s by 2%.
    The other runs train one at a time. The learning-rate search always runs one at a time.

    Args:
        backend: ``"local"`` trains in this process. ``"ray"`` sends each training call
            (one run, or one seed's batched runs) to a Ray cluster as a task and stores the
            results as they arrive. The learning-rate search goes through the backend too:
            its runs are tasks that run in parallel, before the runs that use its choice.
        address: ``HOST:PORT`` of a running Ray cluster; None starts a local Ray instance
            bound to 127.0.0.1 for this call and shuts it down afterwards.
        on_run_stored: called with the stored row (as :meth:`RunStore.finished_run`
            returns it, with its history) of each run that finishes and is committed during
            this call, before ``progress.run_finished``. Runs skipped as already stored and
            runs of the learning-rate search are not passed.

    Raises:
        ConfigError: the backend or address is invalid, or Ray is needed and not installed.
    """
    check_backend(backend, address)
    progress = progress or _LogProgress()
    device = resolve_device(device)
    dataset = load_dataset(spec.dataset, data_dir=data_dir, download=download)
    _check_models(spec, dataset)
    store.save_study(spec.name, spec.model_dump(mode="json"))

    with _open_backend(backend, address, dataset, device, progress) as trainer:
        max_members = members_per_call(spec.model, dataset.input_shape, dataset.num_classes)
        driver = _Driver(spec, store, trainer, progress, on_run_stored, max_members)

        # Every search run has the first seed, so the search is one group, batched like a seed's runs.
        search = [
            spec.run_config(name, spec.seeds[0], lr=lr, epochs=spec.search_epochs)
            for name, config in spec.strategies.items()
            if config.lr is None
            for lr in spec.lr_grid or []
        ]
        driver.train([search], role="lr-search", evaluate_test=False, batched=batched)
        lr_choices = {name: driver.choose_lr(name) for name in spec.strategies}

        by_seed = [
            [spec.run_config(name, seed, lr=lr_choices[name].lr) for name in spec.strategies] for seed in spec.seeds
        ]
        stored = driver.train(by_seed, role="run", evaluate_test=True, batched=batched)

    runs, failures = [], []
    for configs in by_seed:
        for config in configs:
            run = stored[config.key()]
            (runs if run["status"] == "finished" else failures).append(run)
    return StudyResult(spec, runs, lr_choices, failures, dataset)


@dataclass(frozen=True)
class WorkUnit:
    """Runs that train in one call: a single run, or runs of one seed trained batched.

    Attributes:
        configs: the runs' settings; with more than one, they share a seed and
            :func:`batching_problem` accepts them together.
        role: ``"run"``, or ``"lr-search"`` for a run of the learning-rate search.
        evaluate_test: whether the runs open their sealed test set.
    """

    configs: tuple[RunConfig, ...]
    role: str
    evaluate_test: bool

    @property
    def label(self) -> str:
        """Progress label of the call."""
        if len(self.configs) > 1:
            return f"{len(self.configs)} strategies seed={self.configs[0].seed} (batched)"
        return run_label(self.configs[0], self.role)

    @property
    def epochs(self) -> int:
        """Epoch budget of the call: the largest of its runs'."""
        return max(config.epochs for config in self.configs)


@dataclass
class RunFailure:
    """A run that raised a :class:`ReglabError`, by its message.

    Training returns the message instead of the exception, so results cross process
    boundaries (Ray tasks) without pickling exception classes.
    """

    error: str


def run_label(config: RunConfig, role: str) -> str:
    """Return a run's progress label, e.g. ``l2 seed=1``."""
    label = f"{config.strategy} seed={config.seed}"
    if role == "lr-search":
        label += f" lr={config.regularization.lr:g} (learning-rate search)"
    return label


def plan_units(
    configs: Sequence[RunConfig],
    *,
    role: str,
    evaluate_test: bool,
    batched: bool,
    max_members: int = MAX_BATCH_MEMBERS,
) -> list[WorkUnit]:
    """Group the unfinished runs of one seed into training calls.

    With ``batched``, the runs that :func:`batching_problem` accepts train together when
    there are at least two of them, in balanced calls of at most ``max_members`` runs
    (:func:`~reglab.training.fit_batched.batch_chunks`; see
    :func:`~reglab.training.fit_batched.members_per_call`); every other run trains alone.
    The batched calls come first, then the others in their given order.
    """
    together = [config for config in configs if batching_problem([config]) is None] if batched else []
    if len(together) < 2 or batching_problem(together) is not None:
        together = []

    keys = {config.key() for config in together}
    units = [WorkUnit(tuple(chunk), role, evaluate_test) for chunk in batch_chunks(together, max_members)]
    units += [WorkUnit((config,), role, evaluate_test) for config in configs if config.key() not in keys]
    return units


def train_unit(
    unit: WorkUnit,
    dataset: Dataset,
    device: torch.device,
    on_epoch_end: EpochCallback | None = None,
) -> list[RunResult | RunFailure]:
    """Train the runs of ``unit``; return one result per run, in order, without storing them.

    Args:
        unit: the runs.
        dataset: the study's data set; each run makes its split from it with its seed.
        device: where to train.
        on_epoch_end: called after each epoch of the (first) run.

    Returns:
        A :class:`RunResult` for each run that finished and a :class:`RunFailure` for each
        run that raised a :class:`ReglabError`.
    """
    first = unit.configs[0]
    split = make_split(dataset, seed=first.seed, val_fraction=first.val_fraction, test_fraction=first.test_fraction)
    if len(unit.configs) == 1:
        try:
            result = fit(first, split, device=device, on_epoch_end=on_epoch_end, evaluate_test=unit.evaluate_test)
        except ReglabError as error:
            return [RunFailure(str(error))]
        except (Exception, SystemExit) as error:
            # A user module's code may raise any exception or call sys.exit, while reglab raises ReglabErrors.
            if parse_model_spec(first.model).kind != "module":
                raise
            logger.warning("run %s failed in the user module %s: %r", run_label(first, unit.role), first.model, error)
            return [RunFailure(user_module_failure(first, error))]
        return [result]

    # The runs share the seed and fractions, so their splits are equal: use one and give
    # every run its own sealed copy of the test set.
    splits = [split] + [dataclasses.replace(split, test=split.test.unopened_copy()) for _ in unit.configs[1:]]

    def on_member_epoch_end(member: int, epoch: int, row: dict[str, float]) -> None:
        if member == 0 and on_epoch_end is not None:
            on_epoch_end(epoch, row)

    results = fit_batched(
        list(unit.configs),
        splits,
        device,
        on_epoch_end=on_member_epoch_end,
        evaluate_test=unit.evaluate_test,
        errors="return",
    )
    return [RunFailure(str(result)) if isinstance(result, ReglabError) else result for result in results]


def user_module_failure(config: RunConfig, error: BaseException) -> str:
    """Return the message for a run whose user module raised ``error`` or called ``sys.exit``."""
    return (
        f"the model {config.model} failed ({describe_failure(error)}) while training strategy {config.strategy!r} (seed {config.seed}); "
        "fix the module's forward pass."
    )


class Trainer(Protocol):
    """Trains work units and yields each with its results, in the order they finish."""

    def train(self, units: list[WorkUnit]) -> Iterator[tuple[WorkUnit, list[RunResult | RunFailure]]]: ...


class LocalTrainer:
    """Trains work units in this process, one after another, reporting every epoch."""

    def __init__(self, dataset: Dataset, device: torch.device, progress: StudyProgress) -> None:
        self.dataset = dataset
        self.device = device
        self.progress = progress

    def train(self, units: list[WorkUnit]) -> Iterator[tuple[WorkUnit, list[RunResult | RunFailure]]]:
        for unit in units:
            self.progress.run_started(unit.label, unit.epochs)
            yield unit, train_unit(unit, self.dataset, self.device, self.progress.epoch_finished)


@contextmanager
def _open_backend(
    backend: str, address: str | None, dataset: Dataset, device: torch.device, progress: StudyProgress
) -> Iterator[Trainer]:
    if backend == "local":
        yield LocalTrainer(dataset, device, progress)
        return

    from reglab.study.ray_backend import RayTrainer

    trainer = RayTrainer(address, dataset, device)
    try:
        yield trainer
    finally:
        trainer.close()


class _Driver:
    """Skips finished runs, hands the others to a trainer and stores each result as it arrives."""

    def __init__(
        self,
        spec: StudySpec,
        store: RunStore,
        trainer: Trainer,
        progress: StudyProgress,
        on_run_stored: Callable[[dict[str, Any]], None] | None = None,
        max_members: int = MAX_BATCH_MEMBERS,
    ) -> None:
        self.spec = spec
        self.store = store
        self.trainer = trainer
        self.progress = progress
        self.on_run_stored = on_run_stored
        self.max_members = max_members

    def choose_lr(self, strategy: str) -> LearningRateChoice:
        def search(lr: float) -> float | None:
            config = self.spec.run_config(strategy, self.spec.seeds[0], lr=lr, epochs=self.spec.search_epochs)
            run = self.store.finished_run(self.spec.name, config.key())
            return run["final_metrics"]["val_acc"] if run is not None else None

        return learning_rate_choice(self.spec, strategy, search)

    def train(
        self, groups: list[list[RunConfig]], *, role: str, evaluate_test: bool, batched: bool
    ) -> dict[str, dict[str, Any]]:
        """Train the unfinished runs of ``groups`` (each group: runs of one seed) and store them.

        Returns:
            Every run of ``groups`` by :meth:`RunConfig.key`: the stored row of a finished
            run, or a short record (id, status, strategy, seed, error) of a failed one.
        """
        runs: dict[str, dict[str, Any]] = {}
        units: list[WorkUnit] = []
        for configs in groups:
            pending = []
            for config in configs:
                finished = self.store.finished_run(self.spec.name, config.key(), role=role)
                if finished is None:
                    pending.append(config)
                    continue
                runs[config.key()] = finished
                if role == "run":
                    self._commit_checkpoint(config, finished["id"])
                self.progress.run_finished(run_label(config, role), skipped=True)
            units += plan_units(
                pending, role=role, evaluate_test=evaluate_test, batched=batched, max_members=self.max_members
            )

        for unit, results in self.trainer.train(units):
            for config, result in zip(unit.configs, results):
                runs[config.key()] = self._store(config, result, role)
        return runs

    def _commit_checkpoint(self, config: RunConfig, run_id: int) -> None:
        """Give stored run ``run_id`` its pending checkpoint, if it has one and lacks its final file."""
        if commit_checkpoint(self.store.path.parent, self.spec.name, config.key(), run_id) is None:
            logger.info("run %d of %s has no weight checkpoint (trained on Ray or by an older reglab)", run_id, self.spec.name)

    def _store(self, config: RunConfig, result: RunResult | RunFailure, role: str) -> dict[str, Any]:
        """Store one result and return its stored row.

        A finished run with role ``"run"`` also gets a weight checkpoint next to the store
        (:func:`reglab.study.checkpoints.checkpoint_path`). The weights are written to a
        pending file before the row is committed and renamed after it, so a killed process
        never leaves a stored run whose weights are lost (see :mod:`reglab.study.checkpoints`).
        A result without a model gets no checkpoint: results from Ray workers arrive with
        ``model`` set to None.
        """
        label = run_label(config, role)
        if isinstance(result, RunFailure):
            run_id = self.store.save_failure(self.spec.name, config, result.error, role=role)
            self.progress.run_finished(label, skipped=False, error=result.error)
            return {"id": run_id, "status": "failed", "strategy": config.strategy, "seed": config.seed, "error": result.error}

        if role == "run" and result.model is not None:
            save_checkpoint(result.model, pending_checkpoint_path(self.store.path.parent, self.spec.name, config.key()))
        run_id = self.store.save_run(self.spec.name, result, role=role)
        if role == "run":
            self._commit_checkpoint(config, run_id)
        stored = self.store.finished_run(self.spec.name, config.key())
        assert stored is not None
        if role == "run" and self.on_run_stored is not None:
            self.on_run_stored(stored)
        self.progress.run_finished(label, skipped=False)
        return stored
