"""The L1/L2 geometry analysis: solution paths against exact solvers, and its command."""

import re

import numpy as np
import pytest
from sklearn.linear_model import Lasso
from typer.testing import CliRunner

from reglab.analysis.geometry import ZERO_TOLERANCE, make_problem, penalty_geometry, ridge_closed_form, solution_path
from reglab.cli import app
from reglab.errors import ConfigError


@pytest.fixture(scope="module")
def result():
    return penalty_geometry([0, 1], n_strengths=15)


def test_l2_path_matches_ridge_closed_form(result):
    for path in result.paths:
        exact = np.array([ridge_closed_form(path.problem, s) for s in path.strengths])
        assert np.abs(path.l2_weights - exact).max() < 1e-4


def test_l1_path_matches_sklearn_lasso(result):
    path = result.paths[0]
    for strength, weights in zip(path.strengths, path.l1_weights):
        lasso = Lasso(alpha=strength, fit_intercept=False, tol=1e-12, max_iter=100_000)
        lasso.fit(path.problem.x, path.problem.y)
        assert np.abs(lasso.coef_ - weights).max() < 1e-6


def test_l1_path_is_sparse_above_threshold(result):
    for path in result.paths:
        threshold = path.sparse_from
        smallest = np.abs(path.l1_weights).min(axis=1)
        above = path.strengths >= threshold
        below = ~above

        assert np.isfinite(threshold)
        assert threshold < path.problem.max_l1_strength
        assert (smallest[above] < ZERO_TOLERANCE).all()
        assert (smallest[below] >= ZERO_TOLERANCE).all()


def test_highlighted_l1_solution_has_one_zero(result):
    magnitudes = np.sort(np.abs(result.l1_solution))

    assert magnitudes[0] < ZERO_TOLERANCE
    assert magnitudes[1] > 0.1


def test_l2_path_shrinks_and_stays_nonzero(result):
    for path in result.paths:
        norms = np.linalg.norm(path.l2_weights, axis=1)

        assert (np.diff(norms) < 0).all()
        assert (np.abs(path.l2_weights) > 0.1).all()


def test_highlighted_l2_solution_has_no_zero(result):
    assert (np.abs(result.l2_solution) > 0.1).all()


def test_solution_path_sorts_strengths():
    path = solution_path(make_problem(0, n_samples=50), [1.0, 0.0, 0.1])

    assert list(path.strengths) == [0.0, 0.1, 1.0]
    np.testing.assert_allclose(path.l2_weights[0], path.problem.ols, atol=1e-8)


def test_rows_cover_every_seed_penalty_and_strength(result):
    rows = result.rows()

    assert len(rows) == 2 * 2 * 15
    assert {row["penalty"] for row in rows} == {"l1", "l2"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correlation": 1.0}, "correlation must be in (-1, 1), got 1.0"),
        ({"seeds": []}, "seeds must contain at least one seed"),
        ({"n_strengths": 1}, "n_strengths must be an int >= 2, got 1"),
        ({"noise": -1.0}, "noise must be >= 0, got -1.0"),
        ({"strength": 0.0}, "strength must be > 0, got 0.0"),
        ({"true_weights": (0.0, 0.0), "noise": 0.0}, "uncorrelated with both features"),
    ],
)
def test_penalty_geometry_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        penalty_geometry(**kwargs)


def test_geometry_command_writes_files(tmp_path):
    result = CliRunner().invoke(app, ["geometry", "--seeds", "1", "--strengths", "8", "--samples", "60", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    for name in ("geometry.png", "geometry.svg", "geometry.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_geometry_command_rejects_bad_correlation(tmp_path):
    result = CliRunner().invoke(app, ["geometry", "--correlation", "-1", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "correlation must be in (-1, 1), got -1.0" in result.output
