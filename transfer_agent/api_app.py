"""HTTP apps and the small uvicorn runner.

`create_app(service)` is the internet-side app on the API port: /healthz and /metrics
today; the REST intake (issue 7) adds its routers here (`app.include_router(...)`),
reaching the appliance through `request.app.state.service` (a `Service`).
The LGWAN-side console on the console port is `transfer_agent.console.create_console_app`.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import apikeys, tenants
from .api_submissions import ApiError
from .channels import Scope as ChannelScope
from .httpguard import Limits, guarded_protocol
from .metrics import CONTENT_TYPE, per_tenant

log = logging.getLogger("transfer_agent.http")

_HTTP_JA = {404: ("not_found", "該当するページがありません"),
            405: ("method_not_allowed", "このメソッドは使えません")}


def _error(status: int, code: str, en: str, ja: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape of the internet-side API (api_submissions.ApiError's)."""
    return ApiError(status, code, en, ja, headers).response()


class JsonErrors:
    """Answer an unexpected exception with the JSON error shape (500) and log its traceback.

    A plain ASGI wrapper rather than `exception_handler(Exception)`: Starlette re-raises after
    that handler, so uvicorn would log the traceback again and drop the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unexpected error", extra={"event": "api.error", "path": scope.get("path", "")})
            if started:
                raise  # too late for a clean answer; uvicorn closes the connection
            await _error(500, "internal_error", "internal error; retry later (with the same Idempotency-Key)",
                         "内部エラーが発生しました。しばらくしてから再送してください")(scope, receive, send)


def create_app(service: Any) -> FastAPI:
    app = FastAPI(title="transfer-agent", version="0.1.0",
                  description="LGWAN transfer appliance: internet-side API")
    app.state.service = service
    app.add_middleware(JsonErrors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, ja = _HTTP_JA.get(exc.status_code, ("http_error", "リクエストを処理できません"))
        return _error(exc.status_code, code, str(exc.detail), ja, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", "invalid request", "リクエストの内容が不正です")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        report = getattr(service, "health_report", None)  # the internet-side process asks the core once
        parts, notes = report() if report is not None else (service.health(), service.health_notes())
        ok = all(parts.values())
        # Degraded (still 200): the service works but something waits for an operator, e.g. an unwritable inbox.
        body: dict[str, Any] = {"status": ("degraded" if notes else "ok") if ok else "unhealthy", "components": parts}
        if notes:
            body["notes"] = notes
        return JSONResponse(body, status_code=200 if ok else 503)

    allowed = service.cfg.metrics_networks()

    @app.get("/metrics")
    def metrics(request: Request, tenant: str = "") -> Response:
        try:
            ip = ipaddress.ip_address(request.client.host if request.client else "")
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
        if ip is None or not any(ip in net for net in allowed):
            # Channel names and volumes are internal: only the monitoring hosts of [api] metrics_allow.
            return _error(404, "not_found", "not found", "見つかりません")
        # Per tenant: every channel's series carries its tenant; a tenant's API key (or ?tenant=NAME)
        # reads only its own channels' series. A key that is not valid reads nothing.
        allows = None
        auth = request.headers.get("authorization", "")
        if auth:
            scheme, _, key = auth.partition(" ")
            try:
                client = apikeys.authenticate(service.ledger, key.strip()) if scheme.lower() == "bearer" else None
            except apikeys.KeyRevoked:
                client = None
            if client is None:
                return _error(404, "not_found", "not found", "見つかりません")
            allows = client.scope.allows
        elif tenant:
            allows = ChannelScope(True, domain=tenants.domain(service.ledger, tenant[:64])).allows
        owned = tenants.owners(service.ledger)
        if not owned and allows is None:
            return Response(service.metrics.render(), media_type=CONTENT_TYPE)  # a single box: as before tenants
        return Response(per_tenant(service.metrics.render(), lambda ch: owned.get(ch, tenants.DEFAULT), allows),
                        media_type=CONTENT_TYPE)

    from .api_submissions import attach, make_router
    from .upload_page import make_page_router
    submissions = attach(service)
    app.include_router(make_router(submissions))
    app.include_router(make_page_router(submissions, service.cfg))  # the upload pages (/u/..., /s/...)

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (bind errors surface at once; port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


class HttpServer:
    """uvicorn in a thread, on a socket bound here or handed over, with deadlines for slow clients, a
    per-address connection cap (httpguard.py), TLS when given a certificate, and proxy headers only
    from the proxies listed in `trusted_proxies`."""

    def __init__(self, app: FastAPI, host: str, port: int, name: str, *, sock: socket.socket | None = None,
                 limits: Limits | None = None, tls_cert: str | None = None, tls_key: str | None = None,
                 trusted_proxies: list[str] | None = None) -> None:
        self.sock = sock if sock is not None else bind(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.tls = bool(tls_cert)
        # Without trusted proxies, the peer address is the one that connected (it decides who may read
        # /metrics and whom a login lockout counts); with them, only those may set X-Forwarded-*.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or [],
                                http=guarded_protocol(limits or Limits(), name),
                                ssl_certfile=tls_cert, ssl_keyfile=tls_key, timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"http-{name}", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
