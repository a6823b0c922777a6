"""Micro-benchmark: µs per text timestamp, csat-hook's reader beside python-dateutil's parser.

    python benchmarks/timestamp_bench.py [--count 100000]

100,000 values per layout (a first sync of a Forms CSV reads one per answer), generated from
the same random instants, each read back and checked against the instant it was written
from. The peer, ``dateutil.parser.parse`` (with ``tzinfos`` for the abbreviations and
``dayfirst`` for day-first layouts), is measured in the same run when python-dateutil is
installed (it is not a dependency: ``pip install python-dateutil`` to compare); its wrong
answers are counted too (it reads ``GMT+3`` the POSIX way, as UTC−3).
"""

from __future__ import annotations

import argparse
import random
import time
import warnings
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from csat_hook.sync.timestamps import FIXED_ABBREVIATIONS
from csat_hook.sync.timestamps import TimestampColumn

NEW_YORK, MOSCOW, LIMA = (
    ZoneInfo("America/New_York"),
    ZoneInfo("Europe/Moscow"),
    ZoneInfo("America/Lima"),
)


AM_ES, PM_ES = "a.\u202fm.", "p.\u202fm."  # CLDR es, with U+202F inside


def twelve(t: datetime, am: str = "AM", pm: str = "PM") -> str:
    return f"{t.hour % 12 or 12}:{t:%M:%S} {am if t.hour < 12 else pm}"


# name → (the zone the text is in, the configured zone, how it is written, dayfirst)
LAYOUTS: dict[str, tuple[ZoneInfo, Callable[[datetime], str], bool]] = {
    "Forms en-US  2025/09/08 3:47:14 AM EDT": (
        NEW_YORK,
        lambda t: f"{t:%Y/%m/%d} {twelve(t)} {t.tzname()}",
        False,
    ),
    "Forms ru     2026/09/27 3:00:00 PM GMT+3": (
        MOSCOW,
        lambda t: f"{t:%Y/%m/%d} {twelve(t)} GMT+3",
        False,
    ),
    "Forms es     2026/07/18 1:47:02 p. m. GMT-5": (
        LIMA,
        lambda t: f"{t:%Y/%m/%d} {twelve(t, AM_ES, PM_ES)} GMT-5",
        False,
    ),
    "Sheets en_US 9/8/2025 13:58:23": (
        NEW_YORK,
        lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t:%M:%S}",
        False,
    ),
    "Sheets ru_RU 08.09.2025 21:58:23": (
        MOSCOW,
        lambda t: f"{t:%d.%m.%Y %H:%M:%S}",
        True,
    ),
    "Apps Script  Mon Sep 08 2025 13:58:23 GMT-0400 (…)": (
        NEW_YORK,
        lambda t: f"{t:%a %b %d %Y %H:%M:%S} GMT{t:%z} (Eastern Time)",
        False,
    ),
    "ISO 8601     2025-09-08T18:58:23.000Z": (
        NEW_YORK,
        lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        False,
    ),
}


def instants(count: int) -> list[datetime]:
    rnd = random.Random(42)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    # Whole seconds, away from the repeated autumn hour (where wall time cannot say which).
    values = []
    while len(values) < count:
        moment = start + timedelta(seconds=rnd.randrange(0, 2 * 365 * 86400))
        local = moment.astimezone(NEW_YORK)
        if local.replace(fold=1).utcoffset() == local.replace(fold=0).utcoffset():
            values.append(moment)
    return values


def ours(zone: ZoneInfo, texts: list[str]) -> tuple[float, list[datetime]]:
    started = time.perf_counter()
    column = TimestampColumn(zone)
    column.scan(texts)
    parse = column.parse
    out = [parse(t) for t in texts]
    return time.perf_counter() - started, out


def dateutil_peer(
    zone: ZoneInfo, texts: list[str], dayfirst: bool
) -> tuple[float, list[datetime | None]]:
    from dateutil import parser

    tzinfos = {name: minutes * 60 for name, minutes in FIXED_ABBREVIATIONS.items()}
    out: list[datetime | None] = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in texts:
            try:
                parsed = parser.parse(text, tzinfos=tzinfos, dayfirst=dayfirst)
            except (ValueError, OverflowError):
                out.append(None)
                continue
            out.append((parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC))
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    try:
        import dateutil  # noqa: F401

        peer = True
    except ImportError:
        peer = False
        print("python-dateutil is not installed: the peer is skipped (pip install python-dateutil)")
    moments = instants(args.count)
    print(f"{args.count:,} values per layout; µs per value (wrong answers)\n")
    print(f"{'layout':52} {'csat-hook':>16} {'dateutil.parse':>22}")
    for name, (zone, write, dayfirst) in LAYOUTS.items():
        texts = [write(m.astimezone(zone)) for m in moments]
        seconds, got = min((ours(zone, texts) for _ in range(3)), key=lambda r: r[0])
        wrong = sum(a != b for a, b in zip(got, moments, strict=True))
        line = f"{name:52} {seconds / len(texts) * 1e6:9.1f} ({wrong:>4})"
        if peer:
            peer_seconds, peer_got = dateutil_peer(zone, texts, dayfirst)
            peer_wrong = sum(a != b for a, b in zip(peer_got, moments, strict=True))
            line += f" {peer_seconds / len(texts) * 1e6:13.1f} ({peer_wrong:>6})"
        print(line)


if __name__ == "__main__":
    main()
