"""Monte-Carlo dropout against the number of sampled masks T.

A network trained with dropout can predict in two ways. The deterministic prediction turns
dropout off and relies on the weight scaling of inverted dropout, one pass in
``model.eval()``. Monte-Carlo dropout keeps dropout on and averages T passes with random
masks (:func:`reglab.inference.mc_predict`), either as the arithmetic mean of the class
probabilities or as their normalized geometric mean. This analysis measures test accuracy
and negative log-likelihood (NLL, the mean of ``-log p(true class)`` in nats) of both
means for each T, with the deterministic prediction as the reference.

T = 1 is a single pass with random masks. :func:`~reglab.inference.mc_predict` needs at
least 2 passes, so that pass is computed here with the same training-mode settings, and
both means coincide at T = 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from reglab._validation import check_int, check_number, check_positive
from reglab.analysis._output import DEFAULT_DPI, band, check_seeds, save_figure_and_csv, torch_threads
from reglab.errors import ConfigError
from reglab.inference import MEANS, NoisyEstimateWarning, mc_predict
from reglab.nn.checks import is_stochastic_layer, preserved_training_modes

#: Probabilities are clamped to at least this before taking the log in the NLL.
MIN_PROBABILITY = 1e-12

# The largest number of passes T accepted. Each pass is a forward pass over the whole test
# set, and the curve flattens long before: about 50 passes match weight scaling.
MAX_MC_SAMPLES = 1000


@dataclass(frozen=True)
class MCCurveResult:
    """Test accuracy and NLL per number of samples, mean and seed.

    Attributes:
        dataset: the data set's name.
        model: the model spec.
        p: the drop probability after each hidden layer.
        input_p: the drop probability on the input.
        epochs: training epochs per seed.
        samples: the numbers of passes T, increasing.
        seeds: the seeds, in the order of the per-seed arrays.
        accuracy: ``"arithmetic"`` and ``"geometric"`` mapped to test accuracy, shape
            ``(seeds, len(samples))``.
        nll: the same for the test NLL in nats.
        deterministic_accuracy: test accuracy of the weight-scaled prediction, shape ``(seeds,)``.
        deterministic_nll: its test NLL in nats, shape ``(seeds,)``.
        final_probabilities: ``"arithmetic"`` and ``"geometric"`` mapped to the averaged
            class probabilities at the largest T, shape ``(seeds, test examples, classes)``.
        n_test: number of test examples.
    """

    dataset: str
    model: str
    p: float
    input_p: float
    epochs: int
    samples: list[int]
    seeds: list[int]
    accuracy: dict[str, np.ndarray]
    nll: dict[str, np.ndarray]
    deterministic_accuracy: np.ndarray
    deterministic_nll: np.ndarray
    final_probabilities: dict[str, np.ndarray]
    n_test: int

    def rows(self) -> list[dict[str, float | int | str]]:
        """Return one CSV row per seed, mean and T, and one per seed for the deterministic prediction."""
        return curve_rows(self, self.samples, "test", [{"seed": seed} for seed in self.seeds])


def curve_rows(curve: Any, samples: list[int], split: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the CSV rows of Monte-Carlo curves, one trained network per entry of ``keys``.

    Args:
        curve: an object with ``deterministic_accuracy`` and ``deterministic_nll`` of shape
            ``(networks,)``, and ``accuracy`` and ``nll`` mapping each mean to an array of
            shape ``(networks, len(samples))``.
        samples: the numbers of passes T, one per column.
        split: the prefix of the metric columns, e.g. ``"test"`` for ``test_acc``.
        keys: the leading columns of each network's rows, such as its seed.
    """
    rows: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        rows.append(
            {
                **key,
                "mean": "deterministic",
                "samples": 1,
                f"{split}_acc": float(curve.deterministic_accuracy[index]),
                f"{split}_nll": float(curve.deterministic_nll[index]),
            }
        )
        for mean in MEANS:
            for column, count in enumerate(samples):
                rows.append(
                    {
                        **key,
                        "mean": mean,
                        "samples": count,
                        f"{split}_acc": float(curve.accuracy[mean][index, column]),
                        f"{split}_nll": float(curve.nll[mean][index, column]),
                    }
                )
    return rows


