"""Delivering one reply: resolve the agent, render the link and the text, look up an
earlier attempt whose outcome is unknown, post (see :mod:`csat_hook.outbox.delivery`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.errors import DialogReopenedError
from csat_hook.helpdesks.base import AgentLookupError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.links import LinkValues
from csat_hook.links import Segment
from csat_hook.links import SurveyConfig
from csat_hook.links import agent_label
from csat_hook.links import build_link
from csat_hook.links import plain_text
from csat_hook.links import readable_agent_name
from csat_hook.links import reply_body
from csat_hook.links import survey_segment
from csat_hook.outbox import store
from csat_hook.outbox.results import FOUND_NOTE
from csat_hook.outbox.results import LOOKUP_SKEW
from csat_hook.outbox.results import Budget
from csat_hook.outbox.results import Cancelled
from csat_hook.outbox.results import Delivery
from csat_hook.outbox.results import Failed
from csat_hook.outbox.results import Outcome
from csat_hook.outbox.results import Retry
from csat_hook.outbox.results import Sent
from csat_hook.outbox.results import Unchecked
from csat_hook.outbox.results import after_look_up
from csat_hook.outbox.results import unexpected_outcome

# Log lines keep the logger name they had before the module was split out of delivery.
logger = logging.getLogger("csat_hook.outbox.delivery")


def survey_link(survey_config: SurveyConfig, survey: Any, agent: Person) -> str:
    """The link for a stored survey, with the agent as resolved at send time (the agent field
    shows a readable name, else the language's ``agent_label_without_name``)."""
    values = LinkValues(
        agent_name=agent_label(survey_config.reply, survey.language, _readable_name(agent)),
        agent_id=agent.id or "",
        agent_email=agent.email or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
        token=survey.token or "",
    )
    return build_link(survey_config.form, values)


def _survey_segment(survey_config: SurveyConfig, survey: Any, link: str) -> Segment:
    """Where the template says ``{link}``: the short link or the scale of score links when
    ``survey.links.public_base_url`` is set (the survey's reference is all they carry), else
    the form link itself. ``link`` (the form link) is what the short links redirect to."""
    if survey_config.links.enabled and survey.token:
        return survey_segment(survey_config.links, survey.token, survey.language)
    return Segment(link, href=link)


def _readable_name(agent: Person) -> str | None:
    # Never an id or an e-mail where the customer reads a name.
    return readable_agent_name(agent.name, agent_id=agent.id, email=agent.email)


def deliver_reply(delivery: Delivery, adapter: Helpdesk, item: Any, survey: Any) -> Outcome:
    """Deliver one claimed reply through ``adapter`` (inside the worker's fence).

    Never raises. An unexpected exception (a bug, or a vendor answer no adapter foresaw) is
    classified by whether the reply can have gone out: raised while preparing it (resolving
    the agent, rendering the link and the text), nothing was posted: a permanent
    :class:`Failed` naming the exception's type; raised by ``send_reply``, the request may have
    gone out: an outcome unknown, so the next attempt looks before posting again.
    """
    extra = {"outbox_id": item.id, "helpdesk": item.helpdesk, "attempt": item.attempts}
    uncertain: datetime | None = item.uncertain_since
    budget = Budget.of(item.attempts, delivery.max_attempts)
    # Claimed more often than allowed (earlier claims died with their worker, or the last
    # attempt's outcome is unknown): only a look-up is left.
    if budget.over and uncertain is None:
        return Failed(budget.gave_up)
    reopened = store.reopened_mark(item.context)
    if reopened and uncertain is None:
        # The dialog reopened while this reply was being sent (that attempt ended without
        # posting it): a survey now would land in a conversation open again.
        return Cancelled(store.REOPENED_NOTE)
    if _reopened_unseen(item, survey):
        # Its close was recorded at the moment of the reopen by another process, and neither
        # saw the other (intake.receive: Intake.remember_reopen): cancelled here, as the
        # reopen would have, never posted.
        return Cancelled(store.REOPENED_NOTE)
    try:
        prepared = _prepare(delivery, adapter, item, survey, extra)
    except Exception as exc:
        # Retrying cannot help (the same data fails the same way) and would keep the row
        # claimed for nothing: record it as failed, visibly, the type only (never the text).
        logger.exception("delivery.unexpected-error", extra={**extra, "reason": "prepare"})
        reason = f"the reply could not be prepared: internal error ({type(exc).__name__})"
        if uncertain is not None:
            reason += "; an earlier attempt's outcome is unknown"
        return Failed(reason)
    if isinstance(prepared, Retry):
        return prepared
    reply, link = prepared
    note = None
    if uncertain is not None:
        checked = _look_up(adapter, reply, uncertain)
        if isinstance(checked, SendResult):
            logger.info("delivery.found", extra=extra)
            return Sent(checked.external_id, reply.text, reply.agent, link, note=FOUND_NOTE)
        if reopened:
            return _reopened(checked, budget)
        stop = after_look_up(checked, budget)
        if stop is not None:
            return stop
        if isinstance(checked, Unchecked):
            logger.warning("delivery.resend-unchecked", extra={**extra, "reason": checked.reason})
            note = (
                f"sent again without a check ({checked.reason}): an earlier attempt's outcome "
                "was unknown, the dialog may show the survey twice"
            )
    writes = adapter.http.writes_started()
    try:
        result = adapter.send_reply(reply)
    except DialogReopenedError as exc:
        # The helpdesk's own status says the dialog is open again (its reopen's webhook not
        # seen, or not configured): cancelled as that reopen would have, nothing posted.
        # Settled unless an earlier attempt's outcome could not be looked up.
        return Cancelled(f"{store.REOPENED_NOTE}: {exc.message}", settled=note is None)
    except DeliveryError as exc:
        if exc.outcome_unknown and note is not None:
            return Failed(_unknown_again(exc.message), exc.http_status)
        if exc.outcome_unknown:
            # Even on the last attempt: the next claim looks whether it landed.
            return Retry(exc)
        if exc.retryable and not budget.last:
            return Retry(exc)
        return Failed(exc.message, exc.http_status)
    except Exception as exc:
        # A bug, or an answer the adapter could not read. Once a write request went out the
        # reply may have been posted: unknown, even on the last attempt (the next claim looks
        # before posting again).
        logger.exception("delivery.unexpected-error", extra=extra)
        wrote = adapter.http.writes_started() != writes
        outcome = unexpected_outcome(exc, wrote=wrote, uncertain=uncertain is not None)
        if isinstance(outcome, Retry) and note is not None:
            return Failed(_unknown_again(outcome.message))
        return outcome
    return Sent(result.external_id, reply.text, reply.agent, link, note=note)


def _unknown_again(error: str) -> str:
    """Why a reply sent again without a check (its earlier attempt's outcome unknown, the
    helpdesk unable to look) is failed when that send's outcome is unknown too: each such
    send was one more copy, a vendor that stores every post and never answers in time got
    one per attempt (``delivery.max_attempts``). Two at most."""
    return (
        f"{error}; sent again without a check after an unknown outcome, and this send's "
        "outcome is unknown too: not sent again (the dialog may show the survey twice)"
    )


def _reopened_unseen(item: Any, survey: Any) -> bool:
    """Whether this is a reply's first attempt (none began before, so its uncertain_since is
    unset) and its dialog has a remembered reopen no earlier than the survey's close
    (:data:`~csat_hook.outbox.store.REOPENED_SINCE`, read by the claim). Only the first:
    a reply claimed before its dialog reopened was marked by the reopen instead, and a close
    after the reopen (a duplicate under ``per_dialog: once``) takes that mark back
    (``unmark_reopened``) while the remembered reopen stays."""
    return item.attempts == 1 and bool(getattr(survey, store.REOPENED_SINCE, False))


def _reopened(checked: DeliveryError | Unchecked | None, budget: Budget) -> Outcome:
    """What a look-up that found nothing means for a reply of unknown outcome whose dialog
    reopened since (:func:`~csat_hook.outbox.store.cancel_waiting`'s mark): never a post.
    Not in the dialog: cancelled, settled (a later close may survey the dialog anew). The
    helpdesk cannot be asked: cancelled, the earlier attempt may have arrived. The listing
    unavailable: asked again later (failed once the attempt budget is spent, as any
    look-up)."""
    if isinstance(checked, DeliveryError):
        stop = after_look_up(checked, budget)
        assert stop is not None  # a retryable look-up error always stops the send
        return stop
    if isinstance(checked, Unchecked):
        return Cancelled(
            f"{store.REOPENED_NOTE}; an earlier attempt's outcome is unknown and cannot be "
            f"looked up ({checked.reason}): it may be in the dialog, not posted again"
        )
    return Cancelled(
        f"{store.REOPENED_NOTE}; looked up: an earlier attempt of unknown outcome is not in "
        "the dialog, not posted",
        settled=True,
    )


def _prepare(
    delivery: Delivery,
    adapter: Helpdesk,
    item: Any,
    survey: Any,
    extra: dict[str, Any],
) -> tuple[Reply, str] | Retry:
    """The reply to post and its form link, or a Retry when the agent look-up failed and
    attempts are left. Sends nothing: only the agent look-up reads from the vendor."""
    # The reopen's mark is ours, not the vendor's: no adapter sees it (a generic adapter's
    # templates read every context value).
    context = {k: v for k, v in (item.context or {}).items() if k != store.REOPENED}
    agent = Person(survey.agent_id, survey.agent_name, survey.agent_email)
    try:
        agent = adapter.resolve_agent(agent, context, dialog_id=item.dialog_id)
    except DeliveryError as exc:
        if exc.retryable and item.attempts <= agent_look_up_attempts(delivery.max_attempts):
            # Nothing of the reply was sent: a look-up that timed out is no reason to look
            # for the reply before posting it (nor to wait the settle delay).
            return Retry(_certain(exc), prefix="agent lookup: ")
        # Out of retries for the lookup: the survey still goes out, with what we know.
        if isinstance(exc, AgentLookupError):
            agent = exc.known
        logger.warning("delivery.agent-lookup-failed", extra={**extra, "error": exc.message})
    link = survey_link(delivery.survey, survey, agent)
    body = reply_body(
        delivery.survey.reply,
        survey.language,
        link=_survey_segment(delivery.survey, survey, link),
        agent_name=_readable_name(agent) or "",  # none: the template without an agent
        customer_name=survey.customer_name or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
    )
    text = plain_text(body)
    shown = next((segment.href for segment in body if segment.href), link)
    reply = Reply(
        helpdesk=item.helpdesk,
        dialog_id=item.dialog_id,
        text=text,
        link=shown,
        agent=agent,
        customer=Person(survey.customer_id, survey.customer_name, survey.customer_email),
        context=context,
        idempotency_key=f"csat-hook-{item.id}",
        marker=survey.token or "",
        body=body,
        channel=getattr(survey, "channel", None) or "",
        cancel_on_reopen=delivery.cancel_on_reopen,
    )
    return reply, link


def agent_look_up_attempts(max_attempts: int) -> int:
    """The first attempts of a reply that a failing agent look-up may end (retried later);
    the others, half of ``max_attempts`` rounded up, are the reply's own, sent with the agent
    as known. The look-up was retried until the last attempt, leaving the reply one try, and
    a passing 503 to it failed the survey for good."""
    return max_attempts // 2


def _certain(exc: DeliveryError) -> DeliveryError:
    """``exc`` with its outcome known: for a request that cannot have posted the reply."""
    if not exc.outcome_unknown:
        return exc
    return DeliveryError(
        exc.message,
        retryable=exc.retryable,
        http_status=exc.http_status,
        retry_after=exc.retry_after,
        vendor_reason=exc.vendor_reason,
    )


def _look_up(
    adapter: Helpdesk, reply: Reply, uncertain_since: datetime
) -> SendResult | DeliveryError | Unchecked | None:
    """Whether an earlier attempt landed: the message found, None (not there), a retryable
    error (ask again later), or why the helpdesk cannot be asked."""
    if not adapter.supports_lookup:
        return Unchecked(f"helpdesk {adapter.name!r} has no look-up")
    if not reply.marker:
        return Unchecked("the survey has no reference to look for")
    try:
        return adapter.find_reply(reply, since=uncertain_since - LOOKUP_SKEW)
    except DeliveryError as exc:
        if exc.retryable:
            return exc
        return Unchecked(f"look-up refused: {exc.message}")
    except Exception as exc:
        # A bug in the look-up: neither send (it may double) nor give up; retry, and the
        # attempt budget ends it as failed, visibly.
        logger.exception(
            "delivery.unexpected-error", extra={"helpdesk": adapter.name, "reason": "look-up"}
        )
        return DeliveryError(f"internal error in look-up: {type(exc).__name__}", retryable=True)
