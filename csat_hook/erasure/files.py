"""The customer's data in csat-hook's own files, outside the database: the replies and notes a
dry-run helpdesk wrote to its ``output`` file, and the webhook bodies a generic helpdesk's
``capture_dir`` keeps.

* A dry-run line (a reply or a note posted) of one of the customer's dialogs (``helpdesk``
  and ``dialog_id`` as the line names them) keeps only what makes it a message posted:
  its type, helpdesk, dialog, marker, idempotency key and time (the worker reads the file back
  for the marker after an unknown outcome: the reply is not written twice), marked
  ``"erased": true``; its text, link, agent and renderings go. The file is rewritten under
  the lock the dry-run helpdesk appends under (``files.rewrite_private``).
* A capture is deleted when any text of the body holds one of the customer's e-mail
  addresses standing alone (compared as the erasure compares them: ``store.email_form``; a
  sender's ``Name <address>``, a message's body), or, for a capture of that helpdesk, one of
  the customer's ids or dialog ids where the helpdesk's mapping reads the dialog's and the
  customer's id (any whole value of a capture the mapping reads neither from). A body that is
  not JSON is read as the form a generic helpdesk takes (its fields percent-decoded, or the
  JSON one of them carries) and matched the same way; one that is neither is deleted when its
  text holds one of the addresses. A capture is a raw payload
  kept to design a mapping from: deleting one that was not the customer's is the lesser
  harm, as for unverified answers.

A path is read as the worker reads it: a relative one from the current folder. A relative one
that is not there is named in the output (:attr:`FileTally.not_found`): it may be there from
another folder, the one the worker runs in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import Any

from csat_hook.clock import utcnow
from csat_hook.erasure.store import Traces
from csat_hook.erasure.store import holds
from csat_hook.erasure.store import standing_alone
from csat_hook.errors import BadPayloadError
from csat_hook.files import rewrite_private
from csat_hook.helpdesks.dryrun import DryRunOptions
from csat_hook.helpdesks.generic import GenericOptions
from csat_hook.helpdesks.generic.mapping import MappingOptions
from csat_hook.helpdesks.generic.mapping import UnreadableValueError
from csat_hook.helpdesks.generic.mapping import evaluate
from csat_hook.helpdesks.records import WebhookRequest

# What a dry-run line keeps once erased: what makes it a message posted, found by its marker.
KEPT = ("type", "helpdesk", "dialog_id", "marker", "idempotency_key", "at")
# A capture's name (helpdesks/generic: _save_capture), the helpdesk's name first.
_CAPTURE = r"-\d{8}T\d{12}-[0-9a-f]{8}\.json"


@dataclass
class FileTally:
    """What the customer's data was found in: dry-run lines and captures (erased, or to be),
    and the configured paths not found from here."""

    dry_run_lines: int = 0
    captures: int = 0
    not_found: list[str] = field(default_factory=list)
    # Files that could not be read or written (a permission, a full disk): key, path, why.
    failed: list[str] = field(default_factory=list)


def erase_files(helpdesks: dict[str, Any], traces: Traces, *, apply: bool) -> FileTally:
    """Count, and when ``apply`` erase, the customer ``traces`` names in the files of the
    configured ``helpdesks`` (name → options)."""
    tally = FileTally()
    for name, options in helpdesks.items():
        if isinstance(options, DryRunOptions):
            tally.dry_run_lines += _counted(
                tally,
                f"helpdesks.{name}.output",
                options.output,
                partial(_dry_run_file, Path(options.output), traces, apply=apply),
            )
        if isinstance(options, GenericOptions) and options.capture_dir:
            tally.captures += _counted(
                tally,
                f"helpdesks.{name}.capture_dir",
                options.capture_dir,
                partial(
                    _capture_files,
                    Path(options.capture_dir),
                    name,
                    traces,
                    apply=apply,
                    mapping=options.mapping,
                ),
            )
    return tally


def _counted(tally: FileTally, key: str, path: str, count: Callable[[], int | None]) -> int:
    """What ``count()`` found in the file(s) at ``path`` (configured as ``key``); 0, noted in
    ``tally``, when they cannot be read or written (``failed``) or are not there (None: a
    relative path is ``not_found``)."""
    where = f"{key} ({path})"
    try:
        found = count()
    except OSError as exc:
        tally.failed.append(f"{where}: {exc.strerror or type(exc).__name__}")
        return 0
    if found is None:
        _not_found(tally, path, where)
        return 0
    return found


def _not_found(tally: FileTally, path: str, where: str) -> None:
    """Noted when ``path`` is relative: it may be there from the folder the worker runs in.
    An absolute path not there holds nothing (nothing was written yet)."""
    if not Path(path).is_absolute():
        tally.not_found.append(where)


def _capture_files(
    folder: Path, name: str, traces: Traces, *, apply: bool, mapping: MappingOptions | None = None
) -> int | None:
    """How many of helpdesk ``name``'s captures in ``folder`` hold the customer's data (None:
    no folder there); deleted when ``apply``."""
    if not folder.is_dir():
        return None
    count = 0
    for path in _captures(folder, name):
        if _holds_customer(path, name, traces, mapping):
            count += 1
            if apply:
                path.unlink(missing_ok=True)  # pruned meanwhile: gone all the same
    return count


def _dry_run_file(path: Path, traces: Traces, *, apply: bool) -> int | None:
    """How many lines of the dry-run ``output`` file hold the customer's data (None: no file
    there); rewritten without it when ``apply``."""
    if not path.is_file():
        return None
    count = 0

    def rewrite(text: str) -> str:
        nonlocal count
        count = 0
        lines = []
        for line in text.splitlines(keepends=True):
            record = _record(line)
            if record is None or record.get("erased") or not _about(record, traces):
                lines.append(line)
                continue
            count += 1
            kept = {key: record[key] for key in KEPT if key in record}
            lines.append(json.dumps({**kept, "erased": True}, ensure_ascii=False) + "\n")
        return "".join(lines)

    if apply:
        rewrite_private(path, rewrite)
    else:
        rewrite(path.read_text(encoding="utf-8", errors="surrogateescape"))
    return count


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # a write cut short: no message posted (helpdesks/dryrun.py)
    return record if isinstance(record, dict) else None


def _about(record: dict[str, Any], traces: Traces) -> bool:
    """Whether a dry-run line is a message to one of the customer's dialogs."""
    helpdesk, dialog = record.get("helpdesk"), record.get("dialog_id")
    return isinstance(helpdesk, str) and (helpdesk, str(dialog)) in traces.dialogs


