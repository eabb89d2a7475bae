"""The local link between the core (intake, delivery, ledger, console) and the internet-side process.

A Unix socket `state/core.sock` (in the 0700 state folder: only the service user reaches it). The
internet-side process stages uploads under work/, records them in the ledger (SQLite WAL: two
processes) and then sends `wake` so the core hands them over at once; it asks `health` and `metrics`
to answer /healthz and /metrics. One fixed word per connection, one answer: the core parses nothing
else from that side.
"""
from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("transfer_agent.corelink")

SOCKET_NAME = "core.sock"
_MAX_ANSWER = 16 << 20


class _Handler(socketserver.StreamRequestHandler):
    timeout = 5

    def handle(self) -> None:
        try:
            word = self.rfile.readline(32).strip().decode("ascii", "replace")
        except OSError:
            return
        fn = self.server.commands.get(word)  # type: ignore[attr-defined]
        if fn is None:
            return
        try:
            answer = fn()
        except Exception:  # noqa: BLE001 - the asking side treats no answer as "core unavailable"
            log.exception("corelink command failed", extra={"event": "error", "command": word})
            return
        self.wfile.write(answer)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class CoreLink:
    """The core's end: `commands` maps a word to a function returning the answer bytes."""

    def __init__(self, path: Path, commands: dict[str, Callable[[], bytes]]) -> None:
        self.path = Path(path)
        try:
            os.unlink(self.path)  # left by a killed core: the data-dir lock says no other core runs
        except FileNotFoundError:
            pass
        # No umask games: the umask is per process, and a worker's stage file created by another
        # thread meanwhile would become unreadable to the worker. state/ is 0700 already.
        self.server = _Server(str(self.path), _Handler)
        os.chmod(self.path, 0o600)
        self.server.commands = commands  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, name="corelink", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def ask(path: Path, word: str, timeout: float = 5.0) -> bytes:
    """The internet side's end: send one word, read the whole answer. OSError when the core is away."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(word.encode("ascii") + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks, size = [], 0
        while chunk := s.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_ANSWER:
                raise OSError("answer too large")
        return b"".join(chunks)
