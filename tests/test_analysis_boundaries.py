"""Decision regions for L2 and dropout settings: computed numbers, errors and the command."""

import numpy as np
import pytest
from typer.testing import CliRunner

from reglab.analysis.boundaries import boundary_complexity, decision_boundaries
from reglab.cli import app
from reglab.errors import ConfigError

GRID = 40


@pytest.fixture(scope="module")
def result():
    return decision_boundaries(
        "moons", model="mlp:32,32", l2_strengths=(0.0, 1.0), dropout_ps=(0.5,), seeds=[0], epochs=80, grid_size=GRID
    )


@pytest.fixture
def three_feature_csv(tmp_path):
    path = tmp_path / "three.csv"
    rows = ["a,b,c,label"] + [f"{i},{i % 3},{i % 5},{i % 2}" for i in range(12)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_grid_probabilities_shape(result):
    panel = result.panel("l2", 0.0)

    assert panel.probabilities.shape == (1, GRID, GRID, 2)
    assert panel.labels.shape == (1, GRID, GRID)
    np.testing.assert_allclose(panel.probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_unregularized_run_shared_by_both_rows(result):
    np.testing.assert_array_equal(result.panel("l2", 0.0).probabilities, result.panels[0].probabilities)
    assert [(p.regularizer, p.value) for p in result.panels] == [("l2", 0.0), ("l2", 1.0), ("dropout", 0.5)]


def test_strong_l2_lowers_train_accuracy(result):
    assert result.panel("l2", 1.0).train_acc[0] < result.panel("l2", 0.0).train_acc[0] - 0.1


def test_strong_l2_simplifies_boundary(result):
    assert result.panel("l2", 0.0).complexity[0] > result.panel("l2", 1.0).complexity[0]


def test_rows_one_per_panel_and_seed(result):
    rows = result.rows()

    assert len(rows) == 3
    assert set(rows[0]) == {"regularizer", "value", "seed", "train_acc", "val_acc", "test_acc", "gap", "complexity"}


def test_boundary_complexity_counts_label_changes():
    constant = np.zeros((4, 4), dtype=int)
    split = np.zeros((4, 4), dtype=int)
    split[:, 2:] = 1

    assert boundary_complexity(constant) == 0.0
    assert boundary_complexity(split) == pytest.approx(4 / 24)


def test_csv_with_three_features_rejected(three_feature_csv):
    with pytest.raises(ConfigError, match="exactly 2 feature columns .* got 3 features"):
        decision_boundaries(f"csv:{three_feature_csv}", seeds=[0], epochs=1)


def test_image_dataset_rejected():
    with pytest.raises(ConfigError, match="got 64 features in 'digits'"):
        decision_boundaries("digits", seeds=[0], epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dropout_ps": (1.0,)}, "dropout p must be in [0, 1), got 1.0"),
        ({"l2_strengths": (-0.1,)}, "l2 strength must be >= 0"),
        ({"l2_strengths": (), "dropout_ps": ()}, "l2_strengths and dropout_ps are both empty"),
        ({"grid_size": 1}, "grid_size must be an int >= 2, got 1"),
    ],
)
def test_bad_arguments_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        decision_boundaries("moons", **kwargs)

    assert message in str(error.value)


def test_boundaries_command_writes_files(tmp_path):
    args = ["boundaries", "--seeds", "1", "--epochs", "3", "--grid", "10", "--l2", "0", "--dropout", "0.5", "--model", "mlp:8"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    for name in ("boundaries.png", "boundaries.svg", "boundaries.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_boundaries_command_rejects_three_features(tmp_path, three_feature_csv):
    result = CliRunner().invoke(app, ["boundaries", "--dataset", f"csv:{three_feature_csv}", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "got 3 features" in result.output


def test_boundaries_command_rejects_bad_number(tmp_path):
    result = CliRunner().invoke(app, ["boundaries", "--dropout", "0.2,half", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "--dropout must be comma-separated numbers, got '0.2,half'" in result.output
