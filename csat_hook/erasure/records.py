"""What ``csat-hook erase`` is asked to erase, and what it found: counts, never the data."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields

# The longest values a selector's helpdesk and dialog can match (and be recorded as):
# helpdesk names (config/loading.py), and a ticket field as the sync stores it
# (sync/sources/base.py), the longest a dialog can be typed as.
MAX_HELPDESK = 64
MAX_DIALOG = 255


@dataclass(frozen=True)
class Selector:
    """Whose data: the surveys with this e-mail address (any helpdesk, case-insensitive as
    intake's cool-down compares addresses), as their e-mail or as their customer id (some
    helpdesks use the address as the id), with this customer id of ``helpdesk``, or of this
    dialog of ``helpdesk``. A survey matching any of those given is selected."""

    email: str | None = None
    helpdesk: str | None = None
    customer_id: str | None = None
    dialog_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.email or (self.helpdesk and (self.customer_id or self.dialog_id))):
            raise ValueError("no customer selected")


@dataclass
class Tally:
    """Rows that hold (or held) the customer's data, per place; ``records`` are the erasure
    records added (surveys, and a ``--dialog`` selector's dialog, the sync will store without a
    comment from now on)."""

    surveys: int = 0
    replies: int = 0
    cancelled: int = 0
    answers: int = 0
    history: int = 0
    # Unverified answers whose reference names one of the surveys (a forged one's is kept),
    # and those matched only by a ticket field equal to one of the dialogs (store._unverified:
    # the field names no helpdesk).
    unverified: int = 0
    unverified_by_ticket: int = 0
    # Of those, typed otherwise than the dialog is stored ("#d38" for D38): said, and not
    # counted again in total().
    typed_otherwise: int = 0
    # Unverified answers none of those name that hold the e-mail address itself (a form's own
    # question, a comment): store._holding_email.
    unverified_by_email: int = 0
    alerts: int = 0
    # Early reopens intake remembers of the dialogs found (intake/store.py: remember_reopen),
    # deleted: they hold a dialog id and times, nothing that names the customer but the dialog.
    reopens: int = 0
    # Outside the database (erasure/files.py): a dry-run helpdesk's lines about the customer's
    # dialogs, rewritten without their text, and the captured webhook bodies naming them.
    dry_run_lines: int = 0
    captures: int = 0
    records: int = 0
    # Replies being delivered right now (a worker holds the survey and will record what it
    # sent): erased and marked all the same, their outcome keeps no customer data
    # (outbox/store/outcomes.py). Said apart, not counted in total() (their surveys are).
    in_delivery: int = 0

    def total(self) -> int:
        apart = ("in_delivery", "typed_otherwise")
        return sum(getattr(self, f.name) for f in fields(self) if f.name not in apart)

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Each count as the command prints it: (field, what it is, what is erased there).
LINES = (
    ("surveys", "surveys", "customer id, e-mail, name"),
    ("replies", "survey replies sent", "text as sent, reply context"),
    ("cancelled", "survey replies not sent (pending or failed)", "cancelled, then erased"),
    ("answers", "answers", "comment, agent and ticket fields as typed"),
    ("history", "earlier submissions (answer history)", "comment, agent and ticket fields"),
    (
        "unverified",
        "unverified answers naming one of these surveys",
        "comment, agent and ticket fields, row as read",
    ),
    (
        "unverified_by_ticket",
        "unverified answers matched by typed ticket only",
        "comment, agent and ticket fields, row as read",
    ),
    (
        "unverified_by_email",
        "unverified answers holding the e-mail (a form's own question, a comment)",
        "comment, agent and ticket fields, row as read",
    ),
    ("alerts", "alerts", "comment and reply context in the message"),
    (
        "reopens",
        "remembered early reopens of these dialogs",
        "deleted: dialog id, reopen and receive times",
    ),
    (
        "dry_run_lines",
        "dry-run helpdesk lines (replies and notes in its output file)",
        "text, link and agent; the line kept as posted",
    ),
    ("captures", "captured webhook payloads (capture_dir)", "deleted"),
    ("records", "erasure records", "later syncs store the rating, never the comment"),
)
