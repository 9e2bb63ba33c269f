"""Intervals and paired comparisons over seeds, against scipy and hand-computed numbers."""

import math

import pytest
from scipy import stats

from reglab.study.stats import mean_interval, paired_comparison


def test_mean_interval_matches_student_t():
    values = [0.91, 0.93, 0.92, 0.95]
    interval = mean_interval(values)

    low, high = stats.t.interval(0.95, df=3, loc=sum(values) / 4, scale=stats.sem(values))
    assert interval.mean == pytest.approx(0.9275)
    assert interval.low == pytest.approx(low)
    assert interval.high == pytest.approx(high)


def test_mean_interval_single_value_has_no_width():
    interval = mean_interval([0.5])

    assert interval.mean == 0.5
    assert math.isnan(interval.half_width)
    assert interval.format(100) == "50.00"


def test_mean_interval_empty_is_nan():
    assert math.isnan(mean_interval([]).mean)
    assert mean_interval([]).format() == "–"


def test_paired_comparison_better_when_interval_above_zero():
    baseline = {0: 0.90, 1: 0.91, 2: 0.92}
    strategy = {0: 0.93, 1: 0.935, 2: 0.95}

    comparison = paired_comparison(strategy, baseline)

    assert comparison.difference.mean == pytest.approx((0.03 + 0.025 + 0.03) / 3)
    assert comparison.better
    expected_p = stats.ttest_rel([0.93, 0.935, 0.95], [0.90, 0.91, 0.92]).pvalue
    assert comparison.p_value == pytest.approx(expected_p)


def test_paired_comparison_not_better_when_interval_crosses_zero():
    baseline = {0: 0.90, 1: 0.91, 2: 0.92}
    strategy = {0: 0.95, 1: 0.89, 2: 0.93}

    assert not paired_comparison(strategy, baseline).better


def test_paired_comparison_uses_common_seeds_only():
    comparison = paired_comparison({0: 0.5, 1: 0.6, 5: 0.0}, {0: 0.4, 1: 0.5, 7: 1.0})

    assert comparison.difference.n == 2
    assert comparison.difference.mean == pytest.approx(0.1)


def test_paired_comparison_single_seed_never_better():
    comparison = paired_comparison({0: 0.99}, {0: 0.5})

    assert not comparison.better
    assert math.isnan(comparison.p_value)
