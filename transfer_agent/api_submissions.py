"""E-application intake over REST: POST /api/v1/submissions, GET /api/v1/submissions/{id}.

This process never parses a document. The multipart body is streamed straight into
work/api-uploads/<id>/ (bounded: total bytes, file count, field count and size), then each
file is handed to the appliance (quarantine, ledger job, worker pool) with its bundle folder
`inbox/<channel>/<date>/<receipt>/`, its PPAP password and the submission id. The status
endpoint reports verdicts only. Every error is JSON: {"error", "message", "message_ja"}.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from . import apikeys, bundles, clock
from . import forms as forms_mod
from .api_errors import ApiError
from .api_limits import ClientLimits, RateLimiter, Upload
from .channels import channel_name
from .crashpoints import crashpoint
from .files import clean_name, numbered
from .ledger import FINAL, Ledger, loads
from .portal_db import ensure_schema
from .safefs import Tree

log = logging.getLogger("transfer_agent.api")

_CHANNEL_MAX = 64
_IDEM = re.compile(r"[\x21-\x7e]{1,200}")  # used with fullmatch: no trailing newline
_PASSWORDS_MAX = 32 * 1024  # characters; 50 files x (name + password) fits easily
_HEADER_MAX = 8192
# RFC 5987/6266 extended parameter, which python-multipart ignores: filename*=UTF-8''%E8%BB%A2.docx
_EXT_FILENAME = re.compile(rb';\s*filename\*\s*=\s*"?([^";]*)"?', re.IGNORECASE)
_EXT_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "iso-8859-1": "latin-1", "latin1": "latin-1",
                 "shift_jis": "cp932", "cp932": "cp932", "windows-31j": "cp932"}
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
SPECIAL = ("passwords", "channel")
_DRAIN_MAX = 16 * 1024 * 1024

# handover(src, channel=, name=, subdir=, submission_id=, password=) -> job id.
Handover = Callable[..., int]


@dataclass
class ApiSettings:
    max_upload_mb: float = 100.0
    max_files: int = 50
    max_fields: int = 200
    max_field_kb: int = 64
    rate_per_minute: float = 60.0
    rate_burst: int = 20
    concurrent_per_key: int = 4
    mb_per_hour: float = 2048.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class FormRejected(ApiError):
    """The channel's form does not accept the submission: 422 with each field's errors (Japanese, English)."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__(422, "invalid_form", "the submission does not match the channel's form",
                         "入力内容に誤りがあります（各項目のメッセージを確認してください）")
        self.errors = errors

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.code, "message": self.en, "message_ja": self.ja,
                             "fields": [e.to_dict() for e in self.errors]}, status_code=422)


class ExchangeClosed(Exception):
    """An upload request that took no more submissions by the time one was recorded (revoked, expired,
    used up)."""




# --------------------------------------------------------------------------- multipart streaming

def _decode_header_text(raw: bytes) -> str:
    """parse_options_header gives latin-1; the client meant UTF-8 (or, from old Windows, cp932)."""
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def _ext_filename(disp: bytes) -> str | None:
    """The RFC 5987 `filename*` of a Content-Disposition, or None when absent or unusable."""
    m = _EXT_FILENAME.search(disp)
    if m is None:
        return None
    charset, sep, rest = m.group(1).partition(b"'")
    _lang, sep2, pct = rest.partition(b"'")
    codec = _EXT_CHARSETS.get(charset.decode("latin-1").strip().lower())
    if not sep or not sep2 or codec is None:
        return None
    try:
        return unquote_to_bytes(pct.strip()).decode(codec) or None
    except UnicodeDecodeError:
        return None


def _percent_decoded(name: str) -> str:
    """`%E8%BB%A2%E5%85%A5%E5%B1%8A.docx` (sent by browsers and some clients) -> `転入届.docx`.

    Only when the escapes spell non-ASCII UTF-8: `50%20off.pdf` may be a literal name.
    """
    if not name.isascii() or not _PCT.search(name):
        return name
    raw = unquote_to_bytes(name)
    if raw.isascii():
        return name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return name


@dataclass
class StagedFile:
    name: str  # as the sender wrote it (cleaned)
    sent_name: str
    path: Path
    size: int = 0
    sha256: str = ""
    unnamed: bool = False  # the part had no file name


