"""Learning curves and validation curves: subsampling, grids, trends on digits and the commands.

The trend tests train softmax regression and a tiny MLP on scikit-learn's digits for a few
epochs, so the whole file runs in seconds.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from reglab.analysis._common import stratified_subsample
from reglab.analysis.learning_curves import learning_curve, plot_learning_curve, resolve_sizes
from reglab.analysis.validation_curves import (
    ValidationCurveResult,
    plot_validation_curve,
    strategy_for,
    strength_grid,
    validation_curve,
)
from reglab.cli import app
from reglab.cli.learning_curve import parse_sizes
from reglab.data import load_dataset
from reglab.errors import ConfigError

runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_curve(digits):
    return learning_curve(digits, model="softmax", sizes=[50, 100, 200, 400, 1.0], seeds=[0, 1], epochs=5)


# Stratified subsamples and sizes.


def test_subsample_keeps_class_proportions():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    chosen = stratified_subsample(labels, 100, seed=0)
    assert len(chosen) == 100
    assert len(set(chosen.tolist())) == 100
    assert np.bincount(labels[chosen]).tolist() == [60, 30, 10]


def test_subsample_gives_every_class_one():
    labels = np.repeat([0, 1, 2], [980, 10, 10])
    chosen = stratified_subsample(labels, 10, seed=0)
    counts = np.bincount(labels[chosen], minlength=3)
    assert counts.sum() == 10
    assert counts.min() >= 1


def test_subsample_depends_on_seed():
    labels = np.repeat([0, 1], [500, 500])
    first = stratified_subsample(labels, 50, seed=0)
    assert np.array_equal(first, stratified_subsample(labels, 50, seed=0))
    assert not np.array_equal(np.sort(first), np.sort(stratified_subsample(labels, 50, seed=1)))


def test_subsample_too_small_names_size_and_counts():
    labels = np.repeat([0, 1, 2], [5, 7, 9])
    with pytest.raises(ConfigError, match=r"size 2 is too small.*3 classes.*a: 5, b: 7, c: 9"):
        stratified_subsample(labels, 2, seed=0, classes=("a", "b", "c"))


def test_subsample_larger_than_pool_raises():
    with pytest.raises(ConfigError, match="size 11 is larger than the training split \\(10 examples\\)"):
        stratified_subsample(np.zeros(10, dtype=np.int64), 11, seed=0)


def test_resolve_sizes_counts_and_fractions():
    assert resolve_sizes([300, 0.5, 1.0], 1000) == [300, 500, 1000]


def test_resolve_sizes_default_spans_split():
    sizes = resolve_sizes(None, 3000)
    assert len(sizes) == 6
    assert sizes[0] == 300
    assert sizes[-1] == 3000


def test_resolve_sizes_duplicates_warn():
    with pytest.warns(UserWarning, match="trained once"):
        assert resolve_sizes([500, 0.5], 1000) == [500]


@pytest.mark.parametrize(
    ("sizes", "message"),
    [([0], "between 1 and"), ([1001], "between 1 and"), ([1.5], "in \\(0, 1\\]"), ([], "at least one size")],
)
def test_resolve_sizes_rejects(sizes, message):
    with pytest.raises(ConfigError, match=message):
        resolve_sizes(sizes, 1000)


def test_parse_sizes_counts_and_fractions():
    assert parse_sizes("300, 1000,0.5,1.0") == [300, 1000, 0.5, 1.0]
    assert isinstance(parse_sizes("1.0")[0], float)
    assert isinstance(parse_sizes("1")[0], int)


# The learning curve on digits.


def test_learning_curve_shape(digits_curve):
    assert digits_curve.sizes == [50, 100, 200, 400, 1078]
    assert digits_curve.train_acc.shape == (5, 2)
    assert digits_curve.test_acc.shape == (5, 2)
    assert digits_curve.epochs[0] == int(np.ceil(5 * 1078 / 50))
    assert digits_curve.epochs[-1] == 5


def test_learning_curve_training_accuracy_falls(digits_curve):
    train = digits_curve.train_acc.mean(axis=1)
    assert np.all(np.diff(train) <= 0.01), train
    assert train[0] - train[-1] > 0.01, train


def test_learning_curve_test_accuracy_rises(digits_curve):
    test = digits_curve.test_acc.mean(axis=1)
    assert np.all(np.diff(test) >= -0.01), test
    assert test[-1] - test[0] > 0.05, test


def test_learning_curve_gap_narrows(digits_curve):
    gap = digits_curve.gap.mean(axis=1)
    assert gap[-1] < gap[0] / 2, gap
    assert "narrowed" in digits_curve.summary()


def test_learning_curve_files(digits_curve, tmp_path):
    paths = plot_learning_curve(digits_curve, tmp_path)
    assert sorted(path.name for path in paths) == ["learning_curve.csv", "learning_curve.png", "learning_curve.svg"]
    with (tmp_path / "learning_curve.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    assert float(rows[0]["test_acc"]) == pytest.approx(digits_curve.test_acc[0, 0])


def test_learning_curve_opens_test_once_per_run(digits, monkeypatch):
    from reglab.data.sealed import SealedTestSet

    opened = []
    original = SealedTestSet.open

    def counting_open(self, purpose, **kwargs):
        opened.append(id(self))
        return original(self, purpose, **kwargs)

    monkeypatch.setattr(SealedTestSet, "open", counting_open)
    learning_curve(digits, sizes=[100, 200], seeds=[0, 1], epochs=1)
    assert len(opened) == 4
    assert len(set(opened)) == 4


def test_learning_curve_too_small_size_fails_before_training(digits, monkeypatch):
    import reglab.analysis.learning_curves as module

    monkeypatch.setattr(module, "fit_runs", lambda *args, **kwargs: pytest.fail("trained before checking sizes"))
    with pytest.raises(ConfigError, match="size 9 is too small"):
        learning_curve(digits, sizes=[100, 9], seeds=[0])


# Validation curves.


def test_strength_grid_log_and_linear():
    assert strength_grid("log", 1e-4, 1e-1, 4) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert strength_grid("linear", 0.0, 0.6, 4) == pytest.approx([0.0, 0.2, 0.4, 0.6])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cubic", 1.0, 2.0, 3), "'log' or 'linear'"),
        (("log", 0.0, 1.0, 3), "min > 0"),
        (("linear", 2.0, 1.0, 3), "min must be below max"),
        (("linear", 0.0, 1.0, 1), "num must be an int >= 2"),
    ],
)
def test_strength_grid_rejects(args, message):
    with pytest.raises(ConfigError, match=message):
        strength_grid(*args)


def test_strategy_for_each_param():
    assert strategy_for("l2", 0.01).l2 == 0.01
    assert strategy_for("l1", 0.001).l1 == 0.001
    dropout = strategy_for("dropout", 0.3).dropout
    assert (dropout.p, dropout.input_p) == (0.3, 0.0)
    assert strategy_for("dropout", 0.0).dropout is None
    assert strategy_for("max-norm", 3.0).max_norm == 3.0
    assert strategy_for("max-norm", 0.0).max_norm is None
    assert strategy_for("dropconnect", 0.4).dropconnect.p == 0.4
    assert strategy_for("dropconnect", 0.0).dropconnect is None


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [("l2", -1.0, "l2: Input should be greater than or equal to 0"), ("dropout", 1.0, "dropout.p"), ("dropconnect", 1.0, "dropconnect.p"), ("dropblock", 0.5, "one of l2")],
)
def test_strategy_for_rejects(param, value, message):
    with pytest.raises(ConfigError, match=message):
        strategy_for(param, value)


def test_best_value_from_validation_means():
    result = ValidationCurveResult(
        dataset="d",
        model="m",
        param="l2",
        values=[0.0, 0.01, 0.1],
        seeds=[0, 1],
        train_acc=np.array([[1.0, 1.0], [0.95, 0.97], [0.8, 0.8]]),
        val_acc=np.array([[0.90, 0.92], [0.95, 0.91], [0.7, 0.8]]),
    )
    # Means: 0.91, 0.93, 0.75.
    assert result.best_index == 1
    assert result.best_value == 0.01
    assert [row["best"] for row in result.rows()] == [False, False, True, True, False, False]


def test_huge_l2_underfits(digits, tmp_path):
    result = validation_curve(digits, model="mlp:16", values=[0.0, 1e-3, 10.0], seeds=[0, 1], epochs=3, batch_size=64)
    train = result.train_acc.mean(axis=1)
    assert train[2] < train[0] - 0.3, train
    assert result.best_value == result.values[int(np.argmax(result.val_acc.mean(axis=1)))]
    assert result.best_value != 10.0

    paths = plot_validation_curve(result, tmp_path)
    assert sorted(path.name for path in paths) == ["validation_curve.csv", "validation_curve.png", "validation_curve.svg"]


def test_validation_curve_keeps_test_sealed(digits, monkeypatch):
    from reglab.data.sealed import SealedTestSet

    monkeypatch.setattr(SealedTestSet, "open", lambda *args, **kwargs: pytest.fail("the test set was opened"))
    validation_curve(digits, model="mlp:8", values=[0.1], seeds=[0], epochs=1)


# The commands.


def test_learning_curve_command(tmp_path):
    out = tmp_path / "lc"
    result = runner.invoke(
        app, ["learning-curve", "-d", "digits", "--sizes", "100,1.0", "--seeds", "2", "--epochs", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "learning_curve.csv",
        "learning_curve.png",
        "learning_curve.svg",
        "study.yaml",
    ]
    assert "training accuracy" in result.output


def test_learning_curve_command_too_small_size(tmp_path):
    result = runner.invoke(
        app, ["learning-curve", "-d", "digits", "--sizes", "5", "--seeds", "1", "-o", str(tmp_path / "lc")]
    )
    assert result.exit_code == 2, result.output
    assert "size 5 is too small" in result.output
    assert "Class counts of the training split: 0: 107" in result.output
    assert "Traceback" not in result.output


def test_validation_curve_command(tmp_path):
    out = tmp_path / "vc"
    args = ["validation-curve", "-d", "digits", "-m", "mlp:8", "--grid", "log", "--min", "1e-3", "--max", "1"]
    args += ["--num", "2", "--seeds", "2", "--epochs", "1", "-q", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "study.yaml",
        "validation_curve.csv",
        "validation_curve.png",
        "validation_curve.svg",
    ]
    assert "Best l2 on validation" in result.output


def test_validation_curve_command_values_and_grid(tmp_path):
    result = runner.invoke(app, ["validation-curve", "--values", "0.1", "--grid", "log", "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "--values and --grid exclude each other" in result.output


def test_validation_curve_varies_dropconnect(digits):
    result = validation_curve(digits, model="mlp:16", param="dropconnect", values=[0.0, 0.5], seeds=[0], epochs=1, batch_size=64)

    assert result.param == "dropconnect"
    assert result.train_acc.shape == (2, 1)
    # Same seed, so only the DropConnect masks can make the two runs differ.
    assert result.train_acc[0, 0] != result.train_acc[1, 0]
