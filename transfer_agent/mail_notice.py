"""The notice mail a recipient gets instead of a blocked mail (Japanese first, English below).

It names the sender, subject and date of the blocked mail (the report's `mail` field, decoded by the
engine; the envelope sender when the mail could not be read at all), the reason, and how to ask for
the original (the console's 原本取り出し申請, approved by a superior). Every byte is ours: a new
message, UTF-8 in base64, null envelope sender and Auto-Submitted (RFC 3834) so that nothing replies
to it.
"""
from __future__ import annotations

import base64
import secrets
import unicodedata
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from . import clock, threat_labels

TEXT = {
    "subject": "【配送停止】{subject}",
    "no_subject": "（件名なし）",
    "unknown": "（読み取れませんでした）",
    "intro": ("このメールは、無害化（サニタイズ）の処理で安全に配送できないと判定されたため、配送を停止しました。"
              "元のメールは隔離して保管しています（保管期間 {days} 日）。"),
    "from": "差出人", "to": "宛先", "subject_label": "件名", "date": "日付", "reason": "理由", "found": "検出内容",
    "ids": "受付番号",
    "how": ("元のメールが必要な場合は、職員用コンソール{console}の受信一覧でこのメール（受付番号 {mail_id}、処理番号 {job_id}）を開き、"
            "「原本取り出し申請」から申請してください。上長の承認後に受け取れます。元のメールには危険な内容が含まれている"
            "可能性があります。差出人に確認のうえ、安全な形式（PDF など）での再送を依頼することもできます。"),
    "en": ("This mail was not delivered: it could not be made safe ({reason}). The original is quarantined"
           " for {days} days. To ask for it, open this mail (queue id {mail_id}, job {job_id}) in the staff"
           " console{console_en} and request the original; an approver releases it."),
    "display_name": "無害化システム",
}


def _clean(value: Any, most: int = 300) -> str:
    """Decoded header text as we show it: no control or format characters (bidi), bounded."""
    text = str(value or "")
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))[:most].strip()


def build(*, result: dict[str, Any], envelope_from: str, mail_id: str, job_id: int, queue_id: str, hostname: str,
          notice_from: str, retention_days: int | None, console_url: str = "", rcpts: list[str] | None = None
          ) -> bytes:
    """The notice as CRLF bytes (ASCII: base64 body, RFC 2047 words), addressed `To:` the recipients of the
    blocked mail (canonical ASCII addresses from the envelope), so mail clients and rules see it as theirs."""
    info = result.get("mail") or {}
    sender = ", ".join(_clean(x) for x in info.get("from") or []) or _clean(envelope_from) or TEXT["unknown"]
    to = ", ".join(_clean(x) for x in (info.get("to") or []) + (info.get("cc") or []))[:500] or TEXT["unknown"]
    subject = _clean(info.get("subject"), 200)
    date = _clean(info.get("date"), 100) or TEXT["unknown"]
    reason_ja = _clean(result.get("reason_ja") or result.get("reason"), 500) or TEXT["unknown"]
    reason_en = _clean(result.get("reason_en"), 300) or "blocked"
    days = retention_days if retention_days is not None else "—"
    # What blocked it, in the words of the console's catalogue.
    found = "、".join(dict.fromkeys(threat_labels.label(str(t.get("id", ""))) for t in result.get("threats") or []
                                   if t.get("action") == "blocked"))
    console = f"（{console_url}）" if console_url else ""
    body = "\n".join([
        TEXT["intro"].format(days=days), "",
        f"  {TEXT['from']}: {sender}",
        f"  {TEXT['to']}: {to}",
        f"  {TEXT['subject_label']}: {subject or TEXT['no_subject']}",
        f"  {TEXT['date']}: {date}",
        f"  {TEXT['reason']}: {reason_ja}",
        *([f"  {TEXT['found']}: {found}"] if found else []),
        f"  {TEXT['ids']}: {mail_id}（処理番号 {job_id}）", "",
        TEXT["how"].format(console=console, mail_id=mail_id, job_id=job_id), "",
        "----",
        TEXT["en"].format(reason=reason_en, days=days, mail_id=mail_id, job_id=job_id,
                          console_en=f" ({console_url})" if console_url else ""), "",
    ])
    msg = EmailMessage(policy=SMTP)
    local, _, domain = notice_from.rpartition("@")
    msg["From"] = Address(TEXT["display_name"], local or "postmaster", domain or hostname)
    msg["To"] = ", ".join(rcpts) if rcpts else "undisclosed-recipients:;"
    msg["Subject"] = TEXT["subject"].format(subject=subject or TEXT["no_subject"])
    msg["Date"] = format_datetime(clock.local())
    msg["Message-ID"] = f"<notice.{queue_id}@{hostname}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-CDR-Notice"] = "blocked"
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg.as_bytes()


