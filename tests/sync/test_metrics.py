"""Metrics against independent hand computations: CSAT, Wilson, NPS, response rate, cohorts."""

from __future__ import annotations

import math
import random
from datetime import UTC
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from csat_hook.sync import metrics
from csat_hook.sync.config import PeriodsConfig
from csat_hook.sync.intervals import wilson
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import Stats
from csat_hook.sync.metrics import compute
from csat_hook.sync.periods import EPOCH_ORDINAL
from csat_hook.sync.periods import Period
from csat_hook.sync.periods import Timeline
from csat_hook.sync.periods import build_periods
from csat_hook.sync.periods import local_day
from csat_hook.sync.periods import months
from csat_hook.sync.periods import previous
from csat_hook.sync.periods import rolling
from csat_hook.sync.periods import weeks
from csat_hook.sync.texts import Texts

Z = 1.959963984540054
ALL = Period("all_time", "all_time", None, None)
UTC_ZONE = ZoneInfo("UTC")


def day(y: int, m: int, d: int) -> int:
    """A period edge: days since 1970-01-01."""
    return date(y, m, d).toordinal() - EPOCH_ORDINAL


def at(y: int, m: int, d: int, hour: int = 12) -> float:
    """A cohort instant (Unix seconds)."""
    return datetime(y, m, d, hour, tzinfo=UTC).timestamp()


def run(answers, sent, periods, settings=None, tz=UTC_ZONE):
    return compute(answers, sent, periods, settings or Settings(), tz)


def test_wilson_closed_forms():
    # All failures / all successes have closed forms: upper = z²/(n+z²), lower = n/(n+z²).
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(Z**2 / (10 + Z**2), abs=1e-12)
    low, high = wilson(10, 10)
    assert low == pytest.approx(10 / (10 + Z**2), abs=1e-12) and high == pytest.approx(1.0)
    # The textbook example: 8 of 10 → 0.4902 .. 0.9433.
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) is None


@pytest.mark.parametrize(("k", "n"), [(1, 3), (7, 9), (45, 50), (123, 457)])
def test_wilson_matches_the_score_test_inversion(k, n):
    """Independent check: the interval's ends are where |p̂ − p| = z·sqrt(p(1−p)/n)."""
    p_hat = k / n

    def root(lo: float, hi: float) -> float:
        def f(p: float) -> float:
            return abs(p_hat - p) - Z * math.sqrt(p * (1 - p) / n)

        for _ in range(200):
            mid = (lo + hi) / 2
            if (f(lo) > 0) == (f(mid) > 0):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low, high = wilson(k, n)
    assert low == pytest.approx(root(1e-12, p_hat), abs=1e-9)
    assert high == pytest.approx(root(p_hat, 1 - 1e-12), abs=1e-9)


def test_figures_equal_a_hand_computation():
    settings = Settings(1, 5, 4, min_n=3)
    d = at(2026, 11, 10)
    # agent 0 (team 0): ratings 5, 4, 2, 1 → CSAT 2/4, mean 3.0
    # agent 1 (team 0): ratings 5, 5, 5 → CSAT 3/3, mean 5.0
    # agent 2 (team 1): rating 3 → CSAT 0/1 (below min n)
    answers = [
        (0, 0, d, 5, True, None),
        (0, 0, d, 4, True, None),
        (0, 0, d, 2, True, None),
        (0, 0, d, 1, False, None),
        (1, 0, d, 5, True, None),
        (1, 0, d, 5, True, None),
        (1, 0, d, 5, True, None),
        (2, 1, d, 3, True, None),
    ]
    sent = [(0, 0, d)] * 6 + [(1, 0, d)] * 3 + [(2, 1, d)] * 4
    [result] = run(answers, sent, [ALL], settings)
    a0, a1, a2 = result.agents[0], result.agents[1], result.agents[2]
    assert (a0.answers, a0.satisfied, a0.csat, a0.mean) == (4, 2, 0.5, 3.0)
    assert a0.distribution == [1, 1, 0, 1, 1]
    # Response rate: answers to *sent* surveys of the cohort ÷ sent, same agent filter.
    assert (a0.sent, a0.answered_sent, a0.response_rate) == (6, 3, 0.5)
    assert (a1.csat, a1.mean, a1.response_rate) == (1.0, 5.0, 1.0)
    assert (a2.csat, a2.response_rate, a2.below_min_n) == (0.0, 0.25, True)
    team0 = result.teams[0]
    assert (team0.answers, team0.satisfied, team0.sent, team0.answered_sent) == (7, 5, 9, 6)
    overall = result.overall
    assert (overall.answers, overall.sent, overall.answered_sent) == (8, 13, 7)
    assert overall.csat == pytest.approx(5 / 8)
    assert overall.mean == pytest.approx((5 + 4 + 2 + 1 + 15 + 3) / 8)
    assert overall.interval == wilson(5, 8)
    assert overall.nps is None and overall.nps_interval is None and overall.nps_answers == 0


