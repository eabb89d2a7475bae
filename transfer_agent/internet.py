"""The internet-side process: every listener that faces the internet runs here, apart from the core.

`transfer-agent serve` (the core: intake, workers, delivery, ledger, LGWAN console) binds the API
socket and starts this process with it (`Supervisor`), restarting it if it dies. Here the REST intake
stages uploads under work/api-uploads/, records each submission in the ledger (SQLite in WAL mode is
shared by both processes) and wakes the core over `state/core.sock` (corelink.py), which writes the
bundle and hands the files over. /healthz and /metrics ask the core the same way. So a flood of
slow or hostile clients can exhaust this process, never intake, delivery or the console; and this
process never writes into the inbox. The SMTP intake (smtp_server.py, with `--smtp-port`) runs here
too, on a second socket the core bound: it spools each mail, records it and has the core quarantine
it (`mail` over core.sock) before it answers 250. Later internet-side intakes (upload page) belong here.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .config import Config, load_config

log = logging.getLogger("transfer_agent.internet")

ENV = "TRANSFER_AGENT_INTERNET"


class CoreMetrics:
    """/metrics: the core's, followed by this process's own (SMTP sessions)."""

    def __init__(self, side: InternetSide) -> None:
        from prometheus_client import CollectorRegistry, Counter

        self.side = side
        self.registry = CollectorRegistry()
        self.smtp = Counter("transfer_smtp_transactions_total", "SMTP intake: transactions and refusals, by outcome",
                            ["outcome"], registry=self.registry)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        from . import corelink
        return corelink.ask(self.side.core_sock, "metrics") + generate_latest(self.registry)


class InternetSide:
    """What the internet-side apps need of the appliance (api_app.create_app's `service`)."""

    internet_side = True

    def __init__(self, cfg: Config) -> None:
        from .ledger import Ledger

        self.cfg = cfg
        self.ledger = Ledger(cfg.ledger_target, anchor_fsync=cfg.fsync, anchor_syslog=cfg.audit_syslog,
                             anchor_path=cfg.state / "audit.anchor")
        self.core_sock = cfg.state / "core.sock"
        self.metrics = CoreMetrics(self)

    def wake(self) -> None:
        """Tell the core that a submission was recorded (it also looks by itself every half second)."""
        from . import corelink
        try:
            corelink.ask(self.core_sock, "wake", timeout=2)
        except OSError:
            log.warning("cannot wake the core; it picks the submission up at its next look",
                        extra={"event": "internet.wake_failed"})

    def health_report(self) -> tuple[dict[str, bool], list[str]]:
        """The core's components and notes (one question), and this process: alive, since it answers."""
        from . import corelink
        try:
            answer = json.loads(corelink.ask(self.core_sock, "health", timeout=5))
        except (OSError, ValueError):
            answer = {"components": {"core": False}, "notes": []}
        return {**answer.get("components", {}), "internet": True}, list(answer.get("notes", []))

    def health(self) -> dict[str, bool]:
        return self.health_report()[0]

    def health_notes(self) -> list[str]:
        return self.health_report()[1]


def main() -> int:
    """Entry of the child process (python -m transfer_agent.internet); its settings come from `serve`."""
    from . import logutil
    from .api_app import HttpServer, create_app
    from .httpguard import Limits

    spec = json.loads(os.environ[ENV])
    cfg = load_config(spec["config"], spec["data_dir"], **spec["overrides"])
    logutil.setup(cfg.log_level)
    sock = socket.socket(fileno=spec["fd"])
    sock.set_inheritable(False)
    side = InternetSide(cfg)
    server = HttpServer(create_app(side), cfg.api_bind, 0, "api", sock=sock,
                        limits=Limits(cfg.header_timeout_seconds, cfg.body_timeout_seconds,
                                      cfg.per_address_connections, cfg.body_min_bytes_per_second),
                        tls_cert=cfg.api_tls_cert or None, tls_key=cfg.api_tls_key or None)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    smtp = None
    if spec.get("smtp_fd") is not None:
        smtp = smtp_intake(cfg, side, socket.socket(fileno=spec["smtp_fd"]))
    server.start()
    if smtp is not None:
        smtp.start()
    log.info("internet side started", extra={"event": "internet.start", "pid": os.getpid(),
                                             "smtp": smtp is not None})
    parent = spec["parent"]
    while not stop.wait(0.5):
        if os.getppid() != parent or not server.alive() or (smtp is not None and not smtp.alive()):
            break  # the core is gone (or our server died): the core's supervisor starts a new one
    if smtp is not None:
        smtp.stop(5)
    server.stop(5)
    side.ledger.close()
    os._exit(0)


def smtp_intake(cfg: Config, side: InternetSide, sock: socket.socket) -> Any:
    """The SMTP server of this process (smtp_server.py) on the socket the core bound."""
    from . import corelink
    from .mail_spool import MailSpool
    from .mailroutes import Routes
    from .smtp_server import Handler, Limits, SmtpServer, spf_checker, tls_context

    sock.set_inheritable(False)
    spool = MailSpool(side.ledger, cfg.data_dir, cfg.mail_name, cfg.mail_authserv_id or cfg.mail_name, cfg.fsync,
                      ask_core=lambda timeout: corelink.ask(side.core_sock, "mail", timeout=timeout),
                      handover_seconds=cfg.mail_handover_seconds, dedup_hours=cfg.mail_dedup_hours)
    spool.clean()
    limits = Limits(cfg)
    handler = Handler(Routes(cfg.mail_routes, cfg.default_channel), spool, limits,
                      spf_checker(cfg.mail_dns, cfg.mail_dns_servers),
                      on_event=lambda outcome: side.metrics.smtp.labels(outcome).inc())
    tls = tls_context(cfg.smtp_tls_cert, cfg.smtp_tls_key) if cfg.smtp_tls_cert else None
    return SmtpServer(sock, handler, limits, cfg.mail_name, tls)


class Supervisor:
    """The core's side: runs the internet-side process on the bound API socket, restarts it if it dies
    (1 s, doubling up to 30 s while it keeps dying at once)."""

    def __init__(self, sock: socket.socket, config: str | None, data_dir: str, overrides: dict[str, Any],
                 on_event: Any = None, smtp_sock: socket.socket | None = None) -> None:
        self.sock = sock
        self.smtp_sock = smtp_sock
        self.spec = {"config": config, "data_dir": data_dir, "overrides": overrides, "fd": sock.fileno(),
                     "smtp_fd": smtp_sock.fileno() if smtp_sock is not None else None, "parent": os.getpid()}
        self.proc: subprocess.Popen | None = None
        self.on_event = on_event  # (event, data): audited by the caller
        self.restarts = 0
        self._delay = 1.0
        self._next = 0.0
        self._started = 0.0
        self._stopping = False

    def start(self) -> None:
        env = dict(os.environ, **{ENV: json.dumps(self.spec)})
        if self.restarts:
            env.pop("TRANSFER_AGENT_CRASHPOINT", None)  # test hook: a crash point fires in the first child only
        fds = (self.sock.fileno(),) + ((self.smtp_sock.fileno(),) if self.smtp_sock is not None else ())
        self.proc = subprocess.Popen([sys.executable, "-m", "transfer_agent.internet"], env=env,
                                     pass_fds=fds, cwd=str(Path.cwd()))
        self._started = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Call now and then: a dead child is restarted (after the backoff)."""
        if self._stopping or self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        if self._next == 0.0:
            rc = self.proc.returncode
            if now - self._started > 60:
                self._delay = 1.0  # it had run a good while: not a crash loop
            self._next = now + self._delay
            log.error("the internet-side process stopped; restarting it",
                      extra={"event": "internet.died", "returncode": rc, "restart_in": self._delay})
            if self.on_event is not None:
                self.on_event("internet.restarted", {"returncode": rc})
            self._delay = min(30.0, self._delay * 2)
        if now >= self._next:
            self._next = 0.0
            self.restarts += 1
            self.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
