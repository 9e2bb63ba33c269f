"""Bias-variance decompositions of a set of predictions on the same test points.

Two losses are decomposed, each averaged over the test points:

- **Squared loss** of predicted class probabilities against one-hot targets (or of scalar
  predictions against real targets). With the main prediction ``p̄`` the mean prediction
  over fits, ``E‖p - y‖² = ‖p̄ - y‖² + E‖p - p̄‖²``, that is bias² + variance, exactly. Each
  test point has one observed label, so the noise term cannot be separated and is part of
  bias².
- **0-1 loss** as decomposed by P. Domingos, "A Unified Bias-Variance Decomposition and its
  Applications", ICML 2000. The main prediction is the most frequent label (the smallest
  label on ties), bias is ``1[main ≠ y]`` and variance is ``P(pred ≠ main)``. Variance on
  unbiased points adds to the loss and variance on biased points removes from it, so the
  net variance is unbiased variance minus biased variance. For two classes without noise
  ``loss = bias + net variance`` is exact. With more classes a wrong prediction on a
  biased point can differ from the target too, and the loss exceeds bias + net variance by
  ``residual``.

Both functions accept the predictions of any model, which is how the tests compare them
with ``mlxtend.evaluate.bias_variance_decomp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reglab.errors import ConfigError

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SquaredLossDecomposition:
    """Squared loss = bias² + variance, averaged over test points.

    Attributes:
        expected_loss: mean over fits and points of ``‖p - y‖²``.
        bias_squared: mean over points of ``‖p̄ - y‖²``, with ``p̄`` the mean prediction;
            it contains the label noise, which one label per point cannot separate.
        variance: mean over fits and points of ``‖p - p̄‖²``.
    """

    expected_loss: float
    bias_squared: float
    variance: float


@dataclass(frozen=True)
class ZeroOneLossDecomposition:
    """Domingos's decomposition of the 0-1 loss, averaged over test points.

    Attributes:
        expected_loss: the mean error rate over fits.
        bias: the share of points whose main prediction is wrong.
        variance: mean over points of ``P(pred ≠ main)``.
        unbiased_variance: the part of ``variance`` from points with bias 0, divided by
            the number of all points.
        biased_variance: the part from points with bias 1, divided by the number of all points.
        net_variance: ``unbiased_variance - biased_variance``.
        residual: ``expected_loss - (bias + net_variance)``; 0 for two classes, and at
            least 0 with more classes.
    """

    expected_loss: float
    bias: float
    variance: float
    unbiased_variance: float
    biased_variance: float
    net_variance: float
    residual: float


def decompose_squared_loss(predictions: np.ndarray, targets: np.ndarray) -> SquaredLossDecomposition:
    """Decompose the squared loss of several fits' predictions into bias² and variance.

    Args:
        predictions: one row per fit. Scalar predictions shaped ``(M, N)`` for regression,
            or class probabilities shaped ``(M, N, K)``.
        targets: real targets shaped ``(N,)`` for scalar predictions; for probabilities
            either int labels shaped ``(N,)``, turned into one-hot vectors, or targets
            shaped ``(N, K)``.

    Returns:
        The :class:`SquaredLossDecomposition`.

    Raises:
        ConfigError: the shapes do not match.
        RuntimeError: bias² + variance differs from the loss by more than 1e-9 (relative
            for losses above 1), which would mean a bug.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets)
    if predictions.ndim == 2:
        predictions = predictions[..., None]
        targets = targets.astype(np.float64)[:, None]
    elif predictions.ndim == 3 and targets.ndim == 1:
        targets = np.eye(predictions.shape[2])[targets.astype(np.int64)]
    if predictions.ndim != 3 or targets.shape != predictions.shape[1:]:
        raise ConfigError(
            "decompose_squared_loss: predictions must be shaped (M, N) or (M, N, K) and targets (N,) or "
            f"(N, K), got predictions {np.shape(predictions)} and targets {np.shape(targets)}."
        )

    main = predictions.mean(axis=0)
    expected_loss = float(((predictions - targets) ** 2).sum(axis=2).mean())
    bias_squared = float(((main - targets) ** 2).sum(axis=1).mean())
    variance = float(((predictions - main) ** 2).sum(axis=2).mean())
    _check_sum("squared loss", expected_loss, bias_squared + variance)
    return SquaredLossDecomposition(expected_loss, bias_squared, variance)


