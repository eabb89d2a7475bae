"""Channel identity: one spelling per department, whatever the folder or request said.

A channel name is compared and stored after NFKC and case folding (then the naming rule of
`files.clean_name`), so `dropbox/Kokuho/`, `dropbox/ＫＯＫＵＨＯ/` and `kokuho` are one channel:
one policy, one inbox folder (`inbox/kokuho/`), one binding. Intake normalises once; the config's
`[channels.NAME]`, account bindings and API requests go through the same function.
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from .files import clean_name


def _fold(name: str) -> str:
    # NFKC, case fold, NFKC again: folding can produce characters that NFKC composes (Unicode's
    # NFKC_Casefold closure, near enough for names).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def channel_name(raw: str) -> str:
    """The channel's identity: NFKC, case folded, then the inbox naming rule (a full-width solidus
    folds to '/', which the rule replaces). Idempotent: channel_name(channel_name(x)) == channel_name(x)."""
    name = clean_name(_fold(raw), fallback="channel")
    again = clean_name(_fold(name), fallback="channel")
    return again


def parse_list(text: str) -> list[str]:
    """`国保課,税務課` (commas, 、 or ， between names; spaces around them ignored) as channel names."""
    parts = text.replace("、", ",").replace("，", ",").split(",")
    out: list[str] = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        name = channel_name(p)
        if name not in out:
            out.append(name)
    return out


class Scope:
    """What an account may reach: every channel, or only those listed (possibly none), and never
    anything outside its tenant's domain (tenants.Domain; None: no tenant limit, a prefecture admin)."""

    __slots__ = ("all", "names", "domain")

    def __init__(self, all_channels: bool, names: Iterable[str] = (), domain: Any = None) -> None:
        self.all = bool(all_channels)
        self.domain = domain
        keys = {channel_name(n) for n in names}
        if domain is not None:
            keys = {k for k in keys if domain.contains(k)}  # a binding never reaches past its tenant
        self.names = tuple(sorted(keys))

    @classmethod
    def from_row(cls, all_channels: int | None, channels: str | None, domain: Any = None) -> Scope:
        """From the columns `all_channels` and `channels` (a JSON list) of an account row."""
        try:
            names = json.loads(channels) if channels else []
        except ValueError:
            names = []  # unreadable binding: nothing (fail closed)
        if not isinstance(names, list):
            names = []
        return cls(bool(all_channels), [n for n in names if isinstance(n, str)], domain)

    def finite(self) -> tuple[str, ...] | None:
        """The channels reachable when they are a closed list; None when open-ended (all channels, or
        all of the default tenant's: every channel but the other tenants')."""
        if not self.all:
            return self.names
        if self.domain is not None and self.domain.own is not None:
            return self.domain.own
        return None

    def allows(self, channel: str | None) -> bool:
        if channel is None:
            return self.all and (self.domain is None or self.domain.own is None)
        if self.domain is not None and not self.domain.contains(channel):
            return False
        if self.all:
            return True
        return channel_name(channel) in self.names

    @property
    def none(self) -> bool:
        return self.finite() == ()

    @property
    def only(self) -> str | None:
        """The one channel reachable, when there is exactly one (where a request naming none goes)."""
        f = self.finite()
        return f[0] if f is not None and len(f) == 1 else None

    def sql(self, column: str) -> tuple[str, tuple[str, ...]]:
        """A WHERE condition limiting `column` to this scope (chkey() is registered by the ledger, so
        rows written before names were normalised compare the same way)."""
        f = self.finite()
        if f is None:
            others = self.domain.others if self.domain is not None else ()
            if not others:
                return "1 = 1", ()  # portable: PostgreSQL wants a boolean, not 1
            return f"chkey({column}) NOT IN ({','.join('?' * len(others))})", tuple(others)
        if not f:
            return "1 = 0", ()
        return f"chkey({column}) IN ({','.join('?' * len(f))})", f

    def to_json(self) -> str:
        return json.dumps(list(self.names), ensure_ascii=False)

    def _tenant(self) -> str:
        d = self.domain
        return f" ({d.tenant})" if d is not None and not d.unrestricted else ""

    def describe(self) -> str:
        if self.all:
            return "all channels" + self._tenant()
        return ",".join(self.names) if self.names else "(none)"

    def describe_ja(self) -> str:
        if self.all:
            d = self.domain
            return "すべてのチャネル" + (f"（{d.tenant}）" if d is not None and not d.unrestricted else "")
        return "、".join(self.names) if self.names else "（未割り当て）"

    def __repr__(self) -> str:
        return f"Scope({self.describe()})"