DSN_TEXT = {
    "subject": "配送できませんでした（Undelivered Mail Returned to Sender）",
    "ja": ("このメールは、{host} で受け付けた後、宛先の組織内のメールサーバーで受け取りを拒否されたため、"
           "次の宛先には配送できませんでした（ほかの宛先には配送しています）。"),
    "en": ("Your message was accepted by {host} but the organisation's internal mail server refused it for the"
           " recipients below, so it was not delivered to them (other recipients got it)."),
    "ja_expired": ("このメールは、{host} で受け付けた後、宛先の組織内のメールサーバーに {hours} 時間"
                   "配送を試みましたが届けられなかったため、次の宛先への配送をあきらめました。"),
    "en_expired": ("Your message was accepted by {host}, but the organisation's internal mail server could not be"
                   " reached for {hours} hours, so delivery to the recipients below was given up."),
}


def _status(reply: str) -> str:
    """The enhanced status code of an SMTP reply ('550 5.1.1 ...' -> '5.1.1'), else 5.0.0."""
    parts = reply.split()
    if len(parts) > 1 and len(parts[1].split(".")) == 3 and all(p.isdigit() for p in parts[1].split(".")):
        return parts[1] if parts[1].startswith("5") else "5.0.0"
    return "5.0.0"


def dsn(*, rejected: dict[str, str], envelope_from: str, headers: bytes, queue_id: str, hostname: str,
        notice_from: str, arrival: float, expired_hours: float | None = None) -> bytes:
    """A delivery status notification (RFC 3464) to the sender of a mail the LGWAN mail server refused for
    good for some recipients (RFC 5321 6.1: after our 250 we owe the sender one). Null envelope sender is
    the caller's. Every byte is ours: the text in base64, the status fields ASCII, and of the mail only the
    header block we wrote when we rebuilt it (text/rfc822-headers), never its content."""
    rcpts = {r: "".join(c if 32 <= ord(c) < 127 else "?" for c in " ".join(reply.split()))[:300]
             for r, reply in rejected.items() if r.isascii() and r.isprintable()}
    ja, en = (DSN_TEXT["ja"], DSN_TEXT["en"]) if expired_hours is None else (DSN_TEXT["ja_expired"], DSN_TEXT["en_expired"])
    text = "\n".join([
        ja.format(host=hostname, hours=f"{expired_hours or 0:g}"), "",
        *[f"  {r}: {reply}" for r, reply in rcpts.items()], "",
        f"  受付番号 / queue id: {queue_id}", "",
        "----", en.format(host=hostname, hours=f"{expired_hours or 0:g}"), "",
    ])
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    local, _, domain = notice_from.rpartition("@")
    sender = f"{Header(TEXT['display_name'], 'utf-8').encode()} <{local or 'postmaster'}@{domain or hostname}>"
    status = [f"Reporting-MTA: dns; {hostname}", f"X-CDR-Queue-ID: {queue_id}",
              f"Arrival-Date: {format_datetime(clock.local(arrival))}", ""]
    for r, reply in rcpts.items():
        status += [f"Final-Recipient: rfc822; {r}", "Action: failed", f"Status: {_status(reply)}",
                   f"Remote-MTA: dns; {hostname}", f"Diagnostic-Code: smtp; {reply}", ""]
    head = headers.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\ufffd", "?")
    lines = [
        f"From: {sender}",
        f"To: <{envelope_from}>",
        f"Subject: {Header(DSN_TEXT['subject'], 'utf-8').encode()}",
        f"Date: {format_datetime(clock.local())}",
        f"Message-ID: <dsn.{queue_id}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        *[base64.b64encode(text.encode("utf-8")).decode("ascii")[i:i + 76]
          for i in range(0, len(base64.b64encode(text.encode("utf-8"))), 76)],
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status,
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        head,
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")
