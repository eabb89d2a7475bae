"""The e-application bundle: inbox/<channel>/<date>/<receipt>/ with form.json, form.txt, manifest.json.

The delivered files, sidecars, text renditions and blocked notices are written into the same
folder by the appliance's delivery. Field values reach clerks as plain text: markup removed
(script/style bodies too), control and bidi characters removed, Japanese kept as written.
"""
from __future__ import annotations

import html
import json
import os
import re
import stat
import time
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

import nh3

from .files import fsync_dir

_KEEP = {"\n", "\t"}
_BLANKS = re.compile(r"\n{3,}")
_MAX_ROUNDS = 8
# '<' that starts a tag, comment, doctype or processing instruction in an HTML viewer.
_TAGLIKE = re.compile(r"<[A-Za-z!/?]")


def _strip_markup(value: str) -> str:
    """nh3 drops every tag and the bodies of script/style; unescape gives the text back.

    Repeated until stable: otherwise `&lt;script&gt;` would come back as a live `<script>`.
    If it does not settle (deeply nested escapes) or something still looks like a tag, the
    brackets become full-width: readable for clerks, never markup for an HTML viewer.
    """
    for _ in range(_MAX_ROUNDS):
        out = html.unescape(nh3.clean(value, tags=set(), attributes={}, strip_comments=True))
        if out == value:
            break
        value = out
    else:
        return value.replace("<", "＜").replace(">", "＞").replace("&", "＆")
    if _TAGLIKE.search(value):
        value = value.replace("<", "＜").replace(">", "＞")
    return value


def plain_text(value: str) -> str:
    """A field value as safe plain text."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if "<" in value or "&" in value:
        value = _strip_markup(value)
    value = unicodedata.normalize("NFC", value)
    # Cc = control, Cf = format (bidi overrides, zero-width), Co/Cs/Cn = private/surrogate/unassigned.
    value = "".join(c for c in value if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return _BLANKS.sub("\n\n", value).strip()


def write_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write under a dot-name, fsync, rename: clerks never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def form_documents(meta: dict[str, Any], fields: list[tuple[str, str]],
                   files: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """(form.json, form.txt) contents. `meta` has receipt, submission_id, client, channel, received_at."""
    received = datetime.fromtimestamp(meta["received_at"]).astimezone()
    doc = {
        "receipt": meta["receipt"],
        "submission_id": meta["submission_id"],
        "client": meta["client"],
        "channel": meta["channel"],
        "received_at": received.isoformat(timespec="seconds"),
        # Same cleaning as form.txt: no markup, control or bidi characters reach the LGWAN side.
        "fields": [{"name": plain_text(k), "value": plain_text(v)} for k, v in fields],
        "files": [{"name": f["name"], "size": f["size"], "sha256": f["sha256"]} for f in files],
    }
    lines = [
        "電子申請 受付内容",
        f"受付番号: {meta['receipt']}",
        f"受付日時: {received.strftime('%Y-%m-%d %H:%M:%S')}",
        f"送信元: {plain_text(meta['client'])}",
        f"チャネル: {meta['channel']}",
        "",
    ]
    for k, v in fields:
        lines.append(f"【{plain_text(k) or '（無題）'}】")
        lines.append(plain_text(v) or "（空欄）")
        lines.append("")
    lines.append(f"添付ファイル（{len(files)}件）:")
    for f in files:
        lines.append(f"- {plain_text(f['name'])} ({f['size']:,} バイト)")
    text = "\n".join(lines) + "\n"
    return _dumps(doc), text.encode("utf-8")


def _holds(path: Path, data: bytes) -> bool:
    """True when `path` is a regular file (not a link) with exactly `data`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        return f.read(len(data) + 1) == data


def put(path: Path, data: bytes, fsync: bool = True) -> bool:
    """Make `path` hold `data` (atomic replace). True when something else was there before.

    Our bundle documents are rebuilt from the ledger, so whatever else sits under their names
    (planted, or from an older run) is foreign and must not stand for the resident's data.
    """
    if _holds(path, data):
        return False
    foreign = os.path.lexists(path)
    if foreign and path.is_dir() and not path.is_symlink():
        # A rename cannot replace a directory; move it aside (kept for the operator) instead.
        path.rename(path.with_name(f"{path.name}.foreign-{time.time_ns()}"))
    write_atomic(path, data, fsync)
    return foreign


def write_form(bundle: Path, meta: dict[str, Any], fields: list[tuple[str, str]],
               files: list[dict[str, Any]], fsync: bool = True) -> list[str]:
    """Write form.json and form.txt (idempotent); returns the names that held foreign content."""
    doc, text = form_documents(meta, fields, files)
    return [name for name, data in (("form.json", doc), ("form.txt", text)) if put(bundle / name, data, fsync)]


def manifest(meta: dict[str, Any], file_entries: list[dict[str, Any]], completed_at: float) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for f in file_entries:
        counts[f.get("verdict") or "blocked"] = counts.get(f.get("verdict") or "blocked", 0) + 1
    return {
        "receipt": meta["receipt"],
        "submission_id": meta["submission_id"],
        "client": meta["client"],
        "channel": meta["channel"],
        "received_at": datetime.fromtimestamp(meta["received_at"]).astimezone().isoformat(timespec="seconds"),
        "completed_at": datetime.fromtimestamp(completed_at).astimezone().isoformat(timespec="seconds"),
        "form": ["form.json", "form.txt"],
        "summary": counts,
        "files": file_entries,
    }


def write_manifest(bundle: Path, doc: dict[str, Any], fsync: bool = True) -> bool:
    """Write manifest.json; True when something else was there (it is replaced)."""
    return put(bundle / "manifest.json", _dumps(doc), fsync)
