"""Every statement the outbox runs, by responsibility: :mod:`.enqueue` (queueing replies and
alert deliveries, cancelling waiting replies), :mod:`.claims` (claiming due rows with a
lease), :mod:`.workers` (heartbeats, takeovers), :mod:`.outcomes` (recording outcomes).
Every name is importable from here.

A row is a reply (``kind`` reply, one per survey) or the delivery of an alert to one
destination (``kind`` alert, one per ``delivery_key``); both go through the same claim, lease,
heartbeat, retry and failed view. Only replies touch the ``surveys`` rows. An alert that went
out but was refused for now by some of its receivers gets a follow-up row (its key marked
:data:`FOLLOW_UP_MARK`, the receivers left in its ``context``), queued in the transaction that
marks it sent (:func:`mark_sent_and_follow_up`).

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction. A worker only finishes its own claim (``claimed_by``), so a late answer after a
takeover can never overwrite the new owner's state.

The life of a reply: ``pending`` (due at ``next_attempt_at``) → claimed: ``sending`` with a
lease, renewed by the owner's heartbeat → ``sent`` / ``failed`` / back to ``pending`` for a
retry. An attempt whose outcome is unknown (a timeout, a dropped connection, or a worker that
died mid-delivery) sets ``uncertain_since``; the next attempt first looks whether the reply
landed. A claim only takes ``pending`` rows (one index range); ``sending`` rows of a worker
that stopped beating, or whose lease expired, are put back to ``pending`` by
:func:`release_stale`, due once whatever the old owner sent has settled.
"""

from __future__ import annotations

from csat_hook.outbox.store.claims import CLAIMED
from csat_hook.outbox.store.claims import REOPENED_SINCE
from csat_hook.outbox.store.claims import SURVEY
from csat_hook.outbox.store.claims import alerts_by_id
from csat_hook.outbox.store.claims import claim_due
from csat_hook.outbox.store.claims import claim_with_surveys
from csat_hook.outbox.store.claims import next_due_at
from csat_hook.outbox.store.claims import surveys_by_id
from csat_hook.outbox.store.enqueue import ALERT_COLUMNS
from csat_hook.outbox.store.enqueue import FOLLOW_UP_MARK
from csat_hook.outbox.store.enqueue import KIND_CHANGED
from csat_hook.outbox.store.enqueue import MAY_HAVE_ARRIVED
from csat_hook.outbox.store.enqueue import NOT_FOR_DESTINATION
from csat_hook.outbox.store.enqueue import OUTBOX_COLUMNS
from csat_hook.outbox.store.enqueue import REOPENED
from csat_hook.outbox.store.enqueue import REOPENED_NOTE
from csat_hook.outbox.store.enqueue import UNROUTED
from csat_hook.outbox.store.enqueue import WITHDRAWN_PREFIX
from csat_hook.outbox.store.enqueue import cancel_unrouted
from csat_hook.outbox.store.enqueue import cancel_waiting
from csat_hook.outbox.store.enqueue import cancel_withdrawn
from csat_hook.outbox.store.enqueue import enqueue_alerts
from csat_hook.outbox.store.enqueue import enqueue_replies
from csat_hook.outbox.store.enqueue import follow_up_generation
from csat_hook.outbox.store.enqueue import follow_up_key
from csat_hook.outbox.store.enqueue import is_follow_up
from csat_hook.outbox.store.enqueue import kept_on_reopen
from csat_hook.outbox.store.enqueue import mark_unrouted
from csat_hook.outbox.store.enqueue import reopened_mark
from csat_hook.outbox.store.enqueue import requeue_withdrawn
from csat_hook.outbox.store.enqueue import unmark_reopened
from csat_hook.outbox.store.enqueue import unrouted_reason
from csat_hook.outbox.store.enqueue import withdrawn_note
from csat_hook.outbox.store.enqueue import withdrawn_reason
from csat_hook.outbox.store.outcomes import SentMark
from csat_hook.outbox.store.outcomes import mark_cancelled
from csat_hook.outbox.store.outcomes import mark_failed
from csat_hook.outbox.store.outcomes import mark_reply_cancelled
from csat_hook.outbox.store.outcomes import mark_sent
from csat_hook.outbox.store.outcomes import mark_sent_after_takeover
from csat_hook.outbox.store.outcomes import mark_sent_and_follow_up
from csat_hook.outbox.store.outcomes import mark_sent_many
from csat_hook.outbox.store.outcomes import reschedule
from csat_hook.outbox.store.workers import heartbeat
from csat_hook.outbox.store.workers import release_stale
from csat_hook.outbox.store.workers import unregister

__all__ = [
    "ALERT_COLUMNS",
    "CLAIMED",
    "FOLLOW_UP_MARK",
    "KIND_CHANGED",
    "MAY_HAVE_ARRIVED",
    "NOT_FOR_DESTINATION",
    "OUTBOX_COLUMNS",
    "REOPENED",
    "REOPENED_NOTE",
    "REOPENED_SINCE",
    "SURVEY",
    "UNROUTED",
    "WITHDRAWN_PREFIX",
    "SentMark",
    "alerts_by_id",
    "cancel_unrouted",
    "cancel_waiting",
    "cancel_withdrawn",
    "claim_due",
    "claim_with_surveys",
    "enqueue_alerts",
    "enqueue_replies",
    "follow_up_generation",
    "follow_up_key",
    "heartbeat",
    "is_follow_up",
    "kept_on_reopen",
    "mark_cancelled",
    "mark_failed",
    "mark_reply_cancelled",
    "mark_sent",
    "mark_sent_after_takeover",
    "mark_sent_and_follow_up",
    "mark_sent_many",
    "mark_unrouted",
    "next_due_at",
    "release_stale",
    "reopened_mark",
    "requeue_withdrawn",
    "reschedule",
    "surveys_by_id",
    "unmark_reopened",
    "unregister",
    "unrouted_reason",
    "withdrawn_note",
    "withdrawn_reason",
]
