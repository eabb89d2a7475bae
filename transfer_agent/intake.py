"""Dropbox watcher: decides when a dropped file is complete and hands it over.

watchdog events are only hints that name candidate paths; a periodic full walk catches
anything they miss (inotify overflow, files present at start, network shares). A
candidate is ready when its (size, mtime, inode) stayed unchanged for `stable_seconds`,
or for `close_settle_seconds` after a close-write or a rename into place (the usual
"write to a temporary name, then rename" of browsers and copy tools). A file that no
event announced (created before the watch on a new directory existed, or found by a
walk) counts as closed once a read lease shows that nobody has it open for writing, the
same fact a close-write reports. Temporary and desktop names are ignored until renamed.
"""
from __future__ import annotations

import errno
import fcntl
import fnmatch
import logging
import os
import queue
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from .config import Config

log = logging.getLogger("transfer_agent.intake")


@dataclass
class _Candidate:
    sig: tuple[int, int, int] | None = None
    since: float = 0.0
    closed: bool = False
    close_pending: bool = False


_LEASE = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG")
# Without a lease (another user's file and no CAP_LEASE) and without a close event, a file must
# stay quiet this many times stable_seconds before it is taken.
UNPROVEN_FACTOR = 4


def leases_for_others() -> bool:
    """Whether this process may take leases on files it does not own (root or CAP_LEASE)."""
    if not _LEASE:
        return False
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return False
    return bool(caps >> 28 & 1)  # CAP_LEASE


def no_writer(path: str) -> bool | None:
    """True if no process has `path` open for writing, False if one has, None if unknown.

    Linux grants a read lease only while the file has no writer (system-wide, any process,
    including writable shared mappings); the lease is dropped at once. Unknown where leases
    are not available (not the file's owner without CAP_LEASE, network file systems).
    """
    if not _LEASE:
        return None
    try:
        # O_NONBLOCK: do not wait for another holder's write lease (e.g. Samba) to break.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else None
    try:
        # A writer opening it in the microseconds we hold the lease makes the kernel signal us:
        # SIGURG is ignored by default (SIGIO, the default, would terminate the process).
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


class StillWriting(Exception):
    """The sender still has the file open for writing, or changed it while we copied it."""


class NotTaken(Exception):
    """The file could not be taken and is left where it is: reached through a symbolic link, not a
    regular file, or unreadable. It is never copied, and nothing outside the dropbox is touched."""


