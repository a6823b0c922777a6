"""Confidence intervals the report shows. Pure functions, closed forms, no dependencies.

* :func:`wilson`: the Wilson score interval for a proportion (CSAT, response rate);
  Wilson (1927).
* :func:`newcombe`: the hybrid score interval for a difference of two independent
  proportions (method 10 of Newcombe 1998), built from the two Wilson intervals. A change of
  CSAT against the previous period is called significant when this interval excludes 0. Its
  exact size stays at or below the nominal 5% in CSAT's usual range (p 0.6–0.9, n ≥ 10), where
  the two-proportion z-test runs over it and Fisher's exact test gives away a third of the
  power (docs/sync.md, "The change against the previous period").
* :func:`nps` and :func:`nps_interval`: the Net Promoter Score (% promoters 9–10 minus
  % detractors 0–6) and its adjusted Wald interval (Rocks 2016: add 3/4 of a promoter, 3/2 of
  a passive and 3/4 of a detractor before the Wald interval), whose coverage stays near 95%
  at n = 5–100 where the plain Wald interval falls to 40–90%.

Figures are fractions: a proportion in [0, 1], a difference in [-1, 1], an NPS in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal
PROMOTER = 9  # 9–10 on the 0–10 "how likely are you to recommend us" question
DETRACTOR = 6  # 0–6; 7–8 are passives


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for ``successes`` of ``n`` (None when n is 0)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    """``value`` = p1 − p2 and its 95% interval ``[low, high]``."""

    value: float
    low: float
    high: float

    @property
    def direction(self) -> int:
        """+1 when the interval lies above 0 (a significant rise), −1 below, 0 otherwise."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def newcombe(s1: int, n1: int, s2: int, n2: int, z: float = Z_95) -> Difference | None:
    """Newcombe's hybrid score interval for s1/n1 − s2/n2 (None when either n is 0).

    With (l_i, u_i) the Wilson intervals: low = d − √((p1 − l1)² + (u2 − p2)²),
    high = d + √((u1 − p1)² + (p2 − l2)²).
    """
    first, second = wilson(s1, n1, z), wilson(s2, n2, z)
    if first is None or second is None:
        return None
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = first, second
    d = p1 - p2
    return Difference(
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def nps(promoters: int, passives: int, detractors: int) -> float | None:
    """(promoters − detractors) / answers, in [-1, 1] (None without answers)."""
    n = promoters + passives + detractors
    return (promoters - detractors) / n if n else None


def nps_interval(
    promoters: int, passives: int, detractors: int, z: float = Z_95
) -> tuple[float, float] | None:
    """The adjusted Wald interval of the NPS (Rocks 2016), clipped to [-1, 1].

    n' = n + 3, p₊' = (promoters + ¾)/n', p₋' = (detractors + ¾)/n', c = p₊' − p₋':
    c ± z·√((p₊' + p₋' − c²)/n'). The NPS is the mean of a +1/0/−1 score, whose variance
    is p₊ + p₋ − (p₊ − p₋)².
    """
    n = promoters + passives + detractors
    if n <= 0:
        return None
    adjusted = n + 3.0
    p_pro = (promoters + 0.75) / adjusted
    p_det = (detractors + 0.75) / adjusted
    centre = p_pro - p_det
    half = z * math.sqrt(max(p_pro + p_det - centre * centre, 0.0) / adjusted)
    return max(-1.0, centre - half), min(1.0, centre + half)


def nps_class(score: int) -> int:
    """0 detractor (0–6), 1 passive (7–8), 2 promoter (9–10)."""
    return 2 if score >= PROMOTER else 0 if score <= DETRACTOR else 1
