"""HTTP apps and the small uvicorn runner.

`create_app(service)` is the internet-side app on the API port: /healthz and /metrics
today; the REST intake (issue 7) adds its routers here (`app.include_router(...)`),
reaching the appliance through `request.app.state.service` (a `Service`).
The LGWAN-side console on the console port is `transfer_agent.console.create_console_app`.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from .metrics import CONTENT_TYPE

log = logging.getLogger("transfer_agent.http")


def create_app(service: Any) -> FastAPI:
    app = FastAPI(title="transfer-agent", version="0.1.0",
                  description="LGWAN transfer appliance: internet-side API")
    app.state.service = service

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        parts = service.health()
        ok = all(parts.values())
        # Degraded (still 200): the service works but something waits for an operator, e.g. an unwritable inbox.
        notes = service.health_notes()
        body: dict[str, Any] = {"status": ("degraded" if notes else "ok") if ok else "unhealthy", "components": parts}
        if notes:
            body["notes"] = notes
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    from .api_submissions import attach, make_router
    app.include_router(make_router(attach(service)))

    return app


class HttpServer:
    """uvicorn in a thread, on a socket bound here (bind errors surface at once; port 0 works)."""

    def __init__(self, app: FastAPI, host: str, port: int, name: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(128)
        self.sock.set_inheritable(False)
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"http-{name}", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

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
