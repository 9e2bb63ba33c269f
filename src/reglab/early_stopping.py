"""Early stopping: end training when a monitored metric stops improving.

The names follow Keras and Lightning (``monitor``, ``mode``, ``patience``, ``min_delta``,
``baseline``, ``start_from_epoch``, ``restore_best_weights``, ``check_finite``), and
``patience`` counts epochs: the training loop calls :meth:`EarlyStopping.step` once per
epoch. The decision itself is the pure function :func:`evaluate_stopping`, which maps a
:class:`StoppingState`, an epoch and its metrics to a new state, whether to stop and why.
:class:`EarlyStopping` wraps it with the model's best weights and a versioned
``state_dict`` so that resumed training continues the count.

A typical loop::

    stopper = EarlyStopping(monitor="val_loss", patience=10)
    reason = StopReason.MAX_EPOCHS
    for epoch in range(1, max_epochs + 1):
        train_one_epoch(model)
        if stopper.step(epoch, {"val_loss": validate(model)}, model):
            reason = stopper.reason
            break
    stopper.finish(model, reason=reason)  # restores the best epoch's weights

To refit on training plus validation data, train a fresh model for
``stopper.best_epoch`` epochs.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, NamedTuple

import torch
from torch import nn

from reglab._validation import check_choice, check_int, check_non_negative, check_number
from reglab.errors import ConfigError

logger = logging.getLogger(__name__)

_OWNER = "EarlyStopping"
_STATE_VERSION = 1

# ``mode="auto"`` maximizes a metric whose name contains one of these parts.
_MAXIMIZED_NAME_PARTS = ("acc", "auc", "f1", "precision", "recall")


class StopReason(str, Enum):
    """The reason training ended. Its values are the strings a run stores."""

    NO_IMPROVEMENT = "patience"
    """The monitored metric did not improve for ``patience`` epochs."""
    BASELINE_NOT_REACHED = "baseline"
    """No value beat ``baseline`` within ``patience`` epochs."""
    NON_FINITE = "non_finite"
    """The monitored metric was NaN or infinite (with ``check_finite=True``)."""
    GAP_TOO_LARGE = "gap"
    """The train-validation accuracy gap stayed above ``max_gap`` for ``patience`` epochs."""
    MAX_EPOCHS = "max_epochs"
    """The epoch limit ended training. The caller sets it through :meth:`EarlyStopping.finish`."""

    def __str__(self) -> str:
        # Python 3.11 changed str() of str-mixin enums, so return the stored value on every version.
        return self.value


def resolve_mode(monitor: str, mode: str) -> str:
    """Return ``"min"`` or ``"max"`` for ``mode``, resolving ``"auto"`` from the metric name.

    ``"auto"`` gives ``"max"`` when ``monitor`` contains ``"acc"``, ``"auc"``, ``"f1"``,
    ``"precision"`` or ``"recall"`` (case-insensitive), and ``"min"`` otherwise, which fits
    losses and ``gap``.
    """
    check_choice(_OWNER, "mode", mode, ("min", "max", "auto"))
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(part in name for part in _MAXIMIZED_NAME_PARTS) else "min"


@dataclass(frozen=True)
class StoppingConfig:
    """The validated settings that :func:`evaluate_stopping` reads.

    ``mode`` is already resolved to ``"min"`` or ``"max"``. :class:`EarlyStopping`
    describes each field.
    """

    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 10
    min_delta: float = 0.0
    baseline: float | None = None
    start_from_epoch: int = 0
    check_finite: bool = True
    max_gap: float | None = None


@dataclass(frozen=True)
class StoppingState:
    """The counters that carry from one epoch to the next.

    Attributes:
        best_score: the best monitored value so far, or None before the first monitored epoch.
        best_epoch: the epoch of ``best_score``.
        wait: monitored epochs since the last improvement. With a ``baseline``, only an
            improvement that also beats the baseline resets it.
        gap_wait: consecutive monitored epochs whose gap was above ``max_gap``.
        baseline_reached: whether some monitored value has beaten ``baseline``.
        last_epoch: the last epoch passed to :func:`evaluate_stopping`.
    """

    best_score: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    gap_wait: int = 0
    baseline_reached: bool = False
    last_epoch: int | None = None


class StoppingDecision(NamedTuple):
    """The result of :func:`evaluate_stopping` for one epoch."""

    should_stop: bool
    reason: StopReason | None
    improved: bool
    state: StoppingState


def evaluate_stopping(
    state: StoppingState, epoch: int, metrics: Mapping[str, Any], config: StoppingConfig
) -> StoppingDecision:
    """Decide whether training stops after ``epoch``, without side effects.

    The rules, checked in this order:

    1. ``check_finite``: a NaN or infinite monitored value stops at once
       (:attr:`StopReason.NON_FINITE`), also during the warm-up epochs.
    2. Epochs ``1..start_from_epoch`` are a warm-up: they record no best and count toward
       no patience.
    3. A value improves on the best when ``current < best - min_delta`` (mode ``"min"``) or
       ``current > best + min_delta`` (mode ``"max"``); a change of exactly ``min_delta`` is
       no improvement. The first monitored value improves on nothing and becomes the best,
       unless it is NaN.
    4. ``wait`` counts monitored epochs since the last improvement that also beat
       ``baseline`` (by the same rule). Training stops when ``wait >= patience`` and
       ``wait > 0``, with :attr:`StopReason.BASELINE_NOT_REACHED` if no value has beaten
       the baseline yet and :attr:`StopReason.NO_IMPROVEMENT` otherwise.
    5. With ``max_gap``, training stops when the gap exceeded ``max_gap`` in each of the
       last ``max(patience, 1)`` monitored epochs (:attr:`StopReason.GAP_TOO_LARGE`).

    Args:
        state: the counters after the previous epoch.
        epoch: the 1-based epoch just finished; it must exceed ``state.last_epoch``.
        metrics: that epoch's metrics; numbers or 0-d tensors.
        config: the settings.

    Returns:
        A :class:`StoppingDecision` with the new state.

    Raises:
        ConfigError: ``epoch`` is not after the previous one, or a metric is missing.
    """
    check_int(_OWNER, "epoch", epoch, minimum=1)
    if state.last_epoch is not None and epoch <= state.last_epoch:
        raise ConfigError(
            f"{_OWNER}: epoch must be greater than the previous epoch {state.last_epoch}, "
            f"got {epoch}; call reset() before training again."
        )
    current = _monitored_value(metrics, config.monitor)
    gap = _gap_value(metrics) if config.max_gap is not None else None
    state = replace(state, last_epoch=epoch)

    if config.check_finite and not math.isfinite(current):
        return StoppingDecision(True, StopReason.NON_FINITE, False, state)
    if epoch <= config.start_from_epoch:
        return StoppingDecision(False, None, False, state)

    # Improvement and patience, as Keras counts them.
    improved = _is_improvement(current, state.best_score, config)
    wait = state.wait + 1
    baseline_reached = state.baseline_reached
    if improved:
        state = replace(state, best_score=current, best_epoch=epoch)
        if config.baseline is None or _is_improvement(current, config.baseline, config):
            wait = 0
            baseline_reached = True
    gap_wait = state.gap_wait + 1 if gap is not None and gap > config.max_gap else 0
    state = replace(state, wait=wait, gap_wait=gap_wait, baseline_reached=baseline_reached)

    if wait > 0 and wait >= config.patience:
        if config.baseline is not None and not baseline_reached:
            return StoppingDecision(True, StopReason.BASELINE_NOT_REACHED, improved, state)
        return StoppingDecision(True, StopReason.NO_IMPROVEMENT, improved, state)
    if gap_wait > 0 and gap_wait >= config.patience:
        return StoppingDecision(True, StopReason.GAP_TOO_LARGE, improved, state)
    return StoppingDecision(False, None, improved, state)


def _is_improvement(current: float, reference: float | None, config: StoppingConfig) -> bool:
    if config.mode == "min":
        reference = math.inf if reference is None else reference
        return current < reference - config.min_delta
    reference = -math.inf if reference is None else reference
    return current > reference + config.min_delta


def _as_float(metrics: Mapping[str, Any], name: str) -> float:
    value = metrics[name]
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(
            f"{_OWNER}: the metric {name!r} must be a number or a 0-d tensor, got {value!r}."
        ) from None


def _available(metrics: Mapping[str, Any]) -> str:
    return ", ".join(sorted(str(key) for key in metrics)) or "(none)"


def _monitored_value(metrics: Mapping[str, Any], monitor: str) -> float:
    if monitor not in metrics:
        raise ConfigError(
            f"{_OWNER}: monitor={monitor!r} is not in the metrics; available: {_available(metrics)}."
        )
    return _as_float(metrics, monitor)


def _gap_value(metrics: Mapping[str, Any]) -> float:
    if "gap" in metrics:
        return _as_float(metrics, "gap")
    if "train_acc" in metrics and "val_acc" in metrics:
        return _as_float(metrics, "train_acc") - _as_float(metrics, "val_acc")
    raise ConfigError(
        f"{_OWNER}: max_gap needs the metric 'gap' or both 'train_acc' and 'val_acc'; "
        f"available: {_available(metrics)}."
    )


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{_OWNER}: {name} must be True or False, got {value!r}.")
    return value


def _config_property(name: str) -> property:
    return property(lambda self: getattr(self.config, name), doc=f"The ``{name}`` setting (read-only).")


class EarlyStopping:
    """Stop training when a monitored metric has stopped improving, and keep the best weights.

    Call :meth:`step` once per epoch with that epoch's metrics and the model, and
    :meth:`finish` once when training ends for any reason (early stop, epoch limit,
    exception). :meth:`finish` loads the best epoch's weights into the model when
    ``restore_best_weights`` is True, whatever ended training. The rules are those of
    :func:`evaluate_stopping`.

    Args:
        monitor: the metric to watch, a key of the metrics passed to :meth:`step`.
            Defaults to ``"val_loss"``.
        mode: ``"min"``, ``"max"`` or ``"auto"``. ``"auto"`` maximizes metrics whose name
            contains ``"acc"``, ``"auc"``, ``"f1"``, ``"precision"`` or ``"recall"`` and
            minimizes all others, such as losses and ``gap``. Defaults to ``"auto"``.
        patience: the number of epochs without improvement after which training stops;
            0 stops at the first epoch that does not improve. Defaults to 10.
        min_delta: the margin an improvement must exceed. In mode ``"min"`` a value
            improves iff ``current < best - min_delta``, in mode ``"max"`` iff
            ``current > best + min_delta``, so a change of exactly ``min_delta`` does not
            count. Must be >= 0. Defaults to 0.
        baseline: a value the metric must beat (by the ``min_delta`` rule) within
            ``patience`` monitored epochs, or training stops with
            :attr:`StopReason.BASELINE_NOT_REACHED`. Until it is beaten, improvements
            still update the best epoch but do not reset the patience count. None turns
            it off. Defaults to None.
        start_from_epoch: the number of warm-up epochs. Epochs ``1..start_from_epoch``
            record no best and count toward no patience. Defaults to 0.
        restore_best_weights: whether :meth:`finish` loads the best epoch's weights into
            the model. Defaults to True.
        check_finite: whether a NaN or infinite monitored value stops training at once,
            also during warm-up. Defaults to True.
        max_gap: if set, training also stops when the accuracy gap (the metric ``gap``, or
            ``train_acc - val_acc``) stays above ``max_gap`` for ``patience`` consecutive
            monitored epochs (at least one). Defaults to None.

    Attributes:
        best_epoch: the 1-based epoch with the best monitored value, or None. It is also
            the number of epochs to train when refitting on training plus validation data.
        best_score: the best monitored value, or None.
        stopped_epoch: the epoch at which training ended, or None while it runs.
        reason: the :class:`StopReason`, or None while training runs.
        wait: monitored epochs since the last improvement.

    Raises:
        ConfigError: an argument is invalid.

    Example::

        >>> stopper = EarlyStopping(monitor="val_loss", patience=2)
        >>> [stopper.step(epoch, {"val_loss": loss}) for epoch, loss in
        ...  enumerate([0.9, 0.8, 0.85, 0.82], start=1)]
        [False, False, False, True]
        >>> stopper.best_epoch, stopper.reason
        (2, <StopReason.NO_IMPROVEMENT: 'patience'>)

    .. note::
        Keras checks ``patience`` only in epochs that do not improve on the best, so a
        metric that keeps improving without beating ``baseline`` never stops there. reglab
        checks it every monitored epoch, as the Keras documentation describes ``baseline``.
    """

    monitor = _config_property("monitor")
    mode = _config_property("mode")
    patience = _config_property("patience")
    min_delta = _config_property("min_delta")
    baseline = _config_property("baseline")
    start_from_epoch = _config_property("start_from_epoch")
    check_finite = _config_property("check_finite")
    max_gap = _config_property("max_gap")

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 10,
        min_delta: float = 0.0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        restore_best_weights: bool = True,
        check_finite: bool = True,
        max_gap: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"{_OWNER}: monitor must be a non-empty metric name, got {monitor!r}.")
        self.config = StoppingConfig(
            monitor=monitor,
            mode=resolve_mode(monitor, mode),
            patience=check_int(_OWNER, "patience", patience),
            min_delta=check_non_negative(_OWNER, "min_delta", min_delta),
            baseline=None if baseline is None else check_number(_OWNER, "baseline", baseline),
            start_from_epoch=check_int(_OWNER, "start_from_epoch", start_from_epoch),
            check_finite=_check_bool("check_finite", check_finite),
            max_gap=None if max_gap is None else check_number(_OWNER, "max_gap", max_gap),
        )
        self.restore_best_weights = _check_bool("restore_best_weights", restore_best_weights)

        self.reset()

    def reset(self) -> None:
        """Clear the counters, the best weights and the stop reason, to train again."""
        self._state = StoppingState()
        self.best_weights: dict[str, Any] | None = None
        self.stopped_epoch: int | None = None
        self.reason: StopReason | None = None

    @property
    def best_epoch(self) -> int | None:
        return self._state.best_epoch

    @property
    def best_score(self) -> float | None:
        return self._state.best_score

    @property
    def wait(self) -> int:
        return self._state.wait

    def step(self, epoch: int, metrics: Mapping[str, Any], model: nn.Module | None = None) -> bool:
        """Record one epoch's metrics and return True when training should stop.

        Args:
            epoch: the 1-based number of the epoch just finished.
            metrics: that epoch's metrics, containing ``monitor``.
            model: the model being trained. When ``restore_best_weights`` is True and the
                epoch is the new best, a copy of its ``state_dict`` is kept on the same
                device.

        Raises:
            ConfigError: ``monitor`` (or, with ``max_gap``, the gap) is not in ``metrics``,
                or ``epoch`` is not after the previous one.
        """
        decision = evaluate_stopping(self._state, epoch, metrics, self.config)
        self._state = decision.state

        if decision.improved and self.restore_best_weights:
            # Without a model the older copy no longer belongs to the best epoch.
            self.best_weights = _copy_state_dict(model) if model is not None else None
        if decision.should_stop:
            self.stopped_epoch = epoch
            self.reason = decision.reason
            logger.info(
                "EarlyStopping: stopping after epoch %d (%s); best epoch %s with %s=%s.",
                epoch,
                decision.reason.value,
                self.best_epoch,
                self.monitor,
                self.best_score,
            )
        return decision.should_stop

    def finish(self, model: nn.Module | None = None, reason: StopReason | None = None) -> None:
        """End training: record the stop reason and restore the best weights.

        Call it once whatever ended training. A reason recorded by :meth:`step` is kept;
        otherwise ``reason`` (for example :attr:`StopReason.MAX_EPOCHS`) is recorded.

        Args:
            model: the model to load the best weights into.
            reason: why training ended, if :meth:`step` did not stop it.
        """
        if self.reason is None:
            self.reason = reason
        if self.stopped_epoch is None:
            self.stopped_epoch = self._state.last_epoch

        if not self.restore_best_weights or self.best_epoch is None:
            return
        if model is None:
            if self.best_weights is not None:
                warnings.warn(
                    "EarlyStopping.finish: the best weights were not restored because no model "
                    "was passed; call finish(model).",
                    UserWarning,
                    stacklevel=2,
                )
            return
        if self.best_weights is None:
            warnings.warn(
                f"EarlyStopping.finish: no weights were stored for the best epoch "
                f"{self.best_epoch} because step() received no model then; the model keeps its "
                "last weights.",
                UserWarning,
                stacklevel=2,
            )
            return
        model.load_state_dict(self.best_weights)
        logger.info("EarlyStopping: restored the weights of epoch %d.", self.best_epoch)

    def state_dict(self) -> dict[str, Any]:
        """Return the counters, stop reason and best weights, for checkpoints."""
        state = self._state
        return {
            "version": _STATE_VERSION,
            "monitor": self.monitor,
            "mode": self.mode,
            "best_score": state.best_score,
            "best_epoch": state.best_epoch,
            "wait": state.wait,
            "gap_wait": state.gap_wait,
            "baseline_reached": state.baseline_reached,
            "last_epoch": state.last_epoch,
            "stopped_epoch": self.stopped_epoch,
            "reason": None if self.reason is None else self.reason.value,
            "best_weights": None if self.best_weights is None else dict(self.best_weights),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of an EarlyStopping with the same monitor and mode.

        Raises:
            ConfigError: the state has another version, monitor or mode.
        """
        version = state_dict.get("version")
        if version != _STATE_VERSION:
            raise ConfigError(
                f"{_OWNER}: state_dict version must be {_STATE_VERSION}, got {version!r}."
            )
        for name in ("monitor", "mode"):
            if state_dict[name] != getattr(self, name):
                raise ConfigError(
                    f"{_OWNER}: the state_dict was recorded with {name}={state_dict[name]!r}, "
                    f"but this EarlyStopping has {name}={getattr(self, name)!r}."
                )
        self._state = StoppingState(
            best_score=state_dict["best_score"],
            best_epoch=state_dict["best_epoch"],
            wait=state_dict["wait"],
            gap_wait=state_dict["gap_wait"],
            baseline_reached=state_dict["baseline_reached"],
            last_epoch=state_dict["last_epoch"],
        )
        self.stopped_epoch = state_dict["stopped_epoch"]
        reason = state_dict["reason"]
        self.reason = None if reason is None else StopReason(reason)
        weights = state_dict["best_weights"]
        self.best_weights = None if weights is None else dict(weights)

    def __repr__(self) -> str:
        config = self.config
        return (
            f"{type(self).__name__}(monitor={config.monitor!r}, mode={config.mode!r}, "
            f"patience={config.patience}, min_delta={config.min_delta}, "
            f"baseline={config.baseline}, start_from_epoch={config.start_from_epoch}, "
            f"restore_best_weights={self.restore_best_weights}, "
            f"check_finite={config.check_finite}, max_gap={config.max_gap})"
        )


def _copy_state_dict(model: nn.Module) -> dict[str, Any]:
    # Clones stay on the parameters' device, so restoring costs no transfer.
    return {
        name: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
        for name, value in model.state_dict().items()
    }
