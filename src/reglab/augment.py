"""Batched, per-sample random transforms of image tensors.

Every transform is an :class:`torch.nn.Module` whose ``forward(x, generator=None)`` takes a
batch ``x`` of shape :math:`(N, C, H, W)` on any device and returns a tensor of the same
shape and dtype. Each image in the batch gets its own random parameters, all drawn from
``generator``, so one seed reproduces a whole training run's augmentations. Random numbers
are drawn on the generator's device and moved to ``x``'s device, so a generator on ``x``'s
device avoids a copy. Without a generator, the global RNG of ``x``'s device is used.

The transforms do not look at ``module.training``: augmentation is not switched by
``train()`` / ``eval()`` the way dropout is. The training pipeline applies them explicitly,
and only to training batches.

Images are expected in [0, 1] before normalization, so the default fill value 0 is a black
background. Parameters follow ``torchvision.transforms.v2`` (torchvision 0.29), and
:func:`affine` reproduces ``torchvision.transforms.v2.functional.affine`` on float tensors.

Which transforms preserve a label depends on the data. :func:`default_augmentation` returns
the default for a built-in data set: for handwritten digits a small random affine map and
never a horizontal flip; for clothing, random crops and horizontal flips. Enlarging a digit
training set with distorted copies goes back at least to Simard, Steinkraus and Platt,
"Best Practices for Convolutional Neural Networks Applied to Visual Document Analysis"
(ICDAR 2003), who did so on MNIST; reglab's ranges are not taken from that paper.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Iterator, Sequence
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab._validation import check_non_negative, check_number, check_probability
from reglab.errors import ConfigError

__all__ = [
    "AugmentationWarning",
    "Augmentation",
    "affine",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "GaussianNoise",
    "Normalize",
    "Compose",
    "check_transforms_for_dataset",
    "is_digit_dataset",
    "default_augmentation",
    "DIGIT_DATASETS",
    "CLOTHING_DATASETS",
]

DIGIT_DATASETS = ("mnist", "mnist-5k", "digits")
CLOTHING_DATASETS = ("fashion-mnist",)

_INTERPOLATIONS = ("nearest", "bilinear")


class AugmentationWarning(UserWarning):
    """A transform that runs but probably changes the labels of the data it is used on."""


# Argument checks shared by the transforms.


def _fail(owner: str, name: str, constraint: str, value: Any) -> ConfigError:
    return ConfigError(f"{owner}: {name} must be {constraint}, got {value!r}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_range(owner: str, name: str, value: Any, *, symmetric_number: bool) -> tuple[float, float]:
    """Check a (low, high) range, or a number d >= 0 meaning (-d, d) when ``symmetric_number``."""
    if symmetric_number and _is_number(value):
        number = check_number(owner, name, value)
        if number < 0:
            raise _fail(owner, name, "a number >= 0 or a (min, max) pair", value)
        return -number, number
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        expected = "a number >= 0 or a (min, max) pair" if symmetric_number else "a (min, max) pair"
        raise _fail(owner, name, expected, value)
    low = check_number(owner, f"{name}[0]", value[0])
    high = check_number(owner, f"{name}[1]", value[1])
    if low > high:
        raise _fail(owner, name, "a (min, max) pair with min <= max", tuple(value))
    return low, high


def _check_fill(owner: str, fill: Any) -> float | tuple[float, ...] | None:
    if fill is None:
        return None
    if _is_number(fill):
        return check_number(owner, "fill", fill)
    if isinstance(fill, Sequence) and not isinstance(fill, (str, bytes)) and len(fill) > 0:
        return tuple(check_number(owner, f"fill[{index}]", value) for index, value in enumerate(fill))
    raise _fail(owner, "fill", "a number or one number per channel", fill)


def _fill_tensor(owner: str, fill: float | tuple[float, ...], like: Tensor) -> Tensor:
    """Return ``fill`` as a (1, C, 1, 1) tensor, or (1, 1, 1, 1) for a single value."""
    values = (fill,) if isinstance(fill, float) else fill
    channels = like.shape[1]
    if len(values) not in (1, channels):
        raise ConfigError(
            f"{owner}: fill has {_count(len(values), 'value')} but the images have "
            f"{_count(channels, 'channel')}; pass one number or one per channel."
        )
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def _check_interpolation(owner: str, interpolation: Any) -> str:
    # torchvision's InterpolationMode is an Enum whose values are these strings.
    name = interpolation.value if isinstance(interpolation, Enum) else interpolation
    if not isinstance(name, str) or name.lower() not in _INTERPOLATIONS:
        raise _fail(
            owner,
            "interpolation",
            "'nearest' or 'bilinear' (or torchvision's InterpolationMode.NEAREST or BILINEAR)",
            interpolation,
        )
    return name.lower()


def _check_images(owner: str, x: Any, *, floating: bool = False) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        received = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"{owner}: x must be a tensor of shape (N, C, H, W), got {received}.")
    if floating and not x.is_floating_point():
        raise ConfigError(f"{owner}: x must be a floating-point tensor with values in [0, 1], got {x.dtype}.")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# Random draws: on the generator's device, then moved to the images' device.


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    draws = torch.rand(n, generator=generator, device=_draw_device(generator, device))
    return (low + (high - low) * draws).to(device)


def _randint(n: int, high: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Draw ``n`` integers in ``[0, high)``."""
    draws = torch.randint(0, high, (n,), generator=generator, device=_draw_device(generator, device))
    return draws.to(device)


