"""Valid closes while senders stall: latency with 0 and with 50 stalled connections.

Runs the Procfile's ``web:`` line (one process, 8 threads) three times: csat-hook, and as the
peer a bare Flask endpoint (``benchmarks/bare_app.py``) with the same gunicorn settings, then
the same bare endpoint on stock gthread (the Procfile's line before the buffering worker).
For each, valid signed closes are sent at a fixed rate, each on a new connection (as vendors
do), while N connections stall: a body declared and never sent, a chunked body never
finished, a body or a head trickled a byte every 2 s, a connection that sends nothing. A
stalled connection the server closes is opened again at once, so N stay open throughout.

    python benchmarks/slow_senders.py [--stalled 50] [--rate 20] [--duration 10]

Prints p50/p99/max of the time from the scheduled send to the response, the share answered
within 1 s and the requests not answered within the client's time-out. Target: with 50
stalled connections, valid closes acknowledged within 1 s (p99 < 1 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import LocalCluster  # noqa: E402
from tests.cluster import free_port  # noqa: E402
from tests.cluster import procfile_command  # noqa: E402
from tests.helpers import generic_close  # noqa: E402
from tests.rawhttp import STALLS  # noqa: E402
from tests.rawhttp import Stalled  # noqa: E402
from tests.rawhttp import exchange  # noqa: E402
from tests.rawhttp import request  # noqa: E402
from tests.rawhttp import status_of  # noqa: E402

TOKEN = "slow-senders-token"


class StallKeeper:
    """Keeps ``count`` stalled connections open to ``port`` until stopped."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        kinds = list(STALLS.values())
        self.kinds = [kinds[i % len(kinds)] for i in range(count)]
        self.senders: list[Stalled | None] = [None] * count
        self.reopened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._keep, daemon=True)

    def start(self) -> StallKeeper:
        for i in range(len(self.kinds)):
            self._open(i)
        self.thread.start()
        return self

    def _open(self, i: int) -> None:
        with contextlib.suppress(OSError):
            self.senders[i] = Stalled(self.port, *self.kinds[i])

    def _keep(self) -> None:
        last_tick = time.monotonic()
        while not self.stop.wait(0.2):
            tick = time.monotonic() - last_tick >= 2
            if tick:
                last_tick = time.monotonic()
            for i, sender in enumerate(self.senders):
                if sender is None or not sender.still_waiting():
                    if sender is not None:
                        sender.close()
                        self.reopened += 1
                    self._open(i)
                elif tick:
                    sender.tick()

    def open_now(self) -> int:
        return sum(1 for s in self.senders if s is not None and s.still_waiting())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sender in self.senders:
            if sender is not None:
                sender.close()


def measure(port: int, rate: float, duration: float, timeout: float) -> list[float | None]:
    """Latency of each close (None: no answer within ``timeout``), open loop."""
    count = int(rate * duration)
    start = time.monotonic() + 0.2
    results: list[float | None] = [None] * count

    def one(n: int) -> None:
        scheduled = start + n / rate
        time.sleep(max(0.0, scheduled - time.monotonic()))
        body = json.dumps(generic_close(f"slow-{os.getpid()}-{time.time_ns()}-{n}")).encode()
        data = request(
            "POST",
            "/webhooks/generic",
            body,
            {"X-Webhook-Token": TOKEN, "Content-Type": "application/json", "Connection": "close"},
        )
        try:
            answer = exchange(port, data, timeout=timeout)
        except OSError:
            return
        if status_of(answer) == 200:
            results[n] = time.monotonic() - scheduled

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(one, range(count)))
    return results


def summary(name: str, stalled: int, results: list[float | None], kept: int) -> str:
    answered = sorted(r for r in results if r is not None)
    missing = len(results) - len(answered)
    if not answered:
        return f"{name:<40} {stalled:>3}  no answer at all ({missing} timed out)"
    quantiles = statistics.quantiles(answered, n=100) if len(answered) > 1 else answered * 99
    within = sum(1 for r in answered if r <= 1.0) / len(results)
    return (
        f"{name:<40} {stalled:>3}  p50 {quantiles[49] * 1000:8.1f} ms  "
        f"p99 {quantiles[98] * 1000:8.1f} ms  max {answered[-1] * 1000:8.1f} ms  "
        f"≤1 s {within:6.1%}  not answered {missing:>3}  stalled open at the end {kept}"
    )


def run(
    name: str,
    cluster: LocalCluster,
    command: list[str],
    args: argparse.Namespace,
    timeout: float,
) -> list[str]:
    cluster.web = cluster._spawn(command, "web")  # the Procfile line, as given
    port = int(command[command.index("--bind") + 1].rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if status_of(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)):
                break
        time.sleep(0.1)
    lines = []
    try:
        measure(port, args.rate, 2, timeout)  # warm-up
        for stalled in (0, args.stalled):
            keeper = StallKeeper(port, stalled).start() if stalled else None
            try:
                time.sleep(1 if stalled else 0)
                results = measure(port, args.rate, args.duration, timeout)
                kept = keeper.open_now() if keeper else 0
            finally:
                if keeper:
                    keeper.close()
            lines.append(summary(name, stalled, results, kept))
            print(lines[-1], flush=True)
    finally:
        cluster.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="valid closes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one web process × 8 threads; {args.rate:.0f} valid "
        f"closes/s for {args.duration:.0f} s, each on a new connection; stalled: "
        f"{', '.join(STALLS)} in turn"
    )
    print(f"{'server':<40} stalled")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = {
            "database": {"url": f"sqlite:///{work / 'slow.sqlite3'}"},
            "token": {"secret": "slow-token-secret-0123456789"},
            "server": {"body_timeout_seconds": 10},
            "logging": {"level": "WARNING"},
            "helpdesks": {
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": TOKEN},
                    "reply": {"url": "http://127.0.0.1:9/{dialog_id}"},
                }
            },
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        cluster = LocalCluster(work / "config.yaml", work, web_workers=1)
        cluster.env["PYTHONPATH"] = str(Path(__file__).resolve().parent)  # bare_app
        for name, app, stock in (
            ("csat-hook, Procfile line", "csat_hook.wsgi:app", False),
            ("bare Flask, Procfile line (peer)", "bare_app:app", False),
            ("bare Flask, stock gthread (before)", "bare_app:app", True),
        ):
            port = str(free_port())
            command = procfile_command(
                "web",
                {"PORT": port, "WEB_CONCURRENCY": "1"},
                {"--bind": f"127.0.0.1:{port}", "--log-level": "warning"},
            )
            command[-1] = app
            if stock:  # the settings the Procfile had before: plain gthread
                at = command.index("--config")
                command[at : at + 2] = ["--worker-class", "gthread"]
            run(name, cluster, command, args, timeout=10 if stock else 30)


if __name__ == "__main__":
    main()
