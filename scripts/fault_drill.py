"""Exactly-once drill on the Procfile deployment: gunicorn ``web:`` (2 workers) and two
``worker:`` processes on one PostgreSQL database, replying through the generic adapter to a
loopback fake helpdesk that answers slowly, times out, says 503 or 429, or drops the
connection after reading (and storing) the body, at random. Closes are sent 1-4 times, some
concurrently, some a while later, while PostgreSQL's side kills our connections, a worker is
SIGKILLed mid-send and restarted, and the web is SIGTERMed and restarted.

Then the invariants are checked and printed; the exit status is the number of violations.

    PYTHONPATH=. python scripts/fault_drill.py postgresql://postgres@127.0.0.1:5432/db \
        --port 19010 --dialogs 150 --seconds 120

Not a test (minutes of wall time, random faults); the focused tests it led to are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csat_hook.db.engine import make_engine  # noqa: E402
from tests.cluster import free_port  # noqa: E402
from tests.cluster import procfile_command  # noqa: E402

TOKEN = "drill-webhook-token"  # noqa: S105  # a loopback drill's


class Fake:
    """Records every reply POST; answers at random: ok, slow, too slow (past the read
    timeout, stored), 503, 429, or a dropped connection after the body was read (stored)."""

    def __init__(self, port: int, seed: int, late: float = 2.5) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.posts: list[dict[str, Any]] = []
        self.stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.slow = False
        self.late = late  # how long a timing-out answer takes (past the read timeout)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # the look-up
                match = re.match(r"/api/dialogs/([^/]+)/messages", self.path)
                if not match:
                    return self._send(404, {})
                with fake.lock:
                    r = fake.rng.random()
                    messages = list(fake.stored.get(match[1], []))
                if r < 0.1:
                    return self._send(503, {"error": "busy"}, {"Retry-After": "1"})
                if r < 0.15:  # the listing times out
                    time.sleep(fake.late)
                if r < 0.2:  # or is cut off
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                self._send(200, {"messages": messages})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                match = re.match(r"/api/dialogs/([^/]+)/messages", self.path)
                if not match:
                    return self._send(404, {})
                dialog = match[1]
                with fake.lock:
                    r = fake.rng.random()
                    if fake.slow and r < 0.6:
                        action = "slow"
                    elif r < 0.55:
                        action = "ok"
                    elif r < 0.65:
                        action = "503"
                    elif r < 0.75:
                        action = "429"
                    elif r < 0.85:
                        action = "slow"
                    elif r < 0.92:
                        action = "timeout"
                    else:
                        action = "drop"
                    stored = action in ("ok", "slow", "drop")
                    message_id = len(fake.posts) + 1
                    fake.posts.append(
                        {"dialog": dialog, "action": action, "t": time.time(), "id": message_id}
                    )
                    if stored:
                        fake.stored[dialog].append(
                            {
                                "id": message_id,
                                "text": body.get("text", ""),
                                "direction": "outgoing",
                            }
                        )
                if action == "503":
                    return self._send(503, {"error": "unavailable"})
                if action == "429":
                    return self._send(429, {"error": "rate"}, {"Retry-After": "1"})
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if action == "slow":
                    time.sleep(0.6)
                if action == "timeout":
                    time.sleep(fake.late)
                    with fake.lock:  # saved as the vendor finishes, after our read timeout
                        fake.stored[dialog].append(
                            {
                                "id": message_id,
                                "text": body.get("text", ""),
                                "direction": "outgoing",
                            }
                        )
                with contextlib.suppress(OSError):
                    self._send(200, {"id": message_id})
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


FAST = {  # --fast: a run of seconds, as a test's (a stall must outlast worker_dead_after)
    "backoff_base_seconds": 0.1,
    "backoff_cap_seconds": 0.5,
    "lease_seconds": 8,
    "worker_dead_after_seconds": 3,
    "settle_seconds": 2,
}


def write_config(
    workdir: Path, db: str, fake_port: int, look_back: bool = False, fast: bool = False
) -> Path:
    messages = f"http://127.0.0.1:{fake_port}/api/dialogs/{{dialog_id}}/messages"
    config = {
        "database": {"url": db},
        "token": {"secret": "drill-token-secret-0123456789"},
        "delivery": {
            "backoff_base_seconds": 0.2,
            "backoff_cap_seconds": 2,
            "max_attempts": 6,
            "poll_seconds": 1,
            "concurrency": 4,
            "connect_timeout_seconds": 0.5,
            "read_timeout_seconds": 1,
            "lease_seconds": 16,
            "heartbeat_seconds": 0.5,
            "worker_dead_after_seconds": 8,
            "settle_seconds": 6,
            **(FAST if fast else {}),
        },
        "logging": {"level": "INFO"},
        # --look-back: the policy whose closes are decided in a transaction under advisory
        # locks (re-close grace, cooldown, send delay), not the one-statement path.
        **(
            {
                "policy": {
                    "per_dialog": "every_close",
                    "customer_cooldown_days": 1,
                    "send_delay_seconds": 2,
                    "reclose_grace_seconds": 0,
                }
            }
            if look_back
            else {}
        ),
        "helpdesks": {
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": TOKEN},
                "reply": {"url": messages, "idempotency_header": None},
                "lookup": {"url": messages, "ours": "direction == 'outgoing'"},
            }
        },
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Procs:
    def __init__(self, workdir: Path, config: Path, db: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.env = {
            **os.environ,
            "CSAT_HOOK_CONFIG": str(config),
            "DATABASE_URL": db,
            "PYTHONUNBUFFERED": "1",
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.n = 0

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            return subprocess.Popen(  # noqa: S603
                args,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_web(self) -> None:
        command = procfile_command(
            "web",
            {"PORT": str(self.port), "WEB_CONCURRENCY": "2"},
            {"--bind": f"127.0.0.1:{self.port}"},
        )
        self.web = self.spawn([*command[:-1], "--log-level", "warning", command[-1]], "web")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("web did not start")

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.n += 1
        worker = self.spawn([sys.executable, "-m", "csat_hook", "worker"], f"worker-{self.n}")
        self.workers.append(worker)
        return worker

    def signal(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=40)

    def stop(self) -> None:
        for proc in [self.web, *self.workers]:
            if proc is not None and proc.poll() is None:
                self.signal(proc, signal.SIGTERM)


def terminate_all(engine: sa.Engine, app_name: str) -> int:
    """Drop the connections of the drill's processes (named ``app_name``: a test's database
    may be shared with other tests)."""
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = :name"
            ),
            {"name": app_name},
        ).scalar()
        conn.commit()
    return int(n or 0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--port", type=int, default=19010)
    parser.add_argument("--dialogs", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/fault-drill")  # noqa: S108
    parser.add_argument("--look-back", action="store_true")
    parser.add_argument("--fault-threads", type=int, default=1)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--reopens", type=float, default=0.0, help="share of dialogs closed, reopened, closed"
    )
    args = parser.parse_args()
    if args.port == 0:
        args.port = free_port()
        fake_port = free_port()
    else:
        fake_port = args.port + 1
    app_name = f"fault-drill-{os.getpid()}"
    tagged = sa.make_url(args.database_url).update_query_dict({"application_name": app_name})
    served_url = tagged.render_as_string(hide_password=False)
    rng = random.Random(args.seed)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fake = Fake(fake_port, args.seed, late=1.5 if args.fast else 2.5)
    config = write_config(workdir, served_url, fake_port, args.look_back, args.fast)
    engine = make_engine(args.database_url)
    procs = Procs(workdir, config, served_url, args.port)
    url = f"http://127.0.0.1:{args.port}/webhooks/generic"
    results: list[tuple[str, int | str, str]] = []  # (dialog, status or error, detail)
    rlock = threading.Lock()
    faults: Counter[str] = Counter()
    stop = threading.Event()

    def close(dialog: str, event: str = "dialog.closed", closed_at: str | None = None) -> None:
        body: dict[str, Any] = {
            "event": event,
            "dialog": {"id": dialog},
            "agent": {"id": "7", "name": "Anna Petrova"},
            "customer": {"id": f"c-{dialog}", "email": f"{dialog.lower()}@example.org"},
            "language": "en",
        }
        if closed_at:  # a second close of the dialog: another body, another occurrence
            body["closed_at"] = closed_at
        for _ in range(20):
            try:
                response = requests.post(
                    url, json=body, headers={"X-Webhook-Token": TOKEN}, timeout=35
                )
            except requests.RequestException as exc:
                with rlock:
                    results.append((dialog, "conn", f"{type(exc).__name__}: {str(exc)[-120:]}"))
                time.sleep(0.5)  # the web is restarting: a vendor retries
                continue
            detail = response.text[:200]
            if response.status_code == 503:
                detail += " retry-after=" + str(response.headers.get("Retry-After"))
            with rlock:
                results.append((dialog, response.status_code, detail))
            if response.status_code < 500:
                return
            time.sleep(0.5)

    def close_reopen_close(dialog: str, pause: float, copies: int) -> None:
        """A close (sent ``copies`` times at once), a reopen, and another close."""
        with ThreadPoolExecutor(copies) as same:
            list(same.map(lambda _: close(dialog), range(copies)))
        time.sleep(pause)
        close(dialog, "dialog.reopened")
        time.sleep(pause / 3)
        with ThreadPoolExecutor(copies) as same:
            second = datetime.now(UTC).isoformat()
            list(same.map(lambda _: close(dialog, closed_at=second), range(copies)))

    plock = threading.Lock()  # one process fault at a time

    def one_fault(kind: str, rng: random.Random) -> None:
        if kind == "pg":
            faults["pg_backends"] += terminate_all(engine, app_name)
        elif kind == "pg_burst":  # a database flapping for a few seconds
            for _ in range(8 if args.fast else 20):
                faults["pg_backends"] += terminate_all(engine, app_name)
                time.sleep(rng.uniform(0.05, 0.4))
        elif kind in ("stall_worker", "term_worker", "kill_worker", "term_web"):
            with plock:
                process_fault(kind, rng)
        else:
            fake.slow = not fake.slow

    def process_fault(kind: str, rng: random.Random) -> None:
        if kind == "stall_worker":  # a stalled process: taken for dead, then back
            live = [w for w in procs.workers if w.poll() is None]
            victim = rng.choice(live)
            os.killpg(victim.pid, signal.SIGSTOP)
            time.sleep(rng.uniform(3.5, 4.5) if args.fast else rng.uniform(5, 14))
            os.killpg(victim.pid, signal.SIGCONT)
        elif kind == "term_worker":
            live = [w for w in procs.workers if w.poll() is None]
            victim = rng.choice(live)
            procs.signal(victim, signal.SIGTERM)
            procs.workers.remove(victim)
            procs.start_worker()
        elif kind == "kill_worker":
            live = [w for w in procs.workers if w.poll() is None]
            victim = rng.choice(live)
            # mid-send: wait until it holds a 'sending' row
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    n = conn.execute(
                        sa.text(
                            "SELECT count(*) FROM outbox WHERE status = 'sending'"
                            " AND claimed_by LIKE :p"
                        ),
                        {"p": f"%:{victim.pid}:%"},
                    ).scalar()
                if n:
                    faults["kill_worker_mid_send"] += 1
                    break
                time.sleep(0.05)
            procs.signal(victim, signal.SIGKILL)
            procs.workers.remove(victim)
            procs.start_worker()
        elif kind == "term_web":
            assert procs.web is not None
            procs.signal(procs.web, signal.SIGTERM)
            procs.start_web()

    def fault_loop(index: int) -> None:
        # Each fault thread its own sequence of faults, the same in every run of a seed.
        rng = random.Random(args.seed * 1000 + index)
        while not stop.wait(rng.uniform(1, 2.5) if args.fast else rng.uniform(2, 5)):
            kind = rng.choice(
                ["pg", "pg_burst", "kill_worker", "term_worker", "term_web", "slow", "stall_worker"]
            )
            faults[kind] += 1
            try:
                one_fault(kind, rng)
            except Exception as exc:  # the drill's own query cut by a pg fault
                faults[f"{kind}_interrupted_{type(exc).__name__}"] += 1

    procs.start_web()
    procs.start_worker()
    procs.start_worker()
    dialogs = [f"FD-{args.seed}-{i}" for i in range(args.dialogs)]
    faulters = [
        threading.Thread(target=fault_loop, args=(i,), daemon=True)
        for i in range(args.fault_threads)
    ]
    for faulter in faulters:
        faulter.start()
    late: list[str] = []
    reopened: list[str] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            for dialog in dialogs:
                if rng.random() < args.reopens:
                    reopened.append(dialog)
                    pool.submit(close_reopen_close, dialog, rng.uniform(0.3, 3), rng.randint(1, 3))
                    time.sleep(args.seconds / 2 / args.dialogs)
                    continue
                copies = rng.randint(1, 4)
                now = rng.randint(1, copies)
                for _ in range(now):
                    pool.submit(close, dialog)  # concurrent duplicates
                late.extend([dialog] * (copies - now))
                # spread the closes over the first half of the run
                time.sleep(args.seconds / 2 / args.dialogs)
            while time.monotonic() - started < args.seconds * 0.8:
                time.sleep(0.5)
            rng.shuffle(late)
            for dialog in late:  # a minute or more after the first copy
                pool.submit(close, dialog)
        stop.set()
        for faulter in faulters:
            faulter.join()
        fake.slow = False
        # let everything settle
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                busy = conn.execute(
                    sa.text("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
                ).scalar()
            if not busy:
                break
            time.sleep(1)
        time.sleep(2 if args.fast else 4)  # past a timing-out answer's late save
        outbox_cli = subprocess.run(
            [sys.executable, "-m", "csat_hook", "outbox", "--json", "--limit", "100000"],
            env=procs.env,
            capture_output=True,
            text=True,
            cwd=workdir,
            check=False,
        )
    finally:
        stop.set()
        procs.stop()
    return check(engine, fake, dialogs, results, faults, outbox_cli.stdout, set(reopened))


def check_reopened(engine: sa.Engine, fake: Fake, reopened: set[str]) -> list[str]:
    """Per survey of a reopened dialog: sent once if recorded sent, never if cancelled or
    skipped (unless recorded as maybe in the dialog); no message of no survey."""
    violations: list[str] = []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.id, s.dialog_id, s.token, s.status AS survey_status, o.status,"
                " o.last_error FROM surveys s LEFT JOIN outbox o ON o.survey_id = s.id"
                " WHERE s.dialog_id = ANY(:dialogs)"
            ),
            {"dialogs": sorted(reopened)},
        ).all()
    seen: Counter[str] = Counter()
    outcome: Counter[str] = Counter()
    for row in rows:
        texts = [m["text"] for m in fake.stored.get(row.dialog_id, [])]
        n = sum(1 for text in texts if row.token and row.token in text)
        seen[row.dialog_id] += n
        outcome[f"{row.survey_status}/{row.status}"] += 1
        if row.status == "sent" and n != 1:
            violations.append(f"{row.dialog_id} survey {row.id}: sent, {n} in the dialog")
        elif row.status in ("pending", "sending"):
            violations.append(f"{row.dialog_id} survey {row.id}: still {row.status}")
        elif (
            row.status in ("cancelled", "failed", None)
            and n
            and "may" not in (row.last_error or "")
        ):
            violations.append(
                f"{row.dialog_id} survey {row.id}: {row.survey_status}/{row.status}"
                f" ({row.last_error}) but {n} in the dialog"
            )
    for dialog in reopened:
        if len(fake.stored.get(dialog, [])) != seen[dialog]:
            violations.append(f"{dialog}: a message of no survey")
    print("reopened dialogs:", len(reopened), "surveys:", dict(outcome))
    return violations


def check(
    engine: sa.Engine,
    fake: Fake,
    dialogs: list[str],
    results: list[tuple[str, int | str, str]],
    faults: Counter[str],
    outbox_json: str,
    reopened: set[str],
) -> int:
    violations: list[str] = []
    codes = Counter(str(code) for _, code, _ in results)
    print("faults:", dict(faults))
    print("requests:", dict(codes), "posts:", Counter(p["action"] for p in fake.posts))
    print(
        "connection errors:",
        Counter(
            re.sub(r"\(Caused by |object at 0x[0-9a-f]+|[0-9]+", "", d)[-70:]
            for _, c, d in results
            if c == "conn"
        ),
    )
    for dialog, code, detail in results:
        if (
            isinstance(code, int)
            and code >= 500
            and not (code == 503 and "retry-after=None" not in detail)
        ):
            violations.append(f"{dialog}: {code} {detail}")
    acked = {d for d, code, _ in results if isinstance(code, int) and 200 <= code < 300}
    with engine.connect() as conn:
        surveys = Counter(
            conn.execute(
                sa.text("SELECT dialog_id FROM surveys WHERE helpdesk = 'generic'")
            ).scalars()
        )
        every = conn.execute(
            sa.text(
                "SELECT id, dialog_id, status, last_error, external_id FROM outbox"
                " WHERE kind = 'reply' ORDER BY id"
            )
        ).all()
    rows = {r.dialog_id: r for r in every}  # a dialog's latest reply
    statuses = Counter(r.status for r in every)
    print("acked dialogs:", len(acked), "of", len(dialogs), "outbox:", dict(statuses))
    violations += check_reopened(engine, fake, reopened)
    for dialog in dialogs:
        if dialog in reopened:
            continue
        stored = len(fake.stored.get(dialog, []))
        if stored > 1:
            violations.append(f"{dialog}: {stored} replies stored by the helpdesk")
        if dialog not in acked:
            if dialog in surveys:
                print(f"note: {dialog} never acked but has a survey")
            continue
        if surveys[dialog] != 1:
            violations.append(f"{dialog}: {surveys[dialog]} surveys")
        row = rows.get(dialog)
        if row is None:
            violations.append(f"{dialog}: no outbox row")
        elif row.status == "sent" and stored != 1:
            violations.append(f"{dialog}: sent but the helpdesk holds {stored}")
        elif row.status in ("failed", "cancelled") and not row.last_error:
            violations.append(f"{dialog}: {row.status} with no reason")
        elif row.status in ("pending", "sending"):
            violations.append(f"{dialog}: still {row.status}")
        elif row.status == "failed" and stored:
            violations.append(f"{dialog}: failed but the helpdesk holds {stored}: {row.last_error}")
    try:
        listed = json.loads(outbox_json)
        items = listed["replies"]
        cli = {i["id"]: i.get("status") for i in items if i.get("kind", "reply") == "reply"}
        for row in every:
            if cli.get(row.id) != row.status:
                violations.append(
                    f"{row.dialog_id}: outbox CLI says {cli.get(row.id)} of reply {row.id},"
                    f" the database {row.status}"
                )
    except (ValueError, AttributeError, TypeError) as exc:
        violations.append(f"outbox --json unreadable: {exc}: {outbox_json[:200]}")
    for line in violations:
        print("VIOLATION", line)
    print("violations:", len(violations))
    return len(violations)


if __name__ == "__main__":
    sys.exit(main())
