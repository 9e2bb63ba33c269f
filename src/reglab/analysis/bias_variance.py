"""Bias-variance decomposition of a network's test error, per regularization strategy.

Each strategy trains one model for every pair of a bootstrap sample ``b`` of the training
split and a seed ``s``. The bootstrap samples are the same for every strategy and seed, and
the seeds choose the initialization, the minibatch order and the dropout masks. All models
predict the same test points, and :mod:`reglab.analysis.decomposition` splits their error
into bias and variance. Over the ``(b, s)`` grid, the squared-loss variance further splits
into the part due to the training sample and the part due to the seed.

The test set of the one split is opened once, after every model of every strategy is
trained. No model is chosen on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reglab.analysis._common import (
    RunCallback,
    fit_runs,
    resolve_dataset,
    run_config,
    with_training_subset,
)
from reglab.analysis._output import check_seeds, save_figure_and_csv, torch_threads
from reglab.analysis._plot import plt
from reglab.analysis.decomposition import (
    SquaredLossDecomposition,
    ZeroOneLossDecomposition,
    decompose_squared_loss,
    decompose_zero_one_loss,
    draw_bootstrap_indices,
    split_variance,
)
from reglab.data import Dataset, Split, make_split
from reglab.errors import ConfigError
from reglab.study.strategies import resolve_strategies

logger = logging.getLogger(__name__)

SMALL_CHANGE = 0.02
"""Changes of bias² and variance below this share of the baseline's squared loss are reported as small."""


@dataclass(frozen=True)
class StrategyDecomposition:
    """The decompositions of one strategy's test error.

    Attributes:
        strategy: the built-in strategy's name.
        squared: squared loss of the predicted probabilities against one-hot labels.
        zero_one: Domingos's decomposition of the 0-1 loss.
        variance_bootstrap: the part of ``squared.variance`` due to the training sample.
        variance_seed: the part due to initialization, minibatch order and dropout masks.
        fit_error: the test error rate of each single model, shape ``(B, S)``.
    """

    strategy: str
    squared: SquaredLossDecomposition
    zero_one: ZeroOneLossDecomposition
    variance_bootstrap: float
    variance_seed: float
    fit_error: np.ndarray

    def row(self) -> dict[str, Any]:
        """Return the numbers as one flat dict, the CSV row of this strategy."""
        return {
            "strategy": self.strategy,
            "squared_loss": self.squared.expected_loss,
            "squared_bias2": self.squared.bias_squared,
            "squared_variance": self.squared.variance,
            "squared_variance_bootstrap": self.variance_bootstrap,
            "squared_variance_seed": self.variance_seed,
            "zero_one_loss": self.zero_one.expected_loss,
            "zero_one_bias": self.zero_one.bias,
            "zero_one_variance": self.zero_one.variance,
            "zero_one_unbiased_variance": self.zero_one.unbiased_variance,
            "zero_one_biased_variance": self.zero_one.biased_variance,
            "zero_one_net_variance": self.zero_one.net_variance,
            "zero_one_residual": self.zero_one.residual,
            "fit_error_min": float(self.fit_error.min()),
            "fit_error_max": float(self.fit_error.max()),
        }


@dataclass(frozen=True)
class BiasVarianceResult:
    """The decompositions of every strategy, baseline first.

    Attributes:
        dataset: the data set's name.
        model: the model spec.
        bootstraps: the number of bootstrap samples of the training split.
        seeds: the seeds trained on every bootstrap sample.
        test_size: the number of test points.
        strategies: one :class:`StrategyDecomposition` per strategy.
    """

    dataset: str
    model: str
    bootstraps: int
    seeds: list[int]
    test_size: int
    strategies: list[StrategyDecomposition]

    def rows(self) -> list[dict[str, Any]]:
        """Return one CSV row per strategy."""
        return [strategy.row() for strategy in self.strategies]

    def summary(self) -> str:
        """Say, with numbers, whether each strategy moved squared error from variance to bias."""
        baseline = self.strategies[0]
        lines = []
        for other in self.strategies[1:]:
            bias_change = other.squared.bias_squared - baseline.squared.bias_squared
            variance_change = other.squared.variance - baseline.squared.variance
            scale = baseline.squared.expected_loss
            if max(abs(bias_change), abs(variance_change)) < SMALL_CHANGE * scale:
                verdict = f"bias² and variance changed by less than {SMALL_CHANGE:.0%} of the baseline's squared loss"
            elif bias_change > 0 and variance_change < 0:
                verdict = "error moved from variance to bias"
            elif bias_change < 0 and variance_change > 0:
                verdict = "error moved from bias to variance"
            elif bias_change <= 0 and variance_change <= 0:
                verdict = "bias² and variance both fell"
            else:
                verdict = "bias² and variance both rose"
            lines.append(
                f"{other.strategy} against {baseline.strategy}: {verdict}. Squared loss: bias² "
                f"{baseline.squared.bias_squared:.4f} -> {other.squared.bias_squared:.4f}, variance "
                f"{baseline.squared.variance:.4f} -> {other.squared.variance:.4f}. 0-1 loss "
                f"{baseline.zero_one.expected_loss:.4f} -> {other.zero_one.expected_loss:.4f}: bias "
                f"{baseline.zero_one.bias:.4f} -> {other.zero_one.bias:.4f}, net variance "
                f"{baseline.zero_one.net_variance:.4f} -> {other.zero_one.net_variance:.4f}."
            )
        if not lines:
            only = baseline
            lines.append(
                f"{only.strategy}: squared loss {only.squared.expected_loss:.4f} = bias² "
                f"{only.squared.bias_squared:.4f} + variance {only.squared.variance:.4f}."
            )
        return "\n".join(lines)


