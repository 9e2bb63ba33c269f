"""Validation curves: train and validation accuracy against one regularization strength.

Each value of the strength trains one model per seed on the same split, with no other
regularizer. The sealed test set is never opened, because the curve is used to choose the
strength, and choosing on test data would make the test estimate optimistic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reglab.analysis._common import RunCallback, fit_runs, resolve_dataset, run_config
from reglab.analysis._output import check_seeds, save_figure_and_csv, torch_threads
from reglab.analysis._plot import new_figure, plot_band
from reglab.data import Dataset, make_split
from reglab.errors import ConfigError
from reglab.training.config import StrategyConfig, validate

logger = logging.getLogger(__name__)

PARAMS: dict[str, str] = {
    "l2": "L2 strength λ (adds λ/2·Σw² to the mean loss)",
    "l1": "L1 strength λ (adds λ·Σ|w| to the mean loss)",
    "dropout": "dropout probability p after hidden layers",
    "dropconnect": "DropConnect probability p on hidden-layer weights",
    "max-norm": "max-norm bound c on each unit's incoming weight vector",
}
"""The strengths a validation curve can vary, with the axis label of each."""


@dataclass(frozen=True)
class ValidationCurveResult:
    """Accuracies of a validation curve, one row per strength and one column per seed.

    Attributes:
        dataset: the data set's name.
        model: the model spec.
        param: the strength varied: ``l2``, ``l1``, ``dropout``, ``dropconnect`` or ``max-norm``.
        values: the strengths, in the order given.
        seeds: the seeds, one per column.
        train_acc: accuracy on the training split, in eval mode, shape ``(V, S)``.
        val_acc: accuracy on the validation split, shape ``(V, S)``.
    """

    dataset: str
    model: str
    param: str
    values: list[float]
    seeds: list[int]
    train_acc: np.ndarray
    val_acc: np.ndarray

    @property
    def best_index(self) -> int:
        """Position of the value with the highest mean validation accuracy; the first one on ties."""
        return int(np.argmax(self.val_acc.mean(axis=1)))

    @property
    def best_value(self) -> float:
        """The strength with the highest mean validation accuracy over seeds."""
        return self.values[self.best_index]

    def rows(self) -> list[dict[str, Any]]:
        """Return one dict per run: ``param``, ``value``, ``seed``, ``train_acc``, ``val_acc``, ``gap``, ``best``."""
        rows = []
        for i, value in enumerate(self.values):
            for j, seed in enumerate(self.seeds):
                rows.append(
                    {
                        "param": self.param,
                        "value": value,
                        "seed": seed,
                        "train_acc": float(self.train_acc[i, j]),
                        "val_acc": float(self.val_acc[i, j]),
                        "gap": float(self.train_acc[i, j] - self.val_acc[i, j]),
                        "best": i == self.best_index,
                    }
                )
        return rows

    def summary(self) -> str:
        """Name the best value and compare it with the weakest and strongest values."""
        train = self.train_acc.mean(axis=1) * 100
        val = self.val_acc.mean(axis=1) * 100
        best = self.best_index
        low, high = int(np.argmin(self.values)), int(np.argmax(self.values))
        return (
            f"Best {self.param} on validation: {self.values[best]:.3g} with {val[best]:.1f}% validation accuracy "
            f"(mean of {len(self.seeds)} seeds; train {train[best]:.1f}%). At {self.param}={self.values[low]:g}: "
            f"train {train[low]:.1f}%, validation {val[low]:.1f}%. At {self.param}={self.values[high]:g}: "
            f"train {train[high]:.1f}%, validation {val[high]:.1f}%."
        )


def strength_grid(kind: str, minimum: float, maximum: float, num: int) -> list[float]:
    """Return ``num`` strengths from ``minimum`` to ``maximum``, evenly spaced on a log or linear scale.

    Raises:
        ConfigError: ``kind`` is not ``log`` or ``linear``, ``num`` is below 2, ``minimum``
            is not below ``maximum``, or a log grid has ``minimum <= 0``.
    """
    if kind not in ("log", "linear"):
        raise ConfigError(f"validation_curve: grid must be 'log' or 'linear', got {kind!r}.")
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ConfigError(f"validation_curve: num must be an int >= 2, got {num!r}.")
    if not minimum < maximum:
        raise ConfigError(f"validation_curve: min must be below max, got min={minimum!r} and max={maximum!r}.")
    if kind == "log":
        if minimum <= 0:
            raise ConfigError(
                f"validation_curve: a log grid needs min > 0, got min={minimum!r}. Use --grid linear, "
                "or list 0 explicitly with --values."
            )
        return [float(value) for value in np.geomspace(minimum, maximum, num)]
    return [float(value) for value in np.linspace(minimum, maximum, num)]


def strategy_for(param: str, value: float) -> StrategyConfig:
    """Return the strategy that sets only ``param`` to ``value``.

    ``dropout`` sets the drop probability after hidden layers and keeps the input
    undropped. ``dropconnect`` sets the probability that a weight of a fully connected
    hidden layer is zeroed. A dropout, DropConnect or max-norm value of 0 means that
    regularizer is off.

    Raises:
        ConfigError: ``param`` is unknown or ``value`` is out of its range.
    """
    if param not in PARAMS:
        raise ConfigError(f"validation_curve: param must be one of {', '.join(PARAMS)}, got {param!r}.")
    if param == "dropout":
        settings: dict[str, Any] = {"dropout": {"p": value, "input_p": 0.0}} if value > 0 else {}
    elif param == "dropconnect":
        settings = {"dropconnect": {"p": value}} if value > 0 else {}
    elif param == "max-norm":
        settings = {"max_norm": value} if value != 0 else {}
    else:
        settings = {param: value}
    return validate(StrategyConfig, settings, "validation_curve")


def validation_curve(
    dataset: str | Dataset = "mnist-5k",
    *,
    model: str = "mlp:256",
    param: str = "l2",
    values: Sequence[float] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 20,
    lr: float = 0.05,
    batch_size: int = 128,
    split_seed: int = 0,
    device: str = "cpu",
    on_run: RunCallback | None = None,
    batched: bool = True,
    **load_options: Any,
) -> ValidationCurveResult:
    """Train one model per strength and seed and measure train and validation accuracy.

    Args:
        dataset: a data set name for :func:`~reglab.data.load_dataset`, or a loaded :class:`~reglab.data.Dataset`.
        model: the model spec; dropout and DropConnect need at least one hidden layer.
        param: the strength to vary, a key of :data:`PARAMS`.
        values: the strengths, or None for :func:`default_values`: seven values from 1e-5
            to 1e-1 on a log scale for ``l2`` and ``l1``, 0 to 0.8 in steps of 0.1 for
            ``dropout`` and ``dropconnect``, and five values from 0.5 to 8 on a log scale for ``max-norm``.
        seeds: one run per seed and value; a seed chooses the initialization, the
            minibatch order and the dropout masks.
        epochs: epochs of every run, without early stopping.
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        split_seed: the seed of the three-way split, the same for every run.
        device: where to train.
        on_run: called with a description of each run before it starts.
        batched: train the values of one seed together with the batched engine when
            :func:`~reglab.training.fit_batched.batching_problem` accepts them. The results
            equal one-at-a-time training up to floating-point rounding. False trains every
            run alone with :func:`~reglab.training.fit.fit`.
        **load_options: passed to :func:`~reglab.data.load_dataset`.

    Returns:
        The :class:`ValidationCurveResult`; ``best_value`` is the value with the highest
        mean validation accuracy.

    Raises:
        ConfigError: ``param`` is unknown, a value is out of range, or a seed is invalid.
    """
    seeds = check_seeds("validation_curve", seeds)
    values = list(default_values(param) if values is None else values)
    if not values:
        raise ConfigError("validation_curve: values must contain at least one strength, got an empty list.")
    strategies = [strategy_for(param, float(value)) for value in values]
    data = resolve_dataset(dataset, **load_options)

    shape = (len(values), len(seeds))
    train_acc, val_acc = np.zeros(shape), np.zeros(shape)
    for j, seed in enumerate(seeds):
        configs = [
            run_config(
                dataset=data.name,
                model=model,
                strategy=f"{param}={value:g}",
                regularization=regularization,
                seed=seed,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
            )
            for value, regularization in zip(values, strategies)
        ]
        if on_run is not None:
            for value in values:
                on_run(f"{param}={value:g}, seed {seed}")
        # The test set stays sealed, so every run of this seed can share one split.
        split = make_split(data, seed=split_seed)
        # Small models train many times faster on one thread than on a contended CPU's threads.
        with torch_threads(1):
            results = fit_runs(
                configs, [split] * len(configs), device=device, evaluate_test=False, batched=batched
            )
        for i, (value, result) in enumerate(zip(values, results)):
            train_acc[i, j] = result.final_metrics["train_acc"]
            val_acc[i, j] = result.final_metrics["val_acc"]
            logger.info("validation curve: %s=%g, seed %d, val_acc %.4f", param, value, seed, val_acc[i, j])

    return ValidationCurveResult(
        dataset=data.name,
        model=configs[0].model,
        param=param,
        values=[float(value) for value in values],
        seeds=seeds,
        train_acc=train_acc,
        val_acc=val_acc,
    )


def default_values(param: str) -> list[float]:
    """Return the strengths a validation curve of ``param`` uses when none are given."""
    if param in ("l2", "l1"):
        return strength_grid("log", 1e-5, 1e-1, 7)
    if param in ("dropout", "dropconnect"):
        return [round(0.1 * step, 1) for step in range(9)]
    if param == "max-norm":
        return strength_grid("log", 0.5, 8.0, 5)
    raise ConfigError(f"validation_curve: param must be one of {', '.join(PARAMS)}, got {param!r}.")


def plot_validation_curve(result: ValidationCurveResult, out: Path) -> list[Path]:
    """Draw train and validation accuracy against the strength and mark the best value.

    The x axis is logarithmic when the positive values span more than a factor of 10 (a
    symmetric log scale when 0 is among the values), and linear otherwise.

    Returns:
        The paths written: ``validation_curve.png``, ``validation_curve.svg`` and ``validation_curve.csv``.
    """
    values = np.array(result.values)
    order = np.argsort(values)
    x = values[order]
    figure, ax = new_figure()
    plot_band(ax, x, result.train_acc[order] * 100, color="tab:blue", label="train")
    plot_band(ax, x, result.val_acc[order] * 100, color="tab:orange", label="validation")
    best_val = result.val_acc.mean(axis=1)[result.best_index] * 100
    ax.axvline(result.best_value, color="gray", linestyle="--", linewidth=1)
    ax.plot(
        [result.best_value], [best_val], marker="*", markersize=14, color="tab:red", linestyle="none",
        label=f"best on validation: {result.best_value:.3g}",
    )
    positive = values[values > 0]
    if len(positive) > 1 and positive.max() / positive.min() > 10:
        if values.min() > 0:
            ax.set_xscale("log")
            ax.set_xlabel(f"{PARAMS[result.param]} (log scale)")
        else:
            # A symmetric log scale shows 0 next to the log-spaced positive values.
            ax.set_xscale("symlog", linthresh=float(positive.min()))
            ax.set_xlabel(f"{PARAMS[result.param]} (log scale above {positive.min():g})")
    else:
        ax.set_xlabel(PARAMS[result.param])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(
        f"Validation curve: {result.model} on {result.dataset}\n"
        f"mean of {len(result.seeds)} seeds, band = lowest to highest seed",
        fontsize=10,
    )
    ax.legend(loc="best", fontsize=9)
    return save_figure_and_csv(figure, out, "validation_curve", result.rows())
