"""MNIST and Fashion-MNIST, read from their IDX files with the official test split.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``) are looked
up in this order, and the first directory that contains all four is used:

1. ``data_dir``, the ``--data-dir`` option;
2. ``$REGLAB_DATA``;
3. the directory of the Debian package, ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``) or ``/usr/share/datasets/mnist``.

Under ``data_dir`` and ``$REGLAB_DATA``, reglab looks in the directory itself, in a
subdirectory named after the data set (``fashion-mnist/``, ``mnist/``) and in torchvision's
layout (``FashionMNIST/raw/``, ``MNIST/raw/``). When none contains the files, ``download=True``
runs torchvision's downloader into ``data_dir``, else ``$REGLAB_DATA``, else
``~/.cache/reglab``.
"""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reglab._validation import check_choice
from reglab.data.builtin import DIGIT_CLASSES
from reglab.data.dataset import Dataset
from reglab.data.idx import read_idx
from reglab.data.registry import register_dataset
from reglab.errors import DataError

ENV_VAR = "REGLAB_DATA"
DEFAULT_DOWNLOAD_DIR = Path("~/.cache/reglab")
# Install directories of the Debian packages. Tests replace these entries.
SYSTEM_DIRS: dict[str, Path] = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": Path("/usr/share/datasets/mnist"),
}
FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class _Spec:
    name: str
    torchvision_name: str
    classes: tuple[str, ...]
    apt_package: str | None


_FASHION = _Spec(
    name="fashion-mnist",
    torchvision_name="FashionMNIST",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    apt_package="dataset-fashion-mnist",
)
_MNIST = _Spec(
    name="mnist",
    torchvision_name="MNIST",
    classes=DIGIT_CLASSES,
    apt_package=None,
)
_SPECS = {spec.name: spec for spec in (_FASHION, _MNIST)}


# The arguments, return value and errors that the two loaders' docstrings share, spliced in
# for their ``{idx_loader}`` placeholder below them.
_IDX_LOADER_DOC = """Args:
        data_dir: a directory to look in first, and where ``download=True`` saves the files.
        download: fetch the files with torchvision when they are found nowhere else.

    Returns:
        A :class:`Dataset` with images of shape ``(1, 28, 28)`` in [0, 1].

    Raises:
        DataError: the files were not found (the message lists every directory searched),
            are corrupt, or the download failed."""