def test_nps_counts_promoters_passives_and_detractors():
    """NPS = % 9–10 − % 0–6, over the answers that have one (independent count)."""
    d = at(2026, 11, 10)
    scores = [10, 9, 9, 8, 7, 6, 0, None, 3, 10]
    answers = [(i % 2, 0, d, 4, True, s) for i, s in enumerate(scores)]
    [result] = run(answers, [], [ALL])
    given = [s for s in scores if s is not None]
    promoters = sum(1 for s in given if s >= 9)
    detractors = sum(1 for s in given if s <= 6)
    overall = result.overall
    assert overall.nps_answers == len(given) == 9
    assert overall.nps == pytest.approx((promoters - detractors) / len(given))
    assert overall.nps_counts == [detractors, len(given) - promoters - detractors, promoters]
    assert overall.answers == 10  # an answer without NPS still counts in CSAT
    agent0 = [s for i, s in enumerate(scores) if i % 2 == 0 and s is not None]
    assert result.agents[0].nps_answers == len(agent0)


def test_denominator_is_filtered_like_the_numerator():
    """The Chatwoot defect: an agent filter that shrinks answers but not surveys sent."""
    d = at(2026, 11, 10)
    answers = [(0, 0, d, 5, True, None)] * 2 + [(1, 0, d, 5, True, None)] * 5
    sent = [(0, 0, d)] * 10 + [(1, 0, d)] * 5
    [result] = run(answers, sent, [ALL])
    assert result.agents[0].response_rate == pytest.approx(0.2)
    assert result.agents[1].response_rate == pytest.approx(1.0)
    assert result.overall.response_rate == pytest.approx(7 / 15)


def test_periods_count_the_cohort_of_surveys_sent_in_them():
    settings = Settings(min_n=1)
    october, november = at(2026, 10, 30), at(2026, 11, 2)
    # Sent in October, answered in November: an October figure, not a November one.
    answers = [(0, 0, october, 5, True, None), (0, 0, november, 1, True, None)]
    sent = [(0, 0, october), (0, 0, october), (0, 0, november)]
    oct_p = Period("m10", "month", day(2026, 10, 1), day(2026, 11, 1))
    nov_p = Period("m11", "month", day(2026, 11, 1), day(2026, 12, 1))
    oct_r, nov_r, all_r = run(answers, sent, [oct_p, nov_p, ALL], settings)
    assert (oct_r.overall.answers, oct_r.overall.sent, oct_r.overall.csat) == (1, 2, 1.0)
    assert (nov_r.overall.answers, nov_r.overall.sent, nov_r.overall.csat) == (1, 1, 0.0)
    assert (all_r.overall.answers, all_r.overall.sent) == (2, 3)


def test_ratings_off_the_scale_and_empty_groups_give_no_nan():
    d = at(2026, 11, 10)
    [result] = run([(0, 0, d, 9, True, 10)], [(1, 0, d)], [ALL])
    assert result.overall.answers == 0
    assert result.overall.csat is None and result.overall.mean is None
    assert result.overall.interval is None and result.agents[1].response_rate == 0.0
    assert result.overall.nps_answers == 0  # ignored with its rating


def test_build_periods_in_the_metrics_time_zone():
    tz = ZoneInfo("Europe/Moscow")
    now = datetime(2026, 11, 1, 22, 30, tzinfo=UTC)  # already 2 November in Moscow
    periods = build_periods(now, tz, PeriodsConfig(rolling_days=[7], calendar_months=2))
    week, this_month, last_month, everything = periods
    assert (week.first_date(), week.last_date()) == (date(2026, 10, 27), date(2026, 11, 2))
    # The current month runs to today (no survey is sent in the future).
    assert (this_month.first_date(), this_month.last_date(), this_month.to_date) == (
        date(2026, 11, 1),
        date(2026, 11, 2),
        True,
    )
    assert (last_month.first_date(), last_month.last_date()) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
    )
    assert everything.first_day is None
    january = build_periods(
        datetime(2026, 1, 5, tzinfo=UTC),
        tz,
        PeriodsConfig(rolling_days=[], calendar_months=2, all_time=False),
    )
    assert [(p.first_date(), p.to_date) for p in january] == [
        (date(2026, 1, 1), True),
        (date(2025, 12, 1), False),
    ]


