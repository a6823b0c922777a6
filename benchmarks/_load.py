"""A small HTTP load generator for the benchmarks (no third-party tools needed).

Persistent HTTP/1.1 connections, one per client thread, spread over several processes so the
client is not limited by one GIL. Two modes:

* closed loop: each connection sends its next request as soon as the previous one is
  answered; measures the maximum acknowledgements per second;
* open loop: requests are scheduled at a fixed rate and latency is measured from the scheduled
  time (so a stalled server is not hidden by the client waiting: no coordinated omission).
"""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

# (path, body, headers) for request number n; a body of None makes it a GET
MakeRequest = Callable[[int], tuple[str, bytes | None, dict[str, str]]]


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def merge(self, other: Result) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.elapsed = max(self.elapsed, other.elapsed)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _connection(base: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def _send(
    conn: http.client.HTTPConnection, req: tuple[str, bytes | None, dict[str, str]]
) -> tuple[http.client.HTTPConnection, int]:
    path, body, headers = req
    for attempt in range(2):
        try:
            conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
            return conn, response.status
        except (http.client.HTTPException, OSError):
            conn.close()
            if attempt:
                raise
            host = conn.host
            conn = http.client.HTTPConnection(host, conn.port, timeout=30)
    raise AssertionError("unreachable")


def _closed_worker(
    base: str,
    make: MakeRequest,
    start_n: int,
    step: int,
    deadline: float,
    out: Result,
    lock: threading.Lock,
) -> None:
    conn = _connection(base)
    local = Result()
    n = start_n
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        try:
            conn, status = _send(conn, make(n))
            local.latencies.append(time.perf_counter() - began)
            local.statuses[status] = local.statuses.get(status, 0) + 1
        except (http.client.HTTPException, OSError):
            local.errors += 1
        n += step
    conn.close()
    with lock:
        out.merge(local)


def _closed_process(args: tuple) -> Result:
    base, make, proc_index, processes, threads, duration = args
    result = Result()
    lock = threading.Lock()
    deadline = time.perf_counter() + duration
    step = processes * threads
    workers = [
        threading.Thread(
            target=_closed_worker,
            args=(base, make, proc_index * threads + t, step, deadline, result, lock),
        )
        for t in range(threads)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.elapsed = time.perf_counter() - started
    return result


def closed_loop(
    base: str, make: MakeRequest, *, processes: int = 2, threads: int = 8, duration: float = 10.0
) -> Result:
    """Maximum throughput with processes × threads concurrent connections."""
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(
            _closed_process,
            [(base, make, i, processes, threads, duration) for i in range(processes)],
        )
    total = Result()
    for part in parts:
        total.merge(part)
    return total


def _open_process(args: tuple) -> Result:
    base, make, proc_index, processes, rate, duration, threads = args
    per_process = rate / processes
    interval = 1.0 / per_process
    result = Result()
    lock = threading.Lock()
    slots: list[tuple[int, float]] = []
    cond = threading.Condition()
    total = int(per_process * duration)
    start = time.perf_counter() + 0.2

    def consumer() -> None:
        conn = _connection(base)
        local = Result()
        while True:
            with cond:
                while not slots:
                    cond.wait()
                n, scheduled = slots.pop(0)
            if n < 0:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                conn, status = _send(conn, make(n))
                local.latencies.append(time.perf_counter() - scheduled)
                local.statuses[status] = local.statuses.get(status, 0) + 1
            except (http.client.HTTPException, OSError):
                local.errors += 1
        conn.close()
        with lock:
            result.merge(local)

    workers = [threading.Thread(target=consumer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for i in range(total):
        scheduled = start + i * interval
        with cond:
            slots.append((i * processes + proc_index, scheduled))
            cond.notify()
        ahead = scheduled - time.perf_counter() - 0.05
        if ahead > 0:
            time.sleep(ahead)
    with cond:
        slots.extend([(-1, 0.0)] * threads)
        cond.notify_all()
    for worker in workers:
        worker.join()
    result.elapsed = duration
    return result


def open_loop(
    base: str,
    make: MakeRequest,
    *,
    rate: float,
    duration: float = 10.0,
    processes: int = 2,
    threads: int = 16,
) -> Result:
    """Send ``rate`` requests per second for ``duration`` seconds; latency from schedule."""
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(
            _open_process,
            [(base, make, i, processes, rate, duration, threads) for i in range(processes)],
        )
    total = Result()
    for part in parts:
        total.merge(part)
    return total
