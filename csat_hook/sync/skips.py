"""Skipped rows: read again on every read of the rows, and a large share of them is a failed
run.

A row the sync cannot read (no timestamp, a layout or zone it cannot place, a rating that is
not on the scale) is recorded in ``sync_skipped_rows``. It is *not* treated as processed: each
read of the rows reads it again, so once the operator fixes the configuration (a time zone, a
date order, a rating label) the row is credited and leaves the table. (A setting is under the
read memo's key: the same bytes read under the same settings are replayed, their skipped rows
given again as that read gave them, :mod:`.read_memo`.) ``csv`` and ``gsheets`` read the
whole source every run; ``forms_api`` reads from its watermark, so its older skipped rows
come back with ``csat-hook sync --full``. Each record names the source that read it
(``source_key``): a read of another sheet, tab, file or form of the same kind forgets none of
them (:func:`record_rereads`).

:func:`judge` turns a run's skips into problems: for one reason, more than
``results.max_skipped_share`` of the rows the run read, and at least
``results.min_skipped_rows`` of them. Two views are judged: every non-blank row the run read
(a problem that persists keeps failing every run until it is fixed) and the rows new to this
run (a problem that starts today is not diluted by a long history). A problem names the
column, the reason, what to change and one example cell (a timestamp or a rating choice,
shown to the operator in the run's output, never logged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from csat_hook.db.schema import sync_skipped_rows
from csat_hook.sync.bulk import among
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch

# Any source's: a time read, but before 2000 or more than a day after the run's time
# (sources/base.py EARLIEST_SUBMISSION, FUTURE_SLACK).
_IMPLAUSIBLE = (
    "the timestamp reads as a time before 2000 or more than a day after the run's time: "
    "correct the cell (a number such as 0 typed into the timestamp column, a year typed "
    "wrong), or the clock or time zone that wrote it; the rows are read again every run"
)
# What to change, per reason; the sources' own wording where it differs.
_REMEDIES: dict[str, str] = {
    "missing_timestamp": "check that results.columns.timestamp names the form's timestamp column",
    "bad_timestamp": (
        "add the layout to results.csv.timestamp_formats (a strptime layout), or check that "
        "results.columns.timestamp names the form's timestamp column"
    ),
    "ambiguous_date_order": "set results.csv.date_order to DMY or MDY",
    "mixed_date_order": "set results.csv.date_order to DMY or MDY",
    "unknown_tz_abbreviation": (
        "add the abbreviation to results.csv.timezone_abbreviations (e.g. HKT: '+08:00')"
    ),
    "ambiguous_tz_abbreviation": (
        "set results.csv.timezone to the form's time zone, or add the abbreviation to "
        "results.csv.timezone_abbreviations"
    ),
    "nonexistent_local_time": (
        "set results.csv.timezone to the time zone the timestamps were written in"
    ),
    "implausible_timestamp": _IMPLAUSIBLE,
    "missing_rating": (
        "check that results.columns.rating names the rating question, or make the question "
        "required in the form"
    ),
    "bad_rating": (
        "add the label to results.rating_labels (label: score), or check "
        "metrics.scale_min and metrics.scale_max"
    ),
    "bad_nps": (
        "check that results.columns.nps names the 0–10 'how likely are you to recommend "
        "us' question (answers must be whole numbers from 0 to 10)"
    ),
    "columns_differ": (
        "a header row further down has other columns than row 1 (two exports joined?): move "
        "the rows below it into row 1's columns, or into a file or tab of their own"
    ),
    "formula_error": (
        "the cells show a formula's error (#N/A, #REF!, #VALUE!...), not an answer: fix the "
        "formula in the sheet, or point results.columns at the form's own column; the rows "
        "are read again every run"
    ),
    "ambiguous_columns": (
        "two columns hold that title and each row answers both: rename or clear the one that "
        "is not the form's question (a column of your own, an export pasted beside)"
    ),
}
_GSHEETS_TIMESTAMPS = (
    "format the timestamp column as Date time in the sheet (Format → Number), and check the "
    "spreadsheet's locale and time zone (File → Settings)"
)


# The Forms API source reads questions by questionId and Google's lastSubmittedTime: a fix
# naming results.columns or results.csv sent the operator to settings it never reads.
_FORMS_REMEDIES = {
    "missing_rating": "check that results.forms_api.question_ids.rating is the questionId of "
    "the rating question (forms.get lists them; a question added again has a new one), or make "
    "the question required in the form",
    "bad_nps": "check that results.forms_api.question_ids.nps is the questionId of the 0–10 "
    "question (answers must be whole numbers from 0 to 10)",
    "bad_timestamp": "Google listed a lastSubmittedTime that is not a time: nothing here "
    "reads it otherwise; the response is read again every run",
}
_FORMS_REMEDIES["missing_timestamp"] = _FORMS_REMEDIES["bad_timestamp"]
_FORMS_REMEDIES["implausible_timestamp"] = (
    "Google listed a lastSubmittedTime before 2000 or more than a day after the run's time: "
    "check this machine's clock (the run's time); the responses are read again every run"
)
# A response in a shape Google never sends (sources/forms_api.py): the detail names the field.
_FORMS_REMEDIES["malformed_response"] = (
    "Google never lists a response so: check what the listing passes through (a proxy, a "
    "fake), and that the questionId named is a text or choice question (forms.get lists "
    "them); the response is read again every run"
)
_FORMS_REMEDIES["duplicate_response"] = (
    "Google never lists a responseId twice with other answers at one time: check what the "
    "listing passes through (a proxy, a fake); the responses are read again every run"
)


# The reasons of a sheet's row that are not its timestamp's (_GSHEETS_TIMESTAMPS).
_NOT_TIMESTAMPS = frozenset(
    {"missing_rating", "bad_rating", "bad_nps", "ambiguous_columns", "columns_differ"}
    | {"implausible_timestamp"}  # a time read, wrong however the column is formatted
    | {"formula_error"}  # a formula failed, whatever the column's format
)


def remedy(reason: str, source: str) -> str:
    """What the operator can change to make rows skipped for ``reason`` readable: settings
    that ``source`` reads."""
    if source == "gsheets" and reason not in _NOT_TIMESTAMPS:
        return _GSHEETS_TIMESTAMPS
    if source == "forms_api" and reason != "bad_rating":
        return _FORMS_REMEDIES.get(reason, "check results.forms_api.question_ids and the form")
    return _REMEDIES.get(reason, "check results.columns and the source")


@dataclass(frozen=True)
class SkipProblem:
    """One reason that skipped a large share of a run's rows."""

    reason: str
    count: int  # rows skipped for this reason
    rows: int  # of the rows judged (all read, or new to this run)
    new_only: bool  # judged among the rows new to this run
    column: str  # where: the header title (or the Forms question)
    setting: str  # results.columns.<role>
    example: str  # one cell as read: a timestamp or a rating
    detail: str  # why the example cannot be read
    fix: str

    def message(self) -> str:
        """For the logs and ``error``: no cell value."""
        among = "new rows" if self.new_only else "rows read"
        return (
            f"{self.count} of {self.rows} {among} skipped as {self.reason} in column "
            f"{self.column!r} ({self.setting}): {self.fix}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    batch: SourceBatch,
    previously_skipped: Collection[str],
    *,
    max_share: float,
    min_rows: int,
) -> list[SkipProblem]:
    """The reasons that skipped too large a share of the rows this run read (module doc)."""
    if not batch.skipped:
        return []
    read = batch.rows_read - batch.blank_rows
    fresh_skips = [s for s in batch.skipped if s.fingerprint not in previously_skipped]
    fresh = len(fresh_skips) + sum(
        1 for s in batch.submissions if s.fingerprint not in previously_skipped
    )
    problems: dict[str, SkipProblem] = {}
    for skips, total, new_only in ((batch.skipped, read, False), (fresh_skips, fresh, True)):
        by_reason = Counter(s.reason for s in skips)
        for reason, count in by_reason.items():
            if reason in problems or count < min_rows or count <= max_share * total:
                continue
            problems[reason] = _problem(batch, skips, reason, count, total, new_only)
    return sorted(problems.values(), key=lambda p: -p.count)


