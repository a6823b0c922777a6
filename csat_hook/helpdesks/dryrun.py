"""The dry-run helpdesk: the embedded default, for trying csat-hook without a helpdesk account.

It accepts webhooks in the generic adapter's default format (configurable the same way) and,
instead of calling an API, appends each reply (and each internal note: an alert) to a JSON-lines
file and logs that it did.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field
from pydantic import SecretStr

from csat_hook.errors import DeliveryError
from csat_hook.files import append_private
from csat_hook.files import private_dir
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.generic import AuthOptions
from csat_hook.helpdesks.generic import GenericHelpdesk
from csat_hook.helpdesks.generic import GenericOptions
from csat_hook.helpdesks.markup import body_to_html
from csat_hook.helpdesks.markup import body_to_markdown
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.links.body import has_scale

logger = logging.getLogger(__name__)
_write_lock = threading.Lock()


class DryRunOptions(GenericOptions):
    kind: str = "dryrun"
    auth: AuthOptions = Field(
        default_factory=lambda: AuthOptions(token=SecretStr("dev-insecure-dryrun-token"))
    )
    output: str = "var/dry-run-replies.jsonl"


class DryRunHelpdesk(GenericHelpdesk):
    """Stores and logs replies instead of sending them."""

    kind = "dryrun"
    Options = DryRunOptions
    options: DryRunOptions

    @property
    def supports_lookup(self) -> bool:  # type: ignore[override]
        """Never: a local file write has no unknown outcome to check."""
        return False

    @property
    def supports_notes(self) -> bool:  # type: ignore[override]
        return True

    @property
    def supports_note_lookup(self) -> bool:  # type: ignore[override]
        return False

    @classmethod
    def takes_notes(cls, options: HelpdeskOptions) -> bool:
        return True

    def post_note(self, note: Note) -> SendResult:
        self._append(
            {
                "type": "note",
                "helpdesk": note.helpdesk,
                "dialog_id": note.dialog_id,
                "text": note.text,
                "marker": note.marker,
                "idempotency_key": note.idempotency_key,
                "at": self.clock().isoformat(),
            }
        )
        logger.info(
            "dryrun.note-stored", extra={"helpdesk": self.name, "dialog_id": note.dialog_id}
        )
        return SendResult(external_id=f"dryrun-{note.idempotency_key}")

    def send_reply(self, reply: Reply) -> SendResult:
        record: dict[str, object] = {
            "helpdesk": reply.helpdesk,
            "dialog_id": reply.dialog_id,
            "text": reply.text,
            "link": reply.link,
            "agent": {"id": reply.agent.id, "name": reply.agent.name, "email": reply.agent.email},
            "idempotency_key": reply.idempotency_key,
            "at": self.clock().isoformat(),
        }
        if has_scale(reply.body):  # what an HTML and a Markdown helpdesk would show
            record["html"] = body_to_html(reply.body)
            record["markdown"] = body_to_markdown(reply.body)
        self._append(record)
        logger.info(
            "dryrun.reply-stored", extra={"helpdesk": self.name, "dialog_id": reply.dialog_id}
        )
        return SendResult(external_id=f"dryrun-{reply.idempotency_key}")

    def _append(self, record: Mapping[str, object]) -> None:
        """Append ``record`` as one line; a file that cannot be written (a full disk, a folder
        under a file) is a retryable DeliveryError naming the key, as a helpdesk's 503 is."""
        path = Path(self.options.output)
        try:
            private_dir(path.parent)
            with _write_lock, append_private(path) as handle:  # replies hold customer data
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise DeliveryError(
                f"helpdesks.{self.name}.output: cannot append to {str(path)!r}: "
                f"{exc.strerror or type(exc).__name__}",
                retryable=True,
            ) from exc
