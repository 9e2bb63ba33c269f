"""Weight checkpoints of a study's finished runs, one file per stored run.

A checkpoint is the ``state_dict`` of the model that the run returned, moved to CPU and
written with :func:`torch.save`. It lies at ``<out>/<study>/checkpoints/run-<id>.pt``,
where ``<out>`` is the folder that contains ``reglab.db`` and ``<id>`` is the run's id in
the store.

The store assigns ``<id>`` when it commits the run's row, but the weights must be on disk
before that commit, or a process killed between the two would leave a stored run without
weights. So the runner first writes ``pending-<key>.pt`` (``<key>`` is the run's
:meth:`~reglab.training.config.RunConfig.key`), then commits the row, then renames the file
to ``run-<id>.pt`` with :func:`commit_checkpoint`. A resumed study calls
:func:`commit_checkpoint` again for every run it skips, which finishes a rename that a
killed process left undone. A pending file without a row is the checkpoint of a run that
was never committed: the resumed study trains that run again and overwrites the file.
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


def pending_checkpoint_path(out: str | Path, study: str, run_key: str) -> Path:
    """Return where a run's checkpoint waits, under its settings key, until its row is committed."""
    return Path(out) / study / "checkpoints" / f"pending-{run_key}.pt"


def commit_checkpoint(out: str | Path, study: str, run_key: str, run_id: int) -> Path | None:
    """Rename the pending checkpoint of run ``run_key`` to ``run-<run_id>.pt`` and return its path.

    A checkpoint already at ``run-<run_id>.pt`` is kept, and a pending file beside it is
    removed. Returns None when neither file exists: runs trained on Ray workers, and runs
    stored by a reglab version before pending checkpoints, have none.
    """
    final = checkpoint_path(out, study, run_id)
    pending = pending_checkpoint_path(out, study, run_key)
    if final.is_file():
        pending.unlink(missing_ok=True)
        return final
    if not pending.is_file():
        return None
    os.replace(pending, final)
    return final


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
