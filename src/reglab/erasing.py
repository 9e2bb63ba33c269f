"""Random erasing: replace a random rectangle of each image with a constant.

Zhong, Zheng, Kang, Li and Yang, "Random Erasing Data Augmentation" (AAAI 2020). With
probability ``p``, an image gets one rectangle whose area is a fraction of the image drawn
uniformly from ``scale`` and whose aspect ratio ``h / w`` is drawn log-uniformly from
``ratio``; the rectangle's position is uniform among the positions where it fits. The
defaults and the sampling follow ``torchvision.transforms.v2.RandomErasing`` (torchvision
0.29): up to 10 attempts per image, a side length of ``round(sqrt(area · ratio))``, and no
erasing when no attempt fits.

:class:`RandomErasing` follows the conventions of :mod:`reglab.augment`: a batch of shape
:math:`(N, C, H, W)`, random parameters per image, all drawn from ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from reglab._validation import check_number, check_probability
from reglab.augment import Augmentation, _check_images, _check_range, _draw_device
from reglab.errors import ConfigError

__all__ = ["RandomErasing"]

# torchvision's number of tries to find a rectangle that fits the image.
_ATTEMPTS = 10


class RandomErasing(Augmentation):
    """Erase one random rectangle of each image with probability ``p``.

    The fit loop applies it after normalization, so the default ``value=0`` fills the
    rectangle with the training split's mean, as ``torchvision.transforms.v2.RandomErasing``
    after ``Normalize`` does.

    Args:
        p: the probability that an image is erased, in [0, 1]. Defaults to 0.5.
        scale: the range of the erased area as a fraction of the image. Defaults to
            (0.02, 0.33).
        ratio: the range of the aspect ratio ``h / w``, drawn log-uniformly. Defaults to
            (0.3, 3.3).
        value: the fill value. Defaults to 0.

    Shape:
        - Input: :math:`(N, C, H, W)`, floating point.
        - Output: :math:`(N, C, H, W)`, the same dtype and device.

    Example:
        >>> erase = RandomErasing(p=1.0)
        >>> x = torch.ones(4, 1, 8, 8)
        >>> y = erase(x, generator=torch.Generator().manual_seed(0))
        >>> bool((y == 0).any(dim=(1, 2, 3)).all())
        True
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0.0,
    ) -> None:
        super().__init__()
        self.p = check_probability("RandomErasing", "p", p)
        self.scale = _check_range("RandomErasing", "scale", scale, symmetric_number=False)
        self.ratio = _check_range("RandomErasing", "ratio", ratio, symmetric_number=False)
        if not 0.0 <= self.scale[0] <= self.scale[1] <= 1.0:
            raise ConfigError(f"RandomErasing: scale must be (min, max) with 0 <= min <= max <= 1, got {scale!r}.")
        if self.ratio[0] <= 0.0:
            raise ConfigError(f"RandomErasing: ratio must be (min, max) with 0 < min <= max, got {ratio!r}.")
        self.value = check_number("RandomErasing", "value", value)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("RandomErasing", x, floating=True)
        n, _, height, width = x.shape
        draw_device = _draw_device(generator, x.device)
        draws = torch.rand(n, 1 + 2 * _ATTEMPTS + 2, generator=generator, device=draw_device, dtype=torch.float64)
        draws = draws.to(x.device)
        erase = draws[:, 0] < self.p
        area_draws = draws[:, 1 : 1 + _ATTEMPTS]
        ratio_draws = draws[:, 1 + _ATTEMPTS : 1 + 2 * _ATTEMPTS]
        position_draws = draws[:, -2:]

        # Every attempt's rectangle, shape (N, attempts); the first one that fits is used.
        area = height * width * (self.scale[0] + (self.scale[1] - self.scale[0]) * area_draws)
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_low + (log_high - log_low) * ratio_draws)
        h = torch.round(torch.sqrt(area * aspect)).long()
        w = torch.round(torch.sqrt(area / aspect)).long()
        fits = (h < height) & (w < width)
        first = torch.argmax(fits.long(), dim=1, keepdim=True)
        erase = erase & fits.any(dim=1)
        h = h.gather(1, first).squeeze(1)
        w = w.gather(1, first).squeeze(1)

        # The top-left corner, uniform over the height - h + 1 rows and width - w + 1 columns.
        top = torch.floor(position_draws[:, 0] * (height - h + 1)).long()
        left = torch.floor(position_draws[:, 1] * (width - w + 1)).long()
        rows = torch.arange(height, device=x.device)[None, :]
        cols = torch.arange(width, device=x.device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
        mask = in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None]
        return x.masked_fill(mask[:, None, :, :], self.value)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value}"