def _captures(folder: Path, name: str) -> Iterator[Path]:
    """The captures of helpdesk ``name`` in ``folder`` (another helpdesk may share it)."""
    pattern = re.compile(re.escape(name) + _CAPTURE)
    with os.scandir(folder) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def _holds_customer(
    path: Path, helpdesk: str, traces: Traces, mapping: MappingOptions | None = None
) -> bool:
    """Whether a capture of ``helpdesk`` holds the customer (:data:`__doc__`): one of their
    addresses standing alone in any text of it (a sender's ``Name <address>``, a message's
    body), or one of their ids or dialog ids where ``mapping`` (the helpdesk's) reads the
    dialog's and the customer's id. A capture the mapping reads neither id from (made while
    the mapping was designed, or before it changed) is matched by any whole value of it, as
    the lesser harm. An id matched anywhere in a capture the mapping reads, a priority or an
    assignee's 7 beside dialog 815, deleted another customer's capture."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False  # pruned meanwhile
    text = data.decode("utf-8", errors="replace")
    patterns = [standing_alone(email) for email in sorted(traces.emails)]
    try:
        payload = json.loads(text)
    except ValueError:
        if any(holds(pattern, text) for pattern in patterns):
            return True
        payload = _as_form(data)
        if payload is None:
            return False
    values = list(_values(payload))
    if any(holds(pattern, value) for value in values for pattern in patterns):
        return True
    customer = {value for name, value in traces.ids if name == helpdesk}
    dialogs = {value for name, value in traces.dialogs if name == helpdesk}
    dialog, customer_id = _mapped_ids(payload, mapping or MappingOptions())
    if dialog is not None or customer_id is not None:
        return dialog in dialogs or customer_id in customer
    return any(value.strip() in customer | dialogs for value in values)


def _as_form(data: bytes) -> Any:
    """A capture that is not JSON read as the helpdesk read it when it was posted as a form
    (``helpdesks/records.py``: its fields, or the JSON document one of them carries): its
    values percent-decoded, so an address written ``%40`` and the ids in its fields are found.
    None when it is no form either (a capture keeps the body, not its content type)."""
    request = WebhookRequest(
        body=data,
        headers={},
        query={},
        received_at=utcnow(),
        content_type="application/x-www-form-urlencoded",
    )
    try:
        return request.json()
    except BadPayloadError:
        return None


def _mapped_ids(payload: Any, mapping: MappingOptions) -> tuple[str | None, str | None]:
    """The dialog's and the customer's id as ``mapping`` reads them from ``payload``, as
    text (None for one it cannot read)."""
    found: list[str | None] = []
    for key in ("dialog_id", "customer_id"):
        expression = getattr(mapping, key)
        try:
            value = evaluate(key, expression, payload) if expression else None
        except UnreadableValueError:
            value = None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        found.append(value.strip() or None if isinstance(value, str) else None)
    return found[0], found[1]


def _values(payload: Any) -> Iterator[str]:
    """Every string and number of a JSON document, as text."""
    if isinstance(payload, dict):
        for value in payload.values():
            yield from _values(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _values(value)
    elif isinstance(payload, str):
        yield payload
    elif isinstance(payload, (int, float)) and not isinstance(payload, bool):
        yield str(payload)
