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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdr.names import TEXT_SUFFIX, shown_name, text_rendition_name, windows_safe

from . import clock, safefs
from . import threat_labels as tl
from .files import clean_name, fit_name, hash_file, numbered, temp_name
from .report_text import render as render_report
from .safefs import Refused, Tree

SIDECAR = ".cdr.json"   # the report for systems (JSON)
REPORT = ".報告.txt"     # the report for the clerk (Japanese, opens by double-click)
NOTICE = ".blocked.json"
# A sender's name that ends like one of our companions gets a "_" before its extension, so that
# `申請書.docx.報告.txt` from outside never passes for our report of `申請書.docx`.
_OURS = (SIDECAR, REPORT, NOTICE, TEXT_SUFFIX)


class Conflict(Exception):
    """A planned final name is taken by a file that is not ours: plan again."""


class SourceMissing(Exception):
    """The cached output to deliver is gone or altered: run the job again."""


@dataclass
class PlannedFile:
    name: str
    kind: str  # output | text | sidecar | report | notice
    sha256: str
    src: str | None = None  # relative to the data dir
    content: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def now_iso() -> str:
    return clock.iso(time.time()) or ""


def _defuse(name: str) -> str:
    low = name.casefold()
    for ours in _OURS:
        if low.endswith(ours.casefold()) and len(name) > len(ours):
            i = name.rfind(".")
            return name[:i] + "_" + name[i:]
    return name


def choose_name(tree: Tree, dir_rel: str, base: str, companions: Callable[[str], list[str]], job_id: int,
                free: frozenset[str] = frozenset(), ours: bool = False) -> str:
    """The first of base, 'stem (2).ext', ... whose every companion name is free and looks like nothing
    already in the folder to a Windows user with extensions hidden (`申請書.pdf` beside `申請書.docx`
    becomes `申請書 (2).pdf`; names are compared without case, as the share does). A link there counts
    as taken: it is never written through. `free`: names this plan removes first (superseded notices).
    A folder that is missing, or refused, has every name free: carrying out the plan makes it, or fails
    and is retried. `ours`: a name the appliance made (a text-only rendition), not the sender's."""
    base = windows_safe(fit_name(clean_name(base), 255 - 40))
    if not ours:
        base = _defuse(base)
    try:
        dfd = tree.open_dir(dir_rel)
    except (FileNotFoundError, Refused):
        return base
    try:
        present = [n for n in os.listdir(dfd) if n not in free]
        taken = {n.casefold() for n in present}
        shown = {shown_name(n) for n in present if not n.startswith(".")}
        for n in range(1, 100000):
            cand = numbered(base, n)
            names = companions(cand)
            if not any(x.casefold() in taken or shown_name(x) in shown or safefs.exists(dfd, temp_name(x, job_id))
                       for x in names):
                return cand
    finally:
        os.close(dfd)
    raise Conflict(f"no free name for {base!r} in {dir_rel}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def _delivered(cand: str, separate_text: bool) -> list[str]:
    return [cand, cand + SIDECAR, cand + REPORT] + ([text_rendition_name(cand)] if separate_text else [])


def _blocked(cand: str) -> list[str]:
    return [cand + NOTICE, cand + REPORT]


def build_plan(*, data_dir: Path, inbox_dir: Path, job: dict[str, Any], result: dict[str, Any],
               cache_dir: Path | None, out_name: str | None, text_name: str | None,
               reused_from: int | None, deliver_as: str | None = None, receipt: str | None = None,
               supersede: list[dict[str, str]] | None = None, quiet: bool = False,
               tree: Tree | None = None, never: list[str] | None = None) -> dict[str, Any]:
    """Decide names and contents. `out_name`/`text_name` are files inside `cache_dir`;
    the output is delivered as `deliver_as` (default `out_name`). `supersede`: notices ({name, sha256})
    that this delivery replaces (a password retry that worked): removed first, their names free.
    `quiet`: nothing goes into the inbox (a password retry that failed: the first notice stands).
    `never`: the file's families the policy never releases (said in the clerk's report)."""
    job_id = int(job["id"])
    tree = tree or Tree(data_dir)
    dir_rel = tree.rel(inbox_dir)
    delivered_at = now_iso()
    remove = [{"name": f["name"], "sha256": f["sha256"]} for f in supersede or []]
    free = frozenset(f["name"] for f in remove)
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
    if quiet:
        return {"dir": dir_rel, "files": [], "main": None, "remove": remove}
    if result.get("verdict") == "blocked" or not out_name:
        name = choose_name(tree, dir_rel, job["name"], _blocked, job_id, free)
        report.update({
            "delivered": False,
            "notice_ja": "このファイルは配送していません。" + tl.verdict_sentence(result),
            "notice_en": "This file was not delivered. " + tl.verdict_sentence(result, "en"),
            "report_name": name + REPORT,
        })
        body = _json(report)
        ja = render_report(job=job, result=result, delivered_name=None, text_name=None, receipt=receipt,
                           never=never)
        files.append(PlannedFile(name + REPORT, "report", _sha(ja), content=ja.decode("utf-8")))
        files.append(PlannedFile(name + NOTICE, "notice", _sha(body.encode()), content=body))
        return {"dir": dir_rel, "files": [f.to_dict() for f in files], "main": name + NOTICE, "remove": remove}
    assert cache_dir is not None
    separate_text = bool(text_name) and text_name != out_name
    base, ours = deliver_as or out_name, False
    if not separate_text and text_name and tl.is_text_only(result) and base.lower().endswith(".txt"):
        # Text only (テキスト化): 申請書.docx.txt would show as 申請書.docx; it is 申請書_テキスト.txt.
        base, ours = text_rendition_name(base[:-4]), True
    name = choose_name(tree, dir_rel, base, lambda c: _delivered(c, separate_text), job_id, free, ours)
    out_src = cache_dir / out_name
    report.update({"delivered": True, "delivered_name": name, "output_sha256": result.get("output_sha256"),
                   "report_name": name + REPORT})
    shown_text = None
    if separate_text:
        tsrc = cache_dir / text_name
        tsha = _file_sha(tsrc)
        shown_text = text_rendition_name(name)
        files.append(PlannedFile(shown_text, "text", tsha, src=str(tsrc.relative_to(data_dir))))
        report.update({"text_name": shown_text, "text_sha256": tsha})
    elif text_name:
        report.update({"text_name": name, "text_sha256": result.get("output_sha256")})
    body = _json(report)
    ja = render_report(job=job, result=result, delivered_name=name, text_name=shown_text, receipt=receipt,
                       never=never)
    files.append(PlannedFile(name + REPORT, "report", _sha(ja), content=ja.decode("utf-8")))
    files.append(PlannedFile(name + SIDECAR, "sidecar", _sha(body.encode()), content=body))
    # The delivered file comes last: when it appears, its reports are already there.
    files.append(PlannedFile(name, "output", result["output_sha256"], src=str(out_src.relative_to(data_dir))))
    return {"dir": dir_rel, "files": [f.to_dict() for f in files], "main": name, "remove": remove}


def _iso(ts: float | None) -> str | None:
    return clock.iso(ts)


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
        for old in plan.get("remove") or []:
            # Superseded notices go first (theirs are the names this plan may reuse); only our own bytes.
            if safefs.sha256_of(dfd, old["name"]) == old["sha256"]:
                safefs.unlink(dfd, old["name"])
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
                if safefs.sha256_of(dfd, name) == f["sha256"]:
                    done.append(name)  # the same plan replayed at the same time (a node taking over)
                    continue
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
