"""Argument checks shared by the components, with one message formula.

Every message reads ``<owner>: <argument> must be <constraint>, got <value>.`` so that a
user sees the argument, what was expected and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from reglab.errors import ConfigError


def _fail(owner: str, name: str, constraint: str, value: Any) -> ConfigError:
    return ConfigError(f"{owner}: {name} must be {constraint}, got {value!r}.")


def check_number(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as a float, raising ConfigError for non-numbers, NaN and inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(owner, name, "a finite number", value)
    if not math.isfinite(value):
        raise _fail(owner, name, "a finite number", value)
    return float(value)


def check_probability(owner: str, name: str, value: Any, *, allow_one: bool = True) -> float:
    """Check a probability such as a dropout ``p``: [0, 1], or [0, 1) when ``allow_one`` is False."""
    value = check_number(owner, name, value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if value < 0.0 or not upper_ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise _fail(owner, name, f"in {interval}", value)
    return value


def check_non_negative(owner: str, name: str, value: Any) -> float:
    """Check a strength, a decay or a margin that must be zero or positive."""
    value = check_number(owner, name, value)
    if value < 0.0:
        raise _fail(owner, name, ">= 0 (use 0 to switch it off)", value)
    return value


def check_positive(owner: str, name: str, value: Any) -> float:
    value = check_number(owner, name, value)
    if value <= 0.0:
        raise _fail(owner, name, "> 0", value)
    return value


def check_int(owner: str, name: str, value: Any, *, minimum: int = 0) -> int:
    """Check a count such as ``patience`` or ``epochs``: an int that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(owner, name, f"an int >= {minimum}", value)
    if value < minimum:
        raise _fail(owner, name, f"an int >= {minimum}", value)
    return value


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise _fail(owner, name, f"one of {allowed}", value)
    return value
