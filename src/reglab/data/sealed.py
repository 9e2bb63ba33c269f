"""The sealed test set: test tensors that are handed out once and every access recorded."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple

import torch
from torch import Tensor

from reglab.errors import ConfigError, SealedTestSetError


class TensorPair(NamedTuple):
    """Inputs and labels of one part of a split."""

    x: Tensor
    y: Tensor


class SealedTestSet:
    """Test tensors that are returned only through :meth:`open`, which records each access.

    reglab evaluates the test set once, after model selection on the validation set. A
    second :meth:`open` raises unless the caller passes ``allow_repeat=True``; either way
    every access is kept in :attr:`accesses`, which the run stores.

    Copies made with :meth:`to` share the access record with the original, so moving a
    split to another device does not reset it.

    Args:
        x: the test inputs.
        y: the test labels.
        seed: the seed of the split the test set belongs to, shown in messages.

    Example::

        >>> sealed = SealedTestSet(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), seed=0)
        >>> test = sealed.open("final evaluation")
        >>> sealed.n_accesses
        1
    """

    __slots__ = ("_x", "_y", "_seed", "_accesses")

    def __init__(self, x: Tensor, y: Tensor, *, seed: int) -> None:
        self._x = x
        self._y = y
        self._seed = seed
        self._accesses: list[dict[str, Any]] = []

    def open(self, purpose: str, *, allow_repeat: bool = False) -> TensorPair:
        """Return the test inputs and labels and record the access.

        Args:
            purpose: why the test set is opened, e.g. ``"final evaluation of strategy 'l2'"``;
                stored with the access.
            allow_repeat: open it even though it was opened before. The access is still
                recorded, with ``repeat=True``.

        Returns:
            The test :class:`TensorPair`.

        Raises:
            SealedTestSetError: the test set was opened before and ``allow_repeat`` is False.
            ConfigError: ``purpose`` is not a non-empty string.
        """
        if not isinstance(purpose, str) or not purpose.strip():
            raise ConfigError(
                f"SealedTestSet.open: purpose must be a non-empty string stating why the test set "
                f"is opened, got {purpose!r}."
            )
        repeat = bool(self._accesses)
        if repeat and not allow_repeat:
            earlier = ", ".join(repr(access["purpose"]) for access in self._accesses)
            raise SealedTestSetError(
                f"the test set of split seed={self._seed} was already evaluated for {earlier}; "
                "reglab evaluates it once, after model selection. Pass allow_repeat=True to "
                "evaluate it again; the run records every access."
            )
        self._accesses.append(
            {"purpose": purpose, "time": datetime.now(timezone.utc).isoformat(), "repeat": repeat}
        )
        return TensorPair(self._x, self._y)

    @property
    def accesses(self) -> list[dict[str, Any]]:
        """A copy of the access record: one dict per :meth:`open`, with ``purpose``, ``time``
        (UTC, ISO 8601) and ``repeat``."""
        return [dict(access) for access in self._accesses]

    @property
    def n_accesses(self) -> int:
        """How many times the test set was opened."""
        return len(self._accesses)

    def to(self, device: str | torch.device) -> SealedTestSet:
        """Return a copy on ``device`` that shares this set's access record."""
        moved = SealedTestSet(self._x.to(device), self._y.to(device), seed=self._seed)
        moved._accesses = self._accesses
        return moved

    def unopened_copy(self) -> SealedTestSet:
        """Return a copy that shares the tensors and starts with an empty access record.

        Use it to give several runs on the same split one sealed test set each, so that each
        run records its own single access.

        Raises:
            SealedTestSetError: this test set was already opened.
        """
        if self._accesses:
            raise SealedTestSetError(
                f"the test set of split seed={self._seed} was already opened; copy it before the "
                "first access, or make a new split with make_split."
            )
        return SealedTestSet(self._x, self._y, seed=self._seed)

    def __len__(self) -> int:
        return len(self._y)

    def __repr__(self) -> str:
        return f"SealedTestSet(split seed={self._seed}, {len(self)} examples, {self.n_accesses} access(es))"
