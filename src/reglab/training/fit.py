"""The fit loop: train one configuration on a three-way split and open the test set once.

Every run follows the same steps:

1. Seed the global RNG (dropout masks, initialization) and two generators (minibatch order,
   augmentation) from ``config.seed``, inside :func:`torch.random.fork_rng` so the caller's
   RNG state is left as it was.
2. Train for at most ``config.epochs`` epochs. Training batches are augmented (when the
   strategy enables it), then normalized with the training split's statistics; the
   strategy's training options (:mod:`reglab.training.step`) then apply to each batch.
   Forward passes run in ``config.precision`` (:mod:`reglab.training.precision`).
3. After each epoch, measure ``train_loss``, ``train_acc``, ``val_loss`` and ``val_acc`` in
   eval mode on non-augmented data, and ``gap = train_acc - val_acc``.
4. When training ends, restore the best weights (early stopping), optionally refit on
   training plus validation data for the selected number of epochs, check that eval mode
   is deterministic, and evaluate the sealed test set exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reglab.augment import check_transforms_for_dataset, default_augmentation
from reglab.data import Split, iterate_minibatches
from reglab.early_stopping import EarlyStopping, StopReason
from reglab.errors import ReglabError
from reglab.nn.checks import check_eval_deterministic
from reglab.penalties import L1, L2, MaxNorm, check_optimizer
from reglab.training.config import RunConfig
from reglab.training.determinism import deterministic_mode
from reglab.training.device import resolve_device
from reglab.training.diagnostics import layer_stats
from reglab.training.evaluate import evaluate
from reglab.training.model_builder import build_run_model
from reglab.training.optim import build_optimizer
from reglab.training.precision import autocast
from reglab.training.step import TrainingStep, check_image_settings

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


class TrainingError(ReglabError):
    """Training could not go on, for example because the loss became NaN or infinite."""


def non_finite_loss_message(config: RunConfig, lr: float, loss: float, epoch: int) -> str:
    """Return the error for a loss that became NaN or infinite, naming its likely cause.

    A penalty strength ``s`` is the likely cause when ``s >= 1`` or ``lr * s >= 1``: its
    term then outweighs the data loss, or one gradient step on it alone, ``w <- w - lr * s * w``
    for L2, moves every weight by at least its own size. Otherwise the learning rate is.
    """
    reg = config.regularization
    strengths = {"l2": reg.l2, "l1": reg.l1, "weight_decay": reg.weight_decay or config.optimizer.weight_decay}
    large = [f"{name}={value:g}" for name, value in strengths.items() if value >= 1 or lr * value >= 1]
    where = f"the training loss became {loss} in epoch {epoch} of strategy {config.strategy!r} (seed {config.seed})"
    if large:
        return (
            f"{where}; the likely cause is the penalty strength {' and '.join(large)}, which is >= 1 or >= 1/lr "
            f"(lr={lr:g}); lower the strength."
        )
    return f"{where}; lower the learning rate (lr={lr:g})."


@dataclass
class RunResult:
    """The outputs of one run, in the form the store keeps.

    Attributes:
        config: the settings of the run.
        history: one dict per epoch with ``epoch``, ``train_loss``, ``train_acc``,
            ``val_loss``, ``val_acc``, ``gap`` and ``seconds``.
        best_epoch: the epoch whose weights were kept (the last one without early stopping).
        stop_reason: why training ended, a :class:`reglab.early_stopping.StopReason` value.
        final_metrics: train and validation metrics of the kept weights.
        test_metrics: ``test_loss`` and ``test_acc`` from the single sealed test evaluation.
        test_accesses: every access to the sealed test set.
        split: sizes, class counts and seed of the split.
        timings: seconds spent training, evaluating and in total.
        weight_stats: per-layer weight norms and sparsity of the kept weights.
        model: the trained model; not stored.
    """

    config: RunConfig
    history: list[dict[str, float]]
    best_epoch: int
    stop_reason: str
    final_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_accesses: list[dict[str, Any]]
    split: dict[str, Any]
    timings: dict[str, float]
    weight_stats: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None


def fit(
    config: RunConfig,
    split: Split,
    *,
    device: str | torch.device = "cpu",
    on_epoch_end: EpochCallback | None = None,
    evaluate_test: bool = True,
) -> RunResult:
    """Train ``config`` on ``split`` and evaluate its sealed test set once.

    Args:
        config: the run's settings; ``config.seed`` makes the run reproducible on one device.
        split: the three-way split, whose test set has not been opened yet.
        device: where to train, e.g. ``"cpu"`` or ``"cuda"``.
        on_epoch_end: called with the epoch number (1-based) and that epoch's history row.
        evaluate_test: False for runs that only select settings on validation data (a
            learning-rate search); their test set stays sealed and ``test_metrics`` is empty.

    Returns:
        The run's :class:`RunResult`.

    Raises:
        TrainingError: the training loss became NaN or infinite.
        SealedTestSetError: the split's test set was already opened.
    """
    device = resolve_device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), deterministic_mode(device):
        torch.manual_seed(config.seed)
        return _fit(config, split.to(device), device, on_epoch_end, evaluate_test)


def _fit(
    config: RunConfig,
    split: Split,
    device: torch.device,
    on_epoch_end: EpochCallback | None,
    evaluate_test: bool,
) -> RunResult:
    started = time.perf_counter()
    stopper = _build_early_stopping(config)
    trainer = _Trainer(config, split, device)

    # Training.
    history: list[dict[str, float]] = []
    reason = StopReason.MAX_EPOCHS
    train_seconds = 0.0
    eval_seconds = 0.0
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        trainer.train_epoch(split.train.x, split.train.y, epoch)
        train_seconds += time.perf_counter() - epoch_started

        eval_started = time.perf_counter()
        row = _measure(trainer.model, split, config.precision)
        eval_seconds += time.perf_counter() - eval_started
        row = {"epoch": epoch, **row, "seconds": time.perf_counter() - epoch_started}
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)

        if stopper is not None and stopper.step(epoch, row, trainer.model):
            reason = stopper.reason
            break

    # Model selection, then the single test evaluation.
    model = trainer.model
    best_epoch = len(history)
    if stopper is not None:
        stopper.finish(model, reason=reason)
        if stopper.best_epoch is not None and stopper.restore_best_weights:
            best_epoch = stopper.best_epoch
    # The kept weights are those that epoch best_epoch's evaluation measured, and the
    # evaluation is deterministic, so its row gives the final metrics without another pass.
    final_metrics = {key: history[best_epoch - 1][key] for key in METRICS}

    settings = config.regularization.early_stopping
    if settings is not None and settings.refit:
        model = _refit(config, split, device, best_epoch)
        refit_metrics = _measure(model, split, config.precision)
        final_metrics = {**final_metrics, **{f"refit_{key}": value for key, value in refit_metrics.items()}}

    check_eval_deterministic(model, split.normalize(split.val.x[:64]))
    test_metrics: dict[str, float] = {}
    if evaluate_test:
        test = split.test.open(f"final evaluation of strategy {config.strategy!r}, seed {config.seed}")
        with autocast(config.precision, device):
            test_loss, test_acc = evaluate(model, test.x, test.y, transform=split.normalize)
        test_metrics = {"test_loss": test_loss, "test_acc": test_acc}

    return RunResult(
        config=config,
        history=history,
        best_epoch=best_epoch,
        stop_reason=reason.value,
        final_metrics=final_metrics,
        test_metrics=test_metrics,
        test_accesses=list(split.test.accesses),
        split=split.describe(),
        timings={
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "total_seconds": time.perf_counter() - started,
            "device": device.type,
        },
        weight_stats=layer_stats(model, split.normalize(split.train.x)),
        model=model,
    )


class _Trainer:
    """The model, optimizer, regularizers and generators of one run, and its epoch step."""

    def __init__(self, config: RunConfig, split: Split, device: torch.device) -> None:
        reg = config.regularization
        self.config = config
        self.split = split
        self.device = device
        self.lr = reg.lr if reg.lr is not None else config.optimizer.lr

        self.model = build_run_model(config, tuple(split.train.x.shape[1:]), split.num_classes).to(device)
        self.optimizer = build_optimizer(self.model, config.optimizer, self.lr, weight_decay=reg.weight_decay)
        self.penalties = [p for p in (L2(reg.l2) if reg.l2 else None, L1(reg.l1) if reg.l1 else None) if p]
        check_optimizer(self.optimizer, self.penalties)
        self.max_norm = MaxNorm(reg.max_norm) if reg.max_norm is not None else None
        self.augmentation = build_augmentation(config, tuple(split.train.x.shape[1:])) if reg.augment else None

        self.data_generator = torch.Generator().manual_seed(config.seed)
        self.augment_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
        input_shape = tuple(split.train.x.shape[1:])
        self.step = TrainingStep(config, self.model, self.optimizer, input_shape, self.augment_generator)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> None:
        """Run one epoch of minibatch training on ``(x, y)``, images still in [0, 1]."""
        self.model.train()
        self.step.start_epoch(len(x))
        for xb, yb in iterate_minibatches(x, y, self.config.batch_size, shuffle=True, generator=self.data_generator):
            if self.augmentation is not None:
                xb = self.augmentation(xb, generator=self.augment_generator)
            with autocast(self.config.precision, self.device):
                loss = self.step.loss(self.split.normalize(xb), yb)
            for penalty in self.penalties:
                loss = loss + penalty(self.model)
            if not torch.isfinite(loss):
                raise TrainingError(non_finite_loss_message(self.config, self.lr, loss.item(), epoch))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.step.step()
            if self.max_norm is not None:
                self.max_norm(self.model)


def _refit(config: RunConfig, split: Split, device: torch.device, epochs: int) -> nn.Module:
    """Train a fresh model on training plus validation data for ``epochs`` epochs.

    The model starts from the same seed as the selection run, and inputs are normalized with
    the training split's statistics, as in the selection run.
    """
    torch.manual_seed(config.seed)
    trainer = _Trainer(config, split, device)
    x = torch.cat([split.train.x, split.val.x])
    y = torch.cat([split.train.y, split.val.y])
    for epoch in range(1, epochs + 1):
        trainer.train_epoch(x, y, epoch)
    return trainer.model


METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "gap")
"""The metrics of one history row that measure the weights, in order."""


def _measure(model: nn.Module, split: Split, precision: str) -> dict[str, float]:
    with autocast(precision, split.train.x.device):
        train_loss, train_acc = evaluate(model, split.train.x, split.train.y, transform=split.normalize)
        val_loss, val_acc = evaluate(model, split.val.x, split.val.y, transform=split.normalize)
    return {
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val_loss,
        "val_acc": val_acc,
        "gap": train_acc - val_acc,
    }


def _build_early_stopping(config: RunConfig) -> EarlyStopping | None:
    settings = config.regularization.early_stopping
    if settings is None:
        return None
    return EarlyStopping(**settings.model_dump(exclude={"refit"}))


def build_augmentation(config: RunConfig, input_shape: tuple[int, ...]) -> nn.Module:
    """Return the data set's default augmentation for a run with ``augment``.

    Raises:
        ConfigError: the data set's examples are not images, see :func:`check_image_settings`.
    """
    check_image_settings(config, input_shape)
    augmentation = default_augmentation(config.dataset, input_shape)
    check_transforms_for_dataset(augmentation, config.dataset)
    return augmentation