class _Collector:
    """Callbacks for python-multipart's streaming parser: files to disk, fields bounded in memory."""

    def __init__(self, stage: Path, s: ApiSettings, browser: bool = False) -> None:
        self.stage, self.s = stage, s
        # A browser's form sends a file part with no name and no bytes when nothing was chosen: dropped.
        self.browser = browser
        self.files: list[StagedFile] = []
        self.fields: list[tuple[str, str]] = []
        self.ended = False
        self._hname = bytearray()
        self._hval = bytearray()
        self._disp = b""
        self._cur_file: StagedFile | None = None
        self._fh: Any = None
        self._hash: Any = None
        self._field_name = ""
        self._field = bytearray()
        # The appliance's own bundle files: an upload never takes their names.
        self._taken: set[str] = {"form.json", "form.txt", "manifest.json"}
        self._parts = 0

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_end": self.end}

    def part_begin(self) -> None:
        self._disp = b""
        self._cur_file = None
        self._field = bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]
        if len(self._hname) > _HEADER_MAX:
            raise ApiError(400, "malformed", "part header too long", "マルチパートのヘッダーが長すぎます")

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._hval += data[start:end]
        if len(self._hval) > _HEADER_MAX:
            raise ApiError(400, "malformed", "part header too long", "マルチパートのヘッダーが長すぎます")

    def header_end(self) -> None:
        if bytes(self._hname).strip().lower() == b"content-disposition":
            self._disp = bytes(self._hval)
        self._hname, self._hval = bytearray(), bytearray()

    def headers_finished(self) -> None:
        self._parts += 1
        disp, opts = parse_options_header(self._disp)
        if disp != b"form-data" or b"name" not in opts:
            raise ApiError(400, "malformed", "each part needs Content-Disposition: form-data; name=...",
                           "各パートに Content-Disposition: form-data; name=... が必要です")
        name = _decode_header_text(opts[b"name"])
        ext = _ext_filename(self._disp)
        if name == "files" or b"filename" in opts or ext is not None:
            if len(self.files) >= self.s.max_files:
                raise ApiError(413, "too_many_files", f"at most {self.s.max_files} files per submission",
                               f"1回の申請で送れるファイルは{self.s.max_files}件までです")
            # filename* wins (RFC 6266 section 4.3); a plain name may be percent-encoded UTF-8.
            given = ext or _percent_decoded(_decode_header_text(opts.get(b"filename", b"")))
            sent = given or "file"
            # Windows clients may send a full path; keep the last component only.
            sent = sent.replace("\\", "/").rsplit("/", 1)[-1] or "file"
            if not self.browser and not given.replace("\\", "/").rsplit("/", 1)[-1].strip():
                # `-F files=` (an empty field) or a file part without a name: nothing a clerk could open.
                raise ApiError(400, "missing_filename",
                               f"part {self._parts} ({name!r}) has no filename: send files as"
                               f" name=\"files\"; filename=\"NAME\"",
                               f"{self._parts}番目のパート（{name}）にファイル名がありません。"
                               "ファイルは filename を付けて送ってください")
            clean = clean_name(sent)
            n = 1
            while numbered(clean, n).lower() in self._taken:
                n += 1
            clean = numbered(clean, n)
            self._taken.add(clean.lower())
            f = StagedFile(clean, sent, self.stage / f"{len(self.files):04d}", unnamed=not given)
            self.files.append(f)
            self._cur_file = f
            self._fh = open(f.path, "xb")  # noqa: SIM115 - closed in part_end / close()
            self._hash = hashlib.sha256()
        else:
            if len(self.fields) >= self.s.max_fields:
                raise ApiError(413, "too_many_fields", f"at most {self.s.max_fields} form fields",
                               f"フォーム項目は{self.s.max_fields}個までです")
            self._field_name = name

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._cur_file is not None:
            self._fh.write(chunk)
            self._hash.update(chunk)
            self._cur_file.size += len(chunk)
        else:
            if len(self._field) + len(chunk) > self.s.max_field_kb * 1024:
                raise ApiError(413, "field_too_large", f"a form field is larger than {self.s.max_field_kb} KB",
                               f"フォーム項目の値が大きすぎます（上限 {self.s.max_field_kb} KB）")
            self._field += chunk

    def part_end(self) -> None:
        if self._cur_file is not None:
            self._fh.close()
            self._fh = None
            self._cur_file.sha256 = self._hash.hexdigest()
            if self.browser and self._cur_file.unnamed and self._cur_file.size == 0:
                self._cur_file.path.unlink()
                self.files.pop()
                self._taken.discard(self._cur_file.name.lower())
            self._cur_file = None
        else:
            try:
                value = bytes(self._field).decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_encoding", f"field {self._field_name!r} is not UTF-8",
                               f"フォーム項目「{self._field_name}」が UTF-8 ではありません") from None
            self.fields.append((self._field_name, value))

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------- the service

