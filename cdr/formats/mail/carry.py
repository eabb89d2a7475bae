"""A message read from a container (.msg embedded in .msg, a message inside TNEF) written as plain
RFC 5322 bytes, unchanged in content, so that it can go through the whole pipeline as a nested mail
like any message/rfc822 part. Nothing here is delivered: the nested run rebuilds it."""
from __future__ import annotations

from . import builder
from .headers import address_field, unstructured
from .message import MailDoc


def carry(doc: MailDoc) -> bytes:
    h = doc.headers
    lines: list[str] = []
    for key, name in (("from", "From"), ("reply_to", "Reply-To"), ("to", "To"), ("cc", "Cc")):
        line = address_field(name, h.get(key) or [])  # type: ignore[arg-type]
        if line:
            lines.append(line)
    lines.append(unstructured("Subject", str(h.get("subject") or "")))
    if h.get("date"):
        lines.append(f"Date: {h['date']}")
    if h.get("message_id"):
        lines.append(f"Message-ID: {h['message_id']}")
    parts = []
    for a in doc.attachments:
        if a.kind == "message":
            parts.append(builder.OutPart("message/rfc822", a.data, filename=a.name, message=True))
        else:
            parts.append(builder.OutPart(a.mime or "application/octet-stream", a.data, filename=a.name,
                                         cid=a.cid, disposition="inline" if a.inline else "attachment"))
    return builder.message(lines, doc.text if doc.text is not None or doc.html is None else None, doc.html, [], parts)
