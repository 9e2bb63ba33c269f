"""The built-in strategies of ``reglab compare`` and their default strengths.

Strengths are for the mean cross-entropy of a minibatch, the convention of
:mod:`reglab.penalties`: ``l2=5e-4`` equals ``torch.optim.SGD(weight_decay=5e-4)``.
"""

from __future__ import annotations

from reglab.errors import ConfigError
from reglab.training.config import DropoutSettings, EarlyStoppingSettings, StrategyConfig

DEFAULT_L2 = 1e-3
DEFAULT_L1 = 2e-5
DEFAULT_DROPOUT = DropoutSettings(p=0.5, input_p=0.2)
DEFAULT_EARLY_STOPPING = EarlyStoppingSettings(monitor="val_loss", patience=10)

BUILTIN_STRATEGIES: dict[str, StrategyConfig] = {
    "baseline": StrategyConfig(),
    "l2": StrategyConfig(l2=DEFAULT_L2),
    "l1": StrategyConfig(l1=DEFAULT_L1),
    "dropout": StrategyConfig(dropout=DEFAULT_DROPOUT),
    "early-stopping": StrategyConfig(early_stopping=DEFAULT_EARLY_STOPPING),
    "augment": StrategyConfig(augment=True),
    "combined": StrategyConfig(
        l2=DEFAULT_L2, dropout=DEFAULT_DROPOUT, augment=True, early_stopping=DEFAULT_EARLY_STOPPING
    ),
}


def resolve_strategies(names: list[str]) -> dict[str, StrategyConfig]:
    """Look up built-in strategies by name, keeping ``baseline`` first.

    The baseline is always included, because every other strategy is compared against it.

    Raises:
        ConfigError: a name is not a built-in strategy; the message lists the known ones.
    """
    unknown = [name for name in names if name not in BUILTIN_STRATEGIES]
    if unknown:
        known = ", ".join(BUILTIN_STRATEGIES)
        raise ConfigError(f"Unknown strategy {unknown[0]!r}; expected a comma-separated list of: {known}.")

    ordered = ["baseline"] + [name for name in names if name != "baseline"]
    return {name: BUILTIN_STRATEGIES[name] for name in dict.fromkeys(ordered)}
