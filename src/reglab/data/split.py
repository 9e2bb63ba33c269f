"""The stratified, seeded three-way split: training, validation and a sealed test set."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from reglab._validation import check_int, check_number
from reglab.data.dataset import Dataset
from reglab.data.sealed import SealedTestSet, TensorPair
from reglab.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """Training, validation and sealed test parts of a :class:`Dataset`, made by :func:`make_split`.

    Inputs stay as the data set stores them (images in [0, 1]). The training pipeline
    normalizes each batch with :meth:`normalize`, after augmentation.

    Attributes:
        dataset: the data set's name.
        classes: one name per class, indexed by label.
        train: the training inputs and labels.
        val: the validation inputs and labels.
        test: the sealed test set; see :class:`SealedTestSet`.
        seed: the seed that chose the parts.
        indices: ``"train"``, ``"val"`` and ``"test"`` mapped to lists of int positions in
            the data set's arrays. With an official test split, ``"train"`` and ``"val"``
            index ``x_train`` and ``"test"`` indexes ``x_test``; otherwise all three index
            ``x_train``.
        mean: the training part's mean per channel (images) or per feature (tabular data).
        std: the training part's standard deviation, same shape as ``mean``; constant
            channels or features get 1 so that :meth:`normalize` never divides by zero.
        val_fraction: the share of the data that went to validation.
        test_fraction: the share that went to the test set, or None when the official test
            split was kept.
    """

    dataset: str
    classes: tuple[str, ...]
    train: TensorPair
    val: TensorPair
    test: SealedTestSet
    seed: int
    indices: dict[str, list[int]]
    mean: Tensor
    std: Tensor
    val_fraction: float
    test_fraction: float | None
    _test_counts: list[int] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: ``(C, H, W)`` for images, ``(F,)`` otherwise."""
        return tuple(self.train.x.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether the examples are images shaped ``(C, H, W)``."""
        return self.train.x.dim() == 4

    def normalize(self, x: Tensor) -> Tensor:
        """Return ``(x - mean) / std`` with the training part's statistics.

        Args:
            x: inputs on any device, a batch or a single example.

        Shape:
            - x: :math:`(N, C, H, W)` or :math:`(C, H, W)` for images, :math:`(N, F)` or
              :math:`(F)` for tabular data.
            - Output: same shape as ``x``.
        """
        mean = self.mean.to(device=x.device, dtype=x.dtype)
        std = self.std.to(device=x.device, dtype=x.dtype)
        if self.is_image:
            mean, std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
        return (x - mean) / std

    def to(self, device: str | torch.device) -> Split:
        """Return a copy with every tensor on ``device``; the test access record is shared."""
        return dataclasses.replace(
            self,
            train=TensorPair(self.train.x.to(device), self.train.y.to(device)),
            val=TensorPair(self.val.x.to(device), self.val.y.to(device)),
            test=self.test.to(device),
            mean=self.mean.to(device),
            std=self.std.to(device),
        )

    def describe(self) -> dict[str, Any]:
        """Return the split's sizes, class counts per part, seed and fractions, JSON-ready."""
        counts = {
            "train": _class_counts(self.train.y, self.num_classes),
            "val": _class_counts(self.val.y, self.num_classes),
            "test": list(self._test_counts),
        }
        return {
            "dataset": self.dataset,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "test_source": "held out" if self.test_fraction is not None else "official",
            "sizes": {"train": len(self.train.y), "val": len(self.val.y), "test": len(self.test)},
            "class_counts": {
                part: dict(zip(self.classes, part_counts)) for part, part_counts in counts.items()
            },
        }

    def __repr__(self) -> str:
        return (
            f"Split(dataset={self.dataset!r}, seed={self.seed}, train={len(self.train.y)}, "
            f"val={len(self.val.y)}, test={len(self.test)})"
        )


def make_split(
    dataset: Dataset, *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> Split:
    """Split ``dataset`` into stratified training, validation and sealed test parts.

    When the data set has an official test split, it stays the test set, ``test_fraction``
    is not used, and ``val_fraction`` of the training data becomes the validation part.
    Otherwise ``test_fraction`` and ``val_fraction`` of all the data go to the test and
    validation parts, and the rest (60% by default) to training.

    Each class is divided among the parts in proportion to the fractions, each part
    receiving between the floor and the ceiling of its ideal share. Where a class is so
    small that a part's share rounds to zero, that part still gets one example. The same
    seed always gives the same split.

    Args:
        dataset: the data set to split.
        seed: chooses which examples go to which part, and their order within each part.
        val_fraction: the share for validation, in (0, 1).
        test_fraction: the share for the test set, in (0, 1), when the data set has no
            official test split. ``val_fraction + test_fraction`` must be below 1.

    Returns:
        The :class:`Split`, with ``mean`` and ``std`` computed from its training part only.

    Raises:
        ConfigError: a fraction or the seed is out of range.
        DataError: a class has fewer examples than there are parts to fill.

    Example::

        >>> split = make_split(load_dataset("digits"), seed=0)
        >>> split.describe()["sizes"]
        {'train': 1078, 'val': 359, 'test': 360}
    """
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"make_split: dataset must be a reglab.data.Dataset, got {type(dataset).__name__}.")
    seed = check_int("make_split", "seed", seed, minimum=0)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    official_test = dataset.x_test is not None
    if official_test:
        fractions = {"val": val_fraction, "train": 1.0 - val_fraction}
    else:
        test_fraction = _check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                "make_split: val_fraction + test_fraction must be below 1 to leave training data, "
                f"got {val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}."
            )
        fractions = {"test": test_fraction, "val": val_fraction, "train": 1.0 - val_fraction - test_fraction}

    labels = dataset.y_train.cpu().numpy()
    class_counts = np.bincount(labels, minlength=dataset.num_classes)
    _check_class_sizes(dataset.classes, class_counts, len(fractions))

    rng = np.random.default_rng(seed)
    allocation = _allocate(class_counts, np.array(list(fractions.values())))
    parts: dict[str, list[np.ndarray]] = {part: [] for part in fractions}
    for label, sizes in enumerate(allocation):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.cumsum(sizes)[:-1]
        for part, chosen in zip(fractions, np.split(members, bounds)):
            parts[part].append(chosen)
    chosen_indices = {part: rng.permutation(np.concatenate(pieces)) for part, pieces in parts.items()}

    train_index = torch.from_numpy(chosen_indices["train"])
    val_index = torch.from_numpy(chosen_indices["val"])
    train = TensorPair(dataset.x_train[train_index], dataset.y_train[train_index])
    val = TensorPair(dataset.x_train[val_index], dataset.y_train[val_index])
    if official_test:
        test_x, test_y = dataset.x_test, dataset.y_test
        chosen_indices["test"] = np.arange(len(test_y))
    else:
        test_index = torch.from_numpy(chosen_indices["test"])
        test_x, test_y = dataset.x_train[test_index], dataset.y_train[test_index]

    mean, std = _statistics(train.x)
    return Split(
        dataset=dataset.name,
        classes=dataset.classes,
        train=train,
        val=val,
        test=SealedTestSet(test_x, test_y, seed=seed),
        seed=seed,
        indices={part: chosen_indices[part].tolist() for part in ("train", "val", "test")},
        mean=mean,
        std=std,
        val_fraction=val_fraction,
        test_fraction=None if official_test else test_fraction,
        _test_counts=_class_counts(test_y, dataset.num_classes),
    )


