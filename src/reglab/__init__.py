"""reglab: regularize PyTorch networks and measure how much each regularizer helps.

The components import nothing from the training pipeline, so each can be used alone:
:mod:`reglab.penalties`, :mod:`reglab.nn`, :mod:`reglab.early_stopping`,
:mod:`reglab.augment` and :mod:`reglab.inference`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.5.0"

if TYPE_CHECKING:
    from reglab.early_stopping import EarlyStopping, StopReason

# The exports load on first use, so that `import reglab` does not import torch. The
# `reglab` console script relies on it to handle a Ctrl-C during its start-up.
_LAZY_EXPORTS = {"EarlyStopping": "reglab.early_stopping", "StopReason": "reglab.early_stopping"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'reglab' has no attribute {name!r}")


__all__ = ["EarlyStopping", "StopReason", "__version__"]
