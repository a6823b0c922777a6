"""Invisible format characters (a zero-width space, a word joiner, a byte order mark, a bidi
mark) at the edges of a text timestamp are read as the spaces around it are, as they are
around a rating, an NPS answer, a reference or a ticket: a time copied from a chat or a web
page is the time it shows. One inside a time still makes it ``bad_timestamp``: "15:\u200b00"
is not a time a reader can be sure of."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from csat_hook.db.schema import answers
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.timestamps import TimestampReader
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import EN_HEADER
from tests.sync.test_sources import tab_source

SCALE = RatingScale(1, 5, {})
COLUMNS = ColumnsConfig()
EDGES = ["\u200b", "\u2060", "\ufeff", "\u200e", "\u200f", "\u200d", " \u200b "]


def _csv(tmp_path: Path, stamps: list[str], formats: list[str]) -> CsvResults:
    path = tmp_path / "responses.csv"
    lines = ["Timestamp,Rating,Reference"]
    lines += [f"{stamp},4,t{index}" for index, stamp in enumerate(stamps)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CsvResults(
        path,
        timezone="UTC",
        encoding="utf-8",
        delimiter=",",
        timestamp_formats=formats,
        columns=COLUMNS,
        ratings=SCALE,
    )


@pytest.mark.parametrize("formats", [[], ["%Y/%m/%d %H:%M:%S"]])
@pytest.mark.parametrize("edge", EDGES)
def test_a_csv_time_with_format_characters_at_its_edges_is_the_time_it_shows(
    tmp_path: Path, edge: str, formats: list[str]
):
    stamps = [
        f"{edge}2026/09/27 15:00:00",
        f"2026/09/27 16:00:00{edge}",
        f"{edge}2026/09/27 17:00:00{edge}",
        "2026/09/27 18:00:00",
    ]
    batch = _csv(tmp_path, stamps, formats).fetch(set(), None)
    assert batch.skipped == []
    assert [s.submitted_at for s in batch.submissions] == [
        datetime(2026, 9, 27, hour, tzinfo=UTC) for hour in (15, 16, 17, 18)
    ]


def test_a_format_character_inside_a_csv_time_is_still_a_bad_timestamp(tmp_path: Path):
    stamps = ["2026/09/27 15:\u200b00:00", "2026/09/27 16:00:00"]
    batch = _csv(tmp_path, stamps, []).fetch(set(), None)
    assert [(s.ref, s.reason) for s in batch.skipped] == [("row 2", "bad_timestamp")]
    assert [s.submitted_at.hour for s in batch.submissions] == [16]


@pytest.mark.parametrize("edge", EDGES)
def test_a_sheets_text_time_with_format_characters_at_its_edges_is_the_time_it_shows(
    edge: str,
):
    header = ["Timestamp", "Rating", "Reference"]
    rows = [header, [f"{edge}2026-09-27 15:00:00{edge}", 5, "t1"], [46292.625, 4, "t2"]]
    batch = tab_source(rows, SCALE).fetch(set(), None)
    assert batch.skipped == []
    assert [s.submitted_at for s in batch.submissions] == [
        datetime(2026, 9, 27, 15, tzinfo=UTC),
        datetime(2026, 9, 27, 15, tzinfo=UTC),
    ]


def test_the_reader_alone_reads_through_edge_format_characters():
    reader = TimestampReader(UTC)
    assert reader.parse("\ufeff2026-09-27T15:00:00Z\u200b") == datetime(2026, 9, 27, 15, tzinfo=UTC)


def test_a_sync_credits_an_answer_whose_typed_time_ends_in_a_zero_width_space(kit):
    """End to end: the row is an answer of its agent, not a skipped bad_timestamp."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, ["2026-09-27 15:00:00\u200b", 5, "", "", "", token]])
    result = kit.run()
    assert (result.status, result.new, result.skipped) == ("ok", 1, {})
    assert [(a.agent_key, a.rating) for a in kit.rows(answers)] == [("7", 5)]


@pytest.mark.parametrize("cell", ["\u200b", "\ufeff\u200e", " \u2060 "])
def test_a_time_cell_of_format_characters_alone_is_a_missing_timestamp(tmp_path: Path, cell):
    """As a rating cell of nothing else is blank: nothing readable was typed."""
    batch = _csv(tmp_path, [cell, "2026/09/27 16:00:00"], []).fetch(set(), None)
    assert [(s.ref, s.reason) for s in batch.skipped] == [("row 2", "missing_timestamp")]
    assert [s.submitted_at.hour for s in batch.submissions] == [16]
