"""Analysis sweeps through the batched engine: the same numbers as one run at a time.

Each analysis runs twice on tiny data, once with ``batched=True`` and once with
``batched=False``, and the computed numbers must agree to float32 rounding. A spy on
:func:`reglab.training.fit_batched.fit_batched` records every batched call, so a test
cannot pass by training one at a time twice, and shows which calls gave each member its
own data (``separate_data``).
"""

from __future__ import annotations

import numpy as np
import pytest

import reglab.analysis._common as common
from reglab.analysis._common import fit_runs, run_config, with_training_subset
from reglab.analysis.bias_variance import bias_variance_decomposition
from reglab.analysis.boundaries import decision_boundaries
from reglab.analysis.capacity import capacity_sweep
from reglab.analysis.decomposition import draw_bootstrap_indices
from reglab.analysis.learning_curves import learning_curve
from reglab.analysis.mc_curve import mc_dropout_curve
from reglab.analysis.validation_curves import validation_curve
from reglab.data import load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.strategies import resolve_strategies
from reglab.training.config import RunConfig, validate
from reglab.training.fit import fit
from reglab.training.fit_batched import fit_batched


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def batched_calls(monkeypatch):
    """Record ``(members, separate_data)`` of every fit_batched call that the analyses make."""
    calls: list[tuple[int, bool]] = []
    original = common.fit_batched

    def spy(configs, *args, **kwargs):
        calls.append((len(configs), kwargs.get("separate_data", False)))
        return original(configs, *args, **kwargs)

    monkeypatch.setattr(common, "fit_batched", spy)
    return calls


def _config(strategy: str, seed: int, **optimizer) -> RunConfig:
    config = run_config(
        dataset="digits",
        model="mlp:16",
        strategy=strategy,
        regularization=resolve_strategies([strategy])[strategy],
        seed=seed,
        epochs=2,
        lr=0.05,
        batch_size=64,
    )
    if not optimizer:
        return config
    return validate(RunConfig, {**config.model_dump(), "optimizer": optimizer})


