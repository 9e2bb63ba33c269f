"""TensorBoard scalars of a study's runs, written by reglab compare --tensorboard."""

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.study import RunStore
from reglab.study.tensorboard import write_tensorboard_scalars

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

runner = CliRunner()


def read_scalars(log_dir):
    events = event_accumulator.EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_scalars_match_stored_history(stored_study, tmp_path):
    with RunStore(stored_study / "reglab.db") as store:
        runs = store.find_runs(study="stored")

    written = write_tensorboard_scalars("stored", runs, tmp_path)

    assert [path.name for path in written] == [f"{run['strategy']}-seed{run['seed']}-run{run['id']}" for run in runs]
    scalars = read_scalars(written[0])
    assert set(scalars) == {"train_loss", "train_acc", "val_loss", "val_acc", "gap", "test_loss", "test_acc"}
    assert [step for step, _ in scalars["val_acc"]] == [1, 2]
    assert scalars["val_acc"][1][1] == pytest.approx(runs[0]["history"][1]["val_acc"])
    assert scalars["test_acc"] == [(runs[0]["best_epoch"], pytest.approx(runs[0]["test_metrics"]["test_acc"]))]


def test_existing_run_logs_are_skipped(stored_study, tmp_path):
    with RunStore(stored_study / "reglab.db") as store:
        runs = store.find_runs(study="stored")
    write_tensorboard_scalars("stored", runs[:1], tmp_path)

    written = write_tensorboard_scalars("stored", runs, tmp_path)

    assert len(written) == len(runs) - 1


def test_compare_writes_tensorboard_logs(tmp_path):
    result = runner.invoke(
        app,
        [
            "compare", "--dataset", "digits", "--model", "mlp:32", "--epochs", "1", "--seeds", "1",
            "--strategies", "l2", "--lr", "0.05", "--name", "logged", "--out", str(tmp_path / "runs"),
            "--tensorboard", str(tmp_path / "tb"), "--quiet",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "TensorBoard: 2 new run log(s)" in result.output
    assert sorted(path.name.rsplit("-run", 1)[0] for path in (tmp_path / "tb" / "logged").iterdir()) == [
        "baseline-seed0",
        "l2-seed0",
    ]


def test_missing_package_is_reported_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)

    result = runner.invoke(
        app, ["compare", "--dataset", "digits", "--out", str(tmp_path), "--tensorboard", str(tmp_path / "tb")]
    )

    assert result.exit_code == 2
    assert "--tensorboard needs the tensorboard package" in result.output
    assert not (tmp_path / "reglab.db").exists()


class ReadScalarsOnFinish:
    """Progress that reads each trained run's TensorBoard log when the runner reports it finished."""

    def __init__(self, folder):
        self.folder = folder
        self.scalars = {}

    def run_started(self, label, epochs):
        pass

    def epoch_finished(self, epoch, row):
        pass

    def run_finished(self, label, *, skipped, error=None):
        logs = sorted((self.folder / "tiny").iterdir()) if (self.folder / "tiny").exists() else []
        self.scalars[label] = {log.name: read_scalars(log) for log in logs}


def test_scalars_written_while_study_runs(tiny_spec, tmp_path):
    from reglab.study import run_study
    from reglab.study.tensorboard import LiveScalars

    progress = ReadScalarsOnFinish(tmp_path / "tb")
    live = LiveScalars("tiny", tmp_path / "tb")
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(tiny_spec, store, progress=progress, batched=False, on_run_stored=live)

    first, last = list(progress.scalars.values())[0], list(progress.scalars.values())[-1]
    assert len(first) == 1
    assert len(last) == 6
    (scalars,) = first.values()
    assert [step for step, _ in scalars["val_acc"]] == [1, 2, 3]
    assert "test_acc" in scalars
    assert len(live.written) == 6


def test_live_scalars_rejects_unwritable_folder(tmp_path):
    from reglab.errors import ConfigError
    from reglab.study.tensorboard import LiveScalars

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")

    with pytest.raises(ConfigError, match="cannot write to the output folder .*--tensorboard"):
        LiveScalars("tiny", a_file / "tb")