def open_dir_beneath(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of root/parts..., each component opened without following a symbolic link: a
    folder swapped for a link to elsewhere (another channel's inbox, /etc) is refused, not entered."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError as exc:
        os.close(fd)
        raise NotTaken(f"{root.joinpath(*parts)}: {exc.strerror or exc}") from None
    return fd


def copy_out(dir_fd: int, name: str, dst: Path) -> os.stat_result:
    """Copy the file `name` of the folder `dir_fd` into a new file `dst` that only we can reach
    (O_EXCL, 0600), fsynced; returns the source's stat (to unlink that very file afterwards).

    The sender's inode is never kept: a writer that still holds it open, or another hard link to
    it, could otherwise change the quarantined original, or the bytes the worker reads, after
    they were hashed. A read lease held during the copy proves no process had it open for writing
    and none opened it for writing meanwhile; without leases, size and mtime must not move.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except BlockingIOError:  # another holder's write lease (Samba): it is still in use
        raise StillWriting(f"{name} is in use") from None
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP (a symbolic link), EACCES...
        raise NotTaken(f"{name}: {exc.strerror or exc}") from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise NotTaken(f"{name} is not a regular file")
        leased = False
        if _LEASE:
            try:
                fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
                leased = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
                    raise StillWriting(f"{name} is open for writing") from None
        try:
            out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                while chunk := os.read(fd, 1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                os.fsync(out)
            finally:
                os.close(out)
            # A writer that opened it meanwhile broke the lease (F_UNLCK while the break is pending).
            broken = leased and fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK
        finally:
            if leased:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        after = os.fstat(fd)
        if broken or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) \
                or os.path.getsize(dst) != after.st_size:
            os.unlink(dst)
            raise StillWriting(f"{name} changed while it was taken")
        return after
    finally:
        os.close(fd)


def stat_beneath(root: Path, path: Path) -> os.stat_result:
    """lstat of `path` inside `root`, refusing any symbolic link on the way (NotTaken)."""
    parts = path.relative_to(root).parts
    dfd = open_dir_beneath(root, parts[:-1])
    try:
        return os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def unlink_at(dir_fd: int, name: str, same_as: os.stat_result | None = None) -> bool:
    """Remove `name` from the folder `dir_fd`; with `same_as`, only if the name still holds that very
    file (not one the sender put there meanwhile). False when it was not removed or is gone."""
    try:
        if same_as is not None:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != (same_as.st_dev, same_as.st_ino):
                return False
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def unlink_beneath(root: Path, path: Path, same_as: os.stat_result | None = None) -> bool:
    """unlink_at for `path` inside `root`, its folder reached without following a link."""
    parts = path.relative_to(root).parts
    dfd = open_dir_beneath(root, parts[:-1])
    try:
        return unlink_at(dfd, parts[-1], same_as)
    finally:
        os.close(dfd)


class _Events(FileSystemEventHandler):
    def __init__(self, q: queue.SimpleQueue) -> None:
        self.q = q

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, (DirCreatedEvent, DirMovedEvent)):
            self.q.put(("dir", os.fsdecode(getattr(event, "dest_path", "") or event.src_path)))
        elif event.is_directory:
            return
        elif isinstance(event, FileMovedEvent):
            self.q.put(("closed", os.fsdecode(event.dest_path)))
        elif isinstance(event, FileClosedEvent):
            self.q.put(("closed", os.fsdecode(event.src_path)))
        elif event.event_type in ("created", "modified"):
            self.q.put(("change", os.fsdecode(event.src_path)))


# Complete files handed over together (they share the intake's commits and directory fsyncs);
# bounded so that the first of them is not held back long by hashing the others.
GROUP_FILES = 32
GROUP_BYTES = 64 << 20


class DropboxWatcher:
    """Calls `on_ready(paths)` from its own thread with complete files of the dropbox, in groups."""

    def __init__(self, cfg: Config, on_ready: Callable[[list[Path]], None]) -> None:
        self.cfg = cfg
        self.root = cfg.dropbox
        self._real_root = os.path.realpath(cfg.dropbox) + os.sep
        self.on_ready = on_ready
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._cands: dict[str, _Candidate] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._patterns = [p.lower() for p in cfg.ignore]
        self._observer = PollingObserver(timeout=1) if cfg.watcher == "polling" else Observer()
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
        self._last_scan = 0.0
        self.last_tick = time.monotonic()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(_Events(self._q), str(self.root), recursive=True)
        self._observer.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        try:
            self._observer.stop()
            if self._observer.is_alive():
                self._observer.join(timeout)
        except Exception:  # noqa: BLE001 - stopping must not fail the shutdown
            log.exception("watcher stop failed", extra={"event": "error"})
        if self._thread.is_alive():  # a start() that failed part-way never started it
            self._thread.join(timeout)

    def alive(self) -> bool:
        stalled = time.monotonic() - self.last_tick > max(30.0, 20 * self.cfg.tick_seconds)
        return self._observer.is_alive() and self._thread.is_alive() and not stalled

    # ------------------------------------------------------------------ internals

    def ignored(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return True
        if any(part.startswith(".") for part in rel.parts[:-1]):
            return True
        name = rel.name.lower()
        return any(fnmatch.fnmatchcase(name, p) for p in self._patterns)

    def _scan(self, top: Path) -> None:
        if top != self.root and (top.is_symlink() or not os.path.realpath(top).startswith(self._real_root)):
            return  # os.walk would list a linked top folder: taking would refuse it anyway
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                p = os.path.join(dirpath, f)
                if p not in self._cands and not self.ignored(Path(p)):
                    self._cands[p] = _Candidate()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - keep watching; the next walk retries
                log.exception("intake tick failed", extra={"event": "error"})
            self.last_tick = time.monotonic()
            self._stop.wait(self.cfg.tick_seconds)

    def _tick(self) -> None:
        now = time.monotonic()
        while True:
            try:
                kind, p = self._q.get_nowait()
            except queue.Empty:
                break
            if kind == "dir":
                if not self.ignored(Path(p) / "x"):
                    self._scan(Path(p))
                continue
            if self.ignored(Path(p)):
                continue
            c = self._cands.setdefault(p, _Candidate())
            if kind == "closed":
                c.close_pending = True
        if now - self._last_scan >= self.cfg.rescan_seconds:
            self._last_scan = now
            self._scan(self.root)
        group: list[Path] = []
        group_bytes = 0
        for p, c in list(self._cands.items()):
            if self._stop.is_set():
                return
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                del self._cands[p]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._cands[p]
                if p not in self._warned:
                    self._warned.add(p)
                    log.warning("not a regular file, left in the dropbox", extra={"event": "intake.skip",
                                                                                  "path": p})
                continue
            sig = (st.st_size, st.st_mtime_ns, st.st_ino)
            if sig != c.sig:
                c.sig, c.since, c.closed, c.close_pending = sig, now, c.close_pending, False
            elif c.close_pending:
                c.closed, c.close_pending = True, False
            age = now - c.since
            if not c.closed and self.cfg.close_settle_seconds <= age < self.cfg.stable_seconds \
                    and no_writer(p):
                c.closed = True  # no event told us, but nobody is writing it: as good as a close-write
            if age >= self.cfg.stable_seconds and not c.closed:
                writer = no_writer(p)
                if writer is False:
                    continue  # quiet, but still open for writing (a stalled upload): wait for the close
                if writer is None and age < self.cfg.stable_seconds * UNPROVEN_FACTOR:
                    continue  # no lease on another user's file: nothing proves it closed, so wait longer
            if age >= self.cfg.stable_seconds or (c.closed and age >= self.cfg.close_settle_seconds):
                del self._cands[p]
                group.append(Path(p))
                group_bytes += st.st_size
                if len(group) >= GROUP_FILES or group_bytes >= GROUP_BYTES:
                    self._hand_over(group)
                    group, group_bytes = [], 0
        if group:
            self._hand_over(group)

    def _hand_over(self, group: list[Path]) -> None:
        try:
            self.on_ready(group)
        except Exception:  # noqa: BLE001 - the next walk finds what is left
            log.exception("intake failed", extra={"event": "error", "paths": [str(p) for p in group]})