def bias_variance_decomposition(
    dataset: str | Dataset = "mnist-5k",
    *,
    model: str = "mlp:128",
    strategies: Sequence[str] = ("baseline", "l2", "dropout"),
    bootstraps: int = 5,
    seeds: Sequence[int] = (0, 1),
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 128,
    split_seed: int = 0,
    bootstrap_seed: int = 0,
    device: str = "cpu",
    on_run: RunCallback | None = None,
    batched: bool = True,
    **load_options: Any,
) -> BiasVarianceResult:
    """Train every strategy on every (bootstrap sample, seed) pair and decompose its test error.

    Args:
        dataset: a data set name for :func:`~reglab.data.load_dataset`, or a loaded :class:`~reglab.data.Dataset`.
        model: the model spec.
        strategies: built-in strategy names; the baseline is always included and comes first.
        bootstraps: the number of bootstrap samples of the training split, at least 1; the
            split into bootstrap and seed variance needs at least 2.
        seeds: the seeds trained on each bootstrap sample.
        epochs: epochs of every run.
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        split_seed: the seed of the three-way split.
        bootstrap_seed: seeds the bootstrap draws, made as ``mlxtend`` makes them; see
            :func:`~reglab.analysis.decomposition.draw_bootstrap_indices`.
        device: where to train.
        on_run: called with a description of each run before it starts.
        batched: train the strategies and seeds of one bootstrap sample together with the
            batched engine when :func:`~reglab.training.fit_batched.batching_problem` accepts
            them. The results equal one-at-a-time training up to floating-point rounding.
            Runs it declines train alone. False trains every run alone with
            :func:`~reglab.training.fit.fit`.
        **load_options: passed to :func:`~reglab.data.load_dataset`.

    Returns:
        The :class:`BiasVarianceResult`.

    Raises:
        ConfigError: a strategy is unknown, ``bootstraps`` is below 1 or a seed is invalid.
    """
    seeds = check_seeds("bias_variance_decomposition", seeds)
    if isinstance(bootstraps, bool) or not isinstance(bootstraps, int) or bootstraps < 1:
        raise ConfigError(f"bias_variance_decomposition: bootstraps must be an int >= 1, got {bootstraps!r}.")
    regularizations = resolve_strategies(list(strategies))
    data = resolve_dataset(dataset, **load_options)
    split = make_split(data, seed=split_seed)
    samples = draw_bootstrap_indices(len(split.train.y), bootstraps, bootstrap_seed)

    models: dict[str, list[list[tuple[Split, torch.nn.Module]]]] = {name: [] for name in regularizations}
    for b, sample in enumerate(samples):
        bootstrap_split = with_training_subset(split, sample)
        runs = [(name, seed) for name in regularizations for seed in seeds]
        configs = [
            run_config(
                dataset=data.name,
                model=model,
                strategy=name,
                regularization=regularizations[name],
                seed=seed,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
            )
            for name, seed in runs
        ]
        if on_run is not None:
            for name, seed in runs:
                on_run(f"{name}, bootstrap {b}, seed {seed}")
        # Small models train many times faster on one thread than on a contended CPU's threads.
        with torch_threads(1):
            results = fit_runs(
                configs, [bootstrap_split] * len(configs), device=device, evaluate_test=False, batched=batched
            )
        for name in regularizations:
            models[name].append([])
        for (name, _), result in zip(runs, results):
            models[name][b].append((bootstrap_split, result.model))

    test = split.test.open(f"bias-variance decomposition of {', '.join(regularizations)}")
    targets = test.y.cpu().numpy()
    decompositions = [
        decompose_strategy(name, predict_grid(grid, test.x), targets) for name, grid in models.items()
    ]
    return BiasVarianceResult(
        dataset=data.name,
        model=configs[0].model,
        bootstraps=bootstraps,
        seeds=seeds,
        test_size=len(targets),
        strategies=decompositions,
    )


