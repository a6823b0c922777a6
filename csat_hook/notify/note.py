"""An internal note in the rated conversation, through its helpdesk's adapter.

The note goes to the conversation the survey was sent in (the answer's helpdesk and dialog,
from the signed reference), posted by :meth:`~csat_hook.helpdesks.base.Helpdesk.post_note`:
private (agents only), changing no status, with the survey's reply context (a Chatwoot
account, an Intercom admin). It ends with ``Alert ref: <ref>``, so after an unknown outcome
:meth:`~csat_hook.helpdesks.base.Helpdesk.find_note` looks for it before posting again, as
for replies; a helpdesk without a note look-up (the generic adapter without
``note_lookup``) gets it again.
"""

from __future__ import annotations

from datetime import datetime

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import SendResult
from csat_hook.notify.base import Destination
from csat_hook.notify.base import Settle
from csat_hook.notify.options import NoteOptions
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import plain_text


class NoteDestination(Destination):
    kind = "helpdesk_note"
    options: NoteOptions

    def note(self, message: AlertMessage) -> tuple[Helpdesk, Note]:
        """The helpdesk adapter and the note for ``message``; a permanent DeliveryError when
        the alert has no conversation or its helpdesk cannot take notes."""
        if not message.about_answer or not message.helpdesk or not message.dialog_id:
            raise DeliveryError(
                f"{self.name}: only an alert about one answer can be noted in its conversation",
                retryable=False,
            )
        adapter = self.helpdesks.get(message.helpdesk)
        if adapter is None:
            raise DeliveryError(
                f"{self.name}: helpdesk {message.helpdesk!r} is not configured any more",
                retryable=False,
            )
        if not adapter.supports_notes:
            raise DeliveryError(
                f"{self.name}: helpdesk {message.helpdesk!r} ({adapter.kind}) cannot take "
                "internal notes",
                retryable=False,
            )
        text = plain_text(
            message,
            include_comment=self.include_comment,
            include_rating=self.options.include_rating,
        )
        return adapter, Note(
            helpdesk=message.helpdesk,
            dialog_id=message.dialog_id,
            text=text,
            marker=message.ref,
            context=message.context,
            idempotency_key=f"{message.ref}-{self.name}",
        )

    def send(self, message: AlertMessage) -> SendResult:
        adapter, note = self.note(message)
        return adapter.post_note(note)

    def settle(self, message: AlertMessage) -> Settle:
        adapter = self.helpdesks.get(message.helpdesk or "")
        return "lookup" if adapter is not None and adapter.supports_note_lookup else "resend"

    def find(self, message: AlertMessage, *, since: datetime) -> SendResult | None:
        adapter, note = self.note(message)
        return adapter.find_note(note, since=since)
