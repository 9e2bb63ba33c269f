"""``reglab geometry``: the L1 diamond and the L2 disc on a two-weight linear regression."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reglab.cli._analysis import DpiOption, out_option, resolve_analysis, study_file_argument
from reglab.cli._common import console


def geometry(
    ctx: typer.Context,
    study_file: Optional[Path] = study_file_argument("geometry"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of synthetic data sets (seeds 0, 1, ...)."),
    samples: int = typer.Option(200, "--samples", min=3, help="Points per data set."),
    correlation: float = typer.Option(0.7, "--correlation", help="Correlation of the two features, in (-1, 1)."),
    noise: float = typer.Option(1.0, "--noise", help="Standard deviation of the noise on the targets, >= 0."),
    strengths: int = typer.Option(40, "--strengths", min=2, help="Number of penalty strengths on each path."),
    strength: Optional[float] = typer.Option(
        None, "--strength", help="Strength λ to highlight. Default: one where the L1 solution has one zero weight."
    ),
    out: Path = out_option("geometry", help="Output folder."),
    dpi: int = DpiOption,
) -> None:
    """Draw the L1 and L2 constraint regions and solution paths of y = w1·x1 + w2·x2."""
    from reglab.analysis.geometry import penalty_geometry, render_geometry

    run = resolve_analysis(
        ctx,
        "geometry",
        study_file,
        out,
        seeds=list(range(seeds)),
        samples=samples,
        correlation=correlation,
        noise=noise,
        strengths=strengths,
        strength=strength,
        dpi=dpi,
    )
    settings = run.settings
    result = penalty_geometry(
        settings["seeds"],
        n_samples=settings["samples"],
        correlation=settings["correlation"],
        noise=settings["noise"],
        n_strengths=settings["strengths"],
        strength=settings["strength"],
    )
    written = [*render_geometry(result, run.out, settings["dpi"]), run.write_settings()]

    l1, l2 = result.l1_solution, result.l2_solution
    console.print(f"At λ = {result.strength:.4g} (seed 0): L1 weights ({l1[0]:.4f}, {l1[1]:.4f}), L2 weights ({l2[0]:.4f}, {l2[1]:.4f}).", highlight=False)
    for path in result.paths:
        console.print(f"seed {path.problem.seed}: L1 has a zero weight from λ = {path.sparse_from:.4g} on.", highlight=False)
    console.print(f"Wrote {', '.join(str(path) for path in written)}.", highlight=False)
