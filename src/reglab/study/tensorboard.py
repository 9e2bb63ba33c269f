"""TensorBoard scalars of stored runs: one log folder per run, one scalar per metric and epoch.

Needs the optional ``tensorboard`` package (``pip install tensorboard``), which
:mod:`torch.utils.tensorboard` imports; it is imported only when scalars are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reglab._paths import prepare_writable_folder
from reglab.errors import ConfigError

HISTORY_SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "gap")


def run_log_name(run: dict[str, Any]) -> str:
    """Return the folder name of a run's log, e.g. ``l2-seed0-run12``."""
    return f"{run['strategy']}-seed{run['seed']}-run{run['id']}"


def write_tensorboard_scalars(study: str, runs: Sequence[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Write the history and test metrics of finished runs as TensorBoard scalars.

    Each run gets ``folder/<study>/<strategy>-seed<seed>-run<id>``, with ``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc`` and ``gap`` per epoch, and ``test_loss`` and
    ``test_acc`` at the epoch whose weights were kept. A run whose folder exists already is
    skipped, so writing a resumed study again adds only its new runs.

    Returns:
        The log folders written.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed.
    """
    summary_writer = _summary_writer_class()
    written = []
    for run in runs:
        log_dir = Path(folder) / study / run_log_name(run)
        if log_dir.exists() or run["status"] != "finished":
            continue
        writer = summary_writer(log_dir=str(log_dir))
        try:
            for row in run["history"]:
                for metric in HISTORY_SCALARS:
                    writer.add_scalar(metric, row[metric], row["epoch"])
            for metric, value in (run["test_metrics"] or {}).items():
                writer.add_scalar(metric, value, run["best_epoch"])
        finally:
            writer.close()
        written.append(log_dir)
    return written


class LiveScalars:
    """Write each run's scalars as soon as the study stores it, for ``on_run_stored`` of :func:`run_study`.

    TensorBoard shows a run while the study goes on. :meth:`write_all` at the end adds the
    runs that the study skipped as already stored; folders written before are skipped.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed, or ``folder`` cannot be
            created or written (raised on construction).
    """

    def __init__(self, study: str, folder: str | Path) -> None:
        check_tensorboard()
        self.study = study
        self.folder = prepare_writable_folder(Path(folder), "--tensorboard")
        self.written: list[Path] = []

    def __call__(self, run: dict[str, Any]) -> None:
        self.write_all([run])

    def write_all(self, runs: Sequence[dict[str, Any]]) -> None:
        """Write the runs whose log folders do not exist yet, and remember their folders."""
        self.written += write_tensorboard_scalars(self.study, runs, self.folder)


def _summary_writer_class() -> Any:
    """Return :class:`torch.utils.tensorboard.SummaryWriter`, or raise ConfigError without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package, which is not installed; run 'pip install tensorboard'."
        ) from None
    return SummaryWriter


def check_tensorboard() -> None:
    """Raise ConfigError now, before a study trains, when ``tensorboard`` is not installed."""
    _summary_writer_class()
