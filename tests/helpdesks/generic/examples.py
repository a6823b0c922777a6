"""The shipped example configurations (``examples/*.yaml``), loaded the way a new user runs
them: the file as the configuration, only secrets (and the other sections) added. Requests to
the vendors' real API hosts are answered by ``responses`` with payloads from their docs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from tests.conftest import base_overrides
from tests.helpers import fixture_path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"

# --- Crisp ------------------------------------------------------------------------------------

CRISP_SECRETS = {
    "CRISP_HOOK_SECRET": "crisp-plugin-hook-secret-5f1c2e",
    "CRISP_API_AUTH": base64.b64encode(b"7c3ef21c-1e04-41ce:cc29e1a5086e428f").decode(),
}
CRISP_WEBSITE = "42286ab3-b29a-4fde-8538-da0ae501d825"
CRISP_SESSION = "session_36ba3566-9651-4790-afc8-ffedbccc317f"
CRISP_OPERATOR = "aa0a7ebd-a3f3-4ab6-8e3d-96b8b8c3d4d2"
CRISP_API = "https://api.crisp.chat/v1/website/" + CRISP_WEBSITE
CRISP_CONVERSATION = f"{CRISP_API}/conversation/{CRISP_SESSION}"


def crisp_body(name: str) -> bytes:
    """A Crisp web hook body as Crisp sends it (compact JSON, ``JSON.stringify``)."""
    return fixture_path("generic", f"crisp/{name}.json").read_bytes()


def crisp_answer(name: str) -> Any:
    return json.loads(fixture_path("generic", f"crisp/{name}.json").read_text(encoding="utf-8"))


def crisp_headers(
    body: bytes, when: datetime, secret: str = CRISP_SECRETS["CRISP_HOOK_SECRET"]
) -> dict[str, str]:
    """The headers of a Crisp plugin hook, signed as Crisp's Go and Node libraries verify it:
    hex HMAC-SHA256(secret, "[" + X-Crisp-Request-Timestamp + ";" + body + "]"), the
    timestamp in milliseconds."""
    timestamp = str(int(when.timestamp() * 1000))
    trace = b"[" + timestamp.encode() + b";" + body + b"]"
    return {
        "Content-Type": "application/json",
        "X-Crisp-Hook-Origin": "plugin/rtm 38b411d9377a6a00 production",
        "X-Crisp-Request-Timestamp": timestamp,
        "X-Crisp-Signature": hmac.new(secret.encode(), trace, hashlib.sha256).hexdigest(),
        "X-Delivery-Attempt-Count": "1",
        "X-Delivery-Attempt-Limit": "5",
    }


# --- LiveChat ---------------------------------------------------------------------------------

LIVECHAT_SECRETS = {
    "LIVECHAT_WEBHOOK_SECRET": "lc-webhook-secret-9d2b7a41",
    "LIVECHAT_API_AUTH": base64.b64encode(b"d24fa41e-bc16-41b8:dal:Xt6Lk0pat").decode(),
}
LIVECHAT_ACTION = "https://api.livechatinc.com/v3.6/agent/action/"


LIVECHAT_SECRET = LIVECHAT_SECRETS["LIVECHAT_WEBHOOK_SECRET"]


def livechat_body(name: str, secret: str | None = LIVECHAT_SECRET) -> bytes:
    """A LiveChat webhook body carrying ``secret`` as its ``secret_key`` (None: without one)."""
    payload = json.loads(fixture_path("generic", f"livechat/{name}.json").read_text("utf-8"))
    if secret is None:
        del payload["secret_key"]
    else:
        payload["secret_key"] = secret
    return json.dumps(payload, separators=(",", ":")).encode()


def livechat_answer(name: str) -> Any:
    return json.loads(fixture_path("generic", f"livechat/{name}.json").read_text(encoding="utf-8"))


# --- loading and inspecting -------------------------------------------------------------------


def example_config(
    name: str, secrets: dict[str, str], database_url: str, tmp_path: Path, **sections: Any
) -> Config:
    """``examples/<name>.yaml`` as the configuration file, the environment holding only its
    secrets; the other sections as the test suite's defaults (``sections`` merged over)."""
    overrides = base_overrides(database_url, tmp_path, "http://127.0.0.1:9")
    del overrides["helpdesks"]
    for key, value in sections.items():
        overrides[key] = {**overrides.get(key, {}), **value}
    return load_config(EXAMPLES / f"{name}.yaml", env=secrets, overrides=overrides)


def survey_rows(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(surveys)).all())


def outbox_rows(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())
