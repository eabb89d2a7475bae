"""Outbound SMTP: one transaction to a relay (`Relay.send`), and a durable queue with retries (`Outbox`).

Used by the core to hand rebuilt mail to the LGWAN mail server ([mail] deliver = "smtp"; the job's
delivery plan and the deliverer's retry machinery carry it, mail_delivery.py) and by internet-side
features that send mail of their own (receipt mails: `Outbox`, a queue in the ledger with its own
sender thread). Both keep the same promise:

- **Never lost**: what is to be sent is committed to the ledger before the first attempt; a relay
  that is down, refuses for now (4xx) or cuts the connection is tried again with backoff
  (`retry_seconds` doubling up to `retry_max_seconds`), across restarts.
- **Exactly once, as far as SMTP allows**: a recipient is marked sent in the ledger right after the
  relay's 250 to DATA, and never sent again. The one window left is a crash between that 250 and the
  commit (RFC 1047): the message is then sent again, byte for byte, with the same Message-ID and
  `X-CDR-Queue-ID`, so the receiving server can drop the duplicate (Dovecot/Sieve `duplicate`,
  Exchange by Message-ID). We chose a possible duplicate over a possible loss.
- **Audited**: queued, the first failure, sent (with the relay's reply), refused recipients.
- A recipient the relay refuses for good (5xx to RCPT: no such user) is recorded and not retried;
  a 5xx to MAIL or DATA is a configuration problem of ours or theirs and is retried like a 4xx,
  loudly, until an operator fixes it (the message stays queued, nothing is dropped).
"""
from __future__ import annotations

import json
import logging
import secrets
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import clock, schema

log = logging.getLogger("transfer_agent.smtp_relay")

QUEUE_HEADER = "X-CDR-Queue-ID"


def parse_hostport(text: str) -> tuple[str, int]:
    """'127.0.0.1:2526', 'mail.lg.jp:25', '[::1]:25' -> (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in " /[]"):
        raise ValueError("not host:port")
    return host, int(port)


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after `failures` failed ones: base, doubling, at most cap."""
    return min(cap, base * 2 ** min(max(failures, 1) - 1, 30))


