"""API keys of the form systems that post e-applications.

A key is `tak_<prefix>_<secret>`: the prefix finds the row, the whole key is compared by
its sha256 (a 190-bit random key needs no slow hash; argon2 per request would only make the
API a CPU target). Only the hash is stored; the key is shown once, at creation.

A key belongs to a tenant (tenants.py; NULL: the default tenant) and reaches only its channels,
whatever its binding says; a disabled tenant's keys are refused like revoked ones.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from . import tenants
from .channels import Scope
from .ledger import Ledger

KEY_PREFIX = "tak"


@dataclass
class ApiClient:
    id: int
    client: str
    prefix: str
    # The channels this key may submit to and read (an unbound key reaches none).
    scope: Scope = field(default_factory=lambda: Scope(False))
    tenant: str = tenants.DEFAULT


class KeyRevoked(Exception):
    """A key that once existed but was revoked (answered with 403)."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(ledger: Ledger, client: str, actor: str = "cli", scope: Scope | None = None,
               tenant: str | None = None) -> tuple[ApiClient, str]:
    """A new key of `tenant` (None: the default tenant) for `client`, bound to `scope` (default: no
    channel; only the tenant's own). Returns the row and the key (the only time it is visible)."""
    client = client.strip()
    if not client or len(client) > 100:
        raise ValueError("client name must be 1..100 characters")
    scope = scope or Scope(False)
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    tname = tenants.tenant_name(tenant)
    with ledger.tx() as t:
        d = tenants.check_binding(t, tname, scope.names)
        cur = t.execute("INSERT INTO api_keys(client, prefix, key_hash, created_at, channels, all_channels, tenant)"
                        " VALUES (?,?,?,?,?,?,?)",
                        (client, prefix, _hash(key), time.time(), scope.to_json(), int(scope.all),
                         None if tname == tenants.DEFAULT else tname))
        kid = int(cur.lastrowid)
        t.audit("apikey.created", {"key_id": kid, "client": client, "prefix": prefix,
                                   "channels": list(scope.names), "all_channels": scope.all, "tenant": tname},
                actor=actor)
    return ApiClient(kid, client, prefix, Scope(scope.all, scope.names, d), tname), key


def set_channels(ledger: Ledger, ident: str, scope: Scope, actor: str = "cli") -> int:
    """Bind the key with this id or prefix to `scope`; returns the number of keys changed (0 or 1)."""
    with ledger.tx() as t:
        rows = t.execute("SELECT id, client, prefix, tenant FROM api_keys WHERE CAST(id AS TEXT) = ? OR prefix = ?",
                         (ident, ident)).fetchall()
        for kid, client, prefix, tenant in rows:
            tenants.check_binding(t, tenant, scope.names)
            t.execute("UPDATE api_keys SET channels = ?, all_channels = ? WHERE id = ?",
                      (scope.to_json(), int(scope.all), kid))
            t.audit("apikey.channels", {"key_id": kid, "client": client, "prefix": prefix,
                                        "channels": list(scope.names), "all_channels": scope.all}, actor=actor)
    return len(rows)


def set_tenant(ledger: Ledger, ident: str, tenant: str | None, actor: str = "cli") -> int:
    """Move the key with this id or prefix to `tenant` (None: the default tenant); its binding keeps only
    the new tenant's channels. Returns the number of keys moved (0 or 1)."""
    key = tenants.tenant_name(tenant)
    with ledger.tx() as t:
        d = tenants.check_binding(t, key, ())
        rows = t.execute("SELECT id, client, prefix, channels, all_channels FROM api_keys"
                         " WHERE CAST(id AS TEXT) = ? OR prefix = ?", (ident, ident)).fetchall()
        for r in rows:
            bound = Scope.from_row(r["all_channels"], r["channels"])
            kept = Scope(bound.all, bound.names, d)
            t.execute("UPDATE api_keys SET tenant = ?, channels = ? WHERE id = ?",
                      (None if key == tenants.DEFAULT else key, kept.to_json(), r["id"]))
            t.audit("apikey.tenant", {"key_id": r["id"], "client": r["client"], "prefix": r["prefix"], "tenant": key,
                                      "channels": list(kept.names),
                                      "dropped": sorted(set(bound.names) - set(kept.names))}, actor=actor)
    return len(rows)


def list_keys(ledger: Ledger) -> list[dict]:
    return [dict(r) for r in ledger.query(
        "SELECT id, client, prefix, created_at, revoked_at, last_used, channels, all_channels, tenant FROM api_keys"
        " ORDER BY id")]


def key_scope(ledger: Ledger, row: dict) -> Scope:
    """The channels of a key row (as `list_keys` gives it), within its tenant."""
    return Scope.from_row(row["all_channels"], row["channels"], tenants.domain(ledger, row["tenant"]))


def revoke_key(ledger: Ledger, ident: str, actor: str = "cli") -> int:
    """Revoke by numeric id or prefix. Returns the number of keys revoked."""
    with ledger.tx() as t:
        rows = t.execute("SELECT id, client, prefix FROM api_keys WHERE (CAST(id AS TEXT) = ? OR prefix = ?)"
                         " AND revoked_at IS NULL", (ident, ident)).fetchall()
        for kid, client, prefix in rows:
            t.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (time.time(), kid))
            t.audit("apikey.revoked", {"key_id": kid, "client": client, "prefix": prefix}, actor=actor)
    return len(rows)


def authenticate(ledger: Ledger, key: str) -> ApiClient | None:
    """The client for a presented key; None when unknown; KeyRevoked when revoked."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(key) > 200:
        return None
    row = ledger.one("SELECT id, client, prefix, key_hash, revoked_at, channels, all_channels, tenant FROM api_keys"
                     " WHERE prefix = ?", (parts[1],))
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    if row["revoked_at"] is not None:
        raise KeyRevoked(row["prefix"])
    d = tenants.domain(ledger, row["tenant"])
    if d.disabled:
        raise KeyRevoked(row["prefix"])  # its tenant is disabled: refused as a revoked key is
    return ApiClient(row["id"], row["client"], row["prefix"], Scope.from_row(row["all_channels"], row["channels"], d),
                     d.tenant)
