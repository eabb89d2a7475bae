"""The e-application bundle: inbox/<channel>/<date>/<receipt>/ with form.json, form.txt, manifest.json.

The delivered files, sidecars, reports, text renditions and blocked notices are written into the same
folder by the appliance's delivery. Field values reach clerks exactly as typed (`山田 花子
<hanako@example.jp>` stays whole): only control and format characters (bidi overrides, zero-width) are
taken out, and line ends become CRLF in form.txt. Nothing here is markup: form.txt is plain text, and
the console escapes whatever it shows.
"""
from __future__ import annotations

import json
import os
import stat
import time
import unicodedata
from typing import Any

from . import clock, safefs
from .safefs import Tree

_KEEP = {"\n", "\t"}
BOM = "\ufeff"  # Notepad on every Windows version reads UTF-8 with a BOM correctly


def field_text(value: str) -> str:
    """A field value as typed, minus control and format characters (CR LF and CR become LF; tab kept)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    # Cc = control, Cf = format (bidi overrides, zero-width), Cs = lone surrogates.
    return "".join(c for c in value if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def crlf_text(lines: list[str]) -> bytes:
    """Lines as a text file a clerk opens by double-click: UTF-8 with a BOM, CRLF line ends."""
    return (BOM + "\r\n".join(line.replace("\n", "\r\n") for line in lines) + "\r\n").encode("utf-8")


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def form_documents(meta: dict[str, Any], fields: list[tuple[str, str]],
                   files: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """(form.json, form.txt) contents. `meta` has receipt, submission_id, client, channel, received_at; and
    with a form (forms.py), its name and the labels of its fields."""
    labels: dict[str, str] = meta.get("labels") or {}
    doc = {
        "receipt": meta["receipt"],
        "submission_id": meta["submission_id"],
        "client": meta["client"],
        "channel": meta["channel"],
        "received_at": clock.iso(meta["received_at"]),
        "fields": [{"name": field_text(k), "value": field_text(v), **({"label": labels[k]} if k in labels else {})}
                   for k, v in fields],
        "files": [{"name": f["name"], "sent_name": field_text(f.get("sent_name") or f["name"]), "size": f["size"],
                   "sha256": f["sha256"]} for f in files],
    }
    lines = [
        "電子申請 受付内容",
        f"受付番号: {meta['receipt']}",
        f"受付日時: {clock.shown(meta['received_at'], seconds=True)}",
        f"送信元: {field_text(meta['client'])}",
        f"チャネル: {meta['channel']}",
        *([f"フォーム: {meta['form']}"] if meta.get("form") else []),
        "",
    ]
    if meta.get("form"):
        doc["form"] = meta["form"]
    for k, v in fields:
        lines.append(f"【{field_text(labels.get(k, k)) or '（無題）'}】")
        lines.append(field_text(v) or "（空欄）")
        lines.append("")
    lines.append(f"添付ファイル（{len(files)}件）:")
    for f in files:
        sent = field_text(f.get("sent_name") or f["name"])
        lines.append(f"- {sent} ({f['size']:,} バイト)")
        if f["name"] != sent:
            lines.append(f"  （受信フォルダでは {f['name']} という名前になります）")
    return _dumps(doc), crlf_text(lines)


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
        "received_at": clock.iso(meta["received_at"]),
        "completed_at": clock.iso(completed_at),
        "form": ["form.json", "form.txt"],
        "summary": counts,
        "files": file_entries,
    }


def write_manifest(tree: Tree, bundle: str, doc: dict[str, Any], fsync: bool = True) -> bool:
    """Write manifest.json; True when something else was there (it is replaced)."""
    return put(tree, bundle, "manifest.json", _dumps(doc), fsync)
