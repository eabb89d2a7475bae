"""The job ledger: SQLite in WAL mode, synchronous=FULL (a commit survives power loss), or
PostgreSQL for the security cloud (`Ledger("postgresql://...")`, see db.py and schema.py).

Job states: received -> queued -> processing -> delivering -> delivered | blocked.
- received:   row written before the original leaves the dropbox; sha256 filled in once hashed.
- queued:     the original is in quarantine; waiting for a worker.
- processing: a worker has it (after a crash: back to queued).
- delivering: the verdict and the delivery plan (final names, hashes) are committed; the
              plan is replayed idempotently after a crash.
- delivered / blocked: final. `blocked` jobs delivered a notice instead of the file.
All writes go through `tx()` (BEGIN IMMEDIATE; on PostgreSQL the write advisory lock) so that a state change and its audit row
commit together. The appliance's steps change state only through the named methods of `Tx` and
`Ledger` (the storage seam, see storage.py), never by SQL of their own.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import audit, db, mail_db, schema  # noqa: F401 - mail_db registers the SMTP intake's tables
from .channels import channel_name

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
    engine        TEXT,                   -- engine fingerprint + policy content hash (reuse key)
    source_key    TEXT,                   -- who sent it, for fair dispatch: api:<key id>, dropbox:<channel>, ...
    mail_id       TEXT                    -- a mail from the SMTP intake (mail_db.py): delivered as mail
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
# Added later: `engine`, which engine (and policy content) made a job's result, for safe reuse;
# `source_key`, who sent a job (fair dispatch; older rows fall back to source_key()).
# `owner`: the serve node working on an unfinished job (cluster.py; every node, the one-box too).
schema.register("ledger", SCHEMA, columns=[("jobs", "engine", "TEXT"), ("jobs", "source_key", "TEXT"),
                                           ("jobs", "mail_id", "TEXT"), ("jobs", "owner", "TEXT")])
schema.register("ledger_later", "CREATE INDEX IF NOT EXISTS jobs_queued_source ON jobs(status, source_key, id);"
                "CREATE INDEX IF NOT EXISTS jobs_mail ON jobs(mail_id);",
                postgresql="""
CREATE INDEX IF NOT EXISTS jobs_queued_source ON jobs(status, source_key, id);
CREATE INDEX IF NOT EXISTS jobs_mail ON jobs(mail_id);
-- Channel identity in SQL (channels.Scope.sql). SQLite registers the Python function; a PostgreSQL
-- ledger is always newer than channel normalisation, so its names are already in normal form.
CREATE OR REPLACE FUNCTION chkey(text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$;
""")

_PURGEABLE = """
SELECT q.sha256, q.size, q.path FROM quarantine q
WHERE q.purged_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM jobs j WHERE j.sha256 = q.sha256 AND (
        j.status NOT IN ('delivered', 'blocked')
        OR j.received_at + COALESCE(j.retention_days, 0) * 86400.0 > :now))
