"""Matplotlib helpers shared by the curve analyses: a figure with a grid and seed bands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_band(ax: Any, x: Sequence[float], values: np.ndarray, *, color: str, label: str, marker: str = "o") -> None:
    """Plot the mean over seeds as a line and the lowest to highest seed as a band.

    Args:
        ax: the matplotlib axes.
        x: the positions, shape ``(P,)``.
        values: one column per seed, shape ``(P, S)``.
        color: the line and band colour.
        label: the legend entry of the line.
        marker: the marker of the mean at each position.
    """
    ax.plot(x, values.mean(axis=1), color=color, marker=marker, markersize=4, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, values.min(axis=1), values.max(axis=1), color=color, alpha=0.2, linewidth=0)


def new_figure(width: float = 6.4, height: float = 4.2) -> tuple[Any, Any]:
    """Return a figure with one axes and a light grid."""
    figure, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.3)
    return figure, ax


__all__ = ["new_figure", "plot_band", "plt"]
