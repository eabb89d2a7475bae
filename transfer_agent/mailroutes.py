"""Which channel a recipient address belongs to ([mail.routes]), and which addresses we take at all.

A route maps a whole address (`kokuho@city.example.lg.jp`) or a domain (`city.example.lg.jp`) to a
channel (compared like every channel name: channels.channel_name); the address wins over its domain. Addresses are compared in lower case, domains in their
ASCII (IDNA) form. An address we would not use as a Maildir folder name (quoted local parts, `/`,
leading dots, control characters) is refused at RCPT, before any byte of the message is taken.
"""
from __future__ import annotations

import re

from .channels import channel_name

# dot-atom local part (RFC 5321) without "/" (a folder name) and without a leading, trailing or double dot
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_ADDRESS = 254


class RouteError(ValueError):
    """A route or address that cannot be used."""


def _domain(text: str) -> str:
    d = text.strip().rstrip(".").lower()
    if not d.isascii():
        try:
            d = d.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RouteError(f"{text!r}: not a usable domain ({exc})") from None
    labels = d.split(".")
    if len(d) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        raise RouteError(f"{text!r}: not a domain name")
    return d


def canonical(address: str) -> str:
    """`Kokuho@City.Example.LG.JP` -> `kokuho@city.example.lg.jp`; RouteError when unusable."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or len(address) > MAX_ADDRESS or not local.isascii() or not _LOCAL.fullmatch(local) \
            or len(local) > 64:
        raise RouteError(f"{address!r}: not an address we deliver to (plain local part, no quotes or '/')")
    return f"{local.lower()}@{_domain(domain)}"


class Routes:
    """`channel_for(address)` -> (channel, canonical address) or None (unknown recipient: 550)."""

    def __init__(self, routes: dict[str, str], default_channel: str = "default") -> None:
        self.addresses: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        for key, channel in routes.items():
            if not channel:
                raise RouteError(f"{key!r}: empty channel name")
            ch = default_channel if channel == "default" else channel_name(channel)
            if "@" in key:
                self.addresses[canonical(key)] = ch
            else:
                self.domains[_domain(key)] = ch

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)

    def channel_for(self, address: str) -> tuple[str, str] | None:
        try:
            addr = canonical(address)
        except RouteError:
            return None
        ch = self.addresses.get(addr)
        if ch is None:
            ch = self.domains.get(addr.rpartition("@")[2])
        return (ch, addr) if ch is not None else None
