"""The appliance: intake -> quarantine -> ledger -> executor -> delivery, and crash recovery.

Crash safety, step by step (every arrow is durable before the next step starts):
intake   row 'received' (dropbox path) -> rename into work/intake/<id> -> sha256 recorded
         -> rename into quarantine/<sha> -> row 'queued' + audit 'intake' (one transaction);
         files that are ready together take each step together (shared commits and fsyncs)
process  row 'processing' -> worker writes into work/jobs/<id>-<attempt>/ -> outputs moved
         into the result cache state/results/<sha>/<policy>/<ext>/ -> handed to the delivery
         thread (the job stays 'processing' until then; the worker already takes the next file)
deliver  plan (names, hashes) + verdict + audit 'verdict' committed as 'delivering'
         -> each file: temp name, fsync, link to final name; then one fsync of the directory
         -> row 'delivered'/'blocked' + audit 'delivery' (one transaction)
         If the inbox cannot be written meanwhile, the job stays 'delivering' and the delivery
         thread replays the same plan with backoff (audit 'delivery.failed' once, 'delivery.resumed').
`recover()` runs at start, before anything else, and finishes or undoes each step.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from cdr import engine_fingerprint
from cdr.model import BLOCKED, FileResult, Threat
from cdr.policy import Policy, load_policy
from cdr.worker import Job

from . import delivery
from .config import Config
from .executor import Executor, LocalExecutor
from .files import clean_name, fsync_dir, hash_file
from .intake import (
    UNPROVEN_FACTOR,
    DropboxWatcher,
    NotTaken,
    StillWriting,
    copy_out,
    leases_for_others,
    open_dir_beneath,
    stat_beneath,
    unlink_at,
    unlink_beneath,
)
from .ledger import Ledger
from .metrics import Metrics
from .quarantine import Quarantine

log = logging.getLogger("transfer_agent.service")

# Test hook (like SQLite's fault injection): "NAME" or "NAME:N" kills this process with
# SIGKILL the N-th time the code passes the point NAME. Unset in production.
_CRASH = os.environ.get("TRANSFER_AGENT_CRASHPOINT", "")
_CRASH_COUNTS: dict[str, int] = {}


def crashpoint(name: str) -> None:
    if not _CRASH:
        return
    point, _, nth = _CRASH.partition(":")
    if point != name:
        return
    _CRASH_COUNTS[name] = _CRASH_COUNTS.get(name, 0) + 1
    if _CRASH_COUNTS[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class AlreadyRunning(RuntimeError):
    pass


@dataclass
class Arrival:
    """A complete file to take in (see `Service.accept`)."""

    path: Path
    source: str
    channel: str
    name: str
    subdir: str = ""
    submission_id: str | None = None
    password: str | None = None


@dataclass
class _Retry:
    """A job whose committed plan could not be carried out: the delivery thread replays it when due."""

    key: tuple[str, str, str] | None  # dedup key held meanwhile (the plan reads the result cache)
    channel: str | None  # a delivery that works on this channel again ends the others' backoff
    failures: int
    first_failed: float  # wall clock
    due: float  # monotonic
    error: str


@dataclass
class _Inflight:
    future: Future
    key: tuple[str, str, str]
    out_dir: Path
    started: float


def claimed_ext(name: str) -> str:
    """The extension the sender claims (detection depends on it, so dedup does too)."""
    n = name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if n.endswith(double):
            return double
    i = n.rfind(".")
    return n[i:] if i > 0 else ""


def reuse_name(new: str, first: str, cached: str) -> str:
    """Name a reused output after the new sender's name, as the worker would have."""
    if cached.startswith(first):
        return new + cached[len(first):]
    ext = claimed_ext(first)
    s1 = first[: len(first) - len(ext)] if ext else first
    s2 = new[: len(new) - len(ext)] if ext and new.lower().endswith(ext) else new
    if cached.startswith(s1):
        return s2 + cached[len(s1):]
    i = cached.rfind(".")
    return s2 + (cached[i:] if i > 0 else "")


# Folders the appliance itself creates in a delivery folder: a receipt's bundle (REST intake) and
# approved originals. A sender's own folder of that name must not land in (or fake) one of them.
_RESERVED_DIR = re.compile(r"\d{8}-\d{4,}|originals", re.I)
# A sender's folder tree is kept this deep and this long (bytes); deeper files land in the last kept
# folder, so the inbox path always fits the file system however deep the drop was.
MAX_SUBDIR_DEPTH = 8
MAX_SUBDIR_BYTES = 512


def _drop_subdir(parts: tuple[str, ...]) -> str:
    kept: list[str] = []
    size = 0
    for raw in parts[:MAX_SUBDIR_DEPTH]:
        part = clean_name(raw)
        if _RESERVED_DIR.fullmatch(part):
            part = "_" + part
        size += len(part.encode("utf-8")) + 1
        if size > MAX_SUBDIR_BYTES:
            break
        kept.append(part)
    return "/".join(kept)


def retry_tag(job: Any) -> str:
    """What password retries of this job's file are filed under (their drop_path): the first job
    of the file, so that retries of a retry belong to the same chain."""
    dp = job["drop_path"]
    if job["source"] == "console" and isinstance(dp, str) and dp.startswith("retry of job "):
        return dp
    return f"retry of job {job['id']}"


class RetryRefused(Exception):
    """A password retry that cannot be done; `code` names why (for the console's message)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _db_path(path: Path) -> str | bytes:
    """A path as SQLite can store it: the raw bytes (a BLOB) when the name is not valid UTF-8
    (a CP932 name written by an old client); os.fsdecode turns either back into the path."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return text