@torch.no_grad()
def predict_grid(grid: list[list[tuple[Split, torch.nn.Module]]], x: torch.Tensor) -> np.ndarray:
    """Return the class probabilities of every model in eval mode, shape ``(B, S, N, K)``."""
    probabilities = []
    for row in grid:
        row_probabilities = []
        for bootstrap_split, model in row:
            model.eval()
            device = next(model.parameters()).device
            logits = model(bootstrap_split.normalize(x.to(device)))
            row_probabilities.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        probabilities.append(row_probabilities)
    return np.array(probabilities)


def decompose_strategy(name: str, probabilities: np.ndarray, targets: np.ndarray) -> StrategyDecomposition:
    """Decompose one strategy's error from its class probabilities of shape ``(B, S, N, K)``.

    ``B`` bootstrap samples times ``S`` seeds of predictions on ``N`` examples with ``K``
    classes; ``targets`` holds the ``N`` true labels.
    """
    bootstraps, seeds, n, k = probabilities.shape
    flat = probabilities.reshape(bootstraps * seeds, n, k)
    labels = flat.argmax(axis=2)

    squared = decompose_squared_loss(flat, targets)
    variance_bootstrap, variance_seed = split_variance(probabilities)
    # Law of total variance: the two parts must add up to the total.
    if abs(variance_bootstrap + variance_seed - squared.variance) > 1e-9:
        raise RuntimeError(
            f"{name}: bootstrap variance {variance_bootstrap} + seed variance {variance_seed} != "
            f"variance {squared.variance}."
        )
    fit_error = (labels != targets).mean(axis=1).reshape(bootstraps, seeds)
    return StrategyDecomposition(
        strategy=name,
        squared=squared,
        zero_one=decompose_zero_one_loss(labels, targets),
        variance_bootstrap=variance_bootstrap,
        variance_seed=variance_seed,
        fit_error=fit_error,
    )


def plot_bias_variance(result: BiasVarianceResult, out: Path) -> list[Path]:
    """Draw both decompositions per strategy; write PNG, SVG and the CSV.

    The left panel stacks bias² and the two variance parts of the squared loss. The right
    panel shows the 0-1 loss next to its bias and net variance. The error bar on the loss
    spans the lowest to the highest error of a single model.

    Returns:
        The paths written: ``bias_variance.png``, ``bias_variance.svg`` and ``bias_variance.csv``.
    """
    names = [strategy.strategy for strategy in result.strategies]
    x = np.arange(len(names))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.set_xticks(x, names)
        ax.set_xlabel("strategy")

    bias = np.array([s.squared.bias_squared for s in result.strategies])
    boot = np.array([s.variance_bootstrap for s in result.strategies])
    seed = np.array([s.variance_seed for s in result.strategies])
    left.bar(x, bias, width=0.6, color="tab:blue", label="bias² (includes label noise)")
    left.bar(x, boot, width=0.6, bottom=bias, color="tab:orange", label="variance: training sample")
    left.bar(x, seed, width=0.6, bottom=bias + boot, color="tab:green", label="variance: seed")
    left.set_ylabel("squared loss per test point (probabilities vs one-hot)")
    left.set_title("Squared loss = bias² + variance", fontsize=10)
    left.set_ylim(0, (bias + boot + seed).max() * 1.45)
    left.legend(loc="upper left", fontsize=8)

    width = 0.26
    loss = np.array([s.zero_one.expected_loss for s in result.strategies]) * 100
    low = np.array([s.fit_error.min() for s in result.strategies]) * 100
    high = np.array([s.fit_error.max() for s in result.strategies]) * 100
    net_variance = np.array([s.zero_one.net_variance for s in result.strategies]) * 100
    right.bar(x - width, loss, width, color="tab:gray", label="expected error (bar: single models' range)")
    right.errorbar(x - width, loss, yerr=[loss - low, high - loss], fmt="none", color="black", capsize=3)
    right.bar(x, [s.zero_one.bias * 100 for s in result.strategies], width, color="tab:blue", label="bias")
    right.bar(x + width, net_variance, width, color="tab:orange", label="net variance (unbiased − biased)")
    right.set_ylabel("test error (%)")
    right.set_title("0-1 loss (Domingos 2000)", fontsize=10)
    # Net variance is negative when biased points vary more than unbiased ones.
    right.set_ylim(min(0.0, net_variance.min() * 1.5), max(high.max(), loss.max()) * 1.45)
    right.axhline(0, color="black", linewidth=0.8)
    right.legend(loc="upper left", fontsize=8)

    figure.suptitle(
        f"Bias-variance: {result.model} on {result.dataset}, {result.bootstraps} bootstrap samples × "
        f"{len(result.seeds)} seeds, {result.test_size} test points",
        fontsize=11,
    )
    figure.tight_layout()
    return save_figure_and_csv(figure, out, "bias_variance", result.rows())
