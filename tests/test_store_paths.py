"""A run store path that is a folder, or lies under a file, fails before any training."""

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import DataError
from reglab.study.store import RunStore

runner = CliRunner()


def test_run_store_refuses_a_folder_and_leaves_it_unchanged(tmp_path):
    database = tmp_path / "reglab.db"
    database.mkdir()
    (database / "notes.txt").write_text("mine")

    with pytest.raises(DataError, match=r"reglab\.db' is a folder.*rename or remove the folder"):
        RunStore(database)

    assert (database / "notes.txt").read_text() == "mine"


def test_run_store_under_a_file_names_the_file(tmp_path):
    blocking = tmp_path / "results"
    blocking.write_text("a file, not a folder")

    with pytest.raises(DataError, match=r"'.*results' is a file, not a folder"):
        RunStore(blocking / "deeper" / "reglab.db")

    assert blocking.read_text() == "a file, not a folder"


def test_train_fails_on_a_folder_store_before_training(tmp_path):
    (tmp_path / "reglab.db").mkdir()

    result = runner.invoke(
        app, ["train", "--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--out", str(tmp_path)]
    )

    assert result.exit_code == 2
    assert "is a folder" in result.output
    assert "epoch" not in result.output
    assert "Traceback" not in result.output
