"""The internet side's half of taking a mail: spool it durably, record it, have the core quarantine it.

`MailSpool.accept` runs when a sender has sent the final dot, before it gets an answer:

1. the message, with our `Received:` and `Authentication-Results:` (SPF) fields on top, is written
   to work/smtp/<queue id>.eml and fsynced (file and folder);
2. one transaction records it (`mails`, `mail_rcpts`, audit 'smtp.received'), unless the same
   sender already sent this very transaction (same envelope and bytes, within `dedup_hours`): then
   that earlier queue id is the answer, so a retry after a lost 250 is not taken twice;
3. the core is asked over state/core.sock (`mail`) to take it into quarantine now and answers when
   it has; then 250. If the core does not answer in `handover_seconds`, the row is withdrawn
   (audit 'smtp.abandoned') and the sender gets 451 and sends it again later; if the core claimed
   it meanwhile, it is the core's (durable in the spool and the ledger) and the answer is 250.

A kill -9 before the transaction leaves a spool file without a row (removed when this process
starts again; the sender, who got no answer, retries). After the commit, the core takes the row by
itself (it also looks every second), and the sender's retry is recognised as the same transaction.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from . import clock
from .crashpoints import crashpoint
from .files import fsync_dir
from .mail_db import SPOOL
from .smtp_relay import new_queue_id

log = logging.getLogger("transfer_agent.smtp")

_HEADER_TEXT = {ord(c): None for c in "\r\n\0()[];\\\""}


@dataclass
class Answer:
    code: int
    text: str
    mail_id: str | None = None

    def line(self) -> str:
        return f"{self.code} {self.text}"


def _token(value: str, most: int = 255) -> str:
    """Client-supplied text (HELO) as it may appear in our header fields: printable ASCII, no comments."""
    return "".join(c for c in value if 32 < ord(c) < 127).translate(_HEADER_TEXT)[:most] or "unknown"


def transaction_key(mail_from: str, rcpts: list[str], data: bytes) -> str:
    h = hashlib.sha256(json.dumps([mail_from, rcpts]).encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


class MailSpool:
    def __init__(self, ledger: Any, data_dir: Path, hostname: str, authserv_id: str, fsync: bool = True,
                 ask_core: Callable[[float], bytes] | None = None, handover_seconds: float = 30.0,
                 dedup_hours: float = 120.0) -> None:
        self.ledger = ledger
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "work" / SPOOL
        self.hostname = hostname
        self.authserv_id = authserv_id
        self.fsync = fsync
        self.ask_core = ask_core
        self.handover_seconds = handover_seconds
        self.dedup_seconds = dedup_hours * 3600.0
        self.root.mkdir(parents=True, exist_ok=True)

    def clean(self) -> list[str]:
        """At start: spool files of no recorded mail (a crash before the commit), or of one withdrawn."""
        keep = {Path(r[0]).name for r in self.ledger.query("SELECT spool FROM mails WHERE status IN"
                                                           " ('received', 'taking')")}
        removed = []
        for p in self.root.iterdir():
            base = p.name.split(".", 1)[0] + ".eml"  # <id>.eml and the core's links <id>.<n>.eml
            if base not in keep and p.name not in keep:
                p.unlink(missing_ok=True)
                removed.append(p.name)
        if removed:
            log.info("removed spooled mails nobody recorded", extra={"event": "smtp.spool_clean", "files": removed})
        return removed

    def header(self, mail_id: str, helo: str, client_ip: str, rcpts: list[str], spf: Any, tls: bool) -> bytes:
        """Our trace fields: Received (RFC 5321 4.4) and Authentication-Results with the SPF result (RFC 8601),
        which the engine takes over because it comes from the appliance itself (dispatcher.py)."""
        proto = "ESMTPS" if tls else "ESMTP"
        rcpt = f"\r\n\tfor <{rcpts[0]}>" if len(rcpts) == 1 else ""
        received = (f"Received: from {_token(helo)} ([{client_ip}])\r\n\tby {self.hostname} with {proto} id {mail_id}"
                    f"{rcpt};\r\n\t{format_datetime(clock.local())}\r\n")
        return (received + f"Authentication-Results: {self.authserv_id}; {spf.resinfo()}\r\n").encode("ascii", "replace")

    def accept(self, *, mail_from: str, rcpts: list[tuple[str, str]], data: bytes, helo: str, client_ip: str,
               spf: Any, tls: bool) -> Answer:
        """Spool, record, hand over (see the module doc). `rcpts`: (canonical address, channel)."""
        addrs = [a for a, _ in rcpts]
        txn = transaction_key(mail_from, addrs, data)
        mail_id = new_queue_id()
        path = self.root / f"{mail_id}.eml"
        head = self.header(mail_id, helo, client_ip, addrs, spf, tls)
        sha = hashlib.sha256(head)
        sha.update(data)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(head)
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            if self.fsync:
                fsync_dir(self.root)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        crashpoint("smtp.spooled")
        now = time.time()
        with self.ledger.tx() as t:
            prev = t.execute("SELECT id FROM mails WHERE txn = ? AND status != 'abandoned' AND received_at > ?"
                             " ORDER BY received_at DESC LIMIT 1", (txn, now - self.dedup_seconds)).fetchone()
            if prev is None:
                t.execute("INSERT INTO mails(id, status, mail_from, helo, client_ip, tls, spf, size, sha256, txn, spool,"
                          " received_at) VALUES (?,'received',?,?,?,?,?,?,?,?,?,?)",
                          (mail_id, mail_from, _token(helo), client_ip, int(tls), json.dumps(spf.to_dict()),
                           len(head) + len(data), sha.hexdigest(), txn, str(path.relative_to(self.data_dir)), now))
                for n, (addr, channel) in enumerate(rcpts):
                    t.execute("INSERT INTO mail_rcpts(mail_id, n, address, channel) VALUES (?,?,?,?)",
                              (mail_id, n, addr, channel))
                t.audit("smtp.received", {"mail_id": mail_id, "from": mail_from, "rcpts": addrs,
                                          "channels": sorted({c for _, c in rcpts}), "client_ip": client_ip,
                                          "helo": _token(helo), "tls": tls, "spf": spf.result,
                                          "size": len(head) + len(data), "sha256": sha.hexdigest()}, actor="smtp")
        if prev is not None:
            path.unlink(missing_ok=True)
            with self.ledger.tx() as t:
                t.audit("smtp.duplicate", {"mail_id": prev[0], "from": mail_from, "rcpts": addrs,
                                           "client_ip": client_ip}, actor="smtp")
            log.info("a sender's retry of a mail already recorded", extra={"event": "smtp.duplicate",
                                                                          "mail_id": prev[0]})
            return Answer(250, f"2.0.0 Ok: already queued as {prev[0]}", prev[0])
        crashpoint("smtp.recorded")
        return self._hand_over(mail_id)

    def _hand_over(self, mail_id: str) -> Answer:
        """The core takes the mail into quarantine now; 250 once it has (or has claimed it)."""
        if self.ask_core is not None:
            try:
                self.ask_core(self.handover_seconds)
            except OSError as exc:
                log.warning("the core did not confirm the mail in time", extra={
                    "event": "smtp.handover_slow", "mail_id": mail_id, "error": str(exc)})
        row = self.ledger.one("SELECT status FROM mails WHERE id = ?", (mail_id,))
        if row is not None and row["status"] == "received":
            with self.ledger.tx() as t:
                cur = t.execute("UPDATE mails SET status = 'abandoned' WHERE id = ? AND status = 'received'",
                                (mail_id,))
                if cur.rowcount:
                    t.audit("smtp.abandoned", {"mail_id": mail_id, "why": "the core did not take it in time"},
                            actor="smtp")
            if cur.rowcount:
                (self.root / f"{mail_id}.eml").unlink(missing_ok=True)
                return Answer(451, "4.3.0 Try again later: the gateway is busy", None)
        log.info("mail queued", extra={"event": "smtp.queued", "mail_id": mail_id})
        return Answer(250, f"2.0.0 Ok: queued as {mail_id}", mail_id)
