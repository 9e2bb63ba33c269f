"""A run store that is a folder, a broken link, under a file or read-only fails before any training."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import ConfigError, DataError
from reglab.study.store import RunStore

runner = CliRunner()


def test_run_store_rejects_a_folder(tmp_path):
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


def test_run_store_rejects_a_broken_link(tmp_path):
    database = tmp_path / "reglab.db"
    database.symlink_to(tmp_path / "moved" / "reglab.db")

    with pytest.raises(DataError, match=r"is a link to '.*moved/reglab\.db', which does not exist"):
        RunStore(database)

    assert not (tmp_path / "moved").exists()


def test_run_store_reader_needs_an_existing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"run database '.*reglab\.db' not found; pass the folder that contains"):
        RunStore(tmp_path / "reglab.db", read_only=True)

    assert list(tmp_path.iterdir()) == []


def test_runs_names_a_folder_store(tmp_path):
    (tmp_path / "reglab.db").mkdir()

    result = runner.invoke(app, ["runs", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "is a folder" in result.output


def test_run_store_probes_writing_without_changing_the_file(stored_copy, monkeypatch):
    database = stored_copy / "reglab.db"
    before = database.read_bytes()
    real_connect = sqlite3.connect

    def connect_read_only(path, *args, **kwargs):
        # What SQLite does with a file that it may read but not write. The store's own URIs
        # (an immutable reader) pass unchanged.
        if kwargs.get("uri"):
            return real_connect(path, *args, **kwargs)
        return real_connect(f"{Path(path).resolve().as_uri()}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect_read_only)

    with pytest.raises(DataError, match=r"reglab\.db' cannot be written: the file or its folder is read-only"):
        RunStore(database)
    with RunStore(database, read_only=True) as store:
        assert store.studies() == ["stored"]

    assert database.read_bytes() == before


def without_write_permission(code: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a process that file modes bind, also when the tests run as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("the tests run as root, which ignores file modes, and setpriv is not installed")
        prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.fixture
def read_only_copy(stored_copy):
    """The stored study's folder and database, both without write permission."""
    database = stored_copy / "reglab.db"
    database.chmod(0o444)
    stored_copy.chmod(0o555)
    yield stored_copy
    stored_copy.chmod(0o755)
    database.chmod(0o644)


def test_read_only_folder_is_listed_but_not_written(read_only_copy):
    database = read_only_copy / "reglab.db"
    before = database.read_bytes()
    code = f"""
from reglab.errors import DataError
from reglab.study.store import RunStore
with RunStore({str(database)!r}, read_only=True) as store:
    print("studies", store.studies())
try:
    RunStore({str(database)!r})
except DataError as error:
    print("writer:", error)
"""

    result = without_write_permission(code)

    assert result.returncode == 0, result.stderr
    assert "studies ['stored']" in result.stdout
    assert "writer: the run database" in result.stdout
    assert "cannot be written" in result.stdout
    assert database.read_bytes() == before


def test_train_rejects_read_only_store_first(stored_copy):
    database = stored_copy / "reglab.db"
    database.chmod(0o444)
    code = f"""
import sys
from reglab.cli import app
sys.argv = ["reglab", "train", "--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--out", {str(stored_copy)!r}]
app()
"""

    result = without_write_permission(code)

    assert result.returncode == 2
    assert "cannot be written" in result.stdout + result.stderr
    assert "epoch" not in result.stdout
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in stored_copy.iterdir()) == ["reglab.db"]
    database.chmod(0o644)


def test_reading_a_read_only_file_leaves_no_sidecars(stored_copy):
    database = stored_copy / "reglab.db"
    database.chmod(0o444)
    code = f"""
from reglab.study.store import RunStore
with RunStore({str(database)!r}, read_only=True) as store:
    print("studies", store.studies())
"""

    result = without_write_permission(code)

    assert result.returncode == 0, result.stderr
    assert "studies ['stored']" in result.stdout
    assert sorted(path.name for path in stored_copy.iterdir()) == ["reglab.db"]
    database.chmod(0o644)
