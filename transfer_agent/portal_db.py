"""Tables of the REST intake and the staff console, kept in the ledger database.

They live next to the job ledger so that a state change (a key revoked, a request approved)
and its audit row commit in one transaction through `Ledger.tx()`. The tables are registered
with schema.py: `Ledger` creates them on SQLite and PostgreSQL alike when it opens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import db, exchange, schema, tenants  # noqa: F401 - exchange, tenants register their tables

PORTAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client     TEXT NOT NULL,
    prefix     TEXT NOT NULL UNIQUE,      -- public part, shown in lists and logs
    key_hash   TEXT NOT NULL,             -- sha256 of the whole key (keys are 190-bit random)
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used  REAL
);
CREATE TABLE IF NOT EXISTS console_users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    role         TEXT NOT NULL,           -- clerk | approver | admin | prefecture
    pw_hash      TEXT NOT NULL,           -- argon2id
    created_at   REAL NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    last_login   REAL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,          -- sha256 of the cookie value
    user_id    INTEGER NOT NULL,
    csrf       TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id          TEXT PRIMARY KEY,         -- opaque, in the status URL
    receipt     TEXT NOT NULL UNIQUE,     -- 受付番号 shown to people
    api_key_id  INTEGER NOT NULL,
    client      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    day         TEXT NOT NULL,            -- YYYY-MM-DD of the inbox folder
    bundle_dir  TEXT NOT NULL,            -- relative to the data dir
    fields      TEXT NOT NULL,            -- JSON list of [name, value]
    files       TEXT NOT NULL,            -- JSON list of {name, size, sha256}
    status      TEXT NOT NULL,            -- received | processing | done
    idem_key    TEXT,
    idem_hash   TEXT,
    created_at  REAL NOT NULL,
    done_at     REAL,
    UNIQUE (api_key_id, idem_key)
);
CREATE INDEX IF NOT EXISTS submissions_status ON submissions(status);
CREATE TABLE IF NOT EXISTS receipt_seq (day TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS original_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER NOT NULL,
    requester_id INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,           -- pending | approved | rejected
    created_at   REAL NOT NULL,
    approver_id  INTEGER,
    comment      TEXT,
    decided_at   REAL,
    released     TEXT                     -- path of the released original, relative to the data dir
);
CREATE INDEX IF NOT EXISTS original_requests_status ON original_requests(status, id);
"""

# Tables added after the first release (created after the columns above exist).
_LATER_SCHEMA = """
-- Bytes each API key sent, for its hourly quota (api_limits.py); rows older than two hours are pruned.
CREATE TABLE IF NOT EXISTS api_usage (
    api_key_id INTEGER NOT NULL,
    ts         REAL NOT NULL,
    bytes      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_usage_key ON api_usage(api_key_id, ts);
-- Failed console logins per typed name and source address (users.py); names that do not exist too.
CREATE TABLE IF NOT EXISTS login_failures (
    name         TEXT NOT NULL,
    client       TEXT NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    locks        INTEGER NOT NULL DEFAULT 0,   -- locks so far: the next one lasts twice as long
    locked_until REAL,
    last_failure REAL NOT NULL,
    PRIMARY KEY (name, client)
);
"""


# Added later (columns of existing tables). Channel bindings: an account or key written before they
# existed has none (channels NULL, all_channels 0) and reaches no channel until an admin binds it
# (`user channels` / `apikey channels`, README "Access by department").
_ADDED = {
    # tenant: the municipality (tenants.py) a key or account belongs to; NULL is the default tenant, so
    # everything written before tenants existed stays where it was.
    "api_keys": (("channels", "TEXT"), ("all_channels", "INTEGER NOT NULL DEFAULT 0"), ("tenant", "TEXT")),
    "console_users": (("channels", "TEXT"), ("all_channels", "INTEGER NOT NULL DEFAULT 0"), ("tenant", "TEXT")),
    # part: one attachment of a mail (its index among the report's children) instead of the whole original
    "original_requests": (("expires_at", "REAL"), ("downloads", "INTEGER NOT NULL DEFAULT 0"), ("part", "INTEGER"),
                          ("part_name", "TEXT")),
    # Submissions from upload pages (exchange.py): where they came from, their form, the 要確認 flags of its
    # checks, the hash of the sender's status-page token, who gets the receipt mail and its outbox queue id.
    "submissions": (("source", "TEXT NOT NULL DEFAULT 'api'"), ("request_id", "TEXT"), ("form", "TEXT"),
                    ("flags", "TEXT"), ("status_hash", "TEXT"), ("receipt_to", "TEXT"), ("receipt_mail", "TEXT")),
}


schema.register("portal", PORTAL_SCHEMA,
                columns=[(table, name, decl) for table, cols in _ADDED.items() for name, decl in cols])
schema.register("portal_later", _LATER_SCHEMA)
# Upload pages (exchange.py): submissions found by upload request, status-page token and channel.
schema.register("portal_exchange", """
CREATE INDEX IF NOT EXISTS submissions_request ON submissions(request_id);
CREATE INDEX IF NOT EXISTS submissions_status_hash ON submissions(status_hash);
CREATE INDEX IF NOT EXISTS submissions_channel ON submissions(channel, created_at);
""")


def ensure_schema(target: Path | str | Any) -> None:
    """Create our tables (idempotent): for a SQLite path, a postgresql:// URL or an open Ledger
    (which created every registered table when it opened)."""
    if hasattr(target, "tx"):
        return
    if not db.is_postgres(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect(target)
    try:
        schema.ensure(conn)
    finally:
        conn.close()
