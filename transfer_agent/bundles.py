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
from typing import Any

import nh3

from . import safefs
from .safefs import Tree

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


def _holds(dfd: int, name: str, data: bytes) -> bool:
    """True when `name` is a regular file (not a link) with exactly `data`."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        return f.read(len(data) + 1) == data


def put(tree: Tree, dir_rel: str, name: str, data: bytes, fsync: bool = True) -> bool:
    """Make `dir_rel/name` hold `data` (a temp name created with O_EXCL, fsync, renameat over the name).
    True when something else was there before.

    Our bundle documents are rebuilt from the ledger, so whatever else sits under their names
    (planted, or from an older run) is foreign and must not stand for the resident's data. A link there
    is replaced itself (its target is never opened) and reported; the folders on the way are reached
    without following links (safefs.Refused otherwise).
    """
    with tree.dir(dir_rel, create=True, fsync=fsync) as dfd:
        if _holds(dfd, name, data):
            return False
        st = safefs.lstat(dfd, name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            # A rename cannot replace a directory; move it aside (kept for the operator) instead.
            safefs.replace(dfd, name, f"{name}.foreign-{time.time_ns()}")
        elif st is not None and stat.S_ISLNK(st.st_mode):
            tree.note_link(dir_rel, name)
        tmp = f".{name}.tmp-{os.getpid()}"
        safefs.unlink(dfd, tmp)
        safefs.write_new(dfd, tmp, data, fsync)
        safefs.replace(dfd, tmp, name)
        if fsync:
            os.fsync(dfd)
    return st is not None


def remove_foreign(tree: Tree, dir_rel: str, name: str) -> bool:
    """Take away whatever sits under `name` (a folder is moved aside, a file or link removed itself)."""
    with tree.dir(dir_rel, create=True) as dfd:
        st = safefs.lstat(dfd, name)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            safefs.replace(dfd, name, f"{name}.foreign-{time.time_ns()}")
        else:
            if stat.S_ISLNK(st.st_mode):
                tree.note_link(dir_rel, name)
            safefs.unlink(dfd, name)
    return True


def write_form(tree: Tree, bundle: str, meta: dict[str, Any], fields: list[tuple[str, str]],
               files: list[dict[str, Any]], fsync: bool = True) -> list[str]:
    """Write form.json and form.txt into the bundle folder `bundle` (relative to the data dir;
    idempotent); returns the names that held foreign content."""
    doc, text = form_documents(meta, fields, files)
    return [name for name, data in (("form.json", doc), ("form.txt", text)) if put(tree, bundle, name, data, fsync)]


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


def write_manifest(tree: Tree, bundle: str, doc: dict[str, Any], fsync: bool = True) -> bool:
    """Write manifest.json; True when something else was there (it is replaced)."""
    return put(tree, bundle, "manifest.json", _dumps(doc), fsync)
