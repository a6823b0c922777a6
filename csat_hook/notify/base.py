"""The destination interface: one alert in, sent or a :class:`~csat_hook.errors.DeliveryError`.

A destination does, for one kind of receiver:

* :meth:`Destination.send` renders the alert in the receiver's format and sends it once; it
  never sleeps or retries (the outbox decides, as for replies): a retryable error (429 with
  its delay, 5xx, a connection failure) comes back later, a permanent one (a refused
  payload, a receiver that is gone) fails the delivery with the reason;
* :meth:`Destination.settle` says what to do when an earlier attempt's outcome is unknown (a
  timeout after the request was sent, a worker killed mid-request): ``lookup`` (find it, as
  helpdesk notes do by their "Alert ref:" line), ``resend`` (the receiver can drop the copy:
  the e-mail's Message-ID, the webhook's id) or ``skip`` (record it as sent, unconfirmed:
  Slack and Telegram can neither be asked nor deduplicate);
* :meth:`Destination.find` (for ``lookup``) finds the copy that landed;
* :meth:`Destination.refusal` says why it can never carry an alert as configured now (a
  helpdesk note: an alert about no answer, a helpdesk it does not post in), so that the
  outbox cancels the delivery instead of failing it;
* :meth:`Destination.send_to` sends the alert again to some of its receivers only, those a
  send returned in :attr:`~csat_hook.helpdesks.records.SendResult.retry_to` (an e-mail's
  recipients refused for now): only a destination that returns some implements it.

Errors name the destination and the receiver's error code, never a URL (Slack's and
Telegram's carry their secret in the path), a token or the alert's text.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from typing import Literal

from csat_hook.clock import Clock
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.notify.options import DestinationOptions
from csat_hook.notify.records import AlertMessage

Settle = Literal["lookup", "resend", "skip"]


class Destination(abc.ABC):
    """Base class of every destination. ``name`` is the configured one."""

    kind: ClassVar[str]

    def __init__(
        self,
        name: str,
        options: DestinationOptions,
        *,
        http: HttpClient,
        helpdesks: Mapping[str, Helpdesk],
        clock: Clock,
    ) -> None:
        self.name = name
        self.options = options
        self.http = http
        self.helpdesks = helpdesks
        self.clock = clock

    @property
    def exchange_seconds(self) -> float | None:
        """The longest one send may last once it started, when the destination bounds it
        itself (an SMTP exchange's deadline); None: its requests go through the delivery's
        HTTP client, bounded by ``delivery``'s connect and read timeouts."""
        return None

    @abc.abstractmethod
    def send(self, message: AlertMessage) -> SendResult:
        """Send the alert once; raise DeliveryError on failure."""

    def settle(self, message: AlertMessage) -> Settle:
        """What an attempt whose outcome is unknown calls for (see the module docstring)."""
        return "resend"

    def refusal(self, message: AlertMessage) -> str | None:
        """Why this destination, as configured now, can never carry ``message``, whatever its
        receiver would answer; None when it can. Only a helpdesk note refuses some (an alert
        about no answer, a helpdesk it does not post in): the outbox cancels such a delivery
        instead of sending it (see :mod:`csat_hook.outbox.alert_delivery`)."""
        return None

    def send_to(self, message: AlertMessage, receivers: Sequence[str]) -> SendResult:
        """Send the alert once more to ``receivers`` alone (see the module docstring)."""
        raise DeliveryError(
            f"{self.kind} destination {self.name!r} cannot send to some receivers only",
            retryable=False,
        )

    def find(self, message: AlertMessage, *, since: datetime) -> SendResult | None:
        """The copy of ``message`` sent at or after ``since``, or None (for ``lookup``)."""
        raise NotImplementedError

    @property
    def include_comment(self) -> bool:
        return self.options.include_comment
