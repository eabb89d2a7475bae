"""Receipt mails (受付確認メール) and the daily digest for staff, through the outbound relay.

When a submission is done (every verdict known), its receipt mail is built from a Jinja2 template
(`templates/mail/receipt.txt`, or the operator's `[notify] templates` folder) and committed to the
outbox (smtp_relay.Outbox) under the queue id `receipt-<submission id>`: queued once whatever
happens (a crash and a second try queue nothing new), sent with retries and backoff, each recipient
marked sent once, audited (outbox.queued / outbox.sent / outbox.failed). The mail carries the receipt
number, the channel's display name, the date (JST) and each file's result; no link and no file, and
no text typed by the sender (a stranger could otherwise make us mail anyone their words).

The digest (`[notify] digest_hour`): once a day, per channel with submissions the day before, a
summary to the channel's `digest` addresses and `[notify] digest_to` (queue id `digest-<channel>-<day>`).
"""
from __future__ import annotations

import email.policy
import json
import logging
import socket
import threading
import time
from datetime import date, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from . import exchange, tally
from .crashpoints import crashpoint
from .ledger import FINAL, loads
from .smtp_relay import Outbox, Relay

log = logging.getLogger("transfer_agent.notify")

PKG = Path(__file__).resolve().parent
RESULT_JA = {"clean": "受理", "sanitized": "無害化して受理", "blocked": "受理できませんでした"}
CATCH_UP_DAYS = 3  # a digest missed while the appliance was off is sent late, at most this many days back
_NAME_MAX = 120  # a file name in a mail: long enough for real names, too short for a letter


def _env(folder: str) -> Environment:
    loaders = [FileSystemLoader(folder)] if folder else []
    loaders.append(FileSystemLoader(str(PKG / "templates" / "mail")))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=False, undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["shown"] = exchange.shown
    return env


def check_templates(folder: str, base: Path) -> Path:
    """The operator's `[notify] templates` folder (relative: to the data dir), each template in it rendered
    once with sample values, so that a typo stops the start with file and line instead of leaving every
    receipt mail unsent (ValueError). A missing folder is an error too: the defaults would be used silently."""

    from jinja2 import TemplateError, TemplateSyntaxError

    path = Path(folder).expanduser()
    if not path.is_absolute():
        path = Path(base) / path
    if not path.is_dir():
        raise ValueError(f"notify.templates = {folder!r}: no such folder ({path})")
    env = _env(str(path))
    files = [{"name": "申請書.pdf", "verdict": "sanitized", "result": RESULT_JA["sanitized"], "reason": ""},
             {"name": "setup.exe", "verdict": "blocked", "result": RESULT_JA["blocked"], "reason": "実行ファイル"}]
    t = tally.Tally(channel="kokuho", label="国民健康保険課", start=date(2026, 4, 1), end=date(2026, 4, 1))
    samples = {
        "receipt.txt": dict(receipt="20260401-0001", channel="国民健康保険課", received="2026-04-01 09:30 JST",
                            title="転入の書類", files=files, count=len(files)),
        "digest.txt": dict(channel="国民健康保険課", day="2026-04-01", t=t, console="",
                           items=[{"receipt": "20260401-0001", "time": "09:30", "source": "アップロードページ",
                                   "flags": ["PDFの添付がありません"], "status": "done"}],
                           verdicts=[(tally.VERDICT_LABEL[k], 0) for k in tally.VERDICT_ORDER]),
    }
    for name, ctx in samples.items():
        if not (path / name).is_file():
            continue  # the built-in one is used
        try:
            text = env.get_template(name).render(**ctx)
        except TemplateSyntaxError as exc:
            raise ValueError(f"{path / name}, line {exc.lineno}: {exc.message}") from None
        except TemplateError as exc:  # an unknown variable (StrictUndefined), a bad filter
            raise ValueError(f"{path / name}: {exc} (variables: {', '.join(sorted(ctx))})") from None
        if not text.partition("\n")[0].strip():
            raise ValueError(f"{path / name}, line 1: the first line is the subject and must not be empty")
    return path


