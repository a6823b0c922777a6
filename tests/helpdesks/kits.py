"""One kit per registered helpdesk kind: options, a signed close, a signed other event, and
what the reply request must look like. ``tests/helpdesks/test_contract.py`` runs the same
checks over all of them. Adding a vendor means adding ``tests/helpdesks/<kind>/kit.py``
defining ``KIT``; the contract test fails until every registered kind has one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

# A signed request: body bytes, headers, query parameters.
SignedRequest = tuple[bytes, dict[str, str], dict[str, str]]


@dataclass
class Kit:
    kind: str
    options: Callable[[str, Path], dict[str, Any]]  # (fake url, tmp dir) → options
    closed: Callable[[datetime], SignedRequest]  # a signed close event
    other: Callable[[datetime], SignedRequest]  # a signed event that is not one
    dialog_id: str  # the close event's dialog id
    agent_name: str  # the agent name the link carries
    # (requests the fake vendor API received, except agent look-ups (GET), tmp dir)
    check_reply: Callable[[list[dict[str, Any]], Path], None]
    # Authenticates any body the way the vendor would (for fuzzing past verification).
    sign: Callable[[bytes, datetime], SignedRequest]
    # How an attacker alters a request: the body (signed vendors), or the token (token auth).
    tamper: Callable[[SignedRequest], SignedRequest] = lambda r: (r[0] + b" ", r[1], r[2])
    # Where the close body holds ids the adapter reads (dotted paths, as errors name them):
    # an id of the wrong type there must be refused with a 400 naming the path.
    id_paths: tuple[str, ...] = ()
    # A secret rotation: the option holding the previous secrets (dotted, as in the
    # configuration: auth.previous_tokens), and a request authenticated the way the vendor
    # would with any given secret or token (tests/helpdesks/test_rotation.py).
    previous_key: str = ""
    sign_with: Callable[[bytes, datetime, str], SignedRequest] | None = None

    def with_dialog_id(self, payload: Any, dialog_id: Any) -> Any:
        """A copy of ``payload`` (the close's JSON) where every value equal to the close's
        dialog id is ``dialog_id`` instead: another close, of another dialog."""
        if isinstance(payload, dict):
            return {k: self.with_dialog_id(v, dialog_id) for k, v in payload.items()}
        if isinstance(payload, list):
            return [self.with_dialog_id(v, dialog_id) for v in payload]
        if not isinstance(payload, bool) and str(payload) == self.dialog_id:
            return dialog_id
        return payload


def json_headers(extra: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **extra}


def load_kits() -> dict[str, Kit]:
    """Every ``tests/helpdesks/<kind>/kit.py``'s ``KIT``, by kind."""
    kits: dict[str, Kit] = {}
    for module in pkgutil.iter_modules([str(HERE)]):
        if module.ispkg and (HERE / module.name / "kit.py").is_file():
            kit = importlib.import_module(f"tests.helpdesks.{module.name}.kit").KIT
            kits[kit.kind] = kit
    return kits
