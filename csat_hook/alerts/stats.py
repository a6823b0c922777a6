"""Is an agent's CSAT significantly below target? An exact one-sided binomial test.

H0: the agent's true CSAT is at least ``target``; H1: below. With ``x`` satisfied answers of
``n``, the p-value is P(X ≤ x) for X ~ Binomial(n, target). It is exact at the small ``n``
agents have (a normal approximation is not), and conservative: its real size is below alpha
(the distribution is discrete). Computed in log space, so ``n`` in the thousands neither
overflows nor underflows.

Running it at every sync re-tests the same agent many times ("peeking"): simulated in the
research notes, an agent exactly on target tested after each answer from 20 to 60 gets at
least one false alert in 10% of periods at alpha 0.05 and 3% at 0.01; hence alpha 0.01 by
default, tests only when the agent's answers changed, and hysteresis (an agent leaves "below"
only at p ≥ ``exit_alpha``).
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054


def binomial_cdf(x: int, n: int, p: float) -> float:
    """P(X ≤ x) for X ~ Binomial(n, p), 0 ≤ x, 0 < p < 1."""
    if x < 0:
        return 0.0
    if x >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    terms = [
        log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        for k in range(x + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` in ``n`` (95% by default); None for n 0."""
    if n <= 0:
        return None
    share = successes / n
    z2 = z * z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
