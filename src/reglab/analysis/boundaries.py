"""Decision regions of a small network on 2-D data, for a row of L2 strengths and a row of
dropout probabilities.

Each configuration is trained with :func:`reglab.training.fit` on a small, noisy training
set so that the unregularized network overfits. Its class probabilities are then computed
on a regular grid that covers the data. Too little regularization gives a ragged boundary
that wraps around single training points (high variance). Too much gives a nearly straight
or constant one that misses the structure of the data (high bias).

The boundary complexity of a panel is the share of neighbouring grid cells (left-right and
up-down pairs) whose predicted labels differ. A straight boundary across a 100 × 100 grid
scores between about 0.005 (parallel to an axis) and 0.01 (diagonal), and a constant
prediction scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reglab._validation import check_int, check_non_negative, check_number, check_positive
from reglab.analysis._output import DEFAULT_DPI, check_seeds, save_figure_and_csv, torch_threads
from reglab.errors import ConfigError

#: Data sets that are generated per seed and accept ``n_samples`` and ``noise``.
GENERATED_DATASETS = ("moons", "circles")


@dataclass(frozen=True)
class BoundaryPanel:
    """One regularization setting, trained once per seed.

    Attributes:
        regularizer: ``"l2"`` or ``"dropout"``.
        value: the L2 strength or the dropout probability ``p`` after each hidden layer.
        seeds: the seeds, in the order of the per-seed arrays.
        train_acc: training accuracy per seed, shape ``(seeds,)``.
        val_acc: validation accuracy per seed, shape ``(seeds,)``.
        test_acc: accuracy on the sealed test set per seed, shape ``(seeds,)``.
        probabilities: class probabilities on the grid, shape ``(seeds, rows, columns, classes)``.
            Row ``i`` and column ``j`` are the point ``(grid_x[j], grid_y[i])``.
    """

    regularizer: str
    value: float
    seeds: list[int]
    train_acc: np.ndarray
    val_acc: np.ndarray
    test_acc: np.ndarray
    probabilities: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Predicted labels on the grid per seed, shape ``(seeds, rows, columns)``."""
        return self.probabilities.argmax(axis=-1)

    @property
    def complexity(self) -> np.ndarray:
        """Boundary complexity per seed, shape ``(seeds,)``, as :func:`boundary_complexity` defines it."""
        return np.array([boundary_complexity(labels) for labels in self.labels])

    @property
    def gap(self) -> np.ndarray:
        """Training minus test accuracy per seed, shape ``(seeds,)``."""
        return self.train_acc - self.test_acc

    @property
    def title(self) -> str:
        """A label such as ``L2 λ = 0.001`` or ``dropout p = 0.5``."""
        return f"L2 λ = {self.value:g}" if self.regularizer == "l2" else f"dropout p = {self.value:g}"


@dataclass(frozen=True)
class BoundaryResult:
    """Decision regions of every panel on a shared grid.

    Attributes:
        dataset: the data set's name.
        model: the model spec.
        classes: one name per class.
        epochs: training epochs per run.
        grid_x: grid coordinates along the first feature, shape ``(columns,)``.
        grid_y: grid coordinates along the second feature, shape ``(rows,)``.
        panels: the L2 panels, then the dropout panels.
        train_x: the first seed's training inputs, shape ``(n, 2)``.
        train_y: the first seed's training labels, shape ``(n,)``.
    """

    dataset: str
    model: str
    classes: tuple[str, ...]
    epochs: int
    grid_x: np.ndarray
    grid_y: np.ndarray
    panels: list[BoundaryPanel]
    train_x: np.ndarray
    train_y: np.ndarray

    def panel(self, regularizer: str, value: float) -> BoundaryPanel:
        """Return the panel of ``regularizer`` at ``value``."""
        for panel in self.panels:
            if panel.regularizer == regularizer and math.isclose(panel.value, value):
                return panel
        raise KeyError(f"no {regularizer} panel with value {value}")

    def rows(self) -> list[dict[str, float | int | str]]:
        """Return one CSV row per panel and seed."""
        rows: list[dict[str, float | int | str]] = []
        for panel in self.panels:
            for index, seed in enumerate(panel.seeds):
                rows.append(
                    {
                        "regularizer": panel.regularizer,
                        "value": panel.value,
                        "seed": seed,
                        "train_acc": float(panel.train_acc[index]),
                        "val_acc": float(panel.val_acc[index]),
                        "test_acc": float(panel.test_acc[index]),
                        "gap": float(panel.gap[index]),
                        "complexity": float(panel.complexity[index]),
                    }
                )
        return rows