def _one_line(text: str, limit: int = _NAME_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Notifier:
    """Receipt mails and digests of the core; `start` runs the outbox's sender and the digest clock."""

    def __init__(self, cfg: Any, ledger: Any, relay: Relay | None = None) -> None:
        self.cfg = cfg
        self.ledger = ledger
        host = getattr(cfg, "mail_name", "") or socket.getfqdn() or "localhost"
        self.relay = relay or Relay(cfg.notify_smtp, helo=host, timeout=60.0)
        self.outbox = Outbox(ledger, self.relay, cfg.notify_retry_seconds, cfg.notify_retry_max_seconds)
        self.sender = cfg.notify_from or f"noreply@{host}"
        self.domain = self.sender.rpartition("@")[2] or host
        self.env = _env(cfg.notify_templates)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.sweep()
        try:
            self.digests()  # a digest due while the appliance was down goes out now, not 30 s later
        except Exception:  # noqa: BLE001 - tried again on the next round
            log.exception("digest pass failed", extra={"event": "error"})
        self.outbox.start()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.stop()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(30):
            try:
                self.sweep()
                self.digests()
            except Exception:  # noqa: BLE001 - tried again on the next round
                log.exception("notify pass failed", extra={"event": "error"})

    # ---------------------------------------------------------------- receipts
    def on_done(self, sub_id: str) -> None:
        """SubmissionService hook: a submission's verdicts are all known."""
        self.queue_receipt(sub_id)

    def sweep(self) -> None:
        """Receipts due but not queued (the core stopped between the verdicts and the queueing). Only of the
        last two days: turning mail on later does not send weeks-old receipts."""
        for row in self.ledger.query("SELECT id FROM submissions WHERE status = 'done' AND receipt_to IS NOT NULL"
                                     " AND receipt_mail IS NULL AND done_at > ? ORDER BY done_at LIMIT 500",
                                     (time.time() - 2 * 86400,)):
            self.queue_receipt(row["id"])

    def queue_receipt(self, sub_id: str) -> str | None:
        with self._lock:
            s = self.ledger.one("SELECT * FROM submissions WHERE id = ?", (sub_id,))
            if s is None or s["status"] != "done" or not s["receipt_to"] or s["receipt_mail"]:
                return None
            rcpts = [a for a in json.loads(s["receipt_to"]) if isinstance(a, str) and a]
            if not rcpts:
                return None
            qid = f"receipt-{sub_id}"
            message = self.receipt_message(s, rcpts, qid)
            self.outbox.enqueue(self.sender, rcpts, message, "receipt", queue_id=qid)
            crashpoint("notify.queued")
            with self.ledger.tx() as t:
                t.execute("UPDATE submissions SET receipt_mail = ? WHERE id = ?", (qid, sub_id))
            log.info("receipt mail queued", extra={"event": "notify.receipt", "receipt": s["receipt"],
                                                   "queue_id": qid, "rcpts": len(rcpts)})
            return qid

    def _headers(self, msg: EmailMessage, subject: str, rcpts: list[str], qid: str, display: str) -> None:
        local, _, domain = self.sender.partition("@")
        msg["Subject"] = subject
        msg["From"] = Address(display, local, domain)
        msg["To"] = ", ".join(rcpts)
        msg["Date"] = format_datetime(exchange.local(time.time()))
        msg["Message-ID"] = make_msgid(qid, domain=self.domain)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
        msg["X-Auto-Response-Suppress"] = "All"

    def _render(self, name: str, **ctx: Any) -> tuple[str, str]:
        """(subject, body) of a template whose first line is the subject and second line empty."""
        text = self.env.get_template(name).render(**ctx)
        subject, _, body = text.partition("\n")
        return " ".join(subject.split()), body.lstrip("\n")

    def receipt_message(self, s: Any, rcpts: list[str], qid: str) -> bytes:
        jobs = {j["name"]: j for j in self.ledger.query(
            "SELECT name, status, verdict, result FROM jobs WHERE submission_id = ?", (s["id"],))}
        files = []
        for f in loads(s["files"]) or []:
            j = jobs.get(f["name"])
            final = j is not None and j["status"] in FINAL
            res = (loads(j["result"]) or {}) if final else {}
            verdict = j["verdict"] if final else "blocked"
            files.append({"name": _one_line(f["name"]), "verdict": verdict, "result": RESULT_JA[verdict],
                          "reason": _one_line(res.get("reason_ja") or res.get("reason") or "", 200)
                          if verdict == "blocked" else ""})
        req = exchange.get(self.ledger, s["request_id"]) if s["request_id"] else None
        channel = self.cfg.channel_label(s["channel"])
        subject, body = self._render("receipt.txt", receipt=s["receipt"], channel=channel,
                                     received=exchange.shown(s["created_at"]), title=req.title if req else "",
                                     files=files, count=len(files))
        msg = EmailMessage(policy=email.policy.SMTP)
        self._headers(msg, subject, rcpts, qid, channel)
        msg.set_content(body, charset="utf-8", cte="base64")
        return msg.as_bytes()

    # ---------------------------------------------------------------- digest
    def digests(self, now: float | None = None) -> list[str]:
        """Queue yesterday's digests once the day's digest hour has come (idempotent per channel and day).
        Days missed while the appliance was off (a weekend's maintenance) follow, up to CATCH_UP_DAYS back."""
        hour = self.cfg.notify_digest_hour
        if hour < 0:
            return []
        local = exchange.local(time.time() if now is None else now)
        if local.hour < hour:
            return []
        queued = []
        for back in range(CATCH_UP_DAYS, 0, -1):
            queued += self._digests_of(local.date() - timedelta(days=back))
        return queued

    def _digests_of(self, day: date) -> list[str]:
        lo, hi = tally._bounds(day, day)
        queued = []
        channels = [r[0] for r in self.ledger.query(
            "SELECT DISTINCT channel FROM submissions WHERE created_at >= ? AND created_at < ?", (lo, hi))]
        for ch in channels:
            rcpts = list(dict.fromkeys([*self.cfg.channel_digest.get(ch, []), *self.cfg.notify_digest_to]))
            if not rcpts:
                continue
            qid = f"digest-{ch}-{day.isoformat()}"
            if self.ledger.one("SELECT 1 FROM outbox WHERE queue_id = ?", (qid,)) is not None:
                continue
            rows = self.ledger.query("SELECT * FROM submissions WHERE channel = ? AND created_at >= ? AND created_at < ?"
                                     " ORDER BY created_at", (ch, lo, hi))
            t = tally.compute(self.ledger, self.cfg, ch, day, day)
            items = []
            for r in rows:
                flags = json.loads(r["flags"]) if r["flags"] else []
                items.append({"receipt": r["receipt"], "time": exchange.local(r["created_at"]).strftime("%H:%M"),
                              "source": tally.SOURCE_LABEL.get(r["source"] or "api", ""),
                              "flags": [f.get("ja", "") for f in flags], "status": r["status"]})
            label = self.cfg.channel_label(ch)
            subject, body = self._render("digest.txt", channel=label, day=day.isoformat(), items=items, t=t,
                                         verdicts=[(tally.VERDICT_LABEL[k], t.by_verdict.get(k, 0))
                                                   for k in tally.VERDICT_ORDER],
                                         console=getattr(self.cfg, "mail_console_url", "") or "")
            msg = EmailMessage(policy=email.policy.SMTP)
            self._headers(msg, subject, rcpts, qid, "無害化転送")
            msg.set_content(body, charset="utf-8", cte="base64")
            self.outbox.enqueue(self.sender, rcpts, msg.as_bytes(), "digest", queue_id=qid)
            queued.append(qid)
        return queued


def attach(service: Any, submissions: Any) -> Notifier | None:
    """Start receipt mails and digests for a running core when `[notify] smtp` is set."""
    if not service.cfg.notify_smtp:
        return None
    n = Notifier(service.cfg, service.ledger)
    submissions.on_done.append(n.on_done)
    n.start()
    return n
