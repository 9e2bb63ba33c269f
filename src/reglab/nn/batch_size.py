"""How many examples one inference pass should take, from the size of the network's activations.

Evaluation splits its data into batches. Larger batches mean fewer calls, until the
activations of one batch no longer fit in the CPU's caches. A convolution's output of 32
channels at 28x28 takes 100 KB per image, so a batch of 2,048 images writes 205 MB per
layer. On the 2-core AMD EPYC of ``docs/benchmarks.md``, evaluating ``cnn:32,64:bn`` took
about 18 ms per 128 images in batches of 64 or 128 and 52 to 57 ms in batches of 1,024 or
2,048 (``bench/cnn_layout.py``). Sixteen batched MLPs 784-100-50-10 took 476 to 499 ms per
8,192 rows in batches of 256 or 512 and 544 ms in batches of 2,048.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reglab._validation import check_int
from reglab.errors import ConfigError
from reglab.nn.checks import preserved_training_modes

ACTIVATION_BUDGET_BYTES = 4 * 2**20
"""The largest activation of one inference batch, in bytes, that :func:`inference_batch_size` aims for."""


@torch.no_grad()
def inference_batch_size(
    model: nn.Module,
    x: Tensor,
    *,
    largest: int = 2048,
    smallest: int = 64,
    budget_bytes: int = ACTIVATION_BUDGET_BYTES,
) -> int:
    """Return the rows per forward pass whose largest activation stays within ``budget_bytes``.

    One example of ``x`` runs through ``model`` in eval mode, and forward hooks on every
    leaf module record the size of its output. The result is the largest power of two
    ``n`` with ``n · (largest output of one example) <= budget_bytes``, clipped to
    ``[smallest, largest]``. The pass changes no state: every module's training flag is
    restored, and no module runs in training mode, so no random numbers are drawn.

    Args:
        model: the network.
        x: the inputs, shape :math:`(N, *)`; only ``x[:1]`` is used.
        largest: the maximum rows per pass.
        smallest: the minimum rows per pass.
        budget_bytes: the target size of one batch's largest activation.
    """
    if not isinstance(x, Tensor):
        raise ConfigError(f"inference_batch_size: x must be a tensor of inputs, got {type(x).__name__}.")
    _check_limits("inference_batch_size", largest, smallest, budget_bytes)
    if len(x) == 0:
        return largest
    sizes: list[int] = []

    def record(module: nn.Module, inputs: object, output: object) -> None:
        # Recurrent and attention layers return tuples, whose tensors all count.
        pending = [output]
        total = 0
        while pending:
            item = pending.pop()
            if isinstance(item, Tensor):
                total += item.numel() * item.element_size()
            elif isinstance(item, (tuple, list)):
                pending.extend(item)
        sizes.append(total)

    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    handles = [module.register_forward_hook(record) for module in leaves]
    try:
        with preserved_training_modes(model):
            model.eval()
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()

    per_example = max(sizes, default=x[:1].numel() * x.element_size())
    return rows_within_budget(per_example, largest=largest, smallest=smallest, budget_bytes=budget_bytes)


def rows_within_budget(
    bytes_per_example: int,
    *,
    largest: int = 2048,
    smallest: int = 64,
    budget_bytes: int = ACTIVATION_BUDGET_BYTES,
) -> int:
    """Return the largest power of two ``n`` with ``n · bytes_per_example <= budget_bytes``, clipped to ``[smallest, largest]``."""
    _check_limits("rows_within_budget", largest, smallest, budget_bytes)
    rows = max(budget_bytes // max(bytes_per_example, 1), 1)
    power = 1 << (rows.bit_length() - 1)
    return max(smallest, min(largest, power))


def _check_limits(owner: str, largest: int, smallest: int, budget_bytes: int) -> None:
    check_int(owner, "largest", largest, minimum=1)
    check_int(owner, "smallest", smallest, minimum=1)
    check_int(owner, "budget_bytes", budget_bytes, minimum=1)
    if smallest > largest:
        raise ConfigError(f"{owner}: smallest={smallest} is above largest={largest}; pass smallest <= largest.")
