"""Pieces shared by the analyses: loading data, building run settings, training runs, sub-sampling a split."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from reglab.data import Dataset, Split, TensorPair, load_dataset
from reglab.errors import ConfigError
from reglab.training.config import RunConfig, StrategyConfig, validate
from reglab.training.fit import RunResult, fit
from reglab.training.fit_batched import batch_chunks, batching_problem, fit_batched, members_per_call

RunCallback = Callable[[str], None]
"""Called with a short description of each run before it starts, for progress output."""


def resolve_dataset(dataset: str | Dataset, **load_options: Any) -> Dataset:
    """Return ``dataset`` itself, or load it by name with :func:`reglab.data.load_dataset`."""
    if isinstance(dataset, Dataset):
        return dataset
    return load_dataset(dataset, **load_options)


def run_config(
    *,
    dataset: str,
    model: str,
    strategy: str,
    regularization: StrategyConfig,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int,
    precision: str = "fp32",
) -> RunConfig:
    """Build and validate the :class:`RunConfig` of one run of an analysis or ``reglab train`` (SGD, momentum 0.9)."""
    return validate(
        RunConfig,
        {
            "dataset": dataset,
            "model": model,
            "strategy": strategy,
            "regularization": regularization.model_dump(),
            "optimizer": {"lr": lr},
            "batch_size": batch_size,
            "epochs": epochs,
            "seed": seed,
            "precision": precision,
        },
    )


def fit_runs(
    configs: Sequence[RunConfig],
    splits: Sequence[Split],
    *,
    device: str | torch.device = "cpu",
    evaluate_test: bool = True,
    batched: bool = True,
) -> list[RunResult]:
    """Train ``configs``, each on its split, and return their results in order.

    With ``batched``, the runs are grouped by the settings that
    :func:`~reglab.training.fit_batched.fit_batched` needs shared (data set, model, batch
    size, split fractions) and by the sizes of their training and validation parts. Each
    group of at least two runs that :func:`~reglab.training.fit_batched.batching_problem`
    accepts (SGD, no refit) trains in ``fit_batched`` calls of at most
    :func:`~reglab.training.fit_batched.members_per_call` runs. Members with one seed and
    the same data share one minibatch order. Otherwise each member trains on its own split
    (``separate_data``). Either way each member sees the minibatch order, masks and
    augmentation that :func:`~reglab.training.fit.fit` draws from its seed, so its result
    equals the one-at-a-time result up to floating-point rounding. Every other run trains
    alone with :func:`~reglab.training.fit.fit`.

    Args:
        configs: the runs' settings.
        splits: one split per run. A split object may repeat when ``evaluate_test`` is
            False; otherwise each run needs its own, because each opens its test set once.
        device: where to train.
        evaluate_test: whether each run opens its sealed test set once after training.
        batched: False trains every run alone.

    Returns:
        One :class:`~reglab.training.fit.RunResult` per run, in the given order.
    """
    configs, splits = list(configs), list(splits)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (config, split) in enumerate(zip(configs, splits)):
        if batched and batching_problem([config]) is None:
            key = (config.dataset, config.model, config.batch_size, config.val_fraction, config.test_fraction)
            groups.setdefault(key + (len(split.train.y), len(split.val.y)), []).append(i)

    results: dict[int, RunResult] = {}
    chunks = []
    for group in groups.values():
        first = splits[group[0]]
        limit = members_per_call(configs[group[0]].model, first.input_shape, first.num_classes)
        chunks += batch_chunks(group, limit)
    for members in chunks:
        group = [configs[i] for i in members]
        if len(members) < 2 or batching_problem(group, same_seed=False) is not None:
            continue
        first = splits[members[0]]
        shared = batching_problem(group) is None and all(_same_data(first, splits[i]) for i in members)
        trained = fit_batched(
            group, [splits[i] for i in members], device, separate_data=not shared, evaluate_test=evaluate_test
        )
        results.update(zip(members, trained))

    for i, (config, split) in enumerate(zip(configs, splits)):
        if i not in results:
            results[i] = fit(config, split, device=device, evaluate_test=evaluate_test)
    return [results[i] for i in range(len(configs))]


def _same_data(first: Split, other: Split) -> bool:
    """Return whether two splits have equal training and validation parts."""
    if first is other:
        return True
    return all(
        torch.equal(getattr(first, part).x, getattr(other, part).x)
        and torch.equal(getattr(first, part).y, getattr(other, part).y)
        for part in ("train", "val")
    )


def with_training_subset(split: Split, index: np.ndarray) -> Split:
    """Return ``split`` with its training part replaced by the rows ``index`` of it.

    ``index`` may repeat rows (a bootstrap sample). The normalization statistics are
    recomputed from the new training part, as :func:`reglab.data.make_split` computes them
    from its training part. The validation part and the sealed test set, including its
    access record, are shared with ``split``.
    """
    rows = torch.as_tensor(index, dtype=torch.long, device=split.train.x.device)
    x = split.train.x[rows]
    y = split.train.y[rows]

    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    std, mean = torch.std_mean(x, dim=dims, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))

    indices = dict(split.indices)
    indices["train"] = [split.indices["train"][i] for i in index.tolist()]
    return dataclasses.replace(split, train=TensorPair(x, y), mean=mean, std=std, indices=indices)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the number of examples of each class, shape ``(num_classes,)``."""
    return np.bincount(labels, minlength=num_classes)


def stratified_subsample(
    labels: np.ndarray, size: int, *, seed: int, classes: Sequence[str] = ()
) -> np.ndarray:
    """Draw ``size`` positions of ``labels`` without replacement, stratified by class.

    Each class gets its share ``size * count / total`` rounded down, and the examples left
    over go to the classes with the largest remainders. Every class present in ``labels``
    gets at least one example.

    Args:
        labels: int class labels of the pool, shape ``(N,)``.
        size: the number of positions to draw, in ``[number of classes present, N]``.
        seed: seeds the draw; the same seed gives the same positions.
        classes: class names by label, used in the error message.

    Returns:
        The chosen positions in random order, shape ``(size,)``.

    Raises:
        ConfigError: ``size`` is larger than the pool or too small to hold one example of
            every class; the message lists the class counts.
    """
    counts = class_counts(labels, int(labels.max()) + 1)
    present = np.flatnonzero(counts)
    total = int(counts.sum())
    if size > total:
        raise ConfigError(f"learning_curve: training subset size {size} is larger than the training split ({total} examples).")
    if size < len(present):
        names = list(classes) or [str(label) for label in range(len(counts))]
        listed = ", ".join(f"{names[label]}: {counts[label]}" for label in present)
        raise ConfigError(
            f"learning_curve: training subset size {size} is too small for a stratified subsample: it needs at least "
            f"one example of each of the {len(present)} classes. Class counts of the training split: "
            f"{listed}. Use a size of at least {len(present)}."
        )

    ideal = size * counts / total
    quota = np.where(counts > 0, np.maximum(np.floor(ideal).astype(np.int64), 1), 0)
    remainder = ideal - quota
    while quota.sum() < size:
        candidates = np.flatnonzero(quota < counts)
        label = candidates[np.argmax(remainder[candidates])]
        quota[label] += 1
        remainder[label] -= 1.0
    while quota.sum() > size:
        # Only reached when the one-example minimum lifted a class above its share.
        candidates = np.flatnonzero(quota > 1)
        label = candidates[np.argmin(remainder[candidates])]
        quota[label] -= 1
        remainder[label] += 1.0

    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == label), size=quota[label], replace=False) for label in present]
    return rng.permutation(np.concatenate(chosen))
