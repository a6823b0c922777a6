"""Exports the project had not seen, checked from the outside: the figures in the local
report (``summary.csv``) equal an independent computation written here, and a run that does
not read something the operator asked for says so instead of reporting "ok" in silence."""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from csat_hook.config import Config
from tests.sync.conftest import NOW
from tests.sync.conftest import SyncKit

RU_HEADER = ["Отметка времени", "Оценка", "Комментарий", "Код ссылки"]
SENT = NOW - timedelta(days=2)


def write_export(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    preamble: str = "",
) -> None:
    """A CSV as a spreadsheet saves it: CRLF line ends, cells quoted where needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes((preamble + buffer.getvalue()).encode(encoding))


def csv_config(
    kit: SyncKit, export: Path, *, columns: dict[str, Any] | None = None, **options: Any
) -> Config:
    return kit.config(
        results={
            "source": "csv",
            "csv": {"path": str(export), "timezone": "Europe/Moscow", **options},
            "columns": columns or {},
        },
        output={"gsheets": {"enabled": False}, "local": {"enabled": True}},
    )


def summary_rows(kit: SyncKit) -> list[dict[str, str]]:
    text = (kit.tmp_path / "report" / "summary.csv").read_text("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def wilson(satisfied: int, n: int) -> tuple[float, float]:
    """The Wilson score interval (95%), written out here rather than imported."""
    z = 1.959963984540054
    p = satisfied / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def expected_cells(ratings: Sequence[int], top_box: int = 4) -> dict[str, str]:
    n = len(ratings)
    satisfied = sum(1 for r in ratings if r >= top_box)
    low, high = wilson(satisfied, n)
    return {
        "Answers": str(n),
        "CSAT (%)": f"{100 * satisfied / n:.1f}",
        "95% low (%)": f"{100 * low:.1f}",
        "95% high (%)": f"{100 * high:.1f}",
    }


def looks(name: str) -> str:
    """A name as a reader sees it on the leaderboard."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def test_agents_whose_names_only_look_alike_are_told_apart_by_their_key(
    kit: SyncKit, tmp_path: Path
):
    # Three agents called Семён Ёлкин: the name typed with composed ё, the same name pasted
    # with е + U+0308 (decomposed), and one with a double space. The leaderboard showed the
    # first without its key beside two keyed ones: two rows a reader could not tell apart.
    names = {"1": "Семён Ёлкин", "2": "Семе\u0308н Е\u0308лкин", "3": "Семён  Ёлкин"}
    given = {"1": [5, 5, 4, 2], "2": [5, 1, 1], "3": [4, 3]}
    rows = []
    for agent, ratings in given.items():
        for n, rating in enumerate(ratings):
            token = kit.survey(f"{agent}-{n}", agent, names[agent], created=SENT)
            rows.append([f"18.11.2026 15:{n:02d}:{agent}0", str(rating), "", token])
    export = tmp_path / "export.csv"
    write_export(export, RU_HEADER, rows, delimiter=";")
    summary = kit.run(csv_config(kit, export, delimiter=";"))
    assert (summary.status, summary.new) == ("ok", 9), summary.error

    agents = {r["Agent"]: r for r in summary_rows(kit) if r["Agent"] != "All agents"}
    assert len({looks(shown) for shown in agents}) == 3, list(agents)
    for key, ratings in given.items():
        (shown,) = [s for s in agents if s.endswith(f" ({key})")]
        assert looks(shown) == looks(f"{names[key]} ({key})")
        row = agents[shown]
        assert {k: row[k] for k in expected_cells(ratings)} == expected_cells(ratings)


def test_a_named_nps_question_the_header_lacks_is_a_warning_not_a_silent_blank(
    kit: SyncKit, tmp_path: Path
):
    # The operator typed the NPS question's title with a hyphen; the form has an en dash.
    # The run said "ok" with no warning, and the report's NPS columns stayed empty.
    asked = "Насколько вероятно, что вы порекомендуете нас? (0–10)"
    header = ["Отметка времени", "Оценка", asked, "Комментарий", "Код ссылки"]
    scores = [(5, 10), (4, 9), (5, 7), (2, 3), (4, 10)]
    rows = []
    for n, (rating, nps) in enumerate(scores):
        token = kit.survey(f"N-{n}", "1", "Алёна", created=SENT)
        rows.append([f"2026/11/18 3:0{n}:00 PM GMT+3", str(rating), str(nps), "", token])
    export = tmp_path / "export.csv"
    write_export(export, header, rows)
    typo = asked.replace("–", "-")
    summary = kit.run(csv_config(kit, export, columns={"nps": [typo]}))
    assert summary.status == "ok" and summary.new == len(scores)
    (warning,) = [w for w in summary.warnings if "results.columns.nps" in w]
    assert "no NPS answer was read" in warning and repr(asked) in warning

    fixed = kit.run(csv_config(kit, export, columns={"nps": [typo, asked]}))
    assert fixed.status == "ok" and not [w for w in fixed.warnings if "nps" in w]
    (everyone,) = [r for r in summary_rows(kit) if r["Agent"] == "All agents"]
    promoters = sum(1 for _, nps in scores if nps >= 9)
    detractors = sum(1 for _, nps in scores if nps <= 6)
    nps_column = next(k for k in everyone if k.startswith("NPS"))
    assert float(everyone[nps_column]) == round(100 * (promoters - detractors) / len(scores), 1)


def test_excels_sep_line_declares_the_delimiter_and_is_no_row(kit: SyncKit, tmp_path: Path):
    # A file made to open in columns in any Excel starts with "sep=;". Its first line was
    # taken for the header: the run was refused with "results.columns.timestamp, ...: no
    # column with one of these titles ... (headers found: 'sep=')", titles that were right.
    ratings = [5, 4, 1, 5, 3]
    rows = []
    for n, rating in enumerate(ratings):
        token = kit.survey(f"S-{n}", "1", "Пётр", created=SENT)
        rows.append([f"18.11.2026 15:4{n}:00", str(rating), "хорошо; быстро\nспасибо", token])
    export = tmp_path / "export.csv"
    write_export(export, RU_HEADER, rows, delimiter=";", encoding="cp1251", preamble="sep=;\r\n")
    config = csv_config(kit, export, encoding="cp1251")  # the delimiter left at ","
    summary = kit.run(config)
    assert (summary.status, summary.new, summary.skipped) == ("ok", len(ratings), {}), summary.error
    (peter,) = [r for r in summary_rows(kit) if r["Agent"] == "Пётр"]
    assert {k: peter[k] for k in expected_cells(ratings)} == expected_cells(ratings)

    # Downloaded again with one more answer: only that row is read, numbered as Excel shows.
    token = kit.survey("S-9", "1", "Пётр", created=SENT)
    rows.append(["18.11.2026 16:00:00", "oops", "", token])
    write_export(export, RU_HEADER, rows, delimiter=";", encoding="cp1251", preamble="sep=;\r\n")
    again = kit.run(config)
    assert (again.read, again.unchanged, again.skipped) == ("appended", 5, {"bad_rating": 1})
    assert [r["row"] for r in again.skipped_rows] == [f"row {len(rows) + 1}"]
