"""The tables, on SQLite and PostgreSQL alike, and the survey statuses they hold.

Every statement that reads or writes them lives with its flow: ``intake/store.py``,
``outbox/store/`` and ``sync/store.py``. The tables are defined together because Alembic
compares one metadata with the database (``csat-hook db upgrade``); each migration in
``db/migrations/versions`` freezes the schema as it was, on purpose.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from csat_hook.db.text import folded

# Survey statuses (surveys.status) and the delivery queue's (outbox.status).
QUEUED, SENT, FAILED, SKIPPED, CANCELLED = "queued", "sent", "failed", "skipped", "cancelled"
PENDING, SENDING = "pending", "sending"
OUTBOX_STATUSES = (PENDING, SENDING, SENT, FAILED, CANCELLED)
# What an outbox row delivers (outbox.kind): a survey reply, or an alert to one destination.
REPLY, ALERT = "reply", "alert"
OUTBOX_KINDS = (REPLY, ALERT)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones; values are stored as naive UTC and handed back aware, so
    comparisons in SQL and in Python agree on both backends.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_to_column = UTCDateTime().process_bind_param  # built once: statements run it per row


def naive_utc(value: datetime | None) -> datetime | None:
    """``value`` as a :class:`UTCDateTime` column stores it (naive UTC): for parameters sent
    past SQLAlchemy's type processing (``db/frozen.py: driver_rows``)."""
    return _to_column(value, None)


