"""Local outputs: xlsx with forced text cells, number formats, conditional formats and charts;
CSV neutralised against formula injection, with readable numbers."""

from __future__ import annotations

import csv
import enum
import io
import math
import re
import warnings
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import Table
from csat_hook.sync.outputs.local import neutralize
from csat_hook.sync.outputs.local import shown
from csat_hook.sync.outputs.local import write_csv
from csat_hook.sync.outputs.local import write_xlsx
from csat_hook.sync.outputs.sheets_format import _conditions
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import XLSX_MAX
from csat_hook.sync.titles import agent_title
from csat_hook.sync.titles import table_titles
from csat_hook.sync.titles import tag

EVIL = [
    '=HYPERLINK("https://evil.example","x")',
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "plain",
    "Ünïcödé, кириллица",
]


def test_xlsx_keeps_formula_like_text_as_text(tmp_path: Path):
    grid = Grid(
        "Anna Petrova",
        "agent",
        [["Comment", "Rating"], *[[v, 5] for v in EVIL], ["bell\x07 and nul\x00 dropped", 1]],
        key="7",
    )
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [grid], Texts("en"))

    sheet = load_workbook(path)["Anna Petrova (7)"]
    values = [(c.value, c.data_type) for c in sheet["A"][1:]]
    # XML turns a bare carriage return into a newline; the cell is text either way.
    assert values[: len(EVIL)] == [(v.replace("\r", "\n"), "s") for v in EVIL]
    assert values[-1] == ("bell and nul dropped", "s")
    assert [c.value for c in sheet["B"][1:3]] == [5, 5] and sheet["B"][1].data_type == "n"


def test_xlsx_opens_whatever_the_text_holds(tmp_path: Path):
    """XML 1.0 has no U+FFFE nor U+FFFF (https://www.w3.org/TR/xml/#charsets), which openpyxl
    writes as they are: a comment or an agent's name holding one made a workbook that is not
    well-formed (Excel: damaged; openpyxl could not read it back). An Excel cell holds 32,767
    characters ("Excel specifications and limits", KB 211878; UTF-16 units): a longer comment
    is cut, "…" marking the cut."""
    long_text, emoji = "x" * 40_000, "\U0001f621" * 20_000
    rows = [["Comment"], ["a\ufffeb\uffffc"], [long_text], [emoji]]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [Grid("Anna\uffff", "agent", rows, key="7")], Texts("en"))

    sheet = load_workbook(path)["Anna (7)"]
    assert [c.value for c in sheet["A"][1:]] == [
        "abc",
        "x" * 32_766 + "…",
        "\U0001f621" * 16_383 + "…",  # 32,766 UTF-16 units and the ellipsis
    ]


def test_csv_neutralises_injection_per_owasp(tmp_path: Path):
    table = Table([Column("Comment"), Column("Rating", Fmt.COUNT)], [[v, -1] for v in EVIL])
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    comments = [r[0] for r in rows[1:]]
    # A tab or a carriage return is where a reader may start a cell too: the sign after it
    # gets its apostrophe (test_csv_holds_no_formula_wherever_a_reader_starts_a_cell).
    assert comments[:6] == [
        "'" + v.replace("=", "'=") if v[0] in "\t\r" else "'" + v for v in EVIL[:6]
    ]
    assert comments[6:] == EVIL[6:]
    assert all(r[1] == "-1" for r in rows[1:])  # numbers stay numbers
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads Cyrillic
    assert neutralize(None) == "" and neutralize(4.5) == 4.5


def test_csv_neutralises_a_sign_behind_a_lone_surrogate_the_file_leaves_out(tmp_path: Path):
    """UTF-8 cannot hold a lone surrogate (a YAML text's "\\ud800", a JSON one): the file
    leaves it out, so a sign behind it is the cell's first character as a spreadsheet reads
    it."""
    evil = ["\ud800=1+1", "\udfff@SUM(A1)", "\ud800\ud800-2+3", "\udc00\uff1d1", "\ud800\t=1"]
    table = Table([Column("\ud800=HYPERLINK(1)")], [[v] for v in [*evil, "\ud800plain"]])
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        cells = [r[0] for r in csv.reader(handle)]
    assert cells == [
        "'=HYPERLINK(1)",
        "'=1+1",
        "'@SUM(A1)",
        "'-2+3",
        "'\uff1d1",
        "'\t'=1",
        "plain",
    ]


