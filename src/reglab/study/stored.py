"""Rebuild a :class:`StudyResult` from the run store, without training.

The stored specification decides which runs belong to the study: for every strategy and
seed, the run whose settings key matches, exactly as :func:`~reglab.study.runner.run_study`
looks them up. Runs of an earlier version of the study (another epoch budget, say) stay in
the database but are not part of the rebuilt result.
"""

from __future__ import annotations

from typing import Any

from reglab.data import Dataset
from reglab.errors import ConfigError
from reglab.study.runner import LearningRateChoice, StudyResult, learning_rate_choice
from reglab.study.spec import StudySpec
from reglab.study.store import RunStore


def load_study_spec(store: RunStore, name: str) -> StudySpec:
    """Return the stored specification of study ``name``.

    Raises:
        ConfigError: no study of that name is stored (the message lists the stored ones), or
            the study was stored by ``reglab tune`` or ``reglab train`` and has no strategies
            to compare (the message names the commands that show it).
    """
    data = store.study_spec(name)
    if data is not None and "strategies" not in data:
        raise ConfigError(_not_a_comparison(name, data.get("command")))
    if data is None:
        known = ", ".join(repr(study) for study in store.studies() if study != "train") or "none"
        raise ConfigError(f"study {name!r} not found in {store.path}; stored studies: {known}.")
    spec = StudySpec.model_validate(data)

    # Databases written before the specification kept its key order store strategies
    # alphabetically; the baseline goes first, as the runner orders it.
    if "baseline" in spec.strategies:
        strategies = {"baseline": spec.strategies["baseline"], **spec.strategies}
        spec = spec.model_copy(update={"strategies": strategies})
    return spec


def _not_a_comparison(name: str, command: str | None) -> str:
    """Return the message for a stored study without strategies: which command made it and how to view it."""
    if command == "tune":
        return (
            f"study {name!r} was created by 'reglab tune': it holds search trials and one final run, not "
            "strategies to compare, so it has no comparison report. List its trials with "
            f"'reglab runs --study {name} --role all', rank its final run with 'reglab leaderboard', "
            "and print a run with 'reglab show RUN'."
        )
    if command == "train":
        return (
            f"study {name!r} holds the single runs of 'reglab train', not strategies to compare, so it has no "
            f"comparison report. List them with 'reglab runs --study {name}' and print one with 'reglab show RUN'."
        )
    origin = f"created by 'reglab {command}'" if command else "stored without a command name"
    return f"study {name!r} has no strategies to compare ({origin}), so it has no comparison report; list its runs with 'reglab runs --study {name} --role all'."


def load_study_result(store: RunStore, name: str, dataset: Dataset | None = None) -> StudyResult:
    """Rebuild study ``name`` from ``store``: its specification, runs, failures and learning rates.

    Args:
        store: the run store.
        name: the study's name.
        dataset: the study's data set, for the report's augmentation samples; None leaves
            them out.

    Raises:
        ConfigError: the study is not stored.
    """
    spec = load_study_spec(store, name)
    stored = {run["run_key"]: run for run in store.runs(name, role=None)}

    lr_choices = {strategy: _lr_choice(spec, strategy, stored) for strategy in spec.strategies}
    runs, failures = [], []
    for seed in spec.seeds:
        for strategy in spec.strategies:
            run = stored.get(spec.run_config(strategy, seed, lr=lr_choices[strategy].lr).key())
            if run is None:
                continue
            (runs if run["status"] == "finished" else failures).append(run)
    return StudyResult(spec, runs, lr_choices, failures, dataset)


def _lr_choice(spec: StudySpec, strategy: str, stored: dict[str, dict[str, Any]]) -> LearningRateChoice:
    """Repeat the runner's learning-rate choice from the stored search runs."""

    def search(lr: float) -> float | None:
        run = stored.get(spec.run_config(strategy, spec.seeds[0], lr=lr, epochs=spec.search_epochs).key())
        return run["final_metrics"]["val_acc"] if run is not None and run["status"] == "finished" else None

    return learning_rate_choice(spec, strategy, search)
