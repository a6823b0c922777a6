"""Run csat-hook the Procfile way on one machine: gunicorn web processes plus separate
delivery workers, all on one database. Used by the multi-process tests and the benchmarks.

The web processes run the Procfile's own ``web:`` line (:func:`procfile_command`), so what is
tested is what a platform starts.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def procfile_command(
    name: str, env: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> list[str]:
    """The Procfile's ``name:`` line as argv: ``${VAR:-default}`` expanded from ``env`` as
    the platform's shell would, ``gunicorn`` run with this interpreter, and each flag of
    ``overrides`` given that value instead (or added)."""
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    command = next(line for line in lines if line.startswith(f"{name}:")).split(":", 1)[1]
    expanded = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], command.strip())
    argv = shlex.split(expanded)
    if argv[0] == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn", *argv[1:]]
    for flag, value in (overrides or {}).items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv[-1:-1] = [flag, value]  # before the app
    return argv


def free_port() -> int:
    """A port no socket is bound to: the kernel's choice, or one of ``$CSAT_TEST_PORTS``
    (``LOW-HIGH``, inclusive) when set, for a machine whose users share out port ranges."""
    ports = os.environ.get("CSAT_TEST_PORTS", "")
    if ports:
        low, high = (int(end) for end in ports.split("-"))
        candidates = list(range(low, high + 1))
        random.shuffle(candidates)  # two test processes seldom try the same one first
    else:
        candidates = [0]
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in CSAT_TEST_PORTS={ports}")


class LocalCluster:
    """``web:`` (gunicorn, gthread) and N ``worker:`` processes for one config file."""

    def __init__(
        self,
        config: Path,
        workdir: Path,
        *,
        web_workers: int = 2,
        web_threads: int = 8,
        database_url: str | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.web_workers = web_workers
        self.web_threads = web_threads
        self.env = {**os.environ, "CSAT_HOOK_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        if database_url:
            self.env["DATABASE_URL"] = database_url
        else:
            self.env.pop("DATABASE_URL", None)
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.url = ""

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:  # the child keeps its copy
            return subprocess.Popen(
                args,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_web(
        self,
        timeout: float = 30,
        log_level: str | None = "warning",
        extra: tuple[str, ...] = (),
        app: str | None = None,
    ) -> str:
        """Start ``web:``; ``log_level`` None: no ``--log-level`` (``logging.level`` rules);
        ``app``: gunicorn's app instead of the Procfile's (importable from the repository)."""
        port = free_port()
        command = procfile_command(
            "web",
            {"PORT": str(port), "WEB_CONCURRENCY": str(self.web_workers)},
            {"--bind": f"127.0.0.1:{port}", "--threads": str(self.web_threads)},
        )
        level = ("--log-level", log_level) if log_level is not None else ()
        if app is not None:
            self.env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(ROOT), self.env.get("PYTHONPATH")])
            )
        self.web = self._spawn([*command[:-1], *level, *extra, app or command[-1]], "web")
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self.url
            if self.web.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the web process did not start: see " + str(self.workdir / "web.log"))

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            [sys.executable, "-m", "csat_hook", "worker"], f"worker-{len(self.workers)}"
        )
        self.workers.append(worker)
        return worker

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers] if p is not None and p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)