def _check_fraction(name: str, value: Any) -> float:
    value = check_number("make_split", name, value)
    if not 0.0 < value < 1.0:
        raise ConfigError(f"make_split: {name} must be in (0, 1), got {value!r}.")
    return value


def _check_class_sizes(classes: tuple[str, ...], counts: np.ndarray, n_parts: int) -> None:
    for label, count in enumerate(counts):
        if count < n_parts:
            name = classes[label]
            class_text = f"class {name}" if name == str(label) else f"class {name!r} (label {label})"
            split_kind = "3-way split" if n_parts == 3 else "split of the training data into training and validation"
            examples = "example" if count == 1 else "examples"
            raise DataError(
                f"make_split: {class_text} has {count} {examples}; a stratified {split_kind} needs at least "
                f"{n_parts}. Remove the class or provide more data."
            )


def _allocate(class_counts: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Return how many examples of each class go to each part, shape ``(classes, parts)``.

    Every part gets ``floor`` or ``ceil`` of ``count * fraction`` of each class, and at least
    one example. A class's leftover examples go to the parts still below their ideal share.
    Among those, the part furthest behind its ideal total over the classes so far comes
    first, which keeps the part sizes within about one example of their targets.
    """
    allocation = np.zeros((len(class_counts), len(fractions)), dtype=np.int64)
    shortfall = np.zeros(len(fractions))
    parts = range(len(fractions))
    for label, count in enumerate(class_counts):
        ideal = count * fractions
        sizes = np.maximum(np.floor(ideal + 1e-9).astype(np.int64), 1)

        while sizes.sum() < count:
            part = max(parts, key=lambda p: (sizes[p] < ideal[p], shortfall[p] + ideal[p] - sizes[p]))
            sizes[part] += 1
        while sizes.sum() > count:
            # Only reached when the one-example minimum lifted a part above its share.
            part = max((p for p in parts if sizes[p] > 1), key=lambda p: sizes[p] - ideal[p])
            sizes[part] -= 1

        allocation[label] = sizes
        shortfall += ideal - sizes
    return allocation


def _statistics(x: Tensor) -> tuple[Tensor, Tensor]:
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    std, mean = torch.std_mean(x, dim=dims, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean, std


def _class_counts(y: Tensor, num_classes: int) -> list[int]:
    return torch.bincount(y.cpu(), minlength=num_classes).tolist()
