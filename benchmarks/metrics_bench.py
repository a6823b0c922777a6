"""Benchmark: per-agent/team/overall metrics over 1,000,000 answers (pure computation).

    python benchmarks/metrics_bench.py [--answers 1000000] [--agents 100]

Times what a sync does after loading the rows: each answer's and survey's cohort datetime to
Unix seconds, then ``compute`` (segments of the period timeline, counting, roll-up) for the
default periods plus twelve calendar months. Target: ≤ 3 s for 1,000,000 answers.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from csat_hook.sync.config import PeriodsConfig
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import build_periods
from csat_hook.sync.metrics import compute


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
    periods = build_periods(now, tz, PeriodsConfig(rolling_days=[7, 30], calendar_months=12))
    tracemalloc.start()
    started = time.perf_counter()
    facts = [(a, t, when.timestamp(), r, m) for a, t, when, r, m in answers]
    sent_facts = [(a, t, when.timestamp()) for a, t, when in sent]
    indexed = time.perf_counter()
    results = compute(facts, sent_facts, periods, Settings(min_n=10), tz)
    done = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    overall = next(r for r in results if r.period.key == "all_time").overall
    print(
        f"{args.answers:,} answers, {len(sent):,} surveys sent, {args.agents} agents, "
        f"{len(periods)} periods"
    )
    print(
        f"  datetimes to instants {indexed - started:.2f} s; aggregation "
        f"{done - indexed:.2f} s; "
        f"total {done - started:.2f} s (tracemalloc on; peak {peak / 1e6:.0f} MB)"
    )
    print(
        f"  all time: CSAT {100 * (overall.csat or 0):.1f}% of {overall.answers:,}, "
        f"response rate {100 * (overall.response_rate or 0):.1f}%"
    )
    started = time.perf_counter()
    facts = [(a, t, when.timestamp(), r, m) for a, t, when, r, m in answers]
    sent_facts = [(a, t, when.timestamp()) for a, t, when in sent]
    middle = time.perf_counter()
    compute(facts, sent_facts, periods, Settings(min_n=10), tz)
    done = time.perf_counter()
    print(
        f"  again without tracemalloc: {done - started:.2f} s "
        f"(instants {middle - started:.2f} s, aggregation {done - middle:.2f} s)"
    )


if __name__ == "__main__":
    main()
