"""Export every stored run of a study, with its per-epoch history, as JSON or CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

from reglab._paths import prepare_writable_folder
from reglab.errors import ConfigError
from reglab.study.store import RunStore

EXPORT_RUN_COLUMNS = (
    "id", "study", "role", "strategy", "seed", "dataset", "model", "status", "lr", "epochs_trained",
    "best_epoch", "stop_reason", "train_acc", "val_acc", "gap", "test_loss", "test_acc", "test_accesses",
    "total_seconds", "error", "finished", "run_key", "config_json",
)  # fmt: skip
EXPORT_HISTORY_COLUMNS = ("run_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap", "seconds")


def export_study(store: RunStore, name: str, fmt: Literal["csv", "json"], folder: str | Path) -> list[Path]:
    """Write every run of study ``name`` (learning-rate search runs included) to ``folder``.

    ``json`` writes ``runs.json``: the stored specification and a list of runs, each with
    its settings, metrics, test accesses and history. ``csv`` writes ``runs.csv`` (one row
    per run, settings as JSON in ``config_json``) and ``history.csv`` (one row per epoch).

    Returns:
        The files written.

    Raises:
        ConfigError: the study is not stored, ``folder`` cannot be created or written, or
            ``fmt`` is not csv or json.
    """
    spec = store.study_spec(name)
    if spec is None:
        known = ", ".join(repr(study) for study in store.studies()) or "none"
        raise ConfigError(f"study {name!r} not found in {store.path}; stored studies: {known}.")
    runs = store.find_runs(study=name, role=None)
    folder = prepare_writable_folder(Path(folder), "--to")

    if fmt == "json":
        path = folder / "runs.json"
        path.write_text(json.dumps({"study": name, "spec": spec, "runs": runs}, indent=2), encoding="utf-8")
        return [path]
    if fmt != "csv":
        raise ConfigError(f"export format must be 'csv' or 'json', got {fmt!r}.")

    runs_path, history_path = folder / "runs.csv", folder / "history.csv"
    with runs_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_RUN_COLUMNS)
        writer.writeheader()
        writer.writerows(_flat_run(run) for run in runs)
    with history_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_HISTORY_COLUMNS)
        writer.writeheader()
        for run in runs:
            writer.writerows({"run_id": run["id"], **row} for row in run["history"])
    return [runs_path, history_path]


def _flat_run(run: dict[str, Any]) -> dict[str, Any]:
    config = run["config"]
    final = run["final_metrics"] or {}
    test = run["test_metrics"] or {}
    lr = config["regularization"]["lr"]
    return {
        **{column: run.get(column) for column in ("id", "study", "role", "strategy", "seed", "dataset", "model")},
        "status": run["status"],
        "lr": lr if lr is not None else config["optimizer"]["lr"],
        "epochs_trained": len(run["history"]),
        "best_epoch": run["best_epoch"],
        "stop_reason": run["stop_reason"],
        "train_acc": final.get("train_acc"),
        "val_acc": final.get("val_acc"),
        "gap": final.get("gap"),
        "test_loss": test.get("test_loss"),
        "test_acc": test.get("test_acc"),
        "test_accesses": len(run["test_accesses"] or []),
        "total_seconds": (run["timings"] or {}).get("total_seconds"),
        "error": run["error"],
        "finished": run["finished"],
        "run_key": run["run_key"],
        "config_json": json.dumps(config, sort_keys=True),
    }
