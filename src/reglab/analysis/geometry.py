"""The geometry of L1 and L2 penalties on a linear regression with two weights.

The model is ``y = w1·x1 + w2·x2`` without an intercept, fitted to seeded synthetic data
whose two features are correlated. The unregularized cost is the halved mean squared error

    C(w) = 1/(2n) · ||y - X w||²,

and the penalties follow reglab's convention: :class:`~reglab.penalties.L2` adds
``λ/2 · ||w||²`` and :class:`~reglab.penalties.L1` adds ``λ · ||w||₁``. With this scaling
the L2 minimizer is the ridge solution ``(XᵀX/n + λI)⁻¹ Xᵀy/n`` and the L1 minimizer is the
lasso solution of :class:`sklearn.linear_model.Lasso` with ``alpha=λ``.

Both paths are computed by optimization, in float64:

* L2: full-batch gradient descent on ``C(w) + L2(λ)(model)``, with autograd computing the
  gradient and step size ``1/(σ_max + λ)``, where ``σ_max`` is the largest eigenvalue of
  ``XᵀX/n``.
* L1: proximal gradient descent (ISTA): a gradient step on ``C(w)`` followed by
  soft-thresholding, the proximal operator of ``λ·||w||₁``. Soft-thresholding sets a weight
  to exactly 0, which plain (sub)gradient steps on ``L1(λ)(model)`` never do.

Each strength starts from the previous strength's solution and stops when no weight moves
by more than ``tol`` in one step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reglab._validation import check_int, check_number, check_positive
from reglab.analysis._output import DEFAULT_DPI, check_seeds, save_figure_and_csv
from reglab.errors import ConfigError
from reglab.penalties import L2

#: A weight whose absolute value is below this counts as zero.
ZERO_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RegressionProblem:
    """The synthetic regression of one seed, reduced to the statistics that define its cost.

    Attributes:
        seed: the seed that drew the data.
        x: centred features, shape ``(n, 2)``.
        y: centred targets, shape ``(n,)``.
        gram: ``XᵀX/n``, shape ``(2, 2)``.
        moment: ``Xᵀy/n``, shape ``(2,)``.
        ols: the unregularized least-squares weights, shape ``(2,)``.
    """

    seed: int
    x: np.ndarray
    y: np.ndarray
    gram: np.ndarray
    moment: np.ndarray
    ols: np.ndarray

    def cost(self, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
        """Evaluate ``C(w) = 1/(2n)·||y - Xw||²`` at each pair of ``w1``, ``w2`` (same shapes)."""
        g, b = self.gram, self.moment
        quadratic = g[0, 0] * w1**2 + 2 * g[0, 1] * w1 * w2 + g[1, 1] * w2**2
        return 0.5 * (quadratic - 2 * (b[0] * w1 + b[1] * w2) + float(np.mean(self.y**2)))

    @property
    def max_l1_strength(self) -> float:
        """The smallest L1 strength at which both weights are 0: ``max |Xᵀy/n|``."""
        return float(np.max(np.abs(self.moment)))


@dataclass(frozen=True)
class GeometryPath:
    """The L1 and L2 solution paths of one seed's data.

    Attributes:
        problem: the data and its cost.
        strengths: the penalty strengths λ, increasing, shape ``(S,)``.
        l1_weights: the L1-penalized solution at each strength, shape ``(S, 2)``.
        l2_weights: the L2-penalized solution at each strength, shape ``(S, 2)``.
        l1_iterations: proximal-gradient steps spent at each strength, shape ``(S,)``.
        l2_iterations: gradient-descent steps spent at each strength, shape ``(S,)``.
    """

    problem: RegressionProblem
    strengths: np.ndarray
    l1_weights: np.ndarray
    l2_weights: np.ndarray
    l1_iterations: np.ndarray
    l2_iterations: np.ndarray

    @property
    def sparse_from(self) -> float:
        """The smallest strength from which on every L1 solution has a weight below
        :data:`ZERO_TOLERANCE`, or NaN when the largest strength's solution has none."""
        sparse = np.min(np.abs(self.l1_weights), axis=1) < ZERO_TOLERANCE
        if not sparse[-1]:
            return float("nan")
        first = len(sparse) - int(np.argmin(sparse[::-1])) if not sparse.all() else 0
        return float(self.strengths[first])


