"""Finding stored runs: runs, show, report and export read reglab.db without training."""

import csv
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from reglab.cli import app, console
from reglab.study import RunStore
from reglab.study.stored import load_study_result

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console():
    """Print tables 200 columns wide, so that no cell is cut short."""
    width = console.width
    console.width = 200
    yield
    console.width = width


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_runs_lists_studies_and_runs(stored_study):
    result = invoke("runs", "--out", stored_study)

    assert result.exit_code == 0, result.output
    assert "studies" in result.output
    assert "stored" in result.output
    assert result.output.count("finished") >= 4


def test_runs_filters(stored_study):
    by_strategy = invoke("runs", "--study", "stored", "--strategy", "l2", "--out", stored_study)
    failed = invoke("runs", "--status", "failed", "--out", stored_study)
    other_data = invoke("runs", "--dataset", "mnist", "--out", stored_study)

    assert by_strategy.exit_code == 0, by_strategy.output
    assert "baseline" not in by_strategy.output
    assert by_strategy.output.count(" l2 ") == 2
    assert "No runs match these filters." in failed.output
    assert "No runs match these filters." in other_data.output


def test_runs_rejects_unknown_status(stored_study):
    result = invoke("runs", "--status", "lost", "--out", stored_study)

    assert result.exit_code == 2
    assert "lost" in result.output


def test_runs_without_database(tmp_path):
    result = invoke("runs", "--out", tmp_path / "empty")

    assert result.exit_code == 2
    assert "reglab.db' not found" in result.output
    assert not (tmp_path / "empty").exists()


def test_show_prints_settings_history_and_metrics(stored_study):
    with RunStore(stored_study / "reglab.db") as store:
        run = store.find_runs(study="stored", strategy="l2")[0]

    result = invoke("show", run["id"], "--out", stored_study)

    assert result.exit_code == 0, result.output
    assert f"Run {run['id']} of study 'stored': strategy 'l2', seed 0" in result.output
    assert '"l2": 0.001' in result.output
    assert "history" in result.output
    assert "2*" in result.output
    assert f"{run['test_metrics']['test_acc'] * 100:.2f} %" in result.output
    assert "final evaluation of strategy 'l2'" in result.output


def test_show_unknown_run(stored_study):
    result = invoke("show", "9999", "--out", stored_study)

    assert result.exit_code == 2
    assert "run 9999 not found" in result.output


def test_report_rebuilds_files_from_store(stored_study, stored_copy):
    original = (stored_study / "stored" / "results.csv").read_text()

    result = invoke("report", "stored", "--out", stored_copy)

    assert result.exit_code == 0, result.output
    assert (stored_copy / "stored" / "results.csv").read_text() == original
    assert (stored_copy / "stored" / "summary.csv").is_file()
    html = (stored_copy / "stored" / "report.html").read_text()
    assert "<td>l2</td>" in html
    assert "data:image/png;base64," in html


def test_rebuilt_result_matches_the_spec(stored_study):
    with RunStore(stored_study / "reglab.db") as store:
        result = load_study_result(store, "stored")

    assert list(result.spec.strategies) == ["baseline", "l2"]
    assert [(run["strategy"], run["seed"]) for run in result.runs] == [
        ("baseline", 0), ("l2", 0), ("baseline", 1), ("l2", 1),
    ]  # fmt: skip
    assert result.failures == []
    assert result.lr_choices["l2"].source == "set by the study"
    assert result.dataset is None


def test_report_unknown_study(stored_study):
    result = invoke("report", "nothing", "--out", stored_study)

    assert result.exit_code == 2
    assert "study 'nothing' not found" in result.output
    assert "'stored'" in result.output


def test_export_csv(stored_study, tmp_path):
    result = invoke("export", "stored", "--format", "csv", "--to", tmp_path, "--out", stored_study)

    assert result.exit_code == 0, result.output
    with (tmp_path / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    with (tmp_path / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    assert len(runs) == 4
    assert {row["status"] for row in runs} == {"finished"}
    assert all(row["test_accesses"] == "1" for row in runs)
    assert len(history) == 8
    assert {row["run_id"] for row in history} == {row["id"] for row in runs}
    assert json.loads(runs[1]["config_json"])["regularization"]["l2"] == 0.001


def test_export_json(stored_study, tmp_path):
    result = invoke("export", "stored", "--format", "json", "--to", tmp_path, "--out", stored_study)

    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "runs.json").read_text())
    assert data["study"] == "stored"
    assert data["spec"]["epochs"] == 2
    assert len(data["runs"]) == 4
    assert [row["epoch"] for row in data["runs"][0]["history"]] == [1, 2]


def test_report_to_unwritable_folder(stored_copy):
    (stored_copy / "stored").write_text("a file where the report folder goes")

    result = invoke("report", "stored", "--out", stored_copy)

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"cannot write to the output folder '{stored_copy / 'stored'}'" in result.output


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_to_unwritable_folder(stored_study, tmp_path, fmt):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")

    for target in (a_file / "sub", "/proc/reglab-export"):
        result = invoke("export", "stored", "--format", fmt, "--to", target, "--out", stored_study)

        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        assert f"cannot write to the output folder '{target}'" in result.output
        assert "--to" in result.output


def test_old_database_gains_verifications_table(stored_copy):
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        db.execute("DROP TABLE verifications")

    result = invoke("leaderboard", "--out", stored_copy)

    assert result.exit_code == 0, result.output
    with sqlite3.connect(stored_copy / "reglab.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "verifications" in tables


def test_rebuilt_lr_choices_match_the_run(tmp_path):
    from reglab.study import run_study
    from reglab.study.spec import StudySpec
    from reglab.study.strategies import resolve_strategies

    spec = StudySpec(
        name="searched",
        dataset="digits",
        model="mlp:32",
        strategies=resolve_strategies(["baseline"]),
        seeds=[0],
        epochs=1,
        batch_size=64,
        lr_grid=[0.1, 1e-5],
    )
    with RunStore(tmp_path / "reglab.db") as store:
        trained = run_study(spec, store)
        rebuilt = load_study_result(store, "searched")

    assert rebuilt.lr_choices == trained.lr_choices
    assert rebuilt.lr_choices["baseline"].lr == 0.1
    assert [run["id"] for run in rebuilt.runs] == [run["id"] for run in trained.runs]


def test_report_on_train_study_names_commands(tmp_path):
    trained = invoke(
        "train", "--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--out", tmp_path, "--quiet"
    )
    assert trained.exit_code == 0, trained.output

    result = invoke("report", "train", "--out", tmp_path)

    assert result.exit_code == 2
    assert "holds the single runs of 'reglab train'" in result.output
    assert "reglab runs --study train" in result.output
    assert "not found" not in result.output


def test_report_on_tune_study_names_commands(stored_copy):
    with RunStore(stored_copy / "reglab.db") as store:
        store.save_study("tune_digits", {"command": "tune", "dataset": "digits", "model": "mlp:16"})

    result = invoke("report", "tune_digits", "--out", stored_copy)

    assert result.exit_code == 2
    assert "was created by 'reglab tune'" in result.output
    assert "reglab runs --study tune_digits --role all" in result.output
    assert "reglab leaderboard" in result.output
