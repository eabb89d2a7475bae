"""Intake: taking complete files into quarantine, a group at a time.

Steps (each durable before the next; recovery.py finishes or undoes each after a crash):
row 'received' (where it came from) -> copied into work/intake/<id>, the sender's file removed
-> sha256 recorded -> renamed into quarantine/<sha> -> row 'queued' + audit 'intake' (one
transaction). Files that are ready together take each step together (shared commits and fsyncs).
Dropbox files are reached through dropbox.py (never through a symbolic link); files the service
staged itself (REST uploads) are renamed.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdr.model import FileResult, Threat
from cdr.policy import Policy

from .channels import channel_name
from .config import Config
from .crashpoints import crashpoint, pausepoint
from .dropbox import NotTaken, StillWriting, copy_out, open_dir_beneath, sig, stat_beneath, unlink_at
from .files import clean_name, fsync_dir, hash_file
from .metrics import Metrics
from .quarantine import Quarantine
from .storage import JobStore

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


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
    # When it was received, if before now: an e-application's files take their submission's time, so
    # that they land in its dated bundle folder however late they are handed over (after midnight).
    received_at: float | None = None
    # Who sent it, for fair dispatch (api:<key id>, dropbox:<channel>, mail:<client address>, upload:<link>);
    # None: "<source>:<channel>".
    source_key: str | None = None
    mail_id: str | None = None  # a mail from the SMTP intake: delivered to its recipients as mail

    def __post_init__(self) -> None:
        # The channel's identity is fixed here, once: policy lookup, inbox folder and account
        # bindings all see the same NFKC, case-folded name (channels.py).
        self.channel = channel_name(self.channel)


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


def _mb(n: float) -> str:
    return f"{n / (1 << 20):,.1f} MB"


def too_large_result(name: str, size: int, limit: int) -> dict:
    """The blocked result of a file over the size limit (never copied, never processed)."""
    res = FileResult(source=name, size=size)
    res.threats.append(Threat("file.limit", name, "blocked", f"{size} bytes, limit {limit}"))
    res.block(f"ファイルの大きさ（{_mb(size)}）が上限（{_mb(limit)}）を超えているため、受け取っていません"
              "（ファイルは送信側のフォルダに残っています）",
              f"the file ({_mb(size)}) is larger than the limit of {_mb(limit)} and was not taken (it is still"
              " in the dropbox)")
    return res.to_dict()


def _db_path(path: Path) -> str | bytes:
    """A path as SQLite can store it: the raw bytes (a BLOB) when the name is not valid UTF-8
    (a CP932 name written by an old client); os.fsdecode turns either back into the path."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return text


