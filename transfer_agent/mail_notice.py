"""The notice mail a recipient gets instead of a blocked mail (Japanese first, English below).

It names the sender, subject and date of the blocked mail (the report's `mail` field, decoded by the
engine; the envelope sender when the mail could not be read at all), the reason, and how to ask for
the original (the console's 原本取り出し申請, approved by a superior). Every byte is ours: a new
message, UTF-8 in base64, null envelope sender and Auto-Submitted (RFC 3834) so that nothing replies
to it.
"""
from __future__ import annotations

import unicodedata
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
