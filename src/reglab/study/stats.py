"""Summary statistics over seeds: means with 95% intervals and paired comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with the half-width of its 95% Student-t interval (NaN for a single value)."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, scale: float = 1.0, digits: int = 2) -> str:
        """Format as ``93.12±0.40`` (or just the mean when there is one value)."""
        if math.isnan(self.mean):
            return "–"
        if math.isnan(self.half_width):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f}±{self.half_width * scale:.{digits}f}"


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Return the mean of ``values`` and the half-width of its Student-t interval."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, math.nan, 1)

    sd = math.sqrt(sum((value - mean) ** 2 for value in values) / (n - 1))
    t = stats.t.ppf(0.5 + confidence / 2, df=n - 1)
    return Interval(mean, t * sd / math.sqrt(n), n)


@dataclass(frozen=True)
class PairedComparison:
    """A strategy against the baseline over the seeds both finished.

    Attributes:
        difference: mean and 95% interval of (strategy - baseline) per seed.
        p_value: two-sided paired t-test p-value, NaN with fewer than two pairs or no spread.
        better: whether the whole 95% interval of the difference lies above zero.
    """

    difference: Interval
    p_value: float
    better: bool


def paired_comparison(strategy: dict[int, float], baseline: dict[int, float]) -> PairedComparison:
    """Compare per-seed values of a strategy with the baseline's on the same seeds."""
    seeds = sorted(set(strategy) & set(baseline))
    differences = [strategy[seed] - baseline[seed] for seed in seeds]
    interval = mean_interval(differences)

    p_value = math.nan
    if len(differences) >= 2 and any(d != differences[0] for d in differences):
        p_value = float(stats.ttest_rel([strategy[s] for s in seeds], [baseline[s] for s in seeds]).pvalue)
    better = len(differences) >= 2 and not math.isnan(interval.half_width) and interval.low > 0
    return PairedComparison(interval, p_value, better)
