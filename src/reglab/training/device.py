"""Checking a requested torch device before any work starts."""

from __future__ import annotations

import torch

from reglab.errors import ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """Return ``device`` as a :class:`torch.device`, or raise ConfigError if it cannot be used.

    Raises:
        ConfigError: the string is not a torch device, or it names CUDA (or MPS) on a machine
            where that backend is not available.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'.") from None

    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r}: CUDA is not available on this machine; use --device cpu.")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use an index below that."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {str(device)!r}: MPS is not available on this machine; use --device cpu.")
    return resolved
