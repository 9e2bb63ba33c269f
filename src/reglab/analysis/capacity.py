"""Model capacity: a sweep over the width and depth of an unregularized MLP.

For each size and seed, a network is trained with :func:`reglab.training.fit` without
opening the test set, and the analysis records:

* training and validation accuracy, and their gap (training minus validation).
* the fraction of dead ReLUs per hidden layer: units whose output is 0 for every training
  example, measured in eval mode on the normalized training inputs after training.
* the L2 norm of each layer's weight matrix, from :func:`reglab.penalties.weight_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reglab._validation import check_int, check_positive
from reglab.analysis._output import DEFAULT_DPI, band, check_seeds, save_figure_and_csv, torch_threads
from reglab.errors import ConfigError
from reglab.penalties import weight_report
from reglab.training.diagnostics import dead_relu_fractions


@dataclass(frozen=True)
class CapacityRun:
    """One trained size and seed.

    Attributes:
        width: units per hidden layer.
        depth: number of hidden layers.
        seed: the run's seed, which also chooses the split.
        n_params: number of trainable parameters.
        train_acc: training accuracy.
        val_acc: validation accuracy.
        dead_fraction: fraction of dead ReLUs in each hidden layer, ``depth`` values in [0, 1].
        weight_norms: L2 norm of each layer's weight matrix, ``depth + 1`` values (the hidden
            layers, then the output layer).
    """

    width: int
    depth: int
    seed: int
    n_params: int
    train_acc: float
    val_acc: float
    dead_fraction: list[float]
    weight_norms: list[float]

    @property
    def gap(self) -> float:
        """Training minus validation accuracy."""
        return self.train_acc - self.val_acc


@dataclass(frozen=True)
class CapacityResult:
    """Every run of the sweep.

    Attributes:
        dataset: the data set's name.
        widths: the widths, increasing.
        depths: the depths, increasing.
        seeds: the seeds.
        epochs: training epochs per run.
        runs: one :class:`CapacityRun` per depth, width and seed, in that order.
    """

    dataset: str
    widths: list[int]
    depths: list[int]
    seeds: list[int]
    epochs: int
    runs: list[CapacityRun]

    def select(self, width: int, depth: int) -> list[CapacityRun]:
        """Return the runs of one size, one per seed."""
        return [run for run in self.runs if run.width == width and run.depth == depth]

    def metric(self, depth: int, name: str) -> np.ndarray:
        """Return a run attribute such as ``"train_acc"`` for one depth, shape ``(seeds, widths)``.

        A per-layer attribute such as ``"dead_fraction"`` adds a last dimension, one entry per layer.
        """
        values = np.array([[getattr(run, name) for run in self.select(width, depth)] for width in self.widths])
        return np.swapaxes(values, 0, 1)

    def rows(self) -> list[dict[str, float | int | str]]:
        """Return one CSV row per run and layer. The output layer has no dead-ReLU fraction."""
        rows: list[dict[str, float | int | str]] = []
        for run in self.runs:
            for layer, norm in enumerate(run.weight_norms, start=1):
                hidden = layer <= run.depth
                rows.append(
                    {
                        "width": run.width,
                        "depth": run.depth,
                        "seed": run.seed,
                        "n_params": run.n_params,
                        "train_acc": run.train_acc,
                        "val_acc": run.val_acc,
                        "gap": run.gap,
                        "layer": layer,
                        "layer_kind": "hidden" if hidden else "output",
                        "dead_relu_fraction": run.dead_fraction[layer - 1] if hidden else "",
                        "weight_l2_norm": norm,
                    }
                )
        return rows


def capacity_sweep(
    dataset: str = "mnist-5k",
    *,
    widths: Sequence[int] = (16, 64, 256, 1024),
    depths: Sequence[int] = (1, 2),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 15,
    lr: float = 0.05,
    batch_size: int = 128,
    data_dir: str | None = None,
    threads: int | None = 1,
    batched: bool = True,
) -> CapacityResult:
    """Train an unregularized MLP for every width, depth and seed, and measure it.

    Args:
        dataset: a data set name, e.g. ``"mnist-5k"`` or ``"digits"``.
        widths: units per hidden layer, each >= 1.
        depths: numbers of hidden layers, each >= 1. Every hidden layer has the same width.
        seeds: one run per size and seed. The seed also chooses the split.
        epochs: training epochs per run (no early stopping).
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        data_dir: the folder that ``load_dataset`` searches for files.
        threads: torch CPU threads during the analysis, or None to keep the current setting.
            Defaults to 1, because on a CPU shared with other processes these models
            trained several times faster on one thread than on two.
        batched: train the seeds of each width and depth together with the batched
            engine, each on its own split. The results equal one-at-a-time training up to
            floating-point rounding. Different architectures train in separate calls.
            False trains every run alone with :func:`~reglab.training.fit.fit`.

    Returns:
        The :class:`CapacityResult`.

    Raises:
        ConfigError: an argument is out of range.
    """
    from reglab.analysis._common import fit_runs
    from reglab.data import load_dataset, make_split
    from reglab.training.config import RunConfig, validate

    owner = "capacity_sweep"
    seeds = check_seeds(owner, seeds)
    widths = sorted({check_int(owner, "width", width, minimum=1) for width in widths})
    depths = sorted({check_int(owner, "depth", depth, minimum=1) for depth in depths})
    if not widths or not depths:
        raise ConfigError(f"{owner}: widths and depths must each contain at least one value, got {widths} and {depths}.")
    epochs = check_int(owner, "epochs", epochs, minimum=1)
    lr = check_positive(owner, "lr", lr)
    if threads is not None:
        threads = check_int(owner, "threads", threads, minimum=1)
    data = load_dataset(dataset, data_dir=data_dir)

    grid = [(depth, width, seed) for depth in depths for width in widths for seed in seeds]
    configs = [
        validate(
            RunConfig,
            {
                "dataset": dataset,
                "model": "mlp:" + ",".join([str(width)] * depth),
                "strategy": "baseline",
                "optimizer": {"lr": lr},
                "batch_size": batch_size,
                "epochs": epochs,
                "seed": seed,
            },
        )
        for depth, width, seed in grid
    ]
    # The test set stays sealed, so the runs of one seed can share that seed's split.
    splits = {
        seed: make_split(data, seed=seed, val_fraction=configs[0].val_fraction, test_fraction=configs[0].test_fraction)
        for seed in seeds
    }
    runs = []
    with torch_threads(threads or torch.get_num_threads()):
        # Each architecture is its own batched call, because the engine's members share one shape.
        results = fit_runs(configs, [splits[seed] for _, _, seed in grid], evaluate_test=False, batched=batched)
        for (depth, width, seed), result in zip(grid, results):
            model = result.model
            runs.append(
                CapacityRun(
                    width=width,
                    depth=depth,
                    seed=seed,
                    n_params=sum(param.numel() for param in model.parameters()),
                    train_acc=result.final_metrics["train_acc"],
                    val_acc=result.final_metrics["val_acc"],
                    dead_fraction=dead_relu_fractions(model, splits[seed].normalize(splits[seed].train.x)),
                    weight_norms=[stats.l2_norm for stats in weight_report(model)],
                )
            )
    return CapacityResult(dataset=data.name, widths=widths, depths=depths, seeds=seeds, epochs=epochs, runs=runs)


def render_capacity(result: CapacityResult, out: Path, dpi: int = DEFAULT_DPI) -> list[Path]:
    """Draw accuracy, gap, dead ReLUs and weight norms against width, and write PNG, SVG and the CSV."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    widths = np.array(result.widths)
    colors = plt.get_cmap("tab10").colors
    styles = ("-", "--", ":", "-.")

    def plot(ax, values: np.ndarray, color, style: str, label: str, marker: str = "o") -> None:
        mean, low, high = band(values)
        ax.plot(widths, mean, color=color, linestyle=style, marker=marker, markersize=4, label=label)
        ax.fill_between(widths, low, high, color=color, alpha=0.15)

    for index, depth in enumerate(result.depths):
        color = colors[index % 10]
        name = f"{depth} hidden layer{'s' if depth > 1 else ''}"
        plot(axes[0, 0], result.metric(depth, "train_acc") * 100, color, "--", f"{name}: train", marker="s")
        plot(axes[0, 0], result.metric(depth, "val_acc") * 100, color, "-", f"{name}: validation")
        plot(axes[0, 1], result.metric(depth, "gap") * 100, color, "-", name)
        dead = result.metric(depth, "dead_fraction")
        norms = result.metric(depth, "weight_norms")
        for layer in range(depth + 1):
            style = styles[layer % len(styles)]
            if layer < depth:
                plot(axes[1, 0], dead[:, :, layer] * 100, color, style, f"{name}: hidden layer {layer + 1}")
            label = f"{name}: {'output layer' if layer == depth else f'hidden layer {layer + 1}'}"
            plot(axes[1, 1], norms[:, :, layer], color, style, label)

    titles = (
        ("Accuracy", "accuracy (%)"),
        ("Generalization gap", "train − validation accuracy (points)"),
        ("Dead ReLUs (never active on the training set)", "dead units (% of the layer)"),
        ("Weight norm per layer (from weight_report)", "Frobenius norm of the weight matrix (no unit)"),
    )
    for ax, (title, label) in zip(axes.flat, titles):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths)
        ax.set_xticklabels([str(width) for width in widths])
        ax.set_xlabel("units per hidden layer (log scale)")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="best")
    # A small margin below 0 keeps layers without dead units visible on the bottom edge.
    top = axes[1, 0].get_ylim()[1]
    axes[1, 0].set_ylim(-0.03 * top, top)

    seeds = len(result.seeds)
    figure.suptitle(
        f"Capacity sweep on {result.dataset}: unregularized MLPs, {result.epochs} epochs of SGD, "
        f"mean over {seeds} seed{'s' if seeds > 1 else ''}, band = range",
        fontsize=11,
    )
    figure.tight_layout()
    return save_figure_and_csv(figure, out, "capacity", result.rows(), dpi)
