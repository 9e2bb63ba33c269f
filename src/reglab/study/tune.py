"""Search regularization strengths and the learning rate with Optuna, on validation accuracy.

:func:`tune` runs an Optuna study: each trial samples settings from :data:`SEARCH_SPACE`,
trains them with :func:`reglab.training.fit.fit` and returns the validation accuracy of the
kept weights. Trials never open the sealed test set. When the search ends, the best trial's
stored settings are trained again on a fresh split made with the same seed, and that run is
the only one whose test set is evaluated.

Storage:

- Completed trials are stored in the :class:`~reglab.study.store.RunStore` with role
  ``"tune-trial"`` and strategy ``"tune-<trial number>"``, without test metrics.
- Trials that raise :class:`~reglab.training.fit.TrainingError` (a NaN loss at a high
  learning rate, say) are stored as failed runs with the same role.
- Pruned trials are not stored, because their history stops early and their validation
  accuracy is not comparable with a completed trial's. :class:`TuneResult` counts them.
- The final run is stored with role ``"run"`` and strategy ``"tuned"``, so it is ranked on the
  leaderboard and can be checked with ``reglab reproduce``.

The Optuna study itself lives in memory. A second call with the same study name and
arguments samples the same settings (the sampler is seeded), finds those trials in the store
and replays their stored validation accuracies instead of training them again. Only pruned
and failed trials train again. The final run is also taken from the store when it is there,
so its test set stays evaluated once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from reglab.data import Dataset, Split, load_dataset, make_split
from reglab.errors import ConfigError, ReglabError
from reglab.study.spec import default_study_name
from reglab.study.store import RunStore
from reglab.training.config import DropoutSettings, RunConfig, StrategyConfig, validate
from reglab.training.fit import TrainingError, fit

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

TRIAL_ROLE = "tune-trial"
TUNED_STRATEGY = "tuned"


class SearchDimension(NamedTuple):
    """The range Optuna samples one setting from; ``log`` samples uniformly in log space."""

    low: float
    high: float
    log: bool
    description: str


SEARCH_SPACE: dict[str, SearchDimension] = {
    "l2": SearchDimension(1e-6, 1e-1, True, "L2 strength λ (adds λ/2 · Σw²)"),
    "l1": SearchDimension(1e-6, 1e-2, True, "L1 strength λ (adds λ · Σ|w|)"),
    "dropout": SearchDimension(0.0, 0.8, False, "drop probability p after hidden layers"),
    "input_p": SearchDimension(0.0, 0.5, False, "drop probability on the input"),
    "lr": SearchDimension(1e-3, 0.3, True, "learning rate"),
}
DEFAULT_PARAMS = ("l2", "dropout", "lr")


class TuningError(ReglabError):
    """No trial of a search completed, so there is no setting to evaluate."""


@dataclass(frozen=True)
class TrialRecord:
    """One Optuna trial: its sampled settings, outcome and stored run.

    Attributes:
        number: Optuna's trial number, also in the strategy name ``tune-<number>``.
        state: ``"complete"``, ``"pruned"`` or ``"failed"``.
        params: the sampled settings, by name in :data:`SEARCH_SPACE`.
        val_acc: the validation accuracy of a completed trial, else None.
        run_id: the stored run of a completed or failed trial; None for a pruned one.
        epochs: the epochs trained (for a pruned trial, up to the epoch it was pruned after).
    """

    number: int
    state: str
    params: dict[str, float]
    val_acc: float | None
    run_id: int | None
    epochs: int


@dataclass
class TuneResult:
    """The trials of a search, the best one and the final run that evaluated the test set.

    Attributes:
        study: the study name in the store.
        trials: every trial in the order Optuna ran them.
        best: the completed trial with the highest validation accuracy.
        final_run: the stored final run (role ``"run"``, strategy ``"tuned"``), as
            :meth:`RunStore.run` returns it.
        counts: the number of trials per state: ``complete``, ``pruned`` and ``failed``.
    """

    study: str
    trials: list[TrialRecord]
    best: TrialRecord
    final_run: dict[str, Any]
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {state: sum(t.state == state for t in self.trials) for state in ("complete", "pruned", "failed")}


def import_optuna() -> Any:
    """Import Optuna, or raise ConfigError naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("reglab tune needs Optuna: pip install 'reglab[tune]'") from None
    return optuna


