"""The width and depth sweep: computed numbers, dead ReLUs, errors and the command."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from reglab.analysis.capacity import capacity_sweep, dead_relu_fractions
from reglab.cli import app
from reglab.errors import ConfigError


@pytest.fixture(scope="module")
def result():
    return capacity_sweep("digits", widths=(4, 128), depths=(1, 2), seeds=[0], epochs=3, batch_size=64, threads=1)


def test_wider_net_fits_training_set_better(result):
    for depth in (1, 2):
        narrow, wide = result.metric(depth, "train_acc")[0]
        assert wide > narrow


def test_dead_fraction_one_entry_per_hidden_layer(result):
    for run in result.runs:
        assert len(run.dead_fraction) == run.depth
        assert all(0.0 <= value <= 1.0 for value in run.dead_fraction)


def test_weight_norms_cover_every_layer(result):
    for run in result.runs:
        assert len(run.weight_norms) == run.depth + 1
        assert all(norm > 0 for norm in run.weight_norms)


def test_metric_shapes(result):
    assert result.metric(1, "gap").shape == (1, 2)
    assert result.metric(2, "dead_fraction").shape == (1, 2, 2)
    assert len(result.rows()) == sum(run.depth + 1 for run in result.runs)


def test_dead_relu_fractions_counts_silent_units():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    model.train()

    fractions = dead_relu_fractions(model, torch.randn(16, 2))

    assert fractions == [0.5]
    assert model.training


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (0,)}, "width must be an int >= 1, got 0"),
        ({"depths": ()}, "widths and depths must each contain at least one value"),
        ({"seeds": []}, "seeds must contain at least one seed"),
        ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        capacity_sweep("digits", **kwargs)

    assert message in str(error.value)


def test_capacity_command_writes_files(tmp_path):
    args = ["capacity", "--dataset", "digits", "--widths", "4,8", "--depths", "1", "--epochs", "1", "--seeds", "1", "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    for name in ("capacity.png", "capacity.svg", "capacity.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_capacity_command_rejects_bad_widths(tmp_path):
    result = CliRunner().invoke(app, ["capacity", "--widths", "16,wide", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "--widths must be comma-separated integers, got '16,wide'" in result.output
