"""TCP proxies on loopback. :class:`TcpProxy` can be cut and restored: a database that goes
away and comes back, as the service sees it (connections dropped, then refused, then accepted
again). :class:`VanishingProxy` loses its connections without a word: a database host gone
silent (powered off, partitioned away), which only TCP keepalives can notice.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Drop every connection and stop listening (new ones are refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the socket would go on listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


TCP_REPAIR = 19  # linux/tcp.h: closing a socket in repair mode sends neither FIN nor RST


def can_vanish() -> bool:
    """Whether :class:`VanishingProxy` can work here: TCP_REPAIR needs CAP_NET_ADMIN (Linux)."""
    with socket.socket() as sock:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        except OSError:
            return False
    return True


class _Link:
    """One forwarded connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.vanishing = threading.Event()
        self.at_once = False


class VanishingProxy:
    """Forwards connections to ``target`` (PostgreSQL) until :meth:`vanish`: then the
    connections open at that moment disappear without a FIN or an RST, as behind a server
    host that lost power, a network partition or a NAT that forgot the flow. The client
    learns of it only by sending something: a probe (a keepalive) or bytes that are never
    acknowledged (tcp_user_timeout). Connections made later are forwarded (the server back,
    or its replacement); ``accepted`` counts them all."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.vanished = threading.Event()  # set once a connection disappeared
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def vanish(self, *, at_once: bool = False) -> None:
        """The connections open now disappear: once the client's next bytes were taken (the
        kernel acknowledged them) and never forwarded, or with ``at_once`` straight away (a
        client that only waits to read, as a LISTEN does)."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.at_once = at_once
            link.vanishing.set()

    def close(self) -> None:
        """Stop accepting (the connections forwarded go on until they end)."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            link = _Link(client)
            with self._lock:
                self.accepted += 1
                self._links.append(link)
            threading.Thread(target=self._forward, args=(link,), daemon=True).start()

    def _forward(self, link: _Link) -> None:
        client = link.client
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        try:
            # Only this thread reads the client's socket, so that its close below really
            # destroys it (a close while another thread waits in recv() would not).
            while True:
                if link.vanishing.is_set() and link.at_once:
                    self._disappear(client)
                    return
                ready, _, _ = select.select([client], [], [], 0.05)
                if not ready:
                    continue
                data = client.recv(65536)
                if not data:
                    return
                if link.vanishing.is_set():
                    # Once the kernel has acknowledged them (a delayed ACK): the client
                    # then has nothing to send again, and only a probe can learn of it.
                    time.sleep(0.5)
                    self._disappear(client)
                    return
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)  # wakes the pipe; the server ends
            upstream.close()
            client.close()

    def _disappear(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        client.close()
        self.vanished.set()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)


class StallingProxy:
    """Forwards connections to ``target`` until :meth:`stall`: then nothing more goes either
    way, while every connection stays open. The kernels go on acknowledging what is sent and
    answering keepalives, so the client learns of it by nothing (no error, no timeout): only
    an answer that never comes. A server that hangs, or a proxy in between that does
    (pgbouncer, a NAT) without dropping the flow. :meth:`resume` forwards again, what was held
    included."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._flowing = True
        self._resumed = threading.Condition()
        self._sockets: list[socket.socket] = []
        self._hung: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        """The connections open now forward nothing more, ever (they stay open until
        :meth:`drop` or :meth:`close`); connections made later are forwarded."""
        with self._resumed:
            self._hung.update(self._sockets)

    def stall(self) -> None:
        """From now on nothing is forwarded (once this returns, not one more byte)."""
        with self._resumed:  # a pipe forwards a chunk only while holding it
            self._flowing = False

    def resume(self) -> None:
        """Forward again, starting with what was held."""
        with self._resumed:
            self._flowing = True
            self._resumed.notify_all()

    def drop(self) -> None:
        """Drop the connections open now (their clients see it at once) and forward again:
        the server gone and back, or replaced."""
        with self._resumed:
            sockets, self._sockets = self._sockets, []
            self._hung.clear()
            self._flowing = True
            self._resumed.notify_all()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        """Stop accepting and drop every connection (its clients see it at once)."""
        with self._resumed:
            self._closed = True
            sockets, self._sockets = self._sockets, []
            self._resumed.notify_all()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._resumed:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready:
                    if self._closed:
                        return
                    continue
                with self._resumed:
                    # Stalled: the bytes stay unread (the kernel has acknowledged them).
                    while (not self._flowing or source in self._hung) and not self._closed:
                        self._resumed.wait()
                    if self._closed:
                        return
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket closed by drop()
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
