"""Where an acknowledgement's CPU goes, step by step (no server, no network: one process).

Runs each step of the webhook path on a signed Chatwoot close in a loop and prints CPU
microseconds per close, beside the whole path through the WSGI app (Flask included) and a
bare Flask endpoint called the same way (the peer, measured in the same run). The database
step is timed as a group commit writes it: one batch of 1 close and batches of 16
(what concurrent requests share under load), on a private PostgreSQL schema or SQLite.

    python benchmarks/ack_budget.py [--database-url postgresql://…] [-n 2000]

gunicorn's own cost per request (parsing the request, the socket, the threads) is not in
these figures: ack_bench.py and load_bench.py measure it, as the same for both servers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import private_schema  # noqa: E402
from ack_bench import LOOK_BACK  # noqa: E402
from ack_bench import LOOK_BACK_HELP  # noqa: E402
from ack_bench import SECRET  # noqa: E402
from ack_bench import SignedClose  # noqa: E402
from bare_app import app as bare_app  # noqa: E402

from csat_hook import tokens  # noqa: E402
from csat_hook.app import create_app  # noqa: E402
from csat_hook.config import load_config  # noqa: E402
from csat_hook.helpdesks.records import WebhookRequest  # noqa: E402
from csat_hook.intake.recorder import _Close  # noqa: E402
from csat_hook.intake.storable import storable_event  # noqa: E402
from csat_hook.services import build_services  # noqa: E402


def cpu_us(work: Callable[[int], Any], n: int) -> float:
    """CPU microseconds per call of ``work(i)`` for i in range(n) (process time: the
    threads included)."""
    start = time.process_time()
    for i in range(n):
        work(i)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--look-back", action="store_true", help=LOOK_BACK_HELP)
    args = parser.parse_args()
    n = args.n
    tmp = Path(tempfile.mkdtemp())
    drop_schema = None
    url = args.database_url or f"sqlite:///{tmp / 'budget.sqlite3'}"
    if url.startswith("postgres"):
        url, drop_schema = private_schema(url, "budget")
    config = load_config(
        None,
        env={},
        overrides={
            "database": {"url": url},
            "token": {"secret": "bench-token-secret-0123456789"},
            "logging": {"level": "WARNING"},
            "policy": LOOK_BACK if args.look_back else {},
            "helpdesks": {
                "chatwoot": {
                    "kind": "chatwoot",
                    "base_url": "http://127.0.0.1:9",
                    "api_access_token": "x",
                    "webhook_secret": SECRET,
                }
            },
        },
    )
    services = build_services(config)
    app = create_app(services=services)
    intake = services.intake
    adapter = intake.helpdesks["chatwoot"]
    closes = SignedClose(int(time.time()))  # each close another dialog and customer
    requests_ = [closes(i)[1:] for i in range(n)]
    now = datetime.now(UTC)

    def request(i: int) -> WebhookRequest:
        body, headers = requests_[i]
        return WebhookRequest(
            body=body,
            headers={k.lower(): v for k, v in headers.items()},
            query={},
            received_at=now,
            content_type="application/json",
            method="POST",
            path="/webhooks/chatwoot",
        )

    parsed = [adapter.parse(request(i)) for i in range(n)]
    stored = [storable_event(e) for e in parsed]  # type: ignore[arg-type]
    steps: list[tuple[str, float]] = []
    steps.append(("request record (headers copied)", cpu_us(request, n)))
    steps.append(("HMAC verify (adapter.verify)", cpu_us(lambda i: adapter.verify(request(i)), n)))
    steps.append(("JSON parse + vendor parse", cpu_us(lambda i: adapter.parse(request(i)), n)))
    steps.append(("storable values", cpu_us(lambda i: storable_event(parsed[i]), n)))

    def sign(i: int) -> str:
        event = stored[i]
        ref = tokens.SurveyRef(event.helpdesk, event.dialog_id, event.agent.key or "", now)
        return tokens.sign(intake.token_secret, ref)

    steps.append(("survey reference (signed token)", cpu_us(sign, n)))
    recorder = intake.recorder
    token = sign(0)

    def batch(size: int) -> Callable[[int], Any]:
        def write(i: int) -> Any:
            items = [
                _Close(stored[(i * size + k) % n], f"{token}{size}.{i}.{k}", now, f"{size}-{i}-{k}")
                for k in range(size)
            ]
            # As a group commit writes a batch (a transaction, or one statement in
            # autocommit on PostgreSQL without a policy look-back).
            return recorder._writer._transaction(items)

        return write

    db1 = cpu_us(batch(1), n // 4)
    db16 = cpu_us(batch(16), n // 32) / 16
    steps.append(("database: batch of 1 (surveys, outbox, NOTIFY, commit)", db1))
    steps.append(("database: per close in a batch of 16", db16))

    def environ(i: int, path: str) -> dict[str, Any]:
        _, body, headers = closes(n + i)
        return EnvironBuilder(path=path, method="POST", data=body, headers=headers).get_environ()

    def call(wsgi: Any, environs: list[dict[str, Any]]) -> Callable[[int], Any]:
        def go(i: int) -> Any:
            status: list[str] = []
            b"".join(wsgi(environs[i], lambda s, h, e=None: status.append(s)))
            assert status[0].startswith("200"), status

        return go

    ours = [environ(i, "/webhooks/chatwoot") for i in range(n)]
    bare = [environ(i, "/webhooks/chatwoot") for i in range(n)]
    whole = cpu_us(call(app, ours), n)
    peer = cpu_us(call(bare_app, bare), n)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; database {url.split(':')[0]}; {n} closes; "
        f"{'policy look-backs on; ' if args.look_back else ''}CPU µs per close"
    )
    for name, us in steps:
        print(f"  {name:<52} {us:8.1f}")
    print(f"  {'whole path through the WSGI app (batches of 1)':<52} {whole:8.1f}")
    print(f"  {'bare Flask endpoint, same call (peer)':<52} {peer:8.1f}")
    print(
        f"  {'→ Flask, routing, response, the rest':<52} "
        f"{whole - sum(us for name, us in steps if 'batch of 16' not in name):8.1f}"
    )
    services.engine.dispose()
    if drop_schema:
        drop_schema()


if __name__ == "__main__":
    main()
