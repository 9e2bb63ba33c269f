"""Checks on folders that reglab writes to, run before any work starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from reglab.errors import ConfigError


def file_in_the_way(folder: Path) -> Path | None:
    """Return ``folder`` or its nearest ancestor that exists but is not a folder, or None."""
    return next((path for path in (folder, *folder.parents) if path.exists() and not path.is_dir()), None)


def prepare_writable_folder(folder: Path, option: str) -> Path:
    """Create ``folder`` with its parents and check that a file can be written in it.

    Args:
        folder: the folder the command writes to.
        option: the command-line option that sets it, for the error message.

    Raises:
        ConfigError: the folder cannot be created or written, for example because a parent
            is a file, is read-only or lies under ``/proc``.
    """
    folder = Path(folder)
    blocking = file_in_the_way(folder)
    if blocking is not None:
        raise ConfigError(
            f"cannot write to the output folder '{folder}': '{blocking}' is a file, not a folder. "
            f"Choose another folder with {option}, or move the file."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A uniquely named probe, so two commands sharing one folder never delete each other's.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".reglab-write-check-"):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot write to the output folder '{folder}': {error.strerror or error}. "
            f"Choose a writable folder with {option}."
        ) from None
    return folder
