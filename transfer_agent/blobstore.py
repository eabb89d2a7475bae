"""The blob store seam: where originals, cached results and a job's outputs live.

Files never cross the broker. Every node that handles a job reaches the same bytes through this
seam by a *key*, a relative path with `/` separators that the ledger and the Celery messages carry:

  quarantine/<sha[:2]>/<sha>                  an original, content-addressed, read-only
  state/results/<sha>/<policy>/<ext>/         a cached result (rebuilt file, text rendition)
  work/jobs/<job id>-<attempt>/               a job's outputs while it is processed

`LocalBlobStore(root)` is the data directory of a one-box appliance, or the directory shared by the
serve and worker nodes of the security cloud (`--shared-dir`, NFS or similar). `S3Objects` (below)
carries originals and outputs between serve and worker nodes through S3-compatible storage instead,
so that worker nodes need no shared directory. The local store relies on these semantics of the
file system, which a local file system has and a shared one must give too:

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
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

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


def key_parts(key: str) -> list[str]:
    """The parts of a plain relative key; BlobKeyError for an absolute one or one that climbs out."""
    if not key or "\x00" in key or key.startswith(("/", "\\")) or "\\" in key:
        raise BlobKeyError(f"not a relative key: {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BlobKeyError(f"not a plain key: {key!r}")
    return parts


class LocalBlobStore:
    """A local or shared (NFS) directory; see the module docstring for what it requires of NFS."""

    def __init__(self, root: str | os.PathLike[str], fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self.fsync = fsync

    # ------------------------------------------------------------------ keys
    def path(self, key: str) -> Path:
        """The local path of a key; refuses a key that is absolute or climbs out of the root."""
        return self.root.joinpath(*key_parts(key))

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


class S3Objects:
    """Originals and job outputs between serve and worker nodes through S3-compatible storage.

    `s3://BUCKET/PREFIX`; the endpoint is `endpoint` or AWS_ENDPOINT_URL, the credentials boto3's usual
    ones (environment, ~/.aws, instance role). The serve node keeps its quarantine, result cache and
    inbox in its own data directory as always; S3 only carries the bytes a worker node needs:

    - `ensure(key, path)`: the serve node uploads an original before publishing its task (once: an
      object already there is not sent again);
    - a worker node downloads it to its own scratch folder (`download`), runs the sandboxed pool, and
      `publish_dir`s the outputs: each copy uploads under a prefix of its own, then creates
      `<key>/.published` naming it with a conditional put (If-None-Match: *), which only one copy can
      do: the S3 counterpart of the rename onto an empty folder, so a duplicate task publishes nothing;
    - the serve node `fetch_dir`s the published copy into the attempt's local folder and deletes the
      prefix. Originals stay in the bucket: give it a lifecycle rule that expires objects after a day
      (a job dispatched again uploads its original again).
    The storage must support conditional writes (AWS S3 since 2024, MinIO, Ceph RGW, moto)."""

    MARK = ".published"

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        u = urlsplit(url)
        if u.scheme != "s3" or not u.netloc:
            raise ValueError(f"not an s3://BUCKET/PREFIX URL: {url!r}")
        self.bucket = u.netloc
        self.prefix = "/".join(key_parts(u.path.strip("/"))) + "/" if u.path.strip("/") else ""
        import boto3  # only the S3 mode needs it

        self.s3: Any = boto3.client("s3", endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL") or None)

    def _k(self, key: str) -> str:
        return self.prefix + "/".join(key_parts(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def ensure(self, key: str, path: str | os.PathLike[str]) -> None:
        if not self.exists(key):
            self.s3.upload_file(str(path), self.bucket, self._k(key))

    def download(self, key: str, path: str | os.PathLike[str]) -> None:
        self.s3.download_file(self.bucket, self._k(key), str(path))

    def _list(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out

    def publish_dir(self, local: Path, key: str) -> bool:
        """Upload the files under `local` as the one copy of `key`; False when another copy got there first."""
        from botocore.exceptions import ClientError

        run = uuid.uuid4().hex
        base = f"{self._k(key)}/{run}/"
        for f in sorted(p for p in Path(local).rglob("*") if p.is_file()):
            self.s3.upload_file(str(f), self.bucket, base + "/".join(f.relative_to(local).parts))
        try:
            self.s3.put_object(Bucket=self.bucket, Key=f"{self._k(key)}/{self.MARK}", Body=run.encode(),
                               IfNoneMatch="*")
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412",
                                                                 "ConditionalRequestConflict"):
                raise
            self._delete(self._list(base))
            return False

    def fetch_dir(self, key: str, local: Path) -> None:
        """Download the published copy of `key` into the folder `local` (names checked like keys)."""
        run = self.s3.get_object(Bucket=self.bucket, Key=f"{self._k(key)}/{self.MARK}")["Body"].read().decode()
        base = f"{self._k(key)}/{key_parts(run)[0]}/"
        for name in self._list(base):
            dst = Path(local).joinpath(*key_parts(name[len(base):]))
            dst.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.bucket, name, str(dst))

    def delete_prefix(self, key: str) -> None:
        self._delete(self._list(self._k(key) + "/"))

    def _delete(self, names: list[str]) -> None:
        for i in range(0, len(names), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in names[i:i + 1000]]})
