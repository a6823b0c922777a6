"""Hostile webhooks, signed, against the real deployment: no 5xx, memory flat.

Runs the Procfile deployment (gunicorn with the Procfile's own ``web:`` line, plus one
``csat-hook worker``) on SQLite or PostgreSQL, configured with every registered helpdesk
kind, and sends N hostile requests spread over all of them. Each one is authenticated the way
its vendor does it (``tests/helpdesks/<kind>/kit.py``'s ``sign``), so it gets past
verification into the parser, the adapter and the store:

* the kit's close payload with 1-3 values replaced by hostile ones: NUL characters, lone
  surrogates, text far longer than its column, integers no float holds, ``5.0``, booleans,
  objects and lists where ids belong, nesting just under and over the 64-level bound;
* every id field of the kit with a value of the wrong type; every string with a NUL;
* whole bodies: deep nesting (65 to 5000 levels), ``1e999``, duplicate keys, invalid UTF-8,
  truncated JSON, random bytes, the wrong content type;
* framing, over raw sockets: malformed chunked bodies (size line, terminator, extension,
  trailer), a chunked body one byte over ``server.max_body_bytes``, a body shorter than its
  Content-Length.

    python benchmarks/fuzz_webhooks.py [--requests 12000] [--clients 8] [--seed 1]
                                       [--database-url postgresql://postgres@127.0.0.1/test]

Prints the status histogram (target: no 5xx), requests per second, the statuses per case,
and the resident memory of the web processes and the delivery worker after a warm-up and
after each quarter (target: flat). Exits 1 if any answer was a 5xx or no answer came.

``--in-process`` sends the same mix (framing cases aside) through Flask's test client in one
thread instead, and prints this process's resident memory before and after ``malloc_trim``:
what the application keeps, without eight threads' malloc arenas in the figure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csat_hook.app import create_app  # noqa: E402
from csat_hook.config import load_config  # noqa: E402
from csat_hook.db.engine import make_engine  # noqa: E402
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk  # noqa: E402
from csat_hook.services import build_services  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402
from tests.documents import at  # noqa: E402
from tests.documents import leaves  # noqa: E402
from tests.documents import replaced  # noqa: E402
from tests.helpdesks.kits import Kit  # noqa: E402
from tests.helpdesks.kits import load_kits  # noqa: E402
from tests.rawhttp import chunked  # noqa: E402
from tests.rawhttp import exchange  # noqa: E402
from tests.rawhttp import status_of  # noqa: E402

MAX_BODY = 65536

# A request: (case name, kind, raw bytes to send, half-close after sending)
Raw = tuple[str, str, bytes, bool]


def hostile_value(rng: random.Random) -> Any:
    """One value no sane payload holds where it is put."""
    pick = rng.randrange(16)
    if pick == 0:
        return "a\x00b"
    if pick == 1:
        return "\x00" * rng.randrange(1, 5)
    if pick == 2:
        return rng.choice(["\ud800", "x\udfff", "\udc00\ud800", "😀\ud83d"])
    if pick == 3:
        return rng.choice("жx|%😀") * rng.randrange(150, 5000)
    if pick == 4:
        return 10 ** rng.randrange(20, 400) * rng.choice([1, -1])
    if pick == 5:
        return rng.choice([5.0, 1e308, -0.0, 0.5, 2.0**63])
    if pick == 6:
        return rng.choice([True, False])
    if pick == 7:
        return {"id": rng.randrange(100), "nested": [1, {"x": None}]}
    if pick == 8:
        return [rng.randrange(100), "x"]
    if pick == 9:
        return None
    if pick == 10:
        return nested(rng.randrange(55, 70), "\ud800")
    if pick == 11:
        return rng.choice(["1e999", "NaN", "-Infinity", "9" * 400, ""])
    if pick == 12:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if pick == 13:
        return rng.choice(["{{ticket.id}}", "{{triggered_event}}", "resolved", "closed", "0"])
    if pick == 14:
        return " \t\r\n" * rng.randrange(1, 50)
    return rng.randrange(-(2**70), 2**70)


def nested(levels: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def encode(payload: Any, rng: random.Random) -> bytes:
    """JSON text as a sender may write it: escaped or raw UTF-8 (lone surrogates escaped)."""
    try:
        return json.dumps(payload, ensure_ascii=rng.random() < 0.5).encode()
    except UnicodeEncodeError:
        return json.dumps(payload).encode()


class Requests:
    """Generates the hostile requests, each signed for its kit."""

    def __init__(self, kits: dict[str, Kit], seed: int, run: str) -> None:
        self.kits = kits
        self.rng = random.Random(seed)
        self.run = run
        self.count = 0

    def close_of(self, kit: Kit) -> Any:
        """The kit's close, about a dialog of its own (so it is stored, not a duplicate)."""
        self.count += 1
        body = kit.closed(datetime.now(UTC))[0]
        return kit.with_dialog_id(json.loads(body), f"{self.run}-{self.count}")

    def make(self, kit: Kit) -> Raw:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            payload = self.close_of(kit)
            paths = [path for path, _ in leaves(payload)]
            for _ in range(rng.randrange(1, 4)):
                payload = replaced(payload, rng.choice(paths), hostile_value(rng))
            return self.signed("mutated leaves", kit, encode(payload, rng))
        if pick < 0.55:
            payload = self.close_of(kit)
            path = rng.choice(kit.id_paths)
            bad = rng.choice([True, False, 5.0, {"id": 1}, [1], 1.5])
            payload = replaced(payload, at(payload, path), bad)
            return self.signed("id of the wrong type", kit, encode(payload, rng))
        if pick < 0.65:
            payload = self.close_of(kit)
            strings = [(p, value) for p, value in leaves(payload) if isinstance(value, str)]
            path, value = rng.choice(strings)
            where = rng.randrange(len(value) + 1)
            payload = replaced(payload, path, value[:where] + "\x00" + value[where:])
            return self.signed("NUL in a string", kit, encode(payload, rng))
        if pick < 0.72:
            close = json.dumps(self.close_of(kit)).encode()
            levels = rng.choice([65, 100, 600, 5000])
            deep = b'{"a":' * levels + b'"\\ud800"' + b"}" * levels
            return self.signed("nested too deep", kit, close[:-1] + b', "extra": ' + deep + b"}")
        if pick < 0.77:
            close = json.dumps(self.close_of(kit)).encode()
            number = rng.choice([b"1e999", b"-1e400", b"1" + b"0" * 5000, b"1" + b"0" * 400])
            return self.signed("huge number", kit, close[:-1] + b', "extra": ' + number + b"}")
        if pick < 0.82:
            payload = self.close_of(kit)
            key = rng.choice(list(payload))
            text = json.dumps(payload)
            extra = json.dumps(hostile_value(rng), ensure_ascii=True)
            return self.signed("duplicate key", kit, (text[:-1] + f', "{key}": {extra}}}').encode())
        if pick < 0.88:
            close = json.dumps(self.close_of(kit)).encode()
            body = rng.choice(
                [
                    close[: rng.randrange(1, len(close))],  # truncated
                    close.replace(b'"', b"\xff", 1),  # invalid UTF-8
                    bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))),
                    b"",
                    b"[" * 3000,
                    b'"just a string"',
                ]
            )
            return self.signed("broken body", kit, body)
        return self.framing(kit)

    def signed(self, case: str, kit: Kit, body: bytes, *, framing: str = "length") -> Raw:
        signed_body, headers, query = kit.sign(body, datetime.now(UTC))
        target = f"/webhooks/{kit.kind}"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        head = [f"POST {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        content_type = headers.get("Content-Type", "application/json")
        if self.rng.random() < 0.05:
            content_type = self.rng.choice(["text/plain", "application/x-www-form-urlencoded", ""])
        head += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-type"]
        if content_type:
            head.append(f"Content-Type: {content_type}")
        half_close = False
        if framing == "chunked":
            head.append("Transfer-Encoding: chunked")
            payload = chunked(signed_body, size=self.rng.choice([7, 512, 4096]))
        elif framing == "short":
            head.append(f"Content-Length: {len(signed_body) + 10}")
            payload, half_close = signed_body, True
        else:
            head.append(f"Content-Length: {len(signed_body)}")
            payload = signed_body
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        return (case, kit.kind, raw, half_close)

    def framing(self, kit: Kit) -> Raw:
        rng = self.rng
        close = json.dumps(self.close_of(kit)).encode()
        pick = rng.randrange(6)
        if pick == 0:
            return self.signed("chunked, valid", kit, close, framing="chunked")
        if pick == 1:
            padded = close + b" " * (MAX_BODY + 1 - len(close))
            return self.signed("chunked, over the limit", kit, padded, framing="chunked")
        if pick == 2:
            return self.signed("body shorter than its length", kit, close, framing="short")
        case, kind, raw, _ = self.signed("chunked, malformed", kit, close, framing="chunked")
        head, _, body = raw.partition(b"\r\n\r\n")
        broken = {
            3: b"zz\r\n" + body,  # a size that is not hex
            4: body.replace(b"\r\n", b"XX", 2),  # data not followed by CRLF
            5: body[:-2] + b"X-Trailer " + b"x" * 20 + b"\r\n\r\n",  # a trailer with no colon
        }[pick]
        return (case, kind, head + b"\r\n\r\n" + broken, False)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def memory(cluster: LocalCluster) -> dict[str, int]:
    assert cluster.web is not None
    found = {"web master": rss_kib(cluster.web.pid)}
    for n, pid in enumerate(sorted(children(cluster.web.pid))):
        found[f"web worker {n + 1}"] = rss_kib(pid)
    for n, proc in enumerate(cluster.workers):
        found[f"delivery worker {n + 1}"] = rss_kib(proc.pid)
    return found


def send_all(
    port: int, requests: list[Raw], clients: int
) -> tuple[Counter[int], dict[str, Counter[int]], float, list[str]]:
    statuses: Counter[int] = Counter()
    per_case: dict[str, Counter[int]] = defaultdict(Counter)
    failures: list[str] = []
    lock = threading.Lock()

    def one(item: Raw) -> None:
        case, kind, raw, half_close = item
        try:
            answer = exchange(port, raw, half_close=half_close, timeout=30)
            status = status_of(answer) or 0
        except OSError:
            status = 0
            answer = b""
        with lock:
            statuses[status] += 1
            per_case[case][status] += 1
            if status >= 500 or status == 0:
                failures.append(f"{kind} / {case}: {answer[:200]!r} <- {raw[:300]!r}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, requests))
    return statuses, per_case, time.perf_counter() - started, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=12_000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--in-process", action="store_true", help="one thread, no server")
    args = parser.parse_args()
    if args.in_process:
        in_process(args)
        return

    kits = load_kits()
    run = uuid.uuid4().hex[:8]
    schema = None
    admin = None
    fake = FakeHelpdesk().start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'fuzz.sqlite3'}"
        if args.database_url:
            schema = f"fuzz_{run}"
            base = sa.make_url(args.database_url)
            admin = make_engine(base.render_as_string(hide_password=False))
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
        config = {
            "database": {"url": url},
            "token": {"secret": "fuzz-token-secret-0123456789"},
            "server": {"max_body_bytes": MAX_BODY},
            "policy": {"per_dialog": "every_close", "reclose_grace_seconds": 0},
            "delivery": {"backoff_base_seconds": 0.2, "backoff_cap_seconds": 2},
            "logging": {"level": "WARNING"},
            "helpdesks": {
                kind: {"kind": kind, **kit.options(fake.url, work)} for kind, kit in kits.items()
            },
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        cluster = LocalCluster(work / "config.yaml", work, web_workers=2)
        failures: list[str] = []
        try:
            cluster.start_web()
            cluster.start_worker()
            port = int(cluster.url.rsplit(":", 1)[1])
            make = Requests(kits, args.seed, run)
            order = sorted(kits)
            warm = [make.make(kits[order[n % len(order)]]) for n in range(700)]
            send_all(port, warm, args.clients)  # warm-up: imports, caches, pools
            time.sleep(1)
            samples = [memory(cluster)]
            statuses: Counter[int] = Counter()
            per_case: dict[str, Counter[int]] = defaultdict(Counter)
            elapsed = 0.0
            for quarter in range(4):  # memory after each quarter: flat, or growing?
                size = args.requests // 4 + (args.requests % 4 if quarter == 3 else 0)
                batch = [make.make(kits[order[n % len(order)]]) for n in range(size)]
                got, cases, seconds, failed = send_all(port, batch, args.clients)
                statuses.update(got)
                for case, counts in cases.items():
                    per_case[case].update(counts)
                elapsed += seconds
                failures.extend(failed)
                time.sleep(1)
                samples.append(memory(cluster))
        finally:
            cluster.stop()
            fake.stop()
        log = (work / "web.log").read_text(errors="replace")
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {database}; Procfile web line (2 processes × 8 threads)"
        f" + 1 delivery worker; {len(kits)} helpdesk kinds: {', '.join(order)}"
    )
    total = sum(statuses.values())
    print(
        f"requests: {total} signed hostile ({args.clients} concurrent), {elapsed:.1f} s, "
        f"{total / elapsed:.0f} requests/s"
    )
    print("statuses:", " ".join(f"{s}×{c}" for s, c in sorted(statuses.items())))
    fivexx = sum(c for s, c in statuses.items() if s >= 500 or s == 0)
    print(f"5xx or no answer: {fivexx}")
    for case in sorted(per_case):
        line = " ".join(f"{s}×{c}" for s, c in sorted(per_case[case].items()))
        print(f"  {case:<30} {line}")
    print("resident memory (KiB) after a 700-request warm-up, then after each quarter:")
    for name in samples[0]:
        curve = " → ".join(f"{sample.get(name, 0):>6}" for sample in samples)
        grown = samples[-1].get(name, 0) - samples[0][name]
        late = samples[-1].get(name, 0) - samples[2].get(name, 0)
        print(f"  {name:<18} {curve}  ({grown:+d} in all, {late:+d} in the second half)")
    tracebacks = log.count("Traceback")
    print(f"tracebacks in the web log: {tracebacks}")
    for failure in failures[:10]:
        print("FAILED:", failure)
    sys.exit(1 if fivexx or tracebacks else 0)


def in_process(args: argparse.Namespace) -> None:
    """The request mix through the test client, one thread; memory after each fifth."""
    libc = ctypes.CDLL("libc.so.6")
    kits = load_kits()
    order = sorted(kits)
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url, admin, schema = f"sqlite:///{work / 'fuzz.sqlite3'}", None, f"fuzz_{run}"
        if args.database_url:
            base = sa.make_url(args.database_url)
            admin = make_engine(base.render_as_string(hide_password=False))
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            options = {"options": f"-csearch_path={schema}"}
            url = base.update_query_dict(options).render_as_string(hide_password=False)
        config = load_config(
            None,
            env={},
            overrides={
                "database": {"url": url},
                "token": {"secret": "fuzz-token-secret-0123456789"},
                "server": {"max_body_bytes": MAX_BODY},
                "policy": {"per_dialog": "every_close", "reclose_grace_seconds": 0},
                "logging": {"level": "WARNING"},
                "helpdesks": {
                    kind: {"kind": kind, **kit.options("http://127.0.0.1:9", work)}
                    for kind, kit in kits.items()
                },
            },
        )
        services = build_services(config)
        client = create_app(services=services).test_client()
        make = Requests(kits, args.seed, run)
        statuses: Counter[int] = Counter()

        def send(count: int) -> None:
            for n in range(count):
                _case, _kind, raw, half_close = make.make(kits[order[n % len(order)]])
                head, _, body = raw.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                if half_close or "Transfer-Encoding" in headers:
                    continue  # framing needs a real server
                for name in ("Content-Length", "Host", "Connection"):
                    headers.pop(name, None)
                target = lines[0].split(" ")[1]
                statuses[client.post(target, data=body, headers=headers).status_code] += 1

        def resident() -> tuple[int, int]:
            before = rss_kib(os.getpid())
            libc.malloc_trim(0)
            return before, rss_kib(os.getpid())

        send(2000)  # warm-up
        print("resident memory of one process (KiB), as measured → after malloc_trim:")
        for fifth in range(6):
            before, trimmed = resident()
            print(f"  after {2000 + fifth * args.requests // 5:>6} requests: {before} → {trimmed}")
            if fifth < 5:
                send(args.requests // 5)
        print("statuses:", " ".join(f"{s}×{c}" for s, c in sorted(statuses.items())))
        services.engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if any(status >= 500 for status in statuses):
            sys.exit(1)


if __name__ == "__main__":
    main()
