"""Empirical-Bayes CSAT: each agent's rate pulled toward the team's by what their answers say.

Model (beta-binomial): agent i's true rate θᵢ ~ Beta(α, β); their satisfied answers
sᵢ | θᵢ ~ Binomial(nᵢ, θᵢ). With μ = α/(α+β) (the team rate) and M = α+β (the prior's weight,
in answers), the posterior mean is

    adjusted CSAT = (sᵢ + M·μ) / (nᵢ + M) = wᵢ·sᵢ/nᵢ + (1 − wᵢ)·μ,   wᵢ = nᵢ/(nᵢ + M)

so an agent with 3 answers keeps 3/(3 + M) of their own rate and one with 300 nearly all of it.

(μ, M) is fitted to the agents' (sᵢ, nᵢ) by maximising the beta-binomial marginal likelihood
(Griffiths 1973) plus ln τ, τ = √(μ(1−μ)/(M+1)) the SD of the prior: the boundary-avoiding
penalty of Chung, Rabe-Hesketh, Dorie, Gelman & Liu (2013). Plain maximum likelihood puts the
optimum at M = ∞ (everyone pooled, an all-way tie) in half or more of the fits with 3–10
agents; the penalty only rules that boundary out and otherwise leaves the likelihood in charge.
In a simulation of 3–30 agents with 1–150 answers each it ranked agents better than the Wilson
lower bound, the method of moments and plain maximum likelihood everywhere, and better than the
raw rate in 10 of 12 settings (docs/sync.md, "The leaderboard").

Maximisation (deterministic: every sum is math.fsum, whatever the order): the profile over
t = ln M on a 61-point grid over [ln 10⁻³, ln 10⁶], then golden section to |Δt| < 1e-9; at
each M the best μ by safeguarded Newton (the objective is concave in μ) with exact first and
second derivatives (from 24 agents each step's per-agent terms computed by numpy: the same
floats). lnΓ(a+k) − lnΓ(a) and ψ(a+k) − ψ(a) are exact finite sums for k ≤ 32 (no
cancellation at large M).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

# numpy (≈ 12 MB of RSS) is imported where it is used: a sync that builds no report, and the
# read and ingest before one, run without it.
if TYPE_CHECKING:
    import numpy as np


M_MIN = 1e-3
M_MAX = 1e6
_GRID = 61
_EXACT_SUMS = 32
_SMALL = 64.0  # below it the special functions are exact enough; above, differences cancel
_VECTORISED = 24  # agents from which the Newton steps' terms are computed by numpy
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Prior:
    """Beta(μ·M, (1−μ)·M); ``weight`` M is infinite when all agents are pooled to μ."""

    mean: float
    weight: float
    agents: int  # how many agents it was fitted to

    @property
    def pooled(self) -> bool:
        return math.isinf(self.weight)

    def shrink(self, successes: int, n: int) -> float:
        """The posterior mean (successes + M·μ) / (n + M); μ itself when pooled."""
        if self.pooled:
            return self.mean
        return (successes + self.weight * self.mean) / (n + self.weight)


def fit_prior(data: Sequence[tuple[int, int]]) -> Prior | None:
    """The prior fitted to ``(satisfied, answers)`` per agent (agents without answers are
    left out). None when it cannot be estimated: fewer than two agents with answers, or no
    agent with two (then nothing separates agent variation from chance)."""
    rows = [(s, n) for s, n in data if n > 0]
    for s, n in rows:
        if not 0 <= s <= n:
            raise ValueError("every agent needs 0 <= satisfied <= answers")
    total = sum(n for _, n in rows)
    if len(rows) < 2 or total <= len(rows):
        return None
    successes = sum(s for s, _ in rows)
    pooled_mean = successes / total
    if successes in (0, total):  # nothing distinguishes the agents
        return Prior(pooled_mean, math.inf, len(rows))
    return _Fit(rows, pooled_mean).run()


class _Fit:
    """One maximisation of ℓ(μ, M) + ln τ over t = ln M (profile) and μ (Newton)."""

    def __init__(self, rows: list[tuple[int, int]], start: float) -> None:
        import numpy as np

        self.rows = rows
        self.start = start
        self.cache: dict[float, tuple[float, float]] = {}
        # Satisfied and other answers per agent, as floats (a + k is the same float either
        # way), and which are small enough for the exact sums.
        self.sides: Any = None
        if len(rows) >= _VECTORISED:
            self.sides = tuple(
                (
                    np.array(ks, dtype=np.float64),
                    [(i, k) for i, k in enumerate(ks) if k <= _EXACT_SUMS],
                )
                for ks in ([s for s, _ in rows], [n - s for s, n in rows])
            )

    def run(self) -> Prior:
        lo, hi = math.log(M_MIN), math.log(M_MAX)
        grid = [lo + (hi - lo) * i / (_GRID - 1) for i in range(_GRID)]
        values = [self.profile(t) for t in grid]
        best = max(range(_GRID), key=values.__getitem__)
        a = grid[max(best - 1, 0)]
        b = grid[min(best + 1, _GRID - 1)]
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        while b - a > 1e-9:
            if self.profile(c) > self.profile(d):
                b, d = d, c
                c = b - _GOLDEN * (b - a)
            else:
                a, c = c, d
                d = a + _GOLDEN * (b - a)
        t = 0.5 * (a + b)
        self.profile(t)
        return Prior(self.cache[t][1], math.exp(t), len(self.rows))

    def profile(self, t: float) -> float:
        """max over μ of the penalised log-likelihood at M = eᵗ (cached with its μ)."""
        found = self.cache.get(t)
        if found is None:
            weight = math.exp(t)
            mean = self.start = self._best_mean(weight)
            value = log_likelihood(self.rows, mean, weight) + 0.5 * math.log(
                mean * (1.0 - mean) / (weight + 1.0)
            )
            found = self.cache[t] = (value, mean)
        return found[0]

    def _best_mean(self, weight: float) -> float:
        """argmax over μ of ℓ(μ, M) + ½·ln(μ(1 − μ)) (the μ part of ln τ): safeguarded Newton
        from the μ of the previous M (they are close), bisection when a step leaves the
        bracket."""
        lo, hi = 1e-12, 1.0 - 1e-12
        mu = min(max(self.start, 1e-6), 1.0 - 1e-6)
        for _ in range(100):
            a, b = mu * weight, (1.0 - mu) * weight
            # ψ(a), ψ(b), ψ′(a), ψ′(b) are the same for every agent: computed once per step
            # (the same values the rises would compute, so the fit is unchanged to the bit).
            # All agents at once (numpy), each term the float _psi_rise and _psi1_rise give,
            # summed by fsum as before: the fit is unchanged to the bit, whatever the order.
            if self.sides is None:  # few agents: numpy's overhead would cost more
                at_a, at_b = _Special(a), _Special(b)
                grad = weight * math.fsum(
                    _psi_rise(a, s, at_a) - _psi_rise(b, n - s, at_b) for s, n in self.rows
                )
                hess = (
                    weight
                    * weight
                    * math.fsum(
                        _psi1_rise(a, s, at_a) + _psi1_rise(b, n - s, at_b) for s, n in self.rows
                    )
                )
            else:
                psi_a, psi1_a, psi_b, psi1_b = _rises(a, b, *self.sides)
                grad = weight * math.fsum((psi_a - psi_b).tolist())
                hess = weight * weight * math.fsum((psi1_a + psi1_b).tolist())
            grad += 0.5 * (1.0 / mu - 1.0 / (1.0 - mu))
            hess -= 0.5 * (1.0 / (mu * mu) + 1.0 / ((1.0 - mu) * (1.0 - mu)))
            if grad > 0:
                lo = mu
            else:
                hi = mu
            step = mu - grad / hess if hess < 0 else 0.5 * (lo + hi)
            new = step if lo < step < hi else 0.5 * (lo + hi)
            if abs(new - mu) < 1e-13:
                return new
            mu = new
        return mu


def log_likelihood(rows: Sequence[tuple[int, int]], mean: float, weight: float) -> float:
    """The beta-binomial log-likelihood of ``(s, n)`` rows without the binomial coefficients
    (they do not depend on the parameters)."""
    a, b = mean * weight, (1.0 - mean) * weight
    return math.fsum(
        _lgamma_rise(a, s) + _lgamma_rise(b, n - s) - _lgamma_rise(weight, n) for s, n in rows
    )


def _lgamma_rise(a: float, k: int) -> float:
    """lnΓ(a + k) − lnΓ(a) for an integer k ≥ 0."""
    if k <= _EXACT_SUMS and a > _SMALL:
        return math.fsum(math.log(a + j) for j in range(k))
    return math.lgamma(a + k) - math.lgamma(a)


class _Special:
    """ψ(a) and ψ′(a) of one argument, each computed on first use."""

    __slots__ = ("_psi", "_psi1", "a")

    def __init__(self, a: float) -> None:
        self.a = a
        self._psi: float | None = None
        self._psi1: float | None = None

    def psi(self) -> float:
        if self._psi is None:
            self._psi = digamma(self.a)
        return self._psi

    def psi1(self) -> float:
        if self._psi1 is None:
            self._psi1 = trigamma(self.a)
        return self._psi1


def _psi_rise(a: float, k: int, at_a: _Special) -> float:
    """ψ(a + k) − ψ(a) (``at_a`` holds ψ(a) once computed)."""
    if k <= _EXACT_SUMS and a > _SMALL:
        return math.fsum(1.0 / (a + j) for j in range(k))
    return digamma(a + k) - at_a.psi()


def _psi1_rise(a: float, k: int, at_a: _Special) -> float:
    """ψ′(a + k) − ψ′(a) (negative; ``at_a`` holds ψ′(a) once computed)."""
    if k <= _EXACT_SUMS and a > _SMALL:
        return -math.fsum(1.0 / ((a + j) * (a + j)) for j in range(k))
    return trigamma(a + k) - at_a.psi1()


def _rises(
    a: float,
    b: float,
    side_a: tuple[np.ndarray, list[tuple[int, int]]],
    side_b: tuple[np.ndarray, list[tuple[int, int]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ψ(a + k) − ψ(a) and ψ′(a + k) − ψ′(a) for every k of ``side_a`` (an array of k and
    the (index, k) the exact sums are for when a is large), then the same of b and ``side_b``:
    elementwise the floats :func:`_psi_rise` and :func:`_psi1_rise` return. Both sides in one
    array, one pass."""
    import numpy as np

    count = len(side_a[0])
    psi, psi1 = _digamma_trigamma(np.concatenate((a + side_a[0], b + side_b[0])))
    out: list[np.ndarray] = []
    for base, (_, small), part in ((a, side_a, slice(0, count)), (b, side_b, slice(count, None))):
        at = _Special(base)
        rise, rise1 = psi[part] - at.psi(), psi1[part] - at.psi1()
        if base > _SMALL:
            for i, k in small:
                rise[i] = _psi_rise(base, k, at)
                rise1[i] = _psi1_rise(base, k, at)
        out += (rise, rise1)
    return out[0], out[1], out[2], out[3]


