"""Where a first sync's read of a responses sheet goes, per row (one process, no network).

Builds the sheet ``sync_bench.py`` serves (100 agents, 100,000 answers by default: the same
generator, secret and clock) in the fake Google's own model, takes the ``values.batchGet``
body the fake would send, and has the Google Sheets source read it as a first sync does
(``prefetch`` and ``fetch``: the bytes digested, the rows decoded, every row parsed into a
submission and its identity). Prints the CPU per row of that whole read beside the steps it
is made of, each timed alone on the same rows, and a peer in the same run: what the analyst's
gspread + pandas script (``peer_gspread_pandas.py``) does with the same body (decode it, a
DataFrame, the serials to UTC date-times in the sheet's zone).

    python benchmarks/read_budget.py [--answers 100000] [--runs 5]

Each figure is the fastest of ``--runs`` (CPU time of this process, the cyclic collector off
as a sync runs it); the median beside it shows how noisy the machine was.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sync import SHEET_HEADER  # noqa: E402
from _sync import SHEET_ZONE  # noqa: E402
from _sync import SYNC_CLOCK  # noqa: E402
from _sync import sheet_rows  # noqa: E402

from csat_hook.config import load_config  # noqa: E402
from csat_hook.db.text import storable  # noqa: E402
from csat_hook.devtools.fake_google import FakeGoogle  # noqa: E402
from csat_hook.devtools.fake_google import _sheets_call  # noqa: E402
from csat_hook.sync.google.api import METADATA_FIELDS  # noqa: E402
from csat_hook.sync.sources.gsheets import GSheetsResults  # noqa: E402
from csat_hook.sync.sources.gsheets import sheet_zone  # noqa: E402
from csat_hook.sync.sources.identity import submission_identity  # noqa: E402
from csat_hook.sync.sources.table import raw_digest  # noqa: E402
from csat_hook.sync.sources.table import raw_key  # noqa: E402
from csat_hook.sync.values import RatingScale  # noqa: E402
from csat_hook.sync.values import from_serial  # noqa: E402

SHEET = "bench-read"
TAB = "Form Responses 1"


class _Served:
    """The two calls the source makes, answered from the fake's model as its server would
    (the metadata decoded, the values as the bytes it sends)."""

    def __init__(self, fake: FakeGoogle) -> None:
        self.sheet = fake.spreadsheets[SHEET]
        query = {
            "valueRenderOption": ["UNFORMATTED_VALUE"],
            "dateTimeRenderOption": ["SERIAL_NUMBER"],
            "majorDimension": ["ROWS"],
            "ranges": [f"'{TAB}'"],
        }
        answer = _sheets_call(self.sheet, "GET", "values:batchGet", query, {})
        self.body = json.dumps(answer, ensure_ascii=False).encode("utf-8")

    def metadata(self, spreadsheet_id: str) -> dict[str, Any]:
        return self.sheet.metadata(METADATA_FIELDS)

    def read_tab_bytes(self, spreadsheet_id: str, title: str) -> bytes:
        return self.body


def best_of(runs: int, work: Callable[[], Any]) -> tuple[float, float]:
    """The fastest and the median CPU seconds of ``runs`` calls of ``work``."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        result = work()
        times.append(time.process_time() - start)
        del result
        gc.collect()
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    fake = FakeGoogle()  # its model only: no server is started
    fake.add_spreadsheet(SHEET, locale="en_US", time_zone=SHEET_ZONE)
    rows, _ = sheet_rows(100, args.answers, args.answers // 2)
    fake.add_tab(SHEET, TAB, rows, sheet_id=0)
    served = _Served(fake)
    config = load_config(None, env={}, overrides={})
    ratings = RatingScale.from_config(config.results, config.metrics)

    def read() -> Any:
        source = GSheetsResults(
            served,  # type: ignore[arg-type]
            SHEET,
            sheet_gid=0,
            sheet_name=None,
            columns=config.results.columns,
            ratings=ratings,
        )
        source.read_at(SYNC_CLOCK)
        source.prefetch()
        return source.fetch(frozenset(), None)

    gc.disable()  # as a sync runs (sync/runner.py): collected between the runs here
    batch = read()
    count = len(batch.submissions)
    assert count == args.answers and not batch.skipped, (count, len(batch.skipped))
    cells = json.loads(served.body)["valueRanges"][0]["values"][1:]
    tz = sheet_zone(SHEET_ZONE)
    serials = [row[0] for row in cells]
    texts = [cell for row in cells for cell in row[2:]]
    key = raw_key("gsheets", tuple(SHEET_HEADER), [], "settings")
    parsed = batch.submissions

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("the whole read (prefetch + fetch)", read),
        ("  the body decoded (json.loads)", lambda: json.loads(served.body)),
        (
            "  a serial to its UTC instant (from_serial)",
            lambda: [from_serial(s, tz) for s in serials],
        ),
        ("  four text cells made storable (storable)", lambda: [storable(t) for t in texts]),
        ("  the row's cells digested (raw_digest)", lambda: [raw_digest(key, r) for r in cells]),
        (
            "  the row's identity (submission_identity)",
            lambda: [
                submission_identity(
                    s.submitted_at, s.token, s.rating, s.comment, s.field_agent, s.field_ticket
                )
                for s in parsed
            ],
        ),
    ]

    def peer() -> Any:
        import pandas as pd

        values = json.loads(served.body)["valueRanges"][0]["values"]
        frame = pd.DataFrame(values[1:], columns=values[0])
        local = pd.to_datetime(frame["Timestamp"], unit="D", origin="1899-12-30")
        frame["Timestamp"] = local.dt.tz_localize(SHEET_ZONE, ambiguous="NaT", nonexistent="NaT")
        frame["Timestamp"] = frame["Timestamp"].dt.tz_convert("UTC").dt.round(timedelta(seconds=1))
        return frame

    try:
        import pandas  # noqa: F401
    except ImportError:
        peer_figures = None
    else:
        peer()  # pandas' own imports and first-call set-up are not the peer's per-row cost
        peer_figures = best_of(args.runs, peer)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {count:,} rows of {len(SHEET_HEADER)} cells "
        f"({len(served.body) / 1e6:.1f} MB); CPU µs per row, fastest of {args.runs} "
        "(median beside it)"
    )
    for name, work in steps:
        fastest, median = best_of(args.runs, work)
        print(f"  {name:<52} {fastest / count * 1e6:7.2f}  ({median / count * 1e6:.2f})")
    if peer_figures is None:
        print("  peer: pandas is not installed (pip install -e '.[bench]')")
    else:
        fastest, median = peer_figures
        print(
            f"  {'peer: the body into a DataFrame, serials to UTC (pandas)':<52} "
            f"{fastest / count * 1e6:7.2f}  ({median / count * 1e6:.2f})"
        )


if __name__ == "__main__":
    main()
