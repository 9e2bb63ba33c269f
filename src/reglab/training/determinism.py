"""Deterministic mode for training on a GPU.

On a CPU, reglab's runs are deterministic as they are: the same seed gives bit-identical
metrics. On CUDA, several kernels (atomics in index and scatter backward passes, cuBLAS
workspaces, cuDNN's algorithm search) may differ from run to run. :func:`deterministic_mode`
switches them to their deterministic versions for the duration of a run, following
PyTorch's reproducibility notes: ``torch.use_deterministic_algorithms(True)``,
``torch.backends.cudnn.deterministic = True``, ``torch.backends.cudnn.benchmark = False``
and the ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` environment variable.

Even so, a run reproduced on another GPU model, driver or library version can differ in the
last bits, so a GPU run is verified within :data:`GPU_TOLERANCE`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Largest absolute difference between a stored and a reproduced metric (accuracies, losses,
# weights) that still verifies a run trained on a GPU. CPU runs must match exactly.
GPU_TOLERANCE = 1e-5


@contextmanager
def deterministic_mode(device: torch.device) -> Iterator[None]:
    """Use deterministic CUDA kernels inside the block when ``device`` is a GPU.

    On other devices the block runs unchanged. The previous settings are restored on exit.

    NOTE: cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when the process creates its first cuBLAS
    handle, so a process that used cuBLAS before the first run keeps its workspace setting.
    PyTorch then warns instead of raising, because ``warn_only`` is set.
    """
    if device.type != "cuda":
        yield
        return

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic = previous[2]
        torch.backends.cudnn.benchmark = previous[3]
