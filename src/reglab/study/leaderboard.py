"""The leaderboard: finished runs ranked by their sealed test accuracy.

A run's test accuracy is an unbiased estimate only if its test set was evaluated once, after
everything about the run (learning rate, epoch, weights) had been chosen on validation data.
So the leaderboard ranks only runs with exactly one recorded test access, and lists every
other finished run as excluded, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reglab.study.store import RunStore

CAPTION = (
    "Ranked by sealed test accuracy, evaluated once per run after training. Learning rate, epoch and "
    "weights were selected on validation metrics only; choose between runs by validation accuracy, "
    "not by this ranking."
)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One ranked run. ``verified`` is True or False after a reproduction, None before any.

    ``seconds`` is the run's wall-clock time, and ``settings`` its regularization in words.
    """

    rank: int
    run_id: int
    study: str
    dataset: str
    model: str
    strategy: str
    seed: int
    val_acc: float
    test_acc: float
    verified: bool | None
    seconds: float | None = None
    settings: str = ""


@dataclass(frozen=True)
class ExcludedRun:
    """A finished run that the leaderboard does not rank, and why."""

    run_id: int
    study: str
    strategy: str
    seed: int
    reason: str


@dataclass(frozen=True)
class Leaderboard:
    """Ranked entries (best first) and excluded runs."""

    entries: list[LeaderboardEntry]
    excluded: list[ExcludedRun]
    caption: str = CAPTION


def rank_runs(runs: Sequence[dict[str, Any]], verdicts: dict[int, bool] | None = None) -> Leaderboard:
    """Rank finished runs with role ``run`` by test accuracy; exclude runs evaluated more than once.

    Args:
        runs: stored runs, as :meth:`RunStore.find_runs` returns them. Failed runs and
            learning-rate search runs are skipped.
        verdicts: the latest reproduction verdict per run id.

    Returns:
        The :class:`Leaderboard`. Ties in test accuracy keep the older run first.
    """
    verdicts = verdicts or {}
    ranked: list[dict[str, Any]] = []
    excluded: list[ExcludedRun] = []
    for run in runs:
        if run["status"] != "finished" or run["role"] != "run":
            continue
        reason = _exclusion_reason(run)
        if reason is not None:
            excluded.append(ExcludedRun(run["id"], run["study"], run["strategy"], run["seed"], reason))
        else:
            ranked.append(run)

    ranked.sort(key=lambda run: (-run["test_metrics"]["test_acc"], run["id"]))
    entries = [
        LeaderboardEntry(
            rank=position,
            run_id=run["id"],
            study=run["study"],
            dataset=run["dataset"],
            model=run["model"],
            strategy=run["strategy"],
            seed=run["seed"],
            val_acc=run["final_metrics"]["val_acc"],
            test_acc=run["test_metrics"]["test_acc"],
            verified=verdicts.get(run["id"]),
            seconds=(run.get("timings") or {}).get("total_seconds"),
            settings=_settings(run),
        )
        for position, run in enumerate(ranked, start=1)
    ]
    return Leaderboard(entries, excluded)


def build_leaderboard(store: RunStore, *, dataset: str | None = None) -> Leaderboard:
    """Rank the stored runs, of one data set or of all, with their reproduction verdicts."""
    runs = store.find_runs(dataset=dataset, status="finished", role="run")
    verdicts = {item["run_id"]: item["identical"] for item in store.verifications()}
    return rank_runs(runs, verdicts)


def _settings(run: dict[str, Any]) -> str:
    from reglab.training.config import RunConfig

    try:
        config = RunConfig.model_validate(run["config"])
    except (KeyError, TypeError, ValueError):
        return ""
    precision = "" if config.precision == "fp32" else f"; {config.precision}"
    return f"{config.regularization.describe()}; {config.epochs} epochs{precision}"


def _exclusion_reason(run: dict[str, Any]) -> str | None:
    accesses = run["test_accesses"] or []
    if len(accesses) > 1:
        return f"test set evaluated {len(accesses)} times; its test accuracy is no longer an unbiased estimate"
    if not accesses or not run["test_metrics"]:
        return "test set never evaluated"
    return None
