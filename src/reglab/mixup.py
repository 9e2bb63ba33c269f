"""Mixup: train on convex combinations of pairs of examples and of their labels.

Zhang, Cisse, Dauphin and Lopez-Paz, "mixup: Beyond Empirical Risk Minimization" (ICLR
2018). For a minibatch ``(x, y)``, a permutation ``π`` of the batch and
``λ ~ Beta(alpha, alpha)`` drawn once per batch, the model sees
``x̃ = λ·x + (1 - λ)·x[π]``, and the loss is

    ``λ · CE(f(x̃), y) + (1 - λ) · CE(f(x̃), y[π])``,

which equals the cross-entropy with the mixed one-hot target ``λ·e_y + (1 - λ)·e_y[π]``.
Pairing a batch with a permutation of itself is how the authors' code mixes examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reglab._validation import check_positive
from reglab.errors import ConfigError

__all__ = ["MixedBatch", "mixup_batch"]


@dataclass
class MixedBatch:
    """A mixed minibatch and what its loss needs.

    Attributes:
        x: the mixed inputs ``λ·x + (1 - λ)·x[π]``, shape of the input batch.
        y_a: the labels ``y``, shape :math:`(N,)`.
        y_b: the labels ``y[π]``, shape :math:`(N,)`.
        lam: ``λ``, the weight of ``x`` and ``y_a``.
    """

    x: Tensor
    y_a: Tensor
    y_b: Tensor
    lam: float

    def cross_entropy(self, logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Return ``λ · CE(logits, y_a) + (1 - λ) · CE(logits, y_b)``, each the batch mean."""
        loss_a = F.cross_entropy(logits, self.y_a, label_smoothing=label_smoothing)
        loss_b = F.cross_entropy(logits, self.y_b, label_smoothing=label_smoothing)
        return self.lam * loss_a + (1.0 - self.lam) * loss_b


def mixup_batch(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator | None = None) -> MixedBatch:
    """Mix a minibatch with a random permutation of itself.

    ``λ`` and the permutation come from ``generator`` (on its device; the global CPU RNG when
    None): a seed drawn from it feeds NumPy's Beta sampler, because torch's Beta
    distribution cannot take a generator.

    Args:
        x: the inputs, shape :math:`(N, *)`.
        y: the class labels, shape :math:`(N,)`.
        alpha: the Beta distribution's parameter, > 0. Small values (0.1 to 0.4 in the
            paper's ImageNet runs) keep ``λ`` near 0 or 1, so most mixed inputs stay close to
            one of the two examples.
        generator: the random generator.

    Returns:
        The :class:`MixedBatch`.

    Raises:
        ConfigError: ``alpha`` is not positive, ``x`` has no batch dimension, or ``y`` is
            not one label per row of ``x``.
    """
    alpha = check_positive("mixup_batch", "alpha", alpha)
    if x.dim() == 0 or y.shape != x.shape[:1]:
        raise ConfigError(
            f"mixup_batch: y must hold one label per row of x, got x of shape {tuple(x.shape)} and y of "
            f"shape {tuple(y.shape)}; pass x of shape (N, ...) and y of shape (N,)."
        )
    device = generator.device if generator is not None else torch.device("cpu")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    order = torch.randperm(x.shape[0], generator=generator, device=device).to(x.device)
    mixed = lam * x + (1.0 - lam) * x.index_select(0, order)
    return MixedBatch(x=mixed, y_a=y, y_b=y.index_select(0, order), lam=lam)
