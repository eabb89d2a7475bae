"""Originals, content-addressed by sha256, read-only, kept for the policy's retention days.

The bytes are kept in the blob store (blobstore.py: the data directory, or the directory shared
with the worker nodes); this module adds the lock and the purge rules.

Intake and purge share one lock: an intake that finds the original already stored (same
content dropped again) must not race with the purge deleting it.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .blobstore import BlobStore, LocalBlobStore
from .ledger import PURGEABLE_ONE as _STILL_PURGEABLE
from .storage import JobStore

log = logging.getLogger("transfer_agent.quarantine")


class Quarantine:
    def __init__(self, root: Path, data_dir: Path, fsync: bool = True, blobs: BlobStore | None = None) -> None:
        self.root = root
        self.data_dir = data_dir
        self.fsync = fsync
        self.blobs: BlobStore = blobs or LocalBlobStore(data_dir, fsync)
        self.lock = threading.RLock()
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.blobs.path(self.blobs.original_key(sha256))

    def relpath(self, sha256: str) -> str:
        """The key the ledger keeps (relative to the data or shared directory)."""
        return self.blobs.original_key(sha256)

    def store(self, src: Path, sha256: str, fsync: bool | None = None) -> Path:
        """Move `src` (already hashed) into place; a second copy of stored content is dropped.

        Call with `self.lock` held. `fsync=False`: the caller fsyncs `dst.parent` and
        `src.parent` itself (once for a group of files) before relying on the move.
        """
        key = self.blobs.put_original(src, sha256, self.fsync if fsync is None else fsync)
        return self.blobs.path(key)

    def purge_expired(self, ledger: JobStore, results_root: Path | None = None, now: float | None = None) -> list[str]:
        """Delete originals (and cached results) whose every job is final and past retention. Audited.
        (`results_root` is ignored: the results live in the blob store.)"""
        now = time.time() if now is None else now
        purged: list[str] = []
        for row in ledger.purgeable(now):
            sha = row["sha256"]
            with self.lock, ledger.tx() as t:
                # Re-check under the lock and the ledger's write lock: an intake of the same content (on
                # this node or another, which records the hash before storing the file) may have arrived.
                if not t.execute(_STILL_PURGEABLE, {"now": now, "sha": sha}).fetchall():
                    continue
                existed = self.blobs.delete_original(sha)
                self.blobs.delete_results(sha)
                t.mark_purged(sha, now)
                t.audit("purge", {"sha256": sha, "size": row["size"], "file_existed": existed})
            purged.append(sha)
            log.info("purged original", extra={"event": "purge", "sha256": sha, "size": row["size"]})
        return purged