@register_dataset("fashion-mnist")
def load_fashion_mnist(*, data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Load Fashion-MNIST: 60,000 training and 10,000 official test images of clothing.

    {idx_loader}
    """
    return _load(_FASHION, data_dir, download)


@register_dataset("mnist")
def load_mnist(*, data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Load MNIST: 60,000 training and 10,000 official test images of handwritten digits.

    {idx_loader}
    """
    return _load(_MNIST, data_dir, download)


# Under ``python -OO`` docstrings are None and nothing is spliced.
for _loader in (load_fashion_mnist, load_mnist):
    if _loader.__doc__:
        _loader.__doc__ = _loader.__doc__.replace("{idx_loader}", _IDX_LOADER_DOC)
del _loader


def search_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the directories searched for ``name``'s IDX files, in order.

    Args:
        name: ``"fashion-mnist"`` or ``"mnist"``.
        data_dir: the directory passed to :func:`reglab.data.load_dataset`, if any.
    """
    spec = _SPECS[check_choice("search_dirs", "name", name, _SPECS)]
    roots = [Path(data_dir).expanduser() if data_dir is not None else None]
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]).expanduser())

    dirs: list[Path] = []
    for root in roots:
        if root is not None:
            dirs += [root, root / spec.name, root / spec.torchvision_name / "raw"]
    dirs.append(SYSTEM_DIRS[spec.name])
    return list(dict.fromkeys(dirs))


def _load(spec: _Spec, data_dir: Path | None, download: bool) -> Dataset:
    # An explicit folder that does not exist is a typo, not a reason to fall back silently
    # to $REGLAB_DATA or the system folders; with download=True it is where files go.
    if data_dir is not None and not download and not Path(data_dir).expanduser().is_dir():
        raise DataError(
            f"data folder '{data_dir}' (--data-dir) not found. Pass an existing folder that contains the "
            f"{spec.name} IDX files, or leave --data-dir out to search ${ENV_VAR} and the system folders."
        )

    searched: list[str] = []
    for directory in search_dirs(spec.name, data_dir):
        files, missing = _find_files(directory)
        if not missing:
            return _read_dataset(spec, directory, files)
        if not directory.is_dir():
            searched.append(f"  {directory} (no such directory)")
        elif len(missing) == len(FILE_NAMES):
            searched.append(f"  {directory} (none of the files)")
        else:
            searched.append(f"  {directory} (missing {', '.join(missing)})")

    if not download:
        raise DataError(_not_found_message(spec, searched))

    raw_dir = _download(spec, data_dir)
    files, missing = _find_files(raw_dir)
    if missing:
        raise DataError(
            f"{spec.name}: torchvision's download finished but {raw_dir} is missing {', '.join(missing)}. "
            f"Delete {raw_dir} and run again with --download."
        )
    return _read_dataset(spec, raw_dir, files)


def _find_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    files: dict[str, Path] = {}
    missing: list[str] = []
    for stem in FILE_NAMES:
        # The uncompressed file is preferred because it reads faster.
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                files[stem] = candidate
                break
        else:
            missing.append(f"{stem}[.gz]")
    return files, missing


def _not_found_message(spec: _Spec, searched: list[str]) -> str:
    remedies = []
    if spec.apt_package:
        remedies.append(f"install the Debian package: apt-get install {spec.apt_package}")
    remedies += [
        "download them with torchvision: pass --download (download=True in Python)",
        f"point reglab at a directory that contains them: --data-dir DIR (data_dir=DIR) or {ENV_VAR}=DIR",
    ]
    environment = "" if os.environ.get(ENV_VAR) else f" ({ENV_VAR} is not set)"
    return (
        f"{spec.name}: the IDX files {', '.join(FILE_NAMES)} (each optionally .gz) were not found. "
        f"Searched, in order{environment}:\n" + "\n".join(searched) + "\nTo get them:\n"
        + "\n".join(f"  - {remedy}" for remedy in remedies)
    )


def _download(spec: _Spec, data_dir: Path | None) -> Path:
    if data_dir is not None:
        root = data_dir
    elif os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR])
    else:
        root = DEFAULT_DOWNLOAD_DIR
    root = root.expanduser()
    raw_dir = root / spec.torchvision_name / "raw"

    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, spec.torchvision_name)
    try:
        # train=False: the downloader fetches all four files either way, and the smaller
        # test split is the one torchvision then reads into memory.
        dataset_class(str(root), train=False, download=True)
    except (RuntimeError, OSError, urllib.error.URLError) as error:
        remedies = f"--data-dir DIR or {ENV_VAR}=DIR pointing at a directory with the IDX files"
        if spec.apt_package:
            remedies = f"apt-get install {spec.apt_package}, or " + remedies
        raise DataError(
            f"{spec.name}: downloading with torchvision into {raw_dir} failed: {error}\n"
            f"Check the network connection and run again, or get the files another way: {remedies}."
        ) from error
    return raw_dir


def _read_dataset(spec: _Spec, directory: Path, files: dict[str, Path]) -> Dataset:
    x_train, y_train = _read_pair(spec, files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"])
    x_test, y_test = _read_pair(spec, files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"])
    if len(y_train) == 60_000:
        _check_not_swapped(spec, directory, y_train)
    return Dataset(spec.name, x_train, y_train, x_test, y_test, spec.classes, str(directory))


def _read_pair(spec: _Spec, image_path: Path, label_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{spec.name}: {image_path} must contain uint8 images shaped (N, 28, 28), got "
            f"{images.dtype} values shaped {images.shape}. Check that the file is the right one."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{spec.name}: {label_path} must contain {len(images)} uint8 labels, one per image in "
            f"{image_path}, got {labels.dtype} values shaped {labels.shape}."
        )
    if labels.max(initial=0) >= len(spec.classes):
        raise DataError(
            f"{spec.name}: {label_path} contains the label {labels.max()}, expected labels 0 to "
            f"{len(spec.classes) - 1}. Check that the file is the right one."
        )

    x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels).long()
    return x, y


def _check_not_swapped(spec: _Spec, directory: Path, labels: torch.Tensor) -> None:
    # MNIST and Fashion-MNIST use the same file names, so the headers cannot tell them apart.
    # Fashion-MNIST's 60,000 training labels are exactly 6,000 per class and MNIST's are not,
    # which distinguishes the two.
    balanced = bool((torch.bincount(labels, minlength=10) == 6_000).all())
    if balanced == (spec is _FASHION):
        return
    other = _MNIST if spec is _FASHION else _FASHION
    raise DataError(
        f"{spec.name}: the files in {directory} look like {other.name}, not {spec.name} (their "
        f"training labels are {'exactly' if balanced else 'not'} 6,000 per class). The two data "
        f"sets use the same file names, so keep them in separate directories, e.g. "
        f"{directory / spec.name} and {directory / other.name}."
    )