@dataclass(frozen=True)
class GeometryResult:
    """The L1 and L2 paths of every seed, and the highlighted solutions of the first seed.

    Attributes:
        paths: one :class:`GeometryPath` per seed, in the order of the seeds.
        strength: the highlighted strength λ.
        l1_solution: the first seed's L1 solution at ``strength``, shape ``(2,)``.
        l2_solution: the first seed's L2 solution at ``strength``, shape ``(2,)``.
        correlation: the correlation between the two features that the data was drawn with.
        true_weights: the weights that generated the targets.
    """

    paths: list[GeometryPath]
    strength: float
    l1_solution: np.ndarray
    l2_solution: np.ndarray
    correlation: float
    true_weights: tuple[float, float]

    def rows(self) -> list[dict[str, float | int | str]]:
        """Return one CSV row per seed, penalty and strength."""
        rows: list[dict[str, float | int | str]] = []
        for path in self.paths:
            for penalty, weights, steps in (
                ("l1", path.l1_weights, path.l1_iterations),
                ("l2", path.l2_weights, path.l2_iterations),
            ):
                for strength, (w1, w2), iterations in zip(path.strengths, weights, steps):
                    rows.append(
                        {
                            "seed": path.problem.seed,
                            "penalty": penalty,
                            "strength": float(strength),
                            "w1": float(w1),
                            "w2": float(w2),
                            "l1_norm": abs(w1) + abs(w2),
                            "l2_norm": float(np.hypot(w1, w2)),
                            "cost": float(path.problem.cost(w1, w2)),
                            "iterations": int(iterations),
                        }
                    )
        return rows


def make_problem(
    seed: int,
    *,
    n_samples: int = 200,
    correlation: float = 0.7,
    true_weights: tuple[float, float] = (3.0, 1.0),
    noise: float = 1.0,
) -> RegressionProblem:
    """Draw correlated standard-normal features and targets ``y = Xw + noise``, then centre them.

    Args:
        seed: the seed of the NumPy generator.
        n_samples: number of points, at least 3.
        correlation: correlation of the two features, in (-1, 1).
        true_weights: the weights that generate the targets.
        noise: standard deviation of the Gaussian noise on the targets.

    Returns:
        The :class:`RegressionProblem`.
    """
    rng = np.random.default_rng(seed)
    covariance = np.array([[1.0, correlation], [correlation, 1.0]])
    x = rng.multivariate_normal(np.zeros(2), covariance, size=n_samples)
    y = x @ np.asarray(true_weights, dtype=float) + noise * rng.standard_normal(n_samples)
    x = x - x.mean(axis=0)
    y = y - y.mean()
    gram = x.T @ x / n_samples
    moment = x.T @ y / n_samples
    return RegressionProblem(seed, x, y, gram, moment, np.linalg.solve(gram, moment))


def ridge_closed_form(problem: RegressionProblem, strength: float) -> np.ndarray:
    """Return the exact L2 minimizer ``(XᵀX/n + λI)⁻¹ Xᵀy/n``."""
    return np.linalg.solve(problem.gram + strength * np.eye(2), problem.moment)


def _solve(
    problem: RegressionProblem,
    penalty: str,
    strength: float,
    start: np.ndarray,
    *,
    tol: float,
    max_iterations: int,
) -> tuple[np.ndarray, int]:
    """Minimize ``C(w)`` plus the penalty from ``start``, and return the weights and the step count."""
    x = torch.from_numpy(problem.x)
    y = torch.from_numpy(problem.y)
    model = nn.Linear(2, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(start).view(1, 2))

    # 1/L is a safe step for an L-smooth objective, and L2 adds λ to the cost's curvature.
    curvature = float(np.linalg.eigvalsh(problem.gram)[-1])
    step = 1.0 / (curvature + (strength if penalty == "l2" else 0.0))
    smooth_penalty = L2(strength) if penalty == "l2" else None

    for iteration in range(1, max_iterations + 1):
        previous = model.weight.detach().clone()
        loss = 0.5 * (model(x).squeeze(1) - y).square().mean()
        if smooth_penalty is not None:
            loss = loss + smooth_penalty(model)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            model.weight -= step * model.weight.grad
            if penalty == "l1":
                # Soft-thresholding, the proximal operator of step·λ·||w||₁.
                model.weight.copy_(torch.sign(model.weight) * (model.weight.abs() - step * strength).clamp_min(0.0))
        if float((model.weight.detach() - previous).abs().max()) <= tol:
            break
    return model.weight.detach().view(2).numpy().copy(), iteration