def check_params(params: Sequence[str]) -> list[str]:
    """Return ``params`` as a list after checking that each names a :data:`SEARCH_SPACE` entry once."""
    names = list(params)
    if not names:
        raise ConfigError(f"params must name at least one of {', '.join(SEARCH_SPACE)}, got an empty list.")
    for name in names:
        if name not in SEARCH_SPACE:
            raise ConfigError(f"params: unknown setting {name!r}; expected some of {', '.join(SEARCH_SPACE)}.")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"params: {', '.join(duplicates)} listed more than once, got {','.join(names)}.")
    return names


def trial_config(base: RunConfig, values: dict[str, float], number: int) -> RunConfig:
    """Return ``base`` with the sampled ``values`` and the strategy name ``tune-<number>``."""
    dropout = None
    if "dropout" in values or "input_p" in values:
        dropout = DropoutSettings(p=values.get("dropout", 0.0), input_p=values.get("input_p", 0.0))
    regularization = StrategyConfig(
        l2=values.get("l2", 0.0), l1=values.get("l1", 0.0), dropout=dropout, lr=values.get("lr")
    )
    return base.model_copy(update={"strategy": f"tune-{number}", "regularization": regularization})


def tune(
    store: RunStore,
    *,
    dataset: str = "mnist-5k",
    model: str = "mlp:512,512",
    trials: int = 20,
    epochs: int = 30,
    seed: int = 0,
    params: Sequence[str] = DEFAULT_PARAMS,
    study: str | None = None,
    lr: float = 0.05,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    data_dir: str | None = None,
    download: bool = False,
    pruner: optuna.pruners.BasePruner | None = None,
    on_trial_end: Callable[[TrialRecord], None] | None = None,
) -> TuneResult:
    """Search ``params`` with Optuna's TPE sampler, then evaluate the best setting's test set once.

    Args:
        store: where trials and the final run are stored.
        dataset: a data set name, as for ``reglab compare``.
        model: a model spec such as ``"mlp:512,512"``.
        trials: the number of Optuna trials.
        epochs: the epochs of every trial and of the final run.
        seed: seeds the sampler, and the split, initialization and minibatch order of every
            run, so a second call with the same arguments samples the same settings.
        params: the settings to search, names of :data:`SEARCH_SPACE`. A setting left out
            keeps its default: no penalty, no dropout, learning rate ``lr``.
        study: the study name in the store; by default ``tune_<dataset>_<model>``.
        lr: the SGD learning rate when ``"lr"`` is not searched.
        batch_size: the minibatch size.
        device: where to train, e.g. ``"cpu"`` or ``"cuda"``.
        data_dir: the folder with IDX files of fashion-mnist or mnist.
        download: download fashion-mnist or mnist with torchvision if not found.
        pruner: Optuna's pruner, asked after every epoch with that epoch's validation
            accuracy, at step = epoch (counted from 1). By default
            ``MedianPruner(n_startup_trials=3, n_warmup_steps=2)``: no pruning before three
            trials completed, nor after the first epoch.
        on_trial_end: called with each trial's :class:`TrialRecord` when it ends.

    Returns:
        The :class:`TuneResult`.

    Raises:
        ConfigError: Optuna is not installed, or an argument is invalid.
        TuningError: no trial completed, because every one was pruned or failed.
    """
    optuna = import_optuna()
    names = check_params(params)
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}.")
    base = validate(
        RunConfig,
        {
            "dataset": dataset,
            "model": model,
            "strategy": "tune",
            "optimizer": {"lr": lr},
            "batch_size": batch_size,
            "epochs": epochs,
            "seed": seed,
        },
    )
    name = study or f"tune_{default_study_name(dataset, base.model)}"

    data = load_dataset(dataset, data_dir=data_dir, download=download)
    spec = {
        "command": "tune",
        "dataset": dataset,
        "model": base.model,
        "params": names,
        "trials": trials,
        "epochs": epochs,
        "seed": seed,
        "lr": lr,
        "batch_size": batch_size,
    }
    store.save_study(name, spec)

    # One split serves every trial: trials only read its training and validation parts.
    split = make_split(data, seed=seed, val_fraction=base.val_fraction, test_fraction=base.test_fraction)
    objective = _Objective(optuna, store, name, base, names, split, torch.device(device))
    records: list[TrialRecord] = []

    def record_trial(_: Any, trial: optuna.trial.FrozenTrial) -> None:
        record = _trial_record(optuna, trial)
        records.append(record)
        logger.info("trial %d %s: %s, val_acc=%s", record.number, record.state, record.params, record.val_acc)
        if on_trial_end is not None:
            on_trial_end(record)

    search = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    search.optimize(objective, n_trials=trials, catch=(TrainingError,), callbacks=[record_trial])

    completed = [record for record in records if record.state == "complete"]
    if not completed:
        pruned = sum(record.state == "pruned" for record in records)
        raise TuningError(
            f"no trial of study {name!r} completed ({pruned} pruned, {len(records) - pruned} failed), so there is "
            "no setting to evaluate; run more trials or epochs, or pass a pruner that prunes less."
        )
    best = max(completed, key=lambda record: record.val_acc or 0.0)
    final_run = _final_run(store, name, best, data, torch.device(device))
    return TuneResult(name, records, best, final_run)


