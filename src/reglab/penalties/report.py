"""Per-layer weight statistics, such as norms and sparsity, that show what a penalty did."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reglab._validation import check_positive
from reglab.errors import ConfigError
from reglab.penalties.selection import ParamSpec, select_parameters


@dataclass(frozen=True)
class LayerWeightStats:
    """Statistics of one parameter tensor, computed in float64.

    Attributes:
        name: the parameter's name in ``model.named_parameters()``.
        shape: the parameter's shape.
        n_params: the number of elements.
        l2_norm: :math:`\\sqrt{\\sum w^2}`.
        l1_norm: :math:`\\sum |w|`.
        max_abs: :math:`\\max |w|`, 0.0 for an empty tensor.
        sparsity: the share of elements with :math:`|w| <` threshold, in [0, 1], 0.0 for an
            empty tensor.
    """

    name: str
    shape: tuple[int, ...]
    n_params: int
    l2_norm: float
    l1_norm: float
    max_abs: float
    sparsity: float


def weight_report(
    model: nn.Module,
    threshold: float = 1e-3,
    params: ParamSpec = "weights",
) -> list[LayerWeightStats]:
    """Compute norms and sparsity of each selected parameter, for example after L1 training.

    Args:
        model: the model to describe. Its parameters are read, not changed.
        threshold: elements with an absolute value below it count as zero in ``sparsity``.
            It must be greater than 0.
        params: which parameters to describe: ``"weights"`` (two or more dimensions, the
            default), ``"all"``, or a list of name patterns. See
            :func:`~reglab.penalties.select_parameters`.

    Returns:
        One :class:`LayerWeightStats` per selected parameter, in the order of
        ``model.named_parameters()``.

    Example::

        >>> layer = nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -4.0]]))
        >>> weight_report(layer)
        [LayerWeightStats(name='weight', shape=(2, 2), n_params=4, l2_norm=5.0, l1_norm=7.0, max_abs=4.0, sparsity=0.5)]
    """
    threshold = check_positive("weight_report", "threshold", threshold)
    report = []
    for name, param, _ in select_parameters(model, params, 0.0, owner="weight_report"):
        magnitudes = param.detach().abs().to(torch.float64)
        n_params = magnitudes.numel()
        if n_params == 0:
            report.append(LayerWeightStats(name, tuple(param.shape), 0, 0.0, 0.0, 0.0, 0.0))
            continue
        report.append(
            LayerWeightStats(
                name=name,
                shape=tuple(param.shape),
                n_params=n_params,
                l2_norm=torch.linalg.vector_norm(magnitudes).item(),
                l1_norm=magnitudes.sum().item(),
                max_abs=magnitudes.max().item(),
                sparsity=(magnitudes < threshold).sum().item() / n_params,
            )
        )
    return report


def sparsity(model: nn.Module, threshold: float = 1e-3, params: ParamSpec = "weights") -> float:
    """Compute the share of elements below ``threshold`` in absolute value, over all selected parameters.

    Each element counts once, so a large layer weighs more than a small one.

    Args:
        model: the model to describe.
        threshold: elements with an absolute value below it count as zero. It must be
            greater than 0.
        params: which parameters to count: ``"weights"`` (the default), ``"all"`` or a list
            of name patterns.

    Returns:
        A share in [0, 1].

    Raises:
        ConfigError: if ``threshold`` is not positive or if no selected parameter has any
            element.

    Example::

        >>> layer = nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -4.0]]))
        >>> sparsity(layer)
        0.5
    """
    threshold = check_positive("sparsity", "threshold", threshold)
    n_small = 0
    n_total = 0
    for _, param, _ in select_parameters(model, params, 0.0, owner="sparsity"):
        n_small += int((param.detach().abs() < threshold).sum().item())
        n_total += param.numel()
    if n_total == 0:
        raise ConfigError(
            f"sparsity: params must select at least one parameter element, got none for {params!r}."
        )
    return n_small / n_total
