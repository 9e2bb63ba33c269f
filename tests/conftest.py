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
