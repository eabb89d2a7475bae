"""A worker node in a network namespace of its own, reaching the broker and the database only through
relays the test controls, so the test can cut it off from the network and reconnect it.

    unshare -n -- python tests/netns_relay.py 5672=/tmp/x/amqp.sock 5432=/tmp/x/pg.sock -- CMD...

runs inside the new namespace (loopback only): it brings `lo` up, listens on 127.0.0.1:PORT for each
pair and relays every connection to the Unix socket (a file: reachable from any network namespace),
then runs CMD and exits with its status (SIGTERM is passed on). On the host side, `Switch` (used by
the test in its own process) listens on that Unix socket and relays to the real 127.0.0.1:PORT.

`Switch.cut()` is a network partition as the two ends see it: the server's side of every connection
is closed (RabbitMQ sees the consumer gone and gives its unacked message to another node; PostgreSQL
ends the session), while the worker's side stays open and silent, and new connections from the
worker go nowhere. `Switch.restore()` heals it: the worker's dead connections are closed (as a peer's
reset would after the partition) and new ones are relayed again.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path


def _pump(src: socket.socket, dst: socket.socket, live: threading.Event | None = None,
          keep: socket.socket | None = None) -> None:
    """Copy src -> dst until either ends; once cut (`live` cleared) `keep` (the worker's side) is left
    open and unread: silence, as in a partition, not an end of connection."""
    try:
        while True:
            data = src.recv(65536)
            if not data or (live is not None and not live.is_set()):
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            if s is keep and live is not None and not live.is_set():
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Switch:
    """Host side: Unix socket `path` -> 127.0.0.1:`port`, with a cut-off switch."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = Path(path), port
        self.path.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(64)
        self.live = threading.Event()
        self.live.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            if not self.live.is_set():
                with self._lock:
                    self._pairs.append((down, None))  # held open, silent: the partition
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self._lock:
                self._pairs.append((down, up))
            threading.Thread(target=_pump, args=(down, up, self.live, down), daemon=True).start()
            threading.Thread(target=_pump, args=(up, down, self.live, down), daemon=True).start()

    def cut(self) -> None:
        self.live.clear()
        with self._lock:
            for _down, up in self._pairs:
                if up is not None:
                    try:
                        up.shutdown(socket.SHUT_RDWR)  # the server sees the connection gone
                    except OSError:
                        pass
                    up.close()

    def restore(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for down, _up in pairs:
            try:
                down.shutdown(socket.SHUT_RDWR)  # the worker learns its connections are dead
            except OSError:
                pass
            down.close()
        self.live.set()

    def close(self) -> None:
        self.server.close()
        self.restore()
        self.path.unlink(missing_ok=True)


def _listen(port: int, path: str) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    while True:
        down, _ = srv.accept()
        try:
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(path)
        except OSError:
            down.close()
            continue
        threading.Thread(target=_pump, args=(down, up), daemon=True).start()
        threading.Thread(target=_pump, args=(up, down), daemon=True).start()


def main(argv: list[str]) -> int:
    split = argv.index("--")
    pairs, cmd = argv[:split], argv[split + 1:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for pair in pairs:
        port, path = pair.split("=", 1)
        threading.Thread(target=_listen, args=(int(port), path), daemon=True).start()
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
