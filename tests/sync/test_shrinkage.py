"""The empirical-Bayes fit against an independent computation with scipy.

The same objective — the beta-binomial marginal log-likelihood (``scipy.stats.betabinom``'s,
written out with ``scipy.special.betaln`` for speed and checked equal to it)
plus ln τ, τ² = μ(1−μ)/(M+1) — maximised by ``scipy.optimize.minimize`` from several
starting points; the posterior means must agree. Datasets: BDA3's 70 rat tumour experiments
and CSAT-like teams of 3–30 agents (``fixtures/eb_datasets.json``), plus random teams.
"""

from __future__ import annotations

import json
import math
import random
from decimal import ROUND_HALF_UP
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize
from scipy import special
from scipy import stats

from csat_hook.sync.shrinkage import Prior
from csat_hook.sync.shrinkage import digamma
from csat_hook.sync.shrinkage import fit_prior
from csat_hook.sync.shrinkage import log_likelihood
from csat_hook.sync.shrinkage import trigamma

FIXTURES = Path(__file__).parent / "fixtures"
DATASETS = json.loads((FIXTURES / "eb_datasets.json").read_text(encoding="utf-8"))["datasets"]


def betabinom_logpmf(s: np.ndarray, n: np.ndarray, a: float, b: float) -> np.ndarray:
    """``scipy.stats.betabinom.logpmf(s, n, a, b)`` written out with scipy's ``betaln``: the
    same values (:func:`test_the_written_out_logpmf_is_scipys`) without the distribution
    machinery's ≈ 100 µs a call, which the fits below make ~10⁵ times."""
    log_comb = special.gammaln(n + 1) - special.gammaln(s + 1) - special.gammaln(n - s + 1)
    return log_comb + special.betaln(s + a, n - s + b) - special.betaln(a, b)


def test_the_written_out_logpmf_is_scipys():
    data = [tuple(x) for x in DATASETS["rats_historical_70"]]
    s = np.array([x for x, _ in data], dtype=float)
    n = np.array([y for _, y in data], dtype=float)
    for a, b in ((0.5, 0.5), (2.4, 14.1), (80.0, 9.0), (3e4, 1e3)):
        assert betabinom_logpmf(s, n, a, b) == pytest.approx(
            stats.betabinom.logpmf(s, n, a, b), rel=1e-12, abs=1e-12
        )


def scipy_fit(data: list[tuple[int, int]]) -> tuple[float, float]:
    """(μ, M) maximising Σ ln BetaBinom(sᵢ | nᵢ, μM, (1−μ)M) + ln τ, by scipy."""
    s = np.array([x for x, _ in data], dtype=float)
    n = np.array([y for _, y in data], dtype=float)

    def negative(params: np.ndarray) -> float:
        mu = 1.0 / (1.0 + math.exp(-params[0]))
        weight = math.exp(params[1])
        value = betabinom_logpmf(s, n, mu * weight, (1 - mu) * weight).sum()
        return -(value + 0.5 * math.log(mu * (1 - mu) / (weight + 1)))

    pooled = s.sum() / n.sum()
    best = None
    for start_weight in (0.1, 1.0, 5.0, 20.0, 100.0, 1000.0, 1e5):
        start = np.array([math.log(pooled / (1 - pooled)), math.log(start_weight)])
        found = optimize.minimize(negative, start, method="Nelder-Mead", options={
            "xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000, "maxfev": 40000})  # fmt: skip
        if best is None or found.fun < best.fun:
            best = found
    assert best is not None
    return 1.0 / (1.0 + math.exp(-best.x[0])), math.exp(best.x[1])


def noted(mu: float, weight: float) -> tuple[float, float]:
    """(μ, M) as the Summary's note writes them (docs/sync.md): μ to 0.1 percentage point,
    M to three significant digits, halves up."""
    digits = 2 - math.floor(math.log10(weight))
    step = Decimal(1).scaleb(-digits)
    weight = float(Decimal(repr(weight)).quantize(step, rounding=ROUND_HALF_UP))
    return float(Decimal(repr(mu)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)), weight


def random_team(rng: random.Random, agents: int) -> list[tuple[int, int]]:
    team = []
    for _ in range(agents):
        n = int(math.exp(rng.uniform(0, math.log(150))))
        theta = min(0.99, max(0.3, rng.gauss(0.85, 0.08)))
        team.append((sum(rng.random() < theta for _ in range(n)), n))
    return team


CASES = [(name, [tuple(x) for x in data]) for name, data in DATASETS.items()] + [
    (f"random_{k}_{seed}", random_team(random.Random(seed), k))
    for k, seed in ((3, 1), (5, 2), (10, 3), (30, 4))
]


@pytest.mark.parametrize(("name", "data"), CASES, ids=[c[0] for c in CASES])
def test_posterior_means_equal_scipys(name, data):
    prior = fit_prior(data)
    assert prior is not None and not prior.pooled
    mu, weight = scipy_fit(data)
    assert prior.mean == pytest.approx(mu, abs=1e-6), name
    assert math.log(prior.weight) == pytest.approx(math.log(weight), abs=1e-3), name
    for s, n in data:
        expected = (s + mu * weight) / (n + weight)
        assert prior.shrink(s, n) == pytest.approx(expected, abs=1e-6), (name, s, n)


def test_the_likelihood_is_scipys_betabinomial_without_constants():
    data = [tuple(x) for x in DATASETS["team_8_mixed"]]
    for mu, weight in ((0.8, 3.0), (0.5, 40.0), (0.93, 700.0)):
        theirs = sum(
            stats.betabinom.logpmf(s, n, mu * weight, (1 - mu) * weight) - math.log(math.comb(n, s))
            for s, n in data
        )
        assert log_likelihood(data, mu, weight) == pytest.approx(theirs, abs=1e-9)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.7, 9.99, 10.0, 42.0, 1e3, 1e6])
