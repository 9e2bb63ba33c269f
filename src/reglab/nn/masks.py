"""Bernoulli keep masks for dropout and DropConnect, and RNG helpers shared by the layers.

Masks are drawn as ``torch.rand(shape) < 1 - p``. On CPU this is about three times faster
than ``Tensor.bernoulli_``, which runs on one thread at about 10 ns per element (timeit,
float32, ``[128, 784]`` tensor, torch 2.14 on a 2-core Xeon: 0.33 ms against 1.02 ms).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from reglab._validation import check_probability


def keep_mask(
    shape: Sequence[int] | torch.Size,
    p: float,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Draw a mask whose elements are independently ``True`` with probability ``1 - p``.

    Each element is ``U < 1 - p`` for an independent uniform ``U`` from :func:`torch.rand`.
    Float32 uniforms lie on the grid :math:`k \cdot 2^{-24}`, and ``1 - p`` is rounded to
    float32 for the comparison, so the keep probability equals ``1 - p`` to within
    :math:`2^{-24} \approx 6 \cdot 10^{-8}`. ``p = 0`` keeps every element and ``p = 1``
    drops every element, both exactly.

    Args:
        shape: shape of the mask.
        p: probability that an element is dropped (``False``), in [0, 1].
        device: device of the mask. Defaults to torch's default device.
        dtype: dtype of the returned mask. Defaults to ``torch.bool``. A floating dtype
            gives a mask of 0.0 and 1.0.
        generator: the random number generator to draw from. Defaults to the global
            generator of ``device``.

    Returns:
        A tensor of the given shape, dtype and device.

    Example::

        >>> g = torch.Generator().manual_seed(0)
        >>> mask = keep_mask((128, 784), p=0.2, generator=g)
        >>> mask.dtype, mask.shape
        (torch.bool, torch.Size([128, 784]))
    """
    keep = 1.0 - check_probability("keep_mask", "p", p)
    mask = torch.rand(shape, device=device, generator=generator) < keep
    if dtype != torch.bool:
        mask = mask.to(dtype)
    return mask


def _rng_devices() -> list[int]:
    """Return the CUDA device indices whose RNG state must be saved, or [] without CUDA."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


@contextlib.contextmanager
def forked_rng(seed: int | None = None) -> Iterator[None]:
    """Run the block on a copy of the CPU and CUDA RNG states, optionally seeded.

    The global RNG states are restored when the block exits, also on an exception, so
    random draws inside the block leave no trace on the caller's random stream.

    Args:
        seed: when given, seed the CPU and every CUDA generator with it on entry.

    NOTE: reglab's tests run on CPU only, so the CUDA branch has not been exercised.
    """
    with torch.random.fork_rng(devices=_rng_devices()):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def seed_from(generator: torch.Generator) -> int:
    """Draw a 63-bit seed from ``generator``, advancing it by one draw."""
    return int(torch.randint(0, 2**63 - 1, (), generator=generator, device=generator.device))
