"""``reglab report``: write a stored study's report and CSV files again, without training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._common import DataDirOption, OutOption, console


def report(
    study: str = typer.Argument(..., help="The study's name, as listed by 'reglab runs'."),
    out: Path = OutOption,
    data_dir: Optional[Path] = DataDirOption,
) -> None:
    """Render report.html, results.csv and summary.csv of a stored study from reglab.db."""
    from reglab.cli.compare import results_table
    from reglab.study.compare import report_study

    outcome = report_study(study, out, data_dir=str(data_dir) if data_dir else None)
    spec = outcome.result.spec
    console.print(results_table(outcome.summaries, title=f"{spec.name}: {spec.dataset}, {spec.model}"))
    missing = len(spec.strategies) * len(spec.seeds) - len(outcome.result.runs) - len(outcome.result.failures)
    if outcome.result.failures:
        console.print(f"[red]{len(outcome.result.failures)} run(s) failed[/]; list them with: reglab runs --status failed")
    if missing:
        console.print(f"{missing} run(s) of the study are not stored yet; run 'reglab compare' again to train them.")
    console.print(f"Report: {outcome.report_path}\nResults: {outcome.results_path}", highlight=False)
