"""Configuration of the ``generic`` adapter (validated when the configuration is loaded).

Each part's options live with the part: ``auth`` (:class:`AuthOptions`), ``mapping``
(:class:`MappingOptions`), ``reply`` and ``note`` (:class:`ReplyRequestOptions`), ``lookup``
and ``note_lookup`` (:class:`LookupRequestOptions`), ``agent_lookup``
(:class:`AgentLookupOptions`). :class:`GenericOptions` composes them and checks that every
request uses only the placeholders its values provide.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.files import written_out
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.generic.agents import AgentLookupOptions
from csat_hook.helpdesks.generic.auth import AuthOptions
from csat_hook.helpdesks.generic.lookup import LookupRequestOptions
from csat_hook.helpdesks.generic.mapping import MappingOptions
from csat_hook.helpdesks.generic.reply import ReplyRequestOptions
from csat_hook.helpdesks.generic.templates import NOTE_FIELDS
from csat_hook.helpdesks.generic.templates import REPLY_FIELDS
from csat_hook.helpdesks.generic.templates import check_placeholders


class GenericOptions(HelpdeskOptions):
    rotated_secrets: ClassVar[dict[str, str]] = {
        "auth.previous_tokens": "auth.token",
        "auth.previous_secrets": "auth.secret",
    }
    kind: str = "generic"
    auth: AuthOptions
    mapping: MappingOptions = Field(default_factory=MappingOptions)
    reply: ReplyRequestOptions | None = None
    # Without it, a reply whose outcome is unknown (timeout, dropped connection, 500, 502, 504)
    # is sent again, noted as unchecked.
    lookup: LookupRequestOptions | None = None
    # Without it, a close that names its agent by id only goes out with the id (or `agents:`).
    agent_lookup: AgentLookupOptions | None = None
    # The request that posts an internal note (an alert, for the team only) into the dialog;
    # without it, alert rules cannot note this helpdesk's dialogs. Placeholders: NOTE_FIELDS
    # and the mapping's context names.
    note: ReplyRequestOptions | None = None
    # Lists a dialog's notes, to find one whose outcome was unknown (as ``lookup`` for replies);
    # ``ours`` should select internal notes. Without it, such a note is posted again.
    note_lookup: LookupRequestOptions | None = None
    # When set, every verified payload is saved here for `inspect-payload` (holds customer data:
    # files are owner-only, and pruned as new ones arrive: older than capture_retention_days,
    # then the oldest beyond capture_max_files or capture_max_bytes).
    capture_dir: str | None = None
    capture_retention_days: float = Field(default=7, gt=0, le=3650)
    capture_max_files: int = Field(default=1000, ge=1, le=1_000_000)
    capture_max_bytes: int = Field(default=100 * 1_048_576, ge=1024)

    @field_validator("capture_dir")
    @classmethod
    def _a_folder(cls, value: str | None) -> str | None:
        return None if value is None else written_out(value)

    @model_validator(mode="after")
    def _reply_needed(self) -> GenericOptions:
        if self.kind == "generic" and self.reply is None:
            raise ValueError("reply is required: describe the request that posts the reply")
        allowed = set(REPLY_FIELDS) | set(self.mapping.context)
        # What says where a request goes: without any, every reply (or note) went to the
        # same place, never into its dialog.
        addressed = {"dialog_id", "customer_id", "customer_email"} | set(self.mapping.context)
        if self.reply is not None:
            _addressed("reply", check_placeholders("reply", self.reply, allowed), addressed)
        if self.lookup is not None:
            check_placeholders("lookup", self.lookup, allowed)
        if self.agent_lookup is not None:
            context = set(self.mapping.context)
            if self.agent_lookup.by_dialog is not None:
                check_placeholders(
                    "agent_lookup.by_dialog", self.agent_lookup.by_dialog, {"dialog_id"} | context
                )
            if self.agent_lookup.by_id is not None:
                used = check_placeholders(
                    "agent_lookup.by_id", self.agent_lookup.by_id, {"agent_id"} | context
                )
                if "agent_id" not in used:
                    raise ValueError("agent_lookup.by_id: the request must use {agent_id}")
        noted = set(NOTE_FIELDS) | set(self.mapping.context)
        if self.note is not None:
            _addressed("note", check_placeholders("note", self.note, noted), addressed)
        if self.note_lookup is not None:
            if self.note is None:
                raise ValueError("note_lookup needs note (the request that posts the note)")
            check_placeholders("note_lookup", self.note_lookup, noted)
        return self


def _addressed(key: str, used: set[str], addressed: set[str]) -> None:
    """ValueError unless the request ``key`` uses a placeholder that says which dialog (or
    customer) it is for."""
    if not used & addressed:
        raise ValueError(
            f"{key}: names no dialog: use {{dialog_id}} (or a context value, "
            "{customer_email}...) in its url, query, headers or body, or every one goes to "
            "the same place"
        )