def solution_path(
    problem: RegressionProblem,
    strengths: Sequence[float],
    *,
    tol: float = 1e-12,
    max_iterations: int = 100_000,
) -> GeometryPath:
    """Compute the L1 and L2 solutions of ``problem`` at each strength by optimization.

    Args:
        problem: the regression.
        strengths: penalty strengths λ >= 0, in any order. The path sorts them.
        tol: stop when no weight moves by more than this in one step.
        max_iterations: the step budget per strength.

    Returns:
        The :class:`GeometryPath`.
    """
    ordered = np.sort(np.asarray([check_number("solution_path", "strength", s) for s in strengths], dtype=float))
    if len(ordered) == 0 or ordered[0] < 0:
        raise ConfigError(f"solution_path: strengths must be a non-empty list of numbers >= 0, got {list(strengths)}.")

    l1_weights, l2_weights, l1_steps, l2_steps = [], [], [], []
    l1_start = l2_start = problem.ols.copy()
    for strength in ordered:
        l1_start, l1_count = _solve(problem, "l1", strength, l1_start, tol=tol, max_iterations=max_iterations)
        l2_start, l2_count = _solve(problem, "l2", strength, l2_start, tol=tol, max_iterations=max_iterations)
        l1_weights.append(l1_start)
        l2_weights.append(l2_start)
        l1_steps.append(l1_count)
        l2_steps.append(l2_count)
    return GeometryPath(
        problem, ordered, np.array(l1_weights), np.array(l2_weights), np.array(l1_steps), np.array(l2_steps)
    )


def penalty_geometry(
    seeds: Sequence[int] = (0, 1, 2),
    *,
    n_samples: int = 200,
    correlation: float = 0.7,
    true_weights: tuple[float, float] = (3.0, 1.0),
    noise: float = 1.0,
    n_strengths: int = 40,
    strength: float | None = None,
) -> GeometryResult:
    """Compute the L1 and L2 solution paths of a two-weight linear regression over seeds.

    The strengths are ``n_strengths`` values spaced evenly on a log scale from 0.1% to 120%
    of the first seed's :attr:`RegressionProblem.max_l1_strength`, the strength at which
    the L1 solution becomes 0.

    Args:
        seeds: one synthetic data set per seed. The figure draws the first one.
        n_samples: points per data set, at least 3.
        correlation: correlation of the two features, in (-1, 1).
        true_weights: the weights that generate the targets.
        noise: standard deviation of the Gaussian noise on the targets, >= 0.
        n_strengths: number of strengths on the path, at least 2.
        strength: the strength whose solutions and constraint regions are highlighted.
            Defaults to the geometric mean of the first seed's :attr:`GeometryPath.sparse_from`
            and the strength at which the L1 solution becomes 0, where the L1 solution has
            one zero and one non-zero weight.

    Returns:
        The :class:`GeometryResult`.

    Raises:
        ConfigError: an argument is out of range.
    """
    owner = "penalty_geometry"
    seeds = check_seeds(owner, seeds)
    n_samples = check_int(owner, "n_samples", n_samples, minimum=3)
    correlation = check_number(owner, "correlation", correlation)
    if not -1.0 < correlation < 1.0:
        raise ConfigError(f"{owner}: correlation must be in (-1, 1), got {correlation!r}.")
    if len(true_weights) != 2:
        raise ConfigError(f"{owner}: true_weights must contain 2 numbers, got {len(true_weights)}.")
    true_weights = tuple(check_number(owner, f"true_weights[{i}]", value) for i, value in enumerate(true_weights))
    noise = check_number(owner, "noise", noise)
    if noise < 0:
        raise ConfigError(f"{owner}: noise must be >= 0, got {noise!r}.")
    n_strengths = check_int(owner, "n_strengths", n_strengths, minimum=2)
    if strength is not None:
        strength = check_positive(owner, "strength", strength)

    options = {"n_samples": n_samples, "correlation": correlation, "true_weights": true_weights, "noise": noise}
    problems = [make_problem(seed, **options) for seed in seeds]
    top = problems[0].max_l1_strength
    if top <= 0.0:
        raise ConfigError(
            f"{owner}: the targets of seed {seeds[0]} are uncorrelated with both features, so every "
            f"penalized solution is 0. Use non-zero true_weights or noise > 0, got {true_weights} and {noise}."
        )
    strengths = np.geomspace(1e-3 * top, 1.2 * top, n_strengths)
    paths = [solution_path(problem, strengths) for problem in problems]

    if strength is None:
        sparse_from = paths[0].sparse_from
        strength = float(np.sqrt(sparse_from * top)) if np.isfinite(sparse_from) else 0.5 * top
    highlighted = solution_path(problems[0], [strength])
    return GeometryResult(
        paths=paths,
        strength=strength,
        l1_solution=highlighted.l1_weights[0],
        l2_solution=highlighted.l2_weights[0],
        correlation=correlation,
        true_weights=true_weights,
    )


