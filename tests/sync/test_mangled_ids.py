"""Ticket ids a spreadsheet program mangled in a CSV export (opened and saved in Excel): a
long number shown rounded in scientific notation (``1.23457E+18``) or to 15 significant
digits, leading zeros dropped. The answer is credited by its signed reference, never by the
ticket field: it goes to the survey the reference names, whatever the field holds. A field
that is such a rendering of the signed ticket id is no edit by the respondent; one rounded
beyond recovery is named in the run's warnings by its row and the ticket column."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from csat_hook.db.schema import answers
from csat_hook.db.text import spreadsheet_rendering
from tests.sync.conftest import EN_HEADER
from tests.sync.test_double_click import Export

LONG = "1234567890123456789"
T = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "dialog", "rendering"),
    [
        ("1.23457E+18", LONG, "rounded"),
        ("1,23457E+18", LONG, "rounded"),  # a comma-decimal locale
        ("1.23457e+18", LONG, "rounded"),
        ("1.2346E+18", LONG, "rounded"),
        ("1E+18", "1000000000000000001", "rounded"),
        ("1234567890123450000", LONG, "rounded"),  # 15 digits kept, the rest zeros
        ("1234567890123460000", LONG, "rounded"),
        ("1234567890123456768", LONG, "rounded"),  # a sheet's number: a double
        ("123", "00123", "zeros"),
        ("1.23458E+18", LONG, None),  # another number
        ("1.23457E+17", LONG, None),
        ("1234567890123450001", LONG, None),
        ("1234567890123455780", LONG, None),  # neither at 15 digits nor the same double
        ("0123", "00123", "zeros"),
        ("124", "00123", None),
        ("1.23457E+18", "T-1", None),
        ("", LONG, None),
        ("1.2E+3", "1200", None),  # shown whole: an edit
        ("1.2E+11", "120000000000", "rounded"),
        ("2E+18", "1000000000000000001", None),
        ("1E+18", "1500000000000000000", None),
        ("1E+18", "1999999999999999999", None),
    ],
)
def test_a_spreadsheet_programs_rendering_of_a_numeric_id(field, dialog, rendering):
    assert spreadsheet_rendering(field, dialog) == rendering


def test_mangled_ticket_ids_credit_by_the_reference_and_are_reported(kit, tmp_path: Path):
    """Three surveys whose ticket fields Excel mangled, and one whose field names another
    survey's ticket (an edit): each answer goes to the survey its reference names; the
    mangled fields are no edit, the one rounded beyond recovery is reported by row and
    column."""
    long_one = kit.survey(LONG, "7", "Anna")
    other = kit.survey("1234567890123456700", "8", "Boris")
    zeros = kit.survey("00123", "7", "Anna")
    edited = kit.survey("555", "8", "Boris")
    export = Export(kit, tmp_path)
    export.write(
        [
            [T, 5, "a", "Anna", "1.23457E+18", long_one],
            [T, 3, "b", "Boris", "1.23457E+18", other],  # the same rounding: its own survey
            [T, 4, "c", "Anna", "123", zeros],
            [T, 2, "d", "Boris", "123", edited],
        ]
    )
    summary = kit.run(export.config)
    assert summary.status == "ok", summary.error
    got = {r.dialog_id: (r.rating, r.source_ref, r.fields_edited) for r in kit.rows(answers)}
    assert got == {
        LONG: (5, "row 2", False),
        "1234567890123456700": (3, "row 3", False),
        "00123": (4, "row 4", False),
        "555": (2, "row 5", True),
    }
    assert summary.edited_fields == 1
    rounded = [w for w in summary.warnings if "rounded" in w]
    assert len(rounded) == 2
    assert rounded[0].startswith("row 2: the Ticket column")
    assert rounded[1].startswith("row 3: the Ticket column")
    assert not any(w.startswith(("row 4", "row 5")) for w in summary.warnings)


def test_a_sheets_number_cell_holding_a_long_ticket_id_is_no_edit(kit):
    """The form's responses sheet stores a long numeric ticket id as a number (a double):
    read back it is 1234567890123456768, no edit, credited by the reference and reported."""
    survey = kit.survey(LONG, "7", "Anna")
    kit.responses([EN_HEADER, [T, 5, "a", "Anna", float(LONG), survey]])
    summary = kit.run()
    assert summary.status == "ok", summary.error
    got = [(r.dialog_id, r.field_ticket, r.fields_edited) for r in kit.rows(answers)]
    assert got == [(LONG, "1234567890123456768", False)]
    assert summary.edited_fields == 0
    assert [w[:25] for w in summary.warnings if "rounded" in w] == ["row 2: the Ticket column "]