def boundary_complexity(labels: np.ndarray) -> float:
    """Return the share of left-right and up-down neighbour pairs of grid cells whose labels differ.

    Args:
        labels: predicted labels on a grid, shape ``(rows, columns)``, at least 2 × 2.
    """
    horizontal = labels[:, 1:] != labels[:, :-1]
    vertical = labels[1:, :] != labels[:-1, :]
    return float((horizontal.sum() + vertical.sum()) / (horizontal.size + vertical.size))


def _load(dataset: str, seeds: list[int], n_samples: int, noise: float, data_dir: str | None) -> list:
    from reglab.data import load_dataset

    if dataset.strip().lower() in GENERATED_DATASETS:
        data = [load_dataset(dataset, n_samples=n_samples, noise=noise, seed=seed) for seed in seeds]
    else:
        data = [load_dataset(dataset, data_dir=data_dir)] * len(seeds)
    features = math.prod(data[0].input_shape)
    if data[0].is_image or features != 2:
        raise ConfigError(
            f"decision_boundaries: dataset must have exactly 2 feature columns to draw its decision regions "
            f"in the plane, got {features} features in {dataset!r}."
        )
    return data


def _grid(splits: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return grid coordinates that cover every seed's data with a 10% margin on each side."""
    points = torch.cat([torch.cat([split.train.x, split.val.x]) for split in splits]).numpy()
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-6)
    low, high = low - margin, high + margin
    return np.linspace(low[0], high[0], size), np.linspace(low[1], high[1], size)


def _strategy(regularizer: str, value: float):
    from reglab.training.config import DropoutSettings, StrategyConfig

    if value == 0.0:
        return StrategyConfig()
    if regularizer == "l2":
        return StrategyConfig(l2=value)
    return StrategyConfig(dropout=DropoutSettings(p=value))


