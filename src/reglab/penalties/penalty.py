"""L1, L2 and elastic-net penalties that are added to the mean minibatch loss.

Each penalty is a callable ``penalty(model) -> Tensor``. Its value is a 0-dim tensor on the
device and with the dtype of the penalized parameters, and autograd differentiates it like
any other loss term::

    loss = criterion(model(x), y) + penalty(model)
    loss.backward()

The strengths follow PyTorch's convention for ``weight_decay``: ``L2(strength=λ)`` adds
``λ/2 · Σ w²``, whose gradient is ``λ·w``, so L2 with plain SGD (with or without momentum)
updates the parameters as ``torch.optim.SGD(weight_decay=λ)`` does. For adaptive optimizers
such as Adam this is not weight decay; see :func:`reglab.penalties.check_optimizer`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reglab._validation import check_non_negative
from reglab.penalties.selection import ParamSpec, check_params_spec, select_parameters


class _Penalty:
    """Base class that owns validation, parameter selection, the sum over parameters and repr.

    A subclass sets ``_owner`` and implements ``_term(param)``, the penalty of one parameter
    tensor at strength 1.
    """

    _owner = "penalty"

    def __init__(self, strength: float, params: ParamSpec = "weights") -> None:
        self.strength = check_non_negative(self._owner, "strength", strength)
        self.params = check_params_spec(self._owner, params)

    def _term(self, param: Tensor) -> Tensor:
        raise NotImplementedError

    def selected(self, model: nn.Module) -> list[tuple[str, nn.Parameter, float]]:
        """Return ``(name, parameter, strength)`` for each parameter that this penalty covers."""
        return select_parameters(model, self.params, self.strength, owner=self._owner)

    def __call__(self, model: nn.Module) -> Tensor:
        selected = self.selected(model)

        total: Tensor | None = None
        for _, param, strength in selected:
            if strength == 0.0:
                continue
            term = strength * self._term(param)
            total = term if total is None else total + term

        if total is None:
            # Nothing to penalize: return a constant zero where the parameters live.
            reference = selected[0][1] if selected else next(model.parameters(), None)
            if reference is None:
                return torch.zeros(())
            return torch.zeros((), dtype=reference.dtype, device=reference.device)
        return total

    def _repr_args(self) -> str:
        return f"strength={self.strength!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_args()}, params={self.params!r})"


# The arguments, attributes and return value that the L2 and L1 docstrings share, spliced
# in for their ``{strength_penalty}`` placeholder below the classes.
_STRENGTH_PENALTY_DOC = r"""Args:
        strength: :math:`\lambda \ge 0`. 0 switches the penalty off.
        params: which parameters to penalize: ``"weights"`` (two or more dimensions, the
            default), ``"all"``, a list of name patterns, or a mapping from pattern to
            strength whose values replace ``strength``. See
            :func:`~reglab.penalties.select_parameters`.

    Attributes:
        strength: :math:`\lambda`.
        params: the normalized ``params`` argument.

    Returns:
        Called on a model, a 0-dim tensor on the parameters' device."""


class L2(_Penalty):
    r"""The L2 penalty :math:`\frac{\lambda}{2} \sum w^2`, also called ridge regularization.

    Its gradient is :math:`\lambda w`. Added to the mean minibatch loss and trained with
    ``torch.optim.SGD``, it gives the same updates as ``SGD(weight_decay=λ)`` without the
    penalty, with and without momentum, up to floating-point rounding.
    :func:`~reglab.penalties.l2_param_groups` turns it into such optimizer parameter groups,
    which avoids the extra autograd work.

    Conversions from other conventions (see also :mod:`reglab.penalties.conversions`):

    * PyTorch ``SGD(weight_decay=d)``: ``strength = d``.
    * Keras ``regularizers.L2(l2)`` adds ``l2 · Σ w²``, without the ½: ``strength = 2·l2``.
    * scikit-learn ``MLPClassifier(alpha=a)`` adds ``a / (2·n_batch) · Σ w²`` to the mean
      loss of a batch of ``n_batch`` samples: ``strength = a / n_batch``.
    * A textbook cost ``C0 + λ/(2n) · Σ w²`` with ``C0`` the mean loss over ``n`` training
      samples: ``strength = λ/n``. For ``C0 + λ/n · Σ w²``: ``strength = 2λ/n``.

    An adaptive optimizer (Adam, RMSprop, Adagrad and others) rescales the penalty's
    gradient per parameter like the rest of the gradient, so the penalty is not weight decay
    there. Use ``torch.optim.AdamW`` with :func:`~reglab.penalties.adamw_param_groups`
    instead.

    {strength_penalty}

    Example::

        >>> model = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        ...     _ = model.bias.fill_(3.0)
        >>> L2(0.1)(model)  # 0.1 / 2 * (1 + 4); the bias is not a weight
        tensor(0.2500, grad_fn=<MulBackward0>)
    """

    _owner = "L2"

    def _term(self, param: Tensor) -> Tensor:
        return 0.5 * param.square().sum()


