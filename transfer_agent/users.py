"""Local console accounts (argon2id), channel bindings, login lockout and sessions.

Session cookies carry a random token; only its sha256 is stored, so a copy of the database
does not let anyone log in. Each session has its own CSRF token for the console's forms.

Channels: a clerk or approver sees only the channels it is bound to (`channels`), or all of
them when an admin said so (`all_channels`); an account bound to nothing sees nothing. Admins
reach every channel of their tenant (they set the bindings).

Tenants (tenants.py): every account but a prefecture administrator belongs to one municipality
(`tenant`, NULL for the default tenant) and never reaches a channel of another, whatever its
binding. A prefecture administrator (role `prefecture`) reaches every tenant's channels and
manages tenants. A disabled tenant's sessions end and its accounts cannot log in.

Lockout is per account name *and* source address (table login_failures): MAX_FAILURES wrong
passwords from one address lock that name for that address only, for LOCK_SECONDS, doubling
with each further lock up to MAX_LOCK_SECONDS. So a guesser cannot lock an approver out from
the approver's own desk, and names that do not exist lock exactly like those that do (the
answers never tell which accounts exist; a disabled account says so only after the right
password).
"""
from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import tenants
from .channels import Scope
from .ledger import Ledger

ROLES = ("clerk", "approver", "admin", "prefecture")
ROLE_JA = {"clerk": "担当者", "approver": "承認者", "admin": "管理者", "prefecture": "県管理者"}
MAX_FAILURES = 5
LOCK_SECONDS = 5 * 60
MAX_LOCK_SECONDS = 4 * 3600
FORGET_SECONDS = 24 * 3600  # a name and address with no failure this long starts again at LOCK_SECONDS
SESSION_SECONDS = 8 * 3600  # one working day
IDLE_SECONDS = 60 * 60
MIN_PASSWORD = 8

_ph = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against when the user does not exist, so timing does not reveal names.
_DUMMY = _ph.hash("not-a-real-password")
_WRONG = "ユーザー名またはパスワードが違います"


@dataclass
class User:
    id: int
    name: str
    role: str
    display_name: str = ""
    scope: Scope = field(default_factory=lambda: Scope(False))
    tenant: str = tenants.DEFAULT  # a prefecture administrator's is "" (it belongs to none)

    def has_role(self, roles: tuple[str, ...]) -> bool:
        """Whether the account may use a page for `roles`: a prefecture administrator may use an admin's
        (and an approver's) pages, over every tenant."""
        return self.role in roles or (self.role == "prefecture" and ("admin" in roles or "approver" in roles))

    @property
    def role_ja(self) -> str:
        return ROLE_JA.get(self.role, self.role)

    @property
    def label(self) -> str:
        return self.display_name or self.name


def _scope(role: str, all_channels: int | None, channels: str | None, domain: tenants.Domain | None = None
           ) -> Scope:
    if role == "prefecture":
        return Scope(True)  # every tenant's channels
    if role == "admin":
        return Scope(True, domain=domain)
    return Scope.from_row(all_channels, channels, domain)


def user_scope(row: dict, domain: tenants.Domain | None = None) -> Scope:
    """The channels of an account row (as `list_users` gives it), within its tenant's `domain`."""
    return _scope(row["role"], row["all_channels"], row["channels"], domain)


def _user(ledger: Ledger, row: Any) -> User | None:
    """The account of a row with its scope; None when its tenant is disabled (or unknown)."""
    if row["role"] == "prefecture":
        return User(row["id"], row["name"], row["role"], row["display_name"], Scope(True), "")
    d = tenants.domain(ledger, row["tenant"])
    if d.disabled:
        return None
    return User(row["id"], row["name"], row["role"], row["display_name"],
                _scope(row["role"], row["all_channels"], row["channels"], d), d.tenant)


@dataclass
class Session:
    user: User
    csrf: str
    token_hash: str


class LoginError(Exception):
    def __init__(self, ja: str, locked: bool = False) -> None:
        super().__init__(ja)
        self.ja = ja
        self.locked = locked


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-@" for c in name)