def test_headline_previous_weeks_and_months():
    today = day(2026, 11, 19)  # a Thursday
    headline, before = rolling(today, 30), previous(today, 30)
    assert (headline.first_date(), headline.last_date()) == (date(2026, 10, 21), date(2026, 11, 19))
    # The previous period has the same length and ends the day before the headline one.
    assert (before.first_date(), before.last_date()) == (date(2026, 9, 21), date(2026, 10, 20))
    this_week, last_week, *_ = weeks(today, 3)
    assert (this_week.first_date(), this_week.last_date()) == (
        date(2026, 11, 16),
        date(2026, 11, 19),
    )
    assert (last_week.first_date(), last_week.last_date()) == (
        date(2026, 11, 9),
        date(2026, 11, 15),
    )
    assert [p.first_date() for p in months(today, 3)] == [
        date(2026, 11, 1),
        date(2026, 10, 1),
        date(2026, 9, 1),
    ]


@pytest.mark.parametrize(
    ("language", "days", "last", "before"),
    [
        ("en", 30, "Last 30 days", "previous 30 days"),
        ("en", 1, "Today", "previous day"),
        ("ru", 30, "Последние 30 дней", "предыдущие 30 дней"),
        ("ru", 21, "Последний 21 день", "предыдущий 21 день"),
        ("ru", 2, "Последние 2 дня", "предыдущие 2 дня"),
        ("ru", 11, "Последние 11 дней", "предыдущие 11 дней"),
        ("ru", 1, "Сегодня", "предыдущий день"),
    ],
)
def test_period_names_in_english_and_russian(language, days, last, before):
    today = day(2026, 11, 19)
    texts = Texts(language)
    assert texts.period(rolling(today, days)) == last
    assert texts.period(previous(today, days)) == before


def test_month_and_week_names():
    today = day(2026, 11, 19)
    current, october = months(today, 2)
    assert Texts("en").period(current) == "November 2026 (to 19 Nov)"
    assert Texts("ru").period(current) == "Ноябрь 2026 (по 19 ноября)"
    assert (Texts("en").period(october), Texts("ru").period(october)) == (
        "October 2026",
        "Октябрь 2026",
    )
    assert Texts("ru").period(weeks(today, 1)[0]) == "Неделя с 16.11.2026"
    assert Texts("ru").answers_word(21) == "оценка" and Texts("ru").answers_word(3) == "оценки"
    assert Texts("ru").percent(0.8525) == "85,2%" and Texts("en").percent(0.8525) == "85.2%"


def test_periods_follow_local_midnights_across_dst():
    """A period edge is local midnight in the metrics zone, also on DST days."""
    tz = ZoneInfo("America/New_York")
    rng = random.Random(5)
    periods = [
        Period(f"d{k}", "last_days", day(2026, 3, 1) + k, day(2026, 3, 1) + k + 3)
        for k in range(0, 260, 3)
    ]
    timeline = Timeline(periods, tz)
    for _ in range(3000):
        moment = datetime.fromtimestamp(rng.uniform(at(2026, 2, 25), at(2026, 11, 25)), tz=UTC)
        local = local_day(moment, tz)
        expected = tuple(i for i, p in enumerate(periods) if p.contains(local))
        assert timeline.members[timeline.segment(moment.timestamp())] == expected


