"""Loss and accuracy of a model on in-memory tensors, in eval mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab.nn.batch_size import inference_batch_size


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

    The model is switched to eval mode for the pass and put back into the mode it had.
    ``transform`` (for example the split's normalization) is applied to each batch first.
    ``batch_size`` is the rows per pass; None picks it from the size of the model's
    activations with :func:`reglab.nn.batch_size.inference_batch_size`.
    """
    if batch_size is None:
        batch_size = inference_batch_size(model, x[:1] if transform is None else transform(x[:1]))
    was_training = model.training
    model.eval()

    total_loss = 0.0
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        yb = y[start : start + batch_size]
        if transform is not None:
            xb = transform(xb)
        logits = model(xb)
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(dim=1) == yb).sum().item()

    model.train(was_training)
    n = max(len(x), 1)
    return total_loss / n, correct / n