def naive_utc_iso(value: datetime | None) -> str | None:
    """:func:`naive_utc` in ISO 8601, which PostgreSQL's ``timestamp`` input reads: for rows
    sent as one JSON parameter."""
    naive = _to_column(value, None)
    return naive.isoformat() if naive is not None else None


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per survey decision: queued, sent, failed, skipped (by the send policy) or
# cancelled (reopened before it went out). The unique key is what makes a vendor's retry of
# the same close land on the same row.
surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("occurrence", sa.String(191), nullable=False, server_default=""),
    sa.Column("agent_id", sa.String(191)),
    sa.Column("agent_name", sa.String(255)),
    sa.Column("agent_email", sa.String(255)),
    sa.Column("customer_id", sa.String(191)),
    sa.Column("customer_email", sa.String(255)),
    sa.Column("customer_name", sa.String(255)),
    sa.Column("team", sa.String(255)),
    sa.Column("channel", sa.String(191)),
    sa.Column("language", sa.String(16)),
    sa.Column("token", sa.String(1024)),
    sa.Column("link", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("skip_reason", sa.String(64)),
    sa.Column("closed_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    # A digest of the close's body (its JSON document, whatever its key order or spacing):
    # a retry of a close that names no time is told from a new close by it (intake/store.py,
    # SAME_DELIVERY; migration 0029). None for surveys stored before it.
    sa.Column("close_digest", sa.String(64)),
    sa.UniqueConstraint("helpdesk", "dialog_id", "occurrence"),
    sa.UniqueConstraint("token"),
    sa.Index(None, "helpdesk", "customer_id", "created_at"),
    sa.Index(None, "status", "sent_at"),
)
# The customer cool-down's other look-up (intake/store.py, latest_surveys by "email"): by the
# e-mail as the database lowers it (db/text.py, folded), which no column index serves. Without
# it every close under policy.customer_cooldown_days read every survey of its helpdesk
# (migration 0028). The expression is the one the statements write, db/text.py's folded().
sa.Index(
    "ix_surveys_helpdesk_customer_email_folded",
    surveys.c.helpdesk,
    folded(surveys.c.customer_email),
    surveys.c.created_at,
)

# The delivery queue: survey replies (kind ``reply``, one per survey) and alerts (kind
# ``alert``, one per alert and destination, ``delivery_key`` = ``<alert id>:<destination>``).
# A row is claimed by setting status=sending with a lease, renewed by its worker's heartbeat.
# A worker that dies mid-delivery stops beating (or its lease expires): a live worker puts the
# row back to pending with ``uncertain_since`` set, since the dead one may have posted it.
# ``uncertain_since`` (the start of the earliest attempt whose outcome is unknown) means "look
# whether it landed before sending again". ``helpdesk``/``dialog_id`` of an alert row are the
# rated conversation's (empty for an alert about an agent, a digest).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("survey_id", sa.ForeignKey("surveys.id", ondelete="CASCADE")),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("context", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("last_error", sa.String(500)),
    sa.Column("last_http_status", sa.Integer()),
    sa.Column("external_id", sa.String(191)),
    sa.Column("body", sa.Text()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    sa.Column("uncertain_since", UTCDateTime()),
    sa.Column("kind", sa.String(16), nullable=False, server_default=REPLY),
    sa.Column("alert_id", sa.ForeignKey("alerts.id", ondelete="CASCADE")),
    sa.Column("destination", sa.String(64)),
    sa.Column("delivery_key", sa.String(191)),
    # Set by an erasure that found the reply being sent (erasure/store.py): its outcome keeps
    # no customer data (outbox/store/outcomes.py) and it is never sent again. Set too on a
    # reply an erasure cancelled before it went out: a retry of its close never re-arms it
    # (intake/store.py, ERASED; migration 0029 marked those cancelled before).
    sa.Column("erased_at", UTCDateTime()),
    # An alert delivery's destination kind (``webhook``, ``slack``...) as it was queued, or
    # as its last attempt went out: a destination whose kind changed under the same name is
    # sent the alert rendered for its new kind, and what was the old kind's (an attempt of
    # unknown outcome, a follow-up's e-mail recipients) is not applied to it
    # (outbox/alert_delivery.py). None: a reply, or queued before migration 0023 (sent as the
    # destination is configured, as before).
    sa.Column("destination_kind", sa.String(32)),
    sa.UniqueConstraint("survey_id"),
    sa.UniqueConstraint("kind", "delivery_key"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "destination", "created_at"),
)

# One row per running delivery worker (``csat-hook worker``, or the delivery threads of a
# ``serve`` web process): its heartbeat. A worker whose ``beat_at`` is older than
# ``delivery.worker_dead_after_seconds`` is gone; its replies are taken over without waiting
# for their leases. A graceful stop deletes the row; a killed worker's row is deleted by the
# live worker that takes its replies over. ``listening_at`` is the beat's time when the
# worker's NOTIFY listener was known to hear (NULL when it was not): only such a worker is
# the one woken for a queued reply (csat_hook/outbox/wake.py).
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("beat_at", UTCDateTime(), nullable=False),
    sa.Column("listening_at", UTCDateTime()),
)


# --- the sync ---------------------------------------------------------------------------------
# One row per survey that got an answer: the latest submission, credited from the signed
# reference (helpdesk, dialog, agent as they were at send time), never from editable fields.
# ``survey_key`` is the survey the reference identifies (its payload, tokens.survey_key), so
# one survey has one answer however its reference was spelled; ``token`` is the reference as
# read.
answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("survey_key", sa.String(1024), nullable=False),
    sa.Column("token", sa.String(1024), nullable=False),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("agent_key", sa.String(255), nullable=False),
    sa.Column("issued_at", UTCDateTime(), nullable=False),
    sa.Column("rating", sa.Integer(), nullable=False),
    sa.Column("comment", sa.Text()),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("field_agent", sa.String(255)),
    sa.Column("field_ticket", sa.String(255)),
    sa.Column("fields_edited", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_ref", sa.String(191)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The source row of this current submission; earlier ones are in answer_history.
    sa.Column("fingerprint", sa.String(64)),
    # The 0–10 "would you recommend us" answer when the form asks it (migration 0005).
    sa.Column("nps", sa.SmallInteger()),
    sa.UniqueConstraint("survey_key"),
    # No index on the fingerprint: processed_among (sync/store.py) finds an answer by its
    # survey key (migration 0015). None on the agent either: no statement reads answers by
    # agent (migration 0026).
)

