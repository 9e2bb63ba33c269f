"""YAML study files: loading, errors with the path to the key, command-line overrides, init."""

import json
import re
import sqlite3
import textwrap

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import ConfigError
from reglab.study.spec import DEFAULT_LR_GRID
from reglab.study.studyfile import StudyOverrides, load_study_file, study_spec_from_dict

runner = CliRunner()

TINY_FILE = """\
name: tiny-file
dataset: digits
model: mlp:32
lr: 0.05
epochs: 2
batch_size: 64
seeds: [0]
strategies:
  l2: {builtin: l2}
"""


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_init_writes_a_file_that_loads(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "study.yaml")])

    assert result.exit_code == 0, result.output
    spec = load_study_file(tmp_path / "study.yaml")
    assert spec.name == "digits-example"
    assert spec.dataset == "digits"
    assert list(spec.strategies) == ["baseline", "l2", "strong-l2", "dropout", "early-stopping", "mixup-smoothing"]
    assert spec.strategies["l2"].l2 == 1e-3
    assert spec.strategies["dropout"].dropout.p == 0.3
    assert spec.strategies["dropout"].dropout.input_p == 0.2
    assert spec.strategies["early-stopping"].early_stopping.patience == 5
    assert spec.strategies["mixup-smoothing"].mixup == 0.2
    assert spec.strategies["mixup-smoothing"].label_smoothing == 0.1
    assert spec.seeds == [0, 1]
    assert spec.optimizer.lr == 0.05
    assert spec.lr_grid is None


def test_init_keeps_an_existing_file(tmp_path):
    path = write(tmp_path, "name: mine\n")

    result = runner.invoke(app, ["init", str(path)])

    assert result.exit_code == 2
    assert "already exists" in result.output
    assert path.read_text() == "name: mine\n"
    assert runner.invoke(app, ["init", str(path), "--force"]).exit_code == 0


def test_init_rejects_folder_paths(tmp_path):
    blocker = write(tmp_path, "name: mine\n", name="afile")

    into_folder = runner.invoke(app, ["init", str(tmp_path), "--force"])
    below_file = runner.invoke(app, ["init", str(blocker / "x.yaml")])

    assert into_folder.exit_code == 2
    assert f"'{tmp_path}' is a folder; give a file path such as '{tmp_path / 'study.yaml'}'" in " ".join(into_folder.output.split())
    assert below_file.exit_code == 2
    assert f"'{blocker}' is a file, not a folder" in " ".join(below_file.output.split())
    assert blocker.read_text() == "name: mine\n"


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_rejected(tmp_path, text):
    with pytest.raises(ConfigError, match=r"study file '.*' contains no settings; write some, for example 'dataset: digits'"):
        load_study_file(write(tmp_path, text))


def test_strategy_name_that_yaml_reads_as_a_bool(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_study_file(write(tmp_path, "strategies:\n  yes: {}\n"))

    message = str(caught.value)
    assert "strategies: strategy names must be text, got True; quote the name" in message
    assert len(message.splitlines()) == 2


def test_error_shortens_a_huge_value(tmp_path):
    aliases = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
        f"{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
        for previous, name in zip("abcde", "bcdef")
    )

    with pytest.raises(ConfigError) as caught:
        load_study_file(write(tmp_path, aliases + "dataset: digits\n"))

    message = str(caught.value)
    assert len(message) < 2000
    assert "characters)" in message


def test_minimal_file_uses_study_defaults(tmp_path):
    spec = load_study_file(write(tmp_path, "dataset: digits\n", name="my-study.yaml"))

    assert spec.name == "my-study"
    assert spec.model == "mlp:512,512"
    assert list(spec.strategies)[0] == "baseline"
    assert len(spec.strategies) == 7
    assert spec.seeds == [0, 1, 2]
    assert spec.lr_grid == list(DEFAULT_LR_GRID)


def test_strategy_list_names_builtins():
    spec = study_spec_from_dict({"strategies": ["dropout", "l2"], "seeds": 2})

    assert list(spec.strategies) == ["baseline", "dropout", "l2"]
    assert spec.seeds == [0, 1]


def test_strategy_list_rejects_a_repeated_name():
    with pytest.raises(ConfigError, match=r"strategy 'l2' is listed twice in \['l2', 'dropout', 'l2'\]"):
        study_spec_from_dict({"strategies": ["l2", "dropout", "l2"]})


@pytest.mark.parametrize("empty", [[], {}])
def test_strategies_empty_is_rejected(empty):
    with pytest.raises(ConfigError, match=r"strategies: nothing is listed to compare with the baseline, got (\[\]|\{\})"):
        study_spec_from_dict({"strategies": empty})


def test_strategies_single_name_gets_one_error():
    with pytest.raises(ConfigError) as error:
        study_spec_from_dict({"strategies": "l2"})

    assert str(error.value) == (
        "strategies: expected a list of built-in strategy names such as [l2, dropout], "
        "or a mapping of named strategies, got 'l2'"
    )


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        (["l2", 5], "strategies: item 2 must be a strategy name such as l2, not 5, got ['l2', 5]"),
        ({"l2": 5}, "strategies: the settings of 'l2' must be a mapping such as {l2: 1e-4}, or empty, not 5, got {'l2': 5}"),
    ],
)
def test_strategies_wrong_entry_gets_one_error(strategies, message):
    with pytest.raises(ConfigError) as error:
        study_spec_from_dict({"strategies": strategies})

    assert str(error.value).startswith(message)
    assert "dict[str" not in str(error.value)


