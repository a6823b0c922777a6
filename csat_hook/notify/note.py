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

    def refusal(self, message: AlertMessage) -> str | None:
        """Why no note can carry ``message`` as this destination is configured now, the same
        test as the rules' when they queue one (``alerts/recheck.py``, ``notable``): an alert
        about no answer (a digest, a cap notice), a helpdesk not configured, not among
        ``helpdesks`` when they are listed, or taking no notes. None when one can."""
        helpdesk = message.helpdesk
        if not message.about_answer or not helpdesk or not message.dialog_id:
            return "only an alert about one answer can be noted in its conversation"
        adapter = self.helpdesks.get(helpdesk)
        if adapter is None:
            return f"helpdesk {helpdesk!r} is not configured any more"
        if self.options.helpdesks and helpdesk not in self.options.helpdesks:
            return f"helpdesk {helpdesk!r} is not among this destination's helpdesks"
        if not adapter.supports_notes:
            return f"helpdesk {helpdesk!r} ({adapter.kind}) cannot take internal notes"
        return None

    def note(self, message: AlertMessage) -> tuple[Helpdesk, Note]:
        """The helpdesk adapter and the note for ``message``; a permanent DeliveryError when
        no note can carry it (:meth:`refusal`)."""
        refusal = self.refusal(message)
        if refusal is not None:
            raise DeliveryError(f"{self.name}: {refusal}", retryable=False)
        helpdesk, dialog_id = message.helpdesk or "", message.dialog_id or ""  # set: refusal()
        adapter = self.helpdesks[helpdesk]
        text = plain_text(
            message,
            include_comment=self.include_comment,
            include_rating=self.options.include_rating,
        )
        return adapter, Note(
            helpdesk=helpdesk,
            dialog_id=dialog_id,
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