def _sig(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


# Blocked results that say nothing about the content: never reused for identical files.
_TRANSIENT = ("worker.", "file.timeout")
# Results that depended on a password (given or missing) are not reused for other submissions.
_ENCRYPTION = ("encrypted",)


def _all_threats(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Threats of a result and of every nested member (archive children)."""
    found = list(result.get("threats", []))
    for child in result.get("children", []):
        found.extend(_all_threats(child))
    return found


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", part) or "_"


class Service:
    def __init__(self, cfg: Config, executor_factory: Callable[[int], Executor] | None = None) -> None:
        self.cfg = cfg
        for d in (cfg.dropbox, cfg.inbox, cfg.quarantine, cfg.state, cfg.work / "intake", cfg.work / "jobs"):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(cfg.state / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise AlreadyRunning(f"another transfer-agent is running on {cfg.data_dir}") from None
        self.ledger = Ledger(cfg.ledger_path)
        self.quarantine = Quarantine(cfg.quarantine, cfg.data_dir, cfg.fsync)
        self.results_root = cfg.state / "results"
        self.metrics = Metrics()
        self.default_policy = load_policy(cfg.policy)
        self.channel_policies = {ch: load_policy(p) for ch, p in cfg.channel_policies.items()}
        self._executor_factory = executor_factory or (lambda n: LocalExecutor(n))
        self.executor: Executor | None = None
        self.delivery_lock = threading.RLock()  # anything that writes into the inbox takes it
        self.on_final: list[Callable[[int], None]] = []  # called with the job id once final
        self._stop = threading.Event()
        # Finished job ids, and None to wake the processor (new work queued, stop): it blocks on this.
        self._done: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._inflight: dict[int, _Inflight] = {}
        self.watcher = DropboxWatcher(cfg, self._on_dropped)
        # Verdicts to commit and deliver, in order: (job id, dedup key or None, _finish arguments).
        # Delivery runs in its own thread so that a freed worker gets its next file at once.
        self._deliveries: queue.SimpleQueue[tuple[int, tuple[str, str, str] | None, tuple, dict] | None] = \
            queue.SimpleQueue()
        self._finishing: dict[tuple[str, str, str], int] = {}  # dedup keys waiting in _deliveries
        self._finishing_lock = threading.Lock()
        # Keys held only because their job waits for a delivery retry: identical content may reuse the
        # committed result meanwhile (_dispatch), instead of waiting for the inbox to come back.
        self._retry_keys: dict[tuple[str, str, str], int] = {}
        # Jobs waiting for a delivery retry; only the delivery thread (and recover() before it) changes it.
        self._retries: dict[int, _Retry] = {}
        self._oversize: dict[str, str] = {}  # dropbox path -> signature, over the size limit
        self._engine_ids: dict[str, str] = {}  # policy label -> engine_id
        self._processor = threading.Thread(target=self._process_loop, name="processor", daemon=True)
        self._deliverer = threading.Thread(target=self._delivery_loop, name="delivery", daemon=True)
        self._maint = threading.Thread(target=self._maintenance_loop, name="maintenance", daemon=True)
        self.metrics.bind(self.ledger.queue_depth, lambda: len(self._inflight), self.ledger.quarantine_bytes,
                          self.components())
        Gauge("transfer_delivery_retry_waiting", "Jobs whose delivery failed and waits for a retry",
              registry=self.metrics.registry).set_function(lambda: len(self._retries))

    # ------------------------------------------------------------------ lifecycle

    def policy_for(self, channel: str) -> Policy:
        return self.channel_policies.get(channel, self.default_policy)

    def engine_id(self, policy: Policy) -> str:
        """Who made a result: the engine's fingerprint and the policy's content (a policy edited
        without a new version still gets fresh results)."""
        known = self._engine_ids.get(policy.label)
        if known is None:
            body = json.dumps(policy.to_dict(), sort_keys=True, ensure_ascii=False).encode()
            known = self._engine_ids[policy.label] = \
                f"{engine_fingerprint()}/{hashlib.sha256(body).hexdigest()[:12]}"
        return known

    def start(self) -> None:
        with self.ledger.tx() as t:
            t.audit("service.start", {"policy": self.default_policy.label, "workers": self.cfg.worker_count,
                                      "channels": {c: p.label for c, p in self.channel_policies.items()}})
        self.recover()
        self.executor = self._executor_factory(self.cfg.worker_count)
        self._deliverer.start()
        self._processor.start()
        self._maint.start()
        self.watcher.start()
        log.info("service started", extra={"event": "service.start", "data_dir": str(self.cfg.data_dir),
                                           "policy": self.default_policy.label, "workers": self.cfg.worker_count})
        if not leases_for_others():
            log.warning("no CAP_LEASE: a dropped file owned by another user cannot be proven closed; such"
                        f" files wait {UNPROVEN_FACTOR} x stable_seconds without a close event (grant CAP_LEASE)",
                        extra={"event": "service.no_lease"})

    def stop(self) -> None:
        """Stop intake, let in-flight files finish (up to the grace time), requeue the rest."""
        log.info("stopping", extra={"event": "service.stopping", "inflight": len(self._inflight)})
        self._stop.set()
        self._kick()
        self.watcher.stop()
        if self._processor.is_alive():
            self._processor.join(self.cfg.shutdown_grace_seconds + 30)
        # The processor has handed over its last result: deliver what is queued, then stop.
        self._deliveries.put(None)
        if self._deliverer.is_alive():
            self._deliverer.join(60)
        if self._maint.is_alive():
            self._maint.join(10)
        if self.executor is not None:
            closer = threading.Thread(target=self.executor.close, daemon=True)
            closer.start()
            closer.join(10)
        counts = self.ledger.counts()
        with self.ledger.tx() as t:
            t.audit("service.stop", {"jobs": counts["jobs"]})
        log.info("service stopped", extra={"event": "service.stop", **counts})
        self.ledger.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def components(self) -> dict[str, Callable[[], bool]]:
        return {
            "watcher": self.watcher.alive,
            "workers": lambda: (self.executor is not None and self.executor.healthy() and self._processor.is_alive()
                                and self._deliverer.is_alive()),
            "ledger": self.ledger.ping,
        }

    def health(self) -> dict[str, bool]:
        return {name: bool(fn()) for name, fn in self.components().items()}

    def health_notes(self) -> list[str]:
        """Conditions that do not stop the service but need an operator (/healthz reports 'degraded')."""
        notes = []
        waiting = len(self._retries)
        if waiting:
            notes.append(f"{waiting} job(s) waiting for a delivery retry (inbox not writable? see log event"
                         " deliver.retry)")
        for key, sig in list(self._oversize.items()):
            try:
                if _sig(stat_beneath(self.cfg.dropbox, Path(key))) == sig:
                    continue
            except (OSError, NotTaken, ValueError):
                pass
            self._oversize.pop(key, None)  # removed (or changed) by the sender or the operator
        if self._oversize:
            notes.append(f"{len(self._oversize)} file(s) in the dropbox are over the size limit and were not"
                         " taken (see log event intake.too_large)")
        return notes

    # ------------------------------------------------------------------ password retry (PPAP)

    def retry_with_password(self, job_id: int, password: str, actor: str) -> int:
        """Process a file blocked for want of a password again, from its quarantined original, with the
        password a clerk was given (PPAP: it came by another way). Returns the new job's id; the new
        result is delivered next to the blocked notice like any job. Raises RetryRefused."""
        if not password or len(password) > 1024:
            raise RetryRefused("bad_password")
        with self.quarantine.lock, self.ledger.tx() as t:
            row = t.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise RetryRefused("not_found")
            result = json.loads(row["result"]) if row["result"] else {}
            wants = row["status"] == "blocked" and any(
                th.get("action") == "blocked" and str(th.get("id", "")).endswith(".encrypted")
                for th in result.get("threats", []))
            if not wants:
                raise RetryRefused("not_encrypted")
            # A chain of retries is judged as one: one at a time, and none once the file is delivered.
            tag = retry_tag(row)
            for other in t.execute("SELECT status, verdict FROM jobs WHERE source = 'console' AND drop_path = ?",
                                   (tag,)):
                if other["status"] not in ("delivered", "blocked"):
                    raise RetryRefused("retry_running")
                if other["verdict"] != "blocked":
                    raise RetryRefused("retry_done")
            q = t.execute("SELECT purged_at FROM quarantine WHERE sha256 = ?", (row["sha256"],)).fetchone()
            if q is None or q["purged_at"] is not None or not self.quarantine.path_for(row["sha256"]).is_file():
                raise RetryRefused("purged")
            # Not tied to the submission (its status and manifest stay as the applicant was told).
            # received_at is the original's: the result lands in the same dated folder as the notice,
            # and the retry does not extend how long the original is kept.
            cur = t.execute(
                "INSERT INTO jobs(status, source, channel, name, subdir, drop_path, size, sha256, quarantine,"
                " password, received_at) VALUES ('queued','console',?,?,?,?,?,?,?,?,?)",
                (row["channel"], row["name"], row["subdir"], tag, row["size"], row["sha256"],
                 row["quarantine"], password, row["received_at"]))
            new_id = int(cur.lastrowid)
            t.audit("job.password_retry", {"from_job": job_id, "name": row["name"], "channel": row["channel"]},
                    job_id=new_id, actor=actor)
        log.info("processing again with a password", extra={"event": "job.password_retry", "job_id": new_id,
                                                             "from_job": job_id, "actor": actor})
        self._kick()
        return new_id

    # ------------------------------------------------------------------ intake

    def _on_dropped(self, paths: list[Path]) -> None:
        arrivals = []
        for path in paths:
            parts = path.relative_to(self.cfg.dropbox).parts
            channel = clean_name(parts[0]) if len(parts) > 1 else self.cfg.default_channel
            subdir = _drop_subdir(parts[1:-1])
            arrivals.append(Arrival(path, source="dropbox", channel=channel, name=clean_name(parts[-1]),
                                    subdir=subdir))
        self.accept_many(arrivals)

    def accept(self, path: Path, *, source: str, channel: str, name: str, subdir: str = "",
               submission_id: str | None = None, password: str | None = None) -> int | None:
        """Take a complete file (same file system as the data dir) into quarantine; returns the job id.

        Used by the dropbox watcher and by other intake channels (REST uploads staged under
        work/). The file is gone from `path` afterwards. None if it vanished meanwhile.
        """
        arrival = Arrival(path, source=source, channel=channel, name=name, subdir=subdir,
                          submission_id=submission_id, password=password)
        return self.accept_many([arrival], strict=True)[0]

    def accept_many(self, arrivals: list[Arrival], strict: bool = False) -> list[int | None]:
        """`accept` for a group of files, step by step: each step is committed (or fsynced) for the
        whole group before the next one starts, so the group shares its commits and directory fsyncs
        while every file keeps the order of durable steps that `recover()` relies on.

        A file that fails is logged and left for recovery (or the next walk); with `strict` the first
        error is raised instead (single-file callers)."""
        ids: list[int | None] = [None] * len(arrivals)
        rows = []
        for i, a in enumerate(arrivals):
            try:
                st = stat_beneath(self.cfg.dropbox, a.path) if a.source == "dropbox" else os.lstat(a.path)
            except FileNotFoundError:
                continue
            except NotTaken as exc:
                log.warning("not taken: reached through a symbolic link", extra={"event": "intake.skip",
                                                                                 "path": str(a.path), "why": str(exc)})
                continue
            if a.source == "dropbox" and self._too_large(a, st):
                continue
            rows.append((i, dict(source=a.source, channel=a.channel, name=a.name, subdir=a.subdir,
                                 drop_path=_db_path(a.path), size=st.st_size, drop_sig=_sig(st),
                                 submission_id=a.submission_id, password=a.password)))
        if not rows:
            return ids
        for (i, _), jid in zip(rows, self.ledger.insert_received_many([r for _, r in rows]), strict=True):
            ids[i] = jid
            crashpoint("intake.row")
        # Out of the sender's reach: renames; the directories are fsynced once for the group.
        taken: list[tuple[int, Path]] = []
        gone: list[int] = []
        dirs: set[Path] = set()
        for i, a in enumerate(arrivals):
            jid = ids[i]
            if jid is None:
                continue
            intake = self.cfg.work / "intake" / str(jid)
            try:
                self._take(a.path, intake, own=a.source != "dropbox")
            except FileNotFoundError:
                gone.append(jid)
                ids[i] = None
                continue
            except StillWriting as exc:
                gone.append(jid)  # the watcher finds it again at its next walk
                ids[i] = None
                log.info("still being written, left in the dropbox", extra={"event": "intake.busy",
                                                                            "path": str(a.path), "why": str(exc)})
                continue
            except NotTaken as exc:
                gone.append(jid)  # left where it is; nothing was copied
                ids[i] = None
                log.warning("not taken", extra={"event": "intake.skip", "path": str(a.path), "why": str(exc)})
                continue
            except Exception:
                ids[i] = None  # row stays 'received': recovery takes the file at the next start
                if strict:
                    raise
                log.exception("intake failed", extra={"event": "error", "job_id": jid, "path": str(a.path)})
                continue
            dirs.add(a.path.parent)
            taken.append((jid, intake))
            crashpoint("intake.renamed")
        if self.cfg.fsync and taken:
            for d in sorted(dirs | {self.cfg.work / "intake"}):
                fsync_dir(d)
        if gone:
            with self.ledger.tx() as t:
                for jid in gone:
                    t.execute("DELETE FROM jobs WHERE id = ? AND status = 'received'", (jid,))
        try:
            self._finish_intake_many(taken, strict)
        except Exception:
            if strict:
                raise
            log.exception("intake failed", extra={"event": "error", "job_ids": [j for j, _ in taken]})
        return ids

    def _too_large(self, a: Arrival, st: os.stat_result) -> bool:
        """Over the channel policy's size limit: left in the dropbox, never copied (a sparse file of
        terabytes would fill the disk), reported once per file and on /healthz until it is gone."""
        limit = self.policy_for(a.channel).limits.max_file_bytes
        if st.st_size <= limit:
            return False
        key, sig = str(a.path), _sig(st)
        if self._oversize.get(key) != sig:
            self._oversize[key] = sig
            log.warning("over the size limit, left in the dropbox", extra={
                "event": "intake.too_large", "path": key, "size": st.st_size, "limit": limit})
            with self.ledger.tx() as t:
                t.audit("intake.too_large", {"channel": a.channel, "name": a.name, "subdir": a.subdir,
                                             "size": st.st_size, "limit": limit})
        return True

    def _take(self, src: Path, intake: Path, own: bool = False) -> None:
        """Move the file out of reach of the sender: a copy into a new file of ours, then unlink.

        A dropbox file is reached from the dropbox folder one component at a time, never through a
        symbolic link, and removed through the same folder descriptor, only if the name still holds
        the file that was copied. `own`: a file the service staged itself (REST uploads), renamed
        when on the same file system. The caller fsyncs both directories afterwards."""
        if own:
            try:
                os.rename(src, intake)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        root = src.parent if own else self.cfg.dropbox
        parts = src.relative_to(root).parts
        part = intake.with_name(intake.name + ".copy")
        part.unlink(missing_ok=True)  # from a crash before the rename below
        dfd = open_dir_beneath(root, parts[:-1])
        try:
            st = copy_out(dfd, parts[-1], part)
            os.rename(part, intake)
            fsync_dir(intake.parent)
            crashpoint("intake.copied")
            # Recovery removes it if we die before this; a file put under the name meanwhile stays.
            if not unlink_at(dfd, parts[-1], same_as=st) and os.path.lexists(src):
                log.warning("the name holds another file now: left for the next walk",
                            extra={"event": "intake.replaced", "path": str(src)})
        finally:
            os.close(dfd)

    def _finish_intake(self, job_id: int, intake: Path) -> None:
        self._finish_intake_many([(job_id, intake)], strict=True)

    def _finish_intake_many(self, taken: list[tuple[int, Path]], strict: bool = True) -> None:
        """Hash (sha recorded, committed) -> into quarantine (fsynced) -> 'queued', for a group."""
        hashed: list[tuple[int, Path, str, int]] = []
        for jid, intake in taken:
            try:
                sha, size = hash_file(intake, fsync=self.cfg.fsync)
            except Exception:
                if strict:
                    raise
                log.exception("hashing failed", extra={"event": "error", "job_id": jid})
                continue  # stays in work/intake as 'received': recovery finishes it
            hashed.append((jid, intake, sha, size))
        if not hashed:
            return
        with self.ledger.tx() as t:
            for jid, _, sha, size in hashed:
                t.execute("UPDATE jobs SET sha256 = ?, size = ? WHERE id = ?", (sha, size, jid))
        for _ in hashed:
            crashpoint("intake.hashed")
        with self.quarantine.lock:
            dirs: set[Path] = set()
            for _, intake, sha, _ in hashed:
                dst = self.quarantine.store(intake, sha, fsync=False)
                dirs.update((dst.parent, intake.parent))
                crashpoint("intake.stored")
            if self.cfg.fsync:
                for d in sorted(dirs):
                    fsync_dir(d)
            self._mark_queued_many([jid for jid, _, _, _ in hashed])

    def _mark_queued(self, job_id: int) -> None:
        self._mark_queued_many([job_id])

    def _mark_queued_many(self, job_ids: list[int]) -> None:
        """Originals are in quarantine (durably): the jobs wait for a worker. One transaction."""
        now = time.time()
        done = []
        with self.ledger.tx() as t:
            for job_id in job_ids:
                row = t.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
                sha, size = row["sha256"], row["size"]
                rel = self.quarantine.relpath(sha)
                t.execute("UPDATE jobs SET status = 'queued', quarantine = ? WHERE id = ?", (rel, job_id))
                t.execute("INSERT INTO quarantine(sha256, size, path, first_seen, last_seen) VALUES (?,?,?,?,?)"
                          " ON CONFLICT(sha256) DO UPDATE SET last_seen = excluded.last_seen, purged_at = NULL",
                          (sha, size, rel, now, now))
                t.audit("intake", {"channel": row["channel"], "name": row["name"], "subdir": row["subdir"],
                                   "sha256": sha, "size": size, "source": row["source"],
                                   "submission_id": row["submission_id"]}, job_id=job_id)
                done.append(row)
        for row in done:
            self.metrics.intake.labels(row["channel"]).inc()
            log.info("taken into quarantine", extra={"event": "intake", "job_id": row["id"], "channel": row["channel"],
                                                     "file": row["name"], "sha256": row["sha256"], "size": row["size"]})
        self._kick()

    def _kick(self) -> None:
        """Wake the processor now (a job was queued, or we stop) instead of at its next poll."""
        self._done.put(None)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Bring every unfinished job back to a consistent state (runs before any thread starts)."""
        for row in self.ledger.jobs("received"):
            # One job that cannot be recovered now must not keep the service from starting: it stays
            # as it is (nothing delivered) and is tried again at the next start.
            try:
                self._recover_intake(row)
            except Exception:  # noqa: BLE001 - logged with the job id, retried at the next start
                log.exception("cannot recover intake", extra={"event": "recover.failed", "job_id": row["id"]})
        rows = self.ledger.jobs("processing")
        if rows:
            with self.ledger.tx() as t:
                t.execute("UPDATE jobs SET status = 'queued' WHERE status = 'processing'")
            log.info("requeued interrupted jobs", extra={"event": "recover.requeue",
                                                         "job_ids": [r["id"] for r in rows]})
        for row in self.ledger.jobs("delivering"):
            log.info("completing interrupted delivery", extra={"event": "recover.deliver", "job_id": row["id"]})
            try:
                # Inside the try: an inbox that cannot be written must not keep the service from starting.
                delivery.remove_temps(json.loads(row["plan"]), self.cfg.data_dir, row["id"])
                self._deliver(row["id"])
            except Exception as exc:  # noqa: BLE001 - stays 'delivering'; the delivery thread retries it
                log.exception("cannot complete delivery", extra={"event": "recover.failed", "job_id": row["id"]})
                if self._status(row["id"]) == "delivering":
                    key = (row["sha256"], row["policy"], claimed_ext(row["name"]))
                    self._count(self._finishing, key, 1)  # identical content waits, as while delivering
                    self._schedule_retry(row["id"], key, exc, None)
        shutil.rmtree(self.cfg.work / "jobs", ignore_errors=True)
        (self.cfg.work / "jobs").mkdir(parents=True, exist_ok=True)
        for part in (self.cfg.work / "intake").glob("*.copy"):
            part.unlink()  # a copy whose job row is gone or already re-taken
        for part in self.cfg.inbox.rglob(".*.tmp-orig"):
            part.unlink(missing_ok=True)  # an approved original whose copy was cut short
        stray = [p.name for p in (self.cfg.work / "intake").iterdir()]
        if stray:
            log.error("files in work/intake without a job row (left in place)",
                      extra={"event": "recover.stray", "files": stray})

    def _recover_intake(self, row: Any) -> None:
        jid = row["id"]
        intake = self.cfg.work / "intake" / str(jid)
        drop_path = Path(os.fsdecode(row["drop_path"]))
        dropbox = row["source"] == "dropbox"
        if intake.exists():
            # Intake died between copy and unlink: the same file is still there.
            try:
                if dropbox:
                    st = stat_beneath(self.cfg.dropbox, drop_path)
                    if _sig(st) == row["drop_sig"]:
                        unlink_beneath(self.cfg.dropbox, drop_path, same_as=st)
                elif _sig(os.lstat(drop_path)) == row["drop_sig"]:
                    os.unlink(drop_path)
            except (FileNotFoundError, NotTaken):
                pass
            self._finish_intake(jid, intake)
        elif row["sha256"] and self.quarantine.path_for(row["sha256"]).exists():
            with self.quarantine.lock:
                self._mark_queued(jid)
        elif os.path.lexists(drop_path):
            try:
                self._take(drop_path, intake, own=not dropbox)
            except (StillWriting, NotTaken, FileNotFoundError) as exc:
                with self.ledger.tx() as t:  # left where it is: the watcher decides again
                    t.execute("DELETE FROM jobs WHERE id = ?", (jid,))
                log.warning("not taken after restart", extra={"event": "recover.skip", "job_id": jid,
                                                              "path": str(drop_path), "why": str(exc)})
                return
            if self.cfg.fsync:
                fsync_dir(drop_path.parent)
                fsync_dir(intake.parent)
            self._finish_intake(jid, intake)
        else:
            with self.ledger.tx() as t:
                t.execute("DELETE FROM jobs WHERE id = ?", (jid,))
            log.warning("file vanished before intake", extra={"event": "recover.vanished", "job_id": jid,
                                                              "path": str(drop_path)})
            return
        log.info("intake completed after restart", extra={"event": "recover.intake", "job_id": jid})

    # ------------------------------------------------------------------ processing

    def cache_dir(self, sha: str, policy: str, ext: str) -> Path:
        return self.results_root / sha / _safe(policy) / _safe(ext.lstrip(".") or "_")

    def _process_loop(self) -> None:
        deadline: float | None = None
        while True:
            if self._stop.is_set():
                if not self._inflight:
                    return
                if deadline is None:
                    deadline = time.monotonic() + self.cfg.shutdown_grace_seconds
                elif time.monotonic() > deadline:
                    self._requeue_inflight()
                    return
            else:
                self._dispatch_safe()
            try:
                # Event driven: a finished job or a kick wakes us; the timeout is only a safety net.
                jid = self._done.get(timeout=0.1 if self._stop.is_set() else 0.5)
            except queue.Empty:
                continue
            if jid is None:
                continue
            try:
                self._complete(jid)
            except Exception:  # noqa: BLE001
                self.metrics.errors.labels("complete").inc()
                log.exception("completing a job failed", extra={"event": "error", "job_id": jid})

    def _dispatch_safe(self) -> None:
        if self._stop.is_set():
            return
        try:
            self._dispatch()
        except Exception:  # noqa: BLE001 - keep the loop alive; the ledger keeps the state
            self.metrics.errors.labels("dispatch").inc()
            log.exception("dispatch failed", extra={"event": "error"})

    def _requeue_inflight(self) -> None:
        ids = list(self._inflight)
        with self.ledger.tx() as t:
            for jid in ids:
                t.execute("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'processing'", (jid,))
        self._inflight.clear()
        if isinstance(self.executor, LocalExecutor):
            self.executor.abort()
        log.warning("requeued unfinished jobs at shutdown", extra={"event": "shutdown.requeue", "job_ids": ids})

    def _dispatch(self) -> None:
        assert self.executor is not None
        free = self.executor.capacity - len(self._inflight)
        if free <= 0:
            return
        # Identical content running or being delivered now: it waits and is answered from the cache.
        running = {inf.key for inf in self._inflight.values()}
        busy = set(running)
        with self._finishing_lock:
            busy.update(self._finishing)
            held = set(self._retry_keys) - running
        for row in self._queued(free):
            if free <= 0 or self._stop.is_set():
                return
            policy = self.policy_for(row["channel"])
            ext = claimed_ext(row["name"])
            key = (row["sha256"], policy.label, ext)
            if key in busy and key not in held:
                continue  # identical content running or being delivered now: wait and reuse its result
            attempts = row["attempts"] + 1
            with self.ledger.tx() as t:
                t.execute("UPDATE jobs SET status = 'processing', attempts = ?, policy = ?, retention_days = ?,"
                          " started_at = ?, engine = ? WHERE id = ?",
                          (attempts, policy.label, policy.retention_days, time.time(), self.engine_id(policy),
                           row["id"]))
            # A password changes the outcome (PPAP), so such jobs are never answered from the cache.
            # A key held by a delivery retry: reuse its committed result, or else process the file (its
            # result then goes to a cache of its own, see _complete), rather than wait for that inbox.
            if not row["password"] and self._try_reuse(row["id"], key, self.engine_id(policy),
                                                       delivering=key in held):
                continue
            if attempts > self.cfg.max_attempts:
                res = FileResult(source=row["name"], sha256=row["sha256"], size=row["size"] or 0)
                res.threats.append(Threat("worker.interrupted", row["name"], "blocked",
                                          f"interrupted {attempts - 1} times"))
                res.block("処理が繰り返し中断されたため配送を停止しました",
                          "processing was interrupted repeatedly; the file was not delivered")
                self._hand_over(row["id"], None, res.to_dict(), None, None, None, None)
                continue
            out_dir = self.cfg.work / "jobs" / f"{row['id']}-{attempts}"
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            # The quarantine is content-addressed by this hash: the pool need not hash the original again.
            job = Job(src=str(self.cfg.data_dir / row["quarantine"]), name=row["name"], out_dir=str(out_dir),
                      policy=policy.to_dict(), password=row["password"], want_text=policy.text_rendition,
                      sha256=row["sha256"])
            try:
                fut = self.executor.submit(job)
            except Exception:
                with self.ledger.tx() as t:
                    t.execute("UPDATE jobs SET status = 'queued' WHERE id = ?", (row["id"],))
                raise
            self._inflight[row["id"]] = _Inflight(fut, key, out_dir, time.monotonic())
            fut.add_done_callback(lambda _f, jid=row["id"]: self._done.put(jid))
            busy.add(key)
            free -= 1

    def _queued(self, free: int) -> Iterator[Any]:
        """Queued jobs in order, a page at a time: many waiting on one busy key cannot hide the rest."""
        last = 0
        while True:
            rows = self.ledger.query("SELECT * FROM jobs WHERE status = 'queued' AND id > ? ORDER BY id LIMIT ?",
                                     (last, free + 64))
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def _try_reuse(self, job_id: int, key: tuple[str, str, str], engine: str, delivering: bool = False) -> bool:
        """Identical content, same policy version, same claimed extension, made by this engine with
        this policy content: deliver the stored result. `delivering`: also a result whose own
        delivery waits for a retry (committed, its cache in place)."""
        sha, policy, ext = key
        states = "('delivered','blocked','delivering')" if delivering else "('delivered','blocked')"
        for prev in self.ledger.query(
                f"SELECT * FROM jobs WHERE sha256 = ? AND policy = ? AND engine = ? AND status IN {states}"
                " AND result IS NOT NULL AND id != ? ORDER BY id DESC LIMIT 20", (sha, policy, engine, job_id)):
            if claimed_ext(prev["name"]) != ext:
                continue
            result = json.loads(prev["result"])
            if any(t.get("id", "").startswith(_TRANSIENT) or t.get("id", "").endswith(_ENCRYPTION)
                   for t in _all_threats(result)):
                continue
            args = json.loads(prev["plan"]).get("args", {}) if prev["plan"] else {}
            cache = self.cfg.data_dir / args["cache"] if args.get("cache") else self.cache_dir(*key)
            out_name, text_name = result.get("output"), result.get("text_output")
            if result.get("verdict") != BLOCKED and not (out_name and (cache / out_name).is_file()):
                continue
            origin = prev["reused_from"] or prev["id"]
            # The cached output is named after the job that produced it, not after the last reuse.
            first = prev if origin == prev["id"] else self.ledger.job(origin)
            if first is None:
                continue
            self._hand_over(job_id, key, result, cache, out_name, text_name, origin, first_name=first["name"])
            return True
        return False

    def _complete(self, job_id: int) -> None:
        inf = self._inflight.pop(job_id, None)
        if inf is None:
            return
        try:
            res: FileResult = inf.future.result()
        except Exception as exc:  # noqa: BLE001 - fail closed on anything the executor raises
            log.exception("executor failed", extra={"event": "error", "job_id": job_id})
            row = self.ledger.job(job_id)
            res = FileResult(source=row["name"], sha256=row["sha256"] or "", size=row["size"] or 0)
            res.threats.append(Threat("worker.error", row["name"], "blocked", f"{type(exc).__name__}"))
            res.block("処理中にエラーが発生しました", "an internal error occurred while processing")
        self.metrics.process.observe(time.monotonic() - inf.started)
        row = self.ledger.job(job_id)
        if row is None or row["status"] != "processing":
            shutil.rmtree(inf.out_dir, ignore_errors=True)
            return
        result = res.to_dict()
        cache = out_name = text_name = None
        if res.verdict != BLOCKED and res.output:
            cache = self.cache_dir(*inf.key)
            with self._finishing_lock:
                pending = inf.key in self._finishing
            if pending:  # a delivery still reads the shared cache (e.g. one waiting for a retry): keep it
                cache = cache.with_name(f"{cache.name}.job{job_id}")
            out_name = os.path.relpath(res.output, inf.out_dir)
            text_name = os.path.relpath(res.text_output, inf.out_dir) if res.text_output else None
            shutil.rmtree(cache, ignore_errors=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            os.rename(inf.out_dir, cache)
            result["output"], result["text_output"] = out_name, text_name
        else:
            shutil.rmtree(inf.out_dir, ignore_errors=True)
            result["output"] = result["text_output"] = None
        self._hand_over(job_id, inf.key, result, cache, out_name, text_name, None)

    # ------------------------------------------------------------------ delivery

    def _hand_over(self, job_id: int, key: tuple[str, str, str] | None, *args: Any, **kw: Any) -> None:
        """Queue a verdict for the delivery thread. Until it is delivered the job stays 'processing' in
        the ledger (a crash requeues it, as before), and identical content waits to reuse it."""
        self._count(self._finishing, key, 1)
        self._deliveries.put((job_id, key, args, kw))

    def _delivery_loop(self) -> None:
        while True:
            try:
                item = self._deliveries.get(timeout=self._retry_wait())
            except queue.Empty:
                self._retry_due()
                continue
            if item is None:
                self._drop_retries()
                return
            job_id, key, args, kw = item
            self._attempt(job_id, key, functools.partial(self._finish, job_id, *args, **kw), None)
            self._retry_due()  # a steady stream of new files must not starve the retries

    def _attempt(self, job_id: int, key: tuple[str, str, str] | None, fn: Callable[[], None],
                 retry: _Retry | None) -> None:
        """One delivery attempt. A failure after the plan was committed is retried (the key stays held);
        before it, the job goes back to the queue."""
        ok = True
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the ledger keeps the state
            if self._status(job_id) in ("delivering", None):
                self._schedule_retry(job_id, key, exc, retry)
                return
            ok = False
            self.metrics.errors.labels("deliver").inc()
            log.exception("delivering a job failed", extra={"event": "error", "job_id": job_id})
            self._requeue_if_processing(job_id)
        done = self._retries.pop(job_id, None)
        if done is not None:
            self._unhold(done.key)
        if ok and self._retries:
            channel = done.channel if done is not None else self._channel(job_id)
            now = time.monotonic()
            for other in self._retries.values():  # that inbox is likely back: do not wait out the backoff
                if other.channel == channel:
                    other.due = min(other.due, now)
        self._release(key)

    def _count(self, counts: dict[tuple[str, str, str], int], key: tuple[str, str, str] | None, step: int) -> None:
        """Add `step` to a key's count in `_finishing` or `_retry_keys` (a key at zero is removed)."""
        if key is None:
            return
        with self._finishing_lock:
            n = counts.pop(key, 0) + step
            if n > 0:
                counts[key] = n

    def _unhold(self, key: tuple[str, str, str] | None) -> None:
        self._count(self._retry_keys, key, -1)

    def _release(self, key: tuple[str, str, str] | None) -> None:
        if key is not None:
            self._count(self._finishing, key, -1)
            self._kick()  # identical content may now be answered from the cache

    def _field(self, job_id: int, name: str) -> str | None:
        """A column of the job's ledger row; "gone" without a row, None when the ledger cannot say."""
        try:
            row = self.ledger.job(job_id)
        except Exception:  # noqa: BLE001
            return None
        return row[name] if row is not None else "gone"

    def _status(self, job_id: int) -> str | None:
        return self._field(job_id, "status")

    def _channel(self, job_id: int) -> str | None:
        return self._field(job_id, "channel")

    def _schedule_retry(self, job_id: int, key: tuple[str, str, str] | None, exc: Exception,
                        retry: _Retry | None) -> None:
        self.metrics.errors.labels("deliver").inc()
        error = f"{type(exc).__name__}: {exc}"
        if retry is None:
            retry = _Retry(key, self._channel(job_id), 0, time.time(), 0.0, error)
            self._count(self._retry_keys, key, 1)
            # The first failure is audited (later ones only logged): the job is held, not lost.
            try:
                with self.ledger.tx() as t:
                    t.audit("delivery.failed", {"error": error}, job_id=job_id)
            except Exception:  # noqa: BLE001 - the ledger may share the failing disk
                log.exception("cannot audit a failed delivery", extra={"event": "error", "job_id": job_id})
        retry.failures += 1
        delay = min(self.cfg.delivery_retry_max_seconds,
                    self.cfg.delivery_retry_seconds * 2 ** min(retry.failures - 1, 30))
        retry.due = time.monotonic() + delay
        self._retries[job_id] = retry
        log.warning("delivery failed, will retry", exc_info=retry.failures == 1,
                    extra={"event": "deliver.retry", "job_id": job_id, "failures": retry.failures,
                           "retry_in": round(delay, 3), "error": error, "waiting": len(self._retries)})

    def _retry_wait(self) -> float | None:
        """Seconds until the next retry is due (None: nothing to retry, or stopping)."""
        if not self._retries or self._stop.is_set():
            return None
        return max(0.0, min(r.due for r in self._retries.values()) - time.monotonic())

    def _retry_due(self) -> None:
        now = time.monotonic()
        for job_id, retry in sorted(self._retries.items()):
            if self._stop.is_set():
                return  # shutting down: the plans stay committed and are replayed at the next start
            if retry.due <= now:
                self._attempt(job_id, retry.key, functools.partial(self._redeliver, job_id, retry), retry)

    def _redeliver(self, job_id: int, retry: _Retry) -> None:
        status = self._status(job_id)
        if status == "delivering":
            self._deliver(job_id, retry)
        elif status is None:
            raise RuntimeError("ledger unavailable")
        elif status == "processing":  # the verdict was never committed after all
            self._requeue_if_processing(job_id)
        # Any other state: done or requeued meanwhile; _attempt drops the retry.

    def _drop_retries(self) -> None:
        if self._retries:
            log.warning("stopping with deliveries still failing; they are replayed at the next start",
                        extra={"event": "deliver.retry_abandoned", "job_ids": sorted(self._retries)})
        for retry in self._retries.values():
            self._unhold(retry.key)
            self._release(retry.key)
        self._retries.clear()

    def _requeue_if_processing(self, job_id: int) -> None:
        """A job whose verdict was never committed goes back to the queue (max_attempts still applies);
        one already 'delivering' has a committed plan that the next start replays."""
        try:
            with self.ledger.tx() as t:
                t.execute("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'processing'", (job_id,))
        except Exception:  # noqa: BLE001 - the ledger itself is failing: recovery at start handles it
            log.exception("cannot requeue", extra={"event": "error", "job_id": job_id})
            return
        self._kick()

    def _finish(self, job_id: int, result: dict[str, Any], cache: Path | None, out_name: str | None,
                text_name: str | None, reused_from: int | None, first_name: str | None = None) -> None:
        """Commit the verdict and the delivery plan, then deliver."""
        with self.delivery_lock:
            row = dict(self.ledger.job(job_id))
            received = datetime.fromtimestamp(row["received_at"]).strftime("%Y-%m-%d")
            inbox_dir = self.cfg.inbox / row["channel"] / received
            if row["subdir"]:
                inbox_dir = inbox_dir.joinpath(*row["subdir"].split("/"))
            deliver_as = out_name
            if out_name and first_name:
                deliver_as = reuse_name(row["name"], first_name, out_name)
            try:
                plan = delivery.build_plan(data_dir=self.cfg.data_dir, inbox_dir=inbox_dir, job=row, result=result,
                                           cache_dir=cache, out_name=out_name, text_name=text_name,
                                           deliver_as=deliver_as, reused_from=reused_from)
            except delivery.SourceMissing:
                self._requeue(job_id, cache, "cached output missing")
                return
            plan["args"] = {"cache": str(cache.relative_to(self.cfg.data_dir)) if cache else None,
                            "out_name": out_name, "text_name": text_name, "deliver_as": deliver_as}
            threats = sorted({t["id"] for t in result.get("threats", [])})
            with self.ledger.tx() as t:
                t.execute("UPDATE jobs SET status = 'delivering', verdict = ?, result = ?, plan = ?, reused_from = ?,"
                          " inbox_dir = ?, processed_at = ? WHERE id = ?",
                          (result["verdict"], json.dumps(result, ensure_ascii=False),
                           json.dumps(plan, ensure_ascii=False), reused_from,
                           str(inbox_dir.relative_to(self.cfg.data_dir)), time.time(), job_id))
                t.audit("verdict", {"verdict": result["verdict"], "policy": row["policy"], "threats": threats,
                                    "reason_en": result.get("reason_en"), "sha256": row["sha256"],
                                    "reused_from": reused_from}, job_id=job_id)
            crashpoint("deliver.planned")
            self._deliver(job_id)

    def _requeue(self, job_id: int, cache: Path | None, why: str) -> None:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
        with self.ledger.tx() as t:
            t.execute("UPDATE jobs SET status = 'queued', verdict = NULL, result = NULL, plan = NULL,"
                      " reused_from = NULL WHERE id = ?", (job_id,))
        log.warning("job requeued", extra={"event": "requeue", "job_id": job_id, "why": why})
        self._kick()

    def _deliver(self, job_id: int, retry: _Retry | None = None) -> None:
        """Carry out the committed plan; `retry` when earlier attempts failed (audited on success)."""
        with self.delivery_lock:
            row = self.ledger.job(job_id)
            plan = json.loads(row["plan"])
            for _ in range(5):
                try:
                    names = delivery.execute(plan, self.cfg.data_dir, job_id, self.cfg.fsync, crashpoint)
                    break
                except delivery.Conflict as exc:
                    # A planned name was taken by someone else's file: plan again, keep theirs.
                    delivery.remove_temps(plan, self.cfg.data_dir, job_id)
                    log.warning("name taken meanwhile, planning again",
                                extra={"event": "deliver.conflict", "job_id": job_id, "name": str(exc)})
                    plan = self._replan(row, plan)
                except delivery.SourceMissing:
                    delivery.remove_temps(plan, self.cfg.data_dir, job_id)
                    delivery.unlink_delivered(plan, self.cfg.data_dir)
                    args = plan.get("args") or {}
                    self._requeue(job_id, self.cfg.data_dir / args["cache"] if args.get("cache") else None,
                                  "cached output missing or altered")
                    return
            else:
                raise RuntimeError(f"job {job_id}: could not find free names in the inbox")
            crashpoint("deliver.done")
            final = "blocked" if row["verdict"] == BLOCKED else "delivered"
            had_password = row["password"] is not None
            files = [{"name": f["name"], "kind": f["kind"], "sha256": f["sha256"]} for f in plan["files"]]
            with self.ledger.tx() as t:
                t.execute("UPDATE jobs SET status = ?, delivered = ?, finished_at = ?, password = NULL WHERE id = ?",
                          (final, json.dumps(names, ensure_ascii=False), time.time(), job_id))
                t.audit("delivery", {"dir": plan["dir"], "files": files, "verdict": row["verdict"]}, job_id=job_id)
                if retry is not None:
                    t.audit("delivery.resumed", {"failures": retry.failures, "first_error": retry.error,
                                                 "waited_seconds": round(time.time() - retry.first_failed, 1)},
                            job_id=job_id)
        if had_password:
            self.ledger.forget_secrets()
        row = self.ledger.job(job_id)
        self.metrics.files.labels(row["verdict"], row["channel"]).inc()
        self.metrics.latency.observe(max(0.0, row["finished_at"] - row["received_at"]))
        if row["reused_from"]:
            self.metrics.reused.inc()
        if retry is not None:
            log.info("delivery resumed", extra={"event": "deliver.resumed", "job_id": job_id,
                                                "failures": retry.failures})
        log.info("delivered" if final == "delivered" else "blocked, notice delivered",
                 extra={"event": f"job.{final}", "job_id": job_id, "channel": row["channel"], "file": row["name"],
                        "verdict": row["verdict"], "dir": plan["dir"], "main": plan["main"],
                        "reused_from": row["reused_from"]})
        for hook in self.on_final:
            try:
                hook(job_id)
            except Exception:  # noqa: BLE001 - a hook must not undo a delivery
                log.exception("on_final hook failed", extra={"event": "error", "job_id": job_id})

    def _replan(self, row: Any, old: dict[str, Any]) -> dict[str, Any]:
        args = old.get("args") or {}
        cache = self.cfg.data_dir / args["cache"] if args.get("cache") else None
        plan = delivery.build_plan(data_dir=self.cfg.data_dir, inbox_dir=self.cfg.data_dir / old["dir"],
                                   job=dict(row), result=json.loads(row["result"]), cache_dir=cache,
                                   out_name=args.get("out_name"), text_name=args.get("text_name"),
                                   deliver_as=args.get("deliver_as"), reused_from=row["reused_from"])
        plan["args"] = args
        with self.ledger.tx() as t:
            t.execute("UPDATE jobs SET plan = ? WHERE id = ?", (json.dumps(plan, ensure_ascii=False), row["id"]))
        return plan

    # ------------------------------------------------------------------ maintenance

    def purge(self) -> list[str]:
        purged = self.quarantine.purge_expired(self.ledger, self.results_root)
        self.metrics.purged.inc(len(purged))
        return purged

    def _maintenance_loop(self) -> None:
        next_purge = 0.0
        while not self._stop.wait(1.0):
            now = time.monotonic()
            if now >= next_purge:
                next_purge = now + self.cfg.purge_interval_seconds
                try:
                    self.purge()
                except Exception:  # noqa: BLE001
                    self.metrics.errors.labels("purge").inc()
                    log.exception("purge failed", extra={"event": "error"})
            # Job directories an orphaned worker may have recreated after a crash.
            live = {inf.out_dir.name for inf in list(self._inflight.values())}
            for d in (self.cfg.work / "jobs").iterdir():
                try:
                    if d.name not in live and time.time() - d.stat().st_mtime > 600:
                        shutil.rmtree(d, ignore_errors=True)
                except OSError:
                    pass