def add_user(ledger: Ledger, name: str, role: str, password: str, display_name: str = "",
             actor: str = "cli", scope: Scope | None = None, tenant: str | None = None) -> User:
    """A new account of `tenant` (None: the default tenant). A clerk or approver reaches only the channels
    of `scope` (default: none), which must be the tenant's own."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not _valid_name(name):
        raise ValueError("user name: 1..64 letters, digits or ._-@")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
    scope = scope or Scope(False)
    if role == "prefecture" and tenant:
        raise ValueError("a prefecture administrator belongs to no tenant (leave out --tenant)")
    key = None if role == "prefecture" or tenants.tenant_name(tenant) == tenants.DEFAULT else tenants.tenant_name(tenant)
    pw_hash = _ph.hash(password)
    with ledger.tx() as t:
        d = tenants.check_binding(t, key, scope.names) if role != "prefecture" else None
        if t.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"user {name!r} exists")
        cur = t.execute("INSERT INTO console_users(name, display_name, role, pw_hash, created_at, channels,"
                        " all_channels, tenant) VALUES (?,?,?,?,?,?,?,?)",
                        (name, display_name, role, pw_hash, time.time(), scope.to_json(), int(scope.all), key))
        uid = int(cur.lastrowid)
        t.audit("user.added", {"user_id": uid, "name": name, "role": role, "channels": list(scope.names),
                               "all_channels": scope.all, "tenant": key or tenants.DEFAULT}, actor=actor)
    return User(uid, name, role, display_name, _scope(role, int(scope.all), scope.to_json(), d),
                "" if role == "prefecture" else (key or tenants.DEFAULT))


def set_channels(ledger: Ledger, name: str, scope: Scope, actor: str = "cli") -> None:
    """Bind an account to `scope` (takes effect at its next page: sessions read the binding each time)."""
    with ledger.tx() as t:
        row = t.execute("SELECT tenant, role FROM console_users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ValueError(f"no user {name!r}")
        if row["role"] != "prefecture":
            tenants.check_binding(t, row["tenant"], scope.names)
        t.execute("UPDATE console_users SET channels = ?, all_channels = ? WHERE name = ?",
                  (scope.to_json(), int(scope.all), name))
        t.audit("user.channels", {"name": name, "channels": list(scope.names), "all_channels": scope.all},
                actor=actor)


def set_tenant(ledger: Ledger, name: str, tenant: str | None, actor: str = "cli") -> Scope:
    """Move an account to `tenant` (None: the default tenant), e.g. a single box's accounts when the town
    joins a security cloud. Its binding keeps only the new tenant's channels (it never reaches more);
    its sessions end. Returns the binding it keeps."""
    key = tenants.tenant_name(tenant)
    with ledger.tx() as t:
        row = t.execute("SELECT id, role, channels, all_channels FROM console_users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ValueError(f"no user {name!r}")
        if row["role"] == "prefecture":
            raise ValueError("a prefecture administrator belongs to no tenant")
        d = tenants.check_binding(t, key, ())
        bound = Scope.from_row(row["all_channels"], row["channels"])
        kept = Scope(bound.all, bound.names, d)
        t.execute("UPDATE console_users SET tenant = ?, channels = ? WHERE id = ?",
                  (None if key == tenants.DEFAULT else key, kept.to_json(), row["id"]))
        t.execute("DELETE FROM console_sessions WHERE user_id = ?", (row["id"],))
        t.audit("user.tenant", {"name": name, "tenant": key, "channels": list(kept.names),
                                "dropped": sorted(set(bound.names) - set(kept.names))}, actor=actor)
    return kept


def list_users(ledger: Ledger) -> list[dict]:
    now = time.time()
    locked: dict[str, int] = {}
    for r in ledger.query("SELECT name, COUNT(*) FROM login_failures WHERE locked_until > ? GROUP BY name", (now,)):
        locked[r[0]] = r[1]
    out = []
    domains: dict[str, tenants.Domain] = {}
    for r in ledger.query("SELECT id, name, display_name, role, created_at, disabled, last_login, channels,"
                          " all_channels, tenant FROM console_users ORDER BY id"):
        d = dict(r)
        d["tenant"] = "" if d["role"] == "prefecture" else tenants.tenant_name(d["tenant"])
        d["locked_addresses"] = locked.get(d["name"], 0)
        dom = domains.setdefault(d["tenant"], tenants.domain(ledger, d["tenant"])) if d["tenant"] else None
        d["scope"] = _scope(d["role"], d["all_channels"], d["channels"], dom).describe()
        out.append(d)
    return out


def set_password(ledger: Ledger, name: str, password: str, actor: str = "cli") -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
    pw_hash = _ph.hash(password)
    with ledger.tx() as t:
        cur = t.execute("UPDATE console_users SET pw_hash = ? WHERE name = ?", (pw_hash, name))
        if cur.rowcount != 1:
            raise ValueError(f"no user {name!r}")
        t.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        t.execute("DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users WHERE name = ?)",
                  (name,))
        t.audit("user.password_set", {"name": name}, actor=actor)


def set_disabled(ledger: Ledger, name: str, disabled: bool, actor: str = "cli") -> None:
    with ledger.tx() as t:
        cur = t.execute("UPDATE console_users SET disabled = ? WHERE name = ?", (int(disabled), name))
        if cur.rowcount != 1:
            raise ValueError(f"no user {name!r}")
        t.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        if disabled:
            t.execute("DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users"
                      " WHERE name = ?)", (name,))
        t.audit("user.disabled" if disabled else "user.enabled", {"name": name}, actor=actor)


def unlock(ledger: Ledger, name: str, actor: str = "cli") -> None:
    """Clear the lockouts of `name` from every address."""
    with ledger.tx() as t:
        if t.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone() is None:
            raise ValueError(f"no user {name!r}")
        t.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        t.audit("user.unlocked", {"name": name}, actor=actor)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _locked_msg(locked_until: float, now: float) -> str:
    return f"ログイン失敗が続いたためロックされています（約{_minutes(locked_until - now)}分後に再試行できます）"


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def _lock_seconds(locks: int) -> float:
    """The length of the `locks`-th lock of a name from one address: doubling, capped."""
    return float(min(MAX_LOCK_SECONDS, LOCK_SECONDS * 2 ** min(max(locks - 1, 0), 20)))


def _lock(t, name: str, client: str, row, now: float) -> float:  # noqa: ANN001 - a ledger Tx and its row
    """Lock `name` for `client` (the next step of its backoff); returns when it ends."""
    locks = (row["locks"] if row is not None else 0) + 1
    until = now + _lock_seconds(locks)
    t.execute("UPDATE login_failures SET failures = 0, locks = ?, locked_until = ? WHERE name = ? AND client = ?",
              (locks, until, name, client))
    t.audit("user.locked", {"name": name, "client": client, "seconds": round(until - now), "lock": locks},
            actor="system")
    return until


def login(ledger: Ledger, name: str, password: str, client: str = "") -> tuple[str, Session]:
    """Check the password; returns (cookie token, session). Raises LoginError (audited).

    Failures count per name and source address (`client`), whether or not the name exists. Lockout
    holds under parallel guesses: each check is reserved (counted) in one write transaction before
    the slow argon2 verify, so at most MAX_FAILURES checks run per lock period and address; a success
    re-checks the lock before it creates the session."""
    name = name[:64]
    client = client[:64]
    now = time.time()
    with ledger.tx() as t:
        t.execute("DELETE FROM login_failures WHERE last_failure < ? AND (locked_until IS NULL OR locked_until < ?)",
                  (now - FORGET_SECONDS, now))
        lf = t.execute("SELECT * FROM login_failures WHERE name = ? AND client = ?", (name, client)).fetchone()
        locked_until = lf["locked_until"] if lf is not None and lf["locked_until"] else 0.0
        if locked_until <= now and lf is not None and lf["failures"] >= MAX_FAILURES:
            # The quota is used up by checks still running (or left by a crash): lock now rather
            # than run one more check.
            locked_until = _lock(t, name, client, lf, now)
        if locked_until > now:
            t.audit("console.login_failed", {"name": name, "why": "locked", "client": client}, actor=name or "?")
            refusal: LoginError | None = LoginError(_locked_msg(locked_until, now), locked=True)
        else:
            refusal = None
            t.execute("INSERT INTO login_failures(name, client, failures, locks, last_failure) VALUES (?,?,1,0,?)"
                      " ON CONFLICT(name, client) DO UPDATE SET failures = failures + 1, last_failure = ?",
                      (name, client, now, now))
            attempt = (lf["failures"] if lf is not None else 0) + 1
        row = t.execute("SELECT * FROM console_users WHERE name = ?", (name,)).fetchone()
    if refusal is not None:
        raise refusal
    try:
        ok = _ph.verify(row["pw_hash"] if row is not None else _DUMMY, password)  # same time either way
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    ok = ok and row is not None
    now = time.time()
    if not ok:
        with ledger.tx() as t:
            # The attempt was counted when reserved; lock once the count reaches the limit.
            cur = t.execute("SELECT * FROM login_failures WHERE name = ? AND client = ?", (name, client)).fetchone()
            already = bool(cur and cur["locked_until"] and cur["locked_until"] > now)
            lock_now = bool(cur) and not already and cur["failures"] >= MAX_FAILURES
            why = "unknown user" if row is None else "bad password"
            t.audit("console.login_failed", {"name": name, "why": why, "failures": attempt,
                                             "locked": lock_now or already, "client": client}, actor=name or "?")
            until = _lock(t, name, client, cur, now) if lock_now else (cur["locked_until"] if already else 0.0)
        if lock_now:
            raise LoginError(f"ログイン失敗が続いたためロックしました（約{_minutes(until - now)}分後に再試行できます）",
                             locked=True)
        if already:
            raise LoginError(_locked_msg(until, now), locked=True)
        raise LoginError(_WRONG)
    new_hash = _ph.hash(password) if _ph.check_needs_rehash(row["pw_hash"]) else None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    th = _token_hash(token)
    with ledger.tx() as t:
        # A parallel guess may have locked (or an admin disabled) the account while we verified.
        cur = t.execute("SELECT disabled, role, tenant FROM console_users WHERE id = ?", (row["id"],)).fetchone()
        lf = t.execute("SELECT locked_until FROM login_failures WHERE name = ? AND client = ?",
                       (name, client)).fetchone()
        if lf is not None and lf["locked_until"] and lf["locked_until"] > now:
            t.audit("console.login_failed", {"name": name, "why": "locked", "client": client}, actor=name)
            refusal = LoginError(_locked_msg(lf["locked_until"], now), locked=True)
        elif cur is None or cur["disabled"] or (cur["role"] != "prefecture"
                                                and tenants.domain(t, cur["tenant"]).disabled):
            # Said only to someone who knows the password: it does not reveal the account to guessers.
            t.execute("UPDATE login_failures SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END"
                      " WHERE name = ? AND client = ?",
                      (name, client))
            t.audit("console.login_failed", {"name": name, "why": "disabled", "client": client}, actor=name)
            refusal = LoginError("このアカウントは無効になっています。管理者に連絡してください")
        else:
            t.execute("DELETE FROM login_failures WHERE name = ? AND client = ?", (name, client))
            t.execute("UPDATE console_users SET last_login = ?" + (", pw_hash = ?" if new_hash else "")
                      + " WHERE id = ?", (now, new_hash, row["id"]) if new_hash else (now, row["id"]))
            t.execute("DELETE FROM console_sessions WHERE expires_at < ? OR last_seen < ?",
                      (now, now - IDLE_SECONDS))
            t.execute("INSERT INTO console_sessions(token_hash, user_id, csrf, created_at, expires_at, last_seen)"
                      " VALUES (?,?,?,?,?,?)", (th, row["id"], csrf, now, now + SESSION_SECONDS, now))
            t.audit("console.login", {"name": name, "role": row["role"], "client": client}, actor=name)
    if refusal is not None:
        raise refusal
    user = _user(ledger, row)
    if user is None:  # its tenant was disabled meanwhile
        logout(ledger, Session(User(row["id"], row["name"], row["role"]), csrf, th))
        raise LoginError("このアカウントは無効になっています。管理者に連絡してください")
    return token, Session(user, csrf, th)


def session_for(ledger: Ledger, token: str | None) -> Session | None:
    if not token or len(token) > 100:
        return None
    now = time.time()
    th = _token_hash(token)
    row = ledger.one(
        "SELECT s.csrf, s.expires_at, s.last_seen, u.id, u.name, u.role, u.display_name, u.disabled,"
        " u.channels, u.all_channels, u.tenant FROM console_sessions s JOIN console_users u ON u.id = s.user_id"
        " WHERE s.token_hash = ?", (th,))
    if row is None or row["disabled"] or row["expires_at"] < now or row["last_seen"] < now - IDLE_SECONDS:
        return None
    if now - row["last_seen"] > 60:  # keep writes rare
        with ledger.tx() as t:
            t.execute("UPDATE console_sessions SET last_seen = ? WHERE token_hash = ?", (now, th))
    user = _user(ledger, row)  # the tenant's channels as they are now; None once it is disabled
    if user is None:
        return None
    return Session(user, row["csrf"], th)


def logout(ledger: Ledger, session: Session) -> None:
    with ledger.tx() as t:
        t.execute("DELETE FROM console_sessions WHERE token_hash = ?", (session.token_hash,))
        t.audit("console.logout", {"name": session.user.name}, actor=session.user.name)
