"""``csat-hook dev fake-google --responses-csv``: a Forms export seeded into the fake's
responses tab as Forms would have written it there."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.devtools import fake_google
from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.devtools.fake_google import SeedError
from csat_hook.devtools.fake_google import seed_from_csv
from csat_hook.devtools.sheets_model import DateTimeCell

HEADER = "Timestamp,Rating,Comment,Agent,Ticket,Reference\n"


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    made = FakeGoogle()
    yield made
    made.server.server_close()


def serial(fake: FakeGoogle, when: datetime) -> DateTimeCell:
    return DateTimeCell(fake.spreadsheets["s"].serial(when))


def test_a_timestamp_without_a_zone_is_the_spreadsheets_local_time(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    """Forms writes an export's timestamps and the responses sheet's in the same zone: a
    zone-less one is read in the spreadsheet's (``--time-zone``), not in UTC, so the tab
    shows the time the export shows."""
    path = tmp_path / "responses.csv"
    path.write_text(
        HEADER + "2026/11/02 12:42:00 PM,4,fine,,,\n2026/11/02 12:42:00 PM GMT,5,ok,,,\n",
        encoding="utf-8",
    )
    fake.add_spreadsheet("s", time_zone="Europe/Moscow")
    assert seed_from_csv(fake, "s", "Form Responses 1", 0, path) == 2
    cells = fake.tab("s", "Form Responses 1").cells
    assert cells[1][0] == serial(fake, datetime(2026, 11, 2, 9, 42, tzinfo=UTC))  # 12:42 MSK
    assert cells[2][0] == serial(fake, datetime(2026, 11, 2, 12, 42, tzinfo=UTC))  # as written


def test_a_cell_over_the_csv_modules_default_limit_is_seeded(
    fake: FakeGoogle, tmp_path: Path
) -> None:
    long_comment = "x" * 200_000  # over csv's default field size limit, 131,072
    path = tmp_path / "responses.csv"
    path.write_text(HEADER + f"2026/11/02 12:42:00 PM GMT,4,{long_comment},,,\n", "utf-8")
    fake.add_spreadsheet("s")
    assert seed_from_csv(fake, "s", "Form Responses 1", 0, path) == 1
    assert fake.tab("s", "Form Responses 1").cells[1][2] == long_comment


def test_a_file_that_is_not_utf_8_says_which_and_where(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_bytes(
        HEADER.encode() + b"2026/11/02 12:42:00 PM GMT,4,ok,,,\n" + b"x,4,\xff\xfe,,,\n"
    )
    with seeding() as fake, pytest.raises(SeedError, match=r"row 3.*not UTF-8") as raised:
        seed_from_csv(fake, "s", "Form Responses 1", 0, path)
    assert str(path) in str(raised.value)


def test_a_cell_over_the_bound_says_which_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The csv module's limit is raised to the file's length, at most ``FIELD_LIMIT_MAX``
    characters (its largest on every platform): a longer cell is refused by row."""
    monkeypatch.setattr(fake_google, "FIELD_LIMIT_MAX", 100)
    before = csv.field_size_limit(50)  # process-wide: as if no file had raised it yet
    request.addfinalizer(lambda: csv.field_size_limit(before))
    path = tmp_path / "responses.csv"
    path.write_text(HEADER + "2026/11/02 12:42:00 PM GMT,4," + "x" * 200 + ",,,\n", "utf-8")
    with seeding() as fake, pytest.raises(SeedError, match="row 2") as raised:
        seed_from_csv(fake, "s", "Form Responses 1", 0, path)
    assert str(path) in str(raised.value)


@contextlib.contextmanager
def seeding() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    fake.add_spreadsheet("s")
    try:
        yield fake
    finally:
        fake.server.server_close()


def test_the_command_refuses_a_file_it_cannot_seed_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_bytes(HEADER.encode() + b"2026/11/02 12:42:00 PM GMT,4,\xff,,,\n")
    args = ["dev", "fake-google", "--port", "0", "--service-account-out", f"{tmp_path}/sa.json"]
    result = CliRunner().invoke(main, [*args, "--responses-csv", str(path)], env={})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Error: " in result.output and str(path) in result.output
    assert "row 2" in result.output and "Traceback" not in result.output