class _Objective:
    """Optuna's objective: train one sampled setting and return its validation accuracy."""

    def __init__(
        self,
        optuna: Any,
        store: RunStore,
        study: str,
        base: RunConfig,
        params: list[str],
        split: Split,
        device: torch.device,
    ) -> None:
        self.optuna = optuna
        self.store = store
        self.study = study
        self.base = base
        self.params = params
        self.split = split
        self.device = device

    def __call__(self, trial: optuna.trial.Trial) -> float:
        values = {}
        for name in self.params:
            dimension = SEARCH_SPACE[name]
            values[name] = trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)
        config = trial_config(self.base, values, trial.number)

        stored = self.store.finished_run(self.study, config.key())
        if stored is not None:
            # This setting completed in an earlier call. Reporting its stored history and
            # returning its stored accuracy gives sampler and pruner the same data as then.
            for row in stored["history"]:
                trial.report(row["val_acc"], int(row["epoch"]))
            trial.set_user_attr("run_id", stored["id"])
            trial.set_user_attr("epochs", len(stored["history"]))
            return float(stored["final_metrics"]["val_acc"])

        def report(epoch: int, row: dict[str, float]) -> None:
            trial.set_user_attr("epochs", epoch)
            trial.report(row["val_acc"], epoch)
            if trial.should_prune():
                raise self.optuna.TrialPruned(f"val_acc {row['val_acc']:.4f} after epoch {epoch}")

        try:
            result = fit(config, self.split, device=self.device, on_epoch_end=report, evaluate_test=False)
        except TrainingError as error:
            trial.set_user_attr("run_id", self.store.save_failure(self.study, config, str(error), role=TRIAL_ROLE))
            raise
        trial.set_user_attr("run_id", self.store.save_run(self.study, result, role=TRIAL_ROLE))
        return result.final_metrics["val_acc"]


def _trial_record(optuna: Any, trial: optuna.trial.FrozenTrial) -> TrialRecord:
    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
    }
    return TrialRecord(
        number=trial.number,
        state=states.get(trial.state, trial.state.name.lower()),
        params=dict(trial.params),
        val_acc=trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
        run_id=trial.user_attrs.get("run_id") if trial.state != optuna.trial.TrialState.PRUNED else None,
        epochs=int(trial.user_attrs.get("epochs", 0)),
    )


def _final_run(store: RunStore, study: str, best: TrialRecord, data: Dataset, device: torch.device) -> dict[str, Any]:
    """Train the best trial's stored settings as strategy ``tuned`` and evaluate the test set once.

    A final run already stored with these settings is returned without training, so a
    repeated call does not look at the test set again.
    """
    trial_run = store.run(best.run_id) if best.run_id is not None else None
    if trial_run is None:
        raise TuningError(f"the run of trial {best.number} is missing from study {study!r} in {store.path}.")
    config = RunConfig.model_validate(trial_run["config"]).model_copy(update={"strategy": TUNED_STRATEGY})

    stored = store.finished_run(study, config.key())
    if stored is not None:
        logger.info("final run of study %r already stored as run %d", study, stored["id"])
        return stored

    split = make_split(data, seed=config.seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)
    result = fit(config, split, device=device, evaluate_test=True)
    run_id = store.save_run(study, result, role="run")
    final = store.run(run_id)
    assert final is not None
    return final
