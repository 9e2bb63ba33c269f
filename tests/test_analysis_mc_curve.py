"""Monte-Carlo dropout against the number of passes: computed numbers, errors and the command."""

import numpy as np
import pytest
from typer.testing import CliRunner

from reglab.analysis.mc_curve import mc_dropout_curve
from reglab.cli import app
from reglab.errors import ConfigError

TINY = {"model": "mlp:64", "epochs": 3, "batch_size": 64, "threads": 1}


@pytest.fixture(scope="module")
def result():
    return mc_dropout_curve("digits", samples=(100, 1, 10), seeds=[0], **TINY)


def test_curve_has_entry_per_sample_count(result):
    assert result.samples == [1, 10, 100]
    for mean in ("arithmetic", "geometric"):
        assert result.accuracy[mean].shape == (1, 3)
        assert result.nll[mean].shape == (1, 3)
    assert len(result.rows()) == 1 + 2 * 3


def test_nll_at_100_passes_not_worse_than_one(result):
    for mean in ("arithmetic", "geometric"):
        nll = result.nll[mean][0]
        assert nll[-1] <= nll[0] + 0.02


def test_arithmetic_probabilities_sum_to_one(result):
    probabilities = result.final_probabilities["arithmetic"]

    assert probabilities.shape == (1, result.n_test, 10)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_means_agree_at_one_pass(result):
    assert result.accuracy["arithmetic"][0, 0] == result.accuracy["geometric"][0, 0]
    assert result.nll["arithmetic"][0, 0] == result.nll["geometric"][0, 0]


def test_deterministic_prediction_scored(result):
    assert 0.5 < result.deterministic_accuracy[0] <= 1.0
    assert 0.0 < result.deterministic_nll[0] < np.log(10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 0.0}, "p must be in (0, 1) so that the passes differ, got 0.0"),
        ({"p": 1.0}, "p must be in (0, 1) so that the passes differ, got 1.0"),
        ({"samples": ()}, "samples must contain at least one number of passes"),
        ({"samples": (0, 5)}, "samples must be an int >= 1, got 0"),
        ({"samples": (5, 1001)}, "samples must be at most 1000 passes, got 1001"),
        ({"model": "softmax"}, "model must have a hidden layer for dropout to act on"),
        ({"seeds": [0, 0]}, "seeds must be distinct, got [0, 0]"),
    ],
)
def test_bad_arguments_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        mc_dropout_curve("digits", **kwargs)

    assert message in str(error.value)


def test_mc_curve_command_writes_files(tmp_path):
    args = ["mc-curve", "--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--seeds", "1", "--samples", "1,2", "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    for name in ("mc_curve.png", "mc_curve.svg", "mc_curve.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_mc_curve_command_rejects_bad_samples(tmp_path):
    result = CliRunner().invoke(app, ["mc-curve", "--samples", "1,many", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "--samples must be comma-separated integers, got '1,many'" in result.output
