"""The SMTP intake (internet side): aiosmtpd on a socket the core bound, in a thread of internet.py.

What a sender meets:
- EHLO advertises SIZE (`[mail] max_size_mb`, enforced while the data arrives: 552), 8BITMIME and,
  with a certificate, STARTTLS. No AUTH, no SMTPUTF8: we are an inbound MX, not a submission server.
- RCPT: an address `[mail.routes]` does not know gets 550 5.1.1; more than `max_recipients` 452 4.5.3.
- DATA: a line longer than `max_line_length` gets 500; a bare CR or LF (SMTP smuggling, RFC 5321
  2.3.8) 550 5.6.0; the message is then spooled, recorded and quarantined by the core before
  the 250 (mail_spool.py). The core never answers for the sender: a core that does not take it in
  time gives 451 and the sender retries.
- SPF is computed here (the workers have no network) from the connecting address, HELO and MAIL FROM
  while the data arrives, and written in our Authentication-Results field.
- Slow or greedy clients, as httpguard does for HTTP: `per_address_connections` per address (421);
  a command must come within `command_timeout_seconds`; in DATA, no byte for `data_timeout_seconds`,
  or after that time an average under `data_min_bytes_per_second`, closes the connection (421).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtpd.smtp import log as _aiosmtpd_log

from .httpguard import AddressCounts
from .mail_spool import Answer, MailSpool
from .mailroutes import Routes

log = logging.getLogger("transfer_agent.smtp")
_aiosmtpd_log.setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO

SPF_SECONDS = 20.0


class Limits:
    def __init__(self, cfg: Any) -> None:
        self.max_bytes = int(cfg.mail_max_size_mb * 1024 * 1024)
        self.max_recipients = cfg.mail_max_recipients
        self.max_line = cfg.mail_max_line_length
        self.per_address = cfg.mail_per_address_connections
        self.command_timeout = cfg.mail_command_timeout_seconds
        self.data_timeout = cfg.mail_data_timeout_seconds
        self.data_min_rate = cfg.mail_data_min_bytes_per_second


def guarded_smtp(limits: Limits, counts: AddressCounts) -> type[SMTP]:
    """An aiosmtpd SMTP class enforcing `limits` (one class, and one count table, per listener)."""

    class Guarded(SMTP):
        # RFC 5321 4.5.3.1.6 counts the CRLF; aiosmtpd also counts the transparency dot.
        line_length_limit = limits.max_line + 1
        _ip: str | None = None
        _refused = False
        _in_data = False
        _busy = False
        _data_start = 0.0
        _data_bytes = 0
        _last_byte = 0.0

        def connection_made(self, transport: Any) -> None:  # noqa: ANN401
            first = self._original_transport is None and self.transport is None
            super().connection_made(transport)
            if not first:
                return  # the same connection after STARTTLS
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if peer else "?"
            if counts.acquire(ip, limits.per_address):
                self._ip = ip
            else:
                self._refused = True

        def connection_lost(self, error: Exception | None) -> None:
            if self._ip is not None:
                counts.release(self._ip)
                self._ip = None
            super().connection_lost(error)

        async def _handle_client(self) -> None:
            if self._refused:
                await self.push("421 4.7.0 Too many connections from your address; try again later")
                if self.transport is not None:
                    self.transport.close()
                return
            await super()._handle_client()

        def data_received(self, data: bytes) -> None:
            if self._in_data:
                self._data_bytes += len(data)
                self._last_byte = time.monotonic()
            super().data_received(data)

        async def smtp_DATA(self, arg: str) -> None:
            self._in_data = True
            self._data_start = self._last_byte = time.monotonic()
            self._data_bytes = 0
            self._reset_timeout(limits.data_timeout)
            try:
                await super().smtp_DATA(arg)
            finally:
                self._in_data = self._busy = False
                self._reset_timeout()
            from .crashpoints import crashpoint

            crashpoint("smtp.replied")

        def _timeout_cb(self) -> None:
            if self.transport is None or self.transport.is_closing():
                return
            now = time.monotonic()
            if self._busy:  # we are the slow side (spooling, the core quarantining): wait
                self._reset_timeout(limits.command_timeout)
                return
            if self._in_data:
                idle, took = now - self._last_byte, now - self._data_start
                if idle < limits.data_timeout and (took <= limits.data_timeout
                                                   or self._data_bytes / took >= limits.data_min_rate):
                    self._reset_timeout(max(0.2, min(limits.data_timeout - idle, limits.data_timeout)))
                    return
            counts.note(self._ip or "?", "slow_client")
            try:
                self.transport.write(b"421 4.4.2 Timeout; closing connection\r\n")
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            super()._timeout_cb()

    return Guarded


class Handler:
    """aiosmtpd hooks: routes at RCPT, SPF while the data comes, spool and hand over at the end."""

    def __init__(self, routes: Routes, spool: MailSpool, limits: Limits, spf: Callable[[str, str, str], Any],
                 on_event: Callable[[str], None] | None = None) -> None:
        self.routes = routes
        self.spool = spool
        self.limits = limits
        self.spf = spf
        self.on_event = on_event or (lambda _e: None)
        self._spf_pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="smtp-spf")
        self._io_pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="smtp-spool")

    def close(self) -> None:
        self._spf_pool.shutdown(wait=False, cancel_futures=True)
        self._io_pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _ip(session: Session) -> str:
        peer = session.peer
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "0.0.0.0"
        try:
            return str(ipaddress.ip_address(ip.split("%", 1)[0]))
        except ValueError:
            return "0.0.0.0"

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if len(address) > 254 or any(c in address for c in "\r\n\0 "):
            return "553 5.1.7 Sender address not accepted"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        loop = asyncio.get_running_loop()
        # SPF runs while the recipients and the data arrive (DNS may take seconds).
        session.spf = loop.run_in_executor(self._spf_pool, self.spf, self._ip(session), address,
                                           session.host_name or "")
        envelope.routes = []
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        routes = getattr(envelope, "routes", [])
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            self.on_event("too_many_recipients")
            return f"452 4.5.3 Too many recipients (at most {self.limits.max_recipients} per message)"
        found = self.routes.channel_for(address)
        if found is None:
            self.on_event("unknown_recipient")
            return f"550 5.1.1 <{address[:254]}>: Recipient address rejected: no such recipient here"
        channel, addr = found
        if addr in (a for a, _ in routes):
            return "250 2.1.5 Ok (duplicate recipient)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        routes.append((addr, channel))
        envelope.routes = routes
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        server._in_data = False  # type: ignore[attr-defined]
        server._busy = True  # type: ignore[attr-defined]
        data: bytes = envelope.original_content or b""
        crlf = data.count(b"\r\n")
        if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
            self.on_event("bare_newline")
            return "550 5.6.0 Message refused: a bare CR or LF (every line must end with CRLF)"
        if len(data) > self.limits.max_bytes:
            self.on_event("too_large")
            return "552 5.3.4 Message too big"
        spf_future = getattr(session, "spf", None)
        try:
            spf = await asyncio.wait_for(asyncio.shield(spf_future), SPF_SECONDS)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - SPF never stops a mail
            from cdr.formats.mail.auth import Result

            spf = Result("spf", "temperror", {"smtp.mailfrom": envelope.mail_from or ""}, type(exc).__name__)
        loop = asyncio.get_running_loop()
        try:
            answer: Answer = await loop.run_in_executor(self._io_pool, lambda: self.spool.accept(
                mail_from=envelope.mail_from or "", rcpts=list(envelope.routes), data=data,
                helo=session.host_name or "", client_ip=self._ip(session), spf=spf,
                tls=session.ssl is not None))
        except Exception:  # noqa: BLE001 - nothing was recorded: the sender tries again
            log.exception("cannot take the mail", extra={"event": "error"})
            self.on_event("error")
            return "451 4.3.0 Local error; try again later"
        self.on_event("accepted" if answer.code == 250 else "deferred")
        return answer.line()


def spf_checker(dns: bool, servers: list[str], timeout: float = 3.0) -> Callable[[str, str, str], Any]:
    """check_spf(ip, mail_from, helo) with our resolver: the system's, or `servers` ("ip" or "ip:port");
    with `dns` off every result is `none` (RFC 8601: nothing was evaluated)."""
    from cdr.formats.mail import auth

    if not dns:
        return lambda ip, mail_from, helo: auth.Result("spf", "none", {"smtp.mailfrom": mail_from or f"postmaster@{helo}"},
                                                       "DNS lookups off")
    if servers:
        import dns.resolver

        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [s.rsplit(":", 1)[0] if s.count(":") == 1 else s for s in servers]
        ports = {int(s.rsplit(":", 1)[1]) for s in servers if s.count(":") == 1}
        if ports:
            res.port = ports.pop()
        res.lifetime = timeout

        lookup = functools.partial(auth.dnspython_resolver, resolver=res, lifetime=timeout)
        auth._RESOLVER.insert(0, lookup)  # for the life of this process (auth.use_resolver without the block)
    return auth.check_spf


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class SmtpServer:
    """aiosmtpd on an already bound socket, in a thread with its own event loop."""

    def __init__(self, sock: socket.socket, handler: Handler, limits: Limits, hostname: str,
                 tls: ssl.SSLContext | None = None) -> None:
        self.sock = sock
        self.handler = handler
        self.limits = limits
        self.hostname = hostname
        self.tls = tls
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="smtp", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._counts = AddressCounts("smtp", "smtp")
        cls = guarded_smtp(self.limits, self._counts)

        def make() -> SMTP:
            return cls(self.handler, data_size_limit=self.limits.max_bytes, enable_SMTPUTF8=False,
                       decode_data=False, hostname=self.hostname, ident="ESMTP", tls_context=self.tls,
                       timeout=self.limits.command_timeout, loop=self.loop,
                       command_call_limit={"*": 64, "RCPT": max(1000, self.limits.max_recipients * 4), "MAIL": 256,
                                           "DATA": 256, "RSET": 256, "NOOP": 32})

        try:
            self._server = self.loop.run_until_complete(self.loop.create_server(make, sock=self.sock))
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self._server.close()
            self.loop.run_until_complete(self._server.wait_closed())
            self.loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        self.handler.close()
