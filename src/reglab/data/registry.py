"""The data set registry: names mapped to loader functions.

A loader is called with keyword arguments only: ``data_dir`` (a :class:`~pathlib.Path` or
None), ``download`` (bool) and the options a caller passes to :func:`load_dataset`. A
loader registered under a name that ends in ``":"`` (such as ``"csv:"``) handles a family of
names and receives the text after the colon as its first positional argument ``path``.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reglab.data.dataset import Dataset
from reglab.errors import ConfigError

Loader = Callable[..., Dataset]
LoaderT = TypeVar("LoaderT", bound=Loader)

_LOADERS: dict[str, Loader] = {}
_PREFIX_LOADERS: dict[str, Loader] = {}


def register_dataset(name: str, loader: Loader | None = None) -> Any:
    """Register ``loader`` under ``name``; usable as a decorator.

    Args:
        name: a lower-case name such as ``"fashion-mnist"``, or a prefix ending in ``":"``
            such as ``"csv:"`` for loaders that take a path.
        loader: the function that builds the :class:`Dataset`. Leave it out to use
            ``register_dataset`` as a decorator.

    Returns:
        ``loader`` itself, or a decorator that registers and returns the decorated function.

    Raises:
        ConfigError: ``name`` is empty, not lower case or already registered.

    Example::

        >>> @register_dataset("xor")
        ... def load_xor(*, data_dir=None, download=False):
        ...     ...
    """
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ConfigError(
            f"register_dataset: name must be a non-empty lower-case string without surrounding "
            f"spaces, got {name!r}."
        )
    if name in _LOADERS or name in _PREFIX_LOADERS:
        raise ConfigError(
            f"register_dataset: a data set named {name!r} is already registered; choose another name."
        )

    def decorate(function: LoaderT) -> LoaderT:
        table = _PREFIX_LOADERS if name.endswith(":") else _LOADERS
        table[name] = function
        return function

    return decorate if loader is None else decorate(loader)


def available_datasets() -> list[str]:
    """Return the registered data set names, sorted.

    Prefix loaders for user data (``csv:PATH``, ``npz:PATH``) are not included, because
    they need a path; :func:`load_dataset` lists them in its error message.
    """
    return sorted(_LOADERS)


def load_dataset(
    name: str = "mnist-5k",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    **kwargs: Any,
) -> Dataset:
    """Load a registered data set, or user data from ``csv:PATH`` or ``npz:PATH``.

    Args:
        name: a name from :func:`available_datasets` (case does not matter), or
            ``"csv:PATH"`` / ``"npz:PATH"`` for a file of your own.
        data_dir: a directory to look in first for data sets read from files
            (``fashion-mnist``, ``mnist``), and where ``download=True`` saves them.
        download: for ``fashion-mnist`` and ``mnist``, download the files with torchvision
            when they are found nowhere else.
        **kwargs: options of the data set's loader, such as ``n_samples``, ``noise`` and
            ``seed`` for ``moons`` and ``circles``.

    Returns:
        The :class:`Dataset`.

    Raises:
        ConfigError: the name is unknown or an option is not accepted by its loader.
        DataError: the data is missing, corrupt or malformed.

    Example::

        >>> data = load_dataset("moons", n_samples=200, seed=1)
        >>> data.x_train.shape
        torch.Size([200, 2])
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"load_dataset: name must be a non-empty string, got {name!r}.")
    if not isinstance(download, bool):
        raise ConfigError(f"load_dataset: download must be True or False, got {download!r}.")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise ConfigError(f"load_dataset: data_dir must be a path or None, got {data_dir!r}.")
    directory = Path(data_dir).expanduser() if data_dir is not None else None

    name = name.strip()
    key = name.lower()
    if key in _LOADERS:
        loader = _LOADERS[key]
        _check_options(key, loader, kwargs)
        return loader(data_dir=directory, download=download, **kwargs)

    prefix, colon, path = name.partition(":")
    prefix_key = prefix.lower() + colon
    if colon and prefix_key in _PREFIX_LOADERS:
        if not path:
            raise ConfigError(
                f"load_dataset: {name!r} names no file; write it as '{prefix_key}PATH', "
                f"e.g. '{prefix_key}data/train.{prefix.lower()}'."
            )
        loader = _PREFIX_LOADERS[prefix_key]
        _check_options(prefix_key, loader, kwargs)
        return loader(path, data_dir=directory, download=download, **kwargs)

    raise ConfigError(_unknown_name_message(name))


def _unknown_name_message(name: str) -> str:
    names = available_datasets()
    message = f"load_dataset: unknown data set {name!r}."
    close = difflib.get_close_matches(name.lower(), names, n=1)
    if close:
        message += f" Did you mean {close[0]!r}?"
    message += f" Available data sets: {', '.join(names)}."
    if _PREFIX_LOADERS:
        forms = ", ".join(f"{prefix}PATH" for prefix in sorted(_PREFIX_LOADERS))
        message += f" For a file of your own use {forms}."
    return message


def _check_options(name: str, loader: Loader, options: dict[str, Any]) -> None:
    parameters = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        p.name
        for p in parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("data_dir", "download")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise ConfigError(
            f"load_dataset: data set {name!r} does not accept the option(s) {', '.join(unknown)}; "
            f"its options are: {allowed}."
        )
