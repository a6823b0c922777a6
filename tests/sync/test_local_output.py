"""Local outputs: xlsx with forced text cells, CSV neutralised against formula injection."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from csat_hook.sync.outputs.local import neutralize
from csat_hook.sync.outputs.local import write_csv
from csat_hook.sync.outputs.local import write_xlsx
from csat_hook.sync.report import Table
from csat_hook.sync.titles import agent_title
from csat_hook.sync.titles import table_titles

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
    table = Table(
        "Anna Petrova",
        "agent",
        [["Comment", "Rating"], *[[v, 5] for v in EVIL], ["bell\x07 and nul\x00 dropped", 1]],
        key="7",
    )
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [table])

    sheet = load_workbook(path)["Anna Petrova (7)"]
    values = [(c.value, c.data_type) for c in sheet["A"][1:]]
    # XML turns a bare carriage return into a newline; the cell is text either way.
    assert values[: len(EVIL)] == [(v.replace("\r", "\n"), "s") for v in EVIL]
    assert values[-1] == ("bell and nul dropped", "s")
    assert [c.value for c in sheet["B"][1:3]] == [5, 5] and sheet["B"][1].data_type == "n"


def test_csv_neutralises_injection_per_owasp(tmp_path: Path):
    table = Table("Answers", "answers", [["Comment", "Rating"], *[[v, -1] for v in EVIL]])
    path = tmp_path / "answers.csv"
    write_csv(path, table)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    comments = [r[0] for r in rows[1:]]
    assert comments[:6] == ["'" + v for v in EVIL[:6]]
    assert comments[6:] == EVIL[6:]
    assert all(r[1] == "-1" for r in rows[1:])  # numbers stay numbers
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads Cyrillic
    assert neutralize(None) == "" and neutralize(4.5) == 4.5


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
