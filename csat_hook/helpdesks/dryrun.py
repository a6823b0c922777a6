"""The dry-run helpdesk: the embedded default, for trying csat-hook without a helpdesk account.

It accepts webhooks in the generic adapter's default format (configurable the same way) and,
instead of calling an API, appends each reply (and each internal note: an alert) to a JSON-lines
file and logs that it did.

A line written is a message posted, with the same exactly-once rules: it is written only while
the worker's fence is open (:meth:`HttpClient.start_write`, as a vendor request is sent), and
after an unknown outcome (its worker died, or lost its claim, between writing the line and
recording it) the file is read back for the reply's marker (:meth:`find_reply`) before the
reply is written again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator

from csat_hook.errors import DeliveryError
from csat_hook.files import append_private_locked
from csat_hook.files import private_dir
from csat_hook.files import written_out
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.calls import lookup_floor
from csat_hook.helpdesks.calls import lookup_marker
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

    @field_validator("output")
    @classmethod
    def _a_file(cls, value: str) -> str:
        return written_out(value)


class DryRunHelpdesk(GenericHelpdesk):
    """Stores and logs replies instead of sending them."""

    kind = "dryrun"
    Options = DryRunOptions
    options: DryRunOptions

    @property
    def supports_lookup(self) -> bool:  # type: ignore[override]
        """Always: the output file is read back (:meth:`find_reply`)."""
        return True

    @property
    def supports_notes(self) -> bool:  # type: ignore[override]
        return True

    @property
    def supports_note_lookup(self) -> bool:  # type: ignore[override]
        return True

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
            "marker": reply.marker,
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

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """The reply written to the output file for ``reply.dialog_id`` carrying
        ``reply.marker`` (the survey's signed reference), at or after ``since``."""
        return self._find("reply", reply.helpdesk, reply.dialog_id, lookup_marker(reply), since)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """The note written to the output file for ``note.dialog_id`` carrying
        ``note.marker`` (the alert's reference), at or after ``since``."""
        return self._find("note", note.helpdesk, note.dialog_id, lookup_marker(note), since)

    def _find(
        self, kind: str, helpdesk: str, dialog_id: str, marker: str, since: datetime
    ) -> SendResult | None:
        # Lines written before the marker was recorded carry it in their text (the link).
        # A line that is not JSON (a write cut short by a full disk) is not a message posted.
        floor = lookup_floor(since)
        path = Path(self.options.output)
        try:
            with _write_lock, path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if marker not in line:
                        continue
                    record = _record(line)
                    if (
                        record is not None
                        and record.get("type", "reply") == kind
                        and record.get("helpdesk") == helpdesk
                        and record.get("dialog_id") == dialog_id
                        and _written_since(record, floor)
                        and carries_marker(marker, record.get("marker"), record.get("text"))
                    ):
                        return SendResult(external_id=f"dryrun-{record.get('idempotency_key')}")
        except FileNotFoundError:
            return None  # nothing written yet
        except OSError as exc:
            raise DeliveryError(
                f"helpdesks.{self.name}.output: cannot read {str(path)!r}: "
                f"{exc.strerror or type(exc).__name__}",
                retryable=True,
            ) from exc
        return None

    def _append(self, record: Mapping[str, object]) -> None:
        """Append ``record`` as one line; a file that cannot be written (a full disk, a folder
        under a file) is a retryable DeliveryError naming the key, as a helpdesk's 503 is.
        Written only while the worker's fence is open, as a vendor request is sent."""
        path = Path(self.options.output)
        self.http.start_write(f"helpdesks.{self.name}.output")
        try:
            private_dir(path.parent)
            # Locked as the file is: `csat-hook erase` rewrites it (files.rewrite_private).
            with _write_lock, append_private_locked(path) as handle:  # customer data
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise DeliveryError(
                f"helpdesks.{self.name}.output: cannot append to {str(path)!r}: "
                f"{exc.strerror or type(exc).__name__}",
                retryable=True,
            ) from exc


def _record(line: str) -> dict[str, object] | None:
    """One line of the output file as its record, None when it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _written_since(record: Mapping[str, object], floor: datetime) -> bool:
    """Whether ``record`` was written at or after ``floor`` (its ``at``, our own clock)."""
    at = record.get("at")
    try:
        written = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        written = None
    if written is None or written.tzinfo is None:
        return False
    return written >= floor