def _all_threats(result: dict[str, Any] | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if not result:
        return out

    def walk(r: dict[str, Any], prefix: str) -> None:
        for t in r.get("threats") or []:
            loc = t.get("location") or ""
            out.append({"id": t.get("id", ""), "action": t.get("action", ""),
                        "location": f"{prefix}{loc}" if prefix else loc})
        for c in r.get("children") or []:
            walk(c, f"{prefix}{c.get('source', '')}:")

    walk(result, "")
    return out


class SubmissionService:
    """Everything the router does that is not HTTP: staging, receipts, handover, bundle, status."""

    def __init__(self, ledger: Ledger, data_dir: Path, handover: Handover | None,
                 settings: ApiSettings | None = None, default_channel: str = "default",
                 fsync: bool = True, channels: Iterable[str] = (), dropbox: Path | None = None,
                 tree: Tree | None = None, wake: Callable[[], None] | None = None, forms: Any = None) -> None:
        self.ledger = ledger
        self.forms = forms  # forms.FormBook: the channels' forms (None: no form checks)
        self.on_done: list[Callable[[str], None]] = []  # called with the id once a submission is done
        # Internet-side process: no handover here; `wake` tells the core a submission is recorded.
        self.wake = wake
        self._wake_event = threading.Event()
        self._handover_lock = threading.Lock()
        self._retry_at: dict[str, float] = {}  # submission id -> when a failed handover is tried again
        self.data_dir = Path(data_dir)
        self.tree = tree or Tree(self.data_dir)  # bundle files are written through it (no link followed)
        self.handover = handover
        self.settings = settings or ApiSettings()
        self.default_channel = default_channel
        # Channels a request may name: the default, the configured ones ([channels.NAME]) and the
        # channel folders that exist under the dropbox; names cleaned as the dropbox side does.
        self.channels = {channel_name(c) for c in channels}
        self.dropbox = Path(dropbox) if dropbox is not None else None
        self.fsync = fsync
        self.stage_root = self.data_dir / "work" / "api-uploads"
        self.node: Any = None  # cluster.Node of the serve node (the core), if any
        self.limiter = RateLimiter(self.settings.rate_per_minute / 60.0, self.settings.rate_burst)
        self.limits = ClientLimits(ledger, self.settings.concurrent_per_key,
                                   int(self.settings.mb_per_hour * 1024 * 1024))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._final_lock = threading.Lock()
        self.last_tick = time.monotonic()
        ensure_schema(ledger)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Finish handovers interrupted by a crash, then watch submissions until they are done."""
        self.stage_root.mkdir(parents=True, exist_ok=True)
        self.recover()
        self._thread = threading.Thread(target=self._run, name="submissions", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is None or (self._thread.is_alive() and time.monotonic() - self.last_tick < 60)

    def poke(self) -> None:
        """The internet-side process recorded a submission: hand it over now, not at the next look."""
        self._wake_event.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake_event.wait(0.5)
            self._wake_event.clear()
            if self._stop.is_set():
                return
            try:
                self.finalize_ready()
            except sqlite3.ProgrammingError:  # also db.Closed (PostgreSQL)
                return  # the ledger was closed: the appliance is stopping
            except Exception:  # noqa: BLE001 - retried on the next tick
                log.exception("submission finalizer failed", extra={"event": "error"})
            self.last_tick = time.monotonic()

    def recover(self) -> None:
        held = self.node is None or self.node.lease("submissions", 120.0)
        for row in self.ledger.query("SELECT * FROM submissions WHERE status = 'received'") if held else []:
            try:
                self._hand_over(row, loads(row["files"]), None)
            except Exception:  # noqa: BLE001 - leave it for the next start
                log.exception("submission recovery failed", extra={"event": "error", "submission": row["id"]})
        # Staging folders of submissions that never got a row (crash while uploading).
        if self.stage_root.is_dir():
            # Another serve node's internet side may be receiving one right now: only old ones go then.
            old = time.time() - (3600 if self.node is not None else -1)
            for d in self.stage_root.iterdir():
                if self.ledger.one("SELECT 1 FROM submissions WHERE id = ? AND status = 'received'",
                                   (d.name,)) is None and d.stat().st_mtime < old:
                    shutil.rmtree(d, ignore_errors=True)

    # ---------------------------------------------------------------- intake
    async def receive(self, request: Request, client: apikeys.ApiClient, up: Upload | None = None
                      ) -> tuple[int, dict[str, Any]]:
        """The REST intake: the body staged (`staged`), checked and recorded (`record`); `up` counts the
        bytes against the client's hourly quota (api_limits.py)."""
        sub_id = secrets.token_hex(12)
        async with self.staged(request, sub_id, up=up) as col:
            return await run_in_threadpool(self._create, sub_id, col.stage, col, client,
                                           request.headers.get("idempotency-key"))

    @asynccontextmanager
    async def staged(self, request: Request, sub_id: str, max_bytes: int | None = None, browser: bool = False,
                     up: Upload | None = None) -> AsyncIterator[_Collector]:
        """Stream a multipart body into work/api-uploads/<sub_id>/ (bounded: `max_bytes`, else the API's
        upload limit; file and field counts and sizes) and yield the collector once the body is complete.
        The same for the REST API and the upload page. The staged files are removed on the way out unless
        a submission row still needs them (handover pending)."""
        s = self.settings
        limit = min(max_bytes or s.max_upload_bytes, s.max_upload_bytes)
        ctype = request.headers.get("content-type", "")
        kind, params = parse_options_header(ctype)
        if kind != b"multipart/form-data" or not params.get(b"boundary"):
            raise ApiError(415, "unsupported_media_type", "send multipart/form-data with a boundary",
                           "multipart/form-data 形式で送信してください")
        clen = request.headers.get("content-length")
        if clen is not None:
            if not (clen.isascii() and clen.isdigit()):
                raise ApiError(400, "malformed", "bad Content-Length", "Content-Length が不正です")
            if int(clen) > limit:
                await self._drain(request, int(clen) - limit)
                raise self._too_large(limit)
        stage = self.stage_root / sub_id
        stage.mkdir(parents=True)
        col = _Collector(stage, s, browser)
        total = 0
        over_at: int | None = None
        try:
            try:
                parser = MultipartParser(params[b"boundary"], col.callbacks())
            except (MultipartParseError, ValueError) as exc:
                raise ApiError(400, "malformed", f"bad multipart boundary: {exc}",
                               "マルチパートの境界指定が不正です") from None
            async for chunk in request.stream():
                total += len(chunk)
                if up is not None:
                    up.add(len(chunk))
                    if up.over is not None:
                        # Over the hourly quota: read on (and drop) a little so the client gets our 429.
                        col.close()
                        over_at = total if over_at is None else over_at
                        if total - over_at > _DRAIN_MAX:
                            raise up.over
                        continue
                if total > limit:
                    # Read on (and drop) a little more so the client gets our 413 and not a reset.
                    if total > limit + _DRAIN_MAX:
                        raise self._too_large(limit)
                    col.close()
                    continue
                try:
                    parser.write(chunk)
                except MultipartParseError as exc:
                    raise ApiError(400, "malformed", f"malformed multipart body: {exc}",
                                   "マルチパートの本文が不正です") from None
            if up is not None and up.over is not None:
                raise up.over
            if total > limit:
                raise self._too_large(limit)
            try:
                parser.finalize()
            except MultipartParseError as exc:
                raise ApiError(400, "malformed", f"malformed multipart body: {exc}",
                               "マルチパートの本文が不正です") from None
            if not col.ended:
                raise ApiError(400, "malformed", "multipart body is incomplete (no closing boundary)",
                               "マルチパートの本文が途中で終わっています")
            col.close()
            yield col
        finally:
            col.close()
            # Keep the staged files only while a submission row still needs them (handover retried).
            row = await run_in_threadpool(self.ledger.one, "SELECT status FROM submissions WHERE id = ?", (sub_id,))
            if row is None or row["status"] != "received":
                shutil.rmtree(stage, ignore_errors=True)

    def _too_large(self, limit: int | None = None) -> ApiError:
        mb = (limit or self.settings.max_upload_bytes) / (1024 * 1024)
        return ApiError(413, "too_large", f"the upload is larger than {mb:g} MB",
                        f"送信データが上限（{mb:g} MB）を超えています")

    @staticmethod
    async def _drain(request: Request, excess: int) -> None:
        """Read (and drop) a moderately oversized body so the client gets our 413 and not a reset."""
        if excess > _DRAIN_MAX:
            return
        async for _ in request.stream():
            pass

    def _channel(self, value: str, client: apikeys.ApiClient) -> str:
        """The channel a request names, if it is usable, known and within the key's binding; else a
        400 (unusable or unknown name) or 403 (another department's channel). Names compare after NFKC
        and case folding, as the dropbox's folder names do (channels.py)."""
        name = unicodedata.normalize("NFC", value)
        # clean_name is what the dropbox side does to folder names: anything it would change
        # (newline, control/bidi characters, '/', a leading dot, '..') is not a channel name.
        if not 1 <= len(name) <= _CHANNEL_MAX or clean_name(name) != name:
            raise ApiError(400, "bad_channel", "channel is not a usable channel name (1..64 characters,"
                           " no '/', control characters or leading dot)",
                           "channel の値が不正です（64文字以内で、「/」・制御文字・先頭のドットは使えません）")
        key = channel_name(name)
        if key == "default" and key not in self.channels and key not in client.scope.names:
            key = self.default_channel  # the documented name of whatever the default channel is
        if client.scope.domain is not None and not client.scope.domain.contains(key):
            # Another tenant's channel answers exactly as one that does not exist: nothing leaks.
            raise ApiError(400, "unknown_channel", "this channel is not configured on the appliance",
                           "指定された channel はこの装置に設定されていません。管理者に確認してください")
        if not client.scope.allows(key):
            raise ApiError(403, "channel_forbidden", "this API key may not submit to this channel",
                           "この API キーでは、指定された channel に送信できません")
        if key == self.default_channel or key in self.channels or key in client.scope.names:
            return key
        if self.dropbox is not None and self._dropbox_channel(key):
            return key
        raise ApiError(400, "unknown_channel", "this channel is not configured on the appliance",
                       "指定された channel はこの装置に設定されていません。管理者に確認してください")

    def _dropbox_channel(self, key: str) -> bool:
        """A channel folder under the dropbox (not a link) whose name is this channel."""
        assert self.dropbox is not None
        try:
            with os.scandir(self.dropbox) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False) and channel_name(e.name) == key:
                        return True
        except OSError:
            pass
        return False

    def _default_channel(self, client: apikeys.ApiClient) -> str:
        """No channel field: the default channel, or the key's only channel when it is bound to one."""
        if client.scope.only is not None:  # one channel (a binding, or a tenant owning one)
            return client.scope.only
        if not client.scope.allows(self.default_channel):
            raise ApiError(403, "channel_forbidden", "this API key may not submit to the default channel;"
                           " name one of its channels in the channel field",
                           "この API キーでは既定のチャネルに送信できません。channel で送信先を指定してください")
        return self.default_channel

    def _parse_special(self, fields: list[tuple[str, str]], files: list[StagedFile], client: apikeys.ApiClient
                       ) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
        channel: str | None = None
        passwords: dict[str, str] = {}
        rest: list[tuple[str, str]] = []
        for k, v in fields:
            if k == "channel":
                channel = self._channel(v, client)
            elif k == "passwords":
                pw: Any = None
                text = v.strip()
                # Only an object is valid; checking first (and the size) keeps deep nesting
                # such as '[[[[...' away from json.loads (RecursionError).
                if len(text) <= _PASSWORDS_MAX and text.startswith("{"):
                    try:
                        pw = json.loads(text)
                    except (ValueError, RecursionError):
                        pw = None
                if not isinstance(pw, dict) or not all(isinstance(a, str) and isinstance(b, str)
                                                        for a, b in pw.items()):
                    raise ApiError(400, "bad_passwords",
                                   f"passwords must be a JSON object (at most {_PASSWORDS_MAX // 1024} KB):"
                                   " file name -> password",
                                   "passwords は「ファイル名: パスワード」の JSON オブジェクトで指定してください"
                                   f"（{_PASSWORDS_MAX // 1024} KB まで）")
                passwords.update(pw)
            else:
                rest.append((k, v))
        known = {f.name for f in files} | {f.sent_name for f in files}
        unknown = [n for n in passwords if n not in known]
        if unknown:
            raise ApiError(400, "bad_passwords", f"passwords given for files not in the submission: {unknown}",
                           "passwords に、送信されていないファイル名が含まれています")
        return channel if channel is not None else self._default_channel(client), passwords, rest

    def _create(self, sub_id: str, stage: Path, col: _Collector, client: apikeys.ApiClient,
                idem: str | None) -> tuple[int, dict[str, Any]]:
        if idem is not None and not _IDEM.fullmatch(idem):
            raise ApiError(400, "bad_idempotency_key", "Idempotency-Key: 1..200 visible ASCII characters",
                           "Idempotency-Key は 200 文字以内の英数記号で指定してください")
        channel, passwords, fields = self._parse_special(col.fields, col.files, client)
        form = None
        if self.forms is not None and self.forms.names_form(channel):
            # The channel names its form: the same rules as its upload page (forms.py).
            form = self.forms.form(channel)
            fields, errors = form.validate(fields, [{"name": f.name, "size": f.size} for f in col.files])
            if errors:
                raise FormRejected(errors)
        receipt_to = ([v for k, v in fields if (f := form.field(k)) is not None and f.receipt]
                      if form is not None else [])
        sub_id, receipt, replayed = self.record(
            sub_id, col.files, channel=channel, fields=fields, passwords=passwords, client=client.client,
            api_key_id=client.id, actor=f"api:{client.client}", audit_extra={"key_prefix": client.prefix},
            idem=idem, form=form, receipt_to=list(dict.fromkeys(receipt_to)) or None)
        return (200 if replayed else 202), self._accepted(sub_id, receipt, replay=replayed)

    def record(self, sub_id: str, files: list[StagedFile], *, channel: str, fields: list[tuple[str, str]],
               client: str, api_key_id: int, actor: str, passwords: dict[str, str] | None = None,
               idem: str | None = None, form: Any = None, source: str = "api", request: Any = None,
               receipt_to: list[str] | None = None, status_hash: str | None = None,
               audit_extra: dict[str, Any] | None = None) -> tuple[str, str, bool]:
        """Record a checked submission and its staged files: receipt number, ledger row, audit row
        'api.submission', then the handover (here) or a wake of the core (internet side). The one path of
        the REST API and the upload page. Returns (id, receipt, replayed). With `request`, the upload
        request's use is counted in the same transaction; ExchangeClosed if it no longer takes any."""
        passwords = passwords or {}
        files_meta = [{"name": f.name, "sent_name": f.sent_name, "size": f.size, "sha256": f.sha256} for f in files]
        same = [{k: m[k] for k in ("name", "size", "sha256")} for m in files_meta]  # as before sent_name was kept
        fingerprint = hashlib.sha256(json.dumps(
            [channel, fields, same, sorted(passwords.items())], ensure_ascii=False).encode()).hexdigest()
        now = time.time()
        day = clock.day(now)  # the appliance's zone (JST by default), whatever the server's
        with self.ledger.tx() as t:
            if idem is not None:
                prev = t.execute("SELECT id, receipt, idem_hash FROM submissions WHERE api_key_id = ? AND"
                                 " idem_key = ?", (api_key_id, idem)).fetchone()
                if prev is not None:
                    if prev[2] != fingerprint:
                        raise ApiError(409, "idempotency_conflict",
                                       "this Idempotency-Key was used for a different submission",
                                       "この Idempotency-Key は別の内容の申請で使われています")
                    return prev[0], prev[1], True
            if request is not None:
                # Counted with the submission, so max_uses holds however many senders post at once.
                cur = t.execute("UPDATE upload_requests SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL"
                                " AND expires_at > ? AND (max_uses IS NULL OR uses < max_uses)", (request.id, now))
                if not cur.rowcount:
                    raise ExchangeClosed(request.id)
            n = t.execute("INSERT INTO receipt_seq(day, n) VALUES (?, 1) ON CONFLICT(day) DO UPDATE"
                          " SET n = receipt_seq.n + 1 RETURNING n", (day,)).fetchone()[0]
            receipt = f"{day.replace('-', '')}-{n:04d}"
            bundle = Path("inbox") / channel / day / receipt
            t.execute("INSERT INTO submissions(id, receipt, api_key_id, client, channel, day, bundle_dir, fields,"
                      " files, status, idem_key, idem_hash, created_at, source, request_id, form, status_hash,"
                      " receipt_to) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (sub_id, receipt, api_key_id, client, channel, day, str(bundle),
                       json.dumps(fields, ensure_ascii=False),
                       json.dumps([dict(m, stage=str(f.path.relative_to(self.data_dir)),
                                        password=passwords.get(f.name, passwords.get(f.sent_name)))
                                   for m, f in zip(files_meta, files, strict=True)], ensure_ascii=False),
                       "received", idem, fingerprint if idem else None, now, source,
                       request.id if request is not None else None, form.name if form is not None else None,
                       status_hash, json.dumps(receipt_to, ensure_ascii=False) if receipt_to else None))
            if source == "api":
                t.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, api_key_id))
            data = {"submission_id": sub_id, "receipt": receipt, "client": client, "channel": channel,
                    "fields": len(fields), "files": files_meta, "passwords_for": sorted(passwords),
                    **(audit_extra or {})}
            if source != "api":
                data["source"] = source
            if form is not None:
                data["form"] = form.name
            if request is not None:
                data["request_id"] = request.id
            t.audit("api.submission", data, actor=actor)
        row = self.ledger.one("SELECT * FROM submissions WHERE id = ?", (sub_id,))
        if self.wake is not None:
            self.wake()  # the core writes the bundle and takes the files (it also looks by itself)
            log.info("submission recorded", extra={"event": "api.submission", "submission": sub_id,
                                                   "receipt": receipt, "files": len(files_meta), "source": source})
            return sub_id, receipt, False
        try:
            self._hand_over(row, loads(row["files"]), fields)
        except Exception:
            # The row and the staged files stay; the finalizer retries the handover.
            log.exception("handover failed", extra={"event": "error", "submission": sub_id})
            raise ApiError(503, "unavailable", "received but not yet queued; it will be retried",
                           "受け付けましたが処理待ちに入れられませんでした。自動で再試行します") from None
        log.info("submission received", extra={"event": "api.submission", "submission": sub_id,
                                                "receipt": receipt, "files": len(files_meta), "source": source})
        return sub_id, receipt, False

    @staticmethod
    def _accepted(sub_id: str, receipt: str, replay: bool = False) -> dict[str, Any]:
        body = {"id": sub_id, "receipt": receipt, "status_url": f"/api/v1/submissions/{sub_id}"}
        if replay:
            body["replayed"] = True
        return body

    def _hand_over(self, row: Any, files: list[dict[str, Any]], fields: list[tuple[str, str]] | None) -> None:
        """Write the form documents, then give each staged file to the appliance (idempotent; one
        handover at a time, and only of a submission still 'received')."""
        with self._handover_lock:
            fresh = self.ledger.one("SELECT * FROM submissions WHERE id = ?", (row["id"],))
            if fresh is None or fresh["status"] != "received":
                return
            self._hand_over_locked(fresh, loads(fresh["files"]), fields)

    def _hand_over_locked(self, row: Any, files: list[dict[str, Any]], fields: list[tuple[str, str]] | None
                          ) -> None:
        crashpoint("api.handover")
        bundle = row["bundle_dir"]
        meta = {"receipt": row["receipt"], "submission_id": row["id"], "client": row["client"],
                "channel": row["channel"], "received_at": row["created_at"]}
        form = self.forms.cfg.forms.get(row["form"]) if self.forms is not None and row["form"] else None
        if form is not None:
            # The form's labels beside the field names, so clerks read 【氏名】 rather than 【name】.
            meta.update(form=form.name, labels={f.name: f.label for f in form.fields})
        if fields is None:
            fields = [tuple(x) for x in loads(row["fields"])]
        # The form is rebuilt from the ledger row every time, never trusted from the folder: a
        # form.txt/form.json that differs was not written by us (planted, say) and is replaced.
        foreign = bundles.write_form(self.tree, bundle, meta, fields, files, self.fsync)
        # We write the manifest only when the submission is done, so one there now is not ours.
        if bundles.remove_foreign(self.tree, bundle, "manifest.json"):
            foreign.append("manifest.json")
        if foreign:
            self._foreign(row, foreign)
        have = {r["name"] for r in self.ledger.query("SELECT name FROM jobs WHERE submission_id = ?", (row["id"],))}
        for f in files:
            src = self.data_dir / f["stage"]
            if f["name"] in have or not src.exists():
                continue
            if self.handover is None:
                raise RuntimeError("no appliance to hand files to")
            self.handover(src, channel=row["channel"], name=f["name"], subdir=row["receipt"],
                          submission_id=row["id"], password=f.get("password"), received_at=row["created_at"],
                          source_key=(f"link:{row['request_id']}" if row["request_id"]  # each upload link
                                      else f"api:{row['api_key_id']}"))
        with self.ledger.tx() as t:
            # Passwords are not kept once the jobs (which hold them until final) exist.
            scrubbed = [{k: v for k, v in f.items() if k not in ("password", "stage")} for f in files]
            t.execute("UPDATE submissions SET status = 'processing', files = ? WHERE id = ? AND status = 'received'",
                      (json.dumps(scrubbed, ensure_ascii=False), row["id"]))
        shutil.rmtree(self.stage_root / row["id"], ignore_errors=True)

    def _foreign(self, row: Any, names: list[str]) -> None:
        log.warning("bundle held files we did not write; replaced with the submission's own",
                    extra={"event": "api.bundle_foreign", "submission": row["id"], "receipt": row["receipt"],
                           "names": names})
        with self.ledger.tx() as t:
            t.audit("api.bundle_foreign", {"submission_id": row["id"], "receipt": row["receipt"],
                                           "bundle": row["bundle_dir"], "replaced": names}, actor="system")

    # ---------------------------------------------------------------- status
    def _jobs(self, sub_id: str) -> list[Any]:
        return self.ledger.query("SELECT id, name, status, verdict, result, plan, inbox_dir, sha256"
                                 " FROM jobs WHERE submission_id = ? ORDER BY id", (sub_id,))

    def status(self, sub_id: str, client: apikeys.ApiClient) -> dict[str, Any] | None:
        row = self.ledger.one("SELECT * FROM submissions WHERE id = ? AND api_key_id = ? AND source = 'api'",
                              (sub_id, client.id))
        if row is None or not client.scope.allows(row["channel"]):
            return None  # another key's, or of a channel this key was unbound from since
        return self.status_of(row)

    def status_of(self, row: Any) -> dict[str, Any]:
        """Verdicts only (what the sender may know): the REST status and the upload page's status page."""
        if row["status"] != "done" and self.wake is None:
            self.finalize(row["id"])
            row = self.ledger.one("SELECT * FROM submissions WHERE id = ?", (row["id"],))
        jobs = {j["name"]: j for j in self._jobs(row["id"])}
        out = []
        for f in loads(row["files"]):
            j = jobs.get(f["name"])
            res = loads(j["result"]) if j is not None and j["status"] in FINAL else None
            out.append({
                "name": f["name"],
                "verdict": j["verdict"] if res is not None else None,
                # The same fields as the report sidecar: `reason` is "ja / en".
                "reason": res.get("reason") if res else None,
                "reason_ja": res.get("reason_ja") if res else None,
                "reason_en": res.get("reason_en") if res else None,
                "threats": [{"id": t["id"], "action": t["action"]} for t in _all_threats(res)],
            })
        return {"id": row["id"], "receipt": row["receipt"], "channel": row["channel"],
                "status": row["status"], "files": out}

    def on_job_final(self, job_id: int) -> None:
        """Appliance hook: a job is final; finish its submission now rather than on the next tick."""
        row = self.ledger.one("SELECT submission_id FROM jobs WHERE id = ?", (job_id,))
        if row is not None and row["submission_id"]:
            self.finalize(row["submission_id"])

    def finalize_ready(self) -> None:
        node = self.node  # several serve nodes: one hands over and finalizes at a time (cluster.py)
        if node is not None and not node.lease("submissions", 120.0):
            return
        for row in self.ledger.query("SELECT id FROM submissions WHERE status = 'processing'"):
            self.finalize(row["id"])
        # Submissions recorded by the internet-side process, and handovers that failed (appliance busy
        # or stopping, a link in the way): a failed one is tried again after 30 s.
        now = time.monotonic()
        for row in self.ledger.query("SELECT * FROM submissions WHERE status = 'received'"):
            if self._retry_at.get(row["id"], 0.0) > now:
                continue
            try:
                self._hand_over(row, loads(row["files"]), None)
                self._retry_at.pop(row["id"], None)
            except Exception:  # noqa: BLE001 - tried again later
                self._retry_at[row["id"]] = now + 30
                log.warning("handover failed, will retry", exc_info=True,
                            extra={"event": "error", "submission": row["id"]})

    def finalize(self, sub_id: str) -> bool:
        """When every job is final: manifest.json into the bundle (with the form's 要確認 flags), status
        done (audited), then the `on_done` hooks (receipt mail). Idempotent."""
        if self.node is not None and not self.node.lease("submissions", 120.0):
            return False  # the serve node holding the lease finalizes it on its next tick
        with self._final_lock:
            row = self.ledger.one("SELECT * FROM submissions WHERE id = ?", (sub_id,))
            if row is None or row["status"] != "processing":
                return row is not None and row["status"] == "done"
            files = loads(row["files"])
            jobs = {j["name"]: j for j in self._jobs(sub_id)}
            if any(f["name"] not in jobs or jobs[f["name"]]["status"] not in FINAL for f in files):
                return False
            entries = []
            for f in files:
                j = jobs[f["name"]]
                res = loads(j["result"]) or {}
                plan = loads(j["plan"]) or {}
                names = {pf["kind"]: pf["name"] for pf in plan.get("files", [])}
                where = plan.get("dir") or j["inbox_dir"] or row["bundle_dir"]
                rel = os.path.relpath(where, row["bundle_dir"]) + "/"
                rel = "" if rel == "./" else rel
                entries.append({
                    "name": f["name"], "size": f["size"], "sha256": f["sha256"], "job_id": j["id"],
                    "verdict": j["verdict"], "reason_ja": res.get("reason_ja"), "reason_en": res.get("reason_en"),
                    "threats": _all_threats(res),
                    "delivered": rel + names["output"] if "output" in names else None,
                    "report": rel + names["sidecar"] if "sidecar" in names else None,
                    "report_ja": rel + names["report"] if "report" in names else None,
                    "text": rel + names["text"] if "text" in names else None,
                    "notice": rel + names["notice"] if "notice" in names else None,
                })
            now = time.time()
            meta = {"receipt": row["receipt"], "submission_id": row["id"], "client": row["client"],
                    "channel": row["channel"], "received_at": row["created_at"]}
            flags = self._checks(row, entries, jobs)
            doc = bundles.manifest(meta, entries, now)
            if flags is not None:
                doc["checks"] = flags  # 要確認: the form's declared judgments that did not pass
            if bundles.write_manifest(self.tree, row["bundle_dir"], doc, self.fsync):
                # Planted after the handover, or left by a run interrupted right here.
                self._foreign(row, ["manifest.json"])
            with self.ledger.tx() as t:
                cur = t.execute("UPDATE submissions SET status = 'done', done_at = ?, flags = ? WHERE id = ?"
                                " AND status = 'processing'",
                                (now, json.dumps(flags, ensure_ascii=False) if flags is not None else None, sub_id))
                if not cur.rowcount:
                    return True  # finalized by another serve node meanwhile
                data: dict[str, Any] = {"submission_id": sub_id, "receipt": row["receipt"],
                                        "verdicts": {e["name"]: e["verdict"] for e in entries}}
                if flags:
                    data["flags"] = [f["id"] for f in flags]
                t.audit("api.submission_done", data, actor="system")
            for hook in self.on_done:
                try:
                    hook(sub_id)
                except Exception:  # noqa: BLE001 - the hooks have sweeps of their own
                    log.exception("submission hook failed", extra={"event": "error", "submission": sub_id})
            return True

    def _checks(self, row: Any, entries: list[dict[str, Any]], jobs: dict[str, Any]) -> list[dict[str, str]] | None:
        """The 要確認 flags of the submission's form (None when it has no form or no checks)."""
        if self.forms is None or not row["form"] or row["form"] not in self.forms.cfg.forms:
            return None
        form = self.forms.cfg.forms[row["form"]]
        if form.checks.empty:
            return None
        from cdr.detect import KINDS

        files = []
        for e in entries:
            res = loads(jobs[e["name"]]["result"]) or {}
            kind = KINDS.get(res.get("detected_type") or "")
            files.append({"name": e["name"], "sha256": e["sha256"], "verdict": e["verdict"],
                          "family": kind.family if kind else None})
        fields = [tuple(x) for x in loads(row["fields"])]
        since = row["created_at"] - form.checks.duplicate_days * 86400

        def earlier(kind: str, key: list[str]) -> str | None:
            if kind == "files":
                marks = ",".join("?" * len(key))
                hit = self.ledger.one(
                    "SELECT s.receipt FROM jobs j JOIN submissions s ON s.id = j.submission_id WHERE j.sha256 IN"
                    f" ({marks}) AND s.channel = ? AND s.id != ? AND s.created_at <= ? AND s.created_at >= ?"
                    " ORDER BY s.created_at DESC LIMIT 1", (*key, row["channel"], row["id"], row["created_at"], since))
                return hit["receipt"] if hit else None
            for prev in self.ledger.query(
                    "SELECT receipt, fields FROM submissions WHERE channel = ? AND form = ? AND id != ?"
                    " AND created_at <= ? AND created_at >= ? ORDER BY created_at DESC",
                    (row["channel"], row["form"], row["id"], row["created_at"], since)):
                values = dict(tuple(x) for x in loads(prev["fields"]))
                if [forms_mod.dup_key(values.get(n, "")) for n in form.checks.duplicate_fields] == key:
                    return prev["receipt"]
            return None

        return forms_mod.evaluate_checks(form, fields, files, row["created_at"], earlier)


