"""reglab: regularize PyTorch networks and measure how much each regularizer helps.

The components import nothing from the training pipeline, so each can be used alone:
:mod:`reglab.penalties`, :mod:`reglab.nn`, :mod:`reglab.early_stopping`,
:mod:`reglab.augment` and :mod:`reglab.inference`.
"""

__version__ = "0.4.1"

from reglab.early_stopping import EarlyStopping, StopReason  # noqa: E402

__all__ = ["EarlyStopping", "StopReason", "__version__"]
