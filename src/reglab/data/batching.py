"""Minibatches drawn by index from tensors held in memory, without a per-sample DataLoader."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from reglab._validation import check_int
from reglab.errors import ConfigError


def iterate_minibatches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(xb, yb)`` minibatches that cover every example once per pass.

    With ``shuffle=True`` the order is a permutation drawn with ``generator`` (on the
    generator's device, then moved to ``x``'s device), and the batches are gathered with
    :func:`torch.index_select`. Without shuffling the batches are consecutive slices (views).

    Args:
        x: the inputs, on any device.
        y: the labels, on ``x``'s device.
        batch_size: examples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: draw a new random order for this pass.
        generator: the random generator for the order; the global one when None. A seeded
            generator makes the order reproducible.
        drop_last: skip the last batch when it has fewer than ``batch_size`` examples.

    Yields:
        ``(xb, yb)`` with ``batch_size`` examples each, except possibly the last.

    Raises:
        ConfigError: ``batch_size`` is not a positive int, or ``x`` and ``y`` differ in length.

    Example::

        >>> generator = torch.Generator().manual_seed(0)
        >>> for xb, yb in iterate_minibatches(x, y, 128, shuffle=True, generator=generator):
        ...     loss = loss_fn(model(xb), yb)
    """
    batch_size = check_int("iterate_minibatches", "batch_size", batch_size, minimum=1)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ConfigError(
            f"iterate_minibatches: x and y must have the same number of examples, got {n} and {y.shape[0]}."
        )

    order = None
    if shuffle:
        device = generator.device if generator is not None else x.device
        order = torch.randperm(n, generator=generator, device=device).to(x.device)

    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x.index_select(0, index), y.index_select(0, index)
