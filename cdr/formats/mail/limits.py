"""Limits of one mail and of every mail nested in it, counted while decoding.

Nested messages run through the whole pipeline synchronously in the same process (like
archive members), so one `MailBudget` in a ContextVar covers the tree: part count,
nesting depth and the bytes produced by decoding, against the size of the outermost mail
(as Amavis limits a mail's expansion). Header size is checked per entity by the walker.
"""
from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import LimitExceeded

MiB = 1024 * 1024
_CURRENT: contextvars.ContextVar[MailBudget | None] = contextvars.ContextVar("cdr_mail_budget", default=None)


@dataclass
class MailLimits:
    depth: int
    parts: int
    header_bytes: int
    ratio: float
    floor: int

    @classmethod
    def of(cls, limits: Any, floor_mb: float) -> MailLimits:
        return cls(int(getattr(limits, "mail_depth", 10)), int(getattr(limits, "mail_parts", 500)),
                   int(float(getattr(limits, "mail_header_kb", 256)) * 1024),
                   float(getattr(limits, "mail_ratio", 20.0)), int(floor_mb * MiB))


class MailBudget:
    def __init__(self, limits: MailLimits, root_size: int) -> None:
        self.limits = limits
        self.root_size = max(1, root_size)
        self.parts = 0
        self.level = 0  # how many mails deep we are (the outermost is 1)
        # (size, bytes decoded) of each mail being read, innermost last: the ratio is per mail, since a
        # nested mail's bytes are inside its parent's (or come out of an archive with its own limits).
        self.sizes: list[list[int]] = [[max(1, root_size), 0]]
        self.tripped: LimitExceeded | None = None

    @property
    def decoded(self) -> int:
        return self.sizes[-1][1]

    def _trip(self, exc: LimitExceeded) -> LimitExceeded:
        if self.tripped is None:
            self.tripped = exc
        return exc

    def count_part(self, where: str) -> None:
        self.parts += 1
        if self.parts > self.limits.parts:
            raise self._trip(LimitExceeded(
                f"more than {self.limits.parts} MIME parts (nested mails included, mail_parts)",
                f"メールの部品数が上限（{self.limits.parts}）を超えています（転送メールを含む）",
                threat_id="mail.too_many_parts", location=where))

    def check_depth(self, depth: int, where: str) -> None:
        """`depth`: multipart levels inside the current mail; mails nested count as levels too."""
        if depth + self.level > self.limits.depth:
            raise self._trip(LimitExceeded(
                f"MIME structure nested deeper than {self.limits.depth} levels (mail_depth)",
                f"メールの入れ子が上限（{self.limits.depth} 階層）を超えています",
                threat_id="mail.too_deep", location=where))

    def add_decoded(self, n: int, where: str) -> None:
        cur = self.sizes[-1]
        cur[1] += n
        lim = self.limits
        if cur[1] > lim.floor and cur[1] > lim.ratio * cur[0]:
            raise self._trip(LimitExceeded(
                f"decoding produced more than {lim.ratio:g} times the mail's size (mail_ratio)",
                f"メールの展開後のサイズが元の {lim.ratio:g} 倍を超えました",
                threat_id="mail.bomb", location=where))

    def reraise(self) -> None:
        """A limit that tripped in a nested mail blocks the outer one too (a bomb is hostile as a whole)."""
        if self.tripped is not None:
            t = self.tripped
            raise LimitExceeded(t.en, t.ja, t.threat_id, t.location)


def own_budget(limits: MailLimits, size: int) -> MailBudget:
    """A budget for reading one file on its own (verify, inspect): it must not count against the tree
    whose rebuild it checks (a nested mail's parts would be counted twice)."""
    b = MailBudget(limits, size)
    b.level = 1
    return b


@contextmanager
def budget_for(limits: MailLimits, size: int) -> Iterator[MailBudget]:
    """The budget of the outermost mail, created if this is it; the nesting level is raised while inside."""
    cur = _CURRENT.get()
    token = None
    if cur is None:
        cur = MailBudget(limits, size)
        token = _CURRENT.set(cur)
    else:
        cur.sizes.append([max(1, size), 0])
    cur.level += 1
    try:
        if cur.level > cur.limits.depth:
            raise cur._trip(LimitExceeded(
                f"mails nested deeper than {cur.limits.depth} levels (mail_depth)",
                f"転送メールの入れ子が上限（{cur.limits.depth} 階層）を超えています",
                threat_id="mail.too_deep"))
        yield cur
    finally:
        cur.level -= 1
        if token is None:
            cur.sizes.pop()
        else:
            _CURRENT.reset(token)
