"""Atomic, idempotent delivery into the LGWAN-side inbox.

A job's delivery is a *plan* committed to the ledger before any byte is written: the
inbox directory, each final name (chosen so that nothing existing is overwritten), its
source and its sha256. Executing the plan writes each file under a dot-prefixed temp
name `.NAME.tmp-<jobid>` in the same directory, fsyncs it, links it to its final name
(a hard link never replaces an existing file) and removes the temp name; the directory
is fsynced once when all the plan's files are in place. Replaying a plan after a crash
skips files already in place with the right hash and removes leftover temp names, so a
file is delivered exactly once. An inbox that cannot be written raises OSError and leaves the
plan valid: the delivery thread (deliverer.py) replays it with backoff.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdr.names import windows_safe

from . import safefs
from .files import clean_name, fit_name, hash_file, numbered, temp_name
from .safefs import Refused, Tree

SIDECAR = ".cdr.json"
TEXT = ".txt"
NOTICE = ".blocked.json"


class Conflict(Exception):
    """A planned final name is taken by a file that is not ours: plan again."""


class SourceMissing(Exception):
    """The cached output to deliver is gone or altered: run the job again."""


@dataclass
class PlannedFile:
    name: str
    kind: str  # output | text | sidecar | notice
    sha256: str
    src: str | None = None  # relative to the data dir
    content: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def choose_name(tree: Tree, dir_rel: str, base: str, suffixes: list[str], job_id: int) -> str:
    """The first of base, 'stem (2).ext', ... whose every companion name is free (a link there counts
    as taken: it is never written through). A folder that is missing, or refused, has every name free:
    carrying out the plan makes it, or fails and is retried."""
    base = windows_safe(fit_name(clean_name(base), 255 - max(len(s.encode()) for s in suffixes) - 12))
    try:
        dfd = tree.open_dir(dir_rel)
    except (FileNotFoundError, Refused):
        return base
    try:
        for n in range(1, 100000):
            cand = numbered(base, n)
            names = [cand + s for s in suffixes]
            if not any(safefs.exists(dfd, x) or safefs.exists(dfd, temp_name(x, job_id)) for x in names):
                return cand
    finally:
        os.close(dfd)
    raise Conflict(f"no free name for {base!r} in {dir_rel}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def build_plan(*, data_dir: Path, inbox_dir: Path, job: dict[str, Any], result: dict[str, Any],
               cache_dir: Path | None, out_name: str | None, text_name: str | None,
               reused_from: int | None, deliver_as: str | None = None) -> dict[str, Any]:
    """Decide names and contents. `out_name`/`text_name` are files inside `cache_dir`;
    the output is delivered as `deliver_as` (default `out_name`)."""
    job_id = int(job["id"])
    tree = Tree(data_dir)
    dir_rel = tree.rel(inbox_dir)
    delivered_at = now_iso()
    report: dict[str, Any] = {
        "schema": 1,
        "job_id": job_id,
        "channel": job["channel"],
        "original_name": job["name"],
        "verdict": result.get("verdict"),
        "reason": result.get("reason"),
        "reason_ja": result.get("reason_ja"),
        "reason_en": result.get("reason_en"),
        "detected_type": result.get("detected_type"),
        "family": result.get("family"),
        "threats": result.get("threats", []),
        "children": result.get("children", []),
        "warnings": result.get("warnings", []),
        "original_sha256": job["sha256"],
        "original_size": job["size"],
        "elapsed_ms": result.get("elapsed_ms"),
        "policy": job["policy"],
        "received_at": _iso(job["received_at"]),
        "processed_at": delivered_at,
        "delivered_at": delivered_at,
        "reused_from_job": reused_from,
        "submission_id": job.get("submission_id"),
    }
    files: list[PlannedFile] = []
    if result.get("verdict") == "blocked" or not out_name:
        name = choose_name(tree, dir_rel, job["name"], [NOTICE], job_id)
        report.update({
            "delivered": False,
            "notice_ja": "このファイルは安全に無害化できなかったため、配送を停止しました。原本は隔離されています。",
            "notice_en": "This file could not be made safe and was not delivered. The original is quarantined.",
        })
        body = _json(report)
        files.append(PlannedFile(name + NOTICE, "notice", _sha(body.encode()), content=body))
        return {"dir": dir_rel, "files": [f.to_dict() for f in files],
                "main": name + NOTICE}
    assert cache_dir is not None
    separate_text = bool(text_name) and text_name != out_name
    suffixes = ["", SIDECAR] + ([TEXT] if separate_text else [])
    name = choose_name(tree, dir_rel, deliver_as or out_name, suffixes, job_id)
    out_src = cache_dir / out_name
    report.update({"delivered": True, "delivered_name": name, "output_sha256": result.get("output_sha256")})
    if separate_text:
        tsrc = cache_dir / text_name
        tsha = _file_sha(tsrc)
        files.append(PlannedFile(name + TEXT, "text", tsha, src=str(tsrc.relative_to(data_dir))))
        report.update({"text_name": name + TEXT, "text_sha256": tsha})
    elif text_name:
        report.update({"text_name": name, "text_sha256": result.get("output_sha256")})
    body = _json(report)
    files.append(PlannedFile(name + SIDECAR, "sidecar", _sha(body.encode()), content=body))
    # The delivered file comes last: when it appears, its report is already there.
    files.append(PlannedFile(name, "output", result["output_sha256"], src=str(out_src.relative_to(data_dir))))
    return {"dir": dir_rel, "files": [f.to_dict() for f in files], "main": name}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).astimezone().isoformat(timespec="seconds")


def _file_sha(path: Path) -> str:
    try:
        return hash_file(path)[0]
    except OSError as exc:
        raise SourceMissing(str(path)) from exc


def _write_temp(tree: Tree, dfd: int, dir_rel: str, tmp: str, f: dict[str, Any], fsync: bool) -> None:
    if "content" in f:
        data: bytes | Path = f["content"].encode("utf-8")
    else:
        data = tree.root / f["src"]
        if not data.is_file():
            raise SourceMissing(f["src"])
    try:
        digest = _fill_temp(tree, dfd, dir_rel, tmp, data, fsync)
    except OSError as exc:
        # An inbox that cannot be written (full, read-only, EIO) is not a reason to process the file
        # again: the error propagates and the caller retries the same plan. Only a source that is
        # gone or altered means the cached output must be produced again.
        if isinstance(data, Path) and _file_sha(data) != f["sha256"]:
            raise SourceMissing(f"{f.get('src')}: {exc}") from exc
        raise
    if digest != f["sha256"]:
        safefs.unlink(dfd, tmp)
        raise SourceMissing(f"{f.get('src')}: content changed since it was produced")


def _fill_temp(tree: Tree, dfd: int, dir_rel: str, tmp: str, data: bytes | Path, fsync: bool) -> str:
    """Create the temp name afresh (O_EXCL) with `data`; one left by a crash, or a link planted under
    it, is removed first (the name itself, never what a link points to)."""
    if safefs.is_link(dfd, tmp):
        tree.note_link(dir_rel, tmp)
    safefs.unlink(dfd, tmp)
    return safefs.write_new(dfd, tmp, data, fsync)


def remove_temps(plan: dict[str, Any], tree: Tree, job_id: int) -> None:
    try:
        dfd = tree.open_dir(plan["dir"])
    except (FileNotFoundError, Refused):
        return  # never created (or not ours): no temp of ours can be there
    try:
        for f in plan["files"]:
            safefs.unlink(dfd, temp_name(f["name"], job_id))
    finally:
        os.close(dfd)


def unlink_delivered(plan: dict[str, Any], tree: Tree) -> None:
    """Undo a partial delivery: remove final names that hold exactly what we wrote."""
    try:
        dfd = tree.open_dir(plan["dir"])
    except (FileNotFoundError, Refused):
        return
    try:
        for f in plan["files"]:
            if safefs.sha256_of(dfd, f["name"]) == f["sha256"]:
                safefs.unlink(dfd, f["name"])
    finally:
        os.close(dfd)


def execute(plan: dict[str, Any], tree: Tree, job_id: int, fsync: bool = True,
            crashpoint: Any = None) -> list[str]:
    """Carry out (or finish) a plan. Raises Conflict, SourceMissing, or OSError when the inbox cannot be
    written (the plan stays valid: the caller retries it; files already in place are kept); Refused
    (an OSError) when a link stands where a folder of the plan should be."""
    dfd = tree.open_dir(plan["dir"], create=True, fsync=fsync)
    try:
        done = []
        for f in plan["files"]:
            name, tmp = f["name"], temp_name(f["name"], job_id)
            st = safefs.lstat(dfd, name)
            if st is not None:
                if safefs.sha256_of(dfd, name) == f["sha256"]:
                    safefs.unlink(dfd, tmp)  # delivered before a crash
                    done.append(name)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    tree.note_link(plan["dir"], name)
                raise Conflict(name)
            _write_temp(tree, dfd, plan["dir"], tmp, f, fsync)
            if crashpoint:
                crashpoint("deliver.temp_written")
            try:
                safefs.link_no_replace(dfd, tmp, name)
            except FileExistsError:
                safefs.unlink(dfd, tmp)
                if safefs.is_link(dfd, name):
                    tree.note_link(plan["dir"], name)
                raise Conflict(name) from None
            if crashpoint:
                crashpoint("deliver.linked")
            done.append(name)
        # One directory fsync for all the links (and temp removals) of this plan, also on a replay: the
        # caller commits 'delivered' only after it; a power loss before leaves 'delivering', replayed at start.
        if fsync:
            os.fsync(dfd)
    finally:
        os.close(dfd)
    return done


class HashMismatch(Exception):
    """The bytes written are not the bytes the ledger recorded."""


def write_atomic(tree: Tree, dir_rel: str, name: str, data: bytes | Path, fsync: bool = True, tag: str = "x",
                 expect_sha256: str | None = None, before_link: Callable[[str], None] | None = None) -> str:
    """Write one extra file into the inbox folder `dir_rel` (an approved original, ...): `data` is bytes or
    a file to copy.

    Same guarantees as a plan (folders reached without following links, temp name created with O_EXCL,
    fsync, link, never overwrite: ' (2)' on collision), but not tracked in the ledger: callers record
    what they wrote. With `expect_sha256`, the copy is checked while it is written and HashMismatch
    raised (nothing left behind) when it differs. `before_link(final_name)` runs once the copy is
    complete and verified, before it becomes visible (an approval is committed there); if it raises,
    nothing appears. Returns the final name. Hold `Service.delivery_lock` while calling.
    """
    dfd = tree.open_dir(dir_rel, create=True, fsync=fsync)
    try:
        for n in range(1, 100000):
            final = numbered(name, n)
            if safefs.exists(dfd, final):
                continue
            tmp = f".{fit_name(final, 200)}.tmp-{tag}"
            digest = _fill_temp(tree, dfd, dir_rel, tmp, data, fsync)
            if expect_sha256 and digest != expect_sha256:
                safefs.unlink(dfd, tmp)
                raise HashMismatch(f"{data} does not match the recorded sha256")
            if before_link is not None:
                try:
                    before_link(final)
                except BaseException:
                    safefs.unlink(dfd, tmp)
                    raise
            try:
                safefs.link_no_replace(dfd, tmp, final)
            except FileExistsError:
                safefs.unlink(dfd, tmp)
                if before_link is not None:  # already recorded under this name: do not pick another
                    raise Conflict(f"{final!r} appeared in {dir_rel} while it was being written") from None
                continue
            if fsync:
                os.fsync(dfd)
            return final
    finally:
        os.close(dfd)
    raise Conflict(f"no free name for {name!r} in {dir_rel}")
