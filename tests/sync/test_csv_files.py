"""CSV exports as operators really save them: whatever a respondent typed into a cell, the
file's other rows are read and the run does not fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from csat_hook.db.schema import answers
from csat_hook.sync.sources import table
from tests.sync.test_read_memo import CSV_HEADER
from tests.sync.test_read_memo import csv_config
from tests.sync.test_read_memo import export_lines


def test_a_comment_longer_than_the_csv_modules_field_limit_is_read(kit, tmp_path: Path):
    # Python's csv refuses a cell over 131,072 characters unless told otherwise; that one
    # cell used to fail the read of the whole file ("cannot read ... (Error; ...)").
    before, after = export_lines(kit, "C", 1), export_lines(kit, "C", 3, start=2)
    token = kit.survey("L-1", "1", "Agent 1")
    essay = "slow reply " * 20_000  # 220,000 characters, quoted, with a line break
    long_row = f'2026/11/11 3:47:14 PM GMT+3,2,"{essay}\nthe end",Agent 1,L-1,{token}'
    export = tmp_path / "export.csv"
    export.write_text("\n".join([CSV_HEADER, *before, long_row, *after]) + "\n", "utf-8")
    config = csv_config(kit, export)
    summary = kit.run(config)
    assert (summary.status, summary.new, summary.skipped) == ("ok", 3, {}), summary.error
    stored = {r.dialog_id: r.comment for r in kit.rows(answers)}
    assert stored["L-1"] == essay + "\nthe end"
    # A later download with a row added after it reads only that row.
    more = export_lines(kit, "C", 4, start=3)
    export.write_text("\n".join([CSV_HEADER, *before, long_row, *after, *more]) + "\n", "utf-8")
    again = kit.run(config)
    assert (again.read, again.new, again.unchanged) == ("appended", 1, 3)


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(";", "utf-8-sig"), (";", "cp1251"), ("\t", "utf-16")],
    ids=["excel-de", "excel-ru", "unicode-text"],
)
def test_a_file_with_another_delimiter_names_the_delimiter_setting(
    kit, tmp_path: Path, delimiter: str, encoding: str
):
    # A Russian Excel saves "CSV" with ';' (and a title with a comma is quoted); the error
    # named results.columns.*, whose titles are right, and said to add them.
    header = CSV_HEADER.replace("Comment", '"Comment, if any"').replace(",", delimiter)
    header = header.replace(f'"Comment{delimiter} if any"', '"Comment, if any"')
    token = kit.survey("D-1", "1", "Отлично Agent")
    row = delimiter.join(["2026/11/11 3:47:14 PM GMT+3", "Отлично", "ok", "A", "D-1", token])
    export = tmp_path / "export.csv"
    export.write_bytes(f"{header}\r\n{row}\r\n".encode(encoding))
    refused = kit.run(csv_config(kit, export, encoding=encoding))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.csv.delimiter: the header row of export.csv is")
    assert f"set results.csv.delimiter to {delimiter!r}" in refused.error
    read = kit.run(csv_config(kit, export, encoding=encoding, delimiter=delimiter))
    assert (read.status, read.new) == ("ok", 1), read.error
    assert kit.rows(answers)[0].rating == 5


def test_a_missing_title_in_a_file_of_the_right_delimiter_still_names_the_column(
    kit, tmp_path: Path
):
    export = tmp_path / "export.csv"
    # A ';' in a title does not make it a ';' file: the column without a title is named.
    export.write_text('Timestamp,"Stars; 1-5",Rating\n2026/11/11 3:47:14 PM GMT+3,5,5\n')
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.columns.token: no column")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_byte_order_mark_is_not_part_of_the_first_title(kit, tmp_path: Path, encoding: str):
    # Excel's "CSV UTF-8" starts with a BOM; under encoding utf-8 the first title read
    # '\ufeffTimestamp' and the run was refused for a missing timestamp column.
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "B", 2)]
    export.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    config = csv_config(kit, export, encoding=encoding)
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 2), first.error
    more = export_lines(kit, "B", 3, start=2)
    export.write_bytes(("\ufeff" + "\r\n".join([*lines, *more]) + "\r\n").encode())
    again = kit.run(config)
    assert (again.read, again.new, again.unchanged) == ("appended", 1, 2)


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("utf-16", "it starts with a UTF-16 byte-order mark"),
        ("cp1251", "line 3 is not utf-8-sig: set results.csv.encoding"),
    ],
)
def test_a_file_in_another_encoding_names_the_setting_and_the_line(
    kit, tmp_path: Path, encoding: str, says: str
):
    # The error said "(UnicodeDecodeError; check results.csv.encoding)": no line, no value.
    lines = [CSV_HEADER, *export_lines(kit, "E", 1)]
    lines.append("2026/11/12 3:47:14 PM GMT+3,1,Очень долго ждал,Agent,E-9,x")
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "failed"
    assert refused.error.startswith("results.csv.encoding: cannot decode")
    assert says in refused.error and "долго" not in refused.error
    read = kit.run(csv_config(kit, export, encoding=encoding))
    assert (read.status, read.new, read.unverified) == ("ok", 1, {"malformed": 1}), read.error


def test_a_file_not_in_the_code_page_configured_is_not_told_to_set_that_code_page(
    kit, tmp_path: Path
):
    # A Czech Excel's cp1250 ("ť" is a byte cp1252 leaves undefined) read under cp1252: the
    # error said "set results.csv.encoding to cp1252", the setting the run was made with.
    lines = [CSV_HEADER, *export_lines(kit, "Z", 1)]
    lines.append("2026/11/12 3:47:14 PM GMT+3,1,Dlouhá čekací doba, ťažké,Agent,Z-9,x")
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1250"))
    refused = kit.run(csv_config(kit, export, encoding="cp1252"))
    assert refused.status == "failed"
    assert "line 3 is not cp1252" in refused.error, refused.error
    assert "set results.csv.encoding to cp1252" not in refused.error
    assert "cp1250" in refused.error and "ťažké" not in refused.error


@pytest.mark.parametrize(
    ("encoding", "comments", "named", "not_named"),
    [
        ("cp1252", ["Très bien, merci", "Größe égal", "Atención rápida"], "cp1252", "cp1251"),
        ("cp1251", ["Спасибо, всё решили", "Очень долго ждал", "Ок"], "cp1251", "cp1252"),
    ],
)
def test_a_code_page_export_is_told_which_code_page_its_letters_read_in(
    kit, tmp_path: Path, encoding: str, comments: list[str], named: str, not_named: str
):
    # Every file that was not UTF-8 was told "cp1251 for a CSV from a Russian Excel": a
    # Western Excel's CSV (cp1252) set so read "Très" as "Trиs", stored garbled, run ok.
    tokens = [kit.survey(f"W-{n}", "1", "Agent 1") for n in range(len(comments))]
    rows = [
        f'2026/11/1{n} 3:47:14 PM GMT+3,5,"{text}",Agent 1,W-{n},{token}'
        for n, (text, token) in enumerate(zip(comments, tokens, strict=True))
    ]
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join([CSV_HEADER, *rows]) + "\r\n").encode(encoding))
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "failed"
    assert refused.error.startswith("results.csv.encoding: cannot decode")
    assert f"set results.csv.encoding to {named}" in refused.error, refused.error
    assert not_named not in refused.error
    assert not any(text.split()[0] in refused.error for text in comments)
    read = kit.run(csv_config(kit, export, encoding=named))
    assert (read.status, read.new) == ("ok", len(comments)), read.error
    assert sorted(r.comment for r in kit.rows(answers)) == sorted(comments)


@pytest.mark.parametrize("damage", ["stray quote", "ends inside quotes"])
def test_a_file_that_is_not_well_formed_csv_says_where(kit, tmp_path: Path, damage: str):
    # Python's lenient reader reads on past a stray quote: the rows up to the next quote
    # became one row's cell, and the run said "ok" with two answers fewer and no word.
    clean = [CSV_HEADER, *export_lines(kit, "Q", 6)]
    lines = list(clean)
    if damage == "stray quote":
        lines[2] = lines[2].replace(",Agent 1,", ',"Agent 1,')  # a hand edit
        line = 4  # where the quote opened on line 3 closes, before a character
    else:
        lines.append('2026/11/19 3:47:14 PM GMT+3,5,"being written')
        line = 8  # the last line, whose quote never closes
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = kit.run(csv_config(kit, export))
    assert summary.status == "ok"
    warned = [w for w in summary.warnings if "not well-formed CSV" in w]
    assert warned == [
        f"export.csv: line {line} is not well-formed CSV"
        + warned[0].split("not well-formed CSV", 1)[1]
    ]
    assert "Agent" not in warned[0] and "being written'" not in warned[0]
    # Fixed, every answer is read.
    export.write_text("\n".join(clean) + "\n", "utf-8")
    fixed = kit.run(csv_config(kit, export))
    assert not [w for w in fixed.warnings if "well-formed" in w]
    assert len(kit.rows(answers)) == 6


def test_answers_signed_with_a_secret_no_longer_configured_are_a_data_error(kit, tmp_path: Path):
    # token.secret changed without the old one kept in previous_secrets: every new answer is
    # stored as unverified (forged), counts for nobody, and the run said "ok".
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join([CSV_HEADER, *export_lines(kit, "R", 4)]) + "\r\n").encode())
    rotated = csv_config(kit, export)
    rotated.token.secret = SecretStr("a-new-secret-nobody-kept-the-old-one-of")
    summary = kit.run(rotated)
    assert summary.status == "data_error" and summary.unverified == {"forged": 4}
    [problem] = summary.problems
    assert problem["kind"] == "unverified" and problem["setting"] == "token.previous_secrets"
    assert "4 of 4 new rows" in (summary.error or "")
    assert "previous_secrets" in (summary.error or "")


def test_answers_signed_with_a_lost_secret_read_a_few_a_run_are_a_data_error(kit, tmp_path: Path):
    # token.secret changed, and each scheduled run met two new answers: 2 of 2 forged was
    # under min_skipped_rows (3), so every run said "ok" while every answer counted for nobody.
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "T", 1)]
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    config = csv_config(kit, export)
    assert kit.run(config).new == 1  # credited under the secret then configured
    rotated = csv_config(kit, export)
    rotated.token.secret = SecretStr("a-new-secret-nobody-kept-the-old-one-of")
    seen = []
    for start in (1, 3):
        lines += export_lines(kit, "T", start + 2, start=start)
        export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
        summary = kit.run(rotated)
        seen.append((summary.status, summary.unverified))
    assert seen == [("ok", {"forged": 2}), ("data_error", {"forged": 2})]
    assert (summary.error or "").startswith(
        "2 of 2 new rows, and 4 answers in a row since the latest credited one, are stored "
        "as unverified (forged"
    )
    assert summary.problems[0]["setting"] == "token.previous_secrets"
    # One edited reference after a credited answer is no failure, whatever came before.
    lines += export_lines(kit, "T", 6, start=5)
    signed = lines[-1].rsplit(",", 1)[1]
    lines.append(lines[-1][: -len(signed)] + signed[:-1] + ("B" if signed[-1] == "A" else "A"))
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    mixed = kit.run(config)
    assert (mixed.status, mixed.unverified) == ("ok", {"forged": 1}), mixed.error


def test_answers_without_a_reference_read_a_few_a_run_are_a_data_error(kit, tmp_path: Path):
    # The reference question made again: every answer since has none. Two a run was under
    # min_skipped_rows (3): every run said "ok" while every answer counted for nobody.
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "N", 1)]
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    config = csv_config(kit, export)
    assert kit.run(config).new == 1
    seen = []
    for start in (1, 3):
        lines += [
            line.rsplit(",", 1)[0] + "," for line in export_lines(kit, "N", start + 2, start=start)
        ]
        export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
        summary = kit.run(config)
        seen.append((summary.status, summary.unverified))
    assert seen == [("ok", {"missing": 2}), ("data_error", {"missing": 2})]
    assert summary.problems[0]["setting"] == "survey.form.fields.token"


@pytest.mark.parametrize(
    ("reason", "setting", "spoil"),
    [
        # The reference question was made again: the links pre-fill an entry it lacks.
        ("missing", "survey.form.fields.token", lambda line: line.rsplit(",", 1)[0] + ","),
        # results.columns.token names the ticket column, or a script rewrote the references.
        (
            "malformed",
            "results.columns.token",
            lambda line: line.rsplit(",", 1)[0] + "," + line.rsplit(",", 2)[1],  # the ticket
        ),
    ],
)
def test_answers_most_of_which_carry_no_usable_reference_are_a_data_error(
    kit, tmp_path: Path, reason, setting, spoil
):
    # Every new answer stored as unverified counted for nobody, and the run said "ok".
    lines = [CSV_HEADER, *export_lines(kit, "M", 5)]
    export = tmp_path / "export.csv"
    spoilt = [lines[0], lines[1], *(spoil(line) for line in lines[2:])]
    export.write_bytes(("\r\n".join(spoilt) + "\r\n").encode())

    summary = kit.run(csv_config(kit, export))

    assert summary.status == "data_error" and summary.unverified == {reason: 4}, summary.error
    assert summary.new == 1
    [problem] = summary.problems
    assert (problem["kind"], problem["reason"], problem["setting"]) == (
        "unverified",
        reason,
        setting,
    )
    assert (summary.error or "").startswith(f"4 of 5 new rows are stored as unverified ({reason}")
    assert setting in (summary.error or "")
    # Stored, not read again: the next run has nothing new to judge.
    assert kit.run(csv_config(kit, export)).status == "ok"


def test_a_few_forged_references_among_many_answers_are_no_data_error(kit, tmp_path: Path):
    # Edited references (a customer changing the link) are unverified, not a failed run.
    lines = [CSV_HEADER, *export_lines(kit, "F", 10)]
    lines[1] = lines[1].rsplit(",", 1)[0] + ",MXx0ZXN0fEYtMHw3.forged0signature0000000000"
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    summary = kit.run(csv_config(kit, export))
    assert summary.status == "ok" and summary.new == 9, summary.error
    assert sum(summary.unverified.values()) == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1251", "latin-1"])
@pytest.mark.parametrize("kind", ["forms-download.zip", "workbook.xlsx"])
def test_a_zip_archive_at_the_path_is_named_so(kit, tmp_path: Path, encoding: str, kind: str):
    # Forms downloads the responses as "<form>.csv.zip", and an .xlsx workbook is a ZIP too.
    # The error said the file was not utf-8-sig and to try cp1251; under cp1251 the archive's
    # bytes were read as a header row and listed as "headers found".
    lines = [CSV_HEADER, *export_lines(kit, "Z", 2)]
    export = tmp_path / "export.csv"
    if kind == "workbook.xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        for line in lines:
            workbook.active.append(line.split(","))
        workbook.save(export)
    else:
        import zipfile

        with zipfile.ZipFile(export, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("CSAT (Responses).csv", "\n".join(lines) + "\n")
    refused = kit.run(csv_config(kit, export, encoding=encoding))
    assert refused.status in ("failed", "config_error")
    assert refused.error.startswith("results.csv.path: export.csv is a ZIP archive"), refused.error
    assert "headers found" not in refused.error


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf8_file_read_as_utf16_names_the_setting_without_quoting_it(
    kit, tmp_path: Path, encoding: str
):
    # UTF-16 decodes any even number of bytes: a UTF-8 export read so was one line of CJK
    # characters, refused as a header row without the titles, and that line (every answer,
    # recoverable by encoding it back) was listed as the "headers found" in the error and log.
    lines = [CSV_HEADER, *export_lines(kit, "U", 3)]
    text = "\r\n".join(lines) + "\r\n"
    export = tmp_path / "export.csv"
    export.write_bytes(text.encode() + b" " * (len(text.encode()) % 2))
    refused = kit.run(csv_config(kit, export, encoding=encoding))
    assert refused.status in ("failed", "config_error")
    assert refused.error.startswith("results.csv.encoding: export.csv is not UTF-"), refused.error
    assert "headers found" not in refused.error and len(refused.error) < 400


def test_a_stray_quote_in_the_header_row_lists_no_answer(kit, tmp_path: Path):
    # The quote runs the header's cell into the rows below: the error listed it and the cells
    # after it (a comment, the agent and ticket fields, a signed reference) as headers found.
    lines = [CSV_HEADER.replace(",Rating", ',"Rating'), *export_lines(kit, "H", 2)]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.columns.rating, results.columns.token: no column")
    assert "its headers are not listed: a cell of that row spans lines" in refused.error
    for line in lines[1:]:
        for cell in line.split(",")[-3:]:  # the agent and ticket fields, the reference
            assert cell not in refused.error


@pytest.mark.parametrize("bom", [False, True], ids=["forms-download", "excel-csv-utf8"])
@pytest.mark.parametrize(
    ("encoding", "agent"),
    [
        ("cp1251", "Анна Петрова"),
        ("cp1251", "Агент Иван"),  # "И" is D0 98 in UTF-8, and 98 is no cp1251 character
        ("latin-1", "Анна Петрова"),
        ("windows-1252", "Анна Петрова"),
    ],
)
def test_a_utf8_file_read_under_a_single_byte_code_page_is_refused(
    kit, tmp_path: Path, encoding: str, agent: str, bom: bool
):
    # Under cp1251 nearly every byte decodes: a UTF-8 export's "Спасибо большое" was stored
    # and reported as "РЎРїР°СЃРёР±Рѕ Р±РѕР»СЊС€РѕРµ" (the agent field too) and the run said ok;
    # with Excel's BOM the error blamed the column titles ('п»їРћС‚…'), and a byte cp1251
    # lacks said to set the encoding to cp1251 (it was).
    token = kit.survey("W-1", "1", agent)
    lines = [CSV_HEADER, f"2026/11/11 3:47:14 PM GMT+3,5,Спасибо большое,{agent},W-1,{token}"]
    export = tmp_path / "export.csv"
    export.write_bytes(("\ufeff" * bom + "\r\n".join(lines) + "\r\n").encode())
    refused = kit.run(csv_config(kit, export, encoding=encoding))
    assert refused.status == "failed", refused.error
    assert refused.error.startswith(f"results.csv.encoding: export.csv is UTF-8, not {encoding}")
    assert "set results.csv.encoding to utf-8" in refused.error
    assert "Спасибо" not in refused.error and "РЎ" not in refused.error
    assert "results.columns" not in refused.error and kit.rows(answers) == []
    read = kit.run(csv_config(kit, export, encoding="utf-8"))
    assert (read.status, read.new) == ("ok", 1), read.error
    assert kit.rows(answers)[0].comment == "Спасибо большое"


def test_a_utf8_row_added_to_an_ascii_file_read_under_cp1251_is_refused(kit, tmp_path: Path):
    # The first run's file was ASCII (the same bytes in UTF-8 and cp1251); the rows added to
    # it read alone under cp1251 were stored garbled.
    lines = [CSV_HEADER, *export_lines(kit, "V", 2)]
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    config = csv_config(kit, export, encoding="cp1251")
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 2), first.error
    token = kit.survey("V-9", "9", "Agent 9")
    lines.append(f"2026/11/12 3:47:14 PM GMT+3,5,Спасибо,Agent 9,V-9,{token}")
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    refused = kit.run(config)
    assert refused.status == "failed", (refused.read, refused.error)
    assert refused.error.startswith("results.csv.encoding: export.csv is UTF-8, not cp1251")
    assert {r.dialog_id for r in kit.rows(answers)} == {"V-0", "V-1"}


def test_a_cp1251_file_and_an_ascii_file_read_under_cp1251(kit, tmp_path: Path):
    # The check for UTF-8 leaves a genuine cp1251 export (Russian text in every cell, the
    # rating a word) and one of ASCII only alone.
    token = kit.survey("R-1", "1", "Агент Иван")
    # The default titles of a Russian form; the rating is a word (a default rating label).
    russian = ["Отметка времени,Оценка,Комментарий,Оператор,Обращение,Код ссылки"]
    russian.append(f"11.11.2026 15:47:14,Отлично,Спасибо большое,Агент Иван,R-1,{token}")
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(russian) + "\r\n").encode("cp1251"))
    config = csv_config(kit, export, encoding="cp1251", timezone="Europe/Moscow")
    read = kit.run(config)
    assert (read.status, read.new, read.skipped) == ("ok", 1, {}), read.error
    assert kit.rows(answers)[0].comment == "Спасибо большое"
    assert kit.rows(answers)[0].rating == 5
    ascii_export = tmp_path / "ascii.csv"
    ascii_export.write_bytes(
        ("\r\n".join([CSV_HEADER, *export_lines(kit, "S", 2)]) + "\r\n").encode("cp1251")
    )
    plain = kit.run(csv_config(kit, ascii_export, encoding="cp1251"))
    assert (plain.status, plain.new) == ("ok", 2), plain.error


def test_empty_lines_above_the_header_row_are_named_not_the_column_titles(kit, tmp_path: Path):
    # The header row read from the first line, which was empty: the error named every
    # results.columns key ("headers found: none") and said to add titles that were right.
    export = tmp_path / "export.csv"
    lines = export_lines(kit, "E", 2)
    export.write_text("\n".join(["", ",,,", CSV_HEADER, *lines]) + "\n", "utf-8")
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "config_error"
    assert "export.csv" in refused.error
    assert "results.columns" not in refused.error
    assert "first row is empty" in refused.error
    export.write_text("\n".join([CSV_HEADER, *lines]) + "\n", "utf-8")
    read = kit.run(csv_config(kit, export))
    assert (read.status, read.new) == ("ok", 2), read.error


@pytest.mark.parametrize("title", ["Timestamp", " TIMESTAMP ", "Отметка времени"])
def test_a_header_row_repeated_below_is_skipped_as_a_header_row(kit, tmp_path: Path, title: str):
    # Two downloads joined by copy and paste: the second one's titles are a row of the file.
    # It was skipped as "not a date-time layout Forms, Sheets or Apps Script write".
    export = tmp_path / "export.csv"
    again = CSV_HEADER.replace("Timestamp", title)
    lines = [CSV_HEADER, *export_lines(kit, "H", 2), again, *export_lines(kit, "H", 4, start=2)]
    export.write_text("\n".join(lines) + "\n", "utf-8")
    summary = kit.run(csv_config(kit, export))
    assert (summary.status, summary.new, summary.skipped) == ("ok", 4, {"bad_timestamp": 1})
    [skipped] = summary.skipped_rows
    assert skipped["row"] == "row 4"
    assert "header row" in skipped["detail"]
    assert "not a date-time layout" not in skipped["detail"]


@pytest.mark.parametrize("configured", ["cp1252", "latin-1"])
def test_titles_in_another_code_page_name_the_encoding_setting(
    kit, tmp_path: Path, configured: str
):
    # A Russian Excel's CSV (cp1251) read under a Western code page: every byte decodes, the
    # titles came out as 'Îòìåòêà âðåìåíè', and the error listed them and said to add them
    # to results.columns.
    header = "Отметка времени;Оценка;Комментарий;Оператор;Обращение;Код ссылки"
    token = kit.survey("R-1", "1", "Agent 1")
    row = f"19.11.2026 20:17:11;5;Спасибо;Agent 1;R-1;{token}"
    export = tmp_path / "export.csv"
    export.write_bytes(f"{header}\r\n{row}\r\n".encode("cp1251"))
    refused = kit.run(csv_config(kit, export, encoding=configured, delimiter=";"))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.csv.encoding: ")
    assert "set results.csv.encoding to cp1251" in refused.error
    assert "Î" not in refused.error
    read = kit.run(csv_config(kit, export, encoding="cp1251", delimiter=";"))
    assert (read.status, read.new) == ("ok", 1), read.error
    assert kit.rows(answers)[0].comment == "Спасибо"


def test_a_folder_at_the_path_is_named_a_folder_not_a_missing_file(kit, tmp_path: Path):
    # results.csv.path set to the downloads folder: the run said the path "does not exist",
    # and `serve` waited for it calmly as for an export not downloaded yet.
    folder = tmp_path / "downloads"
    folder.mkdir()
    refused = kit.run(csv_config(kit, folder))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.csv.path: ")
    assert "is a folder" in refused.error and "does not exist" not in refused.error
    assert refused.waiting_for is None


def test_one_line_in_another_encoding_of_a_utf8_file_is_not_called_a_cp1251_file(
    kit, tmp_path: Path
):
    # A UTF-8 export with one row edited in a Windows editor (cp1251). The error said to set
    # results.csv.encoding (cp1251 for a Russian Excel): set so, every other row's letters
    # were read garbled ('РЎРїР°СЃРёР±Рѕ') and the run said "ok".
    tokens = [kit.survey(f"M-{n}", "1", "Agent 1") for n in range(4)]
    rows = [
        f"2026/11/1{n} 3:47:14 PM GMT+3,5,Спасибо,Agent 1,M-{n},{t}" for n, t in enumerate(tokens)
    ]
    data = [line.encode() for line in [CSV_HEADER, *rows]]
    data[3] = rows[2].replace("Спасибо", "Отлично").encode("cp1251")  # line 4
    export = tmp_path / "export.csv"
    export.write_bytes(b"\r\n".join(data) + b"\r\n")
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "failed"
    assert refused.error.startswith("results.csv.encoding: cannot decode")
    assert "line 4" in refused.error and "cp1251" not in refused.error
    as_cp1251 = kit.run(csv_config(kit, export, encoding="cp1251"))
    assert as_cp1251.status == "failed"
    assert "line 4" in as_cp1251.error
    assert kit.rows(answers) == []


def test_an_emoji_written_as_two_utf16_halves_in_an_ascii_file_names_its_line(kit, tmp_path: Path):
    # CESU-8 (an emoji as two UTF-16 halves, each encoded as UTF-8: some Java and MySQL
    # exports) in one comment of an ASCII file: the error said to set cp1251, and set so the
    # run said "ok" and stored the comment garbled ("н\xa0ЅнёЂ").
    tokens = [kit.survey(f"C-{n}", "1", "Agent 1") for n in range(3)]
    rows = [
        f"2026/11/1{n} 3:47:14 PM GMT+3,5,ok {n},Agent 1,C-{n},{t}" for n, t in enumerate(tokens)
    ]
    data = [line.encode() for line in [CSV_HEADER, *rows]]
    data[2] = data[2].replace(b"ok 1", b"ok \xed\xa0\xbd\xed\xb8\x80")  # line 3: U+1F600
    export = tmp_path / "export.csv"
    export.write_bytes(b"\r\n".join(data) + b"\r\n")
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "failed"
    assert refused.error.startswith("results.csv.encoding: cannot decode"), refused.error
    assert "line 3 holds a character written as two UTF-16 halves" in refused.error
    assert "cp1251" not in refused.error and "cp1252" not in refused.error
    assert kit.rows(answers) == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_broken_line_of_a_file_in_the_encoding_its_mark_says_names_the_line(
    kit, tmp_path: Path, encoding: str
):
    # A UTF-16 export (its byte-order mark) read as utf-16, with a lone surrogate on line 3:
    # the error said to set results.csv.encoding to utf-16, as it was.
    tokens = [kit.survey(f"S-{n}", "1", "Agent 1") for n in range(3)]
    rows = [
        f"2026/11/1{n} 3:47:14 PM GMT+3\t5\tok {n}\tAgent 1\tS-{n}\t{t}"
        for n, t in enumerate(tokens)
    ]
    text = "\r\n".join([CSV_HEADER.replace(",", "\t"), *rows]) + "\r\n"
    data = text.replace("ok 1", "ok \ud800").encode(encoding, "surrogatepass")
    export = tmp_path / "export.csv"
    export.write_bytes(data)
    refused = kit.run(csv_config(kit, export, encoding=encoding, delimiter="\t"))
    assert refused.status == "failed"
    assert f"line 3 is not valid {encoding}" in refused.error, refused.error
    assert "set results.csv.encoding" not in refused.error


def test_a_header_row_of_huge_or_countless_titles_is_listed_in_a_bounded_error(kit, tmp_path: Path):
    """A 10 MB title (a pasted document) or 20,000 columns: the config error listed every
    title whole, a 10 MB message in the run's output and its ERROR log line."""
    titles = ["Timestamp", "Score", "x" * 10_000_000, *(f"Extra {n}" for n in range(20_000))]
    export = tmp_path / "export.csv"
    export.write_text(",".join([*titles, "Reference"]) + "\n", "utf-8")
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "config_error"
    error = refused.error or ""
    assert error.startswith("results.columns.rating: no column with one of these titles")
    assert "'Timestamp', 'Score', 'xxx" in error
    assert "and 19,974 more" in error, error[-300:]
    assert len(error) < 3000


