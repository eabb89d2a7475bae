"""Outlook .msg (MS-OXMSG): an OLE2 compound file of MAPI property streams, read with olefile
(extract-msg is GPL-3). Sender, recipients, subject, times and bodies come from the properties;
attachments by value become attachments, an embedded message is written as RFC 5322 bytes and
goes through the pipeline as a nested mail; OLE objects and attachments by reference (a path on
someone's file share) are dropped and reported. Every stream's size is checked before it is read."""
from __future__ import annotations

import email.utils
import struct
from datetime import UTC, datetime

import olefile

from ...errors import Encrypted, Malformed
from ...model import Threat
from . import mapi
from .headers import Address, ascii_addr, clean_value, parse_addresses
from .limits import MailBudget
from .message import Attachment, MailDoc, msgids

_PROPS = "__properties_version1.0"


class _Msg:
    def __init__(self, ole, prefix: list[str], budget: MailBudget, header: int) -> None:
        self.ole, self.prefix, self.budget = ole, prefix, budget
        self.fixed: dict[int, tuple[int, bytes]] = {}
        raw = self._stream([_PROPS]) or b""
        for off in range(header, len(raw) - 15, 16):
            tag, _flags = struct.unpack("<II", raw[off:off + 8])
            self.fixed[tag >> 16] = (tag & 0xFFFF, raw[off + 8:off + 16])
        cp = self.long(mapi.INTERNET_CPID) or self.long(mapi.MESSAGE_CODEPAGE)
        self.codec = mapi.codepage_codec(cp)

    def _stream(self, path: list[str]) -> bytes | None:
        full = self.prefix + path
        if not self.ole.exists("/".join(full)):
            return None
        if self.ole.get_type("/".join(full)) != olefile.STGTY_STREAM:  # a damaged directory entry
            raise Malformed(f"the Outlook message's {full[-1]} is not a stream",
                            "Outlookメッセージ（.msg）の構造が壊れているため読み取れません")
        size = self.ole.get_size("/".join(full))
        self.budget.add_decoded(size, "/".join(full))
        with self.ole.openstream(full) as s:
            return s.read(size)

    def long(self, pid: int) -> int | None:
        v = self.fixed.get(pid)
        if v is None or v[0] not in (mapi.PT_LONG, mapi.PT_SHORT, mapi.PT_BOOLEAN):
            return None
        return struct.unpack("<I", v[1][:4])[0]

    def time(self, pid: int) -> float | None:
        v = self.fixed.get(pid)
        return mapi.filetime(v[1]) if v and v[0] == mapi.PT_SYSTIME else None

    def string(self, pid: int) -> str | None:
        raw = self._stream([f"__substg1.0_{pid:04X}001F"])
        if raw is not None:
            return raw.decode("utf-16-le", "replace").split("\x00")[0]
        raw = self._stream([f"__substg1.0_{pid:04X}001E"])
        if raw is not None:
            from .japanese import decode

            return decode(raw.split(b"\x00")[0], self.codec).text
        return None

    def binary(self, pid: int) -> bytes | None:
        return self._stream([f"__substg1.0_{pid:04X}0102"])

    def storages(self, prefix: str) -> list[str]:
        want = len(self.prefix) + 1
        found = set()
        for entry in self.ole.listdir(streams=False, storages=True):
            if len(entry) == want and entry[:-1] == self.prefix and entry[-1].startswith(prefix):
                found.add(entry[-1])
        return sorted(found)


def from_msg(data: bytes, budget: MailBudget) -> MailDoc:
    try:
        ole = olefile.OleFileIO(data)
    except Exception as exc:  # olefile raises plain exceptions on damaged files
        raise Malformed(f"the .msg file cannot be read ({type(exc).__name__})",
                        "Outlookメッセージ（.msg）を読み取れません", threat_id="mail.malformed") from None
    try:
        return _message(ole, [], budget, 32, 1)
    except RecursionError:  # olefile walks the directory recursively: a looping or absurdly deep tree
        raise Malformed("the .msg directory loops or is nested too deeply",
                        "Outlookメッセージ（.msg）の構造が循環しているか深すぎます", threat_id="mail.malformed") from None
    finally:
        ole.close()


