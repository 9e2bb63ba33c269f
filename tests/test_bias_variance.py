"""Bias-variance decompositions: identities, hand-computed cases, mlxtend agreement, the command."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from reglab.analysis.bias_variance import bias_variance_decomposition, plot_bias_variance
from reglab.analysis.decomposition import (
    decompose_squared_loss,
    decompose_zero_one_loss,
    draw_bootstrap_indices,
    main_prediction,
    split_variance,
)
from reglab.cli import app
from reglab.data import load_dataset
from reglab.errors import ConfigError

runner = CliRunner()


def _random_probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    logits = rng.normal(size=shape)
    return np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)


# Squared loss.


def test_squared_loss_adds_up():
    rng = np.random.default_rng(0)
    probabilities = _random_probabilities(rng, (6, 50, 4))
    targets = rng.integers(0, 4, size=50)
    result = decompose_squared_loss(probabilities, targets)
    assert result.expected_loss == pytest.approx(result.bias_squared + result.variance, abs=1e-12)


def test_squared_loss_hand_example():
    # Two fits, one point, scalar predictions 1 and 3, target 0: main prediction 2.
    result = decompose_squared_loss(np.array([[1.0], [3.0]]), np.array([0.0]))
    assert result.expected_loss == 5.0
    assert result.bias_squared == 4.0
    assert result.variance == 1.0


def test_squared_loss_one_hot_targets_match_labels():
    rng = np.random.default_rng(1)
    probabilities = _random_probabilities(rng, (3, 20, 5))
    labels = rng.integers(0, 5, size=20)
    assert decompose_squared_loss(probabilities, labels) == decompose_squared_loss(probabilities, np.eye(5)[labels])


def test_squared_loss_rejects_mismatched_shapes():
    with pytest.raises(ConfigError, match="predictions must be shaped"):
        decompose_squared_loss(np.zeros((2, 5, 3)), np.zeros((4, 3)))


def test_variance_split_adds_up():
    rng = np.random.default_rng(2)
    grid = _random_probabilities(rng, (4, 3, 30, 10))
    bootstrap_part, seed_part = split_variance(grid)
    total = decompose_squared_loss(grid.reshape(12, 30, 10), rng.integers(0, 10, size=30)).variance
    assert bootstrap_part + seed_part == pytest.approx(total, abs=1e-12)


def test_variance_split_without_seed_effect():
    rng = np.random.default_rng(3)
    per_bootstrap = _random_probabilities(rng, (4, 1, 30, 3))
    bootstrap_part, seed_part = split_variance(np.repeat(per_bootstrap, 3, axis=1))
    assert seed_part == pytest.approx(0.0, abs=1e-15)
    assert bootstrap_part > 0.0


# 0-1 loss.


def test_main_prediction_is_mode_smallest_on_ties():
    labels = np.array([[0, 2, 1], [1, 2, 2], [1, 0, 2], [0, 0, 1]])
    assert main_prediction(labels).tolist() == [0, 0, 1]


def test_zero_one_two_classes_adds_up_exactly():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=(7, 200))
    targets = rng.integers(0, 2, size=200)
    result = decompose_zero_one_loss(labels, targets)
    assert result.residual == pytest.approx(0.0, abs=1e-15)
    assert result.expected_loss == pytest.approx(result.bias + result.net_variance, abs=1e-15)
    assert result.net_variance == pytest.approx(result.unbiased_variance - result.biased_variance, abs=1e-15)
    assert result.variance == pytest.approx(result.unbiased_variance + result.biased_variance, abs=1e-15)


def test_zero_one_two_class_hand_example():
    # Point 0: target 0, predictions 0,0,1 -> main 0, bias 0, variance 1/3, loss 1/3.
    # Point 1: target 1, predictions 0,0,1 -> main 0, bias 1, variance 1/3, loss 2/3.
    labels = np.array([[0, 0], [0, 0], [1, 1]])
    result = decompose_zero_one_loss(labels, np.array([0, 1]))
    assert result.expected_loss == pytest.approx(0.5)
    assert result.bias == pytest.approx(0.5)
    assert result.unbiased_variance == pytest.approx(1 / 6)
    assert result.biased_variance == pytest.approx(1 / 6)
    assert result.net_variance == pytest.approx(0.0)


def test_zero_one_multiclass_residual_not_negative():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, size=(9, 300))
    result = decompose_zero_one_loss(labels, rng.integers(0, 5, size=300))
    assert result.residual > 0.0
    assert result.expected_loss == pytest.approx(result.bias + result.net_variance + result.residual, abs=1e-15)


# Agreement with mlxtend on the same bootstrap samples.


def _tree_predictions(estimator_class, x_train, y_train, x_test, rounds, seed):
    return np.stack(
        [
            estimator_class(random_state=0).fit(x_train[index], y_train[index]).predict(x_test)
            for index in draw_bootstrap_indices(len(y_train), rounds, seed)
        ]
    )


def test_matches_mlxtend_zero_one_loss():
    from mlxtend.evaluate import bias_variance_decomp
    from sklearn.datasets import load_digits
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_digits(return_X_y=True)
    x_train, y_train, x_test, y_test = x[:600], y[:600], x[600:900], y[600:900]
    loss, bias, variance = bias_variance_decomp(
        DecisionTreeClassifier(random_state=0), x_train, y_train, x_test, y_test,
        loss="0-1_loss", num_rounds=8, random_seed=7,
    )
    labels = _tree_predictions(DecisionTreeClassifier, x_train, y_train, x_test, 8, 7)
    result = decompose_zero_one_loss(labels, y_test)
    assert result.expected_loss == pytest.approx(loss, abs=1e-9)
    assert result.bias == pytest.approx(bias, abs=1e-9)
    assert result.variance == pytest.approx(variance, abs=1e-9)


def test_matches_mlxtend_mse():
    from mlxtend.evaluate import bias_variance_decomp
    from sklearn.datasets import load_diabetes
    from sklearn.tree import DecisionTreeRegressor

    x, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    x_train, y_train, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
    loss, bias, variance = bias_variance_decomp(
        DecisionTreeRegressor(random_state=0), x_train, y_train, x_test, y_test,
        loss="mse", num_rounds=8, random_seed=7,
    )
    predictions = _tree_predictions(DecisionTreeRegressor, x_train, y_train, x_test, 8, 7)
    result = decompose_squared_loss(predictions, y_test)
    assert result.expected_loss == pytest.approx(loss, abs=1e-9)
    assert result.bias_squared == pytest.approx(bias, abs=1e-9)
    assert result.variance == pytest.approx(variance, abs=1e-9)


# Networks.


@pytest.fixture(scope="module")
def digits_decomposition():
    return bias_variance_decomposition(
        load_dataset("digits"), model="mlp:16", strategies=["baseline", "dropout"], bootstraps=2, seeds=[0, 1],
        epochs=2, batch_size=64,
    )


def test_network_decomposition_adds_up(digits_decomposition):
    assert [item.strategy for item in digits_decomposition.strategies] == ["baseline", "dropout"]
    for item in digits_decomposition.strategies:
        assert item.squared.expected_loss == pytest.approx(item.squared.bias_squared + item.squared.variance, abs=1e-9)
        assert item.variance_bootstrap + item.variance_seed == pytest.approx(item.squared.variance, abs=1e-9)
        assert item.fit_error.shape == (2, 2)
        assert item.fit_error.mean() == pytest.approx(item.zero_one.expected_loss, abs=1e-12)


def test_network_summary_states_numbers(digits_decomposition):
    baseline, dropout = digits_decomposition.strategies
    summary = digits_decomposition.summary()
    assert summary.startswith("dropout ")
    assert f"{baseline.squared.bias_squared:.4f} -> {dropout.squared.bias_squared:.4f}" in summary


def test_network_files(digits_decomposition, tmp_path):
    paths = plot_bias_variance(digits_decomposition, tmp_path)
    assert sorted(path.name for path in paths) == ["bias_variance.csv", "bias_variance.png", "bias_variance.svg"]


def test_network_opens_test_once(monkeypatch):
    from reglab.data.sealed import SealedTestSet

    purposes = []
    original = SealedTestSet.open

    def counting_open(self, purpose, **kwargs):
        purposes.append(purpose)
        return original(self, purpose, **kwargs)

    monkeypatch.setattr(SealedTestSet, "open", counting_open)
    bias_variance_decomposition("digits", model="mlp:8", strategies=["baseline", "l2"], bootstraps=2, seeds=[0], epochs=1)
    assert purposes == ["bias-variance decomposition of baseline, l2"]


def test_network_rejects_zero_bootstraps():
    with pytest.raises(ConfigError, match="bootstraps must be an int >= 1, got 0"):
        bias_variance_decomposition("digits", bootstraps=0)


def test_bias_variance_command(tmp_path):
    out = tmp_path / "bv"
    args = ["bias-variance", "-d", "digits", "-m", "mlp:8", "-s", "l2", "--bootstraps", "2", "--seeds", "1"]
    result = runner.invoke(app, args + ["--epochs", "1", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "bias_variance.csv",
        "bias_variance.png",
        "bias_variance.svg",
        "study.yaml",
    ]
    assert "l2 against baseline" in result.output
