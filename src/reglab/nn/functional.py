"""Functional forms of reglab's layers.

Unlike :func:`torch.nn.functional.dropout`, whose ``training`` argument defaults to
``True``, :func:`dropout` requires ``training``. A module that calls it must therefore pass
``training=self.training``, so the layer cannot stay active after ``model.eval()``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reglab._validation import check_choice, check_probability
from reglab.errors import ConfigError
from reglab.nn.masks import is_power_of_two, keep_mask

DROPOUT_MODES = ("inverted", "classic")


def dropout(
    x: Tensor,
    p: float,
    training: bool,
    mode: str = "inverted",
    generator: torch.Generator | None = None,
    *,
    inplace: bool = False,
) -> Tensor:
    r"""Zero each element of ``x`` with probability ``p`` while training.

    In both modes the expected training output equals the evaluation output, so
    activations have the same mean in training and in evaluation:

    * ``"inverted"`` (as :func:`torch.nn.functional.dropout`): while training, a kept
      element becomes exactly ``x / (1 - p)`` and a dropped one ``0``. In evaluation the
      input is returned unchanged.
    * ``"classic"``, as described by Hinton et al. (2012, "Improving neural networks by
      preventing co-adaptation of feature detectors") and Srivastava et al. (2014,
      "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15):
      while training, kept elements pass unscaled. In evaluation the output is
      ``(1 - p) * x``.

    ``p = 1`` gives exact zeros while training in both modes, with no NaN or inf in the
    output or the gradient. ``p = 0`` returns ``x`` itself.

    Args:
        x: input of any shape.
        p: probability that an element is zeroed, in [0, 1].
        training: apply the training behaviour when ``True`` and the evaluation behaviour
            when ``False``. Required: inside a module pass ``training=self.training``.
        mode: ``"inverted"`` or ``"classic"``. Defaults to ``"inverted"``.
        generator: the random number generator for the mask. Defaults to the global
            generator of ``x.device``.
        inplace: modify ``x`` in place. Defaults to ``False``.

    Returns:
        A tensor of the same shape, dtype and device as ``x``.

    Example::

        >>> x = torch.ones(4, 8)
        >>> y = dropout(x, 0.5, training=True)
        >>> sorted(y.unique().tolist())
        [0.0, 2.0]
        >>> torch.equal(dropout(x, 0.5, training=False, mode="classic"), 0.5 * x)
        True
    """
    p = check_probability("dropout", "p", p)
    mode = check_choice("dropout", "mode", mode, DROPOUT_MODES)
    if not isinstance(training, bool):
        raise ConfigError(
            "dropout: training must be a bool (inside a module pass "
            f"training=self.training), got {training!r}."
        )

    if p == 0.0:
        return x
    if not training:
        if mode == "inverted":
            return x
        return x.mul_(1.0 - p) if inplace else x * (1.0 - p)

    keep = 1.0 - p
    # The kept branch divides before masking so that kept values equal x / (1 - p)
    # exactly. At p = 1 nothing is kept, and skipping the division avoids 0 / 0 in the
    # backward pass.
    scale = mode == "inverted" and p < 1.0
    if inplace:
        mask = keep_mask(x.shape, p, device=x.device, generator=generator)
        x.masked_fill_(~mask, 0.0)
        return x.div_(keep) if scale else x
    # A product with a mask of x's dtype costs less than torch.where or a product with a
    # bool mask (forward and backward). In a profile of a 784-100-50-10 training step on
    # CPU, torch.where took most of dropout's time, and on [128, 100] a product with a bool
    # mask took about 15 µs against 2.5 µs with a float32 one. Like
    # torch.nn.functional.dropout, a dropped infinite or NaN input gives NaN, not 0.
    mask = keep_mask(x.shape, p, device=x.device, dtype=x.dtype, generator=generator)
    if scale and is_power_of_two(keep):
        # 1 / keep is then a power of two: x * (1 / keep) equals x / keep exactly, and
        # folding it into the mask leaves one product, with one backward product.
        return x * mask.mul_(1.0 / keep)
    values = x / keep if scale else x
    return values * mask