class L1(_Penalty):
    r"""The L1 penalty :math:`\lambda \sum |w|`, also called lasso regularization.

    Its gradient is :math:`\lambda \operatorname{sign}(w)`, with 0 at :math:`w = 0`. With
    (sub)gradient descent it drives many weights towards zero but rarely to exactly zero, so
    measure the effect with :func:`~reglab.penalties.sparsity` and a small threshold. Keras's
    ``regularizers.L1(l1)`` adds the same term: ``strength = l1``.

    {strength_penalty}

    Example::

        >>> model = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> L1(0.1)(model)  # 0.1 * (1 + 2)
        tensor(0.3000, grad_fn=<MulBackward0>)
    """

    _owner = "L1"

    def _term(self, param: Tensor) -> Tensor:
        return param.abs().sum()


# Under ``python -OO`` docstrings are None and nothing is spliced.
for _cls in (L2, L1):
    if _cls.__doc__:
        _cls.__doc__ = _cls.__doc__.replace("{strength_penalty}", _STRENGTH_PENALTY_DOC)
del _cls


class ElasticNet(_Penalty):
    r"""The elastic-net penalty :math:`\lambda_1 \sum |w| + \frac{\lambda_2}{2} \sum w^2`.

    Zou & Hastie, "Regularization and variable selection via the elastic net", JRSS B, 2005.
    The L2 part follows the convention of :class:`L2`, so ``ElasticNet(0, l2)`` equals
    ``L2(l2)`` and ``ElasticNet(l1, 0)`` equals ``L1(l1)``. Keras's
    ``regularizers.L1L2(l1, l2)`` corresponds to ``ElasticNet(l1, 2 * l2)``.

    ``strength`` is an overall factor that multiplies both parts. It is 1 unless ``params``
    is a mapping, whose values replace it per parameter: with
    ``params={"0.weight": 0.5, "*.weight": 1.0}`` the first layer gets half of ``l1`` and
    ``l2``.

    Args:
        l1: :math:`\lambda_1 \ge 0`, the strength of the L1 part.
        l2: :math:`\lambda_2 \ge 0`, the strength of the L2 part.
        params: which parameters to penalize: ``"weights"`` (two or more dimensions, the
            default), ``"all"``, a list of name patterns, or a mapping from pattern to a
            factor on both strengths. See :func:`~reglab.penalties.select_parameters`.

    Attributes:
        l1: :math:`\lambda_1`.
        l2: :math:`\lambda_2`.
        strength: the overall factor, 1.0.
        params: the normalized ``params`` argument.

    Returns:
        Called on a model, a 0-dim tensor on the parameters' device.

    Example::

        >>> model = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        >>> ElasticNet(l1=0.1, l2=0.2)(model)  # 0.1 * 3 + 0.2 / 2 * 5
        tensor(0.8000, grad_fn=<MulBackward0>)
    """

    _owner = "ElasticNet"

    def __init__(self, l1: float, l2: float, params: ParamSpec = "weights") -> None:
        self.l1 = check_non_negative(self._owner, "l1", l1)
        self.l2 = check_non_negative(self._owner, "l2", l2)
        super().__init__(1.0, params)

    def _term(self, param: Tensor) -> Tensor:
        # Skip a part whose strength is 0, which saves its autograd work.
        if self.l2 == 0.0:
            return self.l1 * param.abs().sum()
        if self.l1 == 0.0:
            return (0.5 * self.l2) * param.square().sum()
        return self.l1 * param.abs().sum() + (0.5 * self.l2) * param.square().sum()

    def _repr_args(self) -> str:
        return f"l1={self.l1!r}, l2={self.l2!r}"

