"""The built-in strategies of ``reglab compare`` and their default strengths.

Strengths are for the mean cross-entropy of a minibatch, the convention of
:mod:`reglab.penalties`: ``l2=1e-3`` equals ``torch.optim.SGD(weight_decay=1e-3)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reglab.errors import ConfigError
from reglab.training.config import DropoutSettings, EarlyStoppingSettings, StrategyConfig, validate

STRATEGY_NAMES = ("baseline", "l2", "l1", "dropout", "early-stopping", "augment", "combined")
# Built-in strategies that a study trains only when they are named, because they are not in
# ``STRATEGY_NAMES``, the default set of ``reglab compare``.
OPTIONAL_STRATEGY_NAMES = ("dropconnect",)
KNOWN_STRATEGY_NAMES = STRATEGY_NAMES + OPTIONAL_STRATEGY_NAMES


@dataclass(frozen=True)
class StrategyDefaults:
    """The strengths that the built-in strategies use.

    Attributes:
        l2: L2 strength; adds ``l2/2 · Σw²`` over weights to the mean loss.
        l1: L1 strength; adds ``l1 · Σ|w|`` over weights to the mean loss.
        p: dropout probability after hidden layers.
        input_p: dropout probability on the input.
        dropconnect_p: DropConnect probability of the fully connected hidden layers' weights.
        patience: early-stopping patience in epochs.
        monitor: the metric early stopping watches. ``val_acc`` rather than ``val_loss``,
            because with a well-tuned learning rate the validation loss of an
            unregularized MLP starts rising from overconfidence long before its validation
            accuracy stops improving.
    """

    l2: float = 1e-3
    l1: float = 2e-5
    p: float = 0.5
    input_p: float = 0.2
    dropconnect_p: float = 0.5
    patience: int = 10
    monitor: str = "val_acc"


def builtin_strategies(defaults: StrategyDefaults | None = None) -> dict[str, StrategyConfig]:
    """Return every built-in strategy, built from ``defaults`` and validated.

    Raises:
        ConfigError: a strength is out of range; the message names the setting.
    """
    d = defaults or StrategyDefaults()
    dropout = {"p": d.p, "input_p": d.input_p}
    early_stopping = {"monitor": d.monitor, "patience": d.patience}
    raw = {
        "baseline": {},
        "l2": {"l2": d.l2},
        "l1": {"l1": d.l1},
        "dropout": {"dropout": dropout},
        "dropconnect": {"dropconnect": {"p": d.dropconnect_p}},
        "early-stopping": {"early_stopping": early_stopping},
        "augment": {"augment": True},
        "combined": {"l2": d.l2, "dropout": dropout, "augment": True, "early_stopping": early_stopping},
    }
    return {name: validate(StrategyConfig, data, f"strategies.{name}") for name, data in raw.items()}


BUILTIN_STRATEGIES: dict[str, StrategyConfig] = builtin_strategies()


def resolve_strategies(names: list[str], defaults: StrategyDefaults | None = None) -> dict[str, StrategyConfig]:
    """Look up built-in strategies by name, keeping ``baseline`` first.

    The baseline is always included, because every other strategy is compared against it.

    Raises:
        ConfigError: a name is not a built-in strategy; the message lists the known ones.
    """
    unknown = [name for name in names if name not in KNOWN_STRATEGY_NAMES]
    if unknown:
        known = ", ".join(KNOWN_STRATEGY_NAMES)
        raise ConfigError(f"Unknown strategy {unknown[0]!r}; the built-in strategies are: {known}.")

    available = builtin_strategies(defaults)
    ordered = ["baseline"] + [name for name in names if name != "baseline"]
    return {name: available[name] for name in dict.fromkeys(ordered)}


__all__ = [
    "BUILTIN_STRATEGIES",
    "KNOWN_STRATEGY_NAMES",
    "OPTIONAL_STRATEGY_NAMES",
    "STRATEGY_NAMES",
    "DropoutSettings",
    "EarlyStoppingSettings",
    "StrategyDefaults",
    "builtin_strategies",
    "resolve_strategies",
]