def decision_boundaries(
    dataset: str = "moons",
    *,
    model: str = "mlp:64,64",
    l2_strengths: Sequence[float] = (0.0, 1e-3, 1e-2, 1e-1),
    dropout_ps: Sequence[float] = (0.0, 0.2, 0.5, 0.8),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 300,
    lr: float = 0.05,
    batch_size: int = 32,
    n_samples: int = 200,
    noise: float = 0.3,
    grid_size: int = 100,
    data_dir: str | None = None,
    batched: bool = True,
) -> BoundaryResult:
    """Train one network per regularization setting and seed, and predict on a grid.

    The L2 strength 0 and the dropout probability 0 are the same unregularized
    configuration, so it is trained once per seed and shown in both rows.

    Args:
        dataset: ``"moons"``, ``"circles"`` or any data set with two feature columns, such
            as ``"csv:PATH"``.
        model: the model spec, e.g. ``"mlp:64,64"``.
        l2_strengths: L2 strengths of the first row, each >= 0.
        dropout_ps: drop probabilities after every hidden layer of the second row, each in [0, 1).
        seeds: one run per seed and setting. For ``moons`` and ``circles`` the seed also
            draws the points, and for every data set it chooses the split.
        epochs: training epochs of every run (no early stopping).
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        n_samples: points drawn for ``moons`` and ``circles``, of which 60% are for training.
        noise: standard deviation of the noise of ``moons`` and ``circles``.
        grid_size: grid points along each axis, at least 2.
        data_dir: the folder that ``load_dataset`` searches for files.
        batched: train the settings of one seed together with the batched engine. The
            results equal one-at-a-time training up to floating-point rounding. False
            trains every run alone with :func:`~reglab.training.fit.fit`.

    Returns:
        The :class:`BoundaryResult`.

    Raises:
        ConfigError: an argument is out of range, or the data set does not have exactly two
            features.
    """
    from reglab.analysis._common import fit_runs
    from reglab.data import make_split
    from reglab.training.config import RunConfig, validate

    owner = "decision_boundaries"
    seeds = check_seeds(owner, seeds)
    l2_strengths = [check_non_negative(owner, "l2 strength", value) for value in l2_strengths]
    dropout_ps = [check_number(owner, "dropout p", value) for value in dropout_ps]
    for value in dropout_ps:
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{owner}: dropout p must be in [0, 1), got {value!r}.")
    if not l2_strengths and not dropout_ps:
        raise ConfigError(f"{owner}: l2_strengths and dropout_ps are both empty. Give at least one value.")
    epochs = check_int(owner, "epochs", epochs, minimum=1)
    lr = check_positive(owner, "lr", lr)
    grid_size = check_int(owner, "grid_size", grid_size, minimum=2)

    data = _load(dataset, seeds, n_samples, noise, data_dir)
    data_by_seed = dict(zip(seeds, data))
    splits = [make_split(item, seed=seed) for item, seed in zip(data, seeds)]
    splits_by_seed = dict(zip(seeds, splits))
    grid_x, grid_y = _grid(splits, grid_size)
    mesh_x, mesh_y = np.meshgrid(grid_x, grid_y)
    grid = torch.from_numpy(np.stack([mesh_x.ravel(), mesh_y.ravel()], axis=1).astype(np.float32))

    settings = [("l2", value) for value in l2_strengths] + [("dropout", value) for value in dropout_ps]
    # The unregularized configuration appears in both rows, so it trains once per seed.
    strategies = {strategy.describe(): strategy for strategy in (_strategy(*setting) for setting in settings)}
    trained: dict[tuple[str, int], tuple[float, float, float, np.ndarray]] = {}
    with torch_threads(1):
        for seed in seeds:
            configs = [
                validate(
                    RunConfig,
                    {
                        "dataset": data[0].name,
                        "model": model,
                        "strategy": name,
                        "regularization": strategy.model_dump(),
                        "optimizer": {"lr": lr},
                        "batch_size": batch_size,
                        "epochs": epochs,
                        "seed": seed,
                    },
                )
                for name, strategy in strategies.items()
            ]
            # A fresh split per run, as the study runner makes, because every run opens
            # its sealed test set once. The same seed gives the same parts.
            runs = fit_runs(
                configs, [make_split(data_by_seed[seed], seed=seed) for _ in configs], batched=batched
            )
            for name, run in zip(strategies, runs):
                with torch.no_grad():
                    run.model.eval()
                    probabilities = torch.softmax(run.model(splits_by_seed[seed].normalize(grid)), dim=1).numpy()
                trained[(name, seed)] = (
                    run.final_metrics["train_acc"],
                    run.final_metrics["val_acc"],
                    run.test_metrics["test_acc"],
                    probabilities.reshape(grid_size, grid_size, -1),
                )

    panels = []
    for regularizer, value in settings:
        runs = [trained[(_strategy(regularizer, value).describe(), seed)] for seed in seeds]
        panels.append(
            BoundaryPanel(
                regularizer=regularizer,
                value=value,
                seeds=seeds,
                train_acc=np.array([run[0] for run in runs]),
                val_acc=np.array([run[1] for run in runs]),
                test_acc=np.array([run[2] for run in runs]),
                probabilities=np.stack([run[3] for run in runs]),
            )
        )

    return BoundaryResult(
        dataset=data[0].name,
        model=str(validate(RunConfig, {"model": model}).model),
        classes=data[0].classes,
        epochs=epochs,
        grid_x=grid_x,
        grid_y=grid_y,
        panels=panels,
        train_x=splits[0].train.x.numpy(),
        train_y=splits[0].train.y.numpy(),
    )


