"""The report's intervals against published values and independent computations (scipy).

* Newcombe (1998), Table II: the hybrid score interval (method 10) for 56/70 − 48/80 and
  9/10 − 3/10, as printed.
* Wilson intervals from ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.
* The exact size of the "mark a change" rule, by enumerating both binomials.
* NPS: the adjusted Wald interval (Rocks 2016) recomputed as the mean and variance of the
  +1/0/−1 scores with the pseudo-answers added as weights.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from csat_hook.sync.intervals import Z_95
from csat_hook.sync.intervals import newcombe
from csat_hook.sync.intervals import nps
from csat_hook.sync.intervals import nps_class
from csat_hook.sync.intervals import nps_interval
from csat_hook.sync.intervals import wilson


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 3), (7, 9), (45, 50), (123, 457), (50, 50)])
def test_wilson_equals_scipy(k, n):
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_z_is_the_normal_quantile():
    assert pytest.approx(stats.norm.ppf(0.975), abs=1e-15) == Z_95


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2", "low", "high"),
    [(56, 70, 48, 80, 0.0524, 0.3339), (9, 10, 3, 10, 0.1705, 0.8090)],
)
def test_newcombe_matches_the_published_table(s1, n1, s2, n2, low, high):
    found = newcombe(s1, n1, s2, n2)
    assert found is not None
    assert (round(found.low, 4), round(found.high, 4)) == (low, high)
    assert found.value == pytest.approx(s1 / n1 - s2 / n2)
    assert found.direction == 1


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2"),
    [
        (6, 7, 2, 7),
        (5, 56, 0, 29),
        (0, 10, 0, 20),
        (10, 10, 0, 20),
        (45, 50, 38, 50),
        (9, 12, 14, 15),
    ],
)
def test_newcombe_from_scipy_wilson_intervals(s1, n1, s2, n2):
    """The hybrid interval recomputed from scipy's Wilson intervals (Newcombe's formula)."""
    a = stats.binomtest(s1, n1).proportion_ci(method="wilson")
    b = stats.binomtest(s2, n2).proportion_ci(method="wilson")
    p1, p2 = s1 / n1, s2 / n2
    low = p1 - p2 - math.hypot(p1 - a.low, b.high - p2)
    high = p1 - p2 + math.hypot(a.high - p1, p2 - b.low)
    found = newcombe(s1, n1, s2, n2)
    assert found is not None
    assert (found.low, found.high) == (
        pytest.approx(low, abs=1e-12),
        pytest.approx(high, abs=1e-12),
    )
    assert found.direction == (1 if low > 0 else -1 if high < 0 else 0)


def test_no_interval_without_answers():
    assert newcombe(0, 0, 3, 4) is None and newcombe(3, 4, 0, 0) is None
    assert nps(0, 0, 0) is None and nps_interval(0, 0, 0) is None and wilson(1, 0) is None


@pytest.mark.parametrize(
    ("n1", "n2", "p"), [(10, 10, 0.8), (20, 20, 0.9), (30, 30, 0.85), (10, 40, 0.8), (50, 50, 0.6)]
)
def test_a_change_is_marked_by_chance_at_most_about_five_percent_of_the_time(n1, n2, p):
    """Exact size: the probability of a mark when nothing changed (both periods rate p)."""
    pmf1 = [math.comb(n1, k) * p**k * (1 - p) ** (n1 - k) for k in range(n1 + 1)]
    pmf2 = [math.comb(n2, k) * p**k * (1 - p) ** (n2 - k) for k in range(n2 + 1)]
    size = sum(
        pmf1[a] * pmf2[b]
        for a in range(n1 + 1)
        for b in range(n2 + 1)
        if newcombe(a, n1, b, n2).direction != 0  # type: ignore[union-attr]
    )
    assert size <= 0.055, size


@pytest.mark.parametrize(
    ("promoters", "passives", "detractors", "low", "high"),
    [
        (6, 3, 1, -0.0020, 0.7713),
        (30, 15, 5, 0.2879, 0.6555),
        (2, 1, 2, -0.5746, 0.5746),
        (10, 0, 0, 0.4750, 1.0),
        (120, 60, 20, 0.3999, 0.5853),
    ],
)
def test_nps_interval_is_the_adjusted_wald_of_the_scores(
    promoters, passives, detractors, low, high
):
    n = promoters + passives + detractors
    assert nps(promoters, passives, detractors) == pytest.approx((promoters - detractors) / n)
    # The same interval as the weighted mean ± z·sd/√n of +1/0/−1 scores, with ¾ promoter,
    # 1½ passive and ¾ detractor added.
    weights = [promoters + 0.75, passives + 1.5, detractors + 0.75]
    scores = [1.0, 0.0, -1.0]
    total = sum(weights)
    mean = sum(w * x for w, x in zip(weights, scores, strict=True)) / total
    variance = sum(w * (x - mean) ** 2 for w, x in zip(weights, scores, strict=True)) / total
    half = stats.norm.ppf(0.975) * math.sqrt(variance / total)
    found = nps_interval(promoters, passives, detractors)
    assert found is not None
    assert found[0] == pytest.approx(max(-1.0, mean - half), abs=1e-12)
    assert found[1] == pytest.approx(min(1.0, mean + half), abs=1e-12)
    assert (round(found[0], 4), round(found[1], 4)) == (low, high)  # Rocks 2016's method


def test_nps_classes():
    assert [nps_class(s) for s in range(11)] == [0] * 7 + [1, 1] + [2, 2]