# --------------------------------------------------------------------------- HTTP

class Accepted(BaseModel):
    id: str
    receipt: str
    status_url: str


class ThreatOut(BaseModel):
    id: str
    action: str


class FileStatus(BaseModel):
    name: str
    verdict: str | None
    reason: str | None = Field(None, description="why it was blocked: \"Japanese / English\" (as in the report)")
    reason_ja: str | None = None
    reason_en: str | None = None
    threats: list[ThreatOut]


class SubmissionStatus(BaseModel):
    id: str
    receipt: str
    channel: str
    status: str
    files: list[FileStatus]


class ErrorOut(BaseModel):
    error: str
    message: str
    message_ja: str


class FormFieldOut(BaseModel):
    name: str
    label: str
    type: str
    required: bool
    max_length: int
    pattern: str | None = None
    choices: list[str] | None = None
    receipt: bool = False
    hint: str | None = None
    min: float | None = None
    max: float | None = None


class FormFilesOut(BaseModel):
    families: list[str]
    extensions: list[str]
    max_file_mb: float
    max_total_mb: float
    min_files: int
    max_files: int


class FormOut(BaseModel):
    channel: str
    display_name: str
    form: str
    title: str
    enforced: bool  # true: POST /submissions to this channel is checked against this form (else free fields)
    fields: list[FormFieldOut]
    files: FormFilesOut


