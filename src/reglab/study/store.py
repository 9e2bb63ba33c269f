"""SQLite store of studies, runs and per-epoch history.

A run is written in one transaction together with its history, only once it has finished
(or failed), so an interrupted study leaves no partial rows and a resumed study finds every
finished run by its settings key. The database uses WAL mode so that readers (``reglab
report``) do not block a writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reglab._paths import file_in_the_way
from reglab.errors import ConfigError, DataError
from reglab.training.fit import RunResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    spec_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL REFERENCES studies(name),
    run_key TEXT NOT NULL,
    role TEXT NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    config_json TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    split_json TEXT,
    best_epoch INTEGER,
    stop_reason TEXT,
    final_metrics_json TEXT,
    test_metrics_json TEXT,
    test_accesses_json TEXT,
    timings_json TEXT,
    weight_stats_json TEXT,
    error TEXT,
    finished TEXT NOT NULL,
    UNIQUE (study, run_key)
);
CREATE TABLE IF NOT EXISTS history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, gap REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS verifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    identical INTEGER NOT NULL,
    details_json TEXT NOT NULL
);
"""

_HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap", "seconds")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Return the versions of Python, reglab and the libraries that decide a run's numbers."""
    import platform

    import numpy
    import torch

    from reglab import __version__

    return {
        "python": platform.python_version(),
        "reglab": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Return whether SQLite reports the file as not a database or as corrupt."""
    # OperationalError ("database is locked", "unable to open database file") is a
    # DatabaseError too, but it reports no damage to the file's contents.
    if isinstance(error, sqlite3.OperationalError):
        return False
    # sqlite_errorcode exists from Python 3.11; SQLITE_CORRUPT is 11 and SQLITE_NOTADB is 26.
    code = getattr(error, "sqlite_errorcode", None)
    return code is None or code & 0xFF in (11, 26)


def damaged_database_error(path: Path, error: sqlite3.DatabaseError) -> DataError:
    """Return the DataError that explains a damaged run database and how to recover."""
    return DataError(
        f"the run database '{path}' is not a reglab database or is damaged (SQLite: {error}). "
        f"reglab leaves the file as it is. Move it aside (for example to '{path}.damaged') and rerun, "
        "which retrains the runs, or restore a backup copy. "
        f"'sqlite3 {path} .recover | sqlite3 recovered.db' may salvage the rows that are still readable "
        "(use .dump where your sqlite3 lacks .recover)."
    )


def _is_read_only(error: sqlite3.DatabaseError) -> bool:
    """Return whether SQLite failed because it cannot write the file or create files beside it."""
    message = str(error)
    return isinstance(error, sqlite3.OperationalError) and (
        "readonly database" in message or "unable to open database file" in message
    )


def read_only_database_error(path: Path) -> DataError:
    """Return the DataError for a run database that reglab must write but cannot."""
    return DataError(
        f"the run database '{path}' cannot be written: the file or its folder is read-only. "
        "Make both writable, or write to another output folder; reglab changed nothing."
    )


def missing_database_error(path: Path) -> ConfigError:
    """Return the ConfigError for a run database that a command must read but that does not exist."""
    return ConfigError(f"run database '{path}' not found; pass the folder that contains reglab.db with --out.")


def _check_writable(connection: sqlite3.Connection) -> None:
    """Raise SQLite's error when the database cannot be written, changing nothing.

    Opening a read-only file succeeds, and so do ``BEGIN IMMEDIATE`` and ``CREATE TABLE IF
    NOT EXISTS`` for tables that exist, so the check rewrites the header's ``user_version``
    with its own value and rolls the transaction back.
    """
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(f"PRAGMA user_version = {version}")
    finally:
        connection.execute("ROLLBACK")


class RunStore:
    """Studies and runs in one SQLite file.

    Args:
        path: the database file; its folder is created if needed.
        read_only: the caller only reads. The file and its folder may then be read-only, and
            such a file is read as immutable, since no other process can write it either.
            Otherwise opening checks that the file can be written, so that a command fails
            before it trains, not after.

    Raises:
        ConfigError: ``read_only`` and the file does not exist.
        DataError: the path is a folder, a broken link or lies under a file; the file cannot
            be written (unless ``read_only``); or the file is not an SQLite database or is
            damaged, on opening or on any later query. The file is never changed in these cases.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._check_path(read_only)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = self._connect(read_only)
        except sqlite3.DatabaseError as error:
            if _is_damage(error):
                raise damaged_database_error(self.path, error) from error
            if _is_read_only(error):
                raise read_only_database_error(self.path) from error
            raise
        self._connection.row_factory = sqlite3.Row

    def _check_path(self, read_only: bool) -> None:
        if self.path.is_dir():
            raise DataError(
                f"the run store '{self.path}' is a folder, but reglab keeps its runs in an SQLite file "
                "of that name; rename or remove the folder, or write to another output folder."
            )
        if self.path.is_symlink() and not self.path.exists():
            raise DataError(
                f"the run store '{self.path}' is a link to '{self.path.readlink()}', which does not exist; "
                "restore the target, remove the link, or write to another output folder."
            )
        if read_only and not self.path.exists():
            # A reader has nothing to read, and SQLite would create an empty file.
            raise missing_database_error(self.path)
        blocking = file_in_the_way(self.path.parent)
        if blocking is not None:
            raise DataError(
                f"the run store '{self.path}' cannot be created because '{blocking}' is a file, not a "
                "folder; rename or remove that file, or write to another output folder."
            )

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        """Open the file, create the tables it lacks and check that it can be written.

        A store that cannot be written raises, unless ``read_only``: it is then opened as
        immutable, which creates no file beside it.
        """
        # SQLite creates these beside a WAL database, with the file's permissions.
        sidecars = [self.path.with_name(self.path.name + suffix) for suffix in ("-wal", "-shm")]
        existing = [sidecar for sidecar in sidecars if sidecar.exists()]
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            # Reading the schema first fails on a damaged file before any pragma or
            # CREATE statement could write to it.
            connection.execute("SELECT name FROM sqlite_master").fetchall()
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(_SCHEMA)
            _check_writable(connection)
            return connection
        except sqlite3.DatabaseError as error:
            connection.close()
            # A read-only file leaves the sidecars this open created, read-only too, and they
            # would block the store once the file is writable again. No other process can
            # use them: a writer fails here as well, and a reader reads the file as immutable.
            for sidecar in sidecars:
                if sidecar not in existing:
                    sidecar.unlink(missing_ok=True)
            if not (read_only and _is_read_only(error)):
                raise

        immutable = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True)
        try:
            immutable.execute("SELECT name FROM sqlite_master").fetchall()
        except sqlite3.DatabaseError:
            immutable.close()
            raise
        return immutable

    def _execute(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Run one read query and return all its rows, raising DataError on a damaged file."""
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as error:
            if _is_damage(error):
                raise damaged_database_error(self.path, error) from error
            raise

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connection:
                yield self._connection
        except sqlite3.DatabaseError as error:
            if _is_damage(error):
                raise damaged_database_error(self.path, error) from error
            raise

    # Writing.

    def save_study(self, name: str, spec: dict[str, Any]) -> None:
        """Create the study or update its stored specification."""
        now = _now()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO studies (name, created, updated, spec_json) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET updated = excluded.updated, spec_json = excluded.spec_json",
                # Keys keep their order, because the order of the strategies is the study's.
                (name, now, now, json.dumps(spec)),
            )

    def save_run(self, study: str, result: RunResult, *, role: str = "run") -> int:
        """Store a finished run and its history in one transaction; return its id."""
        config = result.config
        with self._transaction() as db:
            db.execute("DELETE FROM runs WHERE study = ? AND run_key = ?", (study, config.key()))
            cursor = db.execute(
                "INSERT INTO runs (study, run_key, role, strategy, seed, dataset, model, status, config_json,"
                " versions_json, split_json, best_epoch, stop_reason, final_metrics_json, test_metrics_json,"
                " test_accesses_json, timings_json, weight_stats_json, error, finished)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    study,
                    config.key(),
                    role,
                    config.strategy,
                    config.seed,
                    config.dataset,
                    config.model,
                    config.model_dump_json(),
                    json.dumps(library_versions()),
                    json.dumps(result.split),
                    result.best_epoch,
                    result.stop_reason,
                    json.dumps(result.final_metrics),
                    json.dumps(result.test_metrics) if result.test_metrics else None,
                    json.dumps(result.test_accesses),
                    json.dumps(result.timings),
                    json.dumps(result.weight_stats),
                    _now(),
                ),
            )
            run_id = int(cursor.lastrowid)
            db.executemany(
                f"INSERT INTO history (run_id, {', '.join(_HISTORY_COLUMNS)}) VALUES (?{', ?' * len(_HISTORY_COLUMNS)})",
                [(run_id, *(row.get(column) for column in _HISTORY_COLUMNS)) for row in result.history],
            )
        return run_id

    def save_failure(self, study: str, config: Any, error: str, *, role: str = "run") -> int:
        """Store a run that raised, with its error message, so the study can report it."""
        with self._transaction() as db:
            db.execute("DELETE FROM runs WHERE study = ? AND run_key = ?", (study, config.key()))
            cursor = db.execute(
                "INSERT INTO runs (study, run_key, role, strategy, seed, dataset, model, status, config_json,"
                " versions_json, error, finished) VALUES (?, ?, ?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?)",
                (
                    study,
                    config.key(),
                    role,
                    config.strategy,
                    config.seed,
                    config.dataset,
                    config.model,
                    config.model_dump_json(),
                    json.dumps(library_versions()),
                    error,
                    _now(),
                ),
            )
        return int(cursor.lastrowid)

    def save_verification(self, run_id: int, identical: bool, details: dict[str, Any]) -> int:
        """Store the verdict of a reproduction of run ``run_id``; return its id."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO verifications (run_id, created, identical, details_json) VALUES (?, ?, ?, ?)",
                (run_id, _now(), int(identical), json.dumps(details)),
            )
        return int(cursor.lastrowid)

    # Reading.

    def run(self, run_id: int) -> dict[str, Any] | None:
        """Return the run with this id, with its history, or None."""
        row = next(iter(self._execute("SELECT * FROM runs WHERE id = ?", (run_id,))), None)
        return self._decode(row) if row else None

    def find_runs(
        self,
        *,
        study: str | None = None,
        dataset: str | None = None,
        strategy: str | None = None,
        status: str | None = None,
        role: str | None = "run",
    ) -> list[dict[str, Any]]:
        """Return the runs that match every filter given, oldest first, each with its history."""
        filters = {"study": study, "dataset": dataset, "strategy": strategy, "status": status, "role": role}
        clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
        params = [value for value in filters.values() if value is not None]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(f"SELECT * FROM runs{where} ORDER BY id", params)
        return [self._decode(row) for row in rows]

    def study_spec(self, name: str) -> dict[str, Any] | None:
        """Return the stored specification of study ``name`` (as last run), or None."""
        row = next(iter(self._execute("SELECT spec_json FROM studies WHERE name = ?", (name,))), None)
        return json.loads(row["spec_json"]) if row else None

    def study_overview(self) -> list[dict[str, Any]]:
        """Return one row per study: name, data set, model, dates and counts of finished and failed runs."""
        rows = self._execute(
            "SELECT s.name, s.created, s.updated, s.spec_json,"
            " SUM(r.status = 'finished' AND r.role = 'run') AS finished,"
            " SUM(r.status = 'failed' AND r.role = 'run') AS failed"
            " FROM studies s LEFT JOIN runs r ON r.study = s.name GROUP BY s.name ORDER BY s.created"
        )
        overview = []
        for row in rows:
            item = {**dict(row), "finished": row["finished"] or 0, "failed": row["failed"] or 0}
            spec = json.loads(item.pop("spec_json"))
            item["dataset"] = spec.get("dataset", "")
            item["model"] = spec.get("model", "")
            overview.append(item)
        return overview

    def verifications(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Return the stored reproductions, of one run or of all runs, oldest first."""
        query, params = "SELECT * FROM verifications", []
        if run_id is not None:
            query += " WHERE run_id = ?"
            params.append(run_id)
        rows = self._execute(query + " ORDER BY id", params)
        result = []
        for row in rows:
            item = dict(row)
            item["identical"] = bool(item["identical"])
            item["details"] = json.loads(item.pop("details_json"))
            result.append(item)
        return result

    def finished_run(self, study: str, run_key: str, *, role: str | None = None) -> dict[str, Any] | None:
        """Return the finished run with this settings key, or None.

        With ``role="run"`` only a run whose sealed test set was evaluated counts. When the
        search budget equals the epoch budget, a learning-rate search run can have the same
        settings as a main run. It trained identically but left its test set sealed, so it
        does not stand in for the main run, and the main run replaces it when stored.
        """
        query = "SELECT * FROM runs WHERE study = ? AND run_key = ? AND status = 'finished'"
        params: list[Any] = [study, run_key]
        if role == "run":
            query += " AND role = 'run'"
        row = next(iter(self._execute(query, params)), None)
        return self._decode(row) if row else None

    def runs(self, study: str, *, role: str | None = "run") -> list[dict[str, Any]]:
        """Return the study's runs in insertion order, each with its history."""
        query = "SELECT * FROM runs WHERE study = ?"
        params: list[Any] = [study]
        if role is not None:
            query += " AND role = ?"
            params.append(role)
        rows = self._execute(query + " ORDER BY id", params)
        return [self._decode(row) for row in rows]

    def history(self, run_id: int) -> list[dict[str, float]]:
        rows = self._execute(
            f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM history WHERE run_id = ? ORDER BY epoch", (run_id,)
        )
        return [dict(row) for row in rows]

    def studies(self) -> list[str]:
        return [row["name"] for row in self._execute("SELECT name FROM studies ORDER BY created")]

    def _decode(self, row: sqlite3.Row) -> dict[str, Any]:
        run = dict(row)
        for column in list(run):
            if column.endswith("_json"):
                value = run.pop(column)
                run[column[: -len("_json")]] = json.loads(value) if value is not None else None
        run["history"] = self.history(run["id"])
        return run
