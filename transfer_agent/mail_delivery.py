"""Delivery of a mail job (a mail from the SMTP intake) to its recipients on the LGWAN side.

Like a file's delivery (delivery.py) it is a *plan* committed with the verdict before anything is
sent, carried out by the delivery thread and replayed after a crash or a failure with backoff
(deliverer.py). What differs is where it goes, by `[mail] deliver`:

- `maildir`: per recipient, a unique Maildir name under inbox/mail/<address>/ (maildir.py), the
  message with `Return-Path`, `Delivered-To` and `X-CDR-Queue-ID` on top. A replay finds what it
  already dropped and skips it: exactly once.
- `smtp`: one transaction to the LGWAN mail server (`relay`), for the recipients still pending.
  After the relay's 250 the recipients are marked sent in the plan (audit 'smtp.relayed'); a
  recipient refused for good (5xx to RCPT) is marked so (audit 'smtp.relay_rejected'); a relay
  that is down or answers 4xx leaves the plan as it is, and the deliverer retries it with backoff.
  The one crash window (after the relay's 250, before our commit) sends the same bytes again, with
  the same Message-ID and X-CDR-Queue-ID: see smtp_relay.py for why we chose that over a loss.

A blocked mail delivers a notice mail (mail_notice.py) to the same recipients instead. The plan keeps
`dir` (the channel's dated inbox folder, where an approved original is released) and `files` (one
entry per Maildir drop, or one for the relay transaction), whose names are what the ledger and the
audit trail record as delivered.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import mail_notice, maildir
from .config import Config
from .crashpoints import crashpoint
from .delivery import SourceMissing
from .files import clean_name
from .safefs import Tree
from .smtp_relay import QUEUE_HEADER, Outcome, Relay, RelayError, queue_in

log = logging.getLogger("transfer_agent.service")

MAIL_ROOT = "inbox/mail"


def folder_for(address: str) -> str:
    """The Maildir of a recipient, relative to the data dir (the address is canonical already)."""
    return f"{MAIL_ROOT}/{clean_name(address)}"


class MailDelivery:
    def __init__(self, cfg: Config, ledger: Any, tree: Tree) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.tree = tree
        self._relay: Relay | None = None
        self.on_outbox: Callable[[], None] | None = None  # wakes the outbox's sender (notify.py) after a DSN

    @property
    def relay(self) -> Relay:
        if self._relay is None:
            self._relay = Relay(self.cfg.mail_relay, self.cfg.mail_name, self.cfg.mail_relay_timeout_seconds,
                                self.cfg.mail_relay_starttls)
        return self._relay

    # ------------------------------------------------------------ plan

    def plan(self, job: dict[str, Any], result: dict[str, Any], cache: Path | None, out_name: str | None,
             inbox_dir: str) -> dict[str, Any]:
        """Names, contents and hashes of every drop (or of the relay transaction), before anything is sent."""
        job_id, mail_id = int(job["id"]), job["mail_id"]
        mail = self.ledger.mail(mail_id)
        rcpts = self.ledger.mail_recipients(mail_id, job["channel"])
        queue_id = f"{mail_id}.{job_id}"
        blocked = result.get("verdict") == "blocked" or not out_name
        src: str | None = None
        content: str | None = None
        if blocked:
            envelope_from = ""  # a notice: null sender, nothing bounces to it
            body = mail_notice.build(result=result, envelope_from=mail["mail_from"] if mail else "", mail_id=mail_id,
                                     job_id=job_id, queue_id=queue_id, hostname=self.cfg.mail_name,
                                     notice_from=self.cfg.mail_notice_from or f"postmaster@{self.cfg.mail_name}",
                                     retention_days=job.get("retention_days"), console_url=self.cfg.mail_console_url,
                                     rcpts=rcpts)
            content = body.decode("ascii")
            kind = "notice_mail"
        else:
            assert cache is not None
            path = cache / out_name
            try:
                body = path.read_bytes()
            except OSError as exc:
                raise SourceMissing(str(path)) from exc
            src = str(path.relative_to(self.cfg.data_dir))
            envelope_from = mail["mail_from"] if mail else ""
            kind = "mail"
        trace = f"{QUEUE_HEADER}: {queue_id}\r\n"
        files: list[dict[str, Any]] = []
        plan: dict[str, Any] = {"kind": "mail", "deliver": self.cfg.mail_deliver, "dir": inbox_dir, "main": queue_id,
                                "mail_id": mail_id, "files": files}
        if self.cfg.mail_deliver == "smtp":
            files.append(self._entry(queue_id, kind, trace, body, src, content, mail_from=envelope_from, rcpts=rcpts))
            plan["relay"] = {r: "pending" for r in rcpts}
            plan["relay_target"] = self.cfg.mail_relay
            return plan
        for n, rcpt in enumerate(rcpts, 1):
            prefix = f"Return-Path: <{envelope_from}>\r\nDelivered-To: {rcpt}\r\n{trace}"
            name = maildir.unique_name(job["received_at"], job_id, n, self.cfg.mail_name, len(prefix) + len(body))
            files.append(self._entry(name, kind, prefix, body, src, content, rcpt=rcpt, folder=folder_for(rcpt)))
        return plan

    @staticmethod
    def _entry(name: str, kind: str, prefix: str, body: bytes, src: str | None, content: str | None,
               **more: Any) -> dict[str, Any]:
        h = hashlib.sha256(prefix.encode("ascii"))
        h.update(body)
        e = {"name": name, "kind": kind, "prefix": prefix, "sha256": h.hexdigest(), **more}
        if src is not None:
            e["src"] = src
        else:
            e["content"] = content
        return e

    def _bytes(self, f: dict[str, Any], cache: dict[str, bytes]) -> bytes:
        if "content" in f:
            body = f["content"].encode("ascii")
        else:
            if f["src"] not in cache:
                try:
                    cache[f["src"]] = (self.cfg.data_dir / f["src"]).read_bytes()
                except OSError as exc:
                    raise SourceMissing(f["src"]) from exc
            body = cache[f["src"]]
        data = f["prefix"].encode("ascii") + body
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise SourceMissing(f"{f.get('src')}: content changed since the plan was made")
        return data

    # ------------------------------------------------------------ carry out

    def _expired(self, plan: dict[str, Any]) -> bool:
        """Whether the mail has waited for the relay longer than `[mail] relay_give_up_hours` (0: never)."""
        hours = self.cfg.mail_relay_give_up_hours
        if hours <= 0:
            return False
        mail = self.ledger.mail(plan.get("mail_id") or "")
        return mail is not None and time.time() - float(mail["received_at"]) > hours * 3600

    def _dsn(self, f: dict[str, Any], rejected: dict[str, str], data: bytes, job_id: int,
             expired: bool = False) -> tuple[str, bytes] | None:
        """(queue id, message) of the delivery status notification the sender is owed for recipients the
        LGWAN server refused for good; None for a notice mail, a null sender, or without [notify] smtp
        (the only way out to the internet; the audit trail and the console still say it)."""
        if f["kind"] != "mail" or not f.get("mail_from") or not self.cfg.notify_smtp:
            if f["kind"] == "mail" and f.get("mail_from"):
                log.warning("no delivery status notification for refused recipients: [notify] smtp is not set",
                            extra={"event": "mail.no_dsn", "job_id": job_id, "rcpts": sorted(rejected)})
            return None
        mail = self.ledger.mail(f["name"].split(".", 1)[0])
        qid = "dsn-" + f["name"] + "-" + hashlib.sha256(json.dumps(sorted(rejected)).encode()).hexdigest()[:8]
        body = mail_notice.dsn(rejected=rejected, envelope_from=f["mail_from"], headers=data, queue_id=f["name"],
                               expired_hours=self.cfg.mail_relay_give_up_hours if expired else None,
                               hostname=self.cfg.mail_name, arrival=mail["received_at"] if mail else time.time(),
                               notice_from=self.cfg.mail_notice_from or f"postmaster@{self.cfg.mail_name}")
        return qid, body

    def execute(self, job_id: int, plan: dict[str, Any], replay: bool) -> list[str]:
        """Carry out (or finish) the plan; returns the names delivered. OSError / RelayError: retried."""
        cache: dict[str, bytes] = {}
        if plan.get("deliver") == "smtp":
            return self._relay_plan(job_id, plan, cache)
        for f in plan["files"]:
            maildir.deliver(self.tree, f["folder"], f["name"], self._bytes(f, cache), self.cfg.fsync, replay)
            crashpoint("mail.dropped")
        return [f["name"] for f in plan["files"]]

    def _relay_plan(self, job_id: int, plan: dict[str, Any], cache: dict[str, bytes]) -> list[str]:
        f = plan["files"][0]
        state: dict[str, str] = plan["relay"]
        pending = [r for r, s in state.items() if s == "pending"]
        if pending:
            data = self._bytes(f, cache)
            expired = self._expired(plan)
            try:
                out = self.relay.send(f["mail_from"], pending, data)
            except RelayError as exc:
                if not expired:
                    (log.error if exc.permanent else log.warning)(
                        "the LGWAN mail server did not take the mail; will retry",
                        extra={"event": "mail.relay_failed", "job_id": job_id, "relay": self.relay.target,
                               "error": str(exc)})
                    raise
                out = Outcome(deferred={r: str(exc) for r in pending})
            crashpoint("mail.relay_sent")  # the window of smtp_relay.py's doc: sent, not yet recorded
            gave_up: dict[str, str] = {}
            if expired and out.deferred:
                # Past [mail] relay_give_up_hours (Postfix's maximal_queue_lifetime): the sender is told
                # rather than left believing it arrived. Only what is still pending; nothing sent twice.
                hours = self.cfg.mail_relay_give_up_hours
                gave_up = {r: f"554 5.4.7 not delivered within {hours:g} hours; last: {why}"[:300]
                           for r, why in out.deferred.items()}
                out.deferred = {}
            for r in out.sent:
                state[r] = "sent"
            for r in out.rejected:
                state[r] = "rejected"
            for r in gave_up:
                state[r] = "expired"
            if out.sent or out.rejected or gave_up:
                with self.ledger.tx() as t:
                    t.set_plan(job_id, plan)
                    if out.sent:
                        t.audit("smtp.relayed", {"queue_id": f["name"], "rcpts": sorted(out.sent), "reply": out.reply,
                                                 "relay": self.relay.target, "kind": f["kind"]}, job_id=job_id)
                    if out.rejected:
                        t.audit("smtp.relay_rejected", {"queue_id": f["name"], "rcpts": out.rejected,
                                                        "relay": self.relay.target}, job_id=job_id)
                    if gave_up:
                        t.audit("smtp.relay_expired", {"queue_id": f["name"], "rcpts": gave_up,
                                                       "relay": self.relay.target}, job_id=job_id)
                    failed = {**out.rejected, **gave_up}
                    dsn = self._dsn(f, failed, data, job_id, expired=bool(gave_up)) if failed else None
                    if dsn is not None:  # in this transaction: owed exactly when the failure is recorded
                        queue_in(t, "", [f["mail_from"]], dsn[1], "dsn", dsn[0])
                crashpoint("mail.relayed")
                if (out.rejected or gave_up) and self.on_outbox is not None:
                    self.on_outbox()
            if out.deferred:
                raise RelayError(f"recipients deferred by {self.relay.target}: {json.dumps(out.deferred)[:300]}")
        return [f["name"]]
