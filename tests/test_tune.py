"""The Optuna search of ``reglab tune`` on digits: storage, the sealed test set, pruning, seeding."""

import sys

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.data.sealed import SealedTestSet
from reglab.errors import ConfigError
from reglab.study.store import RunStore
from reglab.study.tune import TRIAL_ROLE, TuningError, tune

optuna = pytest.importorskip("optuna")

TINY = {"dataset": "digits", "model": "mlp:32", "epochs": 2, "batch_size": 64}
# The sampled settings do not depend on how long each trial trains.
ONE_EPOCH = {**TINY, "epochs": 1}


class EveryOtherTrialPruner(optuna.pruners.BasePruner):
    """Prunes odd-numbered trials after their first epoch and counts its calls."""

    def __init__(self):
        self.calls = 0

    def prune(self, study, trial):
        self.calls += 1
        return trial.number % 2 == 1


def without_seconds(history):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        yield store


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished three-trial search 'search' and the purposes of every sealed test-set opening."""
    opened = []
    original_open = SealedTestSet.open

    def counting_open(self, purpose, **kwargs):
        opened.append(purpose)
        return original_open(self, purpose, **kwargs)

    folder = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as patch, RunStore(folder / "reglab.db") as store:
        patch.setattr(SealedTestSet, "open", counting_open)
        result = tune(store, trials=3, seed=0, study="search", **TINY)
        yield store, result, opened


def test_tune_stores_trials_without_test_metrics(searched):
    store, result, _ = searched

    trials = store.find_runs(study="search", role=TRIAL_ROLE)

    assert len(trials) == result.counts["complete"] + result.counts["failed"]
    assert [run["strategy"] for run in trials] == [f"tune-{t.number}" for t in result.trials if t.state != "pruned"]
    for run in trials:
        assert run["test_metrics"] is None
        assert run["test_accesses"] == []


def test_tune_final_run_evaluates_test_once(searched):
    store, result, opened = searched

    final_runs = store.find_runs(study="search", role="run")

    assert opened == ["final evaluation of strategy 'tuned', seed 0"]
    assert [run["strategy"] for run in final_runs] == ["tuned"]
    assert len(final_runs[0]["test_accesses"]) == 1
    assert set(final_runs[0]["test_metrics"]) == {"test_loss", "test_acc"}
    assert result.final_run["id"] == final_runs[0]["id"]


def test_tune_final_run_repeats_best_trial(searched):
    store, result, _ = searched

    best_run = store.run(result.best.run_id)
    final = result.final_run

    assert result.best.val_acc == max(t.val_acc for t in result.trials if t.state == "complete")
    assert final["config"]["regularization"] == best_run["config"]["regularization"]
    # Same settings and seed on the same device: the retrained run matches the trial exactly.
    assert final["final_metrics"]["val_acc"] == result.best.val_acc
    assert without_seconds(final["history"]) == without_seconds(best_run["history"])


def test_tune_second_call_trains_nothing(store, monkeypatch):
    first = tune(store, trials=3, seed=0, study="search", **TINY)
    calls = []
    monkeypatch.setattr("reglab.study.tune.fit", lambda *args, **kwargs: calls.append(args))

    second = tune(store, trials=3, seed=0, study="search", **TINY)

    assert calls == []
    assert [t.params for t in second.trials] == [t.params for t in first.trials]
    assert second.final_run["id"] == first.final_run["id"]


def test_tune_same_seed_same_params(tmp_path):
    sampled = []
    for folder in ("a", "b"):
        with RunStore(tmp_path / folder / "reglab.db") as store:
            result = tune(store, trials=3, seed=7, params=["l2", "l1", "dropout", "input_p", "lr"], **ONE_EPOCH)
        sampled.append([t.params for t in result.trials])

    assert sampled[0] == sampled[1]
    assert set(sampled[0][0]) == {"l2", "l1", "dropout", "input_p", "lr"}


def test_tune_other_seed_other_params(tmp_path):
    sampled = []
    for seed in (0, 1):
        with RunStore(tmp_path / f"seed{seed}" / "reglab.db") as store:
            result = tune(store, trials=1, seed=seed, **ONE_EPOCH)
        sampled.append(result.trials[0].params)

    assert sampled[0] != sampled[1]


def test_tune_sampled_params_in_range(store):
    result = tune(store, trials=4, seed=3, params=["l2", "dropout", "input_p", "lr"], **ONE_EPOCH)

    for trial in result.trials:
        assert 1e-6 <= trial.params["l2"] <= 1e-1
        assert 0.0 <= trial.params["dropout"] <= 0.8
        assert 0.0 <= trial.params["input_p"] <= 0.5
        assert 1e-3 <= trial.params["lr"] <= 0.3


def test_tune_pruned_trials_counted_not_stored(store):
    pruner = EveryOtherTrialPruner()

    result = tune(store, trials=4, seed=0, study="pruned", pruner=pruner, **TINY)

    assert pruner.calls > 0
    assert [t.state for t in result.trials] == ["complete", "pruned", "complete", "pruned"]
    assert result.counts == {"complete": 2, "pruned": 2, "failed": 0}
    assert [t.epochs for t in result.trials if t.state == "pruned"] == [1, 1]
    stored = store.find_runs(study="pruned", role=TRIAL_ROLE)
    assert [run["strategy"] for run in stored] == ["tune-0", "tune-2"]


def test_tune_every_trial_pruned_raises(store):
    pruner = optuna.pruners.ThresholdPruner(lower=1.01)

    with pytest.raises(TuningError, match=r"no trial of study 'pruned' completed \(3 pruned, 0 failed\)"):
        tune(store, trials=3, seed=0, study="pruned", pruner=pruner, **TINY)

    assert store.find_runs(study="pruned", role=None) == []


def test_tune_diverging_trial_stored_as_failed(store, monkeypatch):
    import reglab.study.tune as tune_module
    from reglab.training.fit import TrainingError

    real_fit = tune_module.fit

    def fit_failing_trial_one(config, split, **kwargs):
        if config.strategy == "tune-1":
            raise TrainingError("the training loss became nan in epoch 1")
        return real_fit(config, split, **kwargs)

    monkeypatch.setattr("reglab.study.tune.fit", fit_failing_trial_one)

    result = tune(store, trials=3, seed=0, study="failing", **TINY)

    assert result.counts == {"complete": 2, "pruned": 0, "failed": 1}
    failed = store.find_runs(study="failing", role=TRIAL_ROLE, status="failed")
    assert [run["strategy"] for run in failed] == ["tune-1"]
    assert "nan" in failed[0]["error"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": ["l2", "l3"]}, "params: unknown setting 'l3'; expected some of l2, l1, dropout, input_p, lr."),
        ({"params": []}, "params must name at least one of l2, l1, dropout, input_p, lr, got an empty list."),
        ({"params": ["lr", "lr"]}, "params: lr listed more than once, got lr,lr."),
        ({"trials": 0}, "trials must be at least 1, got 0."),
    ],
)
def test_tune_invalid_arguments(store, kwargs, message):
    with pytest.raises(ConfigError) as error:
        tune(store, **{**TINY, **kwargs})

    assert str(error.value) == message


def test_tune_without_optuna(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)

    with pytest.raises(ConfigError) as error:
        tune(store, trials=1, **TINY)

    assert str(error.value) == "reglab tune needs Optuna: pip install 'reglab[tune]'"


def test_cli_tune_prints_best_settings(tmp_path):
    args = ["tune", "--dataset", "digits", "--model", "mlp:32", "--trials", "3", "--epochs", "2"]
    args += ["--batch-size", "64", "--params", "l2,lr", "--out", str(tmp_path)]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert result.output.count(" complete ") == 3
    assert "L2 strength" in result.output
    assert "learning rate" in result.output
    assert "test accuracy % (evaluated once)" in result.output
    assert "3 completed, 0 pruned, 0 failed" in result.output
    assert "(strategy 'tuned') of study 'tune_digits_mlp-32'" in result.output


def test_cli_tune_without_optuna(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)

    result = CliRunner().invoke(app, ["tune", "--dataset", "digits", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "reglab tune needs Optuna: pip install 'reglab[tune]'" in result.output