def test_csv_neutralises_full_width_signs_and_a_leading_line_feed(tmp_path: Path):
    """Japanese Excel reads a full-width ＝ as =, and Apple Numbers normalises ＝ ＋ － ＠
    to their ASCII forms before it decides whether a cell is a formula (OWASP www-community
    #1088, adaltas/node-csv#387); the OWASP testing guide lists a line feed beside the tab
    and the carriage return."""
    evil = ['＝HYPERLINK("https://evil.example","x")', "＋1+2", "－2+3", "＠SUM(A1)", "\n=1"]
    table = Table([Column("Comment")], [[v] for v in evil])
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        comments = [r[0] for r in list(csv.reader(handle))[1:]]
    assert comments == ["'" + v for v in evil[:4]] + ["'\n'=1"]
    assert neutralize("a ＝ b") == "a ＝ b"


def test_csv_neutralises_every_sign_that_normalisation_makes_a_formula_sign(tmp_path: Path):
    """The full-width ＝ ＋ － ＠ are neutralised because Apple Numbers folds them to ASCII
    before it decides whether a cell is a formula (adaltas/node-csv#387): a compatibility
    mapping (NFKC), which folds the small forms ﹦ ﹢ ﹣ ﹫, the superscript and subscript
    ⁼ ⁺ ₌ ₊, ⩵ ⩶ and the Hebrew alternative plus to the same signs. A sign that no such
    mapping makes one (the minus sign U+2212) is left as it is."""
    signs = "\ufe66\ufe62\ufe63\ufe6b\u207c\u207a\u208c\u208a\u2a75\u2a76\ufb29"
    evil = [f'{sign}HYPERLINK("https://evil.example","x")' for sign in signs]
    table = Table([Column("Comment")], [[v] for v in [*evil, "é=1", "\u2212 1"]])
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        comments = [r[0] for r in list(csv.reader(handle))[1:]]
    assert comments == [*("'" + v for v in evil), "é=1", "\u2212 1"]


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_csv_holds_no_formula_wherever_a_reader_starts_a_cell(tmp_path: Path, separator: str):
    """Excel opens a .csv with the system's list separator: ";" in Russian and German
    Windows (the comma is their decimal sign), and its import wizard offers a tab. A comment
    "ok;=1+1" was two cells there, the second a formula that ran; LibreOffice, told ";",
    splits a quoted "ok;=1+1" as well (``table:formula="of:=1+1"``), and a line break starts
    a row. OWASP's CSV Injection page warns of the separator starting a cell mid-input: a
    sign after a ";", a tab or a line break gets its apostrophe as a sign first does."""
    evil = [
        "ok;=1+1",
        "ok;=1+1;",
        "a\t=1+1",
        "\t=1",
        "line\r\n@SUM(A1)",
        'b;＝HYPERLINK("https://evil.example")',
        "c;\ud800-2+3",
        "fine; - then",
    ]
    table = Table(
        [Column("Comment"), Column("CSAT", Fmt.PERCENT, csv_header="CSAT (%)")],
        [[v, 0.853] for v in evil],
    )
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    text = path.read_text(encoding="utf-8-sig")
    # Every cell a reader splitting on the separator (and on line breaks, quotes or not) sees.
    cells = [c for line in text.splitlines() for c in line.split(separator)]
    cells += [c for r in csv.reader(io.StringIO(text, newline=""), delimiter=separator) for c in r]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "＝"))]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        comments = [r[0] for r in list(csv.reader(handle))[1:]]
    assert comments == [
        "ok;'=1+1",
        "ok;'=1+1;",
        "a\t'=1+1",
        "'\t'=1",
        "line\r\n'@SUM(A1)",
        'b;\'＝HYPERLINK("https://evil.example")',
        "c;'-2+3",
        "fine; - then",
    ]
    assert neutralize("a;b\n=c") == "a;b\n'=c"
    # Every character that folds to a sign is where the row's quick look finds it.
    folding = [
        chr(c)
        for c in range(0x80, 0x110000)
        if not 0xD800 <= c < 0xE000 and neutralize(chr(c)).startswith("'")
    ]
    assert len(folding) > 10
    assert all(0x2000 <= ord(c) < 0x3000 or 0xF000 <= ord(c) < 0x10000 for c in folding)


