"""Convolutional, LeNet and user models, per-layer dropout and DropConnect in runs and studies."""

import pytest
from torch import nn
from typer.testing import CliRunner

from reglab.cli import app
from reglab.data import load_dataset, make_split
from reglab.errors import ConfigError
from reglab.nn import DropConnectLinear
from reglab.study.spec import StudySpec
from reglab.study.strategies import DEFAULT_STRATEGY_NAMES, resolve_strategies
from reglab.training.config import (
    ADDED_SETTINGS,
    DropConnectSettings,
    DropoutSettings,
    RunConfig,
    StrategyConfig,
    validate,
)
from reglab.training.fit import fit
from reglab.training.fit_batched import batching_problem
from reglab.training.model_builder import build_run_model, check_layer_settings

_FACTORY_SOURCE = """
from torch import nn


def make_net(input_shape, num_classes):
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * input_shape[1] * input_shape[2], num_classes)
    )
"""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "reglab_test_factory.py").write_text(_FACTORY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "module:reglab_test_factory:make_net"


def config(model, regularization=StrategyConfig(), **changes):
    settings = {"dataset": "digits", "model": model, "epochs": 1, "batch_size": 64, "seed": 0}
    settings.update(changes)
    return RunConfig(regularization=regularization, **settings)


# Settings.


def test_dropout_p_accepts_a_list():
    settings = validate(DropoutSettings, {"p": [0.1, 0.5]})

    assert settings.p == [0.1, 0.5]
    assert validate(DropoutSettings, {"p": 0.3}).p == 0.3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"p": [0.1, 1.0]}, "p: Input should be less than 1 (entry 1), got [0.1, 1.0]"),
        ({"p": [-0.1]}, "p: Input should be greater than or equal to 0 (entry 0), got [-0.1]"),
        ({"p": 1.0}, "p: Input should be less than 1, got 1.0"),
    ],
)
def test_layer_probability_range(data, message):
    for settings in (DropoutSettings, DropConnectSettings):
        with pytest.raises(ConfigError) as caught:
            validate(settings, data)
        assert message in str(caught.value)


def test_dropconnect_setting_keeps_default_key():
    assert ADDED_SETTINGS["regularization.dropconnect"] is None
    plain = RunConfig()
    assert plain.model_copy(update={"regularization": StrategyConfig(dropconnect=None)}).key() == plain.key()
    assert RunConfig(regularization=StrategyConfig(dropconnect=DropConnectSettings())).key() != plain.key()


def test_describe_lists_per_layer_rates():
    strategy = StrategyConfig(dropout=DropoutSettings(p=[0.1, 0.5]), dropconnect=DropConnectSettings(p=0.4))

    assert strategy.describe() == "dropout(p=[0.1, 0.5], input_p=0), dropconnect(p=0.4)"


def test_check_layer_settings_names_the_strategy():
    strategy = StrategyConfig(dropout=DropoutSettings(p=[0.1, 0.5]))

    with pytest.raises(ConfigError, match=r"strategy 'mine': dropout\.p has 2 entries .* model 'cnn:4,8' has 3 sites"):
        check_layer_settings("cnn:4,8", strategy, "mine")


def test_dropconnect_on_softmax_is_rejected():
    with pytest.raises(ConfigError, match=r"dropconnect\.p=0\.5 masks no layer of model 'softmax'"):
        check_layer_settings("softmax", StrategyConfig(dropconnect=DropConnectSettings(p=0.5)))


def test_study_spec_rejects_bad_site_count_before_training():
    spec = StudySpec(
        name="sites",
        dataset="digits",
        model="mlp:8",
        strategies={"baseline": StrategyConfig(), "two": StrategyConfig(dropout=DropoutSettings(p=[0.1, 0.2]))},
        seeds=[0],
        epochs=1,
    )

    with pytest.raises(ConfigError, match="strategy 'two': dropout.p has 2 entries"):
        spec.run_config("two", 0)


# Building and training.


def test_run_model_uses_dropconnect_layers():
    model = build_run_model(config("mlp:16,8", StrategyConfig(dropconnect=DropConnectSettings(p=[0.2, 0.0]))), (1, 8, 8), 10)

    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [type(m) for m in linears] == [DropConnectLinear, nn.Linear, nn.Linear]
    assert linears[0].p == 0.2


