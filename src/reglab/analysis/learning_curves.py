"""Learning curves: train and test accuracy against the number of training examples.

Every point trains one model on a stratified, seeded subsample of the training split and
evaluates it on the test set. The test set is the same for every point, because each run
gets a fresh :class:`~reglab.data.Split` from :func:`~reglab.data.make_split` with the same
``split_seed``. Each of these split objects opens its sealed test set exactly once, after
training. The seeds vary the subsample, the initialization and the minibatch order.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reglab.analysis._common import (
    RunCallback,
    fit_runs,
    resolve_dataset,
    run_config,
    stratified_subsample,
    with_training_subset,
)
from reglab.analysis._output import check_seeds, save_figure_and_csv, torch_threads
from reglab.analysis._plot import new_figure, plot_band
from reglab.data import Dataset, make_split
from reglab.errors import ConfigError
from reglab.study.strategies import resolve_strategies

logger = logging.getLogger(__name__)

DEFAULT_SMALLEST_SIZE = 300
DEFAULT_NUM_SIZES = 6


@dataclass(frozen=True)
class LearningCurveResult:
    """Accuracies of a learning curve, one row per training-set size and one column per seed.

    Attributes:
        dataset: the data set's name.
        model: the model spec.
        strategy: the built-in strategy every run used.
        sizes: the training-set sizes in examples, ascending.
        seeds: the seeds, one per column.
        train_size: the number of examples in the full training split.
        epochs: the epochs each size trained for, one per size.
        train_acc: accuracy on the run's own training subset, in eval mode, shape ``(P, S)``.
        val_acc: accuracy on the validation split, shape ``(P, S)``.
        test_acc: accuracy on the test set, the same examples for every run, shape ``(P, S)``.
    """

    dataset: str
    model: str
    strategy: str
    sizes: list[int]
    seeds: list[int]
    train_size: int
    epochs: list[int]
    train_acc: np.ndarray
    val_acc: np.ndarray
    test_acc: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Train minus test accuracy per run, shape ``(P, S)``."""
        return self.train_acc - self.test_acc

    def rows(self) -> list[dict[str, Any]]:
        """Return one dict per run: ``size``, ``seed``, ``epochs``, ``train_acc``, ``val_acc``, ``test_acc``, ``gap``."""
        rows = []
        for i, size in enumerate(self.sizes):
            for j, seed in enumerate(self.seeds):
                rows.append(
                    {
                        "size": size,
                        "seed": seed,
                        "epochs": self.epochs[i],
                        "train_acc": float(self.train_acc[i, j]),
                        "val_acc": float(self.val_acc[i, j]),
                        "test_acc": float(self.test_acc[i, j]),
                        "gap": float(self.gap[i, j]),
                    }
                )
        return rows

    def summary(self) -> str:
        """Describe, with numbers, how the mean accuracies and the gap change from the smallest to the largest size."""
        train = self.train_acc.mean(axis=1) * 100
        test = self.test_acc.mean(axis=1) * 100
        gap = self.gap.mean(axis=1) * 100
        first, last = self.sizes[0], self.sizes[-1]
        return (
            f"From {first} to {last} training examples (mean of {len(self.seeds)} seeds), training accuracy "
            f"{_moved(train[0], train[-1])} from {train[0]:.1f}% to {train[-1]:.1f}%, test accuracy "
            f"{_moved(test[0], test[-1])} from {test[0]:.1f}% to {test[-1]:.1f}%, and the train-test gap "
            f"{_moved(gap[0], gap[-1], 'widened', 'narrowed')} from {gap[0]:.1f} to {gap[-1]:.1f} points."
        )


def _run_epochs(epochs: int, size: int, train_size: int) -> int:
    return max(epochs, math.ceil(epochs * train_size / size))


def _moved(start: float, end: float, up: str = "rose", down: str = "fell") -> str:
    if np.isclose(start, end, atol=0.05):
        return "stayed"
    return up if end > start else down


def resolve_sizes(sizes: Sequence[int | float] | None, train_size: int) -> list[int]:
    """Turn counts and fractions into ascending, distinct example counts.

    An int is a number of examples. A float in (0, 1] is a fraction of the training split,
    rounded to the nearest count, so ``1.0`` is the whole split. None gives
    ``DEFAULT_NUM_SIZES`` sizes spaced evenly on a log scale from ``DEFAULT_SMALLEST_SIZE``
    (or the whole split, when that is smaller) to the whole split.

    Raises:
        ConfigError: a size is not positive, a fraction is above 1 or a count is above
            ``train_size``.
    """
    if sizes is None:
        smallest = min(DEFAULT_SMALLEST_SIZE, train_size)
        sizes = [int(round(value)) for value in np.geomspace(smallest, train_size, DEFAULT_NUM_SIZES)]

    if len(sizes) == 0:
        raise ConfigError("learning_curve: sizes must contain at least one size, got an empty list.")
    counts = []
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
            raise ConfigError(f"learning_curve: each size must be an int count or a float fraction, got {size!r}.")
        if isinstance(size, (float, np.floating)):
            if not 0.0 < size <= 1.0:
                raise ConfigError(
                    f"learning_curve: a fractional size must be in (0, 1] (a share of the {train_size} "
                    f"training examples), got {size!r}. Write counts as integers, e.g. 300."
                )
            count = max(int(round(size * train_size)), 1)
        else:
            count = int(size)
        if count <= 0 or count > train_size:
            raise ConfigError(
                f"learning_curve: a size must be between 1 and the training split's {train_size} examples, "
                f"got {size!r}."
            )
        counts.append(count)

    distinct = sorted(set(counts))
    if len(distinct) < len(counts):
        warnings.warn(
            f"learning_curve: some sizes are the same number of examples and are trained once: {counts} -> {distinct}.",
            stacklevel=3,
        )
    return distinct