def test_spreadsheet_serial_dates_in_a_csv_are_named_as_such(kit, tmp_path: Path):
    """An .xlsx saved as CSV with its timestamp column formatted as a number: the rows were
    "not a date-time layout Forms, Sheets or Apps Script write", and the fix named a strptime
    layout, which cannot read a serial."""
    token = kit.survey("S-1", "1", "Agent 1")
    export = tmp_path / "export.csv"
    export.write_text(f"{CSV_HEADER}\n46337.5,5,ok,Agent 1,S-1,{token}\n", "utf-8")
    summary = kit.run(csv_config(kit, export))
    assert summary.skipped == {"bad_timestamp": 1}, summary.error
    detail = summary.skipped_rows[0]["detail"]
    assert "a number, not a date-time" in detail and "serial" in detail, detail


def test_invisible_characters_around_a_column_title_are_read_as_spaces(kit, tmp_path: Path):
    # A question title pasted with a zero-width space or a bidi mark at its end: the column
    # was not found ("results.columns.timestamp: no column with one of these titles"),
    # though spaces, case and a no-break space there are ignored.
    header = "\u200bTimestamp,Rating\u200f,\u2060Comment ,Agent,Ticket,\ufeffReference\u200b"
    export = tmp_path / "export.csv"
    export.write_text("\n".join([header, *export_lines(kit, "Z", 2)]) + "\n", "utf-8")
    summary = kit.run(csv_config(kit, export))
    assert (summary.status, summary.new, summary.skipped) == ("ok", 2, {}), summary.error
    assert sorted(r.comment for r in kit.rows(answers)) == ['ok, "fine"'] * 2


