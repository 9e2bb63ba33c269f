"""Studies end to end on digits: storage, resume after an interruption, summaries, report."""

import csv
import sqlite3

import pytest

from reglab.study import RunStore, compare_study, run_study
from reglab.study.report import build_report
from reglab.training import fit as fit_module


class InterruptAfter:
    """A progress sink that raises KeyboardInterrupt once ``limit`` runs have been trained."""

    def __init__(self, limit):
        self.limit = limit
        self.trained = 0

    def run_started(self, label, epochs):
        pass

    def epoch_finished(self, epoch, row):
        pass

    def run_finished(self, label, *, skipped, error=None):
        if not skipped:
            self.trained += 1
        if self.trained == self.limit:
            raise KeyboardInterrupt


class CountRuns:
    def __init__(self):
        self.trained = []
        self.skipped = []

    def run_started(self, label, epochs):
        pass

    def epoch_finished(self, epoch, row):
        pass

    def run_finished(self, label, *, skipped, error=None):
        (self.skipped if skipped else self.trained).append(label)


def test_study_stores_every_run_with_history(tiny_spec, tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        result = run_study(tiny_spec, store)
        runs = store.runs("tiny")

    assert len(result.runs) == 6
    assert len(runs) == 6
    assert {(run["strategy"], run["seed"]) for run in runs} == {
        (name, seed) for name in ("baseline", "l2", "dropout") for seed in (0, 1)
    }
    for run in runs:
        assert [row["epoch"] for row in run["history"]] == [1, 2, 3]
        assert run["test_metrics"]["test_acc"] > 0.5
        assert len(run["test_accesses"]) == 1
        assert run["versions"]["torch"]
        assert run["split"]["seed"] == run["seed"]


def test_study_resumes_after_interrupt(tiny_spec, tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(KeyboardInterrupt):
            run_study(tiny_spec, store, progress=InterruptAfter(limit=4))
        assert len(store.runs("tiny")) == 4

        counter = CountRuns()
        result = run_study(tiny_spec, store, progress=counter)

    assert len(counter.skipped) == 4
    assert len(counter.trained) == 2
    assert len(result.runs) == 6

    with sqlite3.connect(tmp_path / "reglab.db") as db:
        keys = db.execute("SELECT run_key FROM runs").fetchall()
    assert len(keys) == len(set(keys)) == 6


def test_study_records_failed_run_and_goes_on(tiny_spec, tmp_path, monkeypatch):
    real_fit = fit_module.fit

    def failing_fit(config, split, **kwargs):
        if config.strategy == "l2" and config.seed == 1:
            raise fit_module.TrainingError("the training loss became nan in epoch 2")
        return real_fit(config, split, **kwargs)

    monkeypatch.setattr("reglab.study.runner.fit", failing_fit)
    with RunStore(tmp_path / "reglab.db") as store:
        # One run at a time, so that every run goes through the patched fit().
        result = run_study(tiny_spec, store, batched=False)

    assert len(result.runs) == 5
    assert [(f["strategy"], f["seed"]) for f in result.failures] == [("l2", 1)]
    assert "became nan" in result.failures[0]["error"]


_FAILING_MODULE = """
import torch
from torch import nn


class FailsMidTraining(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.linear = nn.Linear(64, num_classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > 3:
            FAIL()
        return self.linear(x.flatten(1))


def make(input_shape, num_classes):
    return FailsMidTraining(input_shape, num_classes)
"""


_FAILURES = {
    "raise": ('raise RuntimeError("fails mid-training")', "failed (RuntimeError: fails mid-training)"),
    "exit": ("sys.exit(3)", "failed (it called sys.exit(3))"),
}


@pytest.mark.parametrize("failure", sorted(_FAILURES))
def test_user_module_error_fails_only_its_run(tiny_spec, tmp_path, monkeypatch, failure):
    statement, expected = _FAILURES[failure]
    source = _FAILING_MODULE.replace("import torch\n", f"import sys\nimport torch\n\n\ndef FAIL():\n    {statement}\n")
    # One module name per case: Python caches an imported module by its name.
    (tmp_path / f"reglab_failing_nets_{failure}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    # Dropout layers cannot be inserted into a user module, so the study uses baseline and l2.
    strategies = {name: config for name, config in tiny_spec.strategies.items() if name != "dropout"}
    spec = tiny_spec.model_copy(
        update={"model": f"module:reglab_failing_nets_{failure}:make", "strategies": strategies, "seeds": [0], "epochs": 1}
    )

    with RunStore(tmp_path / "reglab.db") as store:
        result = run_study(spec, store)

    assert [failure["strategy"] for failure in result.failures] == ["baseline", "l2"]
    error = result.failures[0]["error"]
    assert f"module:reglab_failing_nets_{failure}:make {expected} while training" in error
    assert "fix the module's forward pass" in error


def test_compare_study_writes_report_and_csv(tiny_spec, tmp_path):
    outcome = compare_study(tiny_spec, tmp_path)

    assert outcome.report_path == tmp_path / "tiny" / "report.html"
    html = outcome.report_path.read_text()
    assert "data:image/png;base64," in html
    assert "<td>dropout</td>" in html

    with outcome.results_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {row["strategy"] for row in rows} == {"baseline", "l2", "dropout"}

    assert [s.strategy for s in outcome.summaries] == ["baseline", "l2", "dropout"]
    assert outcome.summaries[0].vs_baseline is None
    assert outcome.summaries[1].vs_baseline is not None
    assert outcome.summaries[1].test_acc.n == 2


def test_report_escapes_strategy_names(tiny_spec, tmp_path):
    from reglab.training.config import StrategyConfig

    hostile = "<script>alert(1)</script>"
    spec = tiny_spec.model_copy(update={"strategies": {"baseline": StrategyConfig(), hostile: StrategyConfig(l2=1e-3)}, "seeds": [0]})
    outcome = compare_study(spec, tmp_path)

    html = outcome.report_path.read_text()
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_learning_rate_search_picks_best_validation(tiny_spec, tmp_path):
    spec = tiny_spec.model_copy(update={"lr_grid": [0.2, 0.05, 1e-5], "lr_search_epochs": 2, "seeds": [0]})
    with RunStore(tmp_path / "reglab.db") as store:
        result = run_study(spec, store)
        searches = store.runs("tiny", role="lr-search")

    assert len(searches) == 9
    assert all(run["test_metrics"] is None for run in searches)
    for name, choice in result.lr_choices.items():
        assert set(choice.val_acc) == {0.2, 0.05, 1e-5}
        assert choice.val_acc[choice.lr] == max(choice.val_acc.values())
        assert choice.lr != 1e-5
    report = build_report(result)
    assert "validation accuracy" in report["lr_note"]


def test_runs_store_dead_relus_per_hidden_layer(tiny_spec, tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(tiny_spec.model_copy(update={"seeds": [0]}), store)
        runs = store.runs("tiny")

    for run in runs:
        layers = run["weight_stats"]
        assert len(layers) == 2
        hidden, output = layers
        assert 0.0 <= hidden["dead_relu"] <= 1.0
        assert output["dead_relu"] is None


def test_report_has_per_layer_table(tiny_spec, tmp_path):
    outcome = compare_study(tiny_spec.model_copy(update={"seeds": [0]}), tmp_path)

    html = outcome.report_path.read_text()
    assert "dead ReLUs (%)" in html
    assert html.count("<td>32×64</td>") == 3


def test_one_epoch_study_with_learning_rate_search(tiny_spec, tmp_path):
    spec = tiny_spec.model_copy(update={"epochs": 1, "lr_grid": [0.1, 0.01], "seeds": [0]})
    with RunStore(tmp_path / "reglab.db") as store:
        result = run_study(spec, store)

    assert len(result.runs) == 3
    assert all(run["test_metrics"]["test_acc"] > 0 for run in result.runs)
    assert all(run["role"] == "run" for run in result.runs)


def test_report_renders_when_every_run_failed(tiny_spec, tmp_path):
    """With no finished run the report and CSV are still written and list the failures."""
    spec = tiny_spec.model_copy(update={"optimizer": tiny_spec.optimizer.model_copy(update={"lr": 1e10}), "seeds": [0], "epochs": 1})
    outcome = compare_study(spec, tmp_path)

    assert outcome.summaries == []
    assert len(outcome.result.failures) == 3
    html = outcome.report_path.read_text()
    assert "No run finished" in html
    assert "<h3>Failed runs</h3>" in html
    assert "the training loss became" in html
    assert outcome.results_path.exists()