def test_digamma_and_trigamma_equal_scipys(x):
    assert digamma(x) == pytest.approx(special.digamma(x), rel=1e-13, abs=1e-13)
    assert trigamma(x) == pytest.approx(special.polygamma(1, x), rel=1e-13)


def test_an_agent_with_few_answers_is_pulled_toward_the_team_rate():
    prior = Prior(mean=0.85, weight=70.0, agents=10)
    assert prior.shrink(3, 3) == pytest.approx((3 + 70 * 0.85) / 73)  # 3 of 3 → 86.3%
    assert prior.shrink(300, 300) == pytest.approx((300 + 59.5) / 370)  # 300 of 300 → 97.2%
    assert prior.shrink(3, 3) < prior.shrink(300, 300)


def test_not_estimable_pooled_and_deterministic():
    assert fit_prior([]) is None
    assert fit_prior([(5, 10)]) is None  # one agent
    assert fit_prior([(1, 1), (0, 1), (1, 1)]) is None  # nobody with two answers
    assert fit_prior([(0, 0), (3, 4)]) is None  # agents without answers are left out
    everyone = fit_prior([(10, 10), (4, 4), (1, 1)])
    assert everyone is not None and everyone.pooled and everyone.mean == 1.0
    assert everyone.shrink(1, 1) == 1.0
    with pytest.raises(ValueError, match="satisfied"):
        fit_prior([(5, 4), (1, 2)])
    data = CASES[-1][1]
    first, again = fit_prior(data), fit_prior(list(reversed(data)))
    assert first == again  # the same floats whatever the order: a re-run writes the same cells


def test_the_vectorised_newton_steps_give_the_same_floats(monkeypatch):
    """From 24 agents the Newton steps' per-agent terms are computed by numpy: the fit must
    be the one the per-agent functions give, to the bit (re-runs write the same cells)."""
    from csat_hook.sync import shrinkage

    rng = random.Random(16)
    teams = [data for _, data in CASES] + [
        [
            (sum(rng.random() < p for _ in range(n)), n)
            for n, p in ((rng.randint(0, size), rng.uniform(0.02, 0.99)) for _ in range(k))
        ]
        for k, size in ((3, 40), (30, 40), (30, 2000), (100, 1500), (100, 30), (60, 5))
    ]
    for data in teams:
        monkeypatch.setattr(shrinkage, "_VECTORISED", 1)
        vectorised = fit_prior(data)
        monkeypatch.setattr(shrinkage, "_VECTORISED", 10**9)
        assert vectorised == fit_prior(data)


def test_vectorised_digamma_and_trigamma_are_the_scalar_ones_to_the_bit():
    from csat_hook.sync.shrinkage import _digamma_trigamma

    rng = random.Random(3)
    xs = [1e-12, 1e-3, 0.5, 1.0, 9.999999, 10.0, 10.5, 64.0, 65.5, 1e3, 1e6, 1e12] + [
        math.exp(rng.uniform(math.log(1e-9), math.log(1e7))) for _ in range(500)
    ]
    psi, psi1 = _digamma_trigamma(np.array(xs))
    assert psi.tolist() == [digamma(x) for x in xs]
    assert psi1.tolist() == [trigamma(x) for x in xs]
