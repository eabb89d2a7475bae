"""The job ledger: SQLite in WAL mode, synchronous=FULL (a commit survives power loss).

Job states: received -> queued -> processing -> delivering -> delivered | blocked.
- received:   row written before the original leaves the dropbox; sha256 filled in once hashed.
- queued:     the original is in quarantine; waiting for a worker.
- processing: a worker has it (after a crash: back to queued).
- delivering: the verdict and the delivery plan (final names, hashes) are committed; the
              plan is replayed idempotently after a crash.
- delivered / blocked: final. `blocked` jobs delivered a notice instead of the file.
All writes go through `tx()` (BEGIN IMMEDIATE) so that a state change and its audit row
commit together.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import audit

log = logging.getLogger("transfer_agent.ledger")

FINAL = ("delivered", "blocked")
ACTIVE = ("received", "queued", "processing", "delivering")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    status        TEXT NOT NULL,
    source        TEXT NOT NULL,          -- dropbox | api | ...
    channel       TEXT NOT NULL,
    name          TEXT NOT NULL,          -- the sender's file name (NFC)
    subdir        TEXT NOT NULL DEFAULT '',  -- below inbox/<channel>/<date>/
    drop_path     TEXT NOT NULL,          -- where it was taken from
    drop_sig      TEXT,                   -- dev:ino:size:mtime of it when taken
    size          INTEGER,
    sha256        TEXT,
    quarantine    TEXT,                   -- path of the original, relative to the data dir
    policy        TEXT,                   -- name@version used
    retention_days INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    verdict       TEXT,
    result        TEXT,                   -- FileResult JSON, outputs relative to the result cache
    reused_from   INTEGER,                -- dedup: the job whose result was reused
    plan          TEXT,                   -- delivery plan JSON
    inbox_dir     TEXT,                   -- relative to the data dir
    delivered     TEXT,                   -- JSON list of delivered names
    submission_id TEXT,
    password      TEXT,                   -- PPAP password; cleared when the job is final
    error         TEXT,
    received_at   REAL NOT NULL,
    started_at    REAL,
    processed_at  REAL,
    finished_at   REAL,
    engine        TEXT                    -- engine fingerprint + policy content hash (reuse key)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
CREATE INDEX IF NOT EXISTS jobs_sha ON jobs(sha256, policy);
CREATE INDEX IF NOT EXISTS jobs_submission ON jobs(submission_id);
-- Password retries (source 'console') are found by the job they retry; few rows, so a partial index.
CREATE INDEX IF NOT EXISTS jobs_retry ON jobs(drop_path) WHERE source = 'console';
CREATE TABLE IF NOT EXISTS quarantine (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    path       TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    purged_at  REAL
);
"""


class Tx:
    """A write transaction: SQL plus audit rows that commit with it."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.cur = cur
        self.audited: list[tuple[int, str, str, int | None]] = []

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.cur.execute(sql, params)

    def audit(self, event: str, data: dict[str, Any] | None = None, *, job_id: int | None = None,
              actor: str = "system") -> None:
        seq, h = audit.append(self.cur, event, data, job_id=job_id, actor=actor)
        self.audited.append((seq, h, event, job_id))


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = self._connect()
        with self._lock:
            self._conn.executescript(SCHEMA + audit.SCHEMA)
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')")
            # Added later: which engine (and policy content) made a job's result, for safe reuse.
            if "engine" not in {r[1] for r in self._conn.execute("PRAGMA table_info(jobs)")}:
                self._conn.execute("ALTER TABLE jobs ADD COLUMN engine TEXT")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA secure_delete=ON")  # a cleared PPAP password is overwritten, not left in free pages
        return conn

    def forget_secrets(self) -> None:
        """After a password was cleared: copy the WAL into the database and empty it, so the old
        page images that still hold the password are gone from the disk too."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            t = Tx(cur)
            try:
                yield t
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            try:
                cur.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        for seq, h, event, job_id in t.audited:
            # The hash in the operator log anchors the chain outside the database.
            log.info("audit %s", event, extra={"event": "audit", "audit_event": event, "seq": seq,
                                               "job_id": job_id, "hash": h})

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def ping(self) -> bool:
        try:
            return self.one("SELECT 1") is not None
        except sqlite3.Error:
            return False

    # ------------------------------------------------------------------ jobs

    def job(self, job_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def jobs(self, *statuses: str) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(statuses))
        return self.query(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY id", statuses)

    def insert_received_many(self, rows: list[dict[str, Any]]) -> list[int]:
        """Job rows in state 'received' for a group of files, in one transaction; ids in order."""
        now = time.time()
        ids = []
        with self.tx() as t:
            for r in rows:
                cur = t.execute(
                    "INSERT INTO jobs(status, source, channel, name, subdir, drop_path, drop_sig, size, submission_id,"
                    " password, received_at) VALUES ('received',?,?,?,?,?,?,?,?,?,?)",
                    (r["source"], r["channel"], r["name"], r["subdir"], r["drop_path"], r.get("drop_sig"),
                     r.get("size"), r.get("submission_id"), r.get("password"), now))
                ids.append(int(cur.lastrowid))
        return ids

    def counts(self) -> dict[str, Any]:
        by_status = {r[0]: r[1] for r in self.query("SELECT status, COUNT(*) FROM jobs GROUP BY status")}
        by_verdict = {r[0]: r[1] for r in self.query(
            "SELECT verdict, COUNT(*) FROM jobs WHERE status IN ('delivered','blocked') GROUP BY verdict")}
        reused = self.one("SELECT COUNT(*) FROM jobs WHERE reused_from IS NOT NULL")[0]
        q = self.one("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM quarantine WHERE purged_at IS NULL")
        return {"jobs": by_status, "verdicts": by_verdict, "reused": reused,
                "quarantine_files": q[0], "quarantine_bytes": q[1]}

    def queue_depth(self) -> int:
        return self.one("SELECT COUNT(*) FROM jobs WHERE status IN ('received','queued','processing')")[0]

    def quarantine_bytes(self) -> int:
        return self.one("SELECT COALESCE(SUM(size), 0) FROM quarantine WHERE purged_at IS NULL")[0]

    def verify_audit(self) -> audit.VerifyResult:
        with self._lock:
            return audit.verify(self._conn)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