# Credited submissions that are not the current answer: earlier ones, and answers replaced by a
# later submission or edited in place. ``fingerprint`` (here and on every sync table) is the
# row's identity, a digest of its parsed values (sync/sources/identity.py): reading the same row
# again, or the same answers from another export, is a no-op.
answer_history = sa.Table(
    "answer_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("survey_key", sa.String(1024), nullable=False),
    sa.Column("token", sa.String(1024), nullable=False),
    sa.Column("rating", sa.Integer(), nullable=False),
    sa.Column("comment", sa.Text()),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("field_agent", sa.String(255)),
    sa.Column("field_ticket", sa.String(255)),
    sa.Column("fields_edited", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_ref", sa.String(191)),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("nps", sa.SmallInteger()),
    sa.UniqueConstraint("fingerprint"),
    sa.Index(None, "survey_key"),
)

# Answers whose reference is missing, malformed or forged: kept apart, never credited (a
# forged one is, once a secret added to token.previous_secrets verifies it: sync/reverify.py).
unverified_answers = sa.Table(
    "unverified_answers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_ref", sa.String(191)),
    sa.Column("submitted_at", UTCDateTime()),
    sa.Column("rating", sa.Integer()),
    sa.Column("comment", sa.Text()),
    sa.Column("field_agent", sa.String(255)),
    sa.Column("field_ticket", sa.String(255)),
    sa.Column("source_row", sa.JSON(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    # What crediting a forged one later needs (sync/reverify.py): its reference as read, its
    # NPS answer, and the secrets it was last checked under (tokens.key_set_id).
    sa.Column("token", sa.String(1024)),
    sa.Column("nps", sa.SmallInteger()),
    sa.Column("checked_with", sa.String(32)),
    # Which source it was read from (``ResultsSource.identity``: the sheet and tab, the CSV
    # file, the form), beside its kind (``source``): a read of every row of that source
    # forgets it once the row is gone (sync/ingest.py). None: stored before migration 0018.
    sa.Column("source_key", sa.String(255)),
    sa.UniqueConstraint("fingerprint"),
    sa.Index(None, "reason", "checked_with"),
)

# Source rows that could not be read as an answer (bad rating, no timestamp...), remembered
# so each is reported once, with its row number, instead of on every run.
sync_skipped_rows = sa.Table(
    "sync_skipped_rows",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_ref", sa.String(191)),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(255)),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    # Which source read it last (``ResultsSource.identity``: the sheet and tab, the CSV file,
    # the form), beside its kind (``source``): a read of every row of that source forgets it
    # once the row is gone (sync/skips.py). None: recorded before migration 0019.
    sa.Column("source_key", sa.String(255)),
    sa.UniqueConstraint("fingerprint"),
)

# Per-source incremental state: the Forms API watermark (the latest submission time seen).
sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("source", sa.String(255), primary_key=True),
    sa.Column("watermark", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# The raw form of each processed source row (a digest of its cells and of the settings that
# read them) → the row's identity: a later run recognises an unchanged row from its cells,
# without parsing it again (sources/table.py). Only a cache: a row whose identity is no longer
# processed is parsed again.
sync_row_digests = sa.Table(
    "sync_row_digests",
    metadata,
    sa.Column("digest", sa.String(32), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)

# What each output last wrote (a digest of its contents), so an unchanged report is not
# written again (outputs/sheets.py).
sync_outputs = sa.Table(
    "sync_outputs",
    metadata,
    sa.Column("output", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("written_at", UTCDateTime(), nullable=False),
    # The key of the report last written there (data version, settings, today) and what a
    # run that skips the report needs of it (files, tabs, agents): sync/report_key.py.
    sa.Column("report_key", sa.String(64)),
    sa.Column("report_detail", sa.JSON()),
    # A spreadsheet's tabs csat-hook owns (their sheetIds), the only ones the report writes:
    # sync/owned_tabs.py. Kept across failed writes (the report key is forgotten before one).
    sa.Column("tabs", sa.JSON()),
)

# The last whole read of each source that reads everything (a responses sheet, a CSV file):
# a digest of its bytes and of every setting that reads them, and what that read found
# (counts, warnings, columns), valid while the processed rows number ``known_count``. A later
# read with the same digest is that read again and is not parsed (sync/read_memo.py). Any
# other read of every row (not clean, or a form's every response) leaves only its data rows'
# count, under no settings, for the warning of a source read with none; and, under
# "remembered <source>", what a source keeps for its next read (the Forms API's forms.get
# answer: read_memo.remember). Only a cache: a missing or stale entry costs a parse (or that
# count in a warning, or a forms.get), never another outcome.
sync_source_reads = sa.Table(
    "sync_source_reads",
    metadata,
    sa.Column("source", sa.String(255), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("known_count", sa.BigInteger(), nullable=False),
    sa.Column("outcome", sa.JSON(), nullable=False),
    sa.Column("read_at", UTCDateTime(), nullable=False),
)

# A counter of writes to the tables the report reads, bumped by SQLite triggers (migration
# 0009 lists the tables); on PostgreSQL the data version is a fingerprint instead and this row
# stays 0. Read by sync/report_key.py.
data_version = sa.Table(
    "data_version",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
)

# SQLite: which survey and answer rows were inserted, updated or deleted, in commit order (a
# writer holds the whole database), written by triggers (migration 0017) whoever writes. A
# sync that kept its last report's dataset reads the rows listed since it was built and
# applies them (sync/changes.py) instead of reading every row again. ``tbl`` "pruned": the
# rows up to ``row_id`` were deleted (a dataset built before then is built anew); "bulk": a
# bulk write of answers listed once (migration 0027; a dataset built before it is built anew).
# PostgreSQL leaves it empty: there the rows changed are found by their ``xmin``.
row_changes = sa.Table(
    "row_changes",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("tbl", sa.String(16), nullable=False),
    sa.Column("row_id", sa.BigInteger(), nullable=False),
    # AUTOINCREMENT: a seq is never used again, not even once the rows before were pruned
    # (SQLite would otherwise number from the largest left, 1 in an empty table).
    sqlite_autoincrement=True,
)

# SQLite: a row here while a bulk write is listed once instead of per row (migration 0027:
# the answers' triggers fire only when it is empty). Filled and emptied inside that writer's
# own transaction (sync/changes.py: unlisted), so no other connection ever sees a row.
row_changes_paused = sa.Table(
    "row_changes_paused",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
)

# A lease taken with compare-and-set, so overlapping syncs (cron + a manual run, two clock
# processes) are serialised on SQLite and PostgreSQL alike. A holder that died leaves a lease
# that expires.
sync_locks = sa.Table(
    "sync_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(191)),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("acquired_at", UTCDateTime()),
)


# One row per survey whose customer data was erased (``csat-hook erase``): the sync's ingest
# matches a submission to it by survey key (tokens.survey_key, the one the answers are keyed
# by) and stores its rating without its comment and the form fields the respondent typed, so
# an answer still in the source (a sheet, a form, a CSV file) is never stored again with the
# text that was erased; an unverified one is matched by its reference's survey key or by its
# ticket field (``dialog_id``: the survey's dialog) and kept without its comment, typed
# fields and cells (migration 0012). Not read by the report: nothing of it is shown.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("survey_key", sa.String(1024), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("erased_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("survey_key"),
    sa.Index(None, "dialog_id"),
)

# One row per dialog erased by ``csat-hook erase --dialog``, whether or not anything of it was
# stored then (migration 0016): its answers may all be still to come from the source, or be
# there only as an unverified row typed with its ticket number. The sync's ingest stores a
# later submission credited to that helpdesk's dialog (by its verified reference), an
# unverified one whose reference names it, and one whose ticket field is the dialog (any
# helpdesk's: the field names none) without its comment, typed fields and cells, as it does
# for an ``erasures`` survey. ``dialog_id`` is as wide as a ticket field (which is all that
# ties such a row to it); the unique index, dialog first, serves the look-up by ticket.
erased_dialogs = sa.Table(
    "erased_dialogs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(255), nullable=False),
    sa.Column("erased_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("dialog_id", "helpdesk"),
)


# Reopens with a believable time, by dialog: a reopen may be delivered before its own close,
# which vendors do not promise against. A close the helpdesk says happened no later than
# the remembered reopen is stale (the dialog was reopened after it) and is skipped
# (``reopened_after_close``). One row per dialog, the latest believable reopen time; pruned by
# receive time (intake/store.py: ``REOPEN_MEMORY``). The report reads none of it.
early_reopens = sa.Table(
    "early_reopens",
    metadata,
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("reopened_at", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("helpdesk", "dialog_id"),
    sa.Index(None, "received_at"),
)


# --- alerts -----------------------------------------------------------------------------------
# One row per alert: a rule matched an answer (``kind`` answer: ``key`` is the digest of rule,
# survey and rating, so a re-run, ``--full`` or an edit that keeps the rating adds nothing, a
# lowered rating adds one, and a raised one the rule alerted on adds none), an agent's CSAT
# went significantly below target (``agent``: rule, agent and episode), a digest is due
# (``digest``: digest and period), or a destination's cap was reached (``overflow``). Written
# by the sync in the transaction that stores the answers; each alert's deliveries are outbox
# rows. ``payload`` is the message as it is sent (it holds the customer's comment).
# ``handled`` is what the team marked (the Alerts tab's column, or ``csat-hook alerts
# handle``); ``handled_sheet`` is the value last written to that column, so an edit made in
# the sheet is told from one made on the command line.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(48), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("survey_key", sa.String(1024)),
    sa.Column("helpdesk", sa.String(64)),
    sa.Column("dialog_id", sa.String(191)),
    sa.Column("agent_key", sa.String(255)),
    sa.Column("rating", sa.Integer()),
    sa.Column("previous_rating", sa.Integer()),
    sa.Column("submitted_at", UTCDateTime()),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("handled", sa.String(100)),
    sa.Column("handled_at", UTCDateTime()),
    sa.Column("handled_sheet", sa.String(100)),
    # An answer alert withdrawn before it went out: its answer was edited so that the rule no
    # longer matches it (alerts/answers.py). Its deliveries not yet started are cancelled, and
    # a worker claiming one later cancels it (outbox/alert_delivery.py); set back to NULL when
    # the answer comes back to the alerted score.
    sa.Column("cancelled_at", UTCDateTime()),
    sa.Column("cancel_reason", sa.String(32)),
    sa.UniqueConstraint("key"),
    sa.UniqueConstraint("ref"),
    sa.Index(None, "kind", "created_at"),
)

# What the alert rules remember between syncs: when each rule was first seen (answers
# submitted before that, less ``alerts.backfill_minutes``, never alert), and each agent's
# state under an agent rule (``ok``/``below``, the episode number of the current "below").
alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("episode", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("since", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


# --- short links ------------------------------------------------------------------------------
# One row per answered request to a short link (``GET /s/<reference>[/<score>]``, or HEAD):
# intent, never a rating. ``automated`` marks a click that looks like a link scanner or a
# preview fetcher, with ``reason`` (``head``, ``prefetch``, ``no_agent``, ``scanner_agent``,
# ``too_soon``, ``burst``) and ``detail`` (the scanner's name when its User-Agent said it, the
# kind of prefetch; never the User-Agent itself, nor the client's address). The funnel counts
# a survey as opened when it has a human click (clicks/funnel.py). Deleted after
# ``survey.links.retention_days`` (migration 0007).
link_clicks = sa.Table(
    "link_clicks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("survey_id", sa.ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False),
    sa.Column("score", sa.SmallInteger()),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("clicked_at", UTCDateTime(), nullable=False),
    sa.Column("automated", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("reason", sa.String(32)),
    sa.Column("detail", sa.String(64)),
    sa.Index(None, "survey_id", "clicked_at"),
    sa.Index(None, "clicked_at"),
)
