"""Benchmark: per-agent/team/overall metrics over 1,000,000 answers (pure computation).

    python benchmarks/metrics_bench.py [--answers 1000000] [--agents 100]

Times what a sync does after loading the rows into a ``Dataset`` (as ``build_dataset`` leaves
it: cohort instants are integer microseconds the database computed, ``store.survey_facts``):
the columns ``Dataset.answer_facts`` / ``sent_facts``, then ``compute`` (segments of the period
timeline, counting, running sums per period) over the periods the report asks for — the
default listed ones plus twelve calendar months, the headline 30 days and the 30 before, and
the Trends tab's 12 weeks and 12 months — then the leaderboard (the empirical-Bayes fit over
the agents, ranks, changes). A share of the answers carries an NPS answer.
Target: ≤ 1 s for 1,000,000 answers (five runs printed).

Peer (when pandas is installed: the ``bench`` extra): what an analyst would write with pandas
from the same rows (cohort datetimes): local days with ``tz_convert``, then for each period a
filter and a ``groupby`` per agent (answers, satisfied, rating sum, answered_sent, surveys
sent: CSAT, mean, response rate), three runs. It computes fewer figures (no teams,
distribution, NPS, intervals or leaderboard); its counts are checked equal to ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from csat_hook.sync.config import PeriodsConfig
from csat_hook.sync.dataset import AnswerRecord
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import epoch_microseconds
from csat_hook.sync.leaderboard import build_leaderboard
from csat_hook.sync.metrics import AnswerColumns
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import SentColumns
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import compute
from csat_hook.sync.periods import Period
from csat_hook.sync.periods import build_periods
from csat_hook.sync.periods import local_day
from csat_hook.sync.periods import months
from csat_hook.sync.periods import previous
from csat_hook.sync.periods import rolling
from csat_hook.sync.periods import weeks


def dataset(answers: list, sent: list) -> Dataset:
    """The rows as ``build_dataset`` leaves them (not timed: the join of answers to surveys
    is the sync's): cohort instants are the integer microseconds ``store.survey_facts`` reads
    from the database (here computed from the generated datetimes)."""
    data = Dataset()
    data.answers = [
        AnswerRecord(agent, team, "bench", "", rating, "", when, matched, nps, "")
        for agent, team, when, rating, matched, nps in answers
    ]
    data.cohorts.extend(epoch_microseconds(when) for _, _, when, _, _, _ in answers)
    for agent, team, when in sent:
        data.sent.append(agent, team, epoch_microseconds(when), False)
    return data


def columns(data: Dataset) -> tuple[AnswerColumns, SentColumns]:
    """What the report does first (``report.build_report``): the dataset as columns."""
    return data.answer_facts(), data.sent_facts()


AgentCounts = dict[int, tuple[int, int, int, int, int]]  # answers, satisfied, sum, answered, sent


def peer(answers: list, sent: list, periods: Sequence[Period], tz: ZoneInfo) -> list[AgentCounts]:
    """The pandas peer (see the module docstring): per period, per agent (answers, satisfied,
    rating sum, answered_sent, sent); CSAT, mean and response rate as an analyst's table."""
    import pandas as pd

    a = pd.DataFrame(answers, columns=["agent", "team", "when", "rating", "matched", "nps"])
    s = pd.DataFrame(sent, columns=["agent", "team", "when"])
    for frame in (a, s):
        local = pd.to_datetime(frame["when"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
        frame["day"] = local.to_numpy().astype("datetime64[D]").astype("int64")
    a["satisfied"] = a["rating"] >= 4
    found = []
    for period in periods:
        lo = -(2**62) if period.first_day is None else period.first_day
        hi = 2**62 if period.end_day is None else period.end_day
        in_a = a[(a["day"] >= lo) & (a["day"] < hi)]
        in_s = s[(s["day"] >= lo) & (s["day"] < hi)]
        table = in_a.groupby("agent").agg(
            n=("rating", "size"),
            satisfied=("satisfied", "sum"),
            total=("rating", "sum"),
            answered=("matched", "sum"),
        )
        table = table.join(in_s.groupby("agent").size().rename("sent"), how="outer")
        table = table.fillna(0).astype("int64")
        table["csat"] = table["satisfied"] / table["n"]
        table["mean"] = table["total"] / table["n"]
        table["response_rate"] = table["answered"] / table["sent"]
        columns = ["n", "satisfied", "total", "answered", "sent"]
        found.append(
            {
                int(agent): tuple(int(v) for v in row)
                for agent, row in zip(table.index, table[columns].to_numpy(), strict=True)
            }
        )
    return found


def our_counts(results: list[PeriodResult]) -> list[AgentCounts]:
    """Ours in the peer's terms."""
    return [
        {
            agent: (
                st.answers,
                st.satisfied,
                sum((st.settings.scale_min + i) * c for i, c in enumerate(st.distribution)),
                st.answered_sent,
                st.sent,
            )
            for agent, st in r.agents.items()
        }
        for r in results
    ]


def run_peer(
    answers: list, sent: list, periods: Sequence[Period], tz: ZoneInfo, ours: list[AgentCounts]
) -> None:
    try:
        import pandas  # noqa: F401
    except ImportError:
        print("  peer: pandas is not installed (pip install -e '.[bench]')")
        return
    times = []
    for _ in range(3):
        started = time.perf_counter()
        theirs = peer(answers, sent, periods, tz)
        times.append(time.perf_counter() - started)
    assert theirs == ours, "the pandas peer counts differently"
    times.sort()
    print(
        f"  peer (pandas: tz_convert, a groupby per agent and period; fewer figures), three "
        f"runs: {times[0]:.2f}–{times[-1]:.2f} s (median {times[1]:.2f} s); its counts per "
        "agent and period equal ours"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(7)
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    tz = ZoneInfo("Europe/Moscow")
    # Answers over two years (all periods have data), 1.3 surveys sent per answer; an agent
    # works in one team of eight.
    answers = [
        (
            agent := rng.randrange(args.agents),
            agent % 8,
            now - timedelta(seconds=rng.randrange(730 * 86400)),
            rng.choices((1, 2, 3, 4, 5), (8, 10, 12, 25, 45))[0],
            rng.random() < 0.97,
            rng.randrange(11) if rng.random() < 0.6 else None,
        )
        for _ in range(args.answers)
    ]
    sent = [
        (
            agent := rng.randrange(args.agents),
            agent % 8,
            now - timedelta(seconds=rng.randrange(730 * 86400)),
        )
        for _ in range(int(args.answers * 1.3))
    ]
    today = local_day(now, tz)
    wanted = [
        *build_periods(now, tz, PeriodsConfig(rolling_days=[7, 30], calendar_months=12)),
        rolling(today, 30),
        previous(today, 30),
        *weeks(today, 12),
        *months(today, 12),
    ]
    periods = list({p.key: p for p in wanted}.values())
    headline, before = periods.index(rolling(today, 30)), periods.index(previous(today, 30))
    data = dataset(answers, sent)
    tracemalloc.start()
    started = time.perf_counter()
    facts, sent_facts = columns(data)
    indexed = time.perf_counter()
    results = compute(facts, sent_facts, periods, Settings(min_n=10), tz)
    aggregated = time.perf_counter()
    board = build_leaderboard(results[headline], results[before], name=str, team_name=str, min_n=10)
    done = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    overall = next(r for r in results if r.period.key == "all_time").overall
    print(
        f"{len(data.answers):,} answers, {len(data.sent):,} surveys sent, {args.agents} agents, "
        f"{len(periods)} periods"
    )
    print(
        f"  columns {indexed - started:.2f} s; aggregation "
        f"{aggregated - indexed:.2f} s; leaderboard {done - aggregated:.2f} s; "
        f"total {done - started:.2f} s (tracemalloc on; peak {peak / 1e6:.0f} MB)"
    )
    assert board.prior is not None
    print(
        f"  leaderboard: {len(board.agents)} agents, prior: team rate "
        f"{100 * board.prior.mean:.1f}%, weight {board.prior.weight:.0f} answers"
    )
    print(
        f"  all time: CSAT {100 * (overall.csat or 0):.1f}% of {overall.answers:,}, "
        f"response rate {100 * (overall.response_rate or 0):.1f}%"
    )
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        facts, sent_facts = columns(data)
        middle = time.perf_counter()
        results = compute(facts, sent_facts, periods, Settings(min_n=10), tz)
        aggregated = time.perf_counter()
        build_leaderboard(results[headline], results[before], name=str, team_name=str, min_n=10)
        done = time.perf_counter()
        runs.append((done - started, middle - started, aggregated - middle, done - aggregated))
    totals = sorted(r[0] for r in runs)
    print(
        f"  five runs without tracemalloc: {totals[0]:.2f}–{totals[-1]:.2f} s "
        f"(median {totals[2]:.2f} s; target ≤ 1 s); each: "
        + "; ".join(f"{t:.2f} s = {c:.2f} + {a:.2f} + {b:.2f}" for t, c, a, b in runs)
        + " (columns + aggregation + leaderboard)"
    )
    run_peer(answers, sent, periods, tz, our_counts(results))
    print(f"  machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
