"""TNEF (winmail.dat, application/ms-tnef, MS-OXTNEF): Outlook's wrapper for rich-text mail. Its
attachments come out as ordinary attachments (each judged by the pipeline); the RTF body becomes a
body.rtf attachment that the rtf family rebuilds, used only when the mail has no other body.
A small reader of our own: the format is a flat list of attributes, read with bounds checks."""
from __future__ import annotations

import struct

from ...errors import Malformed
from ...model import Threat
from . import mapi
from .limits import MailBudget
from .message import Attachment, MailDoc

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 1, 2
ATT_BODY = 0x0002800C
ATT_SUBJECT = 0x00018004
ATT_MESSAGE_CLASS = 0x00078008
ATT_ATTACH_RENDDATA = 0x00069002
ATT_ATTACH_TITLE = 0x00018010
ATT_ATTACH_DATA = 0x0006800F
ATT_ATTACHMENT = 0x00069005
ATT_MSG_PROPS = 0x00069003
ATT_OEM_CODEPAGE = 0x00069007
MAX_ATTRIBUTES = 10_000
MAX_PROPS = 5_000


def props(data: bytes, where: str) -> dict[int, tuple[int, object]]:
    """A MAPI property list (MS-OXTNEF 2.1.3.5): {property id: (type, value)}; named properties skipped."""
    out: dict[int, tuple[int, object]] = {}
    pos = 0
    n = len(data)

    def take(k: int) -> bytes:
        nonlocal pos
        if pos + k > n:
            raise Malformed(f"TNEF property list cut short in {where}", "TNEFのプロパティが途中で切れています",
                            threat_id="mail.malformed")
        b = data[pos:pos + k]
        pos += k
        return b

    (count,) = struct.unpack("<I", take(4))
    if count > MAX_PROPS:
        raise Malformed("too many TNEF properties", "TNEFのプロパティが多すぎます", threat_id="mail.malformed")
    for _ in range(count):
        ptype, pid = struct.unpack("<HH", take(4))
        if pid >= 0x8000:  # named property: GUID, kind, id or name
            take(16)
            (kind,) = struct.unpack("<I", take(4))
            if kind == 0:
                take(4)
            else:
                (ln,) = struct.unpack("<I", take(4))
                take(ln + (-ln % 4))
        base = ptype & ~mapi.MV_FLAG
        multi = bool(ptype & mapi.MV_FLAG) or base in mapi.VARIABLE
        values: list[object] = []
        if multi:
            (m,) = struct.unpack("<I", take(4))
            if m > 100_000:
                raise Malformed("TNEF value count out of range", "TNEFの値の数が不正です", threat_id="mail.malformed")
        else:
            m = 1
        for _ in range(m):
            if base in mapi.VARIABLE:
                (ln,) = struct.unpack("<I", take(4))
                values.append(take(ln))
                take(-ln % 4)
            else:
                size = mapi.FIXED_SIZE.get(base)
                if size is None:
                    raise Malformed(f"unknown TNEF property type 0x{base:04x}", "TNEFのプロパティ型が不明です",
                                    threat_id="mail.malformed")
                values.append(take(size))
                take(-size % 4)
        if pid < 0x8000:
            out[pid] = (ptype, values[0] if values and not ptype & mapi.MV_FLAG else values)
    return out


def _string(value: object, ptype: int, codec: str) -> str:
    if not isinstance(value, bytes):
        return ""
    if ptype & ~mapi.MV_FLAG == mapi.PT_UNICODE:
        return value.decode("utf-16-le", "replace").split("\x00")[0]
    from .japanese import decode

    return decode(value.split(b"\x00")[0], codec).text