class RelayError(Exception):
    """The transaction did not happen (nobody got the message): try again later."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent  # a 5xx to MAIL or DATA (still retried, see the module doc)


@dataclass
class Outcome:
    """What the relay said to one transaction, per recipient."""

    sent: dict[str, str] = field(default_factory=dict)  # 250 to DATA: delivered to the relay
    deferred: dict[str, str] = field(default_factory=dict)  # 4xx to RCPT: try again later
    rejected: dict[str, str] = field(default_factory=dict)  # 5xx to RCPT: not retried
    reply: str = ""  # the relay's reply to DATA ("250 2.0.0 Ok: queued as ...")


def _reply(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {' '.join(text.split())}"[:300]


class Relay:
    """A client of one relay (`host:port`); `send` is one transaction on a new connection."""

    def __init__(self, target: str, helo: str, timeout: float = 60.0, starttls: bool = False) -> None:
        self.host, self.port = parse_hostport(target)
        self.target = target
        self.helo = helo
        self.timeout = timeout
        self.starttls = starttls

    def send(self, mail_from: str, rcpts: list[str], data: bytes) -> Outcome:
        """MAIL, RCPT for each of `rcpts`, DATA. Raises RelayError when no recipient got the message
        and it may work later (connection refused or lost, timeout, 4xx or 5xx to MAIL or DATA)."""
        out = Outcome()
        try:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.helo, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayError(f"cannot connect to {self.target}: {exc}") from None
        try:
            code, msg = smtp.ehlo()
            if code != 250:
                code, msg = smtp.helo()
                if code != 250:
                    raise RelayError(f"{self.target} refused HELO: {_reply(code, msg)}", code >= 500)
            if self.starttls and smtp.has_extn("starttls"):
                # Inside the LGWAN: opportunistic, like MTAs between themselves (no certificate check).
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                smtp.starttls(context=ctx)
                smtp.ehlo()
            options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
            if smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            code, msg = smtp.mail(mail_from, options)
            if code != 250:
                raise RelayError(f"{self.target} refused MAIL FROM:<{mail_from}>: {_reply(code, msg)}", code >= 500)
            accepted = []
            for r in rcpts:
                code, msg = smtp.rcpt(r)
                if code in (250, 251):
                    accepted.append(r)
                elif code >= 500:
                    out.rejected[r] = _reply(code, msg)
                else:
                    out.deferred[r] = _reply(code, msg)
            if not accepted:
                smtp.rset()
                return out
            code, msg = smtp.data(data)
            if code != 250:
                raise RelayError(f"{self.target} refused the message: {_reply(code, msg)}", code >= 500)
            out.reply = _reply(code, msg)
            out.sent = {r: out.reply for r in accepted}
            return out
        except smtplib.SMTPResponseException as exc:
            raise RelayError(f"{self.target}: {_reply(exc.smtp_code, exc.smtp_error)}", exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayError(f"{self.target}: {type(exc).__name__}: {exc}") from None
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def new_queue_id() -> str:
    return f"{clock.compact_day()}-{secrets.token_hex(6)}"


def with_queue_id(data: bytes, queue_id: str) -> bytes:
    """The message with our queue id as its first header field (the receiver's handle on duplicates)."""
    return f"{QUEUE_HEADER}: {queue_id}\r\n".encode("ascii") + data


# ---------------------------------------------------------------------------- the outbox

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id   TEXT NOT NULL UNIQUE,     -- in the X-CDR-Queue-ID header; enqueueing it again is a no-op
    purpose    TEXT NOT NULL,            -- e.g. "receipt"
    mail_from  TEXT NOT NULL,
    rcpts      TEXT NOT NULL,            -- JSON {address: "pending" | "sent" | "rejected"}
    data       BLOB NOT NULL,            -- the whole message, X-CDR-Queue-ID first
    status     TEXT NOT NULL,            -- pending | done
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    done_at    REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status, next_at);
"""
schema.register("outbox", OUTBOX_SCHEMA)


def queue_in(t: Any, mail_from: str, rcpts: list[str], message: bytes, purpose: str, queue_id: str,
             actor: str = "system", **audit: Any) -> bool:
    """Queue a message inside the caller's transaction `t` (so it is queued exactly when the caller's own
    change commits); False when `queue_id` was queued before. The sender thread of an Outbox sends it."""
    data = with_queue_id(message, queue_id)
    cur = t.execute("INSERT OR IGNORE INTO outbox(queue_id, purpose, mail_from, rcpts, data, status, next_at,"
                    " created_at) VALUES (?,?,?,?,?,'pending',?,?)",
                    (queue_id, purpose, mail_from, json.dumps({r: "pending" for r in rcpts}), data,
                     time.time(), time.time()))
    if cur.rowcount:
        t.audit("outbox.queued", {"queue_id": queue_id, "purpose": purpose, "from": mail_from, "rcpts": rcpts,
                                  "size": len(data)}, actor=actor, **audit)
    return bool(cur.rowcount)


class Outbox:
    """Mail of our own (receipts, ...) relayed with retries: `enqueue` commits it, the thread of `start`
    (or `send_due`) sends it. Any process with the ledger may use it; one sender thread per purpose
    set is enough (rows are claimed by their state in a transaction, so two never send one row twice
    while both run)."""

    def __init__(self, ledger: Any, relay: Relay, retry_seconds: float = 1.0, retry_max_seconds: float = 60.0,
                 actor: str = "system") -> None:
        self.ledger = ledger
        self.relay = relay
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        self.actor = actor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sending = threading.Lock()

    def enqueue(self, mail_from: str, rcpts: list[str], message: bytes, purpose: str,
                queue_id: str | None = None) -> str:
        """Commit a message for sending (audited 'outbox.queued'); returns its queue id. With the same
        `queue_id` again nothing new is queued (a caller retrying after a crash)."""
        qid = queue_id or new_queue_id()
        with self.ledger.tx() as t:
            queue_in(t, mail_from, rcpts, message, purpose, qid, self.actor)
        self._wake.set()
        return qid

    def wake(self) -> None:
        """Look at the queue now (a row was queued by someone else in this process, see queue_in)."""
        self._wake.set()

    def send_due(self) -> int:
        """Try every message whose time has come, once; returns how many are still pending."""
        with self._sending:
            now = time.time()
            for row in self.ledger.query("SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY id",
                                         (now,)):
                if self._claim(row):
                    self._attempt(row)
            return self.ledger.one("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0]

    def _claim(self, row: Any) -> bool:
        """Take the row for one attempt: its next_at moves past the attempt, so no other sender (another
        serve node) sees it due meanwhile; a sender that dies mid-attempt leaves it due again later."""
        hold = time.time() + max(120.0, 4 * getattr(self.relay, "timeout", 60.0))
        with self.ledger.tx() as t:
            cur = t.execute("UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending' AND attempts = ?"
                            " AND next_at = ?", (hold, row["id"], row["attempts"], row["next_at"]))
            return cur.rowcount == 1

    def _attempt(self, row: Any) -> None:
        states: dict[str, str] = json.loads(row["rcpts"])
        pending = [r for r, s in states.items() if s == "pending"]
        try:
            out = self.relay.send(row["mail_from"], pending, bytes(row["data"]))
        except RelayError as exc:
            self._failed(row, str(exc), exc.permanent)
            return
        for r in out.sent:
            states[r] = "sent"
        for r in out.rejected:
            states[r] = "rejected"
        done = all(s != "pending" for s in states.values())
        with self.ledger.tx() as t:
            t.execute("UPDATE outbox SET rcpts = ?, status = ?, attempts = attempts + 1, next_at = ?, last_error = ?,"
                      " done_at = ? WHERE id = ?",
                      (json.dumps(states), "done" if done else "pending",
                       time.time() + backoff(row["attempts"] + 1, self.retry_seconds, self.retry_max_seconds),
                       "; ".join(out.deferred.values()) or None, time.time() if done else None, row["id"]))
            if out.sent:
                t.audit("outbox.sent", {"queue_id": row["queue_id"], "rcpts": sorted(out.sent), "reply": out.reply,
                                        "relay": self.relay.target}, actor=self.actor)
            if out.rejected:
                t.audit("outbox.rejected", {"queue_id": row["queue_id"], "rcpts": out.rejected,
                                            "relay": self.relay.target}, actor=self.actor)
        if out.deferred:
            log.warning("relay deferred recipients; will retry", extra={
                "event": "outbox.deferred", "queue_id": row["queue_id"], "rcpts": sorted(out.deferred)})

    def _failed(self, row: Any, error: str, permanent: bool) -> None:
        attempts = row["attempts"] + 1
        delay = backoff(attempts, self.retry_seconds, self.retry_max_seconds)
        with self.ledger.tx() as t:
            t.execute("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                      (attempts, time.time() + delay, error[:500], row["id"]))
            if attempts == 1:  # the first failure is audited, later ones only logged
                t.audit("outbox.failed", {"queue_id": row["queue_id"], "error": error[:500]}, actor=self.actor)
        (log.error if permanent else log.warning)(
            "relay failed; will retry", extra={"event": "outbox.retry", "queue_id": row["queue_id"],
                                               "attempts": attempts, "retry_in": delay, "error": error[:300]})

    # ------------------------------------------------------------ the sender thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
                row = self.ledger.one("SELECT MIN(next_at) FROM outbox WHERE status = 'pending'")
                wait = max(0.05, min(self.retry_max_seconds, row[0] - time.time())) if row and row[0] else None
            except Exception:  # noqa: BLE001 - the ledger keeps the queue; try again shortly
                log.exception("outbox pass failed", extra={"event": "error"})
                wait = self.retry_seconds
            self._wake.wait(wait)
            self._wake.clear()
