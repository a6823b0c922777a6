"""Delivering one claimed row: a reply (render its link and text, post it) or an alert (hand
it to its destination), and say what happened.

:func:`deliver_one` is the unit of work of the worker loop (:mod:`csat_hook.outbox.worker`),
as a task is in procrastinate. It never touches the database and never raises for a vendor's
answer: it returns an :data:`Outcome` (sent, retry later, failed) that the loop records. It
dispatches on the row's ``kind``; both kinds share the attempt budget, the retry policy and
the fence.

Exactly one reply, even when an outcome is unknown. When an earlier attempt may have landed
(it timed out, its connection dropped, or its worker died mid-delivery: the row's
``uncertain_since``), the reply is first looked up in the dialog (:meth:`Helpdesk.find_reply`,
looking for the survey's signed reference):

* found: recorded as sent with the vendor's message id, nothing is posted;
* not found: posted; or, the dialog reopened since (``cancel_waiting``'s mark), cancelled;
  nothing is ever posted into a reopened dialog, not even where it cannot be looked up;
* the vendor cannot be asked now (a retryable error): nothing is posted, the look-up is tried
  again later;
* the helpdesk cannot be asked at all (no look-up: the generic adapter without ``lookup``,
  the dry run; or a permanent refusal such as no permission to list): posted again, as before
  look-ups existed, with a warning and a note in ``last_error`` (the dialog may show it twice);
  once: a resend whose outcome is unknown too fails the reply, never a copy per attempt.

An adapter that reads the dialog's status right before posting (where the reply would change
it, or a reopen may not be reported in time) and finds it open again since the close raises
:class:`~csat_hook.errors.DialogReopenedError` without posting: the reply is cancelled as the
reopen's webhook would have cancelled it (``policy.cancel_on_reopen``), settled unless an
earlier attempt's outcome could not be looked up.

An alert whose earlier attempt may have landed is settled as its destination says
(:meth:`~csat_hook.notify.base.Destination.settle`): a helpdesk note is looked up by its
"Alert ref:" line, as a reply is; an e-mail or a webhook is sent again with the same
Message-ID or ``webhook-id`` (the receiver can drop the copy); a Slack or Telegram message,
which can neither be looked up nor deduplicated, is by default recorded as sent, unconfirmed,
and not sent again (``on_unknown_outcome: skip``): such an answer nearly always means the
message arrived, and a second copy would be the likelier error.

Every row ends. A row claimed past ``delivery.max_attempts`` with its outcome unknown gets
one more claim to settle it (a look-up, or its destination's rule), which always ends it:
sent (found) or failed. Only a claim that itself ends without an outcome (its worker died, the
outcome could not be written) leaves it unsettled; after :data:`SETTLE_CLAIMS` such claims
past the budget the row is failed without a request (never sent again: failing a reply that
may have landed is the lesser error). An unexpected exception never escapes
:func:`deliver_one`: before the request it is a failure, after it an outcome unknown (see
:func:`~csat_hook.outbox.reply_delivery.deliver_reply`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from csat_hook.db.schema import ALERT
from csat_hook.db.schema import REPLY
from csat_hook.outbox.alert_delivery import deliver_alert
from csat_hook.outbox.reply_delivery import deliver_reply
from csat_hook.outbox.results import Delivery
from csat_hook.outbox.results import Failed
from csat_hook.outbox.results import Outcome
from csat_hook.outbox.results import Retry
from csat_hook.outbox.results import Sent
from csat_hook.outbox.results import unexpected_error

__all__ = ["SETTLE_CLAIMS", "Delivery", "Failed", "Outcome", "Retry", "Sent", "deliver_one"]

logger = logging.getLogger(__name__)

# Claims past ``delivery.max_attempts`` that may end without an outcome before a row whose
# outcome is unknown is failed unsettled. One settles it when it runs to the end; the others
# allow for its worker dying meanwhile (a deploy's restart), without looping forever on a
# delivery that brings its worker down each time.
SETTLE_CLAIMS = 3


def deliver_one(
    delivery: Delivery,
    item: Any,
    record: Any | None,
    *,
    may_write: Callable[[], bool] | None = None,
) -> Outcome:
    """Deliver one claimed row (``item``: its outbox row; ``record``: its survey row for a
    reply, its alert row for an alert).

    ``may_write`` is the worker's fence: checked before each request that may change
    something, it says whether this worker still owns the claim (see
    :meth:`~csat_hook.helpdesks.transport.HttpClient.guarded`).
    """
    if item.attempts > delivery.max_attempts + SETTLE_CLAIMS:
        return Failed(
            f"gave up after {item.attempts - 1} claims: the last ones ended without an outcome "
            "(a worker that died or could not record it); not sent again"
        )
    try:
        return _deliver(delivery, item, record, may_write)
    except Exception as exc:
        # Not expected (each delivery classifies its own errors), so nothing says whether a
        # request went out: unknown, so the row is looked up or settled before any resend.
        logger.exception("delivery.unexpected-error", extra={"outbox_id": item.id})
        return Retry(unexpected_error(exc))


def _deliver(
    delivery: Delivery, item: Any, record: Any | None, may_write: Callable[[], bool] | None
) -> Outcome:
    if getattr(item, "kind", REPLY) == ALERT:  # rows before alerts existed are replies
        return deliver_alert(delivery, item, record, may_write)
    survey = record
    adapter = delivery.helpdesks.get(item.helpdesk)
    if adapter is None:
        return Failed(f"helpdesk {item.helpdesk!r} is not configured any more")
    if survey is None:  # deleted by an operator while queued
        return Failed("survey row is missing")
    fence = adapter.http.guarded(may_write) if may_write else contextlib.nullcontext()
    with fence:
        return deliver_reply(delivery, adapter, item, survey)
