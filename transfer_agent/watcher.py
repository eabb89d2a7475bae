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

import fnmatch
import logging
import os
import queue
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
from .dropbox import no_writer

log = logging.getLogger("transfer_agent.intake")


@dataclass
class _Candidate:
    sig: tuple[int, int, int] | None = None
    since: float = 0.0
    closed: bool = False
    close_pending: bool = False


# Without a lease (another user's file and no CAP_LEASE) and without a close event, a file must
# stay quiet this many times stable_seconds before it is taken.
UNPROVEN_FACTOR = 4


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
        empty: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if not dirnames and not filenames:
                empty.append(dirpath)
            for f in filenames:
                p = os.path.join(dirpath, f)
                if p not in self._cands and not self.ignored(Path(p)):
                    self._cands[p] = _Candidate()
        if top == self.root:
            self._remove_empty(empty)

    def _remove_empty(self, dirs: list[str]) -> None:
        """A sender's folders (below a channel folder) go once empty and quiet: their files were taken
        and nothing changed in them for twice `stable_seconds`. Channel folders stay (they name
        channels); rmdir fails on a folder that is no longer empty, and never follows a link. A parent
        left empty by our own rmdir goes in the same walk if it was quiet before it (山田さん/中/ at once,
        not one level per walk)."""
        quiet = time.time() - 2 * self.cfg.stable_seconds
        for d in sorted(dirs, key=lambda x: -x.count(os.sep)):
            checked = False  # d's quiet was judged before our rmdir below it changed its mtime
            while len(Path(d).relative_to(self.root).parts) >= 2:
                parent = os.path.dirname(d)
                try:
                    st = os.lstat(d)
                    if not stat.S_ISDIR(st.st_mode) or (not checked and st.st_mtime > quiet):
                        break
                    parent_quiet = os.lstat(parent).st_mtime <= quiet
                    os.rmdir(d)
                except OSError:
                    break  # not empty any more, or gone: the next walk looks again
                log.info("empty sender folder removed", extra={"event": "intake.folder_removed", "path": d})
                try:
                    if not parent_quiet or os.listdir(parent):
                        break
                except OSError:
                    break
                d, checked = parent, True

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