def _assert_same_history(result, reference):
    assert len(result.history) == len(reference.history)
    for row, expected in zip(result.history, reference.history):
        assert row["train_loss"] == pytest.approx(expected["train_loss"], abs=1e-5)
        assert row["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-5)
        assert row["train_acc"] == pytest.approx(expected["train_acc"], abs=1e-6)
        assert row["val_acc"] == pytest.approx(expected["val_acc"], abs=1e-6)


# The engine with separate data per member.


def test_separate_data_matches_fit_per_member(digits):
    """Bootstrap samples, different seeds, dropout, augmentation and early stopping."""
    split = make_split(digits, seed=0)
    samples = draw_bootstrap_indices(len(split.train.y), 3, 0)
    splits = [with_training_subset(split, sample) for sample in samples]
    configs = [_config("dropout", 0), _config("augment", 1), _config("early-stopping", 2)]

    results = fit_batched(configs, splits, separate_data=True, evaluate_test=False)
    for config, member_split, result in zip(configs, splits, results):
        _assert_same_history(result, fit(config, member_split, evaluate_test=False))


def test_separate_data_opens_each_test_once(digits):
    splits = [make_split(digits, seed=seed) for seed in (0, 1)]
    configs = [_config("baseline", 0), _config("l2", 1)]
    results = fit_batched(configs, splits, separate_data=True)
    for member_split, result in zip(splits, results):
        assert len(member_split.test.accesses) == 1
        assert result.test_metrics["test_acc"] > 0.5
    assert results[0].test_metrics != results[1].test_metrics


def test_separate_data_rejects_different_sizes(digits):
    split = make_split(digits, seed=0)
    smaller = with_training_subset(split, np.arange(100))
    with pytest.raises(ConfigError, match=rf"train part must have one size, got sizes 100, {len(split.train.y)}\."):
        fit_batched([_config("baseline", 0), _config("l2", 1)], [smaller, split], separate_data=True)


def test_shared_data_rejects_different_training_rows(digits):
    split = make_split(digits, seed=0)
    samples = draw_bootstrap_indices(len(split.train.y), 2, 0)
    splits = [with_training_subset(split, sample) for sample in samples]
    with pytest.raises(ConfigError, match="have different training rows.*Pass separate_data=True"):
        fit_batched([_config("baseline", 0), _config("l2", 0)], splits)


def test_separate_data_rejects_single_split(digits):
    with pytest.raises(ConfigError, match=r"separate_data=True needs one split per configuration \(2\)"):
        fit_batched([_config("baseline", 0), _config("l2", 1)], make_split(digits, seed=0), separate_data=True)


def test_separate_data_rejects_data_seed(digits):
    split = make_split(digits, seed=0)
    with pytest.raises(ConfigError, match="data_seed=3 and separate_data=True exclude each other"):
        fit_batched([_config("baseline", 0)], [split], data_seed=3, separate_data=True)


# Grouping runs into calls.


def test_fit_runs_trains_declined_configs_alone(digits, batched_calls):
    configs = [_config("l2", 0), _config("baseline", 0, name="adam", lr=1e-3), _config("dropout", 0)]
    split = make_split(digits, seed=0)
    results = fit_runs(configs, [split] * 3, evaluate_test=False)

    assert batched_calls == [(2, False)]
    assert [result.config.strategy for result in results] == ["l2", "baseline", "dropout"]
    assert results[1].config.optimizer.name == "adam"
    assert "batched_members" not in results[1].timings
    assert results[0].timings["batched_members"] == 2


def test_fit_runs_groups_by_model(digits, batched_calls):
    wide = validate(RunConfig, {**_config("baseline", 1).model_dump(), "model": "mlp:24"})
    configs = [_config("baseline", 0), wide, _config("baseline", 1), _config("l2", 2)]
    results = fit_runs(configs, [make_split(digits, seed=0)] * 4, evaluate_test=False)
    assert batched_calls == [(3, True)]
    assert [result.config.model for result in results] == ["mlp:16", "mlp:24", "mlp:16", "mlp:16"]
    assert "batched_members" not in results[1].timings


def test_fit_runs_not_batched_on_request(digits, batched_calls):
    configs = [_config("baseline", 0), _config("l2", 0)]
    fit_runs(configs, [make_split(digits, seed=0)] * 2, evaluate_test=False, batched=False)
    assert batched_calls == []


# Each analysis, batched against one at a time.


def test_validation_curve_batched_matches_single(digits, batched_calls):
    options = dict(model="mlp:16", param="l2", values=[0.0, 1e-3, 1e-1], seeds=[0, 1], epochs=2, batch_size=64)
    batched = validation_curve(digits, **options)
    assert batched_calls == [(3, False), (3, False)]

    single = validation_curve(digits, batched=False, **options)
    assert len(batched_calls) == 2
    np.testing.assert_allclose(batched.train_acc, single.train_acc, atol=1e-6)
    np.testing.assert_allclose(batched.val_acc, single.val_acc, atol=1e-6)
    assert batched.best_value == single.best_value


def test_validation_curve_dropout_batched_matches_single(digits, batched_calls):
    options = dict(model="mlp:16", param="dropout", values=[0.0, 0.5], seeds=[3], epochs=2, batch_size=64)
    batched = validation_curve(digits, **options)
    single = validation_curve(digits, batched=False, **options)
    assert batched_calls == [(2, False)]
    np.testing.assert_allclose(batched.train_acc, single.train_acc, atol=1e-6)
    np.testing.assert_allclose(batched.val_acc, single.val_acc, atol=1e-6)


def test_learning_curve_batched_matches_single(digits, batched_calls):
    options = dict(model="mlp:16", sizes=[100, 400], seeds=[0, 1, 2], epochs=1, batch_size=64)
    batched = learning_curve(digits, **options)
    assert batched_calls == [(3, True), (3, True)]

    single = learning_curve(digits, batched=False, **options)
    assert len(batched_calls) == 2
    assert batched.epochs == single.epochs
    for name in ("train_acc", "val_acc", "test_acc"):
        np.testing.assert_allclose(getattr(batched, name), getattr(single, name), atol=1e-6, err_msg=name)


def test_bias_variance_batched_matches_single(digits, batched_calls):
    options = dict(
        model="mlp:16", strategies=["baseline", "l2", "dropout"], bootstraps=2, seeds=[0, 1], epochs=2, batch_size=64
    )
    batched = bias_variance_decomposition(digits, **options)
    assert batched_calls == [(6, True), (6, True)]

    single = bias_variance_decomposition(digits, batched=False, **options)
    assert len(batched_calls) == 2
    for fast, slow in zip(batched.strategies, single.strategies):
        assert fast.strategy == slow.strategy
        assert fast.squared.bias_squared == pytest.approx(slow.squared.bias_squared, abs=1e-5)
        assert fast.squared.variance == pytest.approx(slow.squared.variance, abs=1e-5)
        assert fast.variance_bootstrap == pytest.approx(slow.variance_bootstrap, abs=1e-5)
        assert fast.zero_one.expected_loss == pytest.approx(slow.zero_one.expected_loss, abs=1e-6)
        np.testing.assert_allclose(fast.fit_error, slow.fit_error, atol=1e-6)


def test_boundaries_batched_matches_single(batched_calls):
    options = dict(
        model="mlp:16", l2_strengths=(0.0, 1e-2), dropout_ps=(0.0, 0.5), seeds=[0, 1], epochs=3, grid_size=20
    )
    batched = decision_boundaries("moons", **options)
    # The unregularized run is shared by both rows, so each seed trains three members.
    assert batched_calls == [(3, False), (3, False)]

    single = decision_boundaries("moons", batched=False, **options)
    assert len(batched_calls) == 2
    for fast, slow in zip(batched.panels, single.panels):
        assert (fast.regularizer, fast.value) == (slow.regularizer, slow.value)
        np.testing.assert_allclose(fast.train_acc, slow.train_acc, atol=1e-6)
        np.testing.assert_allclose(fast.test_acc, slow.test_acc, atol=1e-6)
        np.testing.assert_allclose(fast.probabilities, slow.probabilities, atol=1e-5)


def test_capacity_batched_matches_single(batched_calls):
    options = dict(widths=(8, 16), depths=(1,), seeds=(0, 1), epochs=2, batch_size=64)
    batched = capacity_sweep("digits", **options)
    assert batched_calls == [(2, True), (2, True)]

    single = capacity_sweep("digits", batched=False, **options)
    assert len(batched_calls) == 2
    for fast, slow in zip(batched.runs, single.runs):
        assert (fast.width, fast.depth, fast.seed) == (slow.width, slow.depth, slow.seed)
        assert fast.train_acc == pytest.approx(slow.train_acc, abs=1e-6)
        assert fast.val_acc == pytest.approx(slow.val_acc, abs=1e-6)
        assert fast.weight_norms == pytest.approx(slow.weight_norms, abs=1e-4)


def test_mc_curve_batched_matches_single(batched_calls):
    options = dict(model="mlp:16", samples=(1, 5), seeds=(0, 1), epochs=2, batch_size=64)
    batched = mc_dropout_curve("digits", **options)
    assert batched_calls == [(2, True)]

    single = mc_dropout_curve("digits", batched=False, **options)
    assert len(batched_calls) == 1
    np.testing.assert_allclose(batched.deterministic_nll, single.deterministic_nll, atol=1e-5)
    for mean in batched.accuracy:
        np.testing.assert_allclose(batched.accuracy[mean], single.accuracy[mean], atol=1e-6)
        np.testing.assert_allclose(batched.nll[mean], single.nll[mean], atol=1e-5)
