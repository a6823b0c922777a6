"""What the local fakes share: an HTTP server run in a daemon thread or in the foreground."""

from __future__ import annotations

import contextlib
import threading
from http.server import ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """Runs ``self.server``: :meth:`start` in a daemon thread (tests), :meth:`serve_forever`
    in the foreground (the ``csat-hook dev`` commands), :meth:`stop` to close it."""

    server: ThreadingHTTPServer
    # How soon stop() is noticed: tests start and stop one or more per test (0.5 s, the
    # standard library's default, was a third of the suite's time in teardowns).
    poll_interval = 0.05
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(self.poll_interval,), daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
