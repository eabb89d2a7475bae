"""Expansion limits, counted on the bytes actually produced, never on header claims.

One `Budget` is shared by an archive and every archive nested in it (the nested
pipeline runs synchronously in the same process, so a ContextVar carries it):
a 42.zip-style bomb spreads its expansion over many small archives, each of
which looks harmless on its own. When the budget trips inside a nested archive,
the outermost archive is blocked too.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from ...errors import CdrError, LimitExceeded

MiB = 1024 * 1024
CHUNK = 64 * 1024

_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("cdr_archive_budget", default=None)


class Budget:
    """Tree-wide counters: expanded bytes, members, and the first limit that tripped."""

    def __init__(self, limits: Any, root_size: int, floor_bytes: int) -> None:
        self.total_limit = int(limits.archive_total_mb * MiB)
        self.ratio = float(limits.archive_ratio)
        self.members_limit = int(limits.archive_members)
        self.root_size = max(root_size, 1)
        self.floor = floor_bytes
        self.written = 0
        self.members = 0
        self.tripped: CdrError | None = None

    def trip(self, exc: CdrError) -> CdrError:
        if self.tripped is None:
            self.tripped = exc
        return exc

    def reraise(self) -> None:
        """Re-raise a limit that tripped in a nested archive, so the outer one is blocked too."""
        if self.tripped is not None:
            t = self.tripped
            raise type(t)(t.en, t.ja, t.threat_id, t.location)

    def count_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.members_limit:
            raise self.trip(LimitExceeded(
                f"more than {self.members_limit} members in the archive (nested archives included)",
                f"アーカイブ内のファイル数が上限（{self.members_limit}）を超えています（入れ子を含む）",
                threat_id="archive.too_many_members", location=name))


@contextmanager
def budget_for(limits: Any, archive_size: int, floor_bytes: int) -> Iterator[Budget]:
    """The budget of the outermost archive being processed, created if this is it."""
    cur = _CURRENT.get()
    if cur is not None:
        yield cur
        return
    b = Budget(limits, archive_size, floor_bytes)
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)


def _bomb(en: str, ja: str, location: str) -> LimitExceeded:
    return LimitExceeded(en, ja, threat_id="archive.bomb", location=location)


class Meter:
    """Counts the expansion of one archive (and feeds the shared budget) as bytes appear."""

    def __init__(self, budget: Budget, archive_size: int, name: str,
                 check_time: Callable[[], None] = lambda: None) -> None:
        self.budget = budget
        self.archive_size = max(archive_size, 1)
        self.name = name
        self.written = 0
        self.check_time = check_time

    def add(self, n: int, member: str = "", member_written: int = 0, member_packed: int | None = None) -> None:
        """Account for `n` more expanded bytes; raise LimitExceeded(archive.bomb) when over a limit."""
        b = self.budget
        self.written += n
        b.written += n
        where = member or self.name
        if b.written > b.total_limit:
            raise b.trip(_bomb(
                f"expands to more than {b.total_limit // MiB} MB (archive_total_mb)",
                f"展開後のサイズが上限（{b.total_limit // MiB} MB）を超えました（ZIP爆弾の疑い）", where))
        if self.written > b.floor and self.written > b.ratio * self.archive_size:
            raise b.trip(_bomb(
                f"expands more than {b.ratio:g} times its size (archive_ratio)",
                f"展開率が上限（{b.ratio:g} 倍）を超えました（ZIP爆弾の疑い）", where))
        if b.written > b.floor and b.written > b.ratio * b.root_size:
            raise b.trip(_bomb(
                f"nested archives expand more than {b.ratio:g} times the outer archive (archive_ratio)",
                f"入れ子のアーカイブ全体の展開率が上限（{b.ratio:g} 倍）を超えました（ZIP爆弾の疑い）", where))
        if member_packed is not None and member_written > b.floor \
                and member_written > b.ratio * max(member_packed, 1):
            raise b.trip(_bomb(
                f"member {member!r} expands more than {b.ratio:g} times its compressed size",
                f"「{member}」の展開率が上限（{b.ratio:g} 倍）を超えました（ZIP爆弾の疑い）", where))
        self.check_time()

    def headroom(self) -> int:
        """How many more bytes this archive may expand before add() trips a limit (for a library
        that enforces a cap itself, such as py7zr's max_extract_size)."""
        b = self.budget
        return max(0, min(b.total_limit - b.written,
                          max(b.floor, int(b.ratio * self.archive_size)) - self.written,
                          max(b.floor, int(b.ratio * b.root_size)) - b.written))

    def copy(self, src: BinaryIO, dst: BinaryIO, member: str, packed: int | None = None,
             count: bool = True) -> int:
        """Stream src to dst in chunks, checking limits before each write."""
        done = 0
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                return done
            done += len(chunk)
            if count:
                self.add(len(chunk), member, done, packed)
            else:
                self.check_time()
            dst.write(chunk)


class CountingReader:
    """A read-only stream wrapper that meters every decompressed byte (tar headers included)."""

    def __init__(self, raw: BinaryIO, meter: Meter) -> None:
        self.raw = raw
        self.meter = meter

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        out = bytearray()
        while len(out) < n:  # read in bounded chunks so one huge request cannot outrun the meter
            piece = self.raw.read(min(CHUNK, n - len(out)))
            if not piece:
                break
            self.meter.add(len(piece))
            out += piece
        return bytes(out)

    def close(self) -> None:
        self.raw.close()