@pytest.mark.parametrize(
    ("codec", "delimiter", "says"),
    [
        ("utf-16-le", ",", "set results.csv.encoding to utf-16-le"),
        ("utf-16-be", ",", "set results.csv.encoding to utf-16-be"),
        ("utf-16-le", "\t", "to utf-16-le and results.csv.delimiter to '\\t'"),
    ],
)
def test_utf16_without_a_byte_order_mark_names_the_encoding(
    kit, tmp_path: Path, codec: str, delimiter: str, says: str
):
    # Read as UTF-8 (every NUL a character), the error named results.columns.* and listed the
    # titles as 'T\x00i\x00m\x00e...'.
    lines = [CSV_HEADER.replace("Comment", "Комментарий"), *export_lines(kit, "W", 2)]
    export = tmp_path / "export.csv"
    text = "\r\n".join(line.replace(",", delimiter) for line in lines) + "\r\n"
    export.write_bytes(text.encode(codec))
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "config_error"
    assert refused.error.startswith("results.csv.encoding: export.csv is UTF-16 without a")
    assert says in refused.error and "\\x00" not in refused.error
    read = kit.run(csv_config(kit, export, encoding=codec, delimiter=delimiter))
    assert (read.status, read.new) == ("ok", 2), read.error


@pytest.mark.parametrize(
    ("configured", "codec"),
    [
        ("utf-16", "utf-16-le"),
        ("UTF16", "utf-16-be"),
        ("utf-32", "utf-32-le"),
        ("utf_32", "utf-32-be"),
    ],
)
def test_a_wide_file_without_a_byte_order_mark_read_as_utf16_names_the_byte_order(
    kit, tmp_path: Path, configured: str, codec: str
):
    # Python's utf-16 and utf-32 need the mark to tell the byte order: the run failed
    # "results.csv.path: cannot read export.csv (UnicodeError)", naming the path, not the
    # encoding, and no order to set.
    lines = [CSV_HEADER.replace("Comment", "Комментарий"), *export_lines(kit, "N", 2)]
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode(codec))
    refused = kit.run(csv_config(kit, export, encoding=configured))
    assert refused.status == "failed"
    assert refused.error.startswith(
        f"results.csv.encoding: export.csv has no byte-order mark, which {configured} needs"
    ), refused.error
    assert f"set results.csv.encoding to {codec}" in refused.error
    read = kit.run(csv_config(kit, export, encoding=codec))
    assert (read.status, read.new) == ("ok", 2), read.error


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be"])
def test_a_utf32_byte_order_mark_is_not_taken_for_utf16s(kit, tmp_path: Path, codec: str):
    # UTF-32's little-endian mark starts with UTF-16's: the error said to set utf-16.
    lines = [CSV_HEADER, *export_lines(kit, "V", 2)]
    export = tmp_path / "export.csv"
    export.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode(codec))
    refused = kit.run(csv_config(kit, export))
    assert refused.status == "failed"
    assert "it starts with a UTF-32 byte-order mark: set results.csv.encoding to utf-32" in (
        refused.error
    )
    read = kit.run(csv_config(kit, export, encoding="utf-32"))
    assert (read.status, read.new) == ("ok", 2), read.error


