"""Local console accounts (argon2id), lockout after repeated failures, and sessions.

Session cookies carry a random token; only its sha256 is stored, so a copy of the database
does not let anyone log in. Each session has its own CSRF token for the console's forms.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .ledger import Ledger

ROLES = ("clerk", "approver", "admin")
ROLE_JA = {"clerk": "担当者", "approver": "承認者", "admin": "管理者"}
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
SESSION_SECONDS = 8 * 3600  # one working day
IDLE_SECONDS = 60 * 60
MIN_PASSWORD = 8

_ph = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against when the user does not exist, so timing does not reveal names.
_DUMMY = _ph.hash("not-a-real-password")


@dataclass
class User:
    id: int
    name: str
    role: str
    display_name: str = ""

    @property
    def role_ja(self) -> str:
        return ROLE_JA.get(self.role, self.role)

    @property
    def label(self) -> str:
        return self.display_name or self.name


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
             actor: str = "cli") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not _valid_name(name):
        raise ValueError("user name: 1..64 letters, digits or ._-@")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
    pw_hash = _ph.hash(password)
    with ledger.tx() as t:
        if t.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"user {name!r} exists")
        cur = t.execute("INSERT INTO console_users(name, display_name, role, pw_hash, created_at)"
                        " VALUES (?,?,?,?,?)", (name, display_name, role, pw_hash, time.time()))
        uid = int(cur.lastrowid)
        t.audit("user.added", {"user_id": uid, "name": name, "role": role}, actor=actor)
    return User(uid, name, role, display_name)


def list_users(ledger: Ledger) -> list[dict]:
    return [dict(r) for r in ledger.query(
        "SELECT id, name, display_name, role, created_at, disabled, failed, locked_until, last_login"
        " FROM console_users ORDER BY id")]


def set_password(ledger: Ledger, name: str, password: str, actor: str = "cli") -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must have at least {MIN_PASSWORD} characters")
    pw_hash = _ph.hash(password)
    with ledger.tx() as t:
        cur = t.execute("UPDATE console_users SET pw_hash = ?, failed = 0, locked_until = NULL WHERE name = ?",
                        (pw_hash, name))
        if cur.rowcount != 1:
            raise ValueError(f"no user {name!r}")
        t.execute("DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users WHERE name = ?)",
                  (name,))
        t.audit("user.password_set", {"name": name}, actor=actor)


def set_disabled(ledger: Ledger, name: str, disabled: bool, actor: str = "cli") -> None:
    with ledger.tx() as t:
        cur = t.execute("UPDATE console_users SET disabled = ?, failed = 0, locked_until = NULL WHERE name = ?",
                        (int(disabled), name))
        if cur.rowcount != 1:
            raise ValueError(f"no user {name!r}")
        if disabled:
            t.execute("DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users"
                      " WHERE name = ?)", (name,))
        t.audit("user.disabled" if disabled else "user.enabled", {"name": name}, actor=actor)


def unlock(ledger: Ledger, name: str, actor: str = "cli") -> None:
    with ledger.tx() as t:
        cur = t.execute("UPDATE console_users SET failed = 0, locked_until = NULL WHERE name = ?", (name,))
        if cur.rowcount != 1:
            raise ValueError(f"no user {name!r}")
        t.audit("user.unlocked", {"name": name}, actor=actor)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _locked_msg(locked_until: float, now: float) -> str:
    mins = int((locked_until - now) // 60) + 1
    return f"ログイン失敗が続いたためロックされています（約{mins}分後に再試行できます）"


def login(ledger: Ledger, name: str, password: str, client: str = "") -> tuple[str, Session]:
    """Check the password; returns (cookie token, session). Raises LoginError (audited).

    Lockout holds under parallel guesses: each check is reserved (counted in `failed`) in one
    write transaction before the slow argon2 verify, so at most MAX_FAILURES checks run per lock
    period; a success re-checks the lock before it creates the session."""
    name = name[:64]
    now = time.time()
    with ledger.tx() as t:
        row = t.execute("SELECT * FROM console_users WHERE name = ?", (name,)).fetchone()
        refusal: LoginError | None = None
        attempt = 0
        if row is None:
            pass
        elif row["disabled"]:
            t.audit("console.login_failed", {"name": name, "why": "disabled", "client": client}, actor=name)
            refusal = LoginError("このアカウントは無効になっています。管理者に連絡してください")
        else:
            locked_until = row["locked_until"] or 0
            if locked_until <= now and row["failed"] >= MAX_FAILURES:
                # The quota is used up by checks still running (or left by a crash): lock now
                # rather than run one more check.
                locked_until = now + LOCK_SECONDS
                t.execute("UPDATE console_users SET failed = 0, locked_until = ? WHERE id = ?",
                          (locked_until, row["id"]))
                t.audit("user.locked", {"name": name, "seconds": LOCK_SECONDS}, actor="system")
            if locked_until > now:
                t.audit("console.login_failed", {"name": name, "why": "locked", "client": client}, actor=name)
                refusal = LoginError(_locked_msg(locked_until, now), locked=True)
            else:
                t.execute("UPDATE console_users SET failed = failed + 1 WHERE id = ?", (row["id"],))
                attempt = row["failed"] + 1
    if refusal is not None:
        raise refusal
    if row is None:
        try:
            _ph.verify(_DUMMY, password)  # same time as a real check: do not reveal names
        except VerificationError:
            pass
        with ledger.tx() as t:
            t.audit("console.login_failed", {"name": name, "why": "unknown user", "client": client},
                    actor=name or "?")
        raise LoginError("ユーザー名またはパスワードが違います")
    try:
        ok = _ph.verify(row["pw_hash"], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    now = time.time()
    if not ok:
        with ledger.tx() as t:
            # The attempt was counted when reserved; lock once the count reaches the limit.
            cur = t.execute("SELECT failed, locked_until FROM console_users WHERE id = ?", (row["id"],)).fetchone()
            already = bool(cur and cur["locked_until"] and cur["locked_until"] > now)
            lock_now = bool(cur) and not already and cur["failed"] >= MAX_FAILURES
            if lock_now:
                t.execute("UPDATE console_users SET failed = 0, locked_until = ? WHERE id = ?",
                          (now + LOCK_SECONDS, row["id"]))
            t.audit("console.login_failed", {"name": name, "why": "bad password", "failures": attempt,
                                             "locked": lock_now or already, "client": client}, actor=name)
            if lock_now:
                t.audit("user.locked", {"name": name, "seconds": LOCK_SECONDS}, actor="system")
        if lock_now:
            raise LoginError("ログイン失敗が続いたためアカウントをロックしました（15分後に再試行できます）",
                             locked=True)
        if already:
            raise LoginError(_locked_msg(cur["locked_until"], now), locked=True)
        raise LoginError("ユーザー名またはパスワードが違います")
    new_hash = _ph.hash(password) if _ph.check_needs_rehash(row["pw_hash"]) else None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    th = _token_hash(token)
    with ledger.tx() as t:
        # A parallel guess may have locked (or an admin disabled) the account while we verified.
        cur = t.execute("SELECT disabled, locked_until FROM console_users WHERE id = ?", (row["id"],)).fetchone()
        if cur is None or cur["disabled"]:
            t.audit("console.login_failed", {"name": name, "why": "disabled", "client": client}, actor=name)
            refusal = LoginError("このアカウントは無効になっています。管理者に連絡してください")
        elif cur["locked_until"] and cur["locked_until"] > now:
            t.audit("console.login_failed", {"name": name, "why": "locked", "client": client}, actor=name)
            refusal = LoginError(_locked_msg(cur["locked_until"], now), locked=True)
        else:
            t.execute("UPDATE console_users SET failed = 0, locked_until = NULL, last_login = ?"
                      + (", pw_hash = ?" if new_hash else "") + " WHERE id = ?",
                      (now, new_hash, row["id"]) if new_hash else (now, row["id"]))
            t.execute("DELETE FROM console_sessions WHERE expires_at < ? OR last_seen < ?",
                      (now, now - IDLE_SECONDS))
            t.execute("INSERT INTO console_sessions(token_hash, user_id, csrf, created_at, expires_at, last_seen)"
                      " VALUES (?,?,?,?,?,?)", (th, row["id"], csrf, now, now + SESSION_SECONDS, now))
            t.audit("console.login", {"name": name, "role": row["role"], "client": client}, actor=name)
    if refusal is not None:
        raise refusal
    user = User(row["id"], row["name"], row["role"], row["display_name"])
    return token, Session(user, csrf, th)


def session_for(ledger: Ledger, token: str | None) -> Session | None:
    if not token or len(token) > 100:
        return None
    now = time.time()
    th = _token_hash(token)
    row = ledger.one(
        "SELECT s.csrf, s.expires_at, s.last_seen, u.id, u.name, u.role, u.display_name, u.disabled"
        " FROM console_sessions s JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = ?", (th,))
    if row is None or row["disabled"] or row["expires_at"] < now or row["last_seen"] < now - IDLE_SECONDS:
        return None
    if now - row["last_seen"] > 60:  # keep writes rare
        with ledger.tx() as t:
            t.execute("UPDATE console_sessions SET last_seen = ? WHERE token_hash = ?", (now, th))
    return Session(User(row["id"], row["name"], row["role"], row["display_name"]), row["csrf"], th)


def logout(ledger: Ledger, session: Session) -> None:
    with ledger.tx() as t:
        t.execute("DELETE FROM console_sessions WHERE token_hash = ?", (session.token_hash,))
        t.audit("console.logout", {"name": session.user.name}, actor=session.user.name)
