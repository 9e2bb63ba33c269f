"""Checks run right after a network is built, before any training step.

:func:`check_model_memory` rejects a built-in model whose parameters would not fit in
memory, counted on PyTorch's ``meta`` device, which allocates nothing.
:func:`check_model_output` runs one forward pass on a batch of zeros and checks that the
logits have shape ``(N, num_classes)``. A wrong first or last layer then fails with the
spec and the shapes, not with an error in the middle of training.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from reglab.errors import ConfigError

# Training keeps the weights, their gradients and up to two optimizer buffers per weight
# (Adam's first and second moments), so four float32 copies of the parameters. The
# activations of a minibatch come on top and are not counted.
TRAINING_COPIES = 4
# Examples in the trial batch of check_model_output.
TRIAL_BATCH = 2


def physical_memory_bytes() -> int | None:
    """Return the machine's physical memory in bytes, or None where ``os.sysconf`` cannot tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_model_memory(
    spec: str, input_shape: tuple[int, ...], build: Callable[[], nn.Module], memory_bytes: int | None = None
) -> int:
    """Count the parameters that ``build`` creates, without allocating them, and return the count.

    Args:
        spec: the model spec, for the error message.
        input_shape: shape of one example, for the error message.
        build: builds the network; it is called once under ``torch.device("meta")``.
        memory_bytes: the memory to compare with; default: :func:`physical_memory_bytes`.

    Raises:
        ConfigError: training would need more than ``memory_bytes``: ``TRAINING_COPIES``
            float32 copies of the parameters.
    """
    with torch.device("meta"):
        parameters = sum(parameter.numel() for parameter in build().parameters())
    memory_bytes = physical_memory_bytes() if memory_bytes is None else memory_bytes
    weight_bytes = parameters * torch.finfo(torch.float32).bits // 8
    needed = TRAINING_COPIES * weight_bytes
    if memory_bytes is not None and needed > memory_bytes:
        raise ConfigError(
            f"model {spec!r} on input shape {input_shape} has {parameters:,} parameters: "
            f"{weight_bytes / 1e9:.1f} GB of float32 weights, and about {needed / 1e9:.1f} GB to train them "
            f"with gradients and optimizer state, more than the {memory_bytes / 1e9:.1f} GB of memory of this "
            "machine. Use smaller layer widths, for example 'mlp:512,512' or 'cnn:32,64'."
        )
    return parameters


def allocation_error(spec: str, error: RuntimeError) -> ConfigError | None:
    """Return a ConfigError for a failed memory allocation while building ``spec``, or None for other errors."""
    message = str(error)
    if "allocate" not in message and "out of memory" not in message:
        return None
    return ConfigError(
        f"model {spec!r} does not fit in memory ({message.splitlines()[0]}). Use smaller layer widths, "
        "for example 'mlp:512,512' or 'cnn:32,64'."
    )


def check_model_output(model: nn.Module, spec: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Run ``model`` once on zeros of shape ``(TRIAL_BATCH, *input_shape)`` and check its logits.

    The pass runs in eval mode without gradients and restores each submodule's training
    flag and the CPU random number generator, so the run trains and draws exactly as it
    would without the check. It runs on the device the parameters are on.

    Raises:
        ConfigError: the forward pass raises, or the output is not a tensor of shape
            ``(TRIAL_BATCH, num_classes)``. The forward pass's exception is chained.
    """
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    batch = torch.zeros((TRIAL_BATCH, *input_shape), device=device)
    expected = (TRIAL_BATCH, num_classes)
    modes = [(module, module.training) for module in model.modules()]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            output = model(batch)
    except Exception as error:
        raise ConfigError(
            f"model {spec!r} failed on a trial batch of shape {tuple(batch.shape)} (input shape {input_shape}, "
            f"{num_classes} classes): {type(error).__name__}: {error}. Check that its first layer takes "
            f"examples of shape {input_shape} and its last layer returns {num_classes} logits."
        ) from error
    finally:
        for module, training in modes:
            module.training = training

    actual = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if actual != expected:
        got = f"output of shape {actual}" if actual is not None else f"a {type(output).__name__}"
        raise ConfigError(
            f"model {spec!r} returned {got} for a trial batch of shape {tuple(batch.shape)}; expected logits of "
            f"shape {expected}, that is (N, num_classes) with {num_classes} classes. Make its last layer "
            f"return {num_classes} values per example."
        )