def test_fit_cnn_reports_conv_layers(digits):
    strategy = StrategyConfig(dropout=DropoutSettings(p=0.5, input_p=0.1), max_norm=2.0, l2=1e-3)
    result = fit(config("cnn:4,8:bn", strategy), make_split(digits, seed=0))

    names = [layer["name"] for layer in result.weight_stats]
    shapes = [tuple(layer["shape"]) for layer in result.weight_stats]
    assert shapes == [(4, 1, 3, 3), (8, 4, 3, 3), (128, 32), (10, 128)]
    dead = [layer["dead_relu"] for layer in result.weight_stats]
    assert all(0.0 <= value <= 1.0 for value in dead[:3]), dead
    assert dead[3] is None
    # Max-norm bounds every output channel's kernel as well as each unit's weights.
    conv = result.model.get_submodule(names[0].removesuffix(".weight"))
    assert conv.weight.detach().flatten(1).norm(dim=1).max() <= 2.0 + 1e-5
    assert 0.0 <= result.test_metrics["test_acc"] <= 1.0


def test_fit_lenet_rejects_small_digits(digits):
    with pytest.raises(ConfigError, match=r"model 'lenet' pools 2 times and needs images of at least 12x12 pixels"):
        fit(config("lenet"), make_split(digits, seed=0))


def test_fit_user_module_with_penalties(digits, user_module):
    strategy = StrategyConfig(l2=1e-3, max_norm=1.0, augment=True)
    result = fit(config(user_module, strategy), make_split(digits, seed=0))

    assert result.config.model == user_module
    assert [tuple(layer["shape"]) for layer in result.weight_stats] == [(4, 1, 3, 3), (10, 256)]
    assert result.weight_stats[0]["dead_relu"] is not None


def test_fit_user_module_rejects_dropout(digits, user_module):
    with pytest.raises(ConfigError, match="put nn.Dropout or reglab.nn.DropConnectLinear layers in your module"):
        fit(config(user_module, StrategyConfig(dropout=DropoutSettings(p=0.5))), make_split(digits, seed=0))


# The batched engine and the command line.


@pytest.mark.parametrize(
    ("model", "strategy", "reason"),
    [
        ("cnn:4,8", StrategyConfig(), "the model 'cnn:4,8' is not an MLP"),
        ("lenet", StrategyConfig(), "the model 'lenet' is not an MLP"),
        ("module:pkg.nets:make", StrategyConfig(), "the model 'module:pkg.nets:make' is not an MLP"),
        ("mlp:8", StrategyConfig(dropconnect=DropConnectSettings()), "uses DropConnect"),
        ("mlp:8,8", StrategyConfig(dropout=DropoutSettings(p=[0.5, 0.2])), "sets a dropout probability per layer"),
    ],
)
def test_batching_problem_reasons(model, strategy, reason):
    problem = batching_problem([config(model, strategy)])

    assert problem is not None
    assert reason in problem


def test_batching_accepts_plain_mlp():
    assert batching_problem([config("mlp:8", StrategyConfig(dropout=DropoutSettings(p=0.5)))]) is None


def test_dropconnect_strategy_is_not_in_default_set():
    assert "dropconnect" not in DEFAULT_STRATEGY_NAMES
    assert resolve_strategies(["dropconnect"])["dropconnect"].dropconnect == DropConnectSettings(p=0.5)


def test_compare_cnn_end_to_end(tmp_path):
    args = ["compare", "--dataset", "digits", "--model", "cnn:4,8", "--epochs", "1", "--seeds", "1"]
    args += ["--strategies", "baseline,dropout", "--lr", "0.05", "--out", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert "dropout" in result.output
    report = (tmp_path / "digits_cnn-4-8" / "report.html").read_text()
    assert "4×1×3×3" in report


def test_compare_cnn_on_feature_vectors_fails_before_training(tmp_path):
    args = ["compare", "--dataset", "moons", "--model", "cnn:4,8", "--epochs", "1", "--seeds", "1"]
    args += ["--strategies", "baseline", "--lr", "0.05", "--out", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code != 0
    assert "model 'cnn:4,8' needs images shaped (C, H, W), got input shape (2,)" in result.output
    assert "Traceback" not in result.output
