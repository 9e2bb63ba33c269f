"""Rich progress bars over runs and over the epochs of the current run."""

from __future__ import annotations

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reglab.cli._common import console


class RichProgress:
    """Draw study progress: one bar for all runs and one for the current run's epochs."""

    def __init__(self, total_runs: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._runs = self._progress.add_task("runs", total=total_runs, status="")
        self._epochs = self._progress.add_task("epochs", total=1, status="", visible=False)

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(*exc_info)

    def run_started(self, label: str, epochs: int) -> None:
        self._progress.reset(self._epochs, total=epochs, description=label, status="", visible=True)

    def epoch_finished(self, epoch: int, row: dict[str, float]) -> None:
        status = f"train {row['train_acc'] * 100:.1f}%  val {row['val_acc'] * 100:.1f}%"
        self._progress.update(self._epochs, completed=epoch, status=status)

    def run_finished(self, label: str, *, skipped: bool, error: str | None = None) -> None:
        if error:
            console.print(f"[red]failed[/] {label}: {escape(error)}", highlight=False)
        self._progress.update(self._runs, advance=1, status="(skipped finished)" if skipped else "")

        # Progress bars are not drawn when the output is a file or a pipe, so a long study
        # would print nothing until it ends. One line per run keeps such a log readable.
        if not console.is_terminal and not error:
            done = int(self._progress.tasks[self._runs].completed)
            total = self._progress.tasks[self._runs].total
            console.print(f"{'skipped finished' if skipped else 'finished'} {label} ({done}/{total})", highlight=False)
