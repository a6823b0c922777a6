"""What a score link's click costs in process: CPU per request through the WSGI app (no server,
no network), beside the same app's 404 page for a forged reference and its ``/healthz``
(the peers, measured in the same run, the same way).

A click verifies the reference, reads its survey (a snapshot), stores the click through the
group commit (a transaction: the insert, the burst check) and answers 302. Each request names
a different sent survey, from a browser, so each stores a human click.

    python benchmarks/click_budget.py [--database-url postgresql://…] [-n 2000]

gunicorn's own cost per request is not in these figures (short_link_bench.py measures the
click on the Procfile's server, beside the same peers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pg import bench_database
from short_link_bench import BROWSER
from short_link_bench import bench_config
from short_link_bench import forged_reference
from short_link_bench import seed

from csat_hook.app import create_app
from csat_hook.config import load_config
from csat_hook.services import build_services


def thread_cpu_us(go: Callable[[int], Any], first: int, last: int) -> float:
    """CPU microseconds of this thread per call of ``go(i)``, i in [first, last)."""
    start = time.thread_time()
    for i in range(first, last):
        go(i)
    return (time.thread_time() - start) / (last - first) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("-n", type=int, default=2000, help="requests per path (a quarter warm)")
    args = parser.parse_args()
    n = args.n
    with contextlib.ExitStack() as cleanup, tempfile.TemporaryDirectory() as tmp:
        url = bench_database(args.database_url, Path(tmp), "clicks", cleanup)
        refs = seed(url, n)
        config = load_config(None, env={}, overrides=bench_config(url))
        services = build_services(config)
        cleanup.callback(services.engine.dispose)
        app = create_app(services=services)
        forged = forged_reference(refs[0])

        def environ(path: str, headers: dict[str, str], i: int) -> dict[str, Any]:
            return EnvironBuilder(
                path=path,
                method="GET",
                headers=headers,
                environ_base={"REMOTE_ADDR": f"10.0.{i // 250 % 250}.{i % 250}"},
            ).get_environ()

        def calls(environs: list[dict[str, Any]], status: str) -> Callable[[int], Any]:
            def go(i: int) -> None:
                said: list[str] = []
                b"".join(app(environs[i], lambda s, h, e=None: said.append(s)))
                assert said[0].startswith(status), said

            return go

        paths = {
            "score link (verify, read, store the click, 302)": calls(
                [environ(f"/s/{refs[i]}/{1 + i % 5}", BROWSER, i) for i in range(n)], "302"
            ),
            "peer: 404 page (forged reference, no database)": calls(
                [environ(f"/s/{forged}/4", BROWSER, i) for i in range(n)], "404"
            ),
            "peer: /healthz (one database read)": calls(
                [environ("/healthz", {}, i) for i in range(n)], "200"
            ),
        }
        warm = n // 4
        figures = {}
        for name, go in paths.items():
            for i in range(warm):
                go(i)
            figures[name] = thread_cpu_us(go, warm, n)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; database {url.split(':')[0]}; {n - warm} requests each "
        "after a quarter as warm-up; CPU µs per request (calling thread)"
    )
    for name, us in figures.items():
        print(f"  {name:<52} {us:8.1f}")


if __name__ == "__main__":
    main()
