"""Mixed precision: the forward passes of a run in bfloat16, its weights and updates in float32.

A run's ``precision`` setting is ``"fp32"`` (the default) or ``"bf16"``. With ``"bf16"``,
:func:`autocast` wraps every forward pass of the run, training and evaluation, in
``torch.autocast(device_type, dtype=torch.bfloat16)``. Convolutions and matrix products
then run in bfloat16. The cross-entropy, the BatchNorm running statistics, the weights,
their gradients and the optimizer state stay in float32 (Kalamkar et al., 2019, "A Study
of BFLOAT16 for Deep Learning Training"). The backward pass runs outside the autocast
region and follows the dtypes of the forward pass, as PyTorch's automatic mixed precision
recommends.

bfloat16 keeps float32's exponent range, so no loss scaling is needed. It pays only where
the hardware computes it natively: on CPUs with AMX or AVX-512 BF16 (Intel Sapphire Rapids
and later, AMD Zen 4 and later) and on GPUs of compute capability 8.0 or higher.
Elsewhere the products are emulated and slower than float32; :func:`bf16_is_fast` returns
which case holds.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterator

import torch

from reglab.training.config import Precision

PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
"""The accepted values of a run's ``precision`` setting."""


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the forward passes inside the block in the run's precision on ``device``.

    Args:
        precision: ``"fp32"`` leaves the block as it is; ``"bf16"`` enters
            ``torch.autocast(device.type, dtype=torch.bfloat16)``.
        device: the device of the model and its inputs.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        yield


def bf16_is_fast(device: torch.device | str) -> bool:
    """Return whether ``device`` computes bfloat16 products natively.

    A CPU qualifies with AMX tiles or AVX-512 BF16 instructions, a CUDA GPU with compute
    capability 8.0 or higher. Other devices return False.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False

    # NOTE: torch.cpu exposes these checks only under private names; a torch release without
    # them reads as "not fast", which keeps float32.
    checks = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(check() for check in checks if check is not None)


__all__ = ["PRECISIONS", "autocast", "bf16_is_fast"]