def test_titles_are_unique_short_and_clean():
    assert agent_title("Anna: [Team]/Lead?*", "7", 100) == "Anna Team Lead (7)"
    long = agent_title("Very Long Name " * 10, "agent-key-123", 31)
    assert len(long) <= 31 and long.endswith("(agent-key-123)")
    assert agent_title("anna@example.com", "anna@example.com", 100) == "anna@example.com"
    titles = table_titles(
        [("Summary", None), ("Anna", "1"), ("ANNA", "1"), ("anna", "1")], 31, taken=["summary"]
    )
    assert titles == ["Summary 2", "Anna (1)", "ANNA (1) 2", "anna (1) 3"]
    assert len({t.casefold() for t in titles}) == 4
    assert table_titles([("'quoted'", None)], 100) == ["quoted"]


@pytest.mark.parametrize(
    ("name", "key", "limit", "title"),
    [
        # A name-only agent whose name starts with spaced apostrophes: " 'Anna" was its title.
        ("' ' 'Anna", "' ' 'Anna", 100, "Anna"),
        ("' ' 'Anna", "7", 100, "Anna (7)"),
        # Cut where an apostrophe follows a space: "…aaa " (a space last) was the title.
        ("a" * 29 + " '" + "b" * 5, None, 31, "a" * 29),
        ("x" * 27 + " ' '" + "y", None, 31, "x" * 27),
    ],
)
def test_a_title_neither_starts_nor_ends_with_a_space_or_an_apostrophe(name, key, limit, title):
    """Excel refuses an apostrophe first or last; a space there is invisible, so two tabs
    would look alike (and a reference to the tab must type it). The apostrophes stripped
    from a title's ends left the space before or after them there."""
    assert table_titles([(name, key)], limit) == [title]


def test_a_title_holds_no_bidi_control_that_would_move_the_key():
    """An agent named "\\u202e)7( annA" (RIGHT-TO-LEFT OVERRIDE, then the text reversed) had
    the tab "\\u202e)7( annA (9)", which a tab bar shows as "(9) Anna (7)": the key that
    tells agents apart shown beside someone else's. Overrides, embeddings, isolates and
    directional marks are dropped from titles; right-to-left names still read right to left
    without them."""
    assert agent_title("\u202e)7( annA", "9", 100) == ")7( annA (9)"
    assert agent_title("An\u2067na\u2069 \u200fP\u202a\u202c", "9\u202e", 31) == "Anna P (9)"
    assert agent_title("שרה כהן", "12", 100) == "שרה כהן (12)"


def test_the_reports_own_tabs_keep_their_titles_whatever_an_agent_is_called():
    """Agents' tabs come before Unverified and Alerts: an agent titled like one took it."""
    names = [("Summary", None), ("unverified", "unverified"), ("Unverified", None)]
    assert table_titles(names, 31) == ["Summary", "unverified 2", "Unverified"]


