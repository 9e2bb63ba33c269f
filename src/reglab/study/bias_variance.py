"""The opt-in bias-variance section of a study, evaluated on the validation split.

The baseline and the strategy with the highest mean validation accuracy are trained again,
with the study's exact run settings and learning rates, on bootstrap samples of the first
seed's training split, once for each of the study's seeds. The bootstrap samples are the
same for both strategies. Their predictions on that seed's validation split are decomposed
by :mod:`reglab.analysis.decomposition`, as ``reglab bias-variance`` decomposes test
predictions. The validation split is used so that the sealed test sets of the study's runs
stay evaluated once; the extra models are not stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from reglab.analysis._common import with_training_subset
from reglab.analysis._output import torch_threads
from reglab.analysis.decomposition import draw_bootstrap_indices
from reglab.data import Dataset, Split, load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.learning_curve import best_strategy
from reglab.study.runner import StudyResult
from reglab.study.summary import StrategySummary
from reglab.training.fit import fit

if TYPE_CHECKING:
    from reglab.analysis.bias_variance import BiasVarianceResult

logger = logging.getLogger(__name__)

#: Bootstrap samples of the training split unless the caller chooses another number.
BIAS_VARIANCE_BOOTSTRAPS = 3
#: Seeds the bootstrap draws, as ``bootstrap_seed`` of ``reglab bias-variance`` does.
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class StudyBiasVariance:
    """The decomposition of the baseline's and the best other strategy's validation error.

    Attributes:
        result: the decompositions, baseline first. Its ``test_size`` counts validation points.
        best: the other strategy, or None when the study has none with finished runs.
        best_val_acc: its mean validation accuracy in the study.
        lrs: the learning rate of each decomposed strategy.
        split_seed: the seed of the split whose training part is resampled.
    """

    result: BiasVarianceResult
    best: str | None
    best_val_acc: float | None
    lrs: dict[str, float]
    split_seed: int

    def rows(self) -> list[dict[str, Any]]:
        """Return one CSV row per strategy: its learning rate and every quantity of the decomposition."""
        return [
            {"lr": self.lrs[row["strategy"]], "bootstraps": self.result.bootstraps, "seeds": len(self.result.seeds), **row}
            for row in self.result.rows()
        ]


def check_bootstraps(bootstraps: Any, owner: str = "compare") -> int:
    """Return ``bootstraps``, the number of bootstrap samples, after checking it.

    Raises:
        ConfigError: ``bootstraps`` is not an int >= 1.
    """
    if isinstance(bootstraps, bool) or not isinstance(bootstraps, int) or bootstraps < 1:
        raise ConfigError(
            f"{owner}: --bias-variance-bootstraps must be an int >= 1 (the number of bootstrap samples of the training "
            f"split), got {bootstraps!r}; pass for example --bias-variance-bootstraps {BIAS_VARIANCE_BOOTSTRAPS}."
        )
    return bootstraps


def run_bias_variance(
    result: StudyResult,
    summaries: list[StrategySummary],
    bootstraps: int = BIAS_VARIANCE_BOOTSTRAPS,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> StudyBiasVariance:
    """Train the baseline and the best other strategy on ``bootstraps`` bootstrap samples per seed and decompose.

    Trains ``2 × bootstraps × len(spec.seeds)`` models (half as many without another strategy),
    each with :func:`reglab.training.fit` and the study's run settings, and opens no test set.

    Raises:
        ConfigError: ``bootstraps`` is not an int >= 1, or the study has no finished baseline run.
    """
    # Imported here because reglab.analysis.bias_variance imports reglab.study.
    from reglab.analysis.bias_variance import BiasVarianceResult, decompose_strategy, predict_grid

    bootstraps = check_bootstraps(bootstraps)
    spec = result.spec
    by_name = {summary.strategy: summary for summary in summaries if summary.n_runs > 0}
    if "baseline" not in by_name:
        raise ConfigError(
            "compare: the bias-variance section needs finished baseline runs, and the study has none; run the same "
            "command again to retrain failed runs, or leave out --bias-variance."
        )
    best = best_strategy(summaries)
    names = ["baseline"] + ([best.strategy] if best else [])

    dataset: Dataset = result.dataset or load_dataset(spec.dataset, data_dir=data_dir, download=download)
    split_seed = spec.seeds[0]
    split = make_split(dataset, seed=split_seed, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction)
    samples = draw_bootstrap_indices(len(split.train.y), bootstraps, BOOTSTRAP_SEED)

    targets = split.val.y.cpu().numpy()
    decompositions = []
    lrs = {}
    for name in names:
        lrs[name] = by_name[name].lr
        grid: list[list[tuple[Split, torch.nn.Module]]] = []
        for b, sample in enumerate(samples):
            bootstrap_split = with_training_subset(split, sample)
            row = []
            for seed in spec.seeds:
                logger.info("bias-variance section: %s, bootstrap %d, seed %d", name, b, seed)
                config = spec.run_config(name, seed, lr=lrs[name])
                # Small models train many times faster on one thread than on a contended CPU's threads.
                with torch_threads(1):
                    model = fit(config, bootstrap_split, device=device, evaluate_test=False).model
                row.append((bootstrap_split, model))
            grid.append(row)
        probabilities: np.ndarray = predict_grid(grid, split.val.x)
        decompositions.append(decompose_strategy(name, probabilities, targets))

    return StudyBiasVariance(
        result=BiasVarianceResult(
            dataset=dataset.name,
            model=spec.model,
            bootstraps=bootstraps,
            seeds=list(spec.seeds),
            test_size=len(targets),
            strategies=decompositions,
        ),
        best=best.strategy if best else None,
        best_val_acc=best.val_acc.mean if best else None,
        lrs=lrs,
        split_seed=split_seed,
    )


def describe_bias_variance(section: StudyBiasVariance) -> str:
    """Return the report's paragraph on how the decomposition was made."""
    result = section.result
    if section.best is None:
        chosen = "The study has no strategy besides the baseline with finished runs, so only the baseline is decomposed."
    else:
        chosen = (
            f"It decomposes the baseline and {section.best}, the strategy with the highest mean validation accuracy "
            f"({section.best_val_acc * 100:.2f}%) among the other strategies; test accuracy was not used for this choice."
        )
    method = (
        f" Each strategy was trained again with the study's settings and its learning rate on {result.bootstraps} "
        f"bootstrap samples of seed {section.split_seed}'s training split, once per seed ({', '.join(map(str, result.seeds))}), "
        f"and the {result.test_size} examples of that seed's validation split were predicted by every model. "
        "The sealed test sets of the study's runs were not opened. The squared loss is of the predicted class "
        "probabilities against one-hot labels, with bias² (which includes label noise) + variance = loss; the "
        "variance splits into the part due to the training sample and the part due to the seed. The 0-1 loss "
        "follows Domingos (2000): loss = bias + net variance + residual, where the residual is zero for two "
        "classes. Because the runs chose learning rates and early-stopping epochs on the same validation split, "
        "these numbers are slightly optimistic."
    )
    return chosen + method
