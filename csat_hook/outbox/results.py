"""What delivering one row needs (:class:`Delivery`) and what it says happened
(:data:`Outcome`: :class:`Sent`, :class:`Retry`, :class:`Failed`; :class:`Cancelled`, an alert
withdrawn or a reply's dialog reopened before it went out), shared by the reply and the alert
deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import Person
from csat_hook.links import SurveyConfig
from csat_hook.notify.base import Destination

# Look-ups start this long before the first uncertain attempt: clocks of our hosts and the
# vendor's differ by a little.
LOOKUP_SKEW = timedelta(minutes=2)
FOUND_NOTE = "found in the dialog after an unknown outcome: recorded as sent, not posted again"


@dataclass(frozen=True)
class FollowUp:
    """An alert to send again later to ``receivers`` alone (they refused it for now while
    others took it): the ``generation``-th follow-up, keyed ``delivery_key``, its receivers
    having had ``tried`` attempts (of their ``delivery.max_attempts``) before it, receivers
    of a destination of ``kind`` (the one the delivery went out as)."""

    receivers: tuple[str, ...]
    generation: int
    delivery_key: str
    tried: int
    kind: str | None = None


@dataclass(frozen=True)
class Sent:
    """The vendor took the reply (or the destination the alert); for a reply ``agent`` and
    ``link`` are what it went out with.

    ``note`` is kept for operators: found by a look-up, sent again without one, not sent again.
    ``follow_up``: a delivery to queue with the sent mark, in its transaction.
    """

    external_id: str | None
    body: str | None
    agent: Person | None = None
    link: str | None = None
    note: str | None = None
    follow_up: FollowUp | None = None


@dataclass(frozen=True)
class Retry:
    """Try again later (after the retry policy's delay, or the vendor's Retry-After).

    ``failures``: the failed attempts in a row the delay is for, when not the row's own
    attempts (an alert's follow-up continues its receivers' backoff from the deliveries
    before it, never back to the first delay).

    ``kind``: an alert delivery attempted as another kind of destination than the row was
    queued for (its destination's kind changed): the row takes the new kind, and only this
    attempt's outcome, if unknown, is left to settle (an earlier one was the old kind's).
    """

    error: DeliveryError
    prefix: str = ""
    failures: int | None = None
    kind: str | None = None

    @property
    def message(self) -> str:
        return self.prefix + self.error.message


@dataclass(frozen=True)
class Failed:
    """Give up: a permanent refusal, or no attempts left. ``reason`` is shown to operators."""

    reason: str
    http_status: int | None = None


@dataclass(frozen=True)
class Cancelled:
    """Not sent, and not to be: the alert was withdrawn before it went out (its answer no
    longer matches its rule), or the reply's dialog reopened before it went out. ``reason``
    is shown to operators and in the Alerts tab.
    ``unrouted``: this delivery alone, its destination taken off the rule (its own mark,
    :func:`~csat_hook.outbox.store.mark_unrouted`, for good): cancelled whatever the alert's
    state when the outcome is written."""

    reason: str
    unrouted: bool = False
    # A reply whose dialog reopened (outbox/reply_delivery.py): ``settled`` when a look-up
    # found no earlier attempt of unknown outcome in the dialog (nothing of it can be there).
    settled: bool = False


Outcome = Sent | Retry | Failed | Cancelled


@dataclass(frozen=True)
class Delivery:
    """What delivering needs: the adapters, the survey's link and text settings, the budget,
    and the alert destinations."""

    helpdesks: Mapping[str, Helpdesk]
    survey: SurveyConfig
    max_attempts: int
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    # policy.cancel_on_reopen, for adapters that find the dialog reopened at the reply
    # (Reply.cancel_on_reopen).
    cancel_on_reopen: bool = True


def unexpected_error(exc: BaseException) -> DeliveryError:
    """An exception no vendor answer should raise (a bug, an answer the code could not read),
    caught once the request may have gone out: an outcome unknown, so the row is looked up
    (or settled as its destination says) before it is sent again. Names the type only: its
    text may quote the vendor's answer or the customer's."""
    return DeliveryError(
        f"internal error after the request may have gone out ({type(exc).__name__}): "
        "outcome unknown",
        retryable=True,
        outcome_unknown=True,
    )


def unexpected_outcome(exc: BaseException, *, wrote: bool, uncertain: bool) -> Outcome:
    """The outcome of a send that raised ``exc`` unexpectedly. ``wrote``: a request that may
    change something went out during it (``HttpClient.writes_started`` moved): unknown, see
    :func:`unexpected_error`. Otherwise nothing was sent, and retrying would fail the same
    way on the same data while holding the row: failed, visibly (the type only, never the
    text); ``uncertain`` adds that an earlier attempt's outcome is unknown."""
    if wrote:
        return Retry(unexpected_error(exc))
    reason = f"internal error before anything was sent ({type(exc).__name__}): not sent"
    if uncertain:
        reason += "; an earlier attempt's outcome is unknown"
    return Failed(reason)


@dataclass(frozen=True)
class Unchecked:
    """The helpdesk (or destination) cannot be asked whether the row landed, and why."""

    reason: str


@dataclass(frozen=True)
class Budget:
    """Where a claimed row stands against ``delivery.max_attempts`` (its claims so far; an
    alert's follow-up counts its receivers' attempts in the deliveries before it too)."""

    over: bool  # claimed more often than allowed: only a look-up is left, no new attempt
    last: bool  # this attempt is the last one allowed: a retryable error fails it
    gave_up: str  # the failure's text once over

    @classmethod
    def of(cls, attempts: int, max_attempts: int) -> Budget:
        return cls(
            over=attempts > max_attempts,
            last=attempts >= max_attempts,
            gave_up=f"gave up after {attempts - 1} attempts",
        )


def after_look_up(checked: DeliveryError | Unchecked | None, budget: Budget) -> Outcome | None:
    """What a look-up that found nothing means for a row whose last attempt's outcome is
    unknown: retry the look-up after a retryable error, fail once the attempt budget is spent
    (saying why), else None: send again (the caller notes an :class:`Unchecked` resend)."""
    gave_up = budget.gave_up
    if isinstance(checked, DeliveryError):
        if budget.over:
            return Failed(
                f"{gave_up}; the last one's outcome is unknown and the look-up failed: "
                f"{checked.message}",
                checked.http_status,
            )
        return Retry(checked, prefix="look-up before sending again: ")
    if not budget.over:
        return None
    if isinstance(checked, Unchecked):
        return Failed(f"{gave_up}; the last one's outcome is unknown ({checked.reason})")
    return Failed(f"{gave_up}; looked up: the last one did not land")