def test_titles_count_utf16_units_as_excel_does(tmp_path: Path):
    """Excel's 31-character limit on sheet names counts UTF-16 code units (an emoji is two):
    an agent named with emoji got a title of 31 code points and up to 62 units, and Excel
    reports such a workbook damaged (randym/axlsx#588; caxlsx/caxlsx#70 counts UTF-16)."""
    grids = [Grid("\U0001f338" * 40, "agent", [["x"]], key="7") for _ in range(2)]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, grids, Texts("en"))

    names = load_workbook(path).sheetnames
    assert names == ["\U0001f338" * 13 + " (7)", "\U0001f338" * 13 + " (7 2"]
    assert [len(n.encode("utf-16-le")) // 2 for n in names] == [30, 31]
    # A key too long to fit whole is cut between emoji, a tag made from it at the end.
    title = agent_title("Анна", "\U0001f338" * 20, XLSX_MAX)
    assert title == "Анна (" + "\U0001f338" * 9 + "… #" + tag("\U0001f338" * 20)
    assert len(title.encode("utf-16-le")) // 2 == 31


# What Excel refuses in a sheet name ("Rename a worksheet", support.microsoft.com): blank,
# more than 31 characters (UTF-16 units), any of []:*?/\\, an apostrophe first or last, the
# name "History" (reserved: Excel reports the workbook damaged and renames the sheet), and a
# name another sheet has, compared case-insensitively.
def excel_refuses(names: list[str]) -> list[str]:
    problems = []
    for name in names:
        size = len(name.encode("utf-16-le", "surrogatepass")) // 2
        if not 1 <= size <= 31:
            problems.append(f"{name!r}: {size} units")
        if any(c in name for c in "[]:*?/\\") or name[:1] == "'" or name[-1:] == "'":
            problems.append(f"{name!r}: a forbidden character")
        if name.casefold() == "history":
            problems.append(f"{name!r}: reserved")
    if len({n.casefold() for n in names}) != len(names):
        problems.append(f"duplicates in {names}")
    return problems


def test_no_sheet_is_named_history_which_excel_reserves(tmp_path: Path):
    """openpyxl writes a sheet called "History" (any case) as it does any other, and Excel
    then calls the workbook damaged: an agent of that name (a shared account whose key is
    its name), one whose name cleans to it, or a tab titled so, each got one."""
    grids = [
        Grid("History", "summary", [["x"]]),
        Grid("history", "agent", [["x"]], key="history"),
        Grid("[HISTORY]", "agent", [["x"]], key="'History'"),
        Grid("Anna", "agent", [["x"]], key="History"),
    ]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, grids, Texts("en"))

    names = load_workbook(path).sheetnames
    assert excel_refuses(names) == [], names
    # The two agents whose titles clean to one are told apart by their tags (titles.distinct).
    assert names[:4] == [
        "History 2",
        f"history #{tag('history')}",
        "History #" + tag("'History'"),
        "Anna (History)",
    ]


def test_the_titles_excel_is_given_keep_every_rule_whatever_the_names(tmp_path: Path):
    names = [
        ("", None),
        ("'", "'"),
        ("''quoted''", "'key'"),
        ("History", None),
        ("\U0001f338" * 40, "\U0001f338" * 40),
        ("Straße", "1"),
        ("STRASSE", "1"),
        ("Анна", "Анна"),
        ("АННА", "анна"),
        ("a" * 29 + "'" + "b", None),
        ("a" * 30 + "'", None),
        ("x" * 30 + "\U0001f338", None),
    ]
    grids = [
        Grid(name, "summary" if key is None else "agent", [["x"]], key=key) for name, key in names
    ]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, grids, Texts("en"))

    written = load_workbook(path).sheetnames
    assert excel_refuses(written) == [], written


def test_google_sheets_keeps_a_tab_called_history():
    # Only Excel reserves it: the Sheets titles are not changed.
    assert table_titles([("History", None), ("history", "history")], 100) == [
        "History",
        "history 2",
    ]


