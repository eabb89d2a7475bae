"""Append-only, hash-chained audit trail kept in the ledger database.

Each row's hash covers its own fields and the previous row's hash, so editing, deleting
or reordering any row breaks the chain from that row on. Triggers refuse UPDATE and
DELETE; someone with the file can drop them, which is exactly what `verify` catches.
Rows are appended inside the caller's transaction (BEGIN IMMEDIATE holds the write
lock; on PostgreSQL every node's write transaction first takes the same pg_advisory_xact_lock,
so the chain head read here cannot move before commit), so the state change and its audit row
commit together, with any number of writers.

Someone with the file could also delete the newest rows, or edit a row and recompute every later
hash: the chain alone cannot see that. So the head (seq and hash) of each committed group is
appended to `state/audit.anchor` outside the database (O_APPEND, fsynced; optionally to syslog
too), and `verify_anchor` checks every anchored head against the chain.
"""
from __future__ import annotations

import hashlib
import json
import os
import syslog
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import schema

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY,
    ts      TEXT NOT NULL,
    event   TEXT NOT NULL,
    job_id  INTEGER,
    actor   TEXT NOT NULL,
    data    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;
"""
PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq     BIGINT PRIMARY KEY,
    ts      TEXT NOT NULL,
    event   TEXT NOT NULL,
    job_id  BIGINT,
    actor   TEXT NOT NULL,
    data    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit trail is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""
schema.register("audit", SCHEMA, postgresql=PG_SCHEMA)


def row_hash(prev: str, seq: int, ts: str, event: str, job_id: int | None, actor: str, data: str) -> str:
    body = json.dumps([seq, ts, event, job_id, actor, data], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def append(cur: Any, event: str, data: dict[str, Any] | None = None, *,
           job_id: int | None = None, actor: str = "system") -> tuple[int, str]:
    """Append one row; call inside a write transaction. Returns (seq, hash)."""
    last = cur.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    text = json.dumps(data or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    h = row_hash(prev, seq, ts, event, job_id, actor, text)
    cur.execute("INSERT INTO audit(seq, ts, event, job_id, actor, data, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
                (seq, ts, event, job_id, actor, text, prev, h))
    return seq, h


@dataclass
class VerifyResult:
    ok: bool
    rows: int
    head: str
    broken_seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.rows} rows, head {self.head}"
        return f"audit chain BROKEN at row seq={self.broken_seq}: {self.problem}"


def verify(conn: Any) -> VerifyResult:
    """Walk the chain from the start; report the first row that does not fit."""
    prev, expected, n = GENESIS, 1, 0
    for seq, ts, event, job_id, actor, data, prev_col, h in conn.execute(
            "SELECT seq, ts, event, job_id, actor, data, prev, hash FROM audit ORDER BY seq"):
        if seq != expected:
            return VerifyResult(False, n, prev, expected, f"row(s) {expected}..{seq - 1} missing")
        if prev_col != prev:
            return VerifyResult(False, n, prev, seq, "previous-hash link does not match the row before")
        if row_hash(prev_col, seq, ts, event, job_id, actor, data) != h:
            return VerifyResult(False, n, prev, seq, f"content does not match its hash (event={event!r})")
        prev, expected, n = h, seq + 1, n + 1
    return VerifyResult(True, n, prev)


# ---------------------------------------------------------------------------- the anchor

ANCHOR_NAME = "audit.anchor"


class Anchor:
    """`state/audit.anchor`: one line "seq hash time" per commit group, appended and fsynced."""

    def __init__(self, path: Path, fsync: bool = True, to_syslog: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.to_syslog = to_syslog

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, seq: int, h: str) -> None:
        line = f"{seq} {h} {datetime.now(UTC).isoformat(timespec='seconds')}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line)  # one write of a short line: whole even with two processes appending
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.to_syslog:
            syslog.syslog(syslog.LOG_INFO | syslog.LOG_AUTHPRIV, f"transfer-agent audit head seq={seq} hash={h}")

    def heads(self) -> list[tuple[int, int, str]]:
        """(line number, seq, hash) of every well-formed line; ValueError names a malformed one."""
        out = []
        with open(self.path, encoding="ascii", errors="replace") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) < 2 or not parts[0].isdigit() or len(parts[1]) != 64:
                    raise ValueError(f"{self.path.name} line {n} is malformed: {line.strip()[:80]!r}")
                out.append((n, int(parts[0]), parts[1]))
        return out


def verify_anchor(conn: Any, anchor: Anchor) -> list[str]:
    """Problems between the chain and its anchor (empty: every anchored head is in the chain as written)."""
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if not anchor.exists():
        return [f"{anchor.path} is missing: the chain cannot be checked against its anchor"] if last else []
    try:
        heads = anchor.heads()
    except (OSError, ValueError) as exc:
        return [str(exc)]
    problems = []
    top = last[0] if last else 0
    for n, seq, h in heads:
        row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            problems.append(f"anchor line {n}: row seq={seq} was committed but is missing from the database"
                            f" (the newest row is seq={top}: rows deleted?)")
        elif row[0] != h:
            problems.append(f"anchor line {n}: row seq={seq} has hash {row[0][:16]}... but {h[:16]}... was"
                            " committed (rows rewritten and their hashes recomputed?)")
        if len(problems) >= 5:
            break
    return problems
