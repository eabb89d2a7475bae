"""The blob store seam: where originals, cached results and a job's outputs live.

Files never cross the broker. Every node that handles a job reaches the same bytes through this
seam by a *key*, a relative path with `/` separators that the ledger and the Celery messages carry:

  quarantine/<sha[:2]>/<sha>                  an original, content-addressed, read-only
  state/results/<sha>/<policy>/<ext>/         a cached result (rebuilt file, text rendition)
  work/jobs/<job id>-<attempt>/               a job's outputs while it is processed

`LocalBlobStore(root)` is the one implementation today (S3-compatible storage is not built, see
docs/cloud.md): the data directory of a one-box appliance, or the directory shared by the serve
and worker nodes of the security cloud (`--shared-dir`, NFS or similar). It relies on these
semantics of the file system, which a local file system has and a shared one must give too:

1. **rename(2) in one file system is atomic**, for a file (an original moved into quarantine, an
   output renamed from its temporary name) and for a directory; renaming a directory onto a
   non-empty one fails (ENOTEMPTY/EEXIST), so of two workers finishing the same attempt exactly one
   publishes (`publish`). NFS gives both for a rename within one export (keep the shared directory
   on one export: a rename across exports is a copy and is refused with EXDEV, which fails closed).
2. **Close-to-open consistency**: bytes written, fsynced and closed on one node are seen whole by a
   node that opens the file afterwards. The NFS client does this by default; never mount with
   `nocto`. Mount with `lookupcache=positive` (or `none`) so that a name another node has just
   created is not hidden by a cached "no such file" for up to `acdirmax` seconds.
3. **fsync is durable on the server**: a file's fsync and its directory's fsync (after a rename)
   reach stable storage before they return. Export with `sync` (the default), never `async`; mount
   with `hard`, never `soft` (a soft mount may report a write as failed after the server took it,
   or lose it).
4. **No locks across nodes are needed**: the ledger decides who may act (claims with attempt numbers
   as fencing tokens); the store only has to keep renames atomic. `Quarantine.lock` guards one
   node's own threads.

A key handed in from outside (a Celery message) is resolved with `path()`, which refuses absolute
keys, `..` and anything that would leave the root, so a forged message cannot make a worker read
or write elsewhere.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Protocol

from .files import fsync_dir

QUARANTINE = "quarantine"
RESULTS = "state/results"
JOBS = "work/jobs"


class BlobKeyError(ValueError):
    """A key that is not a plain relative path inside the store."""


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", part) or "_"


class BlobStore(Protocol):
    """What the steps (intake, dispatch, delivery, purge) and the worker nodes need of the store."""

    def path(self, key: str) -> Path: ...

    def key(self, path: str | os.PathLike[str]) -> str: ...

    def original_key(self, sha256: str) -> str: ...

    def has_original(self, sha256: str, size: int | None = None) -> bool: ...

    def put_original(self, src: Path, sha256: str, fsync: bool = True) -> str: ...

    def delete_original(self, sha256: str) -> bool: ...

    def results_key(self, sha256: str, policy: str, ext: str) -> str: ...

    def delete_results(self, sha256: str) -> None: ...

    def job_key(self, job_id: int, attempt: int) -> str: ...

    def publish(self, tmp: Path, key: str) -> bool: ...


class LocalBlobStore:
    """A local or shared (NFS) directory; see the module docstring for what it requires of NFS."""

    def __init__(self, root: str | os.PathLike[str], fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self.fsync = fsync

    # ------------------------------------------------------------------ keys
    def path(self, key: str) -> Path:
        """The local path of a key; refuses a key that is absolute or climbs out of the root."""
        if not key or "\x00" in key or key.startswith(("/", "\\")) or "\\" in key:
            raise BlobKeyError(f"not a relative key: {key!r}")
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise BlobKeyError(f"not a plain key: {key!r}")
        return self.root.joinpath(*parts)

    def key(self, path: str | os.PathLike[str]) -> str:
        """The key of a path inside the root (ValueError for a path outside it)."""
        rel = Path(os.path.abspath(path)).relative_to(self.root)
        return "/".join(rel.parts)

    # ------------------------------------------------------------------ originals
    def original_key(self, sha256: str) -> str:
        if not re.fullmatch(r"[0-9A-Za-z]{2,128}", sha256):
            raise BlobKeyError(f"not a content hash: {sha256!r}")
        return f"{QUARANTINE}/{sha256[:2]}/{sha256}"

    def has_original(self, sha256: str, size: int | None = None) -> bool:
        p = self.path(self.original_key(sha256))
        try:
            st = p.stat()
        except OSError:
            return False
        return size is None or st.st_size == size

    def put_original(self, src: Path, sha256: str, fsync: bool = True) -> str:
        """Move `src` (already hashed, on the same file system) into place, read-only; a second copy
        of stored content is dropped. `fsync=False`: the caller fsyncs both directories itself."""
        key = self.original_key(sha256)
        dst = self.path(key)
        if not dst.parent.is_dir():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                fsync_dir(dst.parent.parent)  # the new prefix directory itself
        if self.has_original(sha256, src.stat().st_size):
            os.unlink(src)
        else:
            os.chmod(src, 0o440)
            os.rename(src, dst)
            if fsync:
                fsync_dir(dst.parent)
        if fsync:
            fsync_dir(src.parent)
        return key

    def delete_original(self, sha256: str) -> bool:
        """Remove an original; False when it was not there."""
        p = self.path(self.original_key(sha256))
        if not p.exists():
            return False
        os.chmod(p, 0o640)
        p.unlink()
        if self.fsync:
            fsync_dir(p.parent)
        return True

    # ------------------------------------------------------------------ results and job outputs
    def results_key(self, sha256: str, policy: str, ext: str) -> str:
        return f"{RESULTS}/{_safe(sha256)}/{_safe(policy)}/{_safe(ext.lstrip('.') or '_')}"

    def delete_results(self, sha256: str) -> None:
        shutil.rmtree(self.path(f"{RESULTS}/{_safe(sha256)}"), ignore_errors=True)

    def job_key(self, job_id: int, attempt: int) -> str:
        return f"{JOBS}/{int(job_id)}-{int(attempt)}"

    def publish(self, tmp: Path, key: str) -> bool:
        """Rename a finished private folder onto the key's folder (absent or empty); False when
        another copy got there first (the folder is no longer empty). The parent is fsynced."""
        final = self.path(key)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        if self.fsync:
            fsync_dir(final.parent)
        return True