def read_tnef(data: bytes, doc: MailDoc, where: str, budget: MailBudget, level: int = 1) -> None:
    """Add the attachments (and, lacking a body, the body) of a TNEF stream to `doc`."""
    budget.check_depth(level, where)
    if len(data) < 6 or struct.unpack("<I", data[:4])[0] != SIGNATURE:
        raise Malformed("winmail.dat without a TNEF signature", "winmail.dat の形式が不正です", threat_id="mail.malformed")
    pos, n = 6, len(data)
    codec = "cp932"
    atts: list[dict] = []
    body_text: str | None = None
    rtf: bytes | None = None
    html: bytes | None = None
    count = 0
    while pos < n:
        count += 1
        if count > MAX_ATTRIBUTES or pos + 9 > n:
            break
        level = data[pos]
        attr_id, length = struct.unpack("<II", data[pos + 1:pos + 9])
        start = pos + 9
        end = start + length
        if end + 2 > n:
            raise Malformed("a TNEF attribute runs past the end", "TNEFの属性が途中で切れています",
                            threat_id="mail.malformed")
        value = data[start:end]
        pos = end + 2  # checksum: readers ignore it, so do we
        budget.add_decoded(len(value), where)
        if attr_id == ATT_OEM_CODEPAGE and len(value) >= 4:
            codec = mapi.codepage_codec(struct.unpack("<I", value[:4])[0])
        elif level == LVL_ATTACHMENT and attr_id == ATT_ATTACH_RENDDATA:
            atts.append({})
        elif level == LVL_ATTACHMENT and atts and attr_id == ATT_ATTACH_TITLE:
            atts[-1]["title"] = value.split(b"\x00")[0]
        elif level == LVL_ATTACHMENT and atts and attr_id == ATT_ATTACH_DATA:
            atts[-1]["data"] = value
        elif level == LVL_ATTACHMENT and atts and attr_id == ATT_ATTACHMENT:
            atts[-1]["props"] = props(value, where)
        elif level == LVL_MESSAGE and attr_id == ATT_SUBJECT and not doc.headers.get("subject"):
            from .japanese import decode

            doc.headers["subject"] = decode(value.split(b"\x00")[0], codec).text
        elif level == LVL_MESSAGE and attr_id == ATT_BODY:
            from .japanese import decode

            body_text = decode(value.split(b"\x00")[0], codec).text
        elif level == LVL_MESSAGE and attr_id == ATT_MSG_PROPS:
            p = props(value, where)
            if mapi.RTF_COMPRESSED in p and isinstance(p[mapi.RTF_COMPRESSED][1], bytes):
                rtf = p[mapi.RTF_COMPRESSED][1]  # type: ignore[assignment]
            if mapi.BODY_HTML in p and isinstance(p[mapi.BODY_HTML][1], bytes):
                html = p[mapi.BODY_HTML][1]  # type: ignore[assignment]
            if mapi.BODY in p and body_text is None:
                body_text = _string(p[mapi.BODY][1], p[mapi.BODY][0], codec)
    doc.threats.append(Threat("mail.tnef", where, "converted",
                              f"Outlook TNEF: {len(atts)} attachment(s) taken out as ordinary attachments"))
    for i, a in enumerate(atts, 1):
        pr = a.get("props", {})
        name = ""
        for pid in (mapi.ATTACH_LONG_FILENAME, mapi.ATTACH_FILENAME, mapi.DISPLAY_NAME):
            if pid in pr:
                name = _string(pr[pid][1], pr[pid][0], codec)
                if name:
                    break
        if not name and a.get("title"):
            from .japanese import decode

            name = decode(a["title"], codec).text
        mime = _string(pr[mapi.ATTACH_MIME_TAG][1], pr[mapi.ATTACH_MIME_TAG][0], "ascii") \
            if mapi.ATTACH_MIME_TAG in pr else "application/octet-stream"
        content = a.get("data")
        obj = pr.get(mapi.ATTACH_DATA)
        if obj is not None and obj[0] == mapi.PT_OBJECT and isinstance(obj[1], bytes) \
                and obj[1][:16] == mapi.IID_IMESSAGE:
            inner = MailDoc()
            read_tnef(obj[1][16:], inner, f"{where}/{name or i}", budget, level + 1)
            from .carry import carry

            doc.attachments.append(Attachment(name or f"message{i}.eml", carry(inner), "message/rfc822",
                                              [name] if name else [], kind="message",
                                              location=f"{where} #{i}", origin="tnef"))
            continue
        if content is None:
            continue
        doc.attachments.append(Attachment(name, content, mime or "application/octet-stream", [name] if name else [],
                                          location=f"{where} #{i}", origin="tnef"))
    if doc.text is None and doc.html is None and not any(a.name == "body.rtf" for a in doc.attachments):
        if html is not None:
            from .japanese import decode

            doc.html = decode(html, "utf-8" if codec == "utf-8" else codec).text
        elif body_text:
            doc.text = body_text
        if rtf is not None:
            try:
                raw = mapi.decompress_rtf(rtf, budget.limits.floor + int(budget.limits.ratio * budget.root_size))
                budget.add_decoded(len(raw), where)
                doc.attachments.append(Attachment("body.rtf", raw, "application/rtf", ["body.rtf"],
                                                  location=f"{where} RTF body", origin="tnef"))
            except mapi.RtfError as exc:
                doc.notes.append(f"RTF body not readable: {exc}")
