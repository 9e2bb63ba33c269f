"""The leaderboard ranks once-evaluated runs by test accuracy and lists the others as excluded."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from reglab.cli import app, console
from reglab.study import RunStore
from reglab.study.leaderboard import rank_runs

runner = CliRunner()


def make_run(run_id, test_acc, *, val_acc=0.9, accesses=1, status="finished", role="run", strategy="l2"):
    return {
        "id": run_id,
        "study": "s",
        "dataset": "digits",
        "model": "mlp:32",
        "strategy": strategy,
        "seed": run_id,
        "status": status,
        "role": role,
        "final_metrics": {"val_acc": val_acc} if status == "finished" else None,
        "test_metrics": {"test_acc": test_acc} if status == "finished" and role == "run" else None,
        "test_accesses": [{"purpose": "final evaluation"}] * accesses,
    }


def test_ranks_by_test_accuracy():
    board = rank_runs([make_run(1, 0.90), make_run(2, 0.95), make_run(3, 0.92)])

    assert [entry.run_id for entry in board.entries] == [2, 3, 1]
    assert [entry.rank for entry in board.entries] == [1, 2, 3]
    assert board.excluded == []


def test_ties_keep_older_run_first():
    board = rank_runs([make_run(5, 0.9), make_run(4, 0.9)])

    assert [entry.run_id for entry in board.entries] == [4, 5]


def test_run_evaluated_twice_is_excluded():
    board = rank_runs([make_run(1, 0.90), make_run(2, 0.99, accesses=2)])

    assert [entry.run_id for entry in board.entries] == [1]
    assert [run.run_id for run in board.excluded] == [2]
    assert board.excluded[0].reason.startswith("test set evaluated 2 times")


def test_failed_and_search_runs_are_skipped():
    runs = [make_run(1, 0.9), make_run(2, None, status="failed"), make_run(3, None, role="lr-search", accesses=0)]

    board = rank_runs(runs)

    assert [entry.run_id for entry in board.entries] == [1]
    assert board.excluded == []


def test_verdicts_are_attached():
    board = rank_runs([make_run(1, 0.9), make_run(2, 0.8), make_run(3, 0.7)], {1: True, 2: False})

    assert [entry.verified for entry in board.entries] == [True, False, None]


def test_caption_says_selection_used_validation():
    assert "selected on validation metrics only" in rank_runs([]).caption


@pytest.fixture
def wide_console():
    width = console.width
    console.width = 200
    yield
    console.width = width


def test_leaderboard_command(stored_copy, wide_console):
    with RunStore(stored_copy / "reglab.db") as store:
        runs = store.find_runs(study="stored")
        store.save_verification(runs[0]["id"], True, {})
    reopened = runs[1]["id"]
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        accesses = runs[1]["test_accesses"] * 2
        db.execute("UPDATE runs SET test_accesses_json = ? WHERE id = ?", (json.dumps(accesses), reopened))

    result = runner.invoke(app, ["leaderboard", "--dataset", "digits", "--out", str(stored_copy)])

    assert result.exit_code == 0, result.output
    assert "selected on validation metrics only" in " ".join(result.output.split())
    assert "✓ identical" in result.output
    assert "excluded from the ranking" in result.output
    assert "test set evaluated 2 times" in result.output
    ranked_lines = [line for line in result.output.splitlines() if "stored" in line and "evaluated" not in line]
    assert len(ranked_lines) == 3


def test_leaderboard_other_dataset_is_empty(stored_study):
    result = runner.invoke(app, ["leaderboard", "--dataset", "mnist", "--out", str(stored_study)])

    assert result.exit_code == 0, result.output
    assert "No finished runs on 'mnist'" in result.output