"""

PURGEABLE_ONE = _PURGEABLE + " AND q.sha256 = :sha"  # the same question for one original


class Tx:
    """A write transaction: SQL plus audit rows that commit with it.

    `owner`: this serve node's id (cluster.py). The steps' state changes of a job then apply only while
    the job is this node's, and raise cluster.Fenced (rolling back the transaction) when it is not.
    """

    def __init__(self, cur: Any, owner: str | None = None) -> None:
        self.cur = cur
        self.owner = owner
        self.audited: list[tuple[int, str, str, int | None]] = []

    def _mine(self, status: str | None = None) -> tuple[str, tuple]:
        """SQL and parameters that limit an UPDATE of jobs to this node's, in `status` (a ledger opened
        without a node, by tools and tests, changes any row, as before)."""
        if self.owner is None:
            return "", ()
        return (f" AND status = '{status}'" if status else "") + " AND owner = ?", (self.owner,)

    def _fenced(self, cur: Any, job_id: int, what: str) -> None:
        if cur.rowcount == 0 and self.owner is not None:
            from .cluster import Fenced
            raise Fenced(f"job {job_id}: {what}: no longer this node's job")

    def execute(self, sql: str, params: tuple | dict = ()) -> Any:
        return self.cur.execute(sql, params)

    def audit(self, event: str, data: dict[str, Any] | None = None, *, job_id: int | None = None,
              actor: str = "system") -> None:
        seq, h = audit.append(self.cur, event, data, job_id=job_id, actor=actor)
        self.audited.append((seq, h, event, job_id))

    # ------------------------------------------------------------------ the steps' state changes
    # (storage.JobTx: a PostgreSQL ledger implements the same methods)

    def job(self, job_id: int) -> Any | None:
        return self.cur.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def forget_received(self, job_id: int) -> None:
        """A file left where it was after all: its row goes, unless intake already got further."""
        self.cur.execute("DELETE FROM jobs WHERE id = ? AND status = 'received'", (job_id,))

    def delete_job(self, job_id: int) -> None:
        self.cur.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def set_hash(self, job_id: int, sha256: str, size: int) -> None:
        self.cur.execute("UPDATE jobs SET sha256 = ?, size = ? WHERE id = ?", (sha256, size, job_id))

    def mark_queued(self, job_id: int, quarantine: str) -> None:
        self.cur.execute("UPDATE jobs SET status = 'queued', quarantine = ? WHERE id = ?", (quarantine, job_id))

    def keep_original(self, sha256: str, size: int, path: str, now: float) -> None:
        """The original is in quarantine: recorded once per content (a purged one is back)."""
        self.cur.execute(
            "INSERT INTO quarantine(sha256, size, path, first_seen, last_seen) VALUES (?,?,?,?,?)"
            " ON CONFLICT(sha256) DO UPDATE SET last_seen = excluded.last_seen, purged_at = NULL",
            (sha256, size, path, now, now))

    def original(self, sha256: str) -> Any | None:
        return self.cur.execute("SELECT purged_at FROM quarantine WHERE sha256 = ?", (sha256,)).fetchone()

    def mark_purged(self, sha256: str, now: float) -> None:
        self.cur.execute("UPDATE quarantine SET purged_at = ? WHERE sha256 = ?", (now, sha256))

    def claim(self, job_id: int, attempts: int, policy: str, retention_days: int, engine: str) -> bool:
        """A worker takes the job: 'processing', with the policy and engine that will judge it. False when
        it is no longer queued at the attempt before (another serve node claimed it first)."""
        # A fenced node (its jobs taken over while it was frozen) claims nothing more.
        alive, args = (" AND EXISTS (SELECT 1 FROM nodes WHERE id = ? AND state = 'alive')", (self.owner,)) \
            if self.owner is not None else ("", ())
        cur = self.cur.execute(
            "UPDATE jobs SET status = 'processing', attempts = ?, policy = ?, retention_days = ?, started_at = ?,"
            " engine = ?, owner = ? WHERE id = ? AND status = 'queued' AND attempts = ?" + alive,
            (attempts, policy, retention_days, time.time(), engine, self.owner, job_id, attempts - 1, *args))
        return cur.rowcount == 1

    def requeue(self, job_id: int) -> None:
        """Back to the queue after a claim whose file never reached a worker (the executor refused it: the
        broker down): the attempt is given back, so an outage of the broker waits instead of using up the
        attempts and blocking the file as if processing had been interrupted."""
        mine, args = self._mine("processing")
        self.cur.execute("UPDATE jobs SET status = 'queued', attempts = attempts - 1 WHERE id = ? AND attempts > 0"
                         + mine, (job_id, *args))

    def requeue_if_processing(self, job_id: int) -> None:
        mine, args = self._mine()
        self.cur.execute("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'processing'" + mine,
                         (job_id, *args))

    def requeue_all_processing(self) -> None:
        # A too-large notice has no original to process: recovery delivers its notice instead.
        mine, args = self._mine()
        self.cur.execute("UPDATE jobs SET status = 'queued' WHERE status = 'processing' AND source != 'too_large'"
                         + mine, args)

    def add_too_large(self, r: dict[str, Any], result: dict[str, Any]) -> int:
        """A file left in the dropbox for its size: a job with its blocked result, for the notice alone."""
        cur = self.cur.execute(
            "INSERT INTO jobs(status, source, channel, name, subdir, drop_path, drop_sig, size, policy, result,"
            " verdict, received_at, owner) VALUES ('processing','too_large',?,?,?,?,?,?,?,?,'blocked',?,?)",
            (r["channel"], r["name"], r["subdir"], r["drop_path"], r["drop_sig"], r["size"], r["policy"],
             json.dumps(result, ensure_ascii=False), time.time(), self.owner))
        return int(cur.lastrowid)

    def too_large_known(self, drop_path: str | bytes, drop_sig: str) -> bool:
        """Whether this very file (path and signature) already has its too-large notice."""
        return self.cur.execute("SELECT 1 FROM jobs WHERE source = 'too_large' AND drop_path = ? AND drop_sig = ?",
                                (drop_path, drop_sig)).fetchone() is not None

    def requeue_without_verdict(self, job_id: int) -> None:
        """Back to the queue with the verdict and plan forgotten (its cached output went missing)."""
        mine, args = self._mine()
        self.cur.execute("UPDATE jobs SET status = 'queued', verdict = NULL, result = NULL, plan = NULL,"
                         " reused_from = NULL WHERE id = ?" + mine, (job_id, *args))

    def commit_verdict(self, job_id: int, result: dict[str, Any], plan: dict[str, Any], reused_from: int | None,
                       inbox_dir: str) -> None:
        """Verdict and delivery plan, committed before any byte reaches the inbox: 'delivering'."""
        mine, args = self._mine("processing")
        cur = self.cur.execute(
            "UPDATE jobs SET status = 'delivering', verdict = ?, result = ?, plan = ?, reused_from = ?, inbox_dir = ?,"
            " processed_at = ? WHERE id = ?" + mine,
            (result["verdict"], json.dumps(result, ensure_ascii=False), json.dumps(plan, ensure_ascii=False),
             reused_from, inbox_dir, time.time(), job_id, *args))
        self._fenced(cur, job_id, "verdict")

    def set_plan(self, job_id: int, plan: dict[str, Any]) -> None:
        mine, args = self._mine("delivering")
        cur = self.cur.execute("UPDATE jobs SET plan = ? WHERE id = ?" + mine,
                               (json.dumps(plan, ensure_ascii=False), job_id, *args))
        self._fenced(cur, job_id, "plan")

    def finish(self, job_id: int, status: str, delivered: list[str]) -> None:
        """Final: 'delivered' or 'blocked', with the names written; a PPAP password is forgotten."""
        mine, args = self._mine("delivering")
        cur = self.cur.execute(
            "UPDATE jobs SET status = ?, delivered = ?, finished_at = ?, password = NULL WHERE id = ?" + mine,
            (status, json.dumps(delivered, ensure_ascii=False), time.time(), job_id, *args))
        self._fenced(cur, job_id, "delivery")

    def password_retries(self, tag: str) -> list[Any]:
        """Status, verdict and result of the password retries filed under `tag` (see password_retry.retry_tag)."""
        return self.cur.execute("SELECT status, verdict, result FROM jobs WHERE source = 'console' AND drop_path = ?",
                                (tag,)).fetchall()

    def add_password_retry(self, job: Any, tag: str, password: str) -> int:
        """A queued job for the quarantined original of `job`, with its received_at (same dated folder,
        same retention); not tied to its submission."""
        cur = self.cur.execute(
            "INSERT INTO jobs(status, source, channel, name, subdir, drop_path, size, sha256, quarantine,"
            " password, received_at, source_key, mail_id) VALUES ('queued','console',?,?,?,?,?,?,?,?,?,?,?)",
            (job["channel"], job["name"], job["subdir"], tag, job["size"], job["sha256"],
             job["quarantine"], password, job["received_at"], source_key(job), job["mail_id"]))
        return int(cur.lastrowid)


class Ledger:
    """`target`: the SQLite file (one box) or a postgresql:// URL (the security cloud; the anchor
    then lives at `anchor_path`, this node's state/audit.anchor)."""

    def __init__(self, target: Path | str, anchor_fsync: bool = True, anchor_syslog: bool = False,
                 anchor_path: Path | None = None) -> None:
        self.postgres = db.is_postgres(target)
        self.path: Path | str = str(target) if self.postgres else Path(target)
        state = Path(anchor_path).parent if anchor_path is not None else Path(self.path).parent
        secure_state_dir(state)
        if not self.postgres:
            for suffix in ("", "-wal", "-shm"):  # SQLite gives the -wal/-shm files the database's mode
                p = self.path.with_name(self.path.name + suffix)
                if suffix == "" or p.exists():
                    os.close(os.open(p, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
                    os.chmod(p, 0o600)
        self._lock = threading.RLock()
        self.anchor = audit.Anchor(anchor_path or state / audit.ANCHOR_NAME, anchor_fsync, anchor_syslog)
        self.owner: str | None = None  # this serve node's id once registered (cluster.Node)
        self._conn = db.connect(self.path)
        if not self.postgres:
            # Channel identity in SQL (channels.Scope.sql): rows written before names were normalised match too.
            self._conn.create_function("chkey", 1, _chkey, deterministic=True)
        with self._lock:
            schema.ensure(self._conn)
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')")
            self._start_anchor()

    @property
    def conn(self) -> Any:
        """The connection, for read-only tools (audit verify); hold no transaction on it."""
        return self._conn

    def _start_anchor(self) -> None:
        """A ledger from before the anchor (or a new one) starts its anchor at the current head. One whose
        anchor was removed is not re-anchored silently: verify reports the missing file."""
        if self.anchor.exists():
            os.chmod(self.anchor.path, 0o600)
            return
        if self._conn.execute("SELECT value FROM meta WHERE key = ?", (self._anchor_key(),)).fetchone() is not None:
            log.error("the audit anchor %s is missing; `audit verify` will fail until it is restored",
                      self.anchor.path, extra={"event": "audit.anchor_missing"})
            return
        last = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        os.close(os.open(self.anchor.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        if last is not None:
            self.anchor.append(last[0], last[1])
        self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, '1')", (self._anchor_key(),))

    def _anchor_key(self) -> str:
        """Each node of a shared PostgreSQL ledger keeps an anchor of its own (the heads it committed)."""
        if not self.postgres:
            return "anchor"
        return f"anchor:{socket.gethostname()}:{self.anchor.path.resolve()}"

    def forget_secrets(self) -> None:
        """After a password was cleared: copy the WAL into the database and empty it, so the old
        page images that still hold the password are gone from the disk too."""
        if self.postgres:
            return  # no WAL of ours; PostgreSQL's own WAL and dead tuples are its administrator's (README)
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._lock:
            db.begin_write(self._conn)
            cur = self._conn.cursor()
            t = Tx(cur, self.owner)
            try:
                yield t
            except BaseException:
                db.rollback(self._conn)
                raise
            db.commit(self._conn)
            if t.audited:
                # The group's head, outside the database, before anyone sees the commit as done.
                seq, h = t.audited[-1][:2]
                try:
                    self.anchor.append(seq, h)
                except OSError:  # committed all the same; the next group's head anchors this one too
                    log.exception("cannot append to the audit anchor", extra={"event": "audit.anchor_failed"})
        for seq, h, event, job_id in t.audited:
            # The hash in the operator log anchors the chain outside the database.
            log.info("audit %s", event, extra={"event": "audit", "audit_event": event, "seq": seq,
                                               "job_id": job_id, "hash": h})

    def query(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> Any | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def retry_chain(self, first_id: int, tag: str) -> list[Any]:
        """The first job of a file and its password retries (filed under `tag`), in order."""
        return self.query("SELECT * FROM jobs WHERE id = ? OR (source = 'console' AND drop_path = ?) ORDER BY id",
                          (first_id, tag))

    def receipt_of(self, submission_id: str | None) -> str | None:
        """The receipt number of an e-application, for the clerk's report (None without one)."""
        if not submission_id:
            return None
        try:
            row = self.one("SELECT receipt FROM submissions WHERE id = ?", (submission_id,))
        except db.Error:  # no submissions table: no REST intake ever ran here
            return None
        return row[0] if row else None

    def ping(self) -> bool:
        try:
            return self.one("SELECT 1") is not None
        except db.Error:
            return False

    # ------------------------------------------------------------------ jobs

    def job(self, job_id: int) -> Any | None:
        return self.one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def jobs(self, *statuses: str) -> list[Any]:
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
                    " password, received_at, source_key, mail_id, owner) VALUES ('received',?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r["source"], r["channel"], r["name"], r["subdir"], r["drop_path"], r.get("drop_sig"),
                     r.get("size"), r.get("submission_id"), r.get("password"), r.get("received_at") or now,
                     r.get("source_key") or f"{r['source']}:{r['channel']}", r.get("mail_id"), self.owner))
                ids.append(int(cur.lastrowid))
        return ids

    def mail_recipients(self, mail_id: str, channel: str) -> list[str]:
        """The envelope recipients of a mail that belong to `channel`, in envelope order."""
        return [r[0] for r in self.query("SELECT address FROM mail_rcpts WHERE mail_id = ? AND channel = ?"
                                         " ORDER BY n", (mail_id, channel))]

    def mail(self, mail_id: str) -> Any | None:
        return self.one("SELECT * FROM mails WHERE id = ?", (mail_id,))

    def queued_page(self, after: int, limit: int, source: str | None = None) -> list[Any]:
        """Queued jobs with an id above `after`, oldest first (only those of `source`, if given)."""
        if source is None:
            return self.query("SELECT * FROM jobs WHERE status = 'queued' AND id > ? ORDER BY id LIMIT ?",
                              (after, limit))
        return self.query("SELECT * FROM jobs WHERE status = 'queued' AND source_key IS ? AND id > ? ORDER BY id"
                          " LIMIT ?", (source, after, limit))

    def queued_sources(self) -> list[tuple[str | None, int]]:
        """Each source with queued work and the id of its oldest queued job."""
        return [(r[0], r[1]) for r in self.query(
            "SELECT source_key, MIN(id) FROM jobs WHERE status = 'queued' GROUP BY source_key")]

    def reuse_candidates(self, sha256: str, policy: str, engine: str, exclude: int,
                         delivering: bool = False) -> list[Any]:
        """Newest jobs with a result for this content, policy and engine (final ones; with `delivering`
        also those whose committed plan waits for a delivery retry)."""
        states = "('delivered','blocked','delivering')" if delivering else "('delivered','blocked')"
        return self.query(
            f"SELECT * FROM jobs WHERE sha256 = ? AND policy = ? AND engine = ? AND status IN {states}"
            " AND result IS NOT NULL AND id != ? ORDER BY id DESC LIMIT 20", (sha256, policy, engine, exclude))

    def purgeable(self, now: float, sha256: str | None = None) -> list[Any]:
        """Originals whose every job is final and past its retention (or only `sha256`, if so)."""
        if sha256 is None:
            return self.query(_PURGEABLE, {"now": now})
        return self.query(_PURGEABLE + " AND q.sha256 = :sha", {"now": now, "sha": sha256})

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


def secure_state_dir(path: Path) -> None:
    """state/ holds the ledger, the anchor, sessions and keys: 0700 (files in it are 0600)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _chkey(name: Any) -> Any:
    return channel_name(name) if isinstance(name, str) else name


def source_key(job: Any) -> str:
    """Who sent a job, for fair dispatch: its recorded source_key, else (older rows) source and channel."""
    try:
        key = job["source_key"]
    except (IndexError, KeyError):
        key = None
    return key or f"{job['source']}:{job['channel']}"


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
