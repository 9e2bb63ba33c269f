"""reglab reproduce: a stored run retrained on CPU gives bit-identical metrics, and tampering shows."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from reglab.cli import app, console
from reglab.cli._common import error_console
from reglab.study import RunStore

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console():
    """Print 200 columns wide, so that no metric name is wrapped."""
    widths = console.width, error_console.width
    console.width = error_console.width = 200
    yield
    console.width, error_console.width = widths


def run_id_of(folder, strategy="l2", seed=1):
    with RunStore(folder / "reglab.db") as store:
        return next(run["id"] for run in store.find_runs(study="stored", strategy=strategy) if run["seed"] == seed)


def test_reproduce_is_identical_on_cpu(stored_copy):
    run_id = run_id_of(stored_copy)

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 0, result.output
    assert f"Run {run_id} reproduced: all" in result.output
    assert "values identical" in result.output
    with RunStore(stored_copy / "reglab.db") as store:
        verifications = store.verifications(run_id)
        run = store.run(run_id)
    assert len(verifications) == 1
    assert verifications[0]["identical"] is True
    assert verifications[0]["details"]["differences"] == []
    assert len(verifications[0]["details"]["reproduction_test_accesses"]) == 1
    assert len(run["test_accesses"]) == 1


def test_tampered_config_is_a_loud_mismatch(stored_copy):
    run_id = run_id_of(stored_copy)
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        config = json.loads(db.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
        config["regularization"]["lr"] = 0.01
        db.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config), run_id))

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 1
    assert f"MISMATCH: run {run_id} did not reproduce" in result.output
    assert "history[1].train_loss: stored" in result.output
    assert "test_metrics.test_loss: stored" in result.output
    assert "no longer match the run's settings key" in result.output
    with RunStore(stored_copy / "reglab.db") as store:
        verification = store.verifications(run_id)[-1]
    assert verification["identical"] is False
    differing = {difference["metric"] for difference in verification["details"]["differences"]}
    assert {"final_metrics.train_loss", "test_metrics.test_loss"} <= differing


def test_reproduce_unknown_run(stored_copy):
    result = runner.invoke(app, ["reproduce", "9999", "--out", str(stored_copy)])

    assert result.exit_code == 2
    assert "run 9999 not found" in result.output


def test_reproduce_rejects_failed_run(stored_copy):
    run_id = run_id_of(stored_copy, strategy="baseline", seed=0)
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        db.execute("UPDATE runs SET status = 'failed', error = 'loss became nan' WHERE id = ?", (run_id,))

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 2
    assert "has status 'failed'" in result.output


def test_reproduce_single_fit_run(tmp_path):
    trained = runner.invoke(app, ["train", "--dataset", "digits", "--model", "mlp:32", "--epochs", "2", "--out", str(tmp_path)])
    assert trained.exit_code == 0, trained.output

    result = runner.invoke(app, ["reproduce", "1", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "values identical" in result.output
    assert "batched engine" not in result.output


def test_reproduction_that_fails_is_a_mismatch(stored_copy):
    run_id = run_id_of(stored_copy, strategy="baseline", seed=0)
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        config = json.loads(db.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
        config["regularization"]["lr"] = 1e6
        db.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config), run_id))

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 1
    assert "status: stored 'finished', reproduced " in result.output
    assert "failed: the training loss became nan" in result.output


def _mark_trained_on_gpu(folder, run_id, val_acc_shift):
    """Pretend the stored run trained on CUDA and shift its stored validation accuracy."""
    with sqlite3.connect(folder / "reglab.db") as db:
        timings, final = db.execute("SELECT timings_json, final_metrics_json FROM runs WHERE id = ?", (run_id,)).fetchone()
        timings = {**json.loads(timings), "device": "cuda"}
        final = json.loads(final)
        final["val_acc"] += val_acc_shift
        db.execute(
            "UPDATE runs SET timings_json = ?, final_metrics_json = ? WHERE id = ?",
            (json.dumps(timings), json.dumps(final), run_id),
        )


def test_gpu_run_verifies_within_tolerance(stored_copy):
    run_id = run_id_of(stored_copy)
    _mark_trained_on_gpu(stored_copy, run_id, 1e-7)

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 0, result.output
    assert "reproduced within the tolerance 1e-05: 1 of" in result.output
    assert "trained on cpu and cuda" in result.output
    with RunStore(stored_copy / "reglab.db") as store:
        verification = store.verifications(run_id)[0]
    assert verification["identical"] is True
    assert verification["details"]["identical"] is False
    assert verification["details"]["tolerance"] == 1e-5


def test_gpu_run_beyond_tolerance_is_a_mismatch(stored_copy):
    run_id = run_id_of(stored_copy)
    _mark_trained_on_gpu(stored_copy, run_id, 1e-3)

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 1
    assert "final_metrics.val_acc: stored" in result.output


def test_invalid_stored_settings_are_listed_by_path(stored_copy):
    run_id = run_id_of(stored_copy)
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        config = json.loads(db.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
        config["regularization"]["l2"] = -1.0
        db.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config), run_id))

    result = runner.invoke(app, ["reproduce", str(run_id), "--out", str(stored_copy)])

    assert result.exit_code == 2
    assert f"the stored settings of run {run_id} are no longer valid" in result.output
    assert "regularization.l2: Input should be greater than or equal to 0, got -1.0" in result.output
    assert "validation error for" not in result.output
