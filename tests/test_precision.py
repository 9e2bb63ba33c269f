"""Mixed precision: bfloat16 forward passes with float32 weights, from the settings to the CLI."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from reglab.cli import app
from reglab.data import load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.compare import CompareOptions
from reglab.study import compete as compete_module
from reglab.study.compete import recipes_for
from reglab.study.studyfile import StudyOverrides, read_study_file
from reglab.training.config import RunConfig, validate
from reglab.training.fit import fit
from reglab.training.fit_batched import batching_problem
from reglab.training.precision import autocast, bf16_is_fast

runner = CliRunner()


def digits_config(**changes):
    settings = {"dataset": "digits", "model": "cnn:4,8:bn", "epochs": 2, "batch_size": 64, "seed": 1}
    return RunConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def digits_split():
    return make_split(load_dataset("digits"), seed=1)


def without_time(history):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def test_autocast_runs_products_in_bfloat16_only_for_bf16():
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4)

    with autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert layer(x).dtype == torch.float32
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, got 'fp16'"):
        with autocast("fp16", "cpu"):
            pass


def test_bf16_fit_forward_dtypes(digits_split, monkeypatch):
    seen = set()
    original = nn.Conv2d.forward

    def recording_forward(self, x):
        out = original(self, x)
        seen.add((self.training, out.dtype))
        return out

    monkeypatch.setattr(nn.Conv2d, "forward", recording_forward)

    result = fit(digits_config(precision="bf16"), digits_split)

    # Every training pass ran its convolutions in bfloat16, and so did the evaluations. The
    # float32 passes in eval mode are the model checks (trial batch, determinism, statistics).
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}
    assert (False, torch.bfloat16) in seen
    assert all(parameter.dtype == torch.float32 for parameter in result.model.parameters())
    assert 0.0 <= result.test_metrics["test_acc"] <= 1.0


def test_bf16_run_is_reproducible_and_differs_from_fp32(digits_split):
    first = fit(digits_config(precision="bf16"), digits_split, evaluate_test=False)
    second = fit(digits_config(precision="bf16"), digits_split, evaluate_test=False)
    single = fit(digits_config(), digits_split, evaluate_test=False)

    assert without_time(first.history) == without_time(second.history)
    assert without_time(first.history) != without_time(single.history)


def test_precision_setting_is_checked_and_keeps_old_keys():
    with pytest.raises(ConfigError, match=r"precision: Input should be 'fp32' or 'bf16', got 'fp16'"):
        validate(RunConfig, {"precision": "fp16"})

    # Runs stored before the setting existed keep their key; bf16 runs get another one.
    assert RunConfig().key() == RunConfig(precision="fp32").key()
    assert "precision" not in RunConfig().model_dump(exclude={"precision"})
    assert RunConfig(precision="bf16").key() != RunConfig().key()


def test_batched_engine_leaves_bf16_runs_to_fit():
    configs = [digits_config(model="mlp:8", strategy="a"), digits_config(model="mlp:8", strategy="b", precision="bf16")]

    assert batching_problem(configs) == "strategy 'b' uses bf16 precision, which the batched engine does not implement"


@pytest.mark.parametrize(("amx", "avx512_bf16", "fast"), [(True, False, True), (False, True, True), (False, False, False)])
def test_bf16_is_fast_only_with_native_instructions(monkeypatch, amx, avx512_bf16, fast):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)

    assert bf16_is_fast("cpu") is fast
    assert bf16_is_fast(torch.device("meta")) is False


def test_bf16_is_fast_without_the_private_checks(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")

    assert bf16_is_fast("cpu") is False


@pytest.mark.parametrize("fast", [True, False])
def test_compete_recipes_use_bf16_where_it_is_fast(monkeypatch, fast):
    monkeypatch.setattr(compete_module, "bf16_is_fast", lambda device: fast)

    for dataset, shape in (("fashion-mnist", (1, 28, 28)), ("digits", (1, 8, 8))):
        recipes = recipes_for(dataset, shape, "cpu")
        assert {recipe.precision for recipe in recipes} == {"bf16" if fast else "fp32"}
        assert {recipe.config(dataset, 0, 5).precision for recipe in recipes} == {"bf16" if fast else "fp32"}


def test_study_file_and_command_line_set_precision(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("dataset: digits\nmodel: mlp:8\nprecision: bf16\nstrategies: [l2]\n")

    assert read_study_file(path).spec.precision == "bf16"
    assert read_study_file(path, StudyOverrides(precision="fp32")).spec.precision == "fp32"
    spec = CompareOptions(dataset="digits", strategies=["l2"], precision="bf16").to_spec()
    assert {spec.run_config(name, 0).precision for name in spec.strategies} == {"bf16"}

    path.write_text("dataset: digits\nprecision: half\n")
    with pytest.raises(ConfigError, match=r"precision: Input should be 'fp32' or 'bf16', got 'half'"):
        read_study_file(path)


def test_train_and_reproduce_a_bf16_run(tmp_path):
    common = ["--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    trained = runner.invoke(app, ["train", *common, "--precision", "bf16"])
    assert trained.exit_code == 0, trained.output

    shown = runner.invoke(app, ["show", "1", "--out", str(tmp_path)])
    ranked = runner.invoke(app, ["leaderboard", "--dataset", "digits", "--out", str(tmp_path)], env={"COLUMNS": "200"})
    reproduced = runner.invoke(app, ["reproduce", "1", "--out", str(tmp_path)])

    assert '"precision": "bf16"' in shown.output
    assert "1 epochs; bf16" in ranked.output
    assert reproduced.exit_code == 0, reproduced.output
    assert "values identical" in reproduced.output


@pytest.mark.parametrize("command", [["train"], ["compare", "--strategies", "l2"]])
def test_cli_rejects_an_unknown_precision_before_training(tmp_path, command):
    result = runner.invoke(app, [*command, "--dataset", "digits", "--precision", "fp16", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "precision: Input should be 'fp32' or 'bf16', got 'fp16'" in result.output
    assert not (tmp_path / "reglab.db").exists()


@pytest.mark.parametrize(("precision", "fast", "expected"), [("auto", True, "bf16"), ("auto", False, "fp32"), ("fp32", True, "fp32"), ("bf16", False, "bf16")])
def test_compete_precision_option_overrides_auto(monkeypatch, precision, fast, expected):
    monkeypatch.setattr(compete_module, "bf16_is_fast", lambda device: fast)

    assert {recipe.precision for recipe in recipes_for("digits", (1, 8, 8), "cpu", precision)} == {expected}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--precision", "fp16"], "compete: precision must be auto, fp32 or bf16, got 'fp16'."),
        (["--device", "banana"], "device 'banana' is not a torch device; use 'cpu', 'cuda' or 'cuda:N'."),
    ],
)
def test_compete_rejects_bad_precision_or_device_before_training(tmp_path, options, message):
    result = runner.invoke(app, ["compete", "--dataset", "digits", *options, "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "reglab.db").exists()
