"""Weight checkpoints: one per stored run, loadable into a fresh model, and weights-only."""

import os
import sqlite3
import subprocess
import sys

import pytest
import torch

from reglab.errors import ConfigError
from reglab.nn import build_model
from reglab.study import RunStore, run_study
from reglab.study.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from reglab.training.config import RunConfig


def model_for(config: RunConfig):
    """Build the untrained network of a stored run's settings, on digits (64 features, 10 classes)."""
    dropout = config.regularization.dropout
    return build_model(
        config.model,
        (64,),
        10,
        input_p=dropout.input_p if dropout else 0.0,
        hidden_p=dropout.p if dropout else 0.0,
        dropout_mode=dropout.mode if dropout else "inverted",
    )


def test_study_writes_one_checkpoint_per_run(tiny_spec, tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(tiny_spec, store)
        runs = store.runs("tiny")

    checkpoints = sorted((tmp_path / "tiny" / "checkpoints").iterdir())

    assert len(runs) == 6
    assert [path.name for path in checkpoints] == sorted(f"run-{run['id']}.pt" for run in runs)
    for run in runs:
        state = load_checkpoint(checkpoint_path(tmp_path, "tiny", run["id"]))
        model = model_for(RunConfig.model_validate(run["config"]))
        model.load_state_dict(state, strict=True)
        assert all(tensor.device.type == "cpu" for tensor in state.values())


def test_save_checkpoint_round_trips_weights(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(model, tmp_path / "sub" / "run-1.pt")

    state = load_checkpoint(path)

    assert torch.equal(state["weight"], model.weight.detach())
    assert torch.equal(state["bias"], model.bias.detach())
    assert [entry.name for entry in path.parent.iterdir()] == ["run-1.pt"]


class Payload:
    """An arbitrary object: unpickling it would call ``os.getcwd``."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_load_checkpoint_rejects_pickled_object(tmp_path):
    path = tmp_path / "run-1.pt"
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, path)

    with pytest.raises(ConfigError, match="not a weights-only checkpoint") as raised:
        load_checkpoint(path)

    assert str(path) in str(raised.value)


def test_load_checkpoint_missing_names_path(tmp_path):
    path = tmp_path / "run-7.pt"

    with pytest.raises(ConfigError, match="checkpoint not found") as raised:
        load_checkpoint(path)

    assert str(path) in str(raised.value)


def test_reproduce_reports_weights_mismatch(tiny_spec, tmp_path):
    from reglab.study.reproduce import reproduce_run

    spec = tiny_spec.model_copy(update={"strategies": {"baseline": tiny_spec.strategies["baseline"]}, "seeds": [0]})
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(spec, store)
        run_id = store.runs("tiny")[0]["id"]
        path = checkpoint_path(tmp_path, "tiny", run_id)

        identical = reproduce_run(store, run_id)

        state = load_checkpoint(path)
        name = next(iter(state))
        state[name] = state[name] + 1.0
        torch.save(state, path)
        tampered = reproduce_run(store, run_id)

    assert identical.identical, identical.differences
    assert identical.compared > len(state)
    assert not tampered.identical
    assert [difference.metric for difference in tampered.differences] == [f"weights.{name}"]
    assert tampered.differences[0].reproduced == "max absolute difference 1"


TWO_WRITERS = [
    "compare", "--dataset", "digits", "--model", "mlp:16", "--epochs", "2", "--seeds", "2",
    "--strategies", "l2", "--lr", "0.05", "--quiet",
]  # fmt: skip


def test_two_compare_processes_share_store(tmp_path):
    names = ("first", "second")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", "from reglab.cli import main; main()", *TWO_WRITERS, "--name", name,
             "--out", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]  # fmt: skip
    errors = []
    try:
        for process in processes:
            errors.append(process.communicate(timeout=180)[1].decode())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert processes[0].returncode == 0, errors[0]
    assert processes[1].returncode == 0, errors[1]
    with sqlite3.connect(tmp_path / "reglab.db") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = db.execute("SELECT study, strategy, seed, status FROM runs WHERE role = 'run'").fetchall()
    expected = [
        (study, strategy, seed, "finished") for study in names for strategy in ("baseline", "l2") for seed in (0, 1)
    ]
    assert integrity == "ok"
    assert sorted(rows) == sorted(expected)
    for name in names:
        assert len(list((tmp_path / name / "checkpoints").glob("run-*.pt"))) == 4


class Killed(BaseException):
    """Stands for SIGKILL at one point of storing a run: nothing after it runs."""


def kill_on_call(function, call):
    """Wrap ``function`` so that its ``call``-th call (from 1) raises :class:`Killed` instead of running."""
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call:
            raise Killed
        return function(*args, **kwargs)

    return wrapper


def stored_checkpoints(out, study):
    """Return the names of the files in a study's checkpoint folder, sorted."""
    return sorted(path.name for path in (out / study / "checkpoints").iterdir())


def test_kill_before_row_commit_retrains_run(tiny_spec, tmp_path, monkeypatch):
    # The third run's weights are on disk as a pending file, but its row is never committed.
    monkeypatch.setattr(RunStore, "save_run", kill_on_call(RunStore.save_run, 3))
    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(Killed):
            run_study(tiny_spec, store, batched=False)
        assert len(store.runs("tiny")) == 2
    assert sum(name.startswith("pending-") for name in stored_checkpoints(tmp_path, "tiny")) == 1

    monkeypatch.undo()
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(tiny_spec, store, batched=False)
        runs = store.runs("tiny")

    assert len(runs) == 6
    assert len({run["run_key"] for run in runs}) == 6
    assert stored_checkpoints(tmp_path, "tiny") == sorted(f"run-{run['id']}.pt" for run in runs)


def test_kill_after_row_commit_recovers_checkpoint(tiny_spec, tmp_path, monkeypatch):
    # The third run's row is committed, but its checkpoint is still the pending file.
    import reglab.study.runner as runner

    monkeypatch.setattr(runner, "commit_checkpoint", kill_on_call(runner.commit_checkpoint, 3))
    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(Killed):
            run_study(tiny_spec, store, batched=False)
        committed = store.runs("tiny")
    assert len(committed) == 3
    assert not checkpoint_path(tmp_path, "tiny", committed[2]["id"]).exists()

    monkeypatch.undo()
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(tiny_spec, store, batched=False)
        runs = store.runs("tiny")

    assert len(runs) == 6
    assert stored_checkpoints(tmp_path, "tiny") == sorted(f"run-{run['id']}.pt" for run in runs)
    state = load_checkpoint(checkpoint_path(tmp_path, "tiny", committed[2]["id"]))
    model_for(RunConfig.model_validate(committed[2]["config"])).load_state_dict(state, strict=True)