class FieldErrorOut(BaseModel):
    field: str
    message: str
    message_ja: str


class FormErrorOut(ErrorOut):
    fields: list[FieldErrorOut]


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 429, 503)}
_SUBMIT_ERRORS = {**_ERRORS, 422: {"model": FormErrorOut, "description": "the channel's form does not accept it:"
                                                                         " an error per field (Japanese, English)"}}

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "添付ファイル（繰り返し可）"},
                "channel": {"type": "string", "maxLength": _CHANNEL_MAX,
                            "description": "配送先チャネル（省略時 default）。default、設定済みのチャネル"
                                           "（[channels.NAME]）または受付フォルダーにあるチャネルのみ"},
                "passwords": {"type": "string",
                              "description": 'PPAP 用パスワード: JSON {"ファイル名": "パスワード"}'},
            },
            "additionalProperties": {"type": "string"},
        }}},
    },
}

bearer = HTTPBearer(auto_error=False, description="API key issued with `transfer-agent apikey create`")


def make_router(service: SubmissionService) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["submissions"])

    def authenticate(creds: HTTPAuthorizationCredentials | None) -> apikeys.ApiClient:
        hdr = {"WWW-Authenticate": "Bearer"}
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise ApiError(401, "unauthorized", "missing API key (Authorization: Bearer KEY)",
                           "API キーがありません（Authorization: Bearer KEY）", hdr)
        try:
            client = apikeys.authenticate(service.ledger, creds.credentials)
        except apikeys.KeyRevoked:
            raise ApiError(403, "forbidden", "this API key has been revoked", "この API キーは失効しています") from None
        if client is None:
            raise ApiError(401, "unauthorized", "unknown API key", "API キーが正しくありません", hdr)
        return client

    @router.post("/submissions", status_code=202, response_model=Accepted, openapi_extra=_UPLOAD_SCHEMA,
                 responses={200: {"model": Accepted, "description": "idempotent replay"}, **_SUBMIT_ERRORS},
                 summary="電子申請の受付 (submit an e-application)")
    async def submit(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)):
        try:
            client = await run_in_threadpool(authenticate, creds)
            wait = service.limiter.take(client.id)
            if wait > 0:
                raise ApiError(429, "rate_limited", "too many requests for this client; retry later",
                               "リクエストが多すぎます。しばらくしてから再送してください",
                               {"Retry-After": str(max(1, math.ceil(wait)))})
            clen = request.headers.get("content-length")
            declared = int(clen) if clen is not None and clen.isascii() and clen.isdigit() else None
            up = await run_in_threadpool(service.limits.admit, client.id, declared)
            try:
                status, body = await service.receive(request, client, up)
            finally:
                await run_in_threadpool(service.limits.release, up)
        except ApiError as exc:
            return exc.response()
        except ClientDisconnect:
            # The client hung up mid-upload; its staged files are already gone. Nobody reads this.
            log.info("client disconnected during upload", extra={"event": "api.disconnect"})
            return ApiError(400, "disconnected", "client disconnected", "送信が途中で切断されました").response()
        headers = {"Location": body["status_url"]}
        if body.get("replayed"):
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body, status_code=status, headers=headers)

    @router.get("/submissions/{submission_id}", response_model=SubmissionStatus, responses=_ERRORS,
                summary="受付状況と判定 (status and verdicts)")
    async def status(submission_id: str, creds: HTTPAuthorizationCredentials | None = Depends(bearer)):
        try:
            client = await run_in_threadpool(authenticate, creds)
            body = None
            if re.fullmatch(r"[0-9a-f]{24}", submission_id):
                body = await run_in_threadpool(service.status, submission_id, client)
            if body is None:
                raise ApiError(404, "not_found", "no such submission for this API key",
                               "該当する申請がありません")
        except ApiError as exc:
            return exc.response()
        return JSONResponse(body)

    @router.get("/channels/{channel}/form", response_model=FormOut, responses=_ERRORS,
                summary="チャネルの受付フォーム (what a channel accepts: fields and files)")
    async def channel_form(channel: str, creds: HTTPAuthorizationCredentials | None = Depends(bearer)):
        try:
            client = await run_in_threadpool(authenticate, creds)
            if service.forms is None:
                raise ApiError(404, "not_found", "no forms on this appliance", "フォームは設定されていません")
            name = await run_in_threadpool(service._channel, channel, client)
            body = form_description(service.forms, name)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(body)

    return router