class Augmentation(nn.Module):
    """Base class of reglab's transforms: ``forward(x, generator=None)`` on a batch.

    :class:`Compose` passes its generator to every :class:`Augmentation` it contains.
    """

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError


# Affine maps.


def _inverse_affine_matrices(angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor) -> Tensor:
    """Build the ``[N, 2, 3]`` maps from output to input pixel coordinates.

    The coordinates are in pixels relative to the image center, with y pointing down. The
    forward map is ``T · RSS`` (translation after rotation, scale and shear about the center)
    and this returns ``RSS⁻¹ · T⁻¹``, written out as torchvision's
    ``_get_inverse_affine_matrix`` does with center (0, 0). det(RSS / scale) is 1, so the
    inverse of the 2×2 part ``[[a, b], [c, d]]`` is ``[[d, -b], [-c, a]] / scale``.
    """
    rotation = torch.deg2rad(angle)
    shear_x = torch.deg2rad(shear[:, 0])
    shear_y = torch.deg2rad(shear[:, 1])

    # Rotation times the y-shear times the x-shear, before scaling.
    a = torch.cos(rotation - shear_y) / torch.cos(shear_y)
    b = -torch.cos(rotation - shear_y) * torch.tan(shear_x) / torch.cos(shear_y) - torch.sin(rotation)
    c = torch.sin(rotation - shear_y) / torch.cos(shear_y)
    d = -torch.sin(rotation - shear_y) * torch.tan(shear_x) / torch.cos(shear_y) + torch.cos(rotation)

    m00, m01, m10, m11 = d / scale, -b / scale, -c / scale, a / scale
    tx, ty = translate[:, 0], translate[:, 1]
    m02 = -(m00 * tx + m01 * ty)
    m12 = -(m10 * tx + m11 * ty)
    return torch.stack([m00, m01, m02, m10, m11, m12], dim=1).view(-1, 2, 3)


def _sampling_grid(matrices: Tensor, height: int, width: int) -> Tensor:
    """Map every output pixel center through ``matrices`` to ``grid_sample``'s [-1, 1] coordinates.

    Pixel centers sit at ``j + 0.5 - width / 2`` (and likewise for rows), which is where
    ``grid_sample`` with ``align_corners=False`` puts them. The grid is built in pixel units
    and divided by half the image size afterwards, in the same order of floating-point steps
    as torchvision's tensor kernel, so that nearest-neighbour ties round the same way.
    """
    dtype, device = matrices.dtype, matrices.device
    base = torch.empty(1, height, width, 3, dtype=dtype, device=device)
    columns = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device)
    rows = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    base[..., 0].copy_(columns)
    base[..., 1].copy_(rows[:, None])
    base[..., 2].fill_(1.0)
    half_size = torch.tensor([0.5 * width, 0.5 * height], dtype=dtype, device=device)
    grid = base.view(1, height * width, 3).matmul(matrices.transpose(1, 2) / half_size)
    return grid.view(-1, height, width, 2)