def test_compare_rejects_empty_strategies_first(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(TINY_FILE.replace("strategies:\n  l2: {builtin: l2}\n", "strategies: []\n"))

    result = runner.invoke(app, ["compare", str(study), "--out", str(tmp_path / "out")])

    assert result.exit_code == 2
    assert "strategies: nothing is listed to compare" in result.output
    assert not (tmp_path / "out" / "reglab.db").exists()


def test_builtin_override_merges_nested_settings():
    spec = study_spec_from_dict(
        {"strategies": {"light": {"builtin": "combined", "l2": 1e-4, "dropout": {"p": 0.1}, "augment": False}}}
    )

    light = spec.strategies["light"]
    assert light.l2 == 1e-4
    assert light.dropout.p == 0.1
    assert light.dropout.input_p == 0.2
    assert light.augment is False
    assert light.early_stopping.monitor == "val_acc"
    assert list(spec.strategies) == ["baseline", "light"]


def test_builtin_name_without_settings(tmp_path):
    spec = load_study_file(write(tmp_path, "strategies:\n  augment:\n  none: {}\n"))

    assert spec.strategies["augment"].augment is True
    assert spec.strategies["none"].describe() == "no regularization"


def test_unknown_name_without_settings():
    with pytest.raises(ConfigError, match="strategies.mine: no settings given, and 'mine' is not a built-in strategy"):
        study_spec_from_dict({"strategies": {"mine": None}})


def test_builtin_dropout_can_be_removed():
    spec = study_spec_from_dict({"strategies": {"plain": {"builtin": "dropout", "dropout": None}}})

    assert spec.strategies["plain"].dropout is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strategies": {"dropout": {"dropout": {"p": 1.2}}}}, "strategies.dropout.dropout.p: Input should be less than 1, got 1.2"),
        ({"strategies": {"x": {"l3": 1}}}, "strategies.x.l3: unknown setting; check the spelling, got 1"),
        ({"strategies": {"x": {"builtin": "l2", "l2": -1}}}, "strategies.x.l2: Input should be greater than or equal to 0, got -1"),
        ({"strategies": {"x": {"builtin": "magic"}}}, "strategies.x.builtin: unknown built-in strategy; expected one of"),
        ({"strategies": ["l2", "magic"]}, "Unknown strategy 'magic'"),
        ({"epoch": 3}, "epoch: unknown setting; check the spelling, got 3"),
        ({"epochs": "many"}, "epochs: Input should be a valid integer"),
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1, got 0"),
        ({"seeds": 0}, "seeds: a count of seeds must be >= 1, got 0"),
        ({"seeds": [0, 0]}, "seeds: expected distinct seeds >= 0, got [0, 0]"),
        ({"seeds": [-1]}, "seeds: expected distinct seeds >= 0, got [-1]"),
        ({"lr": -0.1}, "lr: Input should be greater than 0 or 'auto', got -0.1"),
        ({"lr": 0.1, "lr_grid": [0.1, 0.01]}, "a fixed learning rate turns the search over lr_grid off"),
        ({"lr": 0.1, "optimizer": {"lr": 0.2}}, "either as lr or as optimizer.lr"),
        ({"optimizer": {"name": "rmsprop"}}, "optimizer.name: Input should be 'sgd', 'adam' or 'adamw'"),
        ({"optimizer": {"momentum": 1.5}}, "optimizer.momentum: Input should be less than 1, got 1.5"),
        ({"model": "resnet:5"}, "Unknown model spec 'resnet:5'"),
        ({"name": "../up"}, "name: must start with a letter or digit"),
        ({"lr_grid": []}, "lr_grid: "),
    ],
)
def test_invalid_settings_name_the_key(data, message):
    with pytest.raises(ConfigError) as caught:
        study_spec_from_dict(data)

    assert message in str(caught.value)


def test_yaml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, "name: x\nstrategies:\n  l2: {l2: 0.1\nseeds: 2\n")

    with pytest.raises(ConfigError) as caught:
        load_study_file(path)

    message = str(caught.value)
    assert f"study file '{path}' is not valid YAML: line 4" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset: digits\nepochs: 2\nepochs: 5\n", "line 3, column 1: key 'epochs' is given twice, on lines 2 and 3; keep one."),
        ("strategies:\n  l2: {l2: 1e-4, l2: 1e-3}\n", "line 2, column 18: key 'l2' is given twice on line 2; keep one."),
    ],
)
def test_repeated_key_is_rejected(tmp_path, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_study_file(path)

    assert str(caught.value) == f"study file '{path}' is not valid YAML: {message}"


def test_merge_key_may_be_overridden(tmp_path):
    path = write(tmp_path, "dataset: digits\nstrategies:\n  a: &a {l2: 1e-4}\n  b: {<<: *a, l2: 1e-3}\n")

    spec = load_study_file(path)

    assert (spec.strategies["a"].l2, spec.strategies["b"].l2) == (1e-4, 1e-3)


def test_empty_strategies_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"strategies: the key is empty; list strategies such as \[l2, dropout\]"):
        load_study_file(write(tmp_path, "dataset: digits\nstrategies:\n"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"study file '.*nope.yaml' not found; write an example with 'reglab init"):
        load_study_file(tmp_path / "nope.yaml")


def test_file_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="must contain a mapping of settings .*got a list"):
        load_study_file(write(tmp_path, "- l2\n- dropout\n"))


