"""The public upload page (internet side): `/u/<token>` of an upload request, `/s/<token>` for its result.

Served by the internet-side process beside the REST API. No login, no script, no outside resource:
server-rendered Japanese HTML that works with scripts off and on a phone. The form shows its fields
and the accepted file types and sizes; the server checks everything again (forms.py), and the
submission then takes the REST API's path (`SubmissionService.staged` and `.record`: same bundle,
receipt number, ledger row and audit). Every refusal (closed link, limits, a bad form) is an HTML
page with a 4xx status and a sentence a resident understands.

Protections: the Host header must name this service (`[exchange] public_url` / `allowed_hosts`), a
POST's Origin must be this site, and it must carry a CSRF token bound to the request and to a
SameSite=Strict cookie. Rate limits per link and per address (token buckets, `[exchange]`).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from . import exchange
from .api_limits import RateLimiter
from .api_submissions import ApiError, ExchangeClosed, SubmissionService

log = logging.getLogger("transfer_agent.upload_page")

PKG = Path(__file__).resolve().parent
COOKIE = "ta_up"
TOKEN_SECONDS = 12 * 3600  # a form page kept open this long must be reloaded
_FIELDS_ALLOWANCE = 1024 * 1024  # the form's text on top of its files' total
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
VERDICT_JA = {"clean": "受理", "sanitized": "無害化して受理", "blocked": "受理できませんでした"}


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(PKG / "templates")),
                      autoescape=select_autoescape(["html"], default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["shown"] = exchange.shown
    env.filters["mb"] = lambda n: f"{n:g} MB" if n >= 1 else f"{n * 1024:g} KB"
    env.filters["size"] = lambda n: (f"{n:,} バイト" if n < 1024 else f"{n / 1024:,.1f} KB" if n < 1024 * 1024
                                     else f"{n / 1024 / 1024:,.1f} MB")
    return env


def _secret(ledger: Any) -> bytes:
    """The key of the CSRF and status tokens: one random value in the ledger's meta table, made once
    (by whichever process comes first)."""
    row = ledger.one("SELECT value FROM meta WHERE key = 'exchange_secret'")
    if row is None:
        with ledger.tx() as t:
            t.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('exchange_secret', ?)", (secrets.token_hex(32),))
        row = ledger.one("SELECT value FROM meta WHERE key = 'exchange_secret'")
    return bytes.fromhex(row["value"])


class UploadPages:
    def __init__(self, service: SubmissionService, cfg: Any) -> None:
        self.sub = service
        self.cfg = cfg
        self.ledger = service.ledger
        self.env = _env()
        self.key = _secret(self.ledger)
        self.per_link = RateLimiter(cfg.exchange_link_per_hour / 3600.0, cfg.exchange_burst)
        self.per_address = RateLimiter(cfg.exchange_address_per_hour / 3600.0, cfg.exchange_burst)
        pub = urlsplit(cfg.exchange_public_url) if cfg.exchange_public_url else None
        self.public_origin = f"{pub.scheme}://{pub.netloc}".lower() if pub else None
        self.hosts = {h.lower() for h in cfg.exchange_allowed_hosts}
        if pub:
            self.hosts.add(pub.netloc.lower())

    # ---------------------------------------------------------------- tokens
    def _mac(self, *parts: str) -> str:
        mac = hmac.new(self.key, "\n".join(parts).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")

    def csrf(self, req: exchange.UploadRequest, nonce: str, issued: int | None = None) -> str:
        issued = int(time.time()) if issued is None else issued
        return f"{issued}.{self._mac('csrf', req.id, str(issued), nonce)}"

    def csrf_ok(self, req: exchange.UploadRequest, token: str, nonce: str) -> bool:
        issued, _, _mac = token.partition(".")
        if not nonce or not issued.isdigit() or len(issued) > 12:
            return False
        if not 0 <= time.time() - int(issued) <= TOKEN_SECONDS:
            return False
        return hmac.compare_digest(token.encode(), self.csrf(req, nonce, int(issued)).encode())

    def status_token(self, sub_id: str) -> str:
        """The sender's key to the status page; derived, so a replayed POST finds the same page."""
        return self._mac("status", sub_id)

    # ---------------------------------------------------------------- checks
    def host_ok(self, request: Request) -> bool:
        host = (request.headers.get("host") or "").lower()
        if host in self.hosts:
            return True
        if self.public_origin is not None:
            return False
        # No public_url configured (a test or a first run): the listener's own address only.
        name = host.rsplit(":", 1)[0].strip("[]") if not host.endswith("]") else host.strip("[]")
        return name in ("127.0.0.1", "::1", "localhost", (self.cfg.api_bind or "").lower())

    def origin_ok(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser's cross-site form (those send Origin); the CSRF token decides
        expected = self.public_origin or f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        return origin.lower().rstrip("/") == expected

    def client_address(self, request: Request) -> str:
        return request.client.host if request.client else ""

    # ---------------------------------------------------------------- pages
    def page(self, template: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any
             ) -> HTMLResponse:
        html = self.env.get_template(f"public/{template}").render(**ctx)
        resp = HTMLResponse(html, status_code=status, headers=headers)
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"  # our own POSTs carry an Origin to check
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def message(self, status: int, title: str, text: str, headers: dict[str, str] | None = None,
                req: exchange.UploadRequest | None = None, back: bool = False) -> HTMLResponse:
        return self.page("message.html", status, headers, title=title, text=text, req=req,
                         channel=self.cfg.channel_label(req.channel) if req else None, back=back)

    def closed(self, req: exchange.UploadRequest | None) -> HTMLResponse:
        if req is None:
            return self.message(404, "このリンクは使えません",
                                "アドレスが正しくないか、このアップロード依頼はありません。"
                                "リンクを送ってきた担当者にお問い合わせください。")
        state = req.state()
        who = f"（{self.cfg.channel_label(req.channel)}）"
        text = {
            "revoked": "このアップロード依頼は担当者により取り消されました。必要な場合は担当者" + who + "にお問い合わせください。",
            "expired": f"このアップロード依頼の受付期限（{exchange.shown(req.expires_at)}）は過ぎました。"
                       "新しいリンクが必要な場合は担当者" + who + "にお問い合わせください。",
            "used_up": "このアップロード依頼は受付できる回数の上限に達しました。"
                       "さらに送る必要がある場合は担当者" + who + "にお問い合わせください。",
        }[state]
        title = {"revoked": "受付は取り消されました", "expired": "受付期限を過ぎています",
                 "used_up": "受付は終了しました"}[state]
        return self.message(410, title, text, req=req)

    def form_page(self, request: Request, req: exchange.UploadRequest, status: int = 200,
                  values: dict[str, str] | None = None, errors: list[Any] | None = None,
                  had_files: bool = False) -> HTMLResponse:
        form = self.sub.forms.form(req.channel, req.form)
        if form.builtin and not self.cfg.notify_smtp:
            # No receipt mails configured: the built-in form must not promise one.
            form = dataclasses.replace(form, fields=[dataclasses.replace(f, hint="連絡先（任意）") if f.receipt else f
                                                     for f in form.fields])
        nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(18)
        by_field: dict[str, list[str]] = {}
        for e in errors or []:
            by_field.setdefault(e.field, []).append(e.ja)
        resp = self.page("form.html", status, req=req, form=form, channel=self.cfg.channel_label(req.channel),
                         csrf=self.csrf(req, nonce), values=values or {}, errors=errors or [], by_field=by_field,
                         had_files=had_files,
                         token=req.token, ids={f.name: f"f-{i}" for i, f in enumerate(form.fields)})
        resp.set_cookie(COOKIE, nonce, httponly=True, samesite="strict", secure=self._secure(request),
                        path="/u/", max_age=TOKEN_SECONDS)
        return resp

    def _secure(self, request: Request) -> bool:
        return request.url.scheme == "https" or (self.public_origin or "").startswith("https://")

    # ---------------------------------------------------------------- the POST
    async def submit(self, request: Request, token: str) -> Response:
        req = await run_in_threadpool(exchange.by_token, self.ledger, token)
        if req is None or req.state() != "open":
            return self.closed(req)
        if not self.origin_ok(request):
            return self.message(403, "送信できませんでした", "このページ以外からの送信は受け付けていません。"
                                "リンクを開き直して、もう一度送信してください。", req=req)
        nonce = request.cookies.get(COOKIE, "")
        if not self.csrf_ok(req, request.query_params.get("t", ""), nonce):
            return self.message(403, "ページの有効期限が切れました",
                                "画面を開いてから時間がたったか、Cookie が無効になっています。"
                                "リンクを開き直して、もう一度入力してください（Cookie を有効にしてください）。", req=req)
        for bucket, key, what in ((self.per_link, req.id, "このリンクへの送信"),
                                  (self.per_address, self.client_address(request), "お使いの回線からの送信")):
            wait = bucket.take(key)
            if wait > 0:
                minutes = max(1, math.ceil(wait / 60))
                return self.message(429, "しばらくお待ちください",
                                    f"{what}が短い時間に集中しています。約{minutes}分後にもう一度送信してください。",
                                    headers={"Retry-After": str(max(1, math.ceil(wait)))}, req=req)
        form = self.sub.forms.form(req.channel, req.form)
        limit = int(form.max_total_mb * 1024 * 1024) + _FIELDS_ALLOWANCE
        sub_id = secrets.token_hex(12)
        try:
            async with self.sub.staged(request, sub_id, max_bytes=limit, browser=True) as col:
                return await run_in_threadpool(self._record, request, req, form, col, sub_id, nonce)
        except ApiError as exc:
            return self._refusal(exc, req, form)
        except ClientDisconnect:
            log.info("sender disconnected during upload", extra={"event": "exchange.disconnect"})
            return self.message(400, "送信が中断されました", "通信が途中で切れました。もう一度送信してください。", req=req)

    def _refusal(self, exc: ApiError, req: exchange.UploadRequest, form: Any) -> HTMLResponse:
        if exc.code == "too_many_files":
            return self.message(413, "ファイルが多すぎます",
                                f"1回に送れるファイルは{form.max_files}件までです。ファイルを選び直すか、"
                                "まとめて（ZIP などで）送ってください。", req=req, back=True)
        if exc.code in ("too_many_fields", "field_too_large"):
            return self.message(413, "入力内容が多すぎます", f"{exc.ja}。入力内容を短くして、もう一度送信してください。",
                                req=req, back=True)
        if exc.status == 413:
            text = (f"送信されたデータが大きすぎます。ファイルは合計{form.max_total_mb:g} MBまで、"
                    f"1ファイル{form.max_file_mb:g} MBまでです。ファイルを分けるか小さくしてから、もう一度送信してください。")
            return self.message(413, "ファイルが大きすぎます", text, req=req, back=True)
        if exc.status == 415:
            return self.message(415, "送信できませんでした", "このページのフォームから送信してください。", req=req, back=True)
        return self.message(exc.status if 400 <= exc.status < 500 else 400, "送信できませんでした",
                            f"{exc.ja}。もう一度送信してください。", req=req, back=True)

    def _record(self, request: Request, req: exchange.UploadRequest, form: Any, col: Any, sub_id: str,
                nonce: str) -> Response:
        specials = [k for k, _ in col.fields if k in ("channel", "passwords")]
        fields = [(k, v) for k, v in col.fields if k not in ("channel", "passwords")]
        staged = col.files
        files = [{"name": f.name, "size": f.size} for f in staged]
        values, errors = form.validate(fields, files)
        if specials:
            from .forms import FieldError
            errors.append(FieldError(specials[0], "このフォームにない項目が送られました", f"{specials[0]}: not a field"))
        if errors:
            shown = {k: v for k, v in fields if form.field(k) is not None}
            return self.form_page(request, req, 422, shown, errors, had_files=bool(staged))
        receipt_to = [v for k, v in values if (f := form.field(k)) is not None and f.receipt]
        if req.notify:
            receipt_to.append(req.notify)
        receipt_to = list(dict.fromkeys(receipt_to))
        status = self.status_token(sub_id)
        client = f"アップロード依頼「{req.title}」({req.id})"
        kw: dict[str, Any] = dict(channel=req.channel, fields=values, client=client, api_key_id=0,
                                  actor=f"upload:{req.id}", form=form, source="page", request=req,
                                  receipt_to=receipt_to, status_hash=exchange.token_hash(status),
                                  audit_extra={"address": self.client_address(request)})
        try:
            try:
                # A second POST of the same page (double click, back and send again) gives the same receipt.
                got, receipt, replayed = self.sub.record(sub_id, staged, idem=f"page:{nonce}:{req.id}", **kw)
            except ApiError as exc:
                if exc.code != "idempotency_conflict":
                    raise
                got, receipt, replayed = self.sub.record(sub_id, staged, **kw)
        except ExchangeClosed:
            fresh = exchange.get(self.ledger, req.id)
            return self.closed(fresh)
        log.info("upload page submission", extra={"event": "exchange.submission", "request": req.id,
                                                  "receipt": receipt, "files": len(staged)})
        return RedirectResponse(f"/s/{self.status_token(got)}", status_code=303)

    # ---------------------------------------------------------------- the status page
    def status_page(self, token: str) -> Response:
        row = None
        if 20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum():
            row = self.ledger.one("SELECT * FROM submissions WHERE status_hash = ?", (exchange.token_hash(token),))
        if row is None or time.time() - row["created_at"] > self.cfg.exchange_status_days * 86400:
            return self.message(404, "受付状況を表示できません",
                                "アドレスが正しくないか、表示できる期間を過ぎています。"
                                "お問い合わせの際は受付番号をお伝えください。")
        body = self.sub.status_of(row)
        files = []
        for f in body["files"]:
            verdict = f["verdict"]
            files.append({"name": f["name"], "verdict": verdict, "label": VERDICT_JA.get(verdict or "", "処理中"),
                          "reason": f["reason"] if verdict == "blocked" else None})
        done = row["status"] == "done"
        req = exchange.get(self.ledger, row["request_id"]) if row["request_id"] else None
        receipt_to = json.loads(row["receipt_to"]) if row["receipt_to"] else []
        return self.page("status.html", row=row, files=files, done=done, req=req,
                         mail=bool(receipt_to) and bool(self.cfg.notify_smtp),
                         channel=self.cfg.channel_label(row["channel"]),
                         headers=None if done else {"Refresh": "5"})


def make_page_router(service: SubmissionService, cfg: Any) -> APIRouter:
    pages = UploadPages(service, cfg)
    router = APIRouter(include_in_schema=False)
    css = (PKG / "static" / "upload.css").read_bytes()

    def wrong_host() -> HTMLResponse:
        return pages.message(421, "このアドレスでは表示できません", "リンクのアドレスを確認してください。")

    @router.get("/u/{token}", response_class=HTMLResponse)
    def open_link(request: Request, token: str) -> Response:
        if not pages.host_ok(request):
            return wrong_host()
        req = exchange.by_token(pages.ledger, token)
        if req is None or req.state() != "open":
            return pages.closed(req)
        return pages.form_page(request, req)

    @router.post("/u/{token}", response_class=HTMLResponse)
    async def post(request: Request, token: str) -> Response:
        if not pages.host_ok(request):
            return wrong_host()
        try:
            return await pages.submit(request, token)
        except Exception:  # noqa: BLE001 - a page, not a stack trace
            log.exception("upload page failed", extra={"event": "exchange.error"})
            return pages.message(500, "ただいま受け付けできません",
                                 "申し訳ありません。しばらくしてから、もう一度送信してください。")

    @router.get("/s/{token}", response_class=HTMLResponse)
    def status(request: Request, token: str) -> Response:
        if not pages.host_ok(request):
            return wrong_host()
        return pages.status_page(token)

    @router.get("/assets/upload.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})

    return router