def _per_sample(value: Any, n: int, width: int, name: str, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Broadcast a number, a tuple or a tensor to shape ``[n]`` (width 1) or ``[n, width]``."""
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    shape = (n,) if width == 1 else (n, width)
    try:
        return torch.broadcast_to(tensor, shape)
    except RuntimeError:
        if width == 1:
            expected = "a number or a tensor of shape [N]"
        else:
            expected = f"{width} numbers or a tensor of shape [N, {width}]"
        raise _fail("affine", name, expected, tuple(tensor.shape)) from None


def affine(
    x: Tensor,
    angle: Tensor | float,
    translate: Tensor | Sequence[float],
    scale: Tensor | float,
    shear: Tensor | Sequence[float] | float,
    interpolation: Any = "bilinear",
    fill: float | Sequence[float] | None = None,
) -> Tensor:
    r"""Apply one affine map per image, keeping the image center fixed.

    With the same parameters the result equals
    ``torchvision.transforms.v2.functional.affine`` on each float image: the map is applied
    about the image center, pixel centers sit at half-integer positions
    (``align_corners=False``), and pixels that come from outside the image are set to
    ``fill``. The tests compare both on CPU for bilinear and nearest interpolation.

    Args:
        x: images in [0, 1].
        angle: rotation in degrees; positive values turn the image clockwise on screen
            (y points down), as in torchvision.
        translate: the shift ``(tx, ty)`` in pixels, positive to the right and down.
            Fractional shifts are interpolated.
        scale: the zoom factor, > 0.
        shear: ``(shear_x, shear_y)`` in degrees, or a number for ``(shear_x, 0)``.
        interpolation: ``"bilinear"`` or ``"nearest"``, or torchvision's
            ``InterpolationMode.BILINEAR`` / ``NEAREST``.
        fill: the value of pixels from outside the image, one number or one per channel.
            ``None`` pads with zeros and blends them at the border. A number, even 0, follows
            torchvision: it also samples an in-image mask :math:`m` and returns
            :math:`m \cdot (\text{sample} - \text{fill}) + \text{fill}` for bilinear
            interpolation, or ``fill`` where :math:`m < 0.5` for nearest.

    Each parameter is a number or pair shared by the batch, or a tensor with one row per
    image.

    Shape:
        - x: :math:`(N, C, H, W)`, floating point.
        - angle, scale: :math:`(N)` or a number.
        - translate, shear: :math:`(N, 2)` or a pair.
        - Output: :math:`(N, C, H, W)`, the same dtype and device as ``x``.

    Example::

        >>> x = torch.zeros(2, 1, 5, 5)
        >>> x[:, 0, 2, 4] = 1.0  # a dot right of the center
        >>> y = affine(x, angle=torch.tensor([90.0, 0.0]), translate=(0, 0), scale=1.0, shear=0.0)
        >>> y[0, 0, 4, 2].item(), y[1, 0, 2, 4].item()  # turned below the center; unchanged
        (1.0, 1.0)
    """
    _check_images("affine", x, floating=True)
    mode = _check_interpolation("affine", interpolation)
    fill = _check_fill("affine", fill)
    if x.numel() == 0:
        return x.clone()

    n = x.shape[0]
    dtype = _matrix_dtype(x.device)
    if _is_number(shear):
        shear = (shear, 0.0)
    scale = _per_sample(scale, n, 1, "scale", x.device, dtype)
    if not bool((scale > 0).all()):
        raise _fail("affine", "scale", "> 0 for every image", scale.min().item())
    parameters = {
        "angle": _per_sample(angle, n, 1, "angle", x.device, dtype),
        "translate": _per_sample(translate, n, 2, "translate", x.device, dtype),
        "scale": scale,
        "shear": _per_sample(shear, n, 2, "shear", x.device, dtype),
    }
    return _warp("affine", x, parameters, mode, fill)


def _matrix_dtype(device: torch.device) -> torch.dtype:
    # float64 where the device has it, as torchvision computes the matrix in Python floats.
    return torch.float32 if device.type == "mps" else torch.float64


def _warp(
    owner: str, x: Tensor, parameters: dict[str, Tensor], mode: str, fill: float | tuple[float, ...] | None
) -> Tensor:
    """Apply :func:`affine` with checked arguments and per-sample parameter tensors."""
    n, channels, height, width = x.shape
    dtype = _matrix_dtype(x.device)
    names = ("angle", "translate", "scale", "shear")
    matrices = _inverse_affine_matrices(*(parameters[name].to(dtype) for name in names))
    grid = _sampling_grid(matrices.to(x.dtype), height, width)

    if fill is None:
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)

    # Sample an all-ones channel along with the images to learn which pixels came from inside.
    fill_values = _fill_tensor(owner, fill, x)
    ones = torch.ones((n, 1, height, width), dtype=x.dtype, device=x.device)
    with_mask = torch.cat([x, ones], dim=1)
    sampled = F.grid_sample(with_mask, grid, mode=mode, padding_mode="zeros", align_corners=False)
    images, mask = sampled[:, :channels], sampled[:, channels:]
    if mode == "nearest":
        return torch.where(mask < 0.5, fill_values.expand_as(images), images)
    return (images - fill_values) * mask + fill_values


class RandomAffine(Augmentation):
    r"""Rotate, shift, scale and shear each image by its own random affine map.

    The parameters have torchvision's meaning (``torchvision.transforms.v2.RandomAffine``),
    and each image draws its own values uniformly: the angle from ``degrees``, the shift
    :math:`t_x \in [-a W, a W]` and :math:`t_y \in [-b H, b H]` pixels for
    ``translate=(a, b)``, rounded to whole pixels as torchvision rounds them, the scale from
    ``scale`` and the shears from ``shear``. The batch is then warped as :func:`affine` does,
    with one batched sampling grid and one ``grid_sample`` call.

    Args:
        degrees: the rotation range in degrees: a number ``d >= 0`` for ``(-d, d)``, or a
            ``(min, max)`` pair. Positive angles turn clockwise on screen.
        translate: ``(a, b)``, the largest horizontal and vertical shift as fractions of
            the width and height, each in [0, 1]. ``None`` for no shift.
        scale: a ``(min, max)`` range of zoom factors, both > 0. ``None`` keeps the size.
        shear: degrees. A number ``s >= 0`` draws the x-shear from ``(-s, s)``, a pair
            ``(min, max)`` draws the x-shear from it, and four values
            ``(x_min, x_max, y_min, y_max)`` draw both. ``None`` for no shear.
        interpolation: ``"bilinear"`` (the default) or ``"nearest"``, or torchvision's
            ``InterpolationMode.BILINEAR`` / ``NEAREST``. torchvision's default is nearest.
        fill: the value of pixels from outside the image, a number or one per channel,
            blended at the border as :func:`affine` describes. ``None`` pads with zeros
            without that blending. Defaults to 0, a black background for images in [0, 1].

    Raises:
        ConfigError: an argument is invalid.
        TypeError: an unknown keyword, or the removed torchvision keywords ``resample``
            and ``fillcolor``.

    Shape:
        - Input: :math:`(N, C, H, W)`, floating point.
        - Output: :math:`(N, C, H, W)`, the same dtype and device.

    Example::

        >>> augment = RandomAffine(degrees=20, translate=(0.15, 0.15))
        >>> x = torch.rand(8, 1, 28, 28)
        >>> augment(x, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        translate: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        shear: float | Sequence[float] | None = None,
        interpolation: Any = "bilinear",
        fill: float | Sequence[float] | None = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        _reject_removed_keywords(kwargs)

        self.degrees = _check_range("RandomAffine", "degrees", degrees, symmetric_number=True)
        self.translate = None if translate is None else _check_translate(translate)
        self.scale = None if scale is None else _check_scale(scale)
        self.shear = None if shear is None else _check_shear(shear)
        self.interpolation = _check_interpolation("RandomAffine", interpolation)
        self.fill = _check_fill("RandomAffine", fill)

    def sample_parameters(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Draw each image's ``angle [N]``, ``translate [N, 2]``, ``scale [N]`` and ``shear [N, 2]``."""
        n, _, height, width = x.shape
        device = x.device
        zeros = torch.zeros(n, device=device)

        angle = _uniform(n, *self.degrees, generator, device)
        if self.translate is not None:
            max_dx = self.translate[0] * width
            max_dy = self.translate[1] * height
            tx = torch.round(_uniform(n, -max_dx, max_dx, generator, device))
            ty = torch.round(_uniform(n, -max_dy, max_dy, generator, device))
            translate = torch.stack([tx, ty], dim=1)
        else:
            translate = torch.zeros(n, 2, device=device)
        scale = _uniform(n, *self.scale, generator, device) if self.scale is not None else zeros + 1.0
        shear_x = shear_y = zeros
        if self.shear is not None:
            shear_x = _uniform(n, self.shear[0], self.shear[1], generator, device)
            if len(self.shear) == 4:
                shear_y = _uniform(n, self.shear[2], self.shear[3], generator, device)
        return {"angle": angle, "translate": translate, "scale": scale, "shear": torch.stack([shear_x, shear_y], dim=1)}

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("RandomAffine", x, floating=True)
        if x.numel() == 0:
            return x.clone()
        return _warp("RandomAffine", x, self.sample_parameters(x, generator), self.interpolation, self.fill)

    def extra_repr(self) -> str:
        return (
            f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
            f"shear={self.shear}, interpolation={self.interpolation!r}, fill={self.fill}"
        )


def _reject_removed_keywords(kwargs: dict[str, Any]) -> None:
    if "resample" in kwargs:
        raise TypeError(
            "RandomAffine: the keyword resample= was removed from torchvision's RandomAffine; "
            "pass interpolation='bilinear' or interpolation='nearest' instead."
        )
    if "fillcolor" in kwargs:
        raise TypeError(
            "RandomAffine: the keyword fillcolor= was removed from torchvision's RandomAffine; "
            "pass fill= instead."
        )
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"RandomAffine got unexpected keyword arguments: {names}.")


def _check_translate(translate: Any) -> tuple[float, float]:
    if (
        isinstance(translate, Sequence)
        and not isinstance(translate, (str, bytes))
        and len(translate) == 2
        and all(_is_number(value) and 0.0 <= value <= 1.0 for value in translate)
    ):
        return float(translate[0]), float(translate[1])
    raise _fail("RandomAffine", "translate", "a pair (a, b) of fractions in [0, 1]", translate)


def _check_scale(scale: Any) -> tuple[float, float]:
    low_high = _check_range("RandomAffine", "scale", scale, symmetric_number=False)
    if low_high[0] <= 0.0:
        raise _fail("RandomAffine", "scale", "a (min, max) pair of positive factors", tuple(scale))
    return low_high


def _check_shear(shear: Any) -> tuple[float, ...]:
    if _is_number(shear) or (isinstance(shear, Sequence) and len(shear) == 2):
        return _check_range("RandomAffine", "shear", shear, symmetric_number=True)
    if isinstance(shear, Sequence) and not isinstance(shear, (str, bytes)) and len(shear) == 4:
        x_range = _check_range("RandomAffine", "shear[0:2]", tuple(shear[:2]), symmetric_number=False)
        y_range = _check_range("RandomAffine", "shear[2:4]", tuple(shear[2:]), symmetric_number=False)
        return x_range + y_range
    raise _fail("RandomAffine", "shear", "a number >= 0 or a sequence of 2 or 4 numbers", shear)


# Crops, flips, noise and normalization.


class RandomCrop(Augmentation):
    """Pad each image, then crop it at its own random position.

    ``size`` and ``padding`` have torchvision's meaning. The crop's top-left corner is drawn
    uniformly among all positions inside the padded image, separately for each image, and
    the whole batch is cropped with one indexing operation.

    Args:
        size: the output ``(height, width)``, or one int for a square.
        padding: added on each border before cropping: one int for all four, ``(left/right,
            top/bottom)``, or ``(left, top, right, bottom)``. ``None`` for no padding.
        fill: the value of the padded pixels, a number or one per channel. Defaults to 0.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, h, w)` for ``size=(h, w)``, the same dtype and device.

    Example::

        >>> crop = RandomCrop(28, padding=2)
        >>> crop(torch.rand(4, 1, 28, 28), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(
        self, size: int | Sequence[int], padding: int | Sequence[int] | None = None, fill: float | Sequence[float] = 0.0
    ) -> None:
        super().__init__()
        self.size = _check_size(size)
        self.padding = _check_padding(padding)
        self.fill = _check_fill("RandomCrop", fill)
        if self.fill is None:
            raise _fail("RandomCrop", "fill", "a number or one number per channel", None)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("RandomCrop", x)
        padded = self._pad(x)
        n, _, padded_height, padded_width = padded.shape
        height, width = self.size
        if height > padded_height or width > padded_width:
            raise ConfigError(
                f"RandomCrop: size {self.size} is larger than the padded image "
                f"({padded_height}, {padded_width}); use a smaller size or more padding."
            )

        top = _randint(n, padded_height - height + 1, generator, x.device)
        left = _randint(n, padded_width - width + 1, generator, x.device)
        rows = (top[:, None] + torch.arange(height, device=x.device))[:, :, None]
        columns = (left[:, None] + torch.arange(width, device=x.device))[:, None, :]
        images = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indexing around the channel slice puts the channels last: (N, h, w, C).
        return padded[images, :, rows, columns].permute(0, 3, 1, 2).contiguous()

    def _pad(self, x: Tensor) -> Tensor:
        left, top, right, bottom = self.padding
        if not any(self.padding):
            return x
        n, channels, height, width = x.shape
        fill = _fill_tensor("RandomCrop", self.fill, x)
        padded = fill.expand(n, channels, height + top + bottom, width + left + right).clone()
        padded[:, :, top : top + height, left : left + width] = x
        return padded

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}, fill={self.fill}"


def _check_size(size: Any) -> tuple[int, int]:
    values = (size,) if isinstance(size, int) else size
    if (
        isinstance(values, Sequence)
        and len(values) in (1, 2)
        and all(isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in values)
    ):
        return (values[0], values[-1])
    raise _fail("RandomCrop", "size", "a positive int or a (height, width) pair of positive ints", size)


def _check_padding(padding: Any) -> tuple[int, int, int, int]:
    """Return ``(left, top, right, bottom)``."""
    if padding is None:
        return (0, 0, 0, 0)
    values = (padding,) if isinstance(padding, int) else padding
    if (
        isinstance(values, Sequence)
        and len(values) in (1, 2, 4)
        and all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values)
    ):
        if len(values) == 1:
            return (values[0],) * 4
        if len(values) == 2:
            return (values[0], values[1], values[0], values[1])
        return tuple(values)
    raise _fail("RandomCrop", "padding", "an int >= 0 or a sequence of 1, 2 or 4 ints >= 0", padding)


class RandomHorizontalFlip(Augmentation):
    """Mirror each image left to right with probability ``p``, independently per image.

    Do not use it on digits: a mirrored 2 or 5 no longer looks like its label.
    :func:`check_transforms_for_dataset` warns about that.

    Args:
        p: the probability that an image is flipped. Defaults to 0.5.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`, the same dtype and device.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability("RandomHorizontalFlip", "p", p)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("RandomHorizontalFlip", x)
        flip = _uniform(x.shape[0], 0.0, 1.0, generator, x.device) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(Augmentation):
    r"""Add independent Gaussian noise to every pixel: :math:`y = x + \sigma \epsilon`, :math:`\epsilon \sim N(0, 1)`.

    Args:
        std: :math:`\sigma`, the noise's standard deviation, >= 0.
        clip: a ``(min, max)`` range to clamp the result to, such as ``(0.0, 1.0)`` for
            images in [0, 1]; ``None`` does not clamp. Defaults to None.

    Shape:
        - Input: :math:`(N, C, H, W)`, floating point.
        - Output: :math:`(N, C, H, W)`, the same dtype and device.
    """

    def __init__(self, std: float, clip: Sequence[float] | None = None) -> None:
        super().__init__()
        self.std = check_non_negative("GaussianNoise", "std", std)
        self.clip = None if clip is None else _check_range("GaussianNoise", "clip", clip, symmetric_number=False)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("GaussianNoise", x, floating=True)
        device = _draw_device(generator, x.device)
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
        y = x + self.std * noise
        if self.clip is not None:
            y = y.clamp(*self.clip)
        return y

    def extra_repr(self) -> str:
        return f"std={self.std}, clip={self.clip}"


class Normalize(Augmentation):
    r"""Standardize each channel: :math:`y_c = (x_c - \text{mean}_c) / \text{std}_c`.

    It is deterministic and ignores ``generator``; it belongs to the :class:`Augmentation`
    family so that it can end a :class:`Compose`.

    Args:
        mean: one value per channel, or one number for every channel.
        std: one value per channel, or one number for every channel; all > 0.

    Raises:
        ConfigError: a value is invalid, or (in ``forward``) the number of values does not
            match the images' channels.

    Shape:
        - Input: :math:`(N, C, H, W)`, floating point.
        - Output: :math:`(N, C, H, W)`, the same dtype and device.
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()
        self.mean = _check_channel_values("mean", mean, positive=False)
        self.std = _check_channel_values("std", std, positive=True)
        both_sequences = isinstance(self.mean, tuple) and isinstance(self.std, tuple)
        if both_sequences and len(self.mean) != len(self.std):
            raise ConfigError(
                f"Normalize: mean and std must have the same number of values, "
                f"got {len(self.mean)} and {len(self.std)}."
            )

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images("Normalize", x, floating=True)
        mean = self._as_tensor("mean", self.mean, x)
        std = self._as_tensor("std", self.std, x)
        return (x - mean) / std

    @staticmethod
    def _as_tensor(name: str, values: tuple[float, ...] | float, x: Tensor) -> Tensor:
        if isinstance(values, float):
            return torch.tensor(values, dtype=x.dtype, device=x.device)
        channels = x.shape[1]
        if len(values) != channels:
            raise ConfigError(
                f"Normalize: {name} has {_count(len(values), 'channel')} but the images have "
                f"{_count(channels, 'channel')}; pass one value per channel."
            )
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


def _check_channel_values(name: str, values: Any, *, positive: bool) -> tuple[float, ...] | float:
    check = check_number if not positive else _check_positive
    if _is_number(values):
        return check("Normalize", name, values)
    if isinstance(values, Tensor):
        values = values.tolist()
    if isinstance(values, Sequence) and not isinstance(values, (str, bytes)) and len(values) > 0:
        return tuple(check("Normalize", f"{name}[{index}]", value) for index, value in enumerate(values))
    raise _fail("Normalize", name, "a number or one number per channel", values)


def _check_positive(owner: str, name: str, value: Any) -> float:
    value = check_number(owner, name, value)
    if value <= 0.0:
        raise _fail(owner, name, "> 0", value)
    return value


class Compose(Augmentation):
    """Apply transforms in order, passing the generator to each reglab transform.

    Modules that are not :class:`Augmentation` (for example torchvision transforms) are
    called as ``t(x)`` and draw from the global RNG, so a seed does not reproduce them.

    Args:
        transforms: the modules to apply, first to last.
    """

    def __init__(self, transforms: Iterable[nn.Module]) -> None:
        super().__init__()
        transforms = list(transforms)
        for index, transform in enumerate(transforms):
            if not isinstance(transform, nn.Module):
                raise _fail("Compose", f"transforms[{index}]", "an nn.Module", transform)
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for transform in self.transforms:
            x = transform(x, generator=generator) if isinstance(transform, Augmentation) else transform(x)
        return x


# Data-set defaults and checks.


def is_digit_dataset(dataset_name: str) -> bool:
    """Return whether ``dataset_name`` names handwritten digits.

    These are ``mnist``, ``mnist-5k``, ``digits`` and any other name that contains
    ``"mnist"`` but not ``"fashion"``, compared case-insensitively.
    """
    name = dataset_name.lower()
    return name in DIGIT_DATASETS or ("mnist" in name and "fashion" not in name)


def _walk(transform: Any) -> Iterator[Any]:
    """Yield ``transform`` and every transform nested in it, in modules or ``.transforms`` lists."""
    yield transform
    children = list(transform.children()) if isinstance(transform, nn.Module) else []
    nested = getattr(transform, "transforms", None)
    if isinstance(nested, (list, tuple)):
        children += [child for child in nested if not isinstance(transform, nn.Module) or child not in children]
    for child in children:
        yield from _walk(child)


def check_transforms_for_dataset(transform: Any, dataset_name: str) -> None:
    """Warn when ``transform`` would change the labels of ``dataset_name``.

    A horizontal flip (reglab's or torchvision's ``RandomHorizontalFlip``, also inside a
    ``Compose``) on handwritten digits (see :func:`is_digit_dataset`) raises an
    :class:`AugmentationWarning`, because a mirrored 2 or 5 no longer looks like its label.

    Args:
        transform: a transform, usually the one the training pipeline will apply.
        dataset_name: the data set's name, for example ``"mnist-5k"``.
    """
    if not is_digit_dataset(dataset_name):
        return
    if any(type(part).__name__ == "RandomHorizontalFlip" for part in _walk(transform)):
        warnings.warn(
            f"RandomHorizontalFlip on the digit data set {dataset_name!r} changes labels, because "
            "a mirrored 2 or 5 no longer looks like its label; remove the flip, or use "
            f"default_augmentation({dataset_name!r}, image_shape), a small random affine map.",
            AugmentationWarning,
            stacklevel=2,
        )


def default_augmentation(dataset_name: str, image_shape: Sequence[int]) -> Augmentation:
    """Return the default training augmentation for a built-in data set.

    - Digits (``mnist``, ``mnist-5k``, ``digits``): ``RandomAffine(degrees=20,
      translate=(0.15, 0.15))`` with bilinear interpolation and a black fill, never a flip,
      because a mirrored digit can look like another class or none.
    - Clothing (``fashion-mnist``): ``Compose([RandomCrop((H, W), padding=2),
      RandomHorizontalFlip(0.5)])``. Clothes are upright and centred, and a mirrored shirt is
      still a shirt, so small shifts and flips keep the label.

    Args:
        dataset_name: the data set's registry name.
        image_shape: ``(C, H, W)`` or ``(H, W)`` of one image.

    Raises:
        ConfigError: the name has no default, or ``image_shape`` is not an image shape.
    """
    if (
        not isinstance(image_shape, Sequence)
        or len(image_shape) not in (2, 3)
        or not all(isinstance(size, int) and size > 0 for size in image_shape)
    ):
        raise _fail("default_augmentation", "image_shape", "(C, H, W) or (H, W) of positive ints", image_shape)
    height, width = image_shape[-2], image_shape[-1]

    name = dataset_name.lower() if isinstance(dataset_name, str) else dataset_name
    if name in DIGIT_DATASETS:
        return RandomAffine(degrees=20, translate=(0.15, 0.15), interpolation="bilinear", fill=0.0)
    if name in CLOTHING_DATASETS:
        return Compose([RandomCrop((height, width), padding=2), RandomHorizontalFlip(0.5)])
    known = ", ".join(repr(known_name) for known_name in sorted(DIGIT_DATASETS + CLOTHING_DATASETS))
    raise ConfigError(
        f"default_augmentation: dataset_name must be one of {known}, got {dataset_name!r}; "
        "for other data, build a transform from RandomAffine, RandomCrop, RandomHorizontalFlip "
        "and GaussianNoise."
    )
