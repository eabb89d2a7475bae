"""The blob store seam (blobstore.py) on a real directory: keys stay inside the root, originals are
content-addressed and read-only, and of two copies publishing the same attempt exactly one wins."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from transfer_agent.blobstore import BlobKeyError, LocalBlobStore
from transfer_agent.quarantine import Quarantine


@pytest.mark.parametrize("key", ["/etc/passwd", "../x", "quarantine/../../x", "a//b", "a/./b", "", "a\\b",
                                 "work/jobs/1-1/..", "x\x00y"])
def test_a_key_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(BlobKeyError):
        LocalBlobStore(tmp_path).path(key)


def test_originals_results_and_job_folders(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "shared")
    q = Quarantine(tmp_path / "shared" / "quarantine", tmp_path / "shared", blobs=blobs)
    body = "住民票の写し".encode()
    sha = hashlib.sha256(body).hexdigest()
    for i in range(2):  # the same content twice: one stored copy, the second source removed
        src = tmp_path / "shared" / f"in{i}"
        src.write_bytes(body)
        with q.lock:
            dst = q.store(src, sha)
        assert not src.exists()
    assert dst == blobs.path(q.relpath(sha)) and dst.read_bytes() == body
    assert q.relpath(sha) == f"quarantine/{sha[:2]}/{sha}" and blobs.key(dst) == q.relpath(sha)
    assert not stat.S_IMODE(dst.stat().st_mode) & 0o222  # read-only
    assert blobs.has_original(sha, len(body)) and not blobs.has_original(sha, len(body) + 1)
    res = blobs.path(blobs.results_key(sha, "text only/v1", ".docx"))
    assert blobs.key(res) == f"state/results/{sha}/text_only_v1/docx"
    res.mkdir(parents=True)
    (res / "out.docx").write_bytes(b"x")
    assert blobs.delete_original(sha) and not blobs.delete_original(sha)
    blobs.delete_results(sha)
    assert not res.exists() and not dst.exists()
    with pytest.raises(ValueError):
        blobs.key(tmp_path / "elsewhere")


def test_publish_admits_one_copy(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    key = blobs.job_key(7, 2)
    final = blobs.path(key)
    final.mkdir(parents=True)  # the dispatcher makes the attempt's empty folder
    copies = []
    for n in range(2):
        tmp = final.with_name(f"{final.name}.{n}.tmp")
        tmp.mkdir()
        (tmp / "out.pdf").write_bytes(f"copy {n}".encode())
        copies.append(blobs.publish(tmp, key))
    assert copies == [True, False]
    assert (final / "out.pdf").read_bytes() == b"copy 0"
    assert sorted(os.listdir(tmp_path / "work" / "jobs")) == ["7-2", "7-2.1.tmp"]
