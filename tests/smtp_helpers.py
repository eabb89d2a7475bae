"""Helpers for the SMTP intake tests: a free port, a DNS stub for SPF, an aiosmtpd sink as the LGWAN mail
server, waiting for mails in the ledger, reading a Maildir with Python's `mailbox`."""
from __future__ import annotations

import email
import mailbox
import re
import socket
import sqlite3
import threading
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx

ROUTES = """
[mail.routes]
"city.example.lg.jp" = "default"
"kokuho@city.example.lg.jp" = "国保課"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ledger(data: Path) -> sqlite3.Connection:
    c = sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30)
    c.row_factory = sqlite3.Row
    return c


def mail_jobs(data: Path, mail_id: str) -> list[sqlite3.Row]:
    with ledger(data) as c:
        return c.execute("SELECT * FROM jobs WHERE mail_id = ? ORDER BY id", (mail_id,)).fetchall()


def wait_final(data: Path, mail_id: str, n: int = 1, timeout: float = 60) -> list[sqlite3.Row]:
    """The jobs of a mail once at least `n` exist and all are final."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = mail_jobs(data, mail_id)
        if len(jobs) >= n and all(j["status"] in ("delivered", "blocked") for j in jobs):
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"mail {mail_id} not delivered: {[dict(j) for j in mail_jobs(data, mail_id)]}")


def queue_id(reply: bytes | str) -> str:
    """The queue id in our 250 reply ('2.0.0 Ok: queued as 20261126-...')."""
    text = reply.decode() if isinstance(reply, bytes) else reply
    return text.rsplit(" ", 1)[-1].strip()


def maildir(data: Path, address: str) -> list[EmailMessage]:
    """Every message in the Maildir of `address` (new/ and cur/), parsed by the standard library."""
    box = mailbox.Maildir(data / "inbox" / "mail" / address, factory=None, create=False)
    out = []
    for key in sorted(box.keys()):
        with box.get_file(key) as f:
            out.append(email.message_from_binary_file(f, policy=policy.default))
    return out


def attachments(msg: EmailMessage) -> dict[str, bytes]:
    return {p.get_filename(): p.get_content() for p in msg.iter_attachments()}


class DnsStub:
    """A tiny authoritative DNS server on loopback UDP answering TXT records (SPF) from a dict."""

    def __init__(self, txt: dict[str, str]) -> None:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        self._m, self._rc, self._rt, self._rr = dns.message, dns.rcode, dns.rdatatype, dns.rrset
        self.txt = {k.lower().rstrip("."): v for k, v in txt.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            q = self._m.from_wire(data)
            r = self._m.make_response(q)
            question = q.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append(f"{name}/{self._rt.to_text(question.rdtype)}")
            if question.rdtype == self._rt.TXT and name in self.txt:
                r.answer.append(self._rr.from_text(question.name, 60, "IN", "TXT", f'"{self.txt[name]}"'))
            elif name not in self.txt:
                r.set_rcode(self._rc.NXDOMAIN)
            self.sock.sendto(r.to_wire(), addr)

    def close(self) -> None:
        self.sock.close()


class Sink:
    """The LGWAN-side mail server: a real aiosmtpd server that keeps what it receives."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[tuple[str, list[str], bytes]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN202
                sink.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                return f"250 2.0.0 Ok: stored {len(sink.received)}"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN202
                if address.startswith("nosuchuser@"):
                    return "550 5.1.1 No such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def console_login(console: str, name: str, password: str) -> httpx.Client:
    """A logged-in console client (the login form's `pre` token, then the password)."""
    c = httpx.Client(base_url=console, timeout=60, follow_redirects=False)
    page = c.get("/login")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"name": name, "password": password, "pre": pre, "next": "/"})
    assert r.status_code == 303, r.text[:300]
    return c
