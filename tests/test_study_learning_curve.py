"""The opt-in learning-curve section of a compare study, on the tiny digits study."""

import csv

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.study import compare_study
from reglab.study.learning_curve import LEARNING_CURVE_FRACTIONS, best_strategy
from reglab.study.stats import Interval
from reglab.study.summary import StrategySummary

SECTION = "<h2>Learning curve</h2>"


@pytest.fixture
def curve_outcome(tiny_spec, tmp_path):
    return compare_study(tiny_spec, tmp_path, learning_curve=True)


def test_learning_curve_csv_rows(curve_outcome):
    best = best_strategy(curve_outcome.summaries)
    assert best is not None

    with curve_outcome.learning_curve_path.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))

    assert {row["strategy"] for row in rows} == {"baseline", best.strategy}
    for name in ("baseline", best.strategy):
        strategy_rows = [row for row in rows if row["strategy"] == name]
        fractions = [round(float(row["fraction"]), 2) for row in strategy_rows]
        assert len(strategy_rows) == len(LEARNING_CURVE_FRACTIONS)
        assert fractions == pytest.approx(list(LEARNING_CURVE_FRACTIONS), abs=0.01)
        assert {row["seed"] for row in strategy_rows} == {"0"}
        assert {row["epochs"] for row in strategy_rows} == {"3"}


def test_learning_curve_section_in_report(curve_outcome):
    html = curve_outcome.report_path.read_text(encoding="utf-8")
    best = best_strategy(curve_outcome.summaries)

    assert SECTION in html
    assert f"the baseline and {best.strategy}, the strategy with the highest mean validation accuracy" in html
    assert 'alt="train and validation accuracy against the number of training examples"' in html


def test_report_without_option_has_no_section(tiny_spec, tmp_path):
    outcome = compare_study(tiny_spec, tmp_path)

    html = outcome.report_path.read_text(encoding="utf-8")
    assert SECTION not in html
    assert outcome.learning_curve_path is None
    assert not (tmp_path / tiny_spec.name / "learning_curve.csv").exists()


def _summary(name: str, val: float, test: float) -> StrategySummary:
    interval = Interval(0.0, 0.0, 1)
    return StrategySummary(
        strategy=name,
        description="",
        lr=0.05,
        n_runs=1,
        train_acc=interval,
        val_acc=Interval(val, 0.0, 1),
        test_acc=Interval(test, 0.0, 1),
        gap=interval,
        best_epoch=interval,
        seconds=interval,
        vs_baseline=None,
    )


def test_best_strategy_uses_validation_not_test():
    summaries = [_summary("baseline", 0.99, 0.99), _summary("l2", 0.90, 0.50), _summary("dropout", 0.80, 0.95)]

    assert best_strategy(summaries).strategy == "l2"


def test_best_strategy_none_without_others():
    assert best_strategy([_summary("baseline", 0.9, 0.9)]) is None


def test_compare_learning_curve_flag(tmp_path):
    args = ["--dataset", "digits", "--model", "mlp:32", "--epochs", "2", "--seeds", "1", "--lr", "0.05"]
    result = CliRunner().invoke(
        app, ["compare", *args, "--strategies", "l2", "--out", str(tmp_path), "--quiet", "--learning-curve"]
    )

    assert result.exit_code == 0, result.output
    study_dir = next(path for path in tmp_path.iterdir() if path.is_dir())
    assert (study_dir / "learning_curve.csv").is_file()
    assert SECTION in (study_dir / "report.html").read_text(encoding="utf-8")