def _digamma_trigamma(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`digamma` and :func:`trigamma` of every element: the same operations in the same
    order (IEEE arithmetic, and math.log itself), so the same floats."""
    import numpy as np

    x = x.copy()
    psi = np.zeros_like(x)
    psi1 = np.zeros_like(x)
    low = x < 10.0
    while low.any():
        # Masked by where, not by indexing: x − 0 and x + 0 are x, so the others stay as they
        # are (psi and psi1 are never −0.0 here: they start at +0.0 and only move off it).
        psi -= np.where(low, 1.0 / x, 0.0)
        psi1 += np.where(low, 1.0 / (x * x), 0.0)
        x += low
        low = x < 10.0
    series = _digamma_series(x)
    log = np.array(list(map(math.log, x.tolist())), dtype=np.float64)
    psi = psi + log - 0.5 / x - series
    series = _trigamma_series(x)
    return psi, psi1 + series


def _digamma_series(x: Any) -> Any:
    """The asymptotic series ψ(x) ≈ log x − 1/(2x) − this, for x ≥ 10: a float or a numpy
    array alike (the same operations in the same order, so both give the same bits)."""
    inv2 = 1.0 / (x * x)
    return inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132)))
    )


def _trigamma_series(x: Any) -> Any:
    """The asymptotic series ψ′(x) ≈ this, for x ≥ 10 (a float or a numpy array alike)."""
    inv = 1.0 / x
    inv2 = inv * inv
    return inv * (
        1.0
        + inv * 0.5
        + inv2
        * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * 5 / 66))))
    )


def digamma(x: float) -> float:
    """ψ(x) for x > 0: recurrence up to x ≥ 10, then the asymptotic series."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    series: float = _digamma_series(x)
    return result + math.log(x) - 0.5 / x - series


def trigamma(x: float) -> float:
    """ψ′(x) for x > 0: recurrence up to x ≥ 10, then the asymptotic series."""
    result = 0.0
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    series: float = _trigamma_series(x)
    return result + series