def split_variance(predictions: np.ndarray) -> tuple[float, float]:
    """Split the squared-loss variance of a grid of fits into training-sample and seed parts.

    By the law of total variance, the variance over all fits equals the variance over
    bootstrap samples of the seed-averaged prediction plus the mean over bootstrap samples
    of the variance over seeds. Both use the population variance (divisor = count), so the
    two parts add up to :attr:`SquaredLossDecomposition.variance` exactly.

    Args:
        predictions: shaped ``(B, S, N)`` or ``(B, S, N, K)``: B bootstrap samples, S seeds.

    Returns:
        ``(bootstrap_part, seed_part)``.

    NOTE: with few seeds the seed average still contains seed noise, so the bootstrap part
    is an overestimate by about ``seed_part / (S - 1)``, the one-way ANOVA correction.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 3:
        predictions = predictions[..., None]
    if predictions.ndim != 4:
        raise ConfigError(
            f"split_variance: predictions must be shaped (B, S, N) or (B, S, N, K), got {np.shape(predictions)}."
        )
    seed_mean = predictions.mean(axis=1)
    seed_part = float(((predictions - seed_mean[:, None]) ** 2).sum(axis=3).mean())
    bootstrap_part = float(((seed_mean - seed_mean.mean(axis=0)) ** 2).sum(axis=2).mean())
    return bootstrap_part, seed_part


def main_prediction(labels: np.ndarray) -> np.ndarray:
    """Return the most frequent label of each column of ``labels`` (M, N), the smallest on ties."""
    labels = np.asarray(labels, dtype=np.int64)
    num_labels = int(labels.max()) + 1
    counts = np.zeros((num_labels, labels.shape[1]), dtype=np.int64)
    for row in labels:
        counts[row, np.arange(labels.shape[1])] += 1
    return counts.argmax(axis=0)


def decompose_zero_one_loss(labels: np.ndarray, targets: np.ndarray) -> ZeroOneLossDecomposition:
    """Decompose the 0-1 loss of several fits' predicted labels as Domingos (2000) does.

    Args:
        labels: predicted int labels, one row per fit, shaped ``(M, N)``.
        targets: the true int labels, shaped ``(N,)``.

    Returns:
        The :class:`ZeroOneLossDecomposition`.

    Raises:
        ConfigError: the shapes do not match or a label is negative.
        RuntimeError: an identity of the decomposition fails by more than 1e-9, which would
            mean a bug.
    """
    labels = np.asarray(labels)
    targets = np.asarray(targets)
    if labels.ndim != 2 or targets.shape != labels.shape[1:]:
        raise ConfigError(
            "decompose_zero_one_loss: labels must be shaped (M, N) and targets (N,), got labels "
            f"{labels.shape} and targets {targets.shape}."
        )
    if labels.min() < 0 or targets.min() < 0:
        raise ConfigError("decompose_zero_one_loss: labels and targets must be int labels >= 0.")

    main = main_prediction(labels)
    biased = main != targets
    point_variance = (labels != main).mean(axis=0)
    n = len(targets)

    expected_loss = float((labels != targets).mean())
    bias = float(biased.mean())
    unbiased_variance = float(point_variance[~biased].sum() / n)
    biased_variance = float(point_variance[biased].sum() / n)
    net_variance = unbiased_variance - biased_variance
    residual = expected_loss - (bias + net_variance)

    if residual < -_TOLERANCE:
        raise RuntimeError(f"0-1 decomposition: loss {expected_loss} is below bias + net variance {bias + net_variance}.")
    if max(labels.max(), targets.max()) <= 1:
        _check_sum("0-1 loss with two classes", expected_loss, bias + net_variance)
    return ZeroOneLossDecomposition(
        expected_loss=expected_loss,
        bias=bias,
        variance=float(point_variance.mean()),
        unbiased_variance=unbiased_variance,
        biased_variance=biased_variance,
        net_variance=net_variance,
        residual=residual,
    )


def draw_bootstrap_indices(n: int, rounds: int, random_seed: int | None) -> list[np.ndarray]:
    """Draw ``rounds`` bootstrap samples of ``range(n)``, each of size ``n`` with replacement.

    The draws are those of ``mlxtend.evaluate.bias_variance_decomp`` (checked against mlxtend 0.25) with
    the same ``random_seed``: one ``numpy.random.RandomState(random_seed)`` and one
    ``choice(n, size=n, replace=True)`` per round.
    """
    rng = np.random.RandomState(random_seed)
    return [rng.choice(np.arange(n), size=n, replace=True) for _ in range(rounds)]


def _check_sum(quantity: str, loss: float, parts: float) -> None:
    # Relative above 1, because regression losses can be large.
    if abs(loss - parts) > _TOLERANCE * max(1.0, abs(loss)):
        raise RuntimeError(f"{quantity}: the decomposition does not add up, loss {loss!r} != sum of parts {parts!r}.")
