"""Matplotlib figures of a study, returned as PNG bytes for the self-contained report."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from reglab.study.summary import StrategySummary  # noqa: E402
from reglab.training.config import format_probability  # noqa: E402


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _curves(runs: Sequence[dict[str, Any]], metric: str) -> np.ndarray:
    """Stack one metric over epochs for several runs, padding stopped runs with NaN."""
    length = max(len(run["history"]) for run in runs)
    values = np.full((len(runs), length), np.nan)
    for i, run in enumerate(runs):
        values[i, : len(run["history"])] = [row[metric] for row in run["history"]]
    return values


def learning_curves(runs_by_strategy: dict[str, list[dict[str, Any]]]) -> bytes:
    """Train and validation accuracy over epochs, one panel per strategy.

    Lines are means over seeds and bands span the lowest to the highest seed. A dotted line
    marks each run's selected epoch when it is not the last one (early stopping).
    """
    names = list(runs_by_strategy)
    columns = min(4, len(names))
    rows = (len(names) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), sharey=True, squeeze=False)

    for ax, name in zip(axes.flat, names):
        runs = runs_by_strategy[name]
        for metric, color, label in (("train_acc", "tab:blue", "train"), ("val_acc", "tab:orange", "validation")):
            values = _curves(runs, metric) * 100
            epochs = np.arange(1, values.shape[1] + 1)
            with np.errstate(all="ignore"):
                ax.plot(epochs, np.nanmean(values, axis=0), color=color, label=label)
                ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.2)
        for run in runs:
            if run["best_epoch"] != len(run["history"]):
                ax.axvline(run["best_epoch"], color="gray", linestyle=":", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (%)")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def gap_curves(runs_by_strategy: dict[str, list[dict[str, Any]]]) -> bytes:
    """Plot the train-validation accuracy gap over epochs, mean over seeds, for all strategies."""
    figure, ax = plt.subplots(figsize=(7, 3.8))
    for name, runs in runs_by_strategy.items():
        values = _curves(runs, "gap") * 100
        with np.errstate(all="ignore"):
            ax.plot(np.arange(1, values.shape[1] + 1), np.nanmean(values, axis=0), label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("train − validation accuracy (points)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return _png(figure)


def test_accuracy(summaries: Sequence[StrategySummary]) -> bytes:
    """Mean test accuracy per strategy with its 95% interval over seeds."""
    figure, ax = plt.subplots(figsize=(7, 0.45 * len(summaries) + 1.2))
    names = [summary.strategy for summary in summaries]
    means = np.array([summary.test_acc.mean for summary in summaries]) * 100
    errors = np.nan_to_num(np.array([summary.test_acc.half_width for summary in summaries]) * 100)
    positions = np.arange(len(names))[::-1]
    ax.errorbar(means, positions, xerr=errors, fmt="o", capsize=4)
    if summaries and summaries[0].strategy == "baseline":
        ax.axvline(means[0], color="gray", linestyle="--", linewidth=1, label="baseline mean")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(positions, names)
    ax.set_xlabel("test accuracy (%), mean and 95% interval over seeds")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def augmentation_grid(images: torch.Tensor, augmented: torch.Tensor) -> bytes:
    """Original images in the top row and their augmented versions below."""
    count = images.shape[0]
    figure, axes = plt.subplots(2, count, figsize=(1.2 * count, 2.7), squeeze=False)
    for row, batch, title in ((0, images, "original"), (1, augmented, "augmented")):
        for column in range(count):
            ax = axes[row, column]
            picture = batch[column].detach().cpu()
            if picture.shape[0] == 1:
                ax.imshow(picture[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(picture.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(title, fontsize=9)
    figure.tight_layout()
    return _png(figure)


def training_size_curves(curves: dict[str, Any]) -> bytes:
    """Train and validation accuracy against the number of training examples, one colour per strategy.

    ``curves`` maps a strategy name to its :class:`~reglab.analysis.learning_curves.LearningCurveResult`.
    Solid lines are training accuracy on the run's own subset, dashed lines validation accuracy.
    With several seeds a line is their mean.
    """
    figure, ax = plt.subplots(figsize=(7, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, curve) in enumerate(curves.items()):
        color = colors[index % len(colors)]
        ax.plot(curve.sizes, curve.train_acc.mean(axis=1) * 100, "o-", color=color, label=f"{name}, train")
        ax.plot(curve.sizes, curve.val_acc.mean(axis=1) * 100, "s--", color=color, label=f"{name}, validation")
    ax.set_xscale("log")
    sizes = sorted({size for curve in curves.values() for size in curve.sizes})
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training examples (count, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return _png(figure)


def mc_dropout_curves(samples: Sequence[int], curves: dict[str, Any]) -> bytes:
    """Validation accuracy and NLL against the number of dropout masks T, one row of panels per strategy.

    ``curves`` maps a strategy name to its :class:`~reglab.study.mc_dropout.StrategyMCCurve`.
    Lines are means over seeds and bands span the seeds. The dashed black line is the
    deterministic, weight-scaled prediction, with its range over seeds shaded grey.
    """
    figure, axes = plt.subplots(len(curves), 2, figsize=(11, 3.6 * len(curves)), squeeze=False)
    t = np.array(samples)
    for row, (name, curve) in enumerate(curves.items()):
        panels = (
            (axes[row, 0], curve.accuracy, curve.deterministic_accuracy, 100.0, "validation accuracy (%)"),
            (axes[row, 1], curve.nll, curve.deterministic_nll, 1.0, "validation NLL (nats per example)"),
        )
        for ax, values, deterministic, scale, label in panels:
            for mean, color, marker in (("arithmetic", "tab:blue", "o"), ("geometric", "tab:orange", "s")):
                scaled = values[mean] * scale
                ax.plot(t, scaled.mean(axis=0), color=color, marker=marker, markersize=4, label=f"MC dropout, {mean} mean")
                ax.fill_between(t, scaled.min(axis=0), scaled.max(axis=0), color=color, alpha=0.2)
            scaled = deterministic * scale
            ax.axhline(scaled.mean(), color="black", linestyle="--", linewidth=1.2, label="deterministic (weight scaling), grey = range over seeds")
            ax.axhspan(scaled.min(), scaled.max(), color="black", alpha=0.08)
            ax.set_xscale("log")
            ax.set_xticks(t, [str(value) for value in t])
            ax.minorticks_off()
            ax.set_xlabel("dropout masks averaged, T (log scale)")
            ax.set_ylabel(label)
            ax.set_title(f"{name}: p = {format_probability(curve.p)}, input p = {curve.input_p:g}, {len(curve.seeds)} seed(s)", fontsize=10)
            ax.grid(alpha=0.3)
        axes[row, 0].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def bias_variance_bars(result: Any) -> bytes:
    """Stacked squared-loss decomposition and the 0-1 loss with its bias and net variance, per strategy.

    ``result`` is a :class:`~reglab.analysis.bias_variance.BiasVarianceResult` whose
    predictions are on the validation split.
    """
    names = [strategy.strategy for strategy in result.strategies]
    x = np.arange(len(names))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    bias = np.array([s.squared.bias_squared for s in result.strategies])
    sample = np.array([s.variance_bootstrap for s in result.strategies])
    seed = np.array([s.variance_seed for s in result.strategies])
    left.bar(x, bias, 0.55, color="tab:blue", label="bias² (includes label noise)")
    left.bar(x, sample, 0.55, bottom=bias, color="tab:orange", label="variance: training sample")
    left.bar(x, seed, 0.55, bottom=bias + sample, color="tab:green", label="variance: seed")
    left.set_ylabel("squared loss per validation example")
    left.set_ylim(0, (bias + sample + seed).max() * 1.5)
    left.set_title("squared loss = bias² + variance", fontsize=10)

    width = 0.27
    loss = np.array([s.zero_one.expected_loss for s in result.strategies]) * 100
    right.bar(x - width, loss, width, color="tab:gray", label="expected error")
    right.bar(x, [s.zero_one.bias * 100 for s in result.strategies], width, color="tab:blue", label="bias")
    net = np.array([s.zero_one.net_variance for s in result.strategies]) * 100
    right.bar(x + width, net, width, color="tab:orange", label="net variance")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylim(min(0.0, net.min() * 1.5), loss.max() * 1.5)
    right.set_ylabel("validation error (%)")
    right.set_title("0-1 loss (Domingos 2000)", fontsize=10)
    for ax in (left, right):
        ax.set_xticks(x, names)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return _png(figure)
