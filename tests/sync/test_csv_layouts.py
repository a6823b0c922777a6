"""A Forms CSV export gives the same figures whatever layout its timestamps are in.

The shipped sample (a Forms "Download responses (.csv)" export with ``GMT+3`` offsets) is
rewritten as each producer would have written the same instants: Forms in other languages
(zone abbreviations, localized day periods), a responses sheet saved as CSV in several
locales (wall-clock time, no zone, day or month first), an Excel re-save without seconds,
Apps Script ``Date.toString()``, ISO 8601. Each is synced into its own fresh database with
``results.csv.timezone`` set as its producer implies; the report files must be identical.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from csat_hook.config import load_config
from csat_hook.db.engine import make_engine
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.timestamps import TimestampReader
from tests.schema_template import sqlite_copy

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample_responses.csv"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AGENTS = {"7": "Anna Petrova", "8": "Boris Ivanov", "9": "Chen Wei", "11": "Dana Scott"}


AM_ES, PM_ES, MINUS = "a.\u202fm.", "p.\u202fm.", "\u2212"  # as CLDR es and fr write them


def twelve(t: datetime, am: str = "AM", pm: str = "PM") -> str:
    return f"{t.hour % 12 or 12}:{t:%M:%S} {am if t.hour < 12 else pm}"


def gmt(t: datetime) -> str:
    hours = int(t.utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
    return f"GMT{hours:+d}" if hours else "GMT"


# name → (results.csv.timezone, how that producer writes an instant)
LAYOUTS: dict[str, tuple[str, Callable[[datetime], str]]] = {
    "forms_en_us_abbreviation": (
        "America/New_York",
        lambda t: f"{t:%Y/%m/%d} {twelve(t)} {t.tzname()}",
    ),
    "forms_es_u202f_offset": (
        "America/Chicago",
        lambda t: f"{t:%Y/%m/%d} {twelve(t, AM_ES, PM_ES)} {gmt(t)}",
    ),
    "forms_de_mez": ("Europe/Berlin", lambda t: f"{t:%Y/%m/%d} {twelve(t)} MEZ"),
    "forms_fr_utc_minus": (
        "America/Sao_Paulo",
        lambda t: f"{t:%Y/%m/%d} {twelve(t)} {gmt(t).replace('GMT', 'UTC').replace('-', MINUS)}",
    ),
    "forms_ko_marker_first": (
        "Asia/Seoul",
        lambda t: (
            f"{t:%Y/%m/%d} {'오전' if t.hour < 12 else '오후'} {t.hour % 12 or 12}:{t:%M:%S} GMT+9"
        ),
    ),
    "forms_ja_jst": ("Asia/Tokyo", lambda t: f"{t:%Y/%m/%d} {twelve(t, '午前', '午後')} JST"),
    "sheets_en_us": (
        "America/New_York",
        lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t:%M:%S}",
    ),
    "sheets_en_gb": ("Europe/London", lambda t: f"{t:%d/%m/%Y %H:%M:%S}"),
    "sheets_ru_ru": ("Europe/Moscow", lambda t: f"{t:%d.%m.%Y} {t.hour}:{t:%M:%S}"),
    "sheets_it_it": ("Europe/Rome", lambda t: f"{t:%d/%m/%Y} {t.hour}.{t:%M.%S}"),
    "sheets_zh_tw": (
        "Asia/Taipei",
        lambda t: (
            f"{t.year}/{t.month}/{t.day} {twelve(t, '上午', '下午').split()[1]} "
            + twelve(t).split()[0]
        ),
    ),
    "excel_resave_no_seconds": (
        "America/Los_Angeles",
        lambda t: f"{t.month}/{t.day}/{t:%y} {t.hour}:{t:%M}",
    ),
    "apps_script_v8": (
        "America/Denver",
        lambda t: f"{t:%a %b %d %Y %H:%M:%S} GMT{t:%z} (Mountain Standard Time)",
    ),
    "apps_script_rhino": (
        "Asia/Kolkata",
        lambda t: f"{t:%a %b %d %H:%M:%S} GMT{t:%z}"[:-2] + f":{t:%z}"[-2:] + f" {t.year}",
    ),
    "iso_8601": ("UTC", lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")),
}


def rewrite(source: Path, target: Path, zone: str, layout: Callable[[datetime], str]) -> None:
    reader = TimestampReader(ZoneInfo("UTC"))
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        if row and row[0]:
            row[0] = layout(reader.parse(row[0]).astimezone(ZoneInfo(zone)))
    with target.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


# The sample's dates are 2 to 12 November: no day above 12 tells d/m from m/d, so these
# need results.csv.date_order (without it the run is a data_error saying so, tested below).
DATE_ORDER = {
    "sheets_en_us": "MDY",
    "sheets_en_gb": "DMY",
    "sheets_it_it": "DMY",
    "excel_resave_no_seconds": "MDY",
}


def sync(
    tmp_path: Path, name: str, csv_path: Path, zone: str, date_order: str = "auto"
) -> tuple[dict, dict[str, bytes]]:
    database = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
    out = tmp_path / f"out-{name}"
    config = load_config(
        None,
        env={},
        overrides={
            "database": {"url": database},
            "results": {
                "source": "csv",
                "csv": {"path": str(csv_path), "timezone": zone, "date_order": date_order},
            },
            "output": {"local": {"dir": str(out)}},
            "helpdesks": {
                "dryrun": {
                    "kind": "dryrun",
                    "output": str(tmp_path / "d.jsonl"),
                    "agents": {key: {"name": name} for key, name in AGENTS.items()},
                }
            },
        },
    )
    sqlite_copy(tmp_path, database)  # at the current schema (tests/schema_template.py)
    engine = make_engine(database)
    try:
        summary = SyncRunner(config, engine, clock=lambda: NOW).run()
    finally:
        engine.dispose()
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}
    return summary.as_dict(), files


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, bytes]]:
    """The sample as shipped (UTC, ISO-like stamps), synced once for every layout."""
    found = sync(tmp_path_factory.mktemp("reference"), "original", SAMPLE, "UTC")
    assert found[0]["status"] == "ok" and found[0]["new"] == 36
    assert found[0]["skipped"] == {"bad_rating": 1}  # the sample's one unreadable rating
    return found


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_gives_the_same_figures(tmp_path: Path, reference, name: str):
    expected, expected_files = reference
    zone, layout = LAYOUTS[name]
    path = tmp_path / f"{name}.csv"
    rewrite(SAMPLE, path, zone, layout)
    summary, files = sync(tmp_path, name, path, zone, DATE_ORDER.get(name, "auto"))
    assert summary["status"] == "ok", (name, summary["error"], summary["skipped_rows"][:3])
    for key in ("new", "history_only", "unverified", "skipped", "agents", "totals"):
        assert summary[key] == expected[key], (name, key)
    assert files == expected_files, name


def test_an_undecidable_day_month_order_is_a_data_error_not_a_guess(tmp_path: Path):
    zone, layout = LAYOUTS["sheets_en_gb"]
    path = tmp_path / "en_gb.csv"
    rewrite(SAMPLE, path, zone, layout)
    summary, _ = sync(tmp_path, "en_gb", path, zone)
    assert summary["status"] == "data_error"
    assert summary["new"] == 0 and summary["skipped"] == {"ambiguous_date_order": 40}
    (problem,) = summary["problems"]
    assert (problem["column"], problem["setting"]) == ("Timestamp", "results.columns.timestamp")
    assert problem["example"] == "02/11/2026 09:42:00"
    assert "results.csv.date_order" in problem["fix"]


@pytest.mark.parametrize("layout", ["forms_en_us_abbreviation", "apps_script_v8"])
def test_the_layouts_are_what_their_producers_write(tmp_path: Path, layout: str):
    zone, write = LAYOUTS[layout]
    sample = write(datetime(2026, 11, 2, 9, 42, tzinfo=UTC).astimezone(ZoneInfo(zone)))
    assert (
        sample
        == {
            "forms_en_us_abbreviation": "2026/11/02 4:42:00 AM EST",
            "apps_script_v8": "Mon Nov 02 2026 02:42:00 GMT-0700 (Mountain Standard Time)",
        }[layout]
    )
