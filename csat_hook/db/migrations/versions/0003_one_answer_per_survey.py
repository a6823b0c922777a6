"""One answer per survey, whatever spelling of its reference; row identities.

Before this revision a survey reference had several spellings that verified (base64 slack:
the unused low bits of the last character, ``=`` padding, the ``+/`` alphabet), and answers
were unique on the token *text*: one survey answered under four spellings was four answers.
Now answers are unique on ``survey_key``, the survey the reference identifies (its payload,
re-encoded canonically: decoding needs no secret), and answer history carries it too.

Answers stored under several spellings of one survey collapse into one: the latest
submission wins (in the same instant, the one further down the sheet, then the one stored
last); the others move into ``answer_history``. Nothing is deleted.

Fingerprints of answers and history become row identities (a digest of the parsed values,
see ``csat_hook/sync/sources/identity.py``), so re-reading those rows after the upgrade changes
nothing; unverified and skipped rows keep theirs until the sync reads their row again and
recognises it. The decoding and the identity are frozen copies here (a migration must give
the same result whatever the code does later); tests check they agree with the live code.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections import defaultdict
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = sa.String(1024)
IDENTITY_PREFIX = "r2-"

answers = sa.table(
    "answers",
    sa.column("id", sa.Integer()),
    sa.column("survey_key", KEY),
    sa.column("token", sa.String()),
    sa.column("rating", sa.Integer()),
    sa.column("comment", sa.Text()),
    sa.column("submitted_at", sa.DateTime()),
    sa.column("field_agent", sa.String()),
    sa.column("field_ticket", sa.String()),
    sa.column("fields_edited", sa.Boolean()),
    sa.column("source", sa.String()),
    sa.column("source_ref", sa.String()),
    sa.column("updated_at", sa.DateTime()),
    sa.column("fingerprint", sa.String()),
)
history = sa.table(
    "answer_history",
    sa.column("id", sa.Integer()),
    sa.column("fingerprint", sa.String()),
    sa.column("survey_key", KEY),
    sa.column("token", sa.String()),
    sa.column("rating", sa.Integer()),
    sa.column("comment", sa.Text()),
    sa.column("submitted_at", sa.DateTime()),
    sa.column("field_agent", sa.String()),
    sa.column("field_ticket", sa.String()),
    sa.column("fields_edited", sa.Boolean()),
    sa.column("source", sa.String()),
    sa.column("source_ref", sa.String()),
    sa.column("recorded_at", sa.DateTime()),
)

# --- frozen copies ------------------------------------------------------------------------------

_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def survey_key(token: str) -> str:
    """The survey a stored reference identifies: its payload, canonically encoded.

    Decodes as the verifier before this revision did (so every spelling it accepted gives the
    same key), then encodes as ``tokens.sign`` does. A reference that does not decode (none
    should be stored) is its own survey.
    """
    text = token.strip()
    payload = text.partition(".")[0]
    try:
        data = payload.encode("ascii").translate(_FROM_URLSAFE)
        raw = binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except (ValueError, UnicodeEncodeError):
        return text[:1024]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _text(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def answer_identity(
    submitted_at: datetime,
    token: str,
    rating: int,
    comment: str | None,
    field_agent: str | None,
    field_ticket: str | None,
) -> str:
    """``sources.identity.submission_identity`` of a stored answer (naive datetimes are UTC)."""
    if submitted_at.tzinfo is not None:
        submitted_at = submitted_at.astimezone(UTC).replace(tzinfo=None)
    seconds = (submitted_at - datetime(1970, 1, 1)) // timedelta(seconds=1)
    parts = (
        "answer",
        str(seconds),
        token,
        str(rating),
        _text(comment or ""),
        _text(field_agent or ""),
        _text(field_ticket or ""),
    )
    payload = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return IDENTITY_PREFIX + hashlib.blake2b(payload, digest_size=16).hexdigest()


def position(ref: str | None) -> tuple[int, str]:
    """``records.position``: "row 17" by its number, anything else before any row."""
    kind, _, number = (ref or "").partition(" ")
    if kind == "row" and number.isdigit():
        return int(number), ""
    return -1, ref or ""


# --- the upgrade ----------------------------------------------------------------------------------


def _identity_of(row: Any) -> str:
    return answer_identity(
        row.submitted_at, row.token, row.rating, row.comment, row.field_agent, row.field_ticket
    )


def _unique(identity: str, row_id: int, taken: set[str]) -> str:
    """The identity, or (the same submission is stored twice) one marked with the row id."""
    fingerprint = identity if identity not in taken else f"{identity}~{row_id}"
    taken.add(fingerprint)
    return fingerprint


def _backfill_history(conn: sa.Connection) -> set[str]:
    """Key and identity for every history row; returns the fingerprints now in use."""
    taken: set[str] = set()
    updates = []
    for row in conn.execute(sa.select(history).order_by(history.c.id)):
        updates.append(
            {
                "row_id": row.id,
                "key": survey_key(row.token),
                "fp": _unique(_identity_of(row), row.id, taken),
            }
        )
    if updates:
        conn.execute(
            sa.update(history)
            .where(history.c.id == sa.bindparam("row_id"))
            .values(survey_key=sa.bindparam("key"), fingerprint=sa.bindparam("fp")),
            updates,
        )
    return taken


def _collapse_answers(conn: sa.Connection, taken: set[str]) -> None:
    """One answer per survey key; the others into the history."""
    by_key: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(sa.select(answers)):
        by_key[survey_key(row.token)].append(row)
    keep, moved, dropped = [], [], []
    for key, rows in by_key.items():
        rows.sort(key=lambda r: (r.submitted_at, position(r.source_ref), r.id))
        *older, latest = rows
        keep.append({"row_id": latest.id, "key": key, "fp": _identity_of(latest)})
        for row in older:
            moved.append(
                {
                    "fingerprint": _unique(_identity_of(row), row.id, taken),
                    "survey_key": key,
                    "token": row.token,
                    "rating": row.rating,
                    "comment": row.comment,
                    "submitted_at": row.submitted_at,
                    "field_agent": row.field_agent,
                    "field_ticket": row.field_ticket,
                    "fields_edited": row.fields_edited,
                    "source": row.source,
                    "source_ref": row.source_ref,
                    "recorded_at": row.updated_at,
                }
            )
            dropped.append({"row_id": row.id})
    if moved:
        conn.execute(sa.insert(history), moved)
        conn.execute(sa.delete(answers).where(answers.c.id == sa.bindparam("row_id")), dropped)
    if keep:
        conn.execute(
            sa.update(answers)
            .where(answers.c.id == sa.bindparam("row_id"))
            .values(survey_key=sa.bindparam("key"), fingerprint=sa.bindparam("fp")),
            keep,
        )


def upgrade() -> None:
    op.add_column("answers", sa.Column("survey_key", KEY))
    op.add_column("answer_history", sa.Column("survey_key", KEY))
    conn = op.get_bind()
    taken = _backfill_history(conn)
    _collapse_answers(conn, taken)
    with op.batch_alter_table("answers") as batch:
        batch.alter_column("survey_key", existing_type=KEY, nullable=False)
        batch.drop_constraint("uq_answers_token", type_="unique")
        batch.create_unique_constraint("uq_answers_survey_key", ["survey_key"])
    op.drop_index("ix_answer_history_token", table_name="answer_history")
    with op.batch_alter_table("answer_history") as batch:
        batch.alter_column("survey_key", existing_type=KEY, nullable=False)
    op.create_index("ix_answer_history_survey_key", "answer_history", ["survey_key"])


def downgrade() -> None:
    """Back to answers unique on the token text (still one per survey: the key is a function
    of the token). Identities stay in the fingerprint columns: the 0002 code does not know
    them and reads every source row once more."""
    op.drop_index("ix_answer_history_survey_key", table_name="answer_history")
    with op.batch_alter_table("answer_history") as batch:
        batch.drop_column("survey_key")
    op.create_index("ix_answer_history_token", "answer_history", ["token"])
    with op.batch_alter_table("answers") as batch:
        batch.drop_constraint("uq_answers_survey_key", type_="unique")
        batch.create_unique_constraint("uq_answers_token", ["token"])
        batch.drop_column("survey_key")
