"""The Monte-Carlo dropout section of a study: validation accuracy and NLL against the number of masks T.

For every strategy that uses dropout, each finished run's stored weights
(:mod:`reglab.study.checkpoints`) are loaded into a fresh model, so nothing is trained
again. The model predicts its seed's validation split in two ways: the deterministic,
weight-scaled prediction (one pass in ``model.eval()``) and Monte-Carlo dropout, the
arithmetic or geometric mean of T passes with random masks, scored as in
:mod:`reglab.analysis.mc_curve`. The test set of each run is sealed and was evaluated
once by the study, so this section never opens it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reglab.analysis.mc_curve import MAX_MC_SAMPLES, curve_rows, score_probabilities, seeded_mc_probabilities
from reglab.data import Dataset, load_dataset, make_split
from reglab.errors import ConfigError
from reglab.inference import MEANS, NoisyEstimateWarning
from reglab.study.checkpoints import checkpoint_path, load_checkpoint
from reglab.study.runner import StudyResult
from reglab.training.config import RunConfig, StrategyConfig, largest_probability
from reglab.training.model_builder import build_run_model

logger = logging.getLogger(__name__)

#: The numbers of passes T that the section scores unless the caller chooses others.
MC_SAMPLES = (1, 2, 5, 10, 20)


@dataclass(frozen=True)
class StrategyMCCurve:
    """Validation accuracy and NLL of one dropout strategy's runs, per mean and T.

    Attributes:
        p: drop probability after each hidden layer, one number or one per layer.
        input_p: drop probability on the input.
        seeds: the seeds of the scored runs, in the order of the arrays' first axis.
        run_ids: the stored run of each seed.
        accuracy: ``"arithmetic"`` and ``"geometric"`` mapped to validation accuracy,
            shape ``(seeds, len(samples))``.
        nll: the same for the validation NLL in nats per example.
        deterministic_accuracy: validation accuracy of the weight-scaled prediction, shape ``(seeds,)``.
        deterministic_nll: its validation NLL, shape ``(seeds,)``.
    """

    p: float | list[float]
    input_p: float
    seeds: list[int]
    run_ids: list[int]
    accuracy: dict[str, np.ndarray]
    nll: dict[str, np.ndarray]
    deterministic_accuracy: np.ndarray
    deterministic_nll: np.ndarray


@dataclass(frozen=True)
class StudyMCCurve:
    """The Monte-Carlo dropout curves of a study's dropout strategies, keyed by strategy name.

    ``skipped`` names the strategies or runs that could not be scored, with the reason.
    ``val_size`` is the number of validation examples of the first scored run.
    """

    samples: list[int]
    curves: dict[str, StrategyMCCurve]
    skipped: dict[str, str]
    val_size: int

    def rows(self) -> list[dict[str, Any]]:
        """Return one row per strategy, seed, mean and T, and one per seed for the deterministic prediction."""
        rows = []
        for name, curve in self.curves.items():
            keys = [
                {"strategy": name, "seed": seed, "run_id": run_id} for seed, run_id in zip(curve.seeds, curve.run_ids)
            ]
            rows += curve_rows(curve, self.samples, "val", keys)
        return rows


def check_mc_samples(samples: Sequence[Any], owner: str = "compare") -> list[int]:
    """Return the numbers of passes T sorted and without repeats.

    Raises:
        ConfigError: ``samples`` is empty or contains a value that is not an int from 1 to
            ``MAX_MC_SAMPLES``.
    """
    values = list(samples)
    if not values:
        raise ConfigError(f"{owner}: --mc-samples must list at least one number of passes T, got none; pass for example --mc-samples 1,5,20.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{owner}: every --mc-samples value must be an int >= 1 (the number of dropout masks averaged), "
                f"got {value!r}; pass for example --mc-samples 1,2,5,10,20."
            )
        if value > MAX_MC_SAMPLES:
            raise ConfigError(
                f"{owner}: every --mc-samples value must be at most {MAX_MC_SAMPLES} (each pass runs over the "
                f"whole validation split), got {value}; pass for example --mc-samples 1,2,5,10,20."
            )
    return sorted(set(values))


def uses_dropout(config: StrategyConfig) -> bool:
    """Return True when ``config`` drops units after the hidden layers or on the input."""
    dropout = config.dropout
    return dropout is not None and (largest_probability(dropout.p) > 0 or dropout.input_p > 0)


def dropout_strategies(result: StudyResult) -> list[str]:
    """Return the names of the study's strategies that use dropout, in the study's order."""
    return [name for name, config in result.spec.strategies.items() if uses_dropout(config)]


def load_run_model(run: dict[str, Any], out: str | Path, dataset: Dataset) -> tuple[RunConfig, torch.nn.Module]:
    """Build the network of stored ``run`` and load its checkpoint's weights, in eval mode on the CPU.

    Raises:
        ConfigError: the checkpoint is missing, not weights-only, or does not fit the model.
    """
    config = RunConfig.model_validate(run["config"])
    model = build_run_model(config, tuple(dataset.x_train.shape[1:]), dataset.num_classes)
    path = checkpoint_path(out, run["study"], run["id"])
    try:
        model.load_state_dict(load_checkpoint(path))
    except RuntimeError as error:
        raise ConfigError(f"checkpoint {path} does not fit the model {config.model!r}: {error}") from None
    return config, model.eval()


def _score_run(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, samples: list[int], seed: int):
    """Score the weight-scaled prediction and both Monte-Carlo means for each T, as ``mc_dropout_curve`` does."""
    with torch.no_grad():
        deterministic = score_probabilities(torch.softmax(model(x), dim=1), y)
    accuracy = {mean: np.zeros(len(samples)) for mean in MEANS}
    nll = {mean: np.zeros(len(samples)) for mean in MEANS}
    for column, count in enumerate(samples):
        for mean in MEANS:
            probabilities = seeded_mc_probabilities(model, x, count, mean, seed)
            accuracy[mean][column], nll[mean][column] = score_probabilities(probabilities, y)
    return deterministic, accuracy, nll


def run_mc_curve(
    result: StudyResult,
    out: str | Path,
    samples: Sequence[int] = MC_SAMPLES,
    *,
    data_dir: str | None = None,
    download: bool = False,
) -> StudyMCCurve:
    """Score Monte-Carlo dropout on the validation split for every finished run of each dropout strategy.

    Args:
        result: the study; its runs must have checkpoints under ``out``.
        out: the folder that contains ``reglab.db``.
        samples: the numbers of passes T, each >= 1.
        data_dir: the folder that ``load_dataset`` searches, when ``result`` contains no data set.
        download: whether ``load_dataset`` may download the data set.

    Returns:
        The :class:`StudyMCCurve`. A run without a loadable checkpoint (for example one that
        a Ray worker trained) is left out and named in ``skipped``.
    """
    samples = check_mc_samples(samples)
    names = dropout_strategies(result)
    curves: dict[str, StrategyMCCurve] = {}
    skipped: dict[str, str] = {}
    val_size = 0
    if not names:
        return StudyMCCurve(samples, curves, skipped, val_size)

    spec = result.spec
    dataset = result.dataset or load_dataset(spec.dataset, data_dir=data_dir, download=download)
    for name in names:
        seeds, run_ids, scores = [], [], []
        for run in [run for run in result.runs if run["strategy"] == name]:
            try:
                config, model = load_run_model(run, out, dataset)
            except ConfigError as error:
                logger.warning("Monte-Carlo dropout of %s, seed %s skipped: %s", name, run["seed"], error)
                skipped[f"{name}, seed {run['seed']}"] = str(error)
                continue
            split_seed = (run["split"] or {}).get("seed", config.seed)
            split = make_split(dataset, seed=split_seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)
            x, y = split.normalize(split.val.x), split.val.y
            val_size = val_size or len(y)
            with warnings.catch_warnings():
                # Fewer than 20 passes are noisy on purpose here: the curve shows how noisy.
                warnings.simplefilter("ignore", NoisyEstimateWarning)
                scores.append(_score_run(model, x, y, samples, config.seed))
            seeds.append(config.seed)
            run_ids.append(int(run["id"]))
        if not scores:
            skipped.setdefault(name, "no finished run of it has a loadable checkpoint")
            continue
        dropout = spec.strategies[name].dropout
        curves[name] = StrategyMCCurve(
            p=dropout.p,
            input_p=dropout.input_p,
            seeds=seeds,
            run_ids=run_ids,
            accuracy={mean: np.stack([score[1][mean] for score in scores]) for mean in MEANS},
            nll={mean: np.stack([score[2][mean] for score in scores]) for mean in MEANS},
            deterministic_accuracy=np.array([score[0][0] for score in scores]),
            deterministic_nll=np.array([score[0][1] for score in scores]),
        )
    return StudyMCCurve(samples, curves, skipped, val_size)


def describe_mc_curve(curve: StudyMCCurve) -> str:
    """Return the report's paragraph on what the Monte-Carlo dropout section shows and on which data."""
    text = (
        f"For each strategy with dropout, every run's stored weights predict the {curve.val_size} examples of its "
        "seed's validation split: once deterministically (dropout off, the weight-scaled prediction, dashed line) "
        "and by Monte-Carlo dropout, averaging the class probabilities of T passes with random masks "
        f"arithmetically or geometrically, for T = {', '.join(str(value) for value in curve.samples)}. Lines are "
        "means over seeds and bands span the seeds. The validation split is used because each run's test set is "
        "sealed and was evaluated once by the study; note that these runs chose their learning rate, and early "
        "stopping its epoch, on the same validation split. NLL is the mean negative log-likelihood of the true "
        "class, in nats."
    )
    skipped = "".join(f" Not scored: {name}, because {reason}." for name, reason in curve.skipped.items())
    return text + skipped
