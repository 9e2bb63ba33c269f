"""Selection of the parameters that a penalty, a weight decay or a constraint applies to.

Every component in :mod:`reglab.penalties` takes the same ``params`` argument:

* ``"weights"`` (the default): parameters with two or more dimensions, that is the weight
  matrices and convolution kernels. Biases and normalization scales and shifts have one
  dimension and are left out.
* ``"all"``: every parameter of the model.
* A list or tuple of :func:`fnmatch.fnmatchcase` patterns on the names that
  ``model.named_parameters()`` returns, such as ``["0.weight", "*.weight"]``.
* A mapping from pattern to strength, such as ``{"0.weight": 1e-3, "*.weight": 1e-4}``, for
  per-layer strengths. Its values replace the component's own strength.

A parameter that several patterns match takes the first matching pattern, in the order of
the list or mapping. A pattern that matches no parameter raises
:class:`~reglab.errors.ConfigError` that lists the model's parameter names, because a
misspelt pattern would otherwise leave a layer unregularized without notice.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Union

from torch import nn

from reglab._validation import check_non_negative
from reglab.errors import ConfigError

ParamSpec = Union[str, Sequence[str], Mapping[str, float]]
"""The type of ``params``: ``"weights"``, ``"all"``, patterns, or a pattern-to-strength mapping."""

_EXPECTED_SPEC = "'weights', 'all', a list of name patterns or a mapping from pattern to strength"

# The error for an unmatched pattern lists at most this many parameter names.
_MAX_NAMES_LISTED = 40


def check_params_spec(owner: str, params: ParamSpec) -> str | tuple[str, ...] | dict[str, float]:
    """Validate a ``params`` argument and return it in a normalized form.

    Components call this in ``__init__`` so that a bad ``params`` fails when the component is
    built, before any model is at hand.

    Args:
        owner: the name that starts each error message, such as ``"L2"``.
        params: the argument to check; see the module docstring for the accepted forms.

    Returns:
        ``"weights"`` or ``"all"``, a tuple of patterns, or a new dict from pattern to strength.

    Raises:
        ConfigError: if ``params`` has another type, names an unknown selection, is empty,
            contains a pattern that is not a string, or maps a pattern to a negative or
            non-finite strength.
    """
    if isinstance(params, str):
        if params in ("weights", "all"):
            return params
        raise ConfigError(f"{owner}: params must be {_EXPECTED_SPEC}, got {params!r}.")

    if isinstance(params, Mapping):
        patterns = _check_patterns(owner, list(params.keys()), params)
        return {
            pattern: check_non_negative(owner, f"params[{pattern!r}]", params[pattern])
            for pattern in patterns
        }

    # A set has no order, so "the first matching pattern" would be undefined.
    if isinstance(params, (list, tuple)):
        return tuple(_check_patterns(owner, list(params), params))

    raise ConfigError(f"{owner}: params must be {_EXPECTED_SPEC}, got {params!r}.")


def _check_patterns(owner: str, patterns: list[object], params: object) -> list[str]:
    if not patterns:
        raise ConfigError(
            f"{owner}: params must contain at least one name pattern, got {params!r}."
        )
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(
                f"{owner}: each pattern in params must be a string, got {pattern!r} in {params!r}."
            )
    return patterns  # type: ignore[return-value]


def select_parameters(
    model: nn.Module,
    params: ParamSpec,
    strength: float,
    *,
    owner: str = "select_parameters",
) -> list[tuple[str, nn.Parameter, float]]:
    """Select the parameters of ``model`` that ``params`` names, each with its strength.

    Args:
        model: the module whose ``named_parameters()`` are searched. A parameter shared by
            two submodules appears once, under its first name.
        params: ``"weights"``, ``"all"``, a list of name patterns or a mapping from pattern
            to strength; see the module docstring.
        strength: the strength given to every selected parameter, unless ``params`` is a
            mapping, whose values replace it.
        owner: the name that starts each error message.

    Returns:
        ``(name, parameter, strength)`` for each selected parameter, in the order of
        ``model.named_parameters()``. Parameters with strength 0 are included.

    Raises:
        ConfigError: if ``strength`` is negative or not a finite number, if ``params`` is
            invalid (see :func:`check_params_spec`), or if a pattern matches no parameter.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
        >>> [name for name, _, _ in select_parameters(model, "weights", 1e-4)]
        ['0.weight', '2.weight']
        >>> [(name, s) for name, _, s in select_parameters(model, {"0.*": 1e-3, "*": 0.0}, 1e-4)]
        [('0.weight', 0.001), ('0.bias', 0.001), ('1.weight', 0.0), ('1.bias', 0.0), ('2.weight', 0.0), ('2.bias', 0.0)]
    """
    strength = check_non_negative(owner, "strength", strength)
    spec = check_params_spec(owner, params)
    named = list(model.named_parameters())

    if spec == "weights":
        return [(name, param, strength) for name, param in named if param.ndim >= 2]
    if spec == "all":
        return [(name, param, strength) for name, param in named]

    if isinstance(spec, dict):
        strengths = spec
    else:
        strengths = dict.fromkeys(spec, strength)
    names = [name for name, _ in named]
    for pattern in strengths:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise ConfigError(
                f"{owner}: params pattern {pattern!r} must match a parameter name "
                f"({_format_names(names)}), got no match."
            )

    selected = []
    for name, param in named:
        for pattern, pattern_strength in strengths.items():
            if fnmatch.fnmatchcase(name, pattern):
                selected.append((name, param, pattern_strength))
                break
    return selected


def _format_names(names: list[str]) -> str:
    if not names:
        return "the model has no parameters"
    listed = ", ".join(repr(name) for name in names[:_MAX_NAMES_LISTED])
    if len(names) > _MAX_NAMES_LISTED:
        listed += f" and {len(names) - _MAX_NAMES_LISTED} more"
    return f"one of {listed}"