def form_description(book: Any, channel: str) -> dict[str, Any]:
    """A channel's form as JSON: the fields and the files it accepts (what the upload page shows)."""
    form = book.form(channel)
    return {
        "channel": channel, "display_name": book.label(channel), "form": form.name, "title": form.title,
        "enforced": book.names_form(channel),
        "fields": [{"name": f.name, "label": f.label, "type": f.type, "required": f.required, "max_length": f.limit,
                    "pattern": f.pattern or None, "choices": f.choices or None, "receipt": f.receipt,
                    "hint": f.hint or None, "min": f.min, "max": f.max} for f in form.fields],
        "files": {"families": form.families, "extensions": form.accepted_extensions(),
                  "max_file_mb": form.max_file_mb, "max_total_mb": form.max_total_mb, "min_files": form.min_files,
                  "max_files": form.max_files},
    }


def _settings(cfg: Any) -> ApiSettings:
    d = ApiSettings()
    return ApiSettings(
        max_upload_mb=float(getattr(cfg, "max_upload_mb", d.max_upload_mb)),
        max_files=int(getattr(cfg, "api_max_files", d.max_files)),
        rate_per_minute=float(getattr(cfg, "api_rate_per_minute", d.rate_per_minute)),
        rate_burst=int(getattr(cfg, "api_rate_burst", d.rate_burst)),
        concurrent_per_key=int(getattr(cfg, "api_concurrent_per_key", d.concurrent_per_key)),
        mb_per_hour=float(getattr(cfg, "api_mb_per_hour", d.mb_per_hour)),
    )