def test_csv_holds_readable_numbers(tmp_path: Path):
    table = Table(
        [
            Column("When", Fmt.DATETIME),
            Column("CSAT", Fmt.PERCENT, csv_header="CSAT (%)"),
            Column("Change", Fmt.POINTS, csv_header="Change (pp)"),
            Column("Rank", Fmt.COUNT),
        ],
        [[datetime(2026, 11, 18, 9, 5), 0.85294, 5.24, "2="], [None, None, None, "-x"]],
    )
    write_csv(tmp_path / "s.csv", table)
    rows = list(csv.reader((tmp_path / "s.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rows == [
        ["When", "CSAT (%)", "Change (pp)", "Rank"],
        ["2026-11-18 09:05", "85.3", "5.2", "2="],
        ["", "", "", "'-x"],
    ]


def test_csv_shows_any_kind_of_number_as_a_spreadsheet_would(tmp_path: Path):
    """A percent, points or mean cell may hold a numpy float (whose repr is not a number), an
    int subclass, a Decimal or a float too large for Decimal's default 28 digits: each is
    shown as its float, rounded as a spreadsheet shows it, never an error that fails the run."""

    class Level(enum.IntEnum):
        SEVEN = 7

    values = [
        (np.float64(0.4355), Fmt.PERCENT, "43.6"),
        (Level.SEVEN, Fmt.MEAN, "7.0"),
        (Decimal("2.25"), Fmt.POINTS, "2.3"),  # halves away from zero (round() says 2.2)
        (Decimal("0.125"), Fmt.MEAN, "0.13"),
        (1e300, Fmt.PERCENT, "1e+302"),
        (-1.7976931348623157e308, Fmt.MEAN, "-1.7976931348623157e+308"),
        (math.inf, Fmt.PERCENT, "inf"),
    ]
    table = Table(
        [Column(f"c{i}", fmt) for i, (_, fmt, _) in enumerate(values)],
        [[value for value, _, _ in values]],
    )
    write_csv(tmp_path / "n.csv", table)
    rows = list(csv.reader((tmp_path / "n.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1] == [shown for _, _, shown in values]


def test_xlsx_numbers_with_formats_rules_and_a_chart(tmp_path: Path):
    """Fractions stay fractions under a percent format, date-times are date-times, panes are
    frozen, rules and the chart with its interval are there (read back with openpyxl)."""
    rows = [
        ["Agent", "CSAT", "95% low", "95% high", "When"],
        ["Anna", 0.9, 0.8, 0.95, datetime(2026, 11, 18, 9, 5)],
        ["Boris", 0.6, 0.4, 0.75, datetime(2026, 11, 17, 9, 5)],
    ]
    grid = Grid("Summary", "summary", rows, frozen_rows=1, frozen_cols=1, widths=[20, 9, 9, 9, 17])
    grid.formats += [(Area(1, 1, 3, 4), Fmt.PERCENT), (Area(1, 4, 3, 5), Fmt.DATETIME)]
    grid.rules.append(Rule(RuleKind.TARGET, Area(1, 1, 3, 2), 0.85))
    grid.charts.append(Chart(BARS, "CSAT by agent", (4, 0), 0, 3, 0, 1, 2, 3, axis_title="CSAT"))
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [grid], Texts("ru"))

    sheet = load_workbook(path)["Summary"]
    assert sheet.freeze_panes == "B2"
    assert (sheet["B2"].value, sheet["B2"].number_format) == (0.9, "0.0%")
    assert sheet["E2"].value == datetime(2026, 11, 18, 9, 5)
    assert sheet["E2"].number_format == "dd.mm.yyyy hh:mm"  # the Russian pattern
    assert sheet.column_dimensions["A"].width == 21
    [(cells, rules)] = [(str(cf.sqref), cf.rules) for cf in sheet.conditional_formatting]
    assert cells == "B2:B3"
    assert [r.formula for r in rules] == [
        ["AND(ISNUMBER(B2),B2<0.8495)"],  # what shows 85.0% (0.1%) or more
        ["AND(ISNUMBER(B2),B2>=0.8495)"],
    ]
    [chart] = sheet._charts
    bars = chart.series[0].errBars
    assert (bars.errValType, bars.minus.numRef.f, bars.plus.numRef.f) == (
        "cust",
        "'Summary'!$F$2:$F$3",
        "'Summary'!$G$2:$G$3",
    )
    # The amounts below and above each bar, in hidden columns right of the grid.
    assert [sheet["F2"].value, sheet["G2"].value] == [pytest.approx(0.1), pytest.approx(0.05)]
    assert sheet.column_dimensions["F"].hidden and sheet.column_dimensions["G"].hidden


def test_report_files_and_their_folder_are_owner_only_whatever_the_umask(tmp_path):
    import os
    import stat

    table = Table([Column("Submitted"), Column("Comment")], [["2026-11-20", "a comment"]])
    old = os.umask(0o022)
    try:
        write_csv(tmp_path / "report" / "answers.csv", table)
    finally:
        os.umask(old)
    folder, file = tmp_path / "report", tmp_path / "report" / "answers.csv"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_csv_rounds_a_figure_as_the_spreadsheet_shows_its_cell(tmp_path: Path):
    # The Wilson interval of 45 satisfied answers out of 83 starts at 43.550043%: the cell
    # holds 0.4355 and Sheets and Excel show 43.6% ("0.0%"); 100 × 0.4355 is
    # 43.549999… in binary, which round() made 43.5. Halves go away from zero, as there.
    table = Table(
        [
            Column("Low", Fmt.PERCENT, csv_header="Low (%)"),
            Column("Change", Fmt.POINTS, csv_header="Change (pp)"),
            Column("Mean", Fmt.MEAN),
        ],
        [[0.4355, -9.25, 3.125], [0.1235, 0.05, 4.005]],
    )
    write_csv(tmp_path / "r.csv", table)
    rows = list(csv.reader((tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1:] == [["43.6", "-9.3", "3.13"], ["12.4", "0.1", "4.01"]]


def test_chart_ranges_name_a_sheet_whose_title_holds_an_apostrophe(tmp_path: Path):
    """``output.gsheets.summary_tab: "Team's CSAT"``: the chart's ranges must name that sheet,
    its apostrophe doubled once (``'Team''s CSAT'!``). openpyxl's Reference, given the
    quoted range as text, keeps the doubled apostrophe as part of the name and doubles it
    again: the series pointed at a sheet "Team''s CSAT" that does not exist (an empty chart)."""
    rows = [
        ["Agent", "CSAT", "95% low", "95% high"],
        ["Anna", 0.9, 0.8, 0.95],
        ["Boris", 0.6, 0.4, 0.75],
    ]
    grid = Grid("Team's CSAT", "summary", rows)
    grid.charts.append(Chart(BARS, "CSAT by agent", (4, 0), 0, 3, 0, 1, 2, 3, axis_title="CSAT"))
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [grid], Texts("en"))

    sheet = load_workbook(path)["Team's CSAT"]
    [chart] = sheet._charts
    [series] = chart.series
    assert series.tx.strRef.f == "'Team''s CSAT'!B1"
    assert series.val.numRef.f == "'Team''s CSAT'!$B$2:$B$3"
    assert series.cat.strRef.f == "'Team''s CSAT'!$A$2:$A$3"
    assert (series.errBars.minus.numRef.f, series.errBars.plus.numRef.f) == (
        "'Team''s CSAT'!$E$2:$E$3",
        "'Team''s CSAT'!$F$2:$F$3",
    )


def test_agents_whose_long_keys_share_a_start_get_titles_that_tell_them_apart(tmp_path: Path):
    """Excel holds 31 characters a sheet name: two agents whose keys (e-mails, a shared
    account's name) are longer and start alike were both cut to the same start, the second
    told apart only by " 2", and which was whose depended on the order of the report. A key
    that does not fit whole now ends the title with a short tag made from the key, the same
    run after run."""
    agents = [
        ("customer.support.team.alice@example.com", "customer.support.team.alice@example.com"),
        ("customer.support.team.bob@example.com", "customer.support.team.bob@example.com"),
        ("Anna", "support-agent-0000000000000001"),
        ("Anna", "support-agent-0000000000000002"),
        ("Anna Petrova", "7"),
    ]

    def titles(order: list[tuple[str, str]]) -> dict[str, str]:
        grids = [Grid(name, "agent", [["x"]], key=key) for name, key in order]
        path = tmp_path / "r.xlsx"
        write_xlsx(path, grids, Texts("en"))
        names = load_workbook(path).sheetnames
        assert excel_refuses(names) == [], names
        return {key: name for (_, key), name in zip(order, names, strict=True)}

    first, reversed_ = titles(agents), titles(agents[::-1])

    assert first == reversed_  # stable: each agent's title whatever the order
    assert not any(name.endswith((" 2", " 3")) for name in first.values()), first
    assert first["7"] == "Anna Petrova (7)"  # a key that fits: as before
    alice = first["customer.support.team.alice@example.com"]
    assert alice.startswith("customer.support.team")
    assert len({name[-4:] for name in first.values()}) == len(first)  # the tags differ
    # Sheets (100 characters) cuts the same way past its limit, with the same tag.
    key = "k" * 120
    sheets = agent_title("Anna", key, 100)
    assert len(sheets) <= 100 and sheets[-4:] == agent_title("Anna", key, XLSX_MAX)[-4:]
    assert agent_title("Anna", "k" * 90, 100) == "Anna (" + "k" * 90 + ")"


def excel_shows(stored: str) -> str:
    """A string as Excel shows it: OOXML's ST_Xstring reads ``_xHHHH_`` as the character
    U+HHHH (ECMA-376 Part 1, 22.9.2.19); openpyxl reads it back as stored."""
    return re.sub("_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), stored)


def test_xlsx_text_that_looks_like_an_ooxml_escape_shows_as_typed(tmp_path: Path):
    """Excel reads ``_xHHHH_`` in a cell's text as the character U+HHHH; openpyxl writes the
    text as it is: a comment "my_x0041_var" showed as "myAvar", "_x003D_1+1" as "=1+1",
    "_x000D_" as a line break. The text is stored escaped (``_x005F_`` is the underscore),
    as XlsxWriter does, so Excel shows what the customer typed."""
    typed = ["my_x0041_var", "_x003D_HYPERLINK(1)", "a_X000d_b", "_x005F_", "_x12_ _xZZZZ_"]
    path = tmp_path / "r.xlsx"
    write_xlsx(
        path, [Grid("Anna", "agent", [["Comment"], *[[t] for t in typed]], key="7")], Texts("en")
    )

    sheet = load_workbook(path)["Anna (7)"]
    assert [excel_shows(c.value) for c in sheet["A"][1:]] == typed


def test_xlsx_sheet_names_that_look_like_an_ooxml_escape_show_as_typed(tmp_path: Path):
    """A sheet's name is an ST_Xstring too (ECMA-376 Part 1, 18.2.19 ``sheet@name``): an agent
    "my_x0041_var" had a sheet Excel showed as "myAvar (7)", and a tab "CSAT_x0020_board"
    one shown as "CSAT board". The name is stored escaped, as a cell's text is; the chart's
    ranges (plain strings, not escaped) name the sheet as Excel shows it, and the titles
    stay within Excel's 31 characters as shown, however long the escaped name is stored."""
    rows = [["Agent", "CSAT", "95% low", "95% high"], ["Anna", 0.9, 0.8, 0.95]]
    summary = Grid("CSAT_x0020_board", "summary", rows)
    summary.charts.append(Chart(BARS, "CSAT by agent", (4, 0), 0, 2, 0, 1, 2, 3, axis_title="%"))
    agents = [
        Grid("my_x0041_var", "agent", [["x"]], key="7"),
        Grid("_x0041__x0042__x0043_", "agent", [["x"]], key="8"),  # 39 characters escaped
    ]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [summary, *agents], Texts("en"))

    with warnings.catch_warnings():  # openpyxl counts the characters of a name as stored
        warnings.filterwarnings("ignore", "Title is more than 31 characters")
        workbook = load_workbook(path)
    shown = [excel_shows(name) for name in workbook.sheetnames]
    assert shown == ["CSAT_x0020_board", "my_x0041_var (7)", "_x0041__x0042__x0043_ (8)"]
    assert excel_refuses(shown) == [], shown
    [chart] = workbook.worksheets[0]._charts
    assert chart.series[0].val.numRef.f == "'CSAT_x0020_board'!$B$2"


def test_a_lone_surrogate_is_left_out_of_a_csv_file(tmp_path: Path):
    table = Table([Column("Team"), Column("Comment")], [("North\ud800", "ok \udfff then")])
    write_csv(tmp_path / "summary.csv", table)
    assert (tmp_path / "summary.csv").read_bytes().decode("utf-8-sig").splitlines() == [
        "Team,Comment",
        "North,ok  then",
    ]


@pytest.mark.parametrize(
    ("target", "below", "at"),
    [
        (0.8, [0.7994999, 0.79949], [0.7996, 0.7995, 0.8, 0.81]),
        (0.85, [0.8494, 0.8494999], [0.8495, 0.84951, 0.85]),
        (0.8554, [0.8544, 0.8544999], [0.8545, 0.855]),  # the target shows 85.5%
        (1.0, [0.9994], [0.9995, 1.0]),
    ],
)
def test_the_target_colour_agrees_with_the_percent_shown(tmp_path: Path, target, below, at):
    """A CSAT of 0.7996 shows 80.0%: coloured green against an 80% target in the workbook and
    in Sheets alike (it was red: the rules compared the unrounded number). Each rule's
    threshold is checked against the percent a spreadsheet shows for the cell."""
    rows = [["CSAT"], *[[v] for v in below + at]]
    grid = Grid("Summary", "summary", rows)
    grid.formats.append((Area(1, 0, len(rows), 1), Fmt.PERCENT))
    rule = Rule(RuleKind.TARGET, Area(1, 0, len(rows), 1), target)
    grid.rules.append(rule)
    write_xlsx(tmp_path / "r.xlsx", [grid], Texts("en"))
    sheet = load_workbook(tmp_path / "r.xlsx")["Summary"]
    [cf] = list(sheet.conditional_formatting)
    red, green = (
        [re.fullmatch(r"AND\(ISNUMBER\(A2\),A2(<|>=)(.+)\)", f) for f in r.formula]
        for r in cf.rules
    )
    [xlsx_red], [xlsx_green] = red, green
    assert xlsx_red and xlsx_green and xlsx_red[2] == xlsx_green[2]
    (sheets_red, _), (sheets_green, _) = _conditions(rule)
    ratio = re.fullmatch(r"=ISNUMBER\(A2\)\*\(A2<(\d+)(?:/(\d+))?\)", sheets_red)
    assert ratio and sheets_green == sheets_red.replace("<", ">=")
    sheets_threshold = float(ratio[1]) / float(ratio[2] or 1)  # as Sheets divides
    target_shown = shown(target, 1, scale=100)
    for threshold in (float(xlsx_red[2]), sheets_threshold):
        for value in below:
            assert shown(value, 1, scale=100) < target_shown and value < threshold, value
        for value in at:
            assert shown(value, 1, scale=100) >= target_shown and value >= threshold, value


def test_an_nps_just_below_zero_is_written_zero_in_the_spreadsheets_and_kept_in_the_csv():
    """An NPS (or an interval's end) between -0.5 and 0 showed '-0' under '+0;-0;0' in Sheets
    and Excel: a format's section goes by the value, not by how it rounds. (This test said the
    '-0' stayed, documented; a report now never shows a signed zero.) The grid the
    spreadsheets show holds 0; the score itself and the CSV's one decimal keep -0.3, and
    docs/sync.md says so."""
    from csat_hook.sync.layout import Canvas
    from csat_hook.sync.outputs import sheets_format
    from csat_hook.sync.outputs import xlsx
    from csat_hook.sync.outputs.local import csv_value
    from csat_hook.sync.report.common import score

    texts = Texts("en")
    assert xlsx.number_formats(texts)[Fmt.SCORE] == "+0;-0;0"
    assert sheets_format.number_formats(texts)[Fmt.SCORE]["pattern"] == "+0;-0;0"
    assert score(-0.003) == -0.3 and csv_value(score(-0.003), Fmt.SCORE) == -0.3
    grid = Grid("Summary", "summary")
    Canvas(grid).table(Table([Column("NPS", Fmt.SCORE)], [[score(-0.003)]]))
    assert grid.rows[1] == [0.0]
    docs = (Path(__file__).parents[2] / "docs" / "sync.md").read_text(encoding="utf-8")
    assert "an NPS between −0.5 and +0.5 and a difference under\n0.05 pp" in docs
