"""Weight decay through optimizer parameter groups, and a check for L2 with adaptive optimizers.

An L2 penalty added to the loss and an optimizer's ``weight_decay`` are the same thing for
plain SGD. :func:`l2_param_groups` builds the parameter groups for that fast path, which
saves the penalty's autograd work.

For adaptive optimizers they differ. Adam and its relatives divide each parameter's
gradient by a running estimate of its magnitude. The gradient ``λ·w`` of an L2 penalty is
divided too, so weights with large gradients are decayed less than the others. The same
holds for ``Adam(weight_decay=λ)``, which adds ``λ·w`` to the gradient.
Decoupled weight decay shrinks every weight by the same factor instead, outside the
adaptive step: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
https://arxiv.org/abs/1711.05101, implemented as ``torch.optim.AdamW``.
:func:`check_optimizer` warns about the coupled combinations, and
:func:`adamw_param_groups` builds the groups for the decoupled one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import nn

from reglab._validation import check_non_negative
from reglab.errors import ConfigError
from reglab.penalties.penalty import L2, ElasticNet, _Penalty
from reglab.penalties.selection import ParamSpec, select_parameters

__all__ = [
    "RegularizationWarning",
    "adamw_param_groups",
    "check_optimizer",
    "l2_param_groups",
    "reset_warning_registry",
]


class RegularizationWarning(UserWarning):
    """Warning category for a regularizer that an optimizer turns into something else.

    An example is an L2 penalty with Adam, which is then not weight decay.
    """


# Optimizers that rescale each parameter's gradient by a running statistic of its own
# gradients. Classes missing from older PyTorch versions are skipped.
_ADAPTIVE_NAMES = (
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "SparseAdam",
    "Adafactor",
)
_ADAPTIVE = tuple(
    getattr(torch.optim, name) for name in _ADAPTIVE_NAMES if hasattr(torch.optim, name)
)

# Adaptive optimizers whose weight_decay always shrinks the weights directly.
_DECOUPLED = tuple(
    getattr(torch.optim, name) for name in ("AdamW", "Adafactor") if hasattr(torch.optim, name)
)

# Messages already issued in this process, so that check_optimizer issues each one once.
_warned: set[str] = set()

_ADAMW_ADVICE = (
    "use torch.optim.AdamW instead, which applies decoupled weight decay "
    "(Loshchilov & Hutter, 2019), for example "
    "torch.optim.AdamW(reglab.penalties.adamw_param_groups(model, weight_decay))."
)


def l2_param_groups(
    model: nn.Module,
    penalty_or_strength: L2 | float,
    params: ParamSpec | None = None,
) -> list[dict]:
    r"""Turn an L2 penalty into optimizer parameter groups with ``weight_decay`` set per group.

    ``torch.optim.SGD(l2_param_groups(model, L2(λ)), lr=...)`` trains as SGD with the
    penalty :math:`\frac{\lambda}{2} \sum w^2` added to the loss, with and without momentum,
    up to floating-point rounding, and computes no penalty term. Parameters that the penalty
    does not cover go into a group with ``weight_decay=0.0``. Options that a group leaves out,
    such as ``lr``, take the optimizer's defaults.

    With an adaptive optimizer such as Adam these groups give an L2 penalty, not weight
    decay; use :func:`adamw_param_groups` with ``torch.optim.AdamW`` for that.

    Args:
        model: the model whose parameters are grouped. Every parameter appears in exactly
            one group.
        penalty_or_strength: an :class:`~reglab.penalties.L2` penalty, whose ``strength``
            and ``params`` are used, or a strength :math:`\lambda \ge 0`.
        params: with a strength, which parameters get the decay (``"weights"`` when left
            out). With a penalty, leave it out: the penalty's own ``params`` apply.

    Returns:
        One dict ``{"params": [...], "weight_decay": d}`` per distinct decay, in the order in
        which ``model.named_parameters()`` first meets each decay. Empty groups are left out.

    Raises:
        ConfigError: for an L1 or elastic-net penalty (their L1 part is not a weight decay),
            for ``params`` given together with a penalty, and for the errors of
            :func:`~reglab.penalties.select_parameters`.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> groups = l2_param_groups(model, L2(1e-4))
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(2, 0.0001), (2, 0.0)]
        >>> optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    """
    owner = "l2_param_groups"
    if isinstance(penalty_or_strength, L2):
        if params is not None:
            raise ConfigError(
                f"{owner}: params must be left out when an L2 penalty is given, because the "
                f"penalty's own params apply, got {params!r} with {penalty_or_strength!r}."
            )
        spec = penalty_or_strength.params
        strength = penalty_or_strength.strength
    elif isinstance(penalty_or_strength, _Penalty):
        raise ConfigError(
            f"{owner}: penalty_or_strength must be an L2 penalty or a number, because only an "
            f"L2 penalty equals a weight decay, got {penalty_or_strength!r}."
        )
    else:
        spec = "weights" if params is None else params
        strength = check_non_negative(owner, "penalty_or_strength", penalty_or_strength)
    return _weight_decay_groups(model, spec, strength, owner)


def adamw_param_groups(
    model: nn.Module,
    weight_decay: float,
    params: ParamSpec = "weights",
) -> list[dict]:
    r"""Build parameter groups for decoupled weight decay on the selected parameters only.

    ``torch.optim.AdamW`` decays every parameter by default, biases and normalization scales
    included. These groups restrict the decay to ``params`` and give every other parameter
    ``weight_decay=0.0``. Every step then multiplies each selected weight by
    :math:`1 - \text{lr} \cdot \text{weight\_decay}` before the adaptive step (PyTorch's
    AdamW ties the decay to the learning rate, while Loshchilov & Hutter, 2019, scale it by
    the schedule multiplier only).

    Args:
        model: the model whose parameters are grouped. Every parameter appears in exactly
            one group.
        weight_decay: the decoupled decay, 0 or more. Unlike an L2 strength it is not
            divided by the adaptive step size.
        params: which parameters get the decay: ``"weights"`` (two or more dimensions, the
            default), ``"all"``, a list of name patterns, or a mapping from pattern to decay
            whose values replace ``weight_decay``.

    Returns:
        One dict ``{"params": [...], "weight_decay": d}`` per distinct decay, in the order in
        which ``model.named_parameters()`` first meets each decay. Empty groups are left out.

    Raises:
        ConfigError: for a negative ``weight_decay`` and for the errors of
            :func:`~reglab.penalties.select_parameters`.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))
        >>> optimizer = torch.optim.AdamW(adamw_param_groups(model, 0.01), lr=1e-3)
        >>> [g["weight_decay"] for g in optimizer.param_groups]
        [0.01, 0.0]
    """
    owner = "adamw_param_groups"
    weight_decay = check_non_negative(owner, "weight_decay", weight_decay)
    return _weight_decay_groups(model, params, weight_decay, owner)


def _weight_decay_groups(
    model: nn.Module, params: ParamSpec, strength: float, owner: str
) -> list[dict]:
    decay_by_id = {
        id(param): decay
        for _, param, decay in select_parameters(model, params, strength, owner=owner)
    }
    groups: dict[float, list[nn.Parameter]] = {}
    for _, param in model.named_parameters():
        decay = decay_by_id.get(id(param), 0.0)
        groups.setdefault(decay, []).append(param)
    return [{"params": group, "weight_decay": decay} for decay, group in groups.items()]


def check_optimizer(
    optimizer: torch.optim.Optimizer,
    penalties: _Penalty | Iterable[_Penalty] | None = None,
) -> list[str]:
    """Warn when an L2 penalty or a coupled ``weight_decay`` meets an adaptive optimizer.

    Two combinations produce a :class:`RegularizationWarning`:

    * An :class:`~reglab.penalties.L2` penalty, or an
      :class:`~reglab.penalties.ElasticNet` with a nonzero L2 part, used with an adaptive
      optimizer: Adam, AdamW, Adamax, NAdam, RAdam, Adagrad, Adadelta, RMSprop, SparseAdam,
      Adafactor or a subclass of one of them. The optimizer scales the penalty's gradient
      by each parameter's adaptive step size, so the penalty is not weight decay.
    * An adaptive optimizer whose ``weight_decay`` adds ``weight_decay·w`` to the gradient
      before that scaling, such as ``torch.optim.Adam(weight_decay=0.01)``. AdamW,
      Adafactor, and NAdam, RAdam or Adam built with ``decoupled_weight_decay=True`` decay
      the weights directly and pass.

    SGD and the other non-adaptive optimizers never warn. An L1 penalty does not warn
    either, although adaptive optimizers rescale its gradient too.

    Each message is issued once per process, because a registry stores the messages already
    issued. A message names the optimizer class and the penalty's repr, so a study that
    builds a new Adam with the same penalty for every run warns only for its first run.
    :func:`reset_warning_registry` empties the registry.

    Args:
        optimizer: the optimizer that will train the model.
        penalties: the penalties added to the loss: one penalty, an iterable of them, or
            None.

    Returns:
        Every message that applies to this combination, including those not issued again
        because the registry already contains them. Empty when the combination is fine.

    Example::

        >>> model = nn.Linear(4, 2)
        >>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        >>> messages = check_optimizer(optimizer, L2(1e-4))  # warns once
        >>> len(messages)
        1
    """
    if penalties is None:
        penalties = []
    elif isinstance(penalties, _Penalty):
        penalties = [penalties]
    else:
        penalties = list(penalties)

    if not isinstance(optimizer, _ADAPTIVE):
        return []

    messages = []
    name = type(optimizer).__name__
    decoupled = _has_decoupled_weight_decay(optimizer)
    for penalty in penalties:
        if not _has_l2_part(penalty):
            continue
        if decoupled:
            advice = (
                f"Remove the L2 penalty and set weight_decay on {name}, which applies it as "
                f"decoupled weight decay (Loshchilov & Hutter, 2019), for example with "
                f"reglab.penalties.adamw_param_groups(model, weight_decay)."
            )
        else:
            advice = f"Remove the L2 penalty and {_ADAMW_ADVICE}"
        messages.append(
            f"{name} with {penalty!r}: an adaptive optimizer scales each parameter's gradient, "
            f"the L2 penalty's gradient included, by its own step size, so an L2 penalty is "
            f"not weight decay and weights with large gradients are decayed less. {advice}"
        )

    weight_decay = max(group.get("weight_decay", 0.0) for group in optimizer.param_groups)
    if weight_decay > 0 and not decoupled:
        messages.append(
            f"{name}(weight_decay={weight_decay!r}) adds weight_decay·w to the gradient before "
            f"the adaptive scaling, so it acts as an L2 penalty and is not weight decay. "
            f"Set weight_decay=0 on {name} and {_ADAMW_ADVICE}"
        )

    for message in messages:
        if message not in _warned:
            _warned.add(message)
            warnings.warn(message, RegularizationWarning, stacklevel=2)
    return messages


def reset_warning_registry() -> None:
    """Forget the messages that :func:`check_optimizer` issued, so that each can warn again."""
    _warned.clear()


def _has_l2_part(penalty: _Penalty) -> bool:
    if isinstance(penalty, L2):
        l2_strength = 1.0
    elif isinstance(penalty, ElasticNet):
        l2_strength = penalty.l2
    else:
        return False
    if isinstance(penalty.params, dict):
        return l2_strength > 0 and any(value > 0 for value in penalty.params.values())
    return l2_strength > 0 and penalty.strength > 0


def _has_decoupled_weight_decay(optimizer: torch.optim.Optimizer) -> bool:
    # AdamW is recognized by its class too, in case a PyTorch version lacks the flag.
    if isinstance(optimizer, _DECOUPLED):
        return True
    return all(group.get("decoupled_weight_decay", False) for group in optimizer.param_groups)