def _channels(cfg: Any) -> set[str]:
    """The configured channels: [channels.NAME] with a policy, a form, a display name or a digest."""
    return {*getattr(cfg, "channel_policies", {}), *getattr(cfg, "channel_forms", {}),
            *getattr(cfg, "channel_labels", {})}


def attach(service: Any) -> SubmissionService:
    """Create (once) and start the submission service of a running appliance `Service`.

    Settings come from the appliance configuration when it has them (`max_upload_mb`,
    `api_max_files`, `api_rate_per_minute`, `api_rate_burst`), else the defaults.
    """
    existing = getattr(service, "submissions", None)
    if isinstance(existing, SubmissionService):
        return existing
    cfg = service.cfg
    if getattr(service, "internet_side", False):
        # The internet-side process (internet.py): records and stages, the core does the rest.
        sub = SubmissionService(service.ledger, cfg.data_dir, None, _settings(cfg),
                                default_channel=cfg.default_channel, fsync=cfg.fsync,
                                channels=_channels(cfg), dropbox=cfg.dropbox, wake=service.wake,
                                forms=forms_mod.FormBook(cfg))
        sub.stage_root.mkdir(parents=True, exist_ok=True)
        service.submissions = sub
        return sub
    settings = _settings(cfg)

    def handover(src: Path, **kw: Any) -> int:
        job_id = service.accept(src, source="api", **kw)
        if job_id is None:
            raise RuntimeError(f"staged upload vanished: {src}")
        return job_id

    sub = SubmissionService(service.ledger, cfg.data_dir, handover, settings,
                            default_channel=cfg.default_channel, fsync=cfg.fsync,
                            channels=_channels(cfg), dropbox=cfg.dropbox,
                            tree=getattr(service, "tree", None), forms=forms_mod.FormBook(cfg))
    sub.node = getattr(service, "node", None)
    service.submissions = sub
    hooks = getattr(service, "on_final", None)
    if isinstance(hooks, list):
        hooks.append(sub.on_job_final)
    sub.start()
    return sub