def _message(ole, prefix: list[str], budget: MailBudget, header: int, level: int) -> MailDoc:
    budget.check_depth(level, "/".join(prefix) or "message")
    m = _Msg(ole, prefix, budget, header)
    doc = MailDoc()
    cls = (m.string(mapi.MESSAGE_CLASS) or "IPM.Note").strip()
    if cls.upper().startswith("IPM.NOTE.SMIME") and "MULTIPARTSIGNED" not in cls.upper():
        raise Encrypted("S/MIME encrypted Outlook message: its content cannot be inspected",
                        "S/MIMEで暗号化されたメールのため、内容を確認できません。復号した状態での送付を依頼してください",
                        threat_id="mail.smime_encrypted")
    _headers(m, doc)
    body = m.string(mapi.BODY)
    html_raw = m.binary(mapi.BODY_HTML)
    html = None
    if html_raw is not None:
        from .japanese import decode

        html = decode(html_raw, m.codec).text
    else:
        html = m.string(mapi.BODY_HTML)
    doc.html = html
    doc.text = body if body is not None and (body.strip() or html is None) else None
    for i, st in enumerate(m.storages("__attach_version1.0_#"), 1):
        _attachment(m, doc, prefix + [st], i, level)
    if doc.text is None and doc.html is None:
        rtf = m.binary(mapi.RTF_COMPRESSED)
        if rtf:
            try:
                raw = mapi.decompress_rtf(rtf, budget.limits.floor + int(budget.limits.ratio * budget.root_size))
                budget.add_decoded(len(raw), "RTF body")
                doc.attachments.append(Attachment("body.rtf", raw, "application/rtf", ["body.rtf"],
                                                  location="RTF body", origin="msg"))
            except mapi.RtfError as exc:
                doc.notes.append(f"RTF body not readable: {exc}")
        doc.text = ""
    if cls.upper().startswith("IPM.NOTE.SMIME.MULTIPARTSIGNED"):
        _signed(doc, budget)
    return doc


def _headers(m: _Msg, doc: MailDoc) -> None:
    h: dict[str, object] = {}
    transport = m.string(mapi.TRANSPORT_HEADERS) or ""
    name = m.string(mapi.SENT_REP_NAME) or m.string(mapi.SENDER_NAME) or ""
    addr = m.string(mapi.SENT_REP_SMTP) or m.string(mapi.SENDER_SMTP) or ""
    if "@" not in addr:
        addr = m.string(mapi.SENT_REP_EMAIL) or m.string(mapi.SENDER_EMAIL) or ""
    h["from"] = [Address(clean_value(name).value, ascii_addr(addr))] if name or addr else []
    to: list[Address] = []
    cc: list[Address] = []
    for st in m.storages("__recip_version1.0_#"):
        r = _Msg(m.ole, m.prefix + [st], m.budget, 8)
        kind = r.long(mapi.RECIPIENT_TYPE) or 1
        rname = r.string(mapi.DISPLAY_NAME) or ""
        raddr = r.string(mapi.SMTP_ADDRESS) or ""
        if "@" not in raddr:
            raddr = r.string(mapi.EMAIL_ADDRESS) or ""
        a = Address(clean_value(rname).value, ascii_addr(raddr))
        if kind == 1:
            to.append(a)
        elif kind == 2:
            cc.append(a)
    h["to"], h["cc"] = to, cc
    h["reply_to"] = []
    if transport:
        from .headers import decode_words

        for line in transport.replace("\r\n", "\n").split("\n"):
            if line.lower().startswith("reply-to:"):
                h["reply_to"] = parse_addresses(decode_words(line[9:].encode("utf-8", "replace")).value)
                break
    subject = m.string(mapi.SUBJECT)
    if subject is not None:
        t = clean_value(subject)
        if t.injected:
            doc.threats.append(Threat("mail.header_injection", "Subject", "neutralized", "line breaks removed"))
        h["subject"] = t.value
    else:
        h["subject"] = None
    ts = m.time(mapi.CLIENT_SUBMIT_TIME) or m.time(mapi.DELIVERY_TIME)
    h["date"] = h["date_raw"] = None
    if ts is not None:
        try:
            dt = datetime.fromtimestamp(ts, UTC).astimezone()
            h["date"] = h["date_raw"] = email.utils.format_datetime(dt)
            h["date_iso"] = dt.isoformat()
        except (OverflowError, OSError, ValueError):
            pass
    mid = msgids(m.string(mapi.INTERNET_MESSAGE_ID), 1)
    h["message_id"] = mid[0] if mid else None
    h["in_reply_to"] = msgids(m.string(mapi.IN_REPLY_TO), 5)
    h["references"] = msgids(m.string(mapi.REFERENCES))
    doc.headers = h


