"""Append-only, hash-chained audit trail kept in the ledger database.

Each row's hash covers its own fields and the previous row's hash, so editing, deleting
or reordering any row breaks the chain from that row on. Triggers refuse UPDATE and
DELETE; someone with the file can drop them, which is exactly what `verify` catches.
Rows are appended inside the caller's transaction (BEGIN IMMEDIATE holds the write
lock), so the state change and its audit row commit together.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def row_hash(prev: str, seq: int, ts: str, event: str, job_id: int | None, actor: str, data: str) -> str:
    body = json.dumps([seq, ts, event, job_id, actor, data], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def append(cur: sqlite3.Cursor, event: str, data: dict[str, Any] | None = None, *,
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


def verify(conn: sqlite3.Connection) -> VerifyResult:
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
