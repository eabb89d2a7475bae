"""Per-client limits of the REST intake: uploads at once, and bytes per rolling hour.

A client (API key) may send `concurrent` uploads at the same time and `bytes_per_hour` bytes in
any hour; beyond either it gets 429 with Retry-After, so that one client cannot fill the disk or
the queue in front of the others (dispatch then shares the workers round-robin, dispatcher.py).
Bytes are counted as read from the request body (a rejected or broken upload counts too) and kept
in the ledger's `api_usage` table, so a restart does not reset a client's hour. Uploads in progress
count at once: parallel uploads cannot each pass the check with the same remaining quota.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Hashable
from typing import Any

from .api_errors import ApiError

log = logging.getLogger("transfer_agent.api")

HOUR = 3600.0


class RateLimiter:
    """Token buckets per key: `burst` at once, refilled at `per_second`; 0 per second means no limit."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.burst = max(1, burst)
        self._b: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """0 when allowed (a token taken), else the seconds until one is there."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            if len(self._b) > 100_000:  # many addresses: forget the full buckets
                self._b = {k: v for k, v in self._b.items() if v[0] < self.burst - 0.5}
            tokens, last = self._b.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._b[key] = (tokens - 1.0, now)
                return 0.0
            self._b[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):g}"


class Upload:
    """One upload in progress: `add(n)` as body bytes are read; raises 429 once over the quota."""

    def __init__(self, limits: ClientLimits, key_id: int) -> None:
        self.limits, self.key_id = limits, key_id
        self.bytes = 0
        self.over: ApiError | None = None

    def add(self, n: int) -> None:
        self.bytes += n
        with self.limits._lock:
            self.limits._streaming[self.key_id] = self.limits._streaming.get(self.key_id, 0) + n
        if self.over is None and self.limits.bytes_per_hour > 0:
            used = self.limits.used(self.key_id)  # includes this upload's bytes so far
            if used > self.limits.bytes_per_hour:
                self.over = self.limits.quota_error(self.key_id, 0)


class ClientLimits:
    def __init__(self, ledger: Any, concurrent: int, bytes_per_hour: int) -> None:
        self.ledger = ledger
        self.concurrent = concurrent
        self.bytes_per_hour = bytes_per_hour
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}
        self._streaming: dict[int, int] = {}  # bytes of uploads in progress, per key
        self._recorded: dict[int, list[tuple[float, int]]] = {}  # cache of api_usage for the last hour
        self._pruned = 0.0

    # ------------------------------------------------------------------ accounting
    def _history(self, key_id: int, now: float) -> list[tuple[float, int]]:
        rows = self._recorded.get(key_id)
        if rows is None:
            rows = [(r[0], r[1]) for r in self.ledger.query(
                "SELECT ts, bytes FROM api_usage WHERE api_key_id = ? AND ts > ? ORDER BY ts", (key_id, now - HOUR))]
            self._recorded[key_id] = rows
        while rows and rows[0][0] <= now - HOUR:
            rows.pop(0)
        return rows

    def used(self, key_id: int, now: float | None = None) -> int:
        """Bytes this key sent in the last hour, uploads in progress included."""
        now = time.time() if now is None else now
        with self._lock:
            return sum(b for _, b in self._history(key_id, now)) + self._streaming.get(key_id, 0)

    def quota_error(self, key_id: int, need: int) -> ApiError:
        """429 saying when `need` more bytes fit in this key's hour again."""
        now = time.time()
        with self._lock:
            rows = list(self._history(key_id, now))
            total = sum(b for _, b in rows) + self._streaming.get(key_id, 0)
        wait = HOUR
        for ts, b in rows:  # oldest first: the hour frees them in this order
            total -= b
            if total + need <= self.bytes_per_hour:
                wait = ts + HOUR - now
                break
        mb = _mb(self.bytes_per_hour)
        return ApiError(429, "quota_exceeded", f"this API key may send {mb} MB per hour; retry later",
                        f"この API キーが1時間に送信できる量（{mb} MB）を超えました。しばらくしてから再送してください",
                        {"Retry-After": str(max(1, math.ceil(wait)))})

    def _record(self, key_id: int, n: int) -> None:
        now = time.time()
        with self.ledger.tx() as t:
            t.execute("INSERT INTO api_usage(api_key_id, ts, bytes) VALUES (?,?,?)", (key_id, now, n))
            if now - self._pruned > 600:
                t.execute("DELETE FROM api_usage WHERE ts < ?", (now - 2 * HOUR,))
                self._pruned = now
        with self._lock:
            self._history(key_id, now).append((now, n))

    # ------------------------------------------------------------------ one upload
    def admit(self, key_id: int, declared: int | None) -> Upload:
        """Admit one upload of `key_id` (`declared`: its Content-Length, if sent) or raise 429 (413 when
        it could never fit). Call `release` when it ends, whatever the outcome. Blocking (reads the
        ledger once per key): run it off the event loop."""
        if self.bytes_per_hour > 0:
            if declared is not None and declared > self.bytes_per_hour:
                mb = _mb(self.bytes_per_hour)
                raise ApiError(413, "over_quota", f"larger than this API key's hourly quota ({mb} MB)",
                               f"送信データがこの API キーの1時間あたりの上限（{mb} MB）を超えています")
            need = declared if declared is not None else 1
            if self.used(key_id) + need > self.bytes_per_hour:
                raise self.quota_error(key_id, need)
        with self._lock:
            n = self._running.get(key_id, 0)
            if self.concurrent > 0 and n >= self.concurrent:
                raise ApiError(429, "too_many_uploads",
                               f"this API key already has {n} uploads in progress (at most {self.concurrent});"
                               " retry when one has finished",
                               f"この API キーの同時送信数が上限（{self.concurrent}件）に達しています。"
                               "送信中のものが終わってから再送してください",
                               {"Retry-After": "2"})
            self._running[key_id] = n + 1
        return Upload(self, key_id)

    def release(self, up: Upload) -> None:
        """The upload ended: its bytes go into the hour's record (blocking: a ledger write)."""
        key_id = up.key_id
        try:
            if up.bytes:
                self._record(key_id, up.bytes)
        except Exception:  # noqa: BLE001 - the answer matters more; the bytes are lost to the count
            log.exception("recording API usage failed", extra={"event": "error", "key_id": key_id})
        finally:
            with self._lock:
                self._running[key_id] -= 1
                if not self._running[key_id]:
                    del self._running[key_id]
                left = self._streaming.get(key_id, 0) - up.bytes
                if left > 0:
                    self._streaming[key_id] = left
                else:
                    self._streaming.pop(key_id, None)
