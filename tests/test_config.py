"""Run and study settings: validation messages with the path to the bad key."""

import pytest

from reglab.errors import ConfigError
from reglab.study.spec import StudySpec, default_study_name
from reglab.training.config import RunConfig, StrategyConfig, validate


def test_run_config_key_is_stable_and_sensitive():
    config = RunConfig()

    assert config.key() == RunConfig().key()
    assert config.key() != RunConfig(seed=1).key()
    assert config.key() != RunConfig(regularization=StrategyConfig(l2=1e-3)).key()


def test_run_config_key_is_pinned():
    # Runs already stored are found by this key; new settings must not change it while
    # they hold their defaults (see ADDED_SETTINGS).
    assert RunConfig().key() == "a0f0b9e5f32ed7be"


def test_model_spec_is_normalized():
    assert RunConfig(model="MLP:64,32").model == "mlp:64,32"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dropout": {"p": 1.2}}, r"strategies\.dropout\.dropout\.p: Input should be less than 1, got 1\.2"),
        ({"dropout": {"p": 1.0}}, r"dropout\.p: Input should be less than 1, got 1\.0"),
        ({"l2": -0.1}, r"strategies\.dropout\.l2: Input should be greater than or equal to 0, got -0\.1"),
        ({"l1": "lots"}, r"strategies\.dropout\.l1: Input should be a valid number"),
        ({"l3": 1}, r"strategies\.dropout\.l3: unknown setting; check the spelling, got 1"),
    ],
)
def test_strategy_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        validate(StrategyConfig, data, "strategies.dropout")


def test_unknown_model_spec_in_run_config():
    with pytest.raises(ConfigError, match=r"model: .*Unknown model spec 'cnn9'"):
        validate(RunConfig, {"model": "cnn9"})


def test_study_name_must_be_folder_safe():
    with pytest.raises(ConfigError, match=r"name: .*only letters, digits"):
        validate(StudySpec, {"name": "../escape", "strategies": {}})


def test_default_study_name_is_folder_safe():
    assert default_study_name("csv:/tmp/data.csv", "mlp:512,512") == "csv--tmp-data.csv_mlp-512-512"


def test_search_epochs_default_is_half_the_budget():
    spec = StudySpec(name="s", strategies={"baseline": StrategyConfig()}, epochs=9)

    assert spec.search_epochs == 4
    assert spec.run_config("baseline", 2, lr=0.01, epochs=3).regularization.lr == 0.01