def learning_curve(
    dataset: str | Dataset = "mnist-5k",
    *,
    model: str = "softmax",
    strategy: str = "baseline",
    sizes: Sequence[int | float] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 20,
    match_steps: bool = True,
    lr: float = 0.05,
    batch_size: int = 128,
    split_seed: int = 0,
    device: str = "cpu",
    on_run: RunCallback | None = None,
    batched: bool = True,
    **load_options: Any,
) -> LearningCurveResult:
    """Train on growing stratified subsets of the training split and measure train and test accuracy.

    Args:
        dataset: a data set name for :func:`~reglab.data.load_dataset`, or a loaded :class:`~reglab.data.Dataset`.
        model: the model spec, ``softmax`` or ``mlp:W1,W2,...``.
        strategy: one built-in strategy name, e.g. ``baseline`` or ``l2``.
        sizes: training-set sizes as int counts or float fractions in (0, 1]; see
            :func:`resolve_sizes`. None: six sizes from about 300 to the whole split.
        seeds: one run per seed and size; a seed chooses the subsample, the initialization
            and the minibatch order.
        epochs: epochs of the run on the whole training split. With ``match_steps`` a
            subset of ``n`` of the ``N`` examples trains for ``ceil(epochs * N / n)``
            epochs, so every run takes about the same number of minibatch steps and small
            subsets are trained as far as large ones. Without it, every run trains for
            ``epochs`` epochs and small subsets get fewer steps.
        match_steps: scale the epochs of each run as described under ``epochs``.

            NOTE: the fit loop evaluates the validation split after every epoch, so a
            tiny subset of a large data set (300 of fashion-mnist's 48,000) spends most of
            its time on those evaluations.
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        split_seed: the seed of the three-way split, the same for every run so that the
            validation and test sets never change.
        device: where to train.
        on_run: called with a description of each run before it starts.
        batched: train the seeds of one size together with the batched engine, each on
            its own subset, when :func:`~reglab.training.fit_batched.batching_problem`
            accepts them. The results equal one-at-a-time training up to floating-point
            rounding. Sizes differ in steps per epoch, so each size is its own call. False
            trains every run alone with :func:`~reglab.training.fit.fit`.
        **load_options: passed to :func:`~reglab.data.load_dataset`, e.g. ``data_dir``.

    Returns:
        The :class:`LearningCurveResult`.

    Raises:
        ConfigError: a size is invalid or too small to hold every class, a seed is invalid,
            or a setting of the runs is out of range.
    """
    seeds = check_seeds("learning_curve", seeds)
    regularization = resolve_strategies([strategy])[strategy]
    data = resolve_dataset(dataset, **load_options)
    labels = make_split(data, seed=split_seed).train.y.cpu().numpy()
    counts = resolve_sizes(sizes, len(labels))
    # Check every size before the first run, so a bad size fails at once.
    subsets = {
        (size, seed): stratified_subsample(labels, size, seed=seed, classes=data.classes)
        for size in counts
        for seed in seeds
    }

    shape = (len(counts), len(seeds))
    train_acc, val_acc, test_acc = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    run_epochs = [0] * len(counts)
    for i, size in enumerate(counts):
        configs = [
            run_config(
                dataset=data.name,
                model=model,
                strategy=strategy,
                regularization=regularization,
                seed=seed,
                epochs=_run_epochs(epochs, size, len(labels)) if match_steps else epochs,
                lr=lr,
                batch_size=batch_size,
            )
            for seed in seeds
        ]
        run_epochs[i] = configs[0].epochs
        if on_run is not None:
            for seed in seeds:
                on_run(f"size {size}, seed {seed}, {run_epochs[i]} epochs")
        # A fresh split per run, because every run opens its sealed test set once.
        splits = [with_training_subset(make_split(data, seed=split_seed), subsets[(size, seed)]) for seed in seeds]
        # Small models train many times faster on one thread than on a contended CPU's threads.
        with torch_threads(1):
            results = fit_runs(configs, splits, device=device, batched=batched)
        for j, (seed, result) in enumerate(zip(seeds, results)):
            train_acc[i, j] = result.final_metrics["train_acc"]
            val_acc[i, j] = result.final_metrics["val_acc"]
            test_acc[i, j] = result.test_metrics["test_acc"]
            logger.info("learning curve: size %d, seed %d, test_acc %.4f", size, seed, test_acc[i, j])

    return LearningCurveResult(
        dataset=data.name,
        model=configs[0].model,
        strategy=strategy,
        sizes=counts,
        seeds=seeds,
        train_size=len(labels),
        epochs=run_epochs,
        train_acc=train_acc,
        val_acc=val_acc,
        test_acc=test_acc,
    )


def plot_learning_curve(result: LearningCurveResult, out: Path) -> list[Path]:
    """Draw train and test accuracy against the training-set size; write PNG, SVG and the CSV.

    Returns:
        The paths written: ``learning_curve.png``, ``learning_curve.svg`` and ``learning_curve.csv``.
    """
    figure, ax = new_figure()
    plot_band(ax, result.sizes, result.train_acc * 100, color="tab:blue", label="train (own subset)")
    plot_band(ax, result.sizes, result.test_acc * 100, color="tab:orange", label="test (fixed set)")
    ax.set_xscale("log")
    ax.set_xticks(result.sizes, [str(size) for size in result.sizes])
    ax.minorticks_off()
    ax.set_xlabel("training examples (count, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(
        f"Learning curve: {result.model} on {result.dataset}, {result.strategy}\n"
        f"mean of {len(result.seeds)} seeds, band = lowest to highest seed",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=9)
    return save_figure_and_csv(figure, out, "learning_curve", result.rows())