def score_probabilities(probabilities: Tensor, labels: Tensor) -> tuple[float, float]:
    """Return the accuracy and the mean negative log-likelihood of ``(N, C)`` class probabilities."""
    accuracy = (probabilities.argmax(dim=1) == labels).float().mean().item()
    picked = probabilities.gather(1, labels.view(-1, 1)).squeeze(1)
    nll = -picked.clamp_min(MIN_PROBABILITY).log().mean().item()
    return accuracy, nll


def seeded_mc_probabilities(model: nn.Module, x: Tensor, samples: int, mean: str, seed: int) -> Tensor:
    """Return the ``(N, C)`` Monte-Carlo probabilities of ``samples`` passes with masks drawn from ``seed``.

    Both means start from the same generator state for a given ``seed`` and ``samples``, so
    they average the same masks and differ only in how they average.
    """
    generator = torch.Generator().manual_seed(1_000_003 * seed + samples)
    if samples == 1:
        return single_pass(model, x, generator)
    return mc_predict(model, x, samples=samples, mean=mean, generator=generator).probs


def single_pass(model: nn.Module, x: Tensor, generator: torch.Generator) -> Tensor:
    """Return the class probabilities of one pass with dropout on and everything else in eval mode."""
    with preserved_training_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        model.eval()
        for module in model.modules():
            if is_stochastic_layer(module):
                module.train()
        return torch.softmax(model(x), dim=1)


def mc_dropout_curve(
    dataset: str = "mnist-5k",
    *,
    model: str = "mlp:512,512",
    p: float = 0.5,
    input_p: float = 0.0,
    samples: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 128,
    data_dir: str | None = None,
    threads: int | None = 1,
    batched: bool = True,
) -> MCCurveResult:
    """Train a dropout network per seed and score Monte-Carlo dropout for each number of passes.

    Each seed trains without opening the test set, then opens the sealed test set once for
    all the predictions of this analysis. The masks of each T and mean are drawn from a
    generator seeded from the seed and T, so a run is reproducible.

    Args:
        dataset: a data set name, e.g. ``"mnist-5k"`` or ``"digits"``.
        model: an ``mlp:...`` spec with at least one hidden layer.
        p: drop probability after each hidden layer, in (0, 1).
        input_p: drop probability on the input, in [0, 1).
        samples: the numbers of passes T to score, each >= 1.
        seeds: one trained network per seed. The seed also chooses the split.
        epochs: training epochs per seed.
        lr: learning rate of SGD with momentum 0.9.
        batch_size: minibatch size.
        data_dir: the folder that ``load_dataset`` searches for files.
        threads: torch CPU threads during the analysis, or None to keep the current setting.
            Defaults to 1, because on a CPU shared with other processes these models
            trained several times faster on one thread than on two.
        batched: train the seeds together with the batched engine, each on its own
            split. The networks equal one-at-a-time training up to floating-point
            rounding. False trains each seed alone with :func:`~reglab.training.fit.fit`.

    Returns:
        The :class:`MCCurveResult`.

    Raises:
        ConfigError: an argument is out of range.
    """
    from reglab.analysis._common import fit_runs
    from reglab.data import load_dataset, make_split
    from reglab.training.config import RunConfig, validate

    owner = "mc_dropout_curve"
    seeds = check_seeds(owner, seeds)
    p = check_number(owner, "p", p)
    if not 0.0 < p < 1.0:
        raise ConfigError(f"{owner}: p must be in (0, 1) so that the passes differ, got {p!r}.")
    samples = sorted({check_int(owner, "samples", value, minimum=1) for value in samples})
    if not samples:
        raise ConfigError(f"{owner}: samples must contain at least one number of passes, got [].")
    if samples[-1] > MAX_MC_SAMPLES:
        raise ConfigError(
            f"{owner}: samples must be at most {MAX_MC_SAMPLES} passes, got {samples[-1]}; "
            "each pass runs over the whole test set. Pass for example 1,10,50,100."
        )
    lr = check_positive(owner, "lr", lr)
    if threads is not None:
        threads = check_int(owner, "threads", threads, minimum=1)

    config_data = {
        "dataset": dataset,
        "model": model,
        "strategy": f"dropout p={p:g}",
        "regularization": {"dropout": {"p": p, "input_p": input_p}},
        "optimizer": {"lr": lr},
        "batch_size": batch_size,
        "epochs": epochs,
    }
    template = validate(RunConfig, {**config_data, "seed": 0})
    if template.model == "softmax":
        raise ConfigError(f"{owner}: model must have a hidden layer for dropout to act on, got 'softmax'.")
    data = load_dataset(dataset, data_dir=data_dir)

    accuracy = {mean: np.zeros((len(seeds), len(samples))) for mean in MEANS}
    nll = {mean: np.zeros((len(seeds), len(samples))) for mean in MEANS}
    final = {mean: [] for mean in MEANS}
    deterministic_accuracy = np.zeros(len(seeds))
    deterministic_nll = np.zeros(len(seeds))
    with torch_threads(threads or torch.get_num_threads()), warnings.catch_warnings():
        # Fewer than 20 passes are noisy on purpose here: the curve shows how noisy.
        warnings.simplefilter("ignore", NoisyEstimateWarning)
        configs = [validate(RunConfig, {**config_data, "seed": seed}) for seed in seeds]
        splits = [
            make_split(data, seed=seed, val_fraction=template.val_fraction, test_fraction=template.test_fraction)
            for seed in seeds
        ]
        results = fit_runs(configs, splits, evaluate_test=False, batched=batched)
        for index, (seed, split, result) in enumerate(zip(seeds, splits, results)):
            network = result.model
            test = split.test.open(f"Monte-Carlo dropout curve, seed {seed}")
            x = split.normalize(test.x)

            with torch.no_grad():
                network.eval()
                scores = score_probabilities(torch.softmax(network(x), dim=1), test.y)
            deterministic_accuracy[index], deterministic_nll[index] = scores

            for column, count in enumerate(samples):
                for mean in MEANS:
                    probabilities = seeded_mc_probabilities(network, x, count, mean, seed)
                    accuracy[mean][index, column], nll[mean][index, column] = score_probabilities(probabilities, test.y)
                    if column == len(samples) - 1:
                        final[mean].append(probabilities.numpy())

    return MCCurveResult(
        dataset=data.name,
        model=template.model,
        p=p,
        input_p=template.regularization.dropout.input_p,
        epochs=template.epochs,
        samples=samples,
        seeds=seeds,
        accuracy=accuracy,
        nll=nll,
        deterministic_accuracy=deterministic_accuracy,
        deterministic_nll=deterministic_nll,
        final_probabilities={mean: np.stack(values) for mean, values in final.items()},
        n_test=len(test.y),
    )