class Intake:
    """Takes files into quarantine and queues their jobs; `kick` wakes the dispatcher."""

    def __init__(self, cfg: Config, ledger: JobStore, quarantine: Quarantine, metrics: Metrics,
                 policy_for: Callable[[str], Policy], kick: Callable[[], None]) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.quarantine = quarantine
        self.metrics = metrics
        self.policy_for = policy_for
        self.kick = kick
        self._oversize: dict[str, str] = {}  # dropbox path -> signature, over the size limit
        # The deliverer's hand_over for a too-large file's notice (job id, blocked result); set by the service.
        self.on_too_large: Callable[[int, dict], None] | None = None

    def on_dropped(self, paths: list[Path]) -> None:
        """The dropbox watcher's files: channel and folder from the path below the dropbox."""
        arrivals = []
        for path in paths:
            parts = path.relative_to(self.cfg.dropbox).parts
            channel = parts[0] if len(parts) > 1 else self.cfg.default_channel
            subdir = _drop_subdir(parts[1:-1])
            arrivals.append(Arrival(path, source="dropbox", channel=channel, name=clean_name(parts[-1]),
                                    subdir=subdir))
        self.accept_many(arrivals)

    def accept_many(self, arrivals: list[Arrival], strict: bool = False) -> list[int | None]:
        """Take a group of files, step by step: each step is committed (or fsynced) for the whole
        group before the next one starts, so the group shares its commits and directory fsyncs
        while every file keeps the order of durable steps that recovery relies on.

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
                                 drop_path=_db_path(a.path), size=st.st_size, drop_sig=sig(st),
                                 submission_id=a.submission_id, password=a.password,
                                 received_at=a.received_at, mail_id=a.mail_id,
                                 source_key=a.source_key or f"{a.source}:{a.channel}")))
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
                self.take(a.path, intake, own=a.source != "dropbox")
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
                    t.forget_received(jid)
        try:
            self.finish_many(taken, strict)
        except Exception:
            if strict:
                raise
            log.exception("intake failed", extra={"event": "error", "job_ids": [j for j, _ in taken]})
        return ids

    def _too_large(self, a: Arrival, st: os.stat_result) -> bool:
        """Over the channel policy's size limit: left in the dropbox, never copied (a sparse file of
        terabytes would fill the disk). Nothing disappears silently: a blocked notice and the clerk's
        report go into the inbox and the console lists it (a job without an original), audited once
        per file, across restarts too; /healthz counts it until it is gone."""
        policy = self.policy_for(a.channel)
        limit = policy.limits.max_file_bytes
        if st.st_size <= limit:
            return False
        key, s = str(a.path), sig(st)
        if self._oversize.get(key) != s:
            self._oversize[key] = s
            path = _db_path(a.path)
            result = too_large_result(a.name, st.st_size, limit)
            with self.ledger.tx() as t:
                jid = None
                if not t.too_large_known(path, s):  # already noticed (before a restart, say)
                    jid = t.add_too_large(dict(channel=a.channel, name=a.name, subdir=a.subdir, drop_path=path,
                                               drop_sig=s, size=st.st_size, policy=policy.label), result)
                    t.audit("intake.too_large", {"channel": a.channel, "name": a.name, "subdir": a.subdir,
                                                 "size": st.st_size, "limit": limit}, job_id=jid)
            if jid is not None:
                log.warning("over the size limit, left in the dropbox; notice delivered", extra={
                    "event": "intake.too_large", "path": key, "size": st.st_size, "limit": limit, "job_id": jid})
                if self.on_too_large is not None:
                    self.on_too_large(jid, result)
        return True

    def oversized(self) -> int:
        """How many dropbox files over the size limit are still there, unchanged (for /healthz)."""
        for key, s in list(self._oversize.items()):
            try:
                if sig(stat_beneath(self.cfg.dropbox, Path(key))) == s:
                    continue
            except (OSError, NotTaken, ValueError):
                pass
            self._oversize.pop(key, None)  # removed (or changed) by the sender or the operator
        return len(self._oversize)

    def take(self, src: Path, intake: Path, own: bool = False) -> None:
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
            pausepoint("intake.copied")
            # Recovery removes it if we die before this; a file put under the name meanwhile stays.
            if not unlink_at(dfd, parts[-1], same_as=st) and os.path.lexists(src):
                log.warning("the name holds another file now: left for the next walk",
                            extra={"event": "intake.replaced", "path": str(src)})
        finally:
            os.close(dfd)

    def finish(self, job_id: int, intake: Path) -> None:
        self.finish_many([(job_id, intake)], strict=True)

    def finish_many(self, taken: list[tuple[int, Path]], strict: bool = True) -> None:
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
                t.set_hash(jid, sha, size)
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
            self.mark_queued_many([jid for jid, _, _, _ in hashed])

    def mark_queued(self, job_id: int) -> None:
        self.mark_queued_many([job_id])

    def mark_queued_many(self, job_ids: list[int]) -> None:
        """Originals are in quarantine (durably): the jobs wait for a worker. One transaction.
        Call with the quarantine's lock held."""
        now = time.time()
        done = []
        with self.ledger.tx() as t:
            for job_id in job_ids:
                row = t.job(job_id)
                sha, size = row["sha256"], row["size"]
                rel = self.quarantine.relpath(sha)
                t.mark_queued(job_id, rel)
                t.keep_original(sha, size, rel, now)
                t.audit("intake", {"channel": row["channel"], "name": row["name"], "subdir": row["subdir"],
                                   "sha256": sha, "size": size, "source": row["source"],
                                   "submission_id": row["submission_id"], "source_key": row["source_key"]},
                        job_id=job_id)
                done.append(row)
        for row in done:
            self.metrics.intake.labels(row["channel"]).inc()
            log.info("taken into quarantine", extra={"event": "intake", "job_id": row["id"], "channel": row["channel"],
                                                     "file": row["name"], "sha256": row["sha256"], "size": row["size"]})
        self.kick()
