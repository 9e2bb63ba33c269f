"""Study files for the analysis commands: validation, overrides, rejected keys and the written study.yaml."""

import csv

import pytest
import yaml
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import ConfigError
from reglab.study.analysis_sections import SECTIONS
from reglab.study.analysisfile import read_analysis_file, write_analysis_settings
from reglab.study.studyfile import read_study_file

runner = CliRunner()


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_file_values_by_option_name(tmp_path):
    path = write(
        tmp_path,
        "name: demo\ndataset: digits\nmodel: mlp:16\noptimizer: {lr: 0.1}\nepochs: 2\nbatch_size: 32\nseeds: [3, 5]\n"
        "device: cpu\nbackend: local\nval_fraction: 0.2\n"
        "validation_curve: {param: dropout, grid: linear, min: 0.0, max: 0.5, num: 3}\n"
        "learning_curve: {sizes: [50]}\n",
    )

    contents = read_analysis_file(path, "validation-curve")

    assert contents.name == "demo"
    assert contents.values == {
        "dataset": "digits",
        "model": "mlp:16",
        "lr": 0.1,
        "epochs": 2,
        "batch_size": 32,
        "seeds": [3, 5],
        "device": "cpu",
        "param": "dropout",
        "grid": "linear",
        "minimum": 0.0,
        "maximum": 0.5,
        "num": 3,
    }


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("learning-curve", "learning_curve: {sizez: [10]}", "learning_curve.sizez: unknown setting; check the spelling, got [10]"),
        ("learning-curve", "learning_curve: {match_steps: 'yes'}", "learning_curve.match_steps: Input should be a valid boolean, got 'yes'"),
        ("learning-curve", "learning_curve: {sizes: [300, 1.5]}", "learning_curve.sizes: item 1 is a fraction of the training split and must be in (0, 1], got [300, 1.5]"),
        ("learning-curve", "learning_curve: {strategy: l3}", "learning_curve.strategy: expected one built-in strategy of baseline"),
        ("validation-curve", "validation_curve: {param: weight}", "validation_curve.param: expected one of l2, l1, dropout, dropconnect, max-norm, got 'weight'"),
        ("validation-curve", "validation_curve: {values: [0.1, -1]}", "validation_curve.values.1: Input should be greater than or equal to 0, got -1"),
        ("boundaries", "boundaries: {dropout: [0.2, 1.0]}", "boundaries.dropout.1: Input should be less than 1, got 1.0"),
        ("mc-curve", "mc_curve: {samples: [0]}", "mc_curve.samples.0: Input should be greater than or equal to 1, got 0"),
        ("capacity", "capacity: {widths: 64}", "capacity.widths: Input should be a valid list, got 64"),
        ("geometry", "geometry: {correlation: 1.0}", "geometry.correlation: Input should be less than 1, got 1.0"),
        ("bias-variance", "bias_variance: {bootstraps: 0}", "bias_variance.bootstraps: Input should be greater than or equal to 1, got 0"),
        # A section of another analysis is validated too.
        ("geometry", "capacity: {depths: [0]}", "capacity.depths.0: Input should be greater than or equal to 1, got 0"),
        ("geometry", "seeds: [1, 1]", "seeds: expected distinct seeds >= 0, got [1, 1]"),
    ],
)
def test_invalid_section_values(tmp_path, command, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as error:
        read_analysis_file(path, command)

    assert f"invalid study file '{path}' for reglab {command}:" in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("geometry", "backend: ray", "backend: geometry trains in this process; backend and address apply to 'reglab compare'; remove it, got 'ray'"),
        ("geometry", "dataset: digits", "dataset: geometry fits synthetic two-feature linear regressions and trains no network; remove it, got 'digits'"),
        ("learning-curve", "address: 127.0.0.1:6379", "address: learning-curve trains in this process"),
        ("learning-curve", "strategies: [l2]", "strategies: learning-curve trains one built-in strategy, set by learning_curve.strategy; remove it, got ['l2']"),
        ("learning-curve", "lr: auto", "lr: learning-curve trains with one fixed learning rate; set a number, got 'auto'"),
        ("learning-curve", "lr: -0.1", "lr: Input should be greater than 0, got -0.1"),
        ("learning-curve", "lr_grid: [0.1, 0.01]", "lr_grid: learning-curve trains with one fixed learning rate"),
        ("validation-curve", "val_fraction: 0.3", "val_fraction: validation-curve always splits the data 60/20/20 (val_fraction and test_fraction 0.2); remove it, got 0.3"),
        ("bias-variance", "optimizer: {name: adam}", "optimizer.name: bias-variance trains with SGD, momentum 0.9 and no weight decay; remove it or set 'sgd', got 'adam'"),
        ("bias-variance", "lr: 0.1\noptimizer: {lr: 0.2}", "lr: set the learning rate either as lr or as optimizer.lr, not both, got 0.1"),
        ("bias-variance", "strategies: {l2: {l2: 0.1}}", "strategies.l2: bias-variance trains built-in strategies only"),
        ("bias-variance", "strategies: [l2, ridge]", "strategies.ridge: unknown built-in strategy"),
        ("capacity", "model: mlp:64", "model: capacity builds its MLPs from capacity.widths and capacity.depths; remove it, got 'mlp:64'"),
        ("geometry", "name: ../outside", "name: must start with a letter or digit"),
        ("boundaries", "device: cuda", "device: boundaries trains on the CPU only; remove it, got 'cuda'"),
    ],
)
def test_unusable_keys_rejected(tmp_path, command, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as error:
        read_analysis_file(path, command)

    assert message in str(error.value)


def test_values_equal_to_analysis_accepted(tmp_path):
    path = write(tmp_path, "backend: local\ndevice: cpu\nval_fraction: 0.2\noptimizer: {name: sgd, momentum: 0.9}\n")

    assert read_analysis_file(path, "mc-curve").values == {}


def test_bias_variance_takes_builtin_strategies(tmp_path):
    path = write(tmp_path, "strategies: {baseline: , dropout: {builtin: dropout}}\n")

    assert read_analysis_file(path, "bias-variance").values == {"strategies": ["baseline", "dropout"]}


def test_compare_accepts_analysis_sections_and_device(tmp_path):
    path = write(
        tmp_path,
        "dataset: digits\nlr: 0.05\nstrategies: [l2]\ndevice: cpu\nlearning_curve: {sizes: [0.5, 1.0]}\n",
    )

    contents = read_study_file(path)

    assert contents.device == "cpu"
    assert list(contents.spec.strategies) == ["baseline", "l2"]


@pytest.mark.parametrize("command", list(SECTIONS))
def test_init_example_is_valid(tmp_path, command):
    result = invoke("init", tmp_path / "example.yaml", "--analysis", command)

    assert result.exit_code == 0, result.output
    assert f"reglab {command} {tmp_path / 'example.yaml'}" in " ".join(result.output.split())
    contents = read_analysis_file(tmp_path / "example.yaml", command)
    assert contents.values["seeds"] == [0, 1, 2]
    assert set(contents.values) - {"seeds", "dataset", "model", "lr", "epochs", "batch_size", "device", "strategies"}


def test_init_unknown_analysis(tmp_path):
    result = invoke("init", tmp_path / "example.yaml", "--analysis", "histogram")

    assert result.exit_code == 2
    assert "--analysis must be one of learning-curve" in result.output
    assert not (tmp_path / "example.yaml").exists()


def test_written_settings_read_back(tmp_path):
    settings = {"dataset": "digits", "model": "softmax", "strategy": "l2", "sizes": (100, 1.0), "seeds": [0, 1], "device": None}

    path = write_analysis_settings(tmp_path, "learning-curve", settings, name="demo")

    assert yaml.safe_load(path.read_text())["learning_curve"] == {"strategy": "l2", "sizes": [100, 1.0]}
    contents = read_analysis_file(path, "learning-curve")
    assert contents.name == "demo"
    assert contents.values == {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items() if value is not None}


def test_learning_curve_file_with_override(tmp_path):
    study = write(
        tmp_path,
        "name: curve\ndataset: digits\nmodel: softmax\nepochs: 1\nseeds: 2\nlearning_curve: {strategy: l2, sizes: [100, 1.0]}\n",
    )

    result = invoke("learning-curve", study, "--seeds", "1", "--out", tmp_path / "out", "--quiet")

    assert result.exit_code == 0, result.output
    written = yaml.safe_load((tmp_path / "out" / "study.yaml").read_text())
    assert written["seeds"] == [0]
    assert written["name"] == "curve"
    assert written["learning_curve"] == {"strategy": "l2", "sizes": [100, 1.0]}
    with open(tmp_path / "out" / "learning_curve.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2


def test_geometry_rerun_from_written_settings(tmp_path):
    study = write(tmp_path, "seeds: [1]\ngeometry: {samples: 40, strengths: 6, correlation: 0.5}\n")
    first = invoke("geometry", study, "--noise", "0.5", "--out", tmp_path / "first")
    assert first.exit_code == 0, first.output

    second = invoke("geometry", tmp_path / "first" / "study.yaml", "--out", tmp_path / "second")

    assert second.exit_code == 0, second.output
    assert (tmp_path / "first" / "geometry.csv").read_text() == (tmp_path / "second" / "geometry.csv").read_text()
    assert yaml.safe_load((tmp_path / "second" / "study.yaml").read_text())["geometry"]["noise"] == 0.5


def test_name_sets_default_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = write(tmp_path, "name: demo\nseeds: 1\ngeometry: {samples: 40, strengths: 4}\n")

    result = invoke("geometry", study)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "reglab-runs" / "analyses" / "demo" / "geometry" / "study.yaml").is_file()


def test_grid_from_file_and_values_flag_conflict(tmp_path):
    study = write(tmp_path, "validation_curve: {grid: log, min: 1.0e-4, max: 1.0e-2}\n")

    result = invoke("validation-curve", study, "--values", "0,0.1", "--out", tmp_path / "out")

    assert result.exit_code == 2
    assert "--values and --grid exclude each other, also as values and grid in a study file" in result.output


def test_analysis_rejects_compare_file(tmp_path):
    study = write(tmp_path, "backend: ray\n")

    result = invoke("geometry", study, "--out", tmp_path / "out")

    assert result.exit_code == 2
    assert "backend: geometry trains in this process" in result.output
    assert not (tmp_path / "out").exists()


def test_same_name_other_file_warns(tmp_path, capsys):
    from reglab.cli._analysis import warn_other_study_file

    out = tmp_path / "analyses" / "shared" / "learning-curve"
    out.mkdir(parents=True)
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("name: shared\n")
    second.write_text("name: shared\n")

    assert warn_other_study_file(out, first) == []
    (out / "learning_curve.csv").write_text("size\n")
    (out / "learning_curve.png").write_bytes(b"png")
    assert warn_other_study_file(out, first) == []
    assert "Warning" not in capsys.readouterr().err

    overwritten = warn_other_study_file(out, second)

    assert [path.name for path in overwritten] == ["learning_curve.csv", "learning_curve.png"]
    err = " ".join(capsys.readouterr().err.split())
    assert f"holds the results of study file {first.resolve()}" in err
    assert "overwrites learning_curve.csv, learning_curve.png" in err