def render_mc_curve(result: MCCurveResult, out: Path, dpi: int = DEFAULT_DPI) -> list[Path]:
    """Draw accuracy and NLL against T with bands over seeds, and write PNG, SVG and the CSV."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    samples = np.array(result.samples)
    panels = (
        (axes[0], result.accuracy, result.deterministic_accuracy, 100.0, "test accuracy (%)"),
        (axes[1], result.nll, result.deterministic_nll, 1.0, "test negative log-likelihood (nats per example)"),
    )
    for ax, values, deterministic, scale, label in panels:
        for mean, color, marker in (("arithmetic", "tab:blue", "o"), ("geometric", "tab:orange", "s")):
            centre, low, high = band(values[mean] * scale)
            ax.plot(samples, centre, color=color, marker=marker, markersize=4, label=f"MC dropout, {mean} mean")
            ax.fill_between(samples, low, high, color=color, alpha=0.2)
        centre, low, high = band(deterministic * scale)
        ax.axhline(centre, color="black", linestyle="--", linewidth=1.2, label="deterministic (weight scaling), grey band = range")
        ax.axhspan(low, high, color="black", alpha=0.08)
        ax.set_xscale("log")
        ax.set_xticks(samples)
        ax.set_xticklabels([str(value) for value in samples])
        ax.set_xlabel("number of dropout masks averaged, T (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].legend(loc="upper right", fontsize=8)
    seeds = len(result.seeds)
    figure.suptitle(
        f"Monte-Carlo dropout on {result.dataset} ({result.n_test} test examples), {result.model}, "
        f"p = {result.p:g}, {result.epochs} epochs, mean over {seeds} seed{'s' if seeds > 1 else ''}, band = range",
        fontsize=10,
    )
    figure.tight_layout()
    return save_figure_and_csv(figure, out, "mc_curve", result.rows(), dpi)
