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


class _Counts:
    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.lock = threading.Lock()
        self.logged: dict[tuple[str, str], float] = {}

    def note(self, ip: str, event: str, name: str) -> None:
        now = time.monotonic()
        if now - self.logged.get((ip, event), -1e9) >= 60:
            self.logged[(ip, event)] = now
            log.warning("connection closed: " + ("too many from one address" if event == "http.too_many"
                                                 else "too slow"),
                        extra={"event": event, "client": ip, "listener": name})


def guarded_protocol(limits: Limits, name: str) -> type[H11Protocol]:
    """An H11Protocol class enforcing `limits` (one class, and one count table, per listener)."""
    counts = _Counts()

    class Guarded(H11Protocol):
        _ip: str | None = None
        _timer: asyncio.TimerHandle | None = None
        _deadline_kind = ""
        _body_start = 0.0
        _body_bytes = 0

        def connection_made(self, transport: Any) -> None:  # noqa: ANN401
            super().connection_made(transport)
            ip = self.client[0] if self.client else "?"
            with counts.lock:
                n = counts.open.get(ip, 0)
                if n >= limits.per_address:
                    counts.note(ip, "http.too_many", name)
                    transport.abort()
                    return
                counts.open[ip] = n + 1
            self._ip = ip
            self._arm(limits.header_timeout, "headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            if self._ip is not None:
                with counts.lock:
                    n = counts.open.get(self._ip, 1) - 1
                    if n > 0:
                        counts.open[self._ip] = n
                    else:
                        counts.open.pop(self._ip, None)
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
                    counts.note(self._ip or "?", "http.slow_client", name)
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
            counts.note(self._ip or "?", "http.slow_client", name)
            self.transport.abort()

    return Guarded