def _accuracy_text(name: str, values: np.ndarray) -> str:
    if len(values) == 1:
        return f"{name} {values[0] * 100:.0f}%"
    return f"{name} {values.mean() * 100:.0f}% [{values.min() * 100:.0f}–{values.max() * 100:.0f}]"


def render_boundaries(result: BoundaryResult, out: Path, dpi: int = DEFAULT_DPI) -> list[Path]:
    """Draw one panel per setting, L2 on top and dropout below, and write PNG, SVG and the CSV."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = [[p for p in result.panels if p.regularizer == kind] for kind in ("l2", "dropout")]
    rows = [row for row in rows if row]
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(3.6 * columns, 3.9 * len(rows)), squeeze=False, sharex=True, sharey=True
    )
    n_classes = len(result.classes)
    colors = plt.get_cmap("tab10").colors
    mesh_x, mesh_y = np.meshgrid(result.grid_x, result.grid_y)
    image = None

    for row_index, row in enumerate(rows):
        for column, panel in enumerate(row):
            ax = axes[row_index, column]
            mean = panel.probabilities.mean(axis=0)
            if n_classes == 2:
                image = ax.contourf(mesh_x, mesh_y, mean[..., 1], levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
            else:
                ax.pcolormesh(mesh_x, mesh_y, mean.argmax(axis=-1), cmap="tab10", vmin=0, vmax=9, alpha=0.3, shading="auto")
            for probabilities, labels in zip(panel.probabilities, panel.labels):
                if len(np.unique(labels)) == 1:
                    continue
                if n_classes == 2:
                    ax.contour(mesh_x, mesh_y, probabilities[..., 1], levels=[0.5], colors="black", linewidths=0.9)
                else:
                    # One indicator contour per class, because a contour of the label values
                    # would also draw lines where, say, label 0 meets label 2 at level 1.5.
                    for label in np.unique(labels):
                        indicator = (labels == label).astype(float)
                        ax.contour(mesh_x, mesh_y, indicator, levels=[0.5], colors="black", linewidths=0.9)
            for label in range(n_classes):
                chosen = result.train_y == label
                color = ("tab:blue", "tab:red")[label] if n_classes == 2 else colors[label % 10]
                ax.scatter(*result.train_x[chosen].T, s=9, color=color, edgecolors="white", linewidths=0.4)
            ax.set_title(
                f"{panel.title}\n{_accuracy_text('train', panel.train_acc)} · {_accuracy_text('test', panel.test_acc)}",
                fontsize=9,
            )
        for ax in axes[row_index, len(row):]:
            ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("feature 1 (data units)")
    for ax in axes[:, 0]:
        ax.set_ylabel("feature 2 (data units)")

    handles = [
        Line2D([], [], marker="o", linestyle="none", color=("tab:blue", "tab:red")[k] if n_classes == 2 else colors[k % 10],
               label=f"training point, class {name}")
        for k, name in enumerate(result.classes)
    ]
    handles.append(Line2D([], [], color="black", linewidth=0.9, label="decision boundary, one line per seed"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    seeds = len(result.panels[0].seeds)
    figure.suptitle(
        f"Decision regions of {result.model} on {result.dataset} ({len(result.train_y)} training points, "
        f"{result.epochs} epochs of SGD, {seeds} seed{'s' if seeds > 1 else ''})\naccuracies: mean [min–max] over seeds",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.05, 0.92 if image is not None else 1, 1))
    if image is not None:
        colorbar_axes = figure.add_axes((0.93, 0.15, 0.012, 0.7))
        figure.colorbar(image, cax=colorbar_axes, label=f"mean P(class {result.classes[1]}) over seeds")

    return save_figure_and_csv(figure, out, "boundaries", result.rows(), dpi)
