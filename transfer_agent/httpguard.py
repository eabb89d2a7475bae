"""Slow clients cannot hold a listener: uvicorn's h11 protocol with deadlines and a per-address cap.

- Headers: the whole request head must arrive within `header_timeout` of the connection (or of the
  previous response on a kept-alive one), however slowly it trickles in (slowloris).
- Body: no `body_timeout` seconds without a byte while the application waits for the body, and
  after `body_timeout` seconds at least `body_min_rate` bytes a second on average (a trickle of a
  byte now and then would otherwise hold the connection for ever).
- At most `per_address` open connections from one address; more are closed at once.
A closed connection is logged (event http.slow_client / http.too_many) once per address and minute.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("transfer_agent.http")


@dataclass
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    per_address: int = 32
    body_min_rate: float = 1024.0


class AddressCounts:
    """Open connections per client address for one listener (HTTP or SMTP), and its rate-limited log."""

    def __init__(self, listener: str, protocol: str = "http") -> None:
        self.listener, self.protocol = listener, protocol
        self.open: dict[str, int] = {}
        self.lock = threading.Lock()
        self.logged: dict[tuple[str, str], float] = {}

    def acquire(self, ip: str, per_address: int) -> bool:
        """Count one more connection from `ip`; False (nothing counted, logged) when it has its cap."""
        with self.lock:
            n = self.open.get(ip, 0)
            if n >= per_address:
                refused = True
            else:
                self.open[ip] = n + 1
                refused = False
        if refused:
            self.note(ip, "too_many")
        return not refused

    def release(self, ip: str) -> None:
        with self.lock:
            n = self.open.get(ip, 1) - 1
            if n > 0:
                self.open[ip] = n
            else:
                self.open.pop(ip, None)

    def note(self, ip: str, what: str) -> None:
        """Log `too_many` or `slow_client` (event `<protocol>.<what>`), once a minute per address."""
        event = f"{self.protocol}.{what}"
        now = time.monotonic()
        if now - self.logged.get((ip, event), -1e9) >= 60:
            self.logged[(ip, event)] = now
            log.warning("connection closed: " + ("too many from one address" if what == "too_many" else "too slow"),
                        extra={"event": event, "client": ip, "listener": self.listener})


def guarded_protocol(limits: Limits, name: str) -> type[H11Protocol]:
    """An H11Protocol class enforcing `limits` (one class, and one count table, per listener)."""
    counts = AddressCounts(name)

    class Guarded(H11Protocol):
        _ip: str | None = None
        _timer: asyncio.TimerHandle | None = None
        _deadline_kind = ""
        _body_start = 0.0
        _body_bytes = 0

        def connection_made(self, transport: Any) -> None:  # noqa: ANN401
            super().connection_made(transport)
            ip = self.client[0] if self.client else "?"
            if not counts.acquire(ip, limits.per_address):
                transport.abort()
                return
            self._ip = ip
            self._arm(limits.header_timeout, "headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            if self._ip is not None:
                counts.release(self._ip)
                self._ip = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            body = self.conn.their_state is h11.SEND_BODY
            super().data_received(data)
            if body or self.conn.their_state is h11.SEND_BODY:
                now = time.monotonic()
                if not self._body_start:
                    self._body_start = now
                self._body_bytes += len(data)
                took = now - self._body_start
                if took > limits.body_timeout and self._body_bytes / took < limits.body_min_rate \
                        and self.transport is not None and not self.transport.is_closing():
                    counts.note(self._ip or "?", "slow_client")
                    self.transport.abort()
                    return
            if self.conn.their_state is not h11.SEND_BODY:
                self._body_start, self._body_bytes = 0.0, 0
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Arm the deadline that fits where the request is now."""
            if self.transport is None or self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                self._arm(limits.body_timeout, "body")  # idle time: reset by every chunk
            elif state is h11.IDLE:
                if self._deadline_kind != "headers":
                    self._arm(limits.header_timeout, "headers")  # total time for the next head
            else:
                self._cancel()

        def _arm(self, seconds: float, kind: str) -> None:
            self._cancel()
            self._deadline_kind = kind
            self._timer = self.loop.call_later(seconds, self._expired)

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._deadline_kind = ""

        def _expired(self) -> None:
            self._timer = None
            if self.transport is None or self.transport.is_closing():
                return
            if self._deadline_kind == "body" and self.flow.read_paused:
                self._arm(limits.body_timeout, "body")  # we are the slow side (the app is busy): wait
                return
            if self._deadline_kind == "headers" and self.conn.their_state is not h11.IDLE:
                return
            counts.note(self._ip or "?", "slow_client")
            self.transport.abort()

    return Guarded