def _attachment(m: _Msg, doc: MailDoc, path: list[str], i: int, level: int) -> None:
    a = _Msg(m.ole, path, m.budget, 8)
    m.budget.count_part(f"attachment {i}")
    method = a.long(mapi.ATTACH_METHOD) or mapi.ATTACH_BY_VALUE
    name = a.string(mapi.ATTACH_LONG_FILENAME) or a.string(mapi.ATTACH_FILENAME) or a.string(mapi.DISPLAY_NAME) or ""
    names = [n for n in (a.string(mapi.ATTACH_LONG_FILENAME), a.string(mapi.ATTACH_FILENAME)) if n]
    mime = (a.string(mapi.ATTACH_MIME_TAG) or "application/octet-stream").strip().lower()
    cid = (a.string(mapi.ATTACH_CONTENT_ID) or "").strip().strip("<>")
    where = f"attachment {i}"
    if method == mapi.ATTACH_EMBEDDED_MSG:
        sub = path + ["__substg1.0_3701000D"]
        if not m.ole.exists("/".join(sub)):
            return
        inner = _message(m.ole, sub, m.budget, 24, level + 1)
        from .carry import carry

        subject = str(inner.headers.get("subject") or "")
        doc.attachments.append(Attachment(name or (subject[:60] or f"message{i}") + ".eml", carry(inner),
                                          "message/rfc822", names, kind="message", location=where, origin="msg"))
        return
    if method == mapi.ATTACH_OLE:
        doc.threats.append(Threat("mail.attachment_blocked", name or where, "removed", "OLE object attachment"))
        doc.blocked_parts.append((name or where, "an embedded OLE object is never delivered",
                                  "埋め込みOLEオブジェクトは受け付けないため削除しました"))
        return
    if method in (mapi.ATTACH_BY_REFERENCE, mapi.ATTACH_BY_REF_RESOLVE, mapi.ATTACH_BY_REF_ONLY):
        doc.threats.append(Threat("mail.remote_content", name or where, "removed", "attachment by reference (a path)"))
        doc.blocked_parts.append((name or where, "an attachment that only points to a file elsewhere",
                                  "別の場所のファイルを参照するだけの添付のため削除しました"))
        return
    data = a.binary(mapi.ATTACH_DATA)
    if data is None:
        return
    doc.attachments.append(Attachment(name, data, mime, names, cid=cid, inline=bool(cid), location=where,
                                      origin="msg"))


def _signed(doc: MailDoc, budget: MailBudget) -> None:
    """IPM.Note.SMIME.MultipartSigned: the MIME content travels as one attachment (smime.p7m)."""
    from .message import from_eml

    for att in list(doc.attachments):
        if att.mime in ("multipart/signed", "application/x-pkcs7-mime", "application/pkcs7-mime") \
                or att.name.lower() == "smime.p7m":
            inner = from_eml(att.data, budget)
            doc.attachments.remove(att)
            doc.attachments.extend(inner.attachments)
            doc.text = inner.text if inner.text is not None else doc.text
            doc.html = inner.html if inner.html is not None else doc.html
            doc.threats.extend(inner.threats)
            doc.smime = "signed"
            if not any(t.id == "mail.smime_signed" for t in doc.threats):
                doc.threats.append(Threat("mail.smime_signed", "message", "removed", "S/MIME signature removed"))
            return