def test_random_data_against_a_naive_computation():
    rng = random.Random(11)
    settings = Settings(1, 5, 4, min_n=5)
    tz = ZoneInfo("Europe/Moscow")
    periods = [Period("a", "last_days", 100, 130), Period("b", "last_days", 120, 200), ALL]

    def instant() -> float:
        return rng.uniform(90, 210) * 86400

    def local(stamp: float) -> int:
        return local_day(datetime.fromtimestamp(stamp, tz=UTC), tz)

    answers = [
        (
            rng.randrange(7),
            rng.randrange(3),
            instant(),
            rng.randint(1, 5),
            rng.random() < 0.8,
            rng.choice([None, *range(11)]),
        )
        for _ in range(5000)
    ]
    sent = [(rng.randrange(7), rng.randrange(3), instant()) for _ in range(9000)]
    results = compute(answers, sent, periods, settings, tz)
    for period, result in zip(periods, results, strict=True):
        for agent in range(7):
            mine = [a for a in answers if a[0] == agent and period.contains(local(a[2]))]
            stats = result.agents.get(agent)
            n = len(mine)
            assert (stats.answers if stats else 0) == n
            if n:
                assert stats.satisfied == sum(1 for a in mine if a[3] >= 4)
                assert stats.mean == pytest.approx(sum(a[3] for a in mine) / n)
                assert stats.answered_sent == sum(1 for a in mine if a[4])
                scored = [a[5] for a in mine if a[5] is not None]
                assert stats.nps_counts == [
                    sum(1 for x in scored if x <= 6),
                    sum(1 for x in scored if 7 <= x <= 8),
                    sum(1 for x in scored if x >= 9),
                ]
                assert stats.sent == sum(
                    1 for s in sent if s[0] == agent and period.contains(local(s[2]))
                )


@pytest.mark.parametrize("dense_limit", [1 << 22, 0], ids=["presence table", "unique"])
def test_agents_teams_overall_and_their_order_against_a_naive_computation(dense_limit, monkeypatch):
    """Every group of every period (agents working in several teams, agents with sent
    surveys only, instants on a period edge, ratings off the scale, opened surveys) equals a
    count over the raw tuples, and groups come in the documented order."""
    monkeypatch.setattr(metrics, "_DENSE_LIMIT", dense_limit)
    rng = random.Random(23)
    settings = Settings(1, 5, 4, min_n=5)
    tz = ZoneInfo("Europe/Moscow")
    periods = [
        Period("a", "last_days", 100, 130),
        Period("b", "last_days", 120, 200),
        Period("none", "last_days", 150, 150),
        Period("c", "last_days", 300, 310),  # only instants on its edges
        ALL,
    ]
    edges = Timeline(periods, tz).bounds

    def instant() -> float:
        if rng.random() < 0.1:  # on an edge or a microsecond before it
            return rng.choice(edges) - rng.choice([0.0, 1e-6])
        return rng.uniform(90, 210) * 86400

    def local(stamp: float) -> int:
        return local_day(datetime.fromtimestamp(stamp, tz=UTC), tz)

    answers = [
        (
            rng.randrange(6),
            rng.randrange(4),
            instant(),
            rng.randint(0, 6),
            rng.random() < 0.8,
            rng.choice([None, *range(11)]),
        )
        for _ in range(3000)
    ]
    sent = [
        (rng.randrange(9), rng.randrange(4), instant(), rng.random() < 0.3) for _ in range(4000)
    ]
    results = compute(answers, sent, periods, settings, tz)

    def naive(mine_a: list, mine_s: list) -> tuple:
        scored = [a[5] for a in mine_a if a[5] is not None]
        return (
            [sum(1 for a in mine_a if a[3] == r) for r in range(1, 6)],
            sum(1 for a in mine_a if a[4]),
            len(mine_s),
            sum(1 for s in mine_s if s[3]),
            [
                sum(1 for x in scored if x <= 6),
                sum(1 for x in scored if 7 <= x <= 8),
                sum(1 for x in scored if x >= 9),
            ],
        )

    def figures(stats: Stats) -> tuple:
        return (
            stats.distribution,
            stats.answered_sent,
            stats.sent,
            stats.opened,
            stats.nps_counts,
        )

    for period, result in zip(periods, results, strict=True):
        in_a = [a for a in answers if 1 <= a[3] <= 5 and period.contains(local(a[2]))]
        in_s = [s for s in sent if period.contains(local(s[2]))]
        assert figures(result.overall) == naive(in_a, in_s)
        for position, key in ((0, "agents"), (1, "teams")):
            groups = getattr(result, key)
            for group, stats in groups.items():
                mine_a = [a for a in in_a if a[position] == group]
                mine_s = [s for s in in_s if s[position] == group]
                assert figures(stats) == naive(mine_a, mine_s), (period.key, key, group)
            answered = sorted({(a[0], a[1]) for a in in_a})
            sent_only = sorted({(s[0], s[1]) for s in in_s} - set(answered))
            expected = list(dict.fromkeys(pair[position] for pair in answered + sent_only))
            assert list(groups) == expected, (period.key, key)
        if period.key == "none":  # no day: no group, a blank overall
            assert not result.agents and not result.teams
            assert figures(result.overall) == naive([], [])
