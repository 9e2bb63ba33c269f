"""``reglab report``: write a stored study's report and CSV files again, without training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._common import DataDirOption, OutOption, console, parse_int_list
from reglab.cli.compare import McCurveOption, McSamplesOption, results_table

# Sections that train new models: only 'reglab compare' with the option writes them.
TRAINING_SECTIONS = (
    ("learning_curve.csv", "Learning curve", "--learning-curve"),
    ("bias_variance.csv", "Bias and variance", "--bias-variance"),
)


def report(
    study: str = typer.Argument(..., help="The study's name, as listed by 'reglab runs'."),
    out: Path = OutOption,
    data_dir: Optional[Path] = DataDirOption,
    mc_curve: bool = McCurveOption,
    mc_samples: str = McSamplesOption,
) -> None:
    """Render report.html, results.csv and summary.csv of a stored study from reglab.db.

    The learning-curve and bias-variance sections train new models, so they are not
    rendered again; run 'reglab compare' with --learning-curve or --bias-variance for them.
    """
    from reglab.study.compare import report_study

    samples = parse_int_list("--mc-samples", mc_samples)
    outcome = report_study(study, out, data_dir=str(data_dir) if data_dir else None, mc_curve=mc_curve, mc_samples=samples)
    spec = outcome.result.spec
    console.print(results_table(outcome.summaries, f"{spec.name}: {spec.dataset}, {spec.model}", outcome.result.runs))
    missing = len(spec.strategies) * len(spec.seeds) - len(outcome.result.runs) - len(outcome.result.failures)
    if outcome.result.failures:
        console.print(f"[red]{len(outcome.result.failures)} run(s) failed[/]; list them with: reglab runs --status failed")
    if missing:
        console.print(f"{missing} run(s) of the study are not stored yet; run 'reglab compare' again to train them.")
    console.print(f"Report: {outcome.report_path}\nResults: {outcome.results_path}", highlight=False)
    if outcome.mc_curve_path is not None:
        console.print(f"Monte-Carlo dropout: {outcome.mc_curve_path}", highlight=False)
    for csv_name, section, option in TRAINING_SECTIONS:
        path = outcome.report_path.parent / csv_name
        if path.is_file():
            console.print(
                f"The '{section}' section is not in the new report because it trains new models; run "
                f"'reglab compare {option}' with the study's options to write it again. Its earlier numbers remain in {path}.",
                highlight=False,
            )