# What the operator is told, per reason an answer is unverified, when a large share of the
# rows new to a run are: (the setting to look at, what is wrong with each row, the fix).
_UNVERIFIED_CAUSES: dict[str, tuple[str, str, str]] = {
    "forged": (
        "token.previous_secrets",
        "the reference's signature matches none of the configured secrets",
        "if token.secret was changed, put the secret it replaced in token.previous_secrets "
        "so that the references signed with it verify",
    ),
    "missing": (
        "survey.form.fields.token",
        "the reference cell is empty",
        "check that the survey link still pre-fills the reference (survey.form.fields.token "
        "is the entry id of the form's reference question; csat-hook form-fields reads it "
        "from a pre-filled link, and a question made again gets a new id) and that {token} "
        "that question; an answer without a reference can never be credited",
    ),
    "malformed": (
        "{setting}",
        "the reference cell is not a survey reference as csat-hook writes it",
        "check that {token} the reference question, not another one, and that nothing (a "
        "script, a macro, the form's response validation) rewrites the reference",
    ),
}
# The reasons judge_unverified judges (IngestResult.unverified_in_a_row is counted for these).
UNVERIFIED_JUDGED = tuple(_UNVERIFIED_CAUSES)
# Where each source finds the reference: ({setting}, {token} in the texts above).
_TOKEN_SETTING = {
    "forms_api": (
        "results.forms_api.question_ids.token",
        "results.forms_api.question_ids.token is the questionId of",
    )
}
_TOKEN_COLUMN = ("results.columns.token", "results.columns.token names")


