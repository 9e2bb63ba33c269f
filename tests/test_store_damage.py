"""A damaged run database raises a clear DataError and is never changed."""

import hashlib
import os
import shutil

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import DataError
from reglab.study.store import RunStore

runner = CliRunner()


def write_text(database):
    database.write_text("these are my notes, not a database\n")


def truncate(database):
    content = database.read_bytes()
    database.write_bytes(content[: len(content) // 2 + 100])


def overwrite_with_random_bytes(database):
    content = bytearray(database.read_bytes())
    content[100:3000] = os.urandom(2900)
    database.write_bytes(bytes(content))


DAMAGES = [write_text, truncate, overwrite_with_random_bytes]


@pytest.fixture(params=DAMAGES, ids=lambda damage: damage.__name__)
def damaged_folder(request, stored_study, tmp_path):
    """A copy of the stored study's folder whose reglab.db is damaged one way."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    shutil.copy(stored_study / "reglab.db", folder / "reglab.db")
    request.param(folder / "reglab.db")
    return folder


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_store_rejects_damaged_file(damaged_folder):
    database = damaged_folder / "reglab.db"
    before = digest(database)

    with pytest.raises(DataError) as raised:
        with RunStore(database) as store:
            store.find_runs(role=None)

    message = str(raised.value)
    assert str(database) in message
    assert "not a reglab database or is damaged" in message
    assert "Move it aside" in message
    assert ".recover" in message
    assert digest(database) == before


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["leaderboard"],
        ["show", "1"],
        ["report", "stored"],
        ["export", "stored"],
        ["reproduce", "1"],
        ["compete", "--dataset", "digits", "--budget", "5s", "--quiet"],
        [
            "compare", "--dataset", "digits", "--model", "mlp:8", "--epochs", "1", "--seeds", "1",
            "--strategies", "baseline", "--name", "stored", "--quiet",
        ],
    ],  # fmt: skip
    ids=lambda command: command[0],
)
def test_commands_report_damaged_database(damaged_folder, command):
    database = damaged_folder / "reglab.db"
    before = digest(database)

    result = runner.invoke(app, [*command, "--out", str(damaged_folder)])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "not a reglab database or is damaged" in result.output
    assert digest(database) == before
