"""Originals, content-addressed by sha256, read-only, kept for the policy's retention days.

Intake and purge share one lock: an intake that finds the original already stored (same
content dropped again) must not race with the purge deleting it.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from .files import fsync_dir
from .storage import JobStore

log = logging.getLogger("transfer_agent.quarantine")


class Quarantine:
    def __init__(self, root: Path, data_dir: Path, fsync: bool = True) -> None:
        self.root = root
        self.data_dir = data_dir
        self.fsync = fsync
        self.lock = threading.RLock()
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def relpath(self, sha256: str) -> str:
        return str(self.path_for(sha256).relative_to(self.data_dir))

    def store(self, src: Path, sha256: str, fsync: bool | None = None) -> Path:
        """Move `src` (already hashed) into place; a second copy of stored content is dropped.

        Call with `self.lock` held. `fsync=False`: the caller fsyncs `dst.parent` and
        `src.parent` itself (once for a group of files) before relying on the move.
        """
        fsync = self.fsync if fsync is None else fsync
        dst = self.path_for(sha256)
        if not dst.parent.is_dir():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                fsync_dir(self.root)  # the new prefix directory itself
        if dst.is_file() and dst.stat().st_size == src.stat().st_size:
            os.unlink(src)
        else:
            os.chmod(src, 0o440)
            os.rename(src, dst)
            if fsync:
                fsync_dir(dst.parent)
        if fsync:
            fsync_dir(src.parent)
        return dst

    def purge_expired(self, ledger: JobStore, results_root: Path, now: float | None = None) -> list[str]:
        """Delete originals (and cached results) whose every job is final and past retention. Audited."""
        now = time.time() if now is None else now
        purged: list[str] = []
        for row in ledger.purgeable(now):
            sha = row["sha256"]
            with self.lock:
                # Re-check under the lock: an intake of the same content may have arrived meanwhile.
                if not ledger.purgeable(now, sha):
                    continue
                path = self.data_dir / row["path"]
                existed = path.exists()
                if existed:
                    os.chmod(path, 0o640)
                    path.unlink()
                    if self.fsync:
                        fsync_dir(path.parent)
                shutil.rmtree(results_root / sha, ignore_errors=True)
                with ledger.tx() as t:
                    t.mark_purged(sha, now)
                    t.audit("purge", {"sha256": sha, "size": row["size"], "file_existed": existed})
            purged.append(sha)
            log.info("purged original", extra={"event": "purge", "sha256": sha, "size": row["size"]})
        return purged
