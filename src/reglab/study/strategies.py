"""The built-in strategies of ``reglab compare`` and their default strengths.

Strengths are for the mean cross-entropy of a minibatch, the convention of
:mod:`reglab.penalties`: ``l2=1e-3`` equals ``torch.optim.SGD(weight_decay=1e-3)``.

:data:`DEFAULT_STRATEGY_NAMES` are the strategies that ``reglab compare`` trains when none
are named. The training options (label smoothing, mixup, random erasing, decoupled weight
decay, gradient clipping and a cosine schedule) and DropConnect are built in too, and are
trained only when named, for example with ``--strategies baseline,mixup``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reglab.errors import ConfigError
from reglab.training.config import DropoutSettings, EarlyStoppingSettings, StrategyConfig, validate

DEFAULT_STRATEGY_NAMES = ("baseline", "l2", "l1", "dropout", "early-stopping", "augment", "combined")
STRATEGY_NAMES = DEFAULT_STRATEGY_NAMES + (
    "label-smoothing",
    "mixup",
    "random-erasing",
    "weight-decay",
    "clip",
    "cosine",
    "dropconnect",
)


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
        label_smoothing: the label-smoothing factor; 0.1 is the value Szegedy et al. (2016)
            used on ImageNet.
        mixup: mixup's alpha; 0.2 is one of the values Zhang et al. (2018) used on ImageNet.
        random_erasing: the probability of erasing; 0.5 is the default of Zhong et al.
            (2020) and of ``torchvision.transforms.v2.RandomErasing``.
        weight_decay: the decoupled weight decay; equal to ``l2`` so that the two
            strategies differ only in how the decay meets momentum (with plain SGD they
            coincide).
        clip_grad_norm: the maximum global gradient norm; 1.0 is a round starting value,
            to be tuned against the gradient norms the model shows.
    """

    l2: float = 1e-3
    l1: float = 2e-5
    p: float = 0.5
    input_p: float = 0.2
    dropconnect_p: float = 0.5
    patience: int = 10
    monitor: str = "val_acc"
    label_smoothing: float = 0.1
    mixup: float = 0.2
    random_erasing: float = 0.5
    weight_decay: float = 1e-3
    clip_grad_norm: float = 1.0


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
        "label-smoothing": {"label_smoothing": d.label_smoothing},
        "mixup": {"mixup": d.mixup},
        "random-erasing": {"random_erasing": d.random_erasing},
        "weight-decay": {"weight_decay": d.weight_decay},
        "clip": {"clip_grad_norm": d.clip_grad_norm},
        "cosine": {"schedule": {"name": "cosine"}},
    }
    return {name: validate(StrategyConfig, data, f"strategies.{name}") for name, data in raw.items()}


BUILTIN_STRATEGIES: dict[str, StrategyConfig] = builtin_strategies()


def resolve_strategies(names: list[str], defaults: StrategyDefaults | None = None) -> dict[str, StrategyConfig]:
    """Look up built-in strategies by name, keeping ``baseline`` first.

    The baseline is always included, because every other strategy is compared against it.

    Raises:
        ConfigError: a name is not a built-in strategy (the message lists the known ones), or
            a name is listed twice.
    """
    unknown = [name for name in names if name not in STRATEGY_NAMES]
    if unknown:
        known = ", ".join(STRATEGY_NAMES)
        raise ConfigError(f"Unknown strategy {unknown[0]!r}; the built-in strategies are: {known}.")
    repeated = [name for index, name in enumerate(names) if name in names[:index]]
    if repeated:
        raise ConfigError(f"strategy {repeated[0]!r} is listed twice in {list(names)!r}; list each strategy once.")

    available = builtin_strategies(defaults)
    ordered = ["baseline"] + [name for name in names if name != "baseline"]
    return {name: available[name] for name in dict.fromkeys(ordered)}


__all__ = [
    "BUILTIN_STRATEGIES",
    "DEFAULT_STRATEGY_NAMES",
    "STRATEGY_NAMES",
    "DropoutSettings",
    "EarlyStoppingSettings",
    "StrategyDefaults",
    "builtin_strategies",
    "resolve_strategies",
]
