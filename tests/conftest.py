"""Shared fixtures: a tiny study on scikit-learn's digits that trains in seconds."""

import pytest

from reglab.study.spec import StudySpec
from reglab.study.strategies import resolve_strategies


@pytest.fixture
def tiny_spec() -> StudySpec:
    """Three strategies, two seeds, three epochs of a small MLP on digits, fixed learning rate."""
    return StudySpec(
        name="tiny",
        dataset="digits",
        model="mlp:32",
        strategies=resolve_strategies(["baseline", "l2", "dropout"]),
        seeds=[0, 1],
        epochs=3,
        batch_size=64,
        lr_grid=None,
    )


@pytest.fixture(scope="session")
def stored_study(tmp_path_factory):
    """A finished study 'stored' (baseline and l2, seeds 0 and 1, two epochs) in a fresh folder.

    Returns the folder that contains reglab.db. Tests that change the database use
    :func:`stored_copy` instead.
    """
    from reglab.study import compare_study

    out = tmp_path_factory.mktemp("stored")
    spec = StudySpec(
        name="stored",
        dataset="digits",
        model="mlp:32",
        strategies=resolve_strategies(["baseline", "l2"]),
        seeds=[0, 1],
        epochs=2,
        batch_size=64,
        lr_grid=None,
    )
    compare_study(spec, out)
    return out


@pytest.fixture
def stored_copy(stored_study, tmp_path):
    """A private copy of :func:`stored_study`'s folder, for tests that change the database."""
    import shutil

    target = tmp_path / "copy"
    target.mkdir()
    shutil.copy(stored_study / "reglab.db", target / "reglab.db")
    return target
