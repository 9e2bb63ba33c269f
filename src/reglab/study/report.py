"""The self-contained HTML report of a study: tables, figures and the exact settings.

The report data is computed first (:func:`build_report`) and rendered second, so tests can
check the numbers without reading HTML. Every user-provided string is escaped by Jinja2's
autoescaping, and images are embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import torch

from reglab.augment import default_augmentation
from reglab.study import figures
from reglab.study.bias_variance import StudyBiasVariance, describe_bias_variance
from reglab.study.learning_curve import StudyLearningCurve, describe_learning_curve
from reglab.study.mc_dropout import StudyMCCurve, describe_mc_curve
from reglab.study.runner import StudyResult
from reglab.study.store import library_versions
from reglab.study.summary import StrategySummary, has_batched_runs, summarize

SPARSITY_THRESHOLD = 1e-3


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _weight_rows(runs_by_strategy: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for name, runs in runs_by_strategy.items():
        norms, sparsities = [], []
        for run in runs:
            stats = run["weight_stats"] or []
            total = sum(layer["n_params"] for layer in stats) or 1
            norms.append(math.sqrt(sum(layer["l2_norm"] ** 2 for layer in stats)))
            sparsities.append(sum(layer["sparsity"] * layer["n_params"] for layer in stats) / total)
        rows.append({"strategy": name, "l2_norm": sum(norms) / len(norms), "sparsity": sum(sparsities) / len(sparsities)})
    return rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _layer_rows(runs_by_strategy: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per strategy and weight matrix, means over seeds of norm, sparsity and dead ReLUs."""
    rows = []
    for name, runs in runs_by_strategy.items():
        layers: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            for layer in run["weight_stats"] or []:
                layers.setdefault(layer["name"], []).append(layer)
        for layer_name, seeds in layers.items():
            dead = [layer["dead_relu"] for layer in seeds if layer.get("dead_relu") is not None]
            rows.append(
                {
                    "strategy": name,
                    "layer": layer_name,
                    "shape": "×".join(str(size) for size in seeds[0]["shape"]),
                    "l2_norm": _mean([layer["l2_norm"] for layer in seeds]),
                    "sparsity": _mean([layer["sparsity"] for layer in seeds]),
                    "dead_relu": _mean(dead),
                }
            )
    return rows


def _mc_rows(mc_curve: StudyMCCurve | None) -> list[dict[str, Any]]:
    """Return one row per dropout strategy: the deterministic scores and both means at the largest T, means over seeds."""
    if mc_curve is None:
        return []
    rows = []
    for name, curve in mc_curve.curves.items():
        row = {
            "strategy": name,
            "deterministic_acc": float(curve.deterministic_accuracy.mean()),
            "deterministic_nll": float(curve.deterministic_nll.mean()),
        }
        for mean, values in curve.accuracy.items():
            row[f"{mean}_acc"] = float(values[:, -1].mean())
            row[f"{mean}_nll"] = float(curve.nll[mean][:, -1].mean())
        rows.append(row)
    return rows


def _augmentation_figure(result: StudyResult) -> tuple[str | None, str]:
    if result.dataset is None or not result.dataset.is_image:
        return None, ""
    if not any(config.augment for config in result.spec.strategies.values()):
        return None, ""
    augmentation = default_augmentation(result.spec.dataset, tuple(result.dataset.x_train.shape[1:]))
    images = result.dataset.x_train[torch.randperm(len(result.dataset.x_train), generator=torch.Generator().manual_seed(0))[:8]]
    augmented = augmentation(images, generator=torch.Generator().manual_seed(1))
    return _b64(figures.augmentation_grid(images, augmented)), f"Training batches are augmented with {augmentation!r}."