def test_error_names_the_file(tmp_path):
    path = write(tmp_path, "strategies:\n  dropout:\n    dropout: {p: 1.2}\n")

    result = runner.invoke(app, ["compare", str(path), "--out", str(tmp_path), "--quiet"])

    assert result.exit_code == 2
    assert f"invalid study file '{path}'" in result.output
    assert "strategies.dropout.dropout.p: Input should be less than 1, got 1.2" in result.output
    assert "Traceback" not in result.output


def test_missing_file_on_command_line(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "absent.yaml"), "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "not found" in result.output


def test_overrides_replace_file_values():
    data = {"dataset": "digits", "epochs": 20, "seeds": [4, 5], "lr": 0.05, "strategies": {"reg": {"l2": 0.01, "dropout": {"p": 0.5}}}}

    spec = study_spec_from_dict(data, StudyOverrides(epochs=3, seeds=1, lr="auto", l2=0.1, p=0.25, name="other"))

    assert spec.epochs == 3
    assert spec.seeds == [0]
    assert spec.lr_grid == list(DEFAULT_LR_GRID)
    assert spec.name == "other"
    assert spec.strategies["reg"].l2 == 0.1
    assert spec.strategies["reg"].dropout.p == 0.25
    assert spec.strategies["baseline"].l2 == 0.0
    assert spec.strategies["baseline"].dropout is None


def test_strategies_override_uses_builtins():
    spec = study_spec_from_dict({"strategies": {"mine": {"l1": 0.1}}}, StudyOverrides(strategies=["dropout"]))

    assert list(spec.strategies) == ["baseline", "dropout"]


def test_compare_runs_study_file(tmp_path):
    path = write(tmp_path, TINY_FILE)

    result = runner.invoke(app, ["compare", str(path), "--out", str(tmp_path), "--quiet"])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny-file" / "report.html").is_file()
    with sqlite3.connect(tmp_path / "reglab.db") as db:
        stored = json.loads(db.execute("SELECT spec_json FROM studies WHERE name = 'tiny-file'").fetchone()[0])
        runs = db.execute("SELECT strategy, config_json FROM runs ORDER BY id").fetchall()
    assert stored == load_study_file(path).model_dump(mode="json")
    assert list(stored["strategies"]) == ["baseline", "l2"]
    assert [strategy for strategy, _ in runs] == ["baseline", "l2"]
    assert json.loads(runs[1][1])["regularization"]["l2"] == 1e-3


def test_explicit_flags_override_the_file(tmp_path):
    path = write(tmp_path, TINY_FILE)

    result = runner.invoke(
        app,
        ["compare", str(path), "--epochs", "1", "--name", "flagged", "--l2", "0.01", "--out", str(tmp_path), "--quiet"],
    )

    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "reglab.db") as db:
        stored = json.loads(db.execute("SELECT spec_json FROM studies WHERE name = 'flagged'").fetchone()[0])
    assert stored["epochs"] == 1
    assert stored["seeds"] == [0]
    assert stored["batch_size"] == 64
    assert stored["strategies"]["l2"]["l2"] == 0.01


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("strategies:\n  d:\n    dropout: {p: .nan}\n", "strategies.d.dropout.p"),
        ("strategies:\n  d:\n    dropout: {p: [0.1, .inf]}\n", "strategies.d.dropout.p"),
        ("strategies:\n  big:\n    l2: .inf\n", "strategies.big.l2"),
        ("lr: .nan\n", "lr"),
    ],
)
def test_study_file_rejects_non_finite_numbers(tmp_path, text, where):
    path = tmp_path / "study.yaml"
    path.write_text("name: s\ndataset: digits\n" + text)

    with pytest.raises(ConfigError, match=rf"{re.escape(where)}\S*: Input should be a finite number, got (nan|inf)"):
        load_study_file(path)


def test_exponent_without_point_is_a_number(tmp_path):
    """PyYAML (YAML 1.1) reads 1e9 as text; study files read it as a number, as YAML 1.2 does."""
    path = tmp_path / "study.yaml"
    path.write_text("name: s\ndataset: digits\nepochs: 1e1\nlr: auto\nlr_grid: [1e-2, 5E-2]\nstrategies:\n  big:\n    l2: 1e-4\n")

    spec = load_study_file(path)

    assert spec.epochs == 10
    assert spec.lr_grid == [0.01, 0.05]
    assert spec.strategies["big"].l2 == 1e-4
