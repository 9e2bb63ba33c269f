"""The max-norm constraint on each unit's incoming weight vector."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reglab._validation import check_positive
from reglab.errors import ConfigError
from reglab.penalties.selection import ParamSpec, check_params_spec, select_parameters


class MaxNorm:
    r"""Rescale each unit's incoming weight vector whose L2 norm exceeds ``max_value``.

    After each ``optimizer.step()``, call ``max_norm(model)``. It projects every incoming
    weight vector :math:`w` of a unit onto the ball :math:`\|w\|_2 \le c`: a vector with
    :math:`\|w\|_2 > c` becomes :math:`w \cdot c / \|w\|_2`, with the same direction and
    norm ``c`` up to floating-point rounding, and a vector inside the ball is left
    bit-for-bit unchanged. Unlike Keras's ``MaxNorm``, no epsilon is added to the norm.

    Srebro & Shraibman, "Rank, Trace-Norm and Max-Norm", COLT 2005, introduced the max-norm.
    Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
    JMLR 2014, combined it with dropout and large learning rates.

    Which vectors: PyTorch stores weights with the output units on dimension 0
    (``nn.Linear``: ``[out, in]``, ``nn.Conv2d``: ``[out, in, kh, kw]``), so by default
    (``dim=None``) the norm of unit ``j`` is taken over ``weight[j]``, that is over every
    dimension except 0. For ``nn.Linear`` that is ``dim=1``. ``dim`` names the dimensions
    that the norm is reduced over, as in :func:`torch.linalg.vector_norm` and Keras's
    ``axis``. Keras stores a Dense kernel as ``[in, out]``, so Keras's ``axis=0`` is
    ``dim=1`` here. A 1-dim parameter such as a bias, selected with ``params="all"``, has no
    dimension left after dimension 0, so each of its elements is clipped to
    ``[-max_value, max_value]``.

    Args:
        max_value: the maximum norm :math:`c > 0`.
        dim: the dimension or dimensions that the norm is reduced over, or None (the
            default) for every dimension except 0.
        params: which parameters to constrain: ``"weights"`` (two or more dimensions, the
            default), ``"all"``, a list of name patterns, or a mapping from pattern to a
            per-layer ``max_value``. See :func:`~reglab.penalties.select_parameters`.

    Raises:
        ConfigError: if ``max_value`` or a mapping value is not a positive finite number,
            if ``dim`` is not None, an int or a tuple of ints, or, when called, if ``dim``
            is out of range for a selected parameter.

    Example::

        >>> layer = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
        >>> MaxNorm(1.0)(layer)
        >>> layer.weight
        Parameter containing:
        tensor([[0.6000, 0.8000],
                [0.3000, 0.4000]], requires_grad=True)
    """

    _owner = "MaxNorm"

    def __init__(
        self,
        max_value: float,
        dim: int | tuple[int, ...] | None = None,
        params: ParamSpec = "weights",
    ) -> None:
        self.max_value = check_positive(self._owner, "max_value", max_value)
        self.dim = _check_dim(self._owner, dim)
        self.params = check_params_spec(self._owner, params)
        if isinstance(self.params, dict):
            for pattern, value in self.params.items():
                check_positive(self._owner, f"params[{pattern!r}]", value)

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        selected = select_parameters(model, self.params, self.max_value, owner=self._owner)
        for name, param, max_value in selected:
            dims = self._reduced_dims(name, param)
            if not dims:
                # Each element is its own vector, and clamping is exact.
                param.clamp_(-max_value, max_value)
                continue
            norms = torch.linalg.vector_norm(param, ord=2, dim=dims, keepdim=True)
            # Multiplying by exactly 1.0 leaves the vectors inside the ball unchanged.
            scale = torch.where(norms > max_value, max_value / norms, torch.ones_like(norms))
            param.mul_(scale)

    def _reduced_dims(self, name: str, param: Tensor) -> tuple[int, ...]:
        if self.dim is None:
            return tuple(range(1, param.ndim))
        dims = self.dim if isinstance(self.dim, tuple) else (self.dim,)
        for d in dims:
            if not -param.ndim <= d < param.ndim:
                raise ConfigError(
                    f"{self._owner}: dim must be a valid dimension for parameter {name!r} "
                    f"of shape {tuple(param.shape)}, got {self.dim!r}."
                )
        return dims

    def __repr__(self) -> str:
        return f"MaxNorm(max_value={self.max_value!r}, dim={self.dim!r}, params={self.params!r})"


def _check_dim(owner: str, dim: object) -> int | tuple[int, ...] | None:
    if dim is None or (isinstance(dim, int) and not isinstance(dim, bool)):
        return dim
    if (
        isinstance(dim, (tuple, list))
        and dim
        and all(isinstance(d, int) and not isinstance(d, bool) for d in dim)
    ):
        return tuple(dim)
    raise ConfigError(
        f"{owner}: dim must be None, an int or a non-empty tuple of ints, got {dim!r}."
    )
