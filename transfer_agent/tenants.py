"""Tenants of the security cloud: a municipality (自治体) owning channels.

One prefecture's cloud serves many towns. A tenant owns channels (`tenant_channels`: a channel
belongs to at most one tenant), and its console accounts and API keys belong to it
(`console_users.tenant`, `api_keys.tenant`). An account or key reaches only channels of its own
tenant, whatever its binding says (channels.Scope with a `Domain`), so a clerk of town A never
sees, searches, downloads or requests anything of town B, and a job id, receipt or upload request
of B answers as a missing one.

The default tenant (`default`) is implicit: it owns every channel no other tenant owns, and every
account or key without a tenant (NULL, as all rows written before tenants existed) is its. A
single-box appliance has only it, so its accounts reach what they reached before.

A prefecture administrator (role `prefecture`) belongs to no tenant and reaches every channel; it
manages tenants (`transfer-agent tenant create|list|disable|enable|channels`). Disabling a tenant
ends its sessions and logins, refuses its API keys and closes its upload links; files already in
its channels are still processed and delivered (nothing accepted is dropped).
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from . import schema
from .channels import channel_name

DEFAULT = "default"

schema.register("tenants", """
CREATE TABLE IF NOT EXISTS tenants (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,      -- NFKC, case folded (tenant_name)
    display_name TEXT NOT NULL DEFAULT '',  -- e.g. 那覇市
    created_at   REAL NOT NULL,
    disabled_at  REAL
);
-- Which tenant owns a channel (channel names in normal form, channels.channel_name). A channel not
-- listed is the default tenant's.
CREATE TABLE IF NOT EXISTS tenant_channels (
    channel TEXT PRIMARY KEY,
    tenant  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tenant_channels_tenant ON tenant_channels(tenant);
""")


class TenantError(ValueError):
    """A refused tenant operation (the message names what to do)."""


@dataclass(frozen=True)
class Domain:
    """The channels a tenant may ever reach: `own` (a closed list), or, for the default tenant
    (own None), every channel except `others` (those of the other tenants)."""
    tenant: str
    own: tuple[str, ...] | None
    others: tuple[str, ...] = ()
    disabled: bool = False

    def contains(self, channel: str) -> bool:
        key = channel_name(channel)
        if self.own is not None:
            return key in self.own
        return key not in self.others

    @property
    def unrestricted(self) -> bool:
        """The default tenant of an appliance with no other tenant: everything, as before tenants."""
        return self.own is None and not self.others


def tenant_name(raw: str | None) -> str:
    """A tenant's identity: NFKC, case folded, trimmed; None and '' are the default tenant."""
    name = unicodedata.normalize("NFKC", (raw or "").strip()).casefold()
    return name or DEFAULT


def _valid(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-" for c in name)


def _q(ledger: Any, sql: str, params: tuple = ()) -> list[Any]:
    """Rows from a Ledger (query) or an open Tx (execute)."""
    if hasattr(ledger, "query"):
        return list(ledger.query(sql, params))
    return list(ledger.execute(sql, params).fetchall())


def domain(ledger: Any, tenant: str | None) -> Domain:
    """The domain of `tenant` (None: the default tenant). An unknown tenant reaches nothing and counts as
    disabled (fail closed: a row naming a tenant that was never created)."""
    name = tenant_name(tenant)
    owned = _q(ledger, "SELECT channel, tenant FROM tenant_channels")
    if name == DEFAULT:
        return Domain(DEFAULT, None, tuple(sorted(r[0] for r in owned if r[1] != DEFAULT)))
    row = _q(ledger, "SELECT disabled_at FROM tenants WHERE name = ?", (name,))
    if not row:
        return Domain(name, (), (), True)
    return Domain(name, tuple(sorted(r[0] for r in owned if r[1] == name)), (), row[0][0] is not None)


def owner(ledger: Any, channel: str) -> str:
    """The tenant owning `channel` (the default tenant when no other does)."""
    rows = _q(ledger, "SELECT tenant FROM tenant_channels WHERE channel = ?", (channel_name(channel),))
    return rows[0][0] if rows else DEFAULT


def owners(ledger: Any) -> dict[str, str]:
    """channel -> tenant for every channel a non-default tenant owns."""
    return {r[0]: r[1] for r in _q(ledger, "SELECT channel, tenant FROM tenant_channels")}


def exists(ledger: Any, tenant: str | None) -> bool:
    name = tenant_name(tenant)
    return name == DEFAULT or bool(_q(ledger, "SELECT 1 FROM tenants WHERE name = ?", (name,)))


def create(ledger: Any, name: str, channels: list[str], display_name: str = "", actor: str = "cli") -> str:
    """A new tenant owning `channels` (which no other tenant may own). Returns its name."""
    key = tenant_name(name)
    if key == DEFAULT:
        raise TenantError("the default tenant exists implicitly; choose another name")
    if not _valid(key):
        raise TenantError("tenant name: 1..64 letters, digits or ._-")
    names = sorted({channel_name(c) for c in channels})
    with ledger.tx() as t:
        if t.execute("SELECT 1 FROM tenants WHERE name = ?", (key,)).fetchone():
            raise TenantError(f"tenant {key!r} exists")
        _claim(t, key, names)
        t.execute("INSERT INTO tenants(name, display_name, created_at) VALUES (?,?,?)",
                  (key, display_name[:100], time.time()))
        t.audit("tenant.created", {"tenant": key, "display_name": display_name[:100], "channels": names}, actor=actor)
    return key


def _claim(t: Any, key: str, names: list[str]) -> None:
    taken = {r[0]: r[1] for r in t.execute("SELECT channel, tenant FROM tenant_channels").fetchall()}
    clash = sorted(f"{c} ({taken[c]})" for c in names if c in taken and taken[c] != key)
    if clash:
        raise TenantError("channels owned by another tenant: " + ", ".join(clash))
    for c in names:
        t.execute("INSERT OR IGNORE INTO tenant_channels(channel, tenant) VALUES (?,?)", (c, key))


def set_channels(ledger: Any, name: str, channels: list[str], actor: str = "cli") -> list[str]:
    """The tenant now owns exactly `channels` (those it gives up return to the default tenant)."""
    key = tenant_name(name)
    names = sorted({channel_name(c) for c in channels})
    with ledger.tx() as t:
        if key == DEFAULT or not t.execute("SELECT 1 FROM tenants WHERE name = ?", (key,)).fetchone():
            raise TenantError(f"no tenant {key!r}")
        t.execute("DELETE FROM tenant_channels WHERE tenant = ?", (key,))
        _claim(t, key, names)
        t.audit("tenant.channels", {"tenant": key, "channels": names}, actor=actor)
    return names


def set_disabled(ledger: Any, name: str, disabled: bool, actor: str = "cli") -> None:
    """Disable (or enable) a tenant: its sessions end now, its logins, keys and upload links are refused."""
    key = tenant_name(name)
    if key == DEFAULT:
        raise TenantError("the default tenant cannot be disabled (disable its accounts and keys instead)")
    with ledger.tx() as t:
        cur = t.execute("UPDATE tenants SET disabled_at = ? WHERE name = ?", (time.time() if disabled else None, key))
        if cur.rowcount != 1:
            raise TenantError(f"no tenant {key!r}")
        if disabled:
            t.execute("DELETE FROM console_sessions WHERE user_id IN (SELECT id FROM console_users WHERE tenant = ?)",
                      (key,))
        t.audit("tenant.disabled" if disabled else "tenant.enabled", {"tenant": key}, actor=actor)


def list_tenants(ledger: Any) -> list[dict[str, Any]]:
    """Every tenant, the default first, with its channels, accounts and keys."""
    owned = owners(ledger)
    users: dict[str, int] = {}
    for r in _q(ledger, "SELECT tenant, role FROM console_users WHERE disabled = 0"):
        if r[1] != "prefecture":
            users[tenant_name(r[0])] = users.get(tenant_name(r[0]), 0) + 1
    keys: dict[str, int] = {}
    for r in _q(ledger, "SELECT tenant FROM api_keys WHERE revoked_at IS NULL"):
        keys[tenant_name(r[0])] = keys.get(tenant_name(r[0]), 0) + 1
    out = [{"name": DEFAULT, "display_name": "", "created_at": None, "disabled_at": None,
            "channels": None, "users": users.get(DEFAULT, 0), "api_keys": keys.get(DEFAULT, 0)}]
    for r in _q(ledger, "SELECT name, display_name, created_at, disabled_at FROM tenants ORDER BY name"):
        out.append({"name": r[0], "display_name": r[1], "created_at": r[2], "disabled_at": r[3],
                    "channels": sorted(c for c, t in owned.items() if t == r[0]),
                    "users": users.get(r[0], 0), "api_keys": keys.get(r[0], 0)})
    return out


def check_binding(ledger: Any, tenant: str | None, names: tuple[str, ...] | list[str]) -> Domain:
    """The tenant's domain, after checking that it exists and that every bound channel is its own."""
    if not exists(ledger, tenant):
        raise TenantError(f"no tenant {tenant_name(tenant)!r} (create it with `transfer-agent tenant create`)")
    d = domain(ledger, tenant)
    foreign = [n for n in names if not d.contains(n)]
    if foreign:
        raise TenantError(f"channels not of tenant {d.tenant!r}: {', '.join(foreign)}")
    return d