def render_geometry(result: GeometryResult, out: Path, dpi: int = DEFAULT_DPI) -> list[Path]:
    """Draw the constraint regions and solution paths, and write PNG, SVG and the CSV to ``out``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Polygon

    from reglab.analysis._output import band

    first = result.paths[0]
    problem = first.problem
    figure, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1, 1, 1.25]})

    # Both weight-space panels share limits that contain the origin and the OLS point.
    span = 1.25 * max(abs(problem.ols).max(), 1e-3)
    grid = np.linspace(-span, span, 300)
    w1, w2 = np.meshgrid(grid, grid)
    cost = problem.cost(w1, w2)
    levels = np.quantile(cost, np.linspace(0.0, 0.6, 12) ** 2)[1:]

    panels = (
        (axes[0], "L2 penalty λ/2·‖w‖²: the disc touches a contour off the axes", first.l2_weights, result.l2_solution, "tab:blue"),
        (axes[1], "L1 penalty λ·‖w‖₁: the diamond touches a contour at a corner", first.l1_weights, result.l1_solution, "tab:red"),
    )
    for ax, title, path, solution, color in panels:
        ax.contour(w1, w2, cost, levels=levels, colors="0.6", linewidths=0.8)
        ax.contour(w1, w2, cost, levels=[problem.cost(*solution)], colors=color, linewidths=1.2, linestyles="--")
        if ax is axes[0]:
            radius = float(np.hypot(*solution))
            ax.add_patch(Circle((0, 0), radius, facecolor=color, alpha=0.18, edgecolor=color))
        else:
            size = float(np.abs(solution).sum())
            corners = [(size, 0), (0, size), (-size, 0), (0, -size)]
            ax.add_patch(Polygon(corners, closed=True, facecolor=color, alpha=0.18, edgecolor=color))
        ax.plot(path[:, 0], path[:, 1], color=color, linewidth=2, label="solution path (λ grows → origin)")
        ax.plot(*problem.ols, marker="*", markersize=13, color="black", linestyle="none", label="unregularized (λ = 0)")
        ax.plot(*solution, marker="o", markersize=8, color=color, markeredgecolor="black", linestyle="none",
                label=f"solution at λ = {result.strength:.3g}: ({solution[0]:.3f}, {solution[1]:.3f})")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
        ax.set_aspect("equal")
        ax.set_xlabel("w₁ (y units per s.d. of x₁)")
        ax.set_ylabel("w₂ (y units per s.d. of x₂)")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower left", fontsize=7.5, framealpha=0.9)

    ax = axes[2]
    strengths = first.strengths
    for name, attribute, color in (("L1", "l1_weights", "tab:red"), ("L2", "l2_weights", "tab:blue")):
        weights = np.stack([getattr(path, attribute) for path in result.paths])
        for index, style in ((0, "-"), (1, "--")):
            mean, low, high = band(weights[:, :, index])
            ax.plot(strengths, mean, color=color, linestyle=style, label=f"{name}: w{'₁₂'[index]}")
            ax.fill_between(strengths, low, high, color=color, alpha=0.15)
    ax.axvline(result.strength, color="0.4", linestyle=":", linewidth=1, label=f"highlighted λ = {result.strength:.3g}")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("penalty strength λ (log scale)")
    ax.set_ylabel("weight (y units per s.d. of x)")
    seeds = len(result.paths)
    ax.set_title(f"Weights against λ: mean over {seeds} seed{'s' if seeds > 1 else ''}, band = range over seeds", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)

    figure.suptitle(
        f"Linear regression y = w₁x₁ + w₂x₂, {len(problem.y)} points, feature correlation {result.correlation:g}, "
        f"true w = {result.true_weights}",
        fontsize=11,
    )
    figure.tight_layout()
    return save_figure_and_csv(figure, out, "geometry", result.rows(), dpi)