def judge_unverified(
    unverified: Mapping[str, int],
    new_rows: int,
    *,
    max_share: float,
    min_rows: int,
    source: str = "csv",
    in_a_row: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """A problem for each reason (``forged``, ``missing``, ``malformed``) that a large share of
    the rows new to this run are unverified for, with the same thresholds as the skips.

    Each such row is stored as unverified and never read again, so a run that says "ok" would
    hide the usual causes, and every answer since would count for nobody: ``token.secret``
    changed without the old one kept in ``token.previous_secrets`` (forged); the reference
    question made again, so the survey links pre-fill a field the form no longer has
    (missing); ``results.columns.token`` naming another column, or something rewriting the
    references (malformed). The settings named are those ``source`` (``results.source``)
    reads.

    ``in_a_row`` (``IngestResult.unverified_in_a_row``): per reason this run stored answers
    as unverified for, the answers stored so with none credited between them, up to this
    run's. At least ``min_rows`` of them is a problem too (all of them are unverified for it:
    a share of 100 %): a run that reads a few new rows at a time stayed under ``min_rows``
    and said "ok" every run while every answer since the cause counted for nobody."""
    setting_of, token = _TOKEN_SETTING.get(source, _TOKEN_COLUMN)
    problems = []
    for reason, (named, detail, template) in _UNVERIFIED_CAUSES.items():
        count = unverified.get(reason, 0)
        streak = (in_a_row or {}).get(reason, 0) if count else 0
        flagged = count >= min_rows and count > max_share * new_rows
        if not flagged and (streak < min_rows or streak <= max_share * streak):
            continue
        setting = named.format(setting=setting_of)
        fix = template.format(token=token)
        shown = (
            f"{count} of {new_rows} new rows are stored as unverified"
            if flagged
            else f"{count} of {new_rows} new rows, and {streak} answers in a row since the "
            "latest credited one, are stored as unverified"
        )
        problems.append(
            {
                "kind": "unverified",  # not skipped: stored, and not read again
                "reason": reason,
                "count": count,
                "rows": new_rows,
                "new_only": True,
                "column": "",
                "setting": setting,
                "example": "",
                "detail": detail,
                "fix": fix,
                "message": f"{shown} ({reason}: {detail}): {fix}",
            }
        )
    return problems


def _problem(
    batch: SourceBatch,
    skips: Iterable[SkippedRow],
    reason: str,
    count: int,
    total: int,
    new_only: bool,
) -> SkipProblem:
    first = next(s for s in skips if s.reason == reason)
    role = first.role or "timestamp"
    return SkipProblem(
        reason=reason,
        count=count,
        rows=total,
        new_only=new_only,
        column=batch.columns.get(role, role),
        setting=_setting(batch.source, role),
        example=first.example,
        detail=first.detail,
        fix=remedy(reason, batch.source),
    )


def _setting(source: str, role: str) -> str:
    """The setting that names where ``source`` reads ``role``; a Forms response's own fields
    (``role`` ``response``: its responseId, its answers object) are named by no setting."""
    if source != "forms_api":
        return f"results.columns.{role}"
    if role == "response":
        return "the Forms API listing"
    return f"results.forms_api.question_ids.{role}"


def skipped_reasons(conn: sa.Connection) -> dict[str, str]:
    """Fingerprint → reason of every row recorded as skipped (read again on every run)."""
    rows = conn.execute(sa.select(sync_skipped_rows.c.fingerprint, sync_skipped_rows.c.reason))
    return {fingerprint: reason for fingerprint, reason in rows}


def record_rereads(
    conn: sa.Connection, batch: SourceBatch, before: Mapping[str, str], origin: str
) -> None:
    """After a batch is stored, the skipped table says what is still unreadable.

    A complete batch (every row of the source ``origin``, ``ResultsSource.identity``)
    replaces this source's records: a row read now, or skipped under another identity (a
    fixed zone revealed a bad rating; a re-export in another layout), leaves no stale record.
    Those of another source are not forgotten: another sheet, tab, file or form was read,
    even of the same kind (a row of both is the source's that read it last:
    ``ingest._store_skipped``). Those recorded before sources were told apart (no
    ``source_key``) that it did not find are, when they are of its kind: which source they
    came from is not known, and kept they would be counted for ever (those it found are this
    source's now). An incremental batch removes the records of the rows it found readable
    now (``batch.resolved_skips``). Rows still skipped for another reason get the new reason.
    """
    if batch.complete:
        current = {s.fingerprint for s in batch.skipped}
        forget_skipped(
            conn,
            [f for f in _skipped_of_source(conn, batch.source, origin) if f not in current],
        )
    else:
        forget_skipped(conn, batch.resolved_skips)
    changed = [
        {"fp": s.fingerprint, "reason": s.reason, "detail": s.detail[:255]}
        for s in batch.skipped
        if before.get(s.fingerprint, s.reason) != s.reason
    ]
    if changed:
        table = sync_skipped_rows
        conn.execute(
            sa.update(table)
            .where(table.c.fingerprint == sa.bindparam("fp"))
            .values(reason=sa.bindparam("reason"), detail=sa.bindparam("detail")),
            changed,
        )


def _of_source(kind: str, origin: str) -> Any:
    """The skipped rows of the source ``origin``, and those of its ``kind`` recorded before
    sources were told apart (migration 0019): what its read of every row weighs."""
    table = sync_skipped_rows
    return sa.or_(
        table.c.source_key == origin[:255],
        sa.and_(table.c.source_key.is_(None), table.c.source == kind),
    )


def _skipped_of_source(conn: sa.Connection, kind: str, origin: str) -> list[str]:
    """The fingerprints of :func:`_of_source`'s rows."""
    query = sa.select(sync_skipped_rows.c.fingerprint).where(_of_source(kind, origin))
    return list(conn.execute(query).scalars())


def count_of_source(conn: sa.Connection, kind: str, origin: str) -> int:
    """How many skipped rows a read of every row of the source ``origin`` of ``kind`` would
    forget if it did not find them (:func:`_of_source`)."""
    query = sa.select(sa.func.count()).select_from(sync_skipped_rows)
    return int(conn.execute(query.where(_of_source(kind, origin))).scalar_one())


def forget_skipped(conn: sa.Connection, fingerprints: Iterable[str]) -> None:
    """Rows that were skipped and are read now: they leave the skipped table."""
    for condition in among(conn, sync_skipped_rows.c.fingerprint, fingerprints):
        conn.execute(sa.delete(sync_skipped_rows).where(condition))
