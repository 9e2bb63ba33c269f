"""Loss and accuracy of a model on in-memory tensors, in eval mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab._validation import check_int
from reglab.errors import ConfigError
from reglab.nn.batch_size import inference_batch_size
from reglab.nn.checks import preserved_training_modes


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    transform: Callable[[Tensor], Tensor] | None = None,
    batch_size: int | None = None,
) -> tuple[float, float]:
    """Return ``(mean cross-entropy, accuracy)`` of ``model`` on ``(x, y)``.

    The model is switched to eval mode for the pass and every module is put back into the
    mode it had, also when the pass raises.
    ``transform`` (for example the split's normalization) is applied to each batch first.
    ``batch_size`` is the rows per pass; None picks it from the size of the model's
    activations with :func:`reglab.nn.batch_size.inference_batch_size`.

    Raises:
        ConfigError: ``x`` is empty, ``x`` and ``y`` differ in length, or ``batch_size``
            is not a positive int.
    """
    if len(x) == 0:
        raise ConfigError("evaluate: x is empty; pass at least one example.")
    if len(x) != len(y):
        raise ConfigError(f"evaluate: x has {len(x)} rows but y has {len(y)}; pass one label per example.")
    if batch_size is None:
        batch_size = inference_batch_size(model, x[:1] if transform is None else transform(x[:1]))
    batch_size = check_int("evaluate", "batch_size", batch_size, minimum=1)

    total_loss = 0.0
    correct = 0
    with preserved_training_modes(model):
        model.eval()
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            yb = y[start : start + batch_size]
            if transform is not None:
                xb = transform(xb)
            logits = model(xb)
            total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(dim=1) == yb).sum().item()
    return total_loss / len(x), correct / len(x)
