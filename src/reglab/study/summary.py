"""Per-strategy summaries of a study's runs and their CSV files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reglab.study.stats import Interval, PairedComparison, mean_interval, paired_comparison

RUN_COLUMNS = (
    "run_id", "strategy", "seed", "lr", "epochs_trained", "best_epoch", "stop_reason",
    "train_acc", "val_acc", "test_acc", "gap", "test_loss", "seconds",
)  # fmt: skip


@dataclass(frozen=True)
class StrategySummary:
    """Means and 95% intervals over seeds of one strategy's finished runs."""

    strategy: str
    description: str
    lr: float
    n_runs: int
    train_acc: Interval
    val_acc: Interval
    test_acc: Interval
    gap: Interval
    best_epoch: Interval
    seconds: Interval
    vs_baseline: PairedComparison | None


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """Flatten a stored run into the columns of ``results.csv``."""
    final = run["final_metrics"]
    return {
        "run_id": run["id"],
        "strategy": run["strategy"],
        "seed": run["seed"],
        "lr": run["config"]["regularization"]["lr"],
        "epochs_trained": len(run["history"]),
        "best_epoch": run["best_epoch"],
        "stop_reason": run["stop_reason"],
        "train_acc": final["train_acc"],
        "val_acc": final["val_acc"],
        "test_acc": run["test_metrics"]["test_acc"],
        "gap": final["gap"],
        "test_loss": run["test_metrics"]["test_loss"],
        "seconds": run["timings"]["total_seconds"],
    }


def has_batched_runs(runs: Sequence[dict[str, Any]]) -> bool:
    """Return whether any of ``runs`` trained in a batch of several, so its seconds are a share of the batch's time."""
    return any(((run.get("timings") or {}).get("batched_members") or 1) > 1 for run in runs)


def summarize(runs: Sequence[dict[str, Any]], descriptions: dict[str, str], baseline: str = "baseline") -> list[StrategySummary]:
    """Summarize finished runs per strategy, in the order of ``descriptions``.

    Each strategy other than ``baseline`` is compared with it over the seeds both finished.
    """
    rows = [run_row(run) for run in runs]
    by_strategy: dict[str, list[dict[str, Any]]] = {name: [] for name in descriptions}
    for row in rows:
        by_strategy.setdefault(row["strategy"], []).append(row)
    baseline_test = {row["seed"]: row["test_acc"] for row in by_strategy.get(baseline, [])}

    summaries = []
    for name, strategy_rows in by_strategy.items():
        if not strategy_rows:
            continue

        def column(key: str, rows: list[dict[str, Any]] = strategy_rows) -> list[float]:
            return [float(row[key]) for row in rows]

        comparison = None
        if name != baseline and baseline_test:
            comparison = paired_comparison({row["seed"]: row["test_acc"] for row in strategy_rows}, baseline_test)
        summaries.append(
            StrategySummary(
                strategy=name,
                description=descriptions.get(name, ""),
                lr=float(strategy_rows[0]["lr"]),
                n_runs=len(strategy_rows),
                train_acc=mean_interval(column("train_acc")),
                val_acc=mean_interval(column("val_acc")),
                test_acc=mean_interval(column("test_acc")),
                gap=mean_interval(column("gap")),
                best_epoch=mean_interval(column("best_epoch")),
                seconds=mean_interval(column("seconds")),
                vs_baseline=comparison,
            )
        )
    return summaries


def write_results_csv(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Write one row per finished run."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS)
        writer.writeheader()
        for run in runs:
            writer.writerow(run_row(run))


def write_summary_csv(summaries: Sequence[StrategySummary], path: Path) -> None:
    """Write one row per strategy: means, 95% interval half-widths and the baseline comparison."""
    fields = ["strategy", "lr", "n_runs"]
    for metric in ("train_acc", "val_acc", "test_acc", "gap", "best_epoch", "seconds"):
        fields += [f"{metric}_mean", f"{metric}_ci95"]
    fields += ["test_acc_diff_vs_baseline", "test_acc_diff_ci95", "p_value", "better_than_baseline"]

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for summary in summaries:
            row: dict[str, Any] = {"strategy": summary.strategy, "lr": summary.lr, "n_runs": summary.n_runs}
            for metric in ("train_acc", "val_acc", "test_acc", "gap", "best_epoch", "seconds"):
                interval: Interval = getattr(summary, metric)
                row[f"{metric}_mean"] = interval.mean
                row[f"{metric}_ci95"] = interval.half_width
            comparison = summary.vs_baseline
            if comparison is not None:
                row["test_acc_diff_vs_baseline"] = comparison.difference.mean
                row["test_acc_diff_ci95"] = comparison.difference.half_width
                row["p_value"] = comparison.p_value
                row["better_than_baseline"] = comparison.better
            writer.writerow(row)