def _not_utf8(folder: Path, name: bytes) -> Path:
    """A folder in ``folder`` named with a byte that is not UTF-8 (Latin-1's é), as Python
    carries it: a lone surrogate in the text."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + name))


@pytest.mark.parametrize("named", ["folder", "file"])
def test_an_export_named_in_latin_1_is_read_every_run(kit, tmp_path: Path, named: str):
    # The export's path is stored with each unverified and skipped row (which source it was
    # read from), its name as the key of what its last read found: a lone surrogate failed
    # every sync, on either database, with an internal UnicodeEncodeError.
    if named == "folder":
        folder = _not_utf8(tmp_path, b"r\xe9ponses")
        folder.mkdir()
        export = folder / "export.csv"
    else:
        export = _not_utf8(tmp_path, b"r\xe9ponses.csv")
    lines = [CSV_HEADER, *export_lines(kit, "C", 2), "not a time,9,forged,Anna,C-9,nonsense"]
    export.write_text("\n".join(lines) + "\n", "utf-8")
    config = csv_config(kit, export)
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 2), first.error
    assert first.skipped == {"bad_timestamp": 1}
    again = kit.run(config)
    assert (again.status, again.new, again.unchanged) == ("ok", 0, 2), again.error


def test_a_report_folder_named_in_latin_1_is_written_every_run(kit, tmp_path: Path):
    # The folder is the local output's name in sync_outputs: its lone surrogate failed every
    # sync, on either database, with an internal UnicodeEncodeError.
    export = tmp_path / "export.csv"
    export.write_text("\n".join([CSV_HEADER, *export_lines(kit, "C", 2)]) + "\n", "utf-8")
    report = _not_utf8(tmp_path, b"r\xe9port")
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"gsheets": {"enabled": False}, "local": {"enabled": True, "dir": str(report)}},
    )
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 2), first.error
    assert any(report.glob("*.xlsx"))
    again = kit.run(config)
    assert again.status == "ok", again.error


@pytest.mark.parametrize(
    "text", ["", "Score", "Q1", "x" * 100_000 + "7", "Оценка", "Оценка²", "٣", "é"]
)
def test_a_title_holds_a_digit_as_str_isdigit_says(text: str):
    # The header row's look for a digit searches an ASCII title whole (a 10 MB title took
    # seconds a character at a time); another title still counts what str.isdigit counts.
    assert table._has_digit(text) == any(c.isdigit() for c in text)
