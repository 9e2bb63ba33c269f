"""Weight checkpoints of a study's finished runs, one file per stored run.

A checkpoint is the ``state_dict`` of the model that the run returned, moved to CPU and
written with :func:`torch.save`. It lies at ``<out>/<study>/checkpoints/run-<id>.pt``,
where ``<out>`` is the folder that contains ``reglab.db`` and ``<id>`` is the run's id in
the store.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from reglab.errors import ConfigError


def checkpoint_path(out: str | Path, study: str, run_id: int) -> Path:
    """Return where the checkpoint of run ``run_id`` of ``study`` is stored under ``out``."""
    return Path(out) / study / "checkpoints" / f"run-{run_id}.pt"


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s weights, on CPU, to ``path`` atomically and return the path.

    The weights go to a temporary file in the same folder, which :func:`os.replace` then
    renames to ``path``, so a process killed mid-write leaves the old file or none, never a
    truncated one. A killed process may leave a ``.tmp`` file behind in the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """Load a checkpoint's ``state_dict`` onto the CPU.

    The file is read with ``weights_only=True``, so a file that pickles anything other than
    tensors and plain containers is rejected instead of executed.

    Raises:
        ConfigError: the file does not exist, or it is not a weights-only checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"checkpoint not found: {path}. 'reglab compare' writes one for each finished run it trains locally."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ConfigError(f"failed to load checkpoint {path}: it is not a weights-only checkpoint ({error}).") from None