def build_report(
    result: StudyResult,
    learning_curve: StudyLearningCurve | None = None,
    mc_curve: StudyMCCurve | None = None,
    bias_variance: StudyBiasVariance | None = None,
) -> dict[str, Any]:
    """Compute everything the report shows: summaries, figures (base64 PNG) and settings.

    ``learning_curve``, from :func:`~reglab.study.learning_curve.run_learning_curve`, adds the
    "Learning curve" section, ``mc_curve`` (:func:`~reglab.study.mc_dropout.run_mc_curve`) the
    "Monte-Carlo dropout" section and ``bias_variance``
    (:func:`~reglab.study.bias_variance.run_bias_variance`) the "Bias and variance" section.
    A section whose argument is None is left out.
    """
    spec = result.spec
    descriptions = {name: config.describe() for name, config in spec.strategies.items()}
    summaries: list[StrategySummary] = summarize(result.runs, descriptions)
    runs_by_strategy: dict[str, list[dict[str, Any]]] = {}
    for run in result.runs:
        runs_by_strategy.setdefault(run["strategy"], []).append(run)

    augmentation_png, augmentation_text = _augmentation_figure(result)
    figure_data = {
        "augmentation": augmentation_png,
        "learning_curves": None,
        "gap": None,
        "test_accuracy": None,
        "training_size": None,
        "mc_curve": None,
        "bias_variance": None,
    }
    if runs_by_strategy:
        figure_data["learning_curves"] = _b64(figures.learning_curves(runs_by_strategy))
        figure_data["gap"] = _b64(figures.gap_curves(runs_by_strategy))
        figure_data["test_accuracy"] = _b64(figures.test_accuracy(summaries))

    learning_curve_text = None
    if learning_curve is not None:
        learning_curve_text = describe_learning_curve(learning_curve, spec.epochs, spec.seeds[0])
        if learning_curve.curves:
            figure_data["training_size"] = _b64(figures.training_size_curves(learning_curve.curves))

    mc_curve_text = None
    # A study without dropout strategies gets no Monte-Carlo dropout section.
    if mc_curve is not None and (mc_curve.curves or mc_curve.skipped):
        mc_curve_text = describe_mc_curve(mc_curve)
        if mc_curve.curves:
            figure_data["mc_curve"] = _b64(figures.mc_dropout_curves(mc_curve.samples, mc_curve.curves))

    bias_variance_data = None
    if bias_variance is not None:
        figure_data["bias_variance"] = _b64(figures.bias_variance_bars(bias_variance.result))
        bias_variance_data = {
            "text": describe_bias_variance(bias_variance),
            "verdict": bias_variance.result.summary().splitlines(),
            "rows": bias_variance.rows(),
        }

    split = result.runs[0]["split"] if result.runs else {"sizes": {"train": "?", "val": "?", "test": "?"}}
    lr_note = (
        "Each strategy trains with the learning rate that gave it the best validation accuracy in a short search "
        "with the same budget for every strategy; a single shared rate would favour the least noisy strategies. "
        "The test set was not used for this choice."
        if spec.lr_grid
        else "Every strategy trains with the learning rate of the study (or its own, where it sets one)."
    )
    return {
        "spec": spec,
        "summaries": summaries,
        "batched_seconds": has_batched_runs(result.runs),
        "failures": result.failures,
        "lr_choices": {name: asdict(choice) for name, choice in result.lr_choices.items()},
        "lr_note": lr_note,
        "weights": _weight_rows(runs_by_strategy),
        "layers": _layer_rows(runs_by_strategy),
        "sparsity_threshold": SPARSITY_THRESHOLD,
        "figures": figure_data,
        "augmentation": augmentation_text,
        "learning_curve": learning_curve_text,
        "mc_curve": mc_curve_text,
        "mc_rows": _mc_rows(mc_curve),
        "mc_samples_max": mc_curve.samples[-1] if mc_curve is not None else None,
        "bias_variance": bias_variance_data,
        "split": {f"{part}_size": size for part, size in split.get("sizes", {}).items()},
        "settings": json.dumps(spec.model_dump(mode="json"), indent=2),
        "versions": ", ".join(f"{name} {version}" for name, version in library_versions().items()),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_report(data: dict[str, Any], path: Path) -> Path:
    """Render report data to a self-contained HTML file at ``path``."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("reglab.study", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    html = environment.get_template("report.html").render(**data)
    path.write_text(html, encoding="utf-8")
    return path
