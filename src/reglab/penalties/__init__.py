"""Weight penalties, weight decay, the max-norm constraint and weight statistics.

* :class:`L2`, :class:`L1` and :class:`ElasticNet`: callables ``penalty(model)`` whose
  result is added to the mean minibatch loss. ``L2(λ)`` adds ``λ/2 · Σ w²``, which equals
  ``torch.optim.SGD(weight_decay=λ)``.
* :func:`l2_param_groups` and :func:`adamw_param_groups`: optimizer parameter groups with
  ``weight_decay`` on the selected parameters only.
* :func:`check_optimizer`: a :class:`RegularizationWarning` when an L2 penalty meets Adam
  or another adaptive optimizer, where it is not weight decay.
* :class:`MaxNorm`: the max-norm constraint, applied after each optimizer step.
* :func:`weight_report` and :func:`sparsity`: norms and the share of near-zero weights.
* :func:`from_keras_l2`, :func:`from_sklearn_alpha` and :func:`from_textbook`: conversions
  of other L2 conventions to reglab's strength.

Every component takes the same ``params`` argument, described in
:func:`select_parameters`. By default it selects the weights, that is the parameters with
two or more dimensions, and leaves out biases and normalization parameters.

This package imports nothing from ``reglab.training``, ``reglab.study`` or ``reglab.cli``.
"""

from __future__ import annotations

from reglab.penalties.conversions import from_keras_l2, from_sklearn_alpha, from_textbook
from reglab.penalties.max_norm import MaxNorm
from reglab.penalties.optim import (
    RegularizationWarning,
    adamw_param_groups,
    check_optimizer,
    l2_param_groups,
    reset_warning_registry,
)
from reglab.penalties.penalty import L1, L2, ElasticNet
from reglab.penalties.report import LayerWeightStats, sparsity, weight_report
from reglab.penalties.selection import ParamSpec, select_parameters

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "LayerWeightStats",
    "MaxNorm",
    "ParamSpec",
    "RegularizationWarning",
    "adamw_param_groups",
    "check_optimizer",
    "from_keras_l2",
    "from_sklearn_alpha",
    "from_textbook",
    "l2_param_groups",
    "reset_warning_registry",
    "select_parameters",
    "sparsity",
    "weight_report",
]
