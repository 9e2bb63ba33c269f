"""Nothing lost: a study killed mid-way resumes without duplicates, and a failed run is kept."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from reglab.cli import app

runner = CliRunner()

STUDY = [
    "compare", "--dataset", "digits", "--model", "mlp:32", "--epochs", "2", "--seeds", "2",
    "--strategies", "l2", "--lr", "0.05", "--batch-size", "64", "--name", "killed", "--quiet",
]  # fmt: skip


def count_finished(database):
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is not created yet


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_sigkill_then_resume_keeps_every_run_once(tmp_path):
    database = tmp_path / "reglab.db"
    process = subprocess.Popen(
        [sys.executable, "-c", "from reglab.cli import main; main()", *STUDY, "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while count_finished(database) == 0:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no run was stored within 120 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        process.stderr.close()

    assert process.returncode == -signal.SIGKILL
    stored_before = count_finished(database)
    assert 1 <= stored_before < 4

    result = runner.invoke(app, [*STUDY, "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT strategy, seed, status FROM runs WHERE study = 'killed' AND role = 'run'").fetchall()
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        orphans = db.execute("SELECT COUNT(*) FROM history WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()[0]
    expected = {(strategy, seed) for strategy in ("baseline", "l2") for seed in (0, 1)}
    assert sorted(rows) == sorted((strategy, seed, "finished") for strategy, seed in expected)
    assert integrity == "ok"
    assert orphans == 0


def test_failed_run_is_stored_and_listed(tmp_path):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        "name: diverging\ndataset: digits\nmodel: mlp:32\nepochs: 2\nbatch_size: 64\nseeds: 1\nlr: 0.05\n"
        "strategies:\n  too-fast: {lr: 1.0e6}\n  l2: {builtin: l2}\n"
    )

    result = runner.invoke(app, ["compare", str(study_file), "--out", str(tmp_path), "--quiet"])

    assert result.exit_code == 1, result.output
    assert "1 run(s) failed:" in result.output
    assert "too-fast seed 0: the training loss became" in result.output
    assert result.output.index("1 run(s) failed:") > result.output.index("l2")
    with sqlite3.connect(tmp_path / "reglab.db") as db:
        rows = dict(db.execute("SELECT strategy, status FROM runs").fetchall())
        error = db.execute("SELECT error FROM runs WHERE status = 'failed'").fetchone()[0]
    assert rows == {"baseline": "finished", "too-fast": "failed", "l2": "finished"}
    assert "lower the learning rate (lr=1e+06)" in error

    listed = runner.invoke(app, ["runs", "--status", "failed", "--out", str(tmp_path)])

    assert listed.exit_code == 0, listed.output
    assert "too-fast" in listed.output
    assert "l2 " not in listed.output
