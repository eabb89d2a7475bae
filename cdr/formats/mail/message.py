"""What a mail holds, read from RFC 5322/MIME bytes into a neutral form (`MailDoc`) that the
builder turns into a new message. .msg and TNEF readers fill the same form."""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field

from ...errors import Blocked, Encrypted
from ...model import Threat
from .headers import Address, Field, Text, decode_words, parse_addresses, rule_name
from .japanese import decode
from .limits import MailBudget
from .mime import DecodeProblem, Entity, body_bytes, parse
from .uuencode import find_blocks

SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature")
SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


@dataclass
class Attachment:
    name: str  # as the sender named it (decoded), "" when unnamed
    data: bytes
    mime: str = "application/octet-stream"
    candidates: list[str] = field(default_factory=list)  # every name the part gives itself
    cid: str = ""  # Content-ID without <>
    inline: bool = False
    kind: str = "file"  # file | message (an RFC 5322 message to process as a nested mail)
    location: str = ""
    origin: str = ""  # "tnef", "uuencode", "msg" when it came out of a container


@dataclass
class MailDoc:
    headers: dict[str, object] = field(default_factory=dict)  # decoded: from/to/cc/reply_to/subject/...
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    threats: list[Threat] = field(default_factory=list)
    smime: str = ""  # "", "signed", "pgp-signed"
    defects: int = 0
    injected: bool = False
    received: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocked_parts: list[tuple[str, str, str]] = field(default_factory=list)  # (what, en, ja) dropped
    fields: list[Field] = field(default_factory=list)  # the original top-level header (authentication)

    def add_defects(self, n: int, where: str) -> None:
        if n:
            self.defects += n
            self.threats.append(Threat("mail.decode_defect", where, "reported",
                                       f"{n} character(s) could not be decoded (shown as U+FFFD)"))


# ------------------------------------------------------------------ header values

def _text(doc: MailDoc, raw: bytes | None, where: str) -> str | None:
    if raw is None:
        return None
    t: Text = decode_words(raw)
    doc.add_defects(t.defects, where)
    if t.injected:
        doc.injected = True
        doc.threats.append(Threat("mail.header_injection", where, "neutralized",
                                  "CR, LF or NUL inside a header value removed"))
    return t.value


# Markup that the text family would take for HTML (detect.py): a body declared text/plain that holds it is
# sanitised as the HTML body, since a reader that sniffs content would render it.
_HTML_SNIFF = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<script[\s>]|<iframe[\s>]")
_MSGID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")


def msgids(value: str | None, most: int = 50) -> list[str]:
    return _MSGID.findall(value or "")[-most:]


def read_headers(doc: MailDoc, root: Entity) -> None:
    h: dict[str, object] = {}
    for key in ("from", "to", "cc", "reply-to"):
        values = [_text(doc, f.raw, key) or "" for f in root.header(key)]
        addrs: list[Address] = []
        for v in values:
            addrs.extend(parse_addresses(v))
        h[key.replace("-", "_")] = addrs
    h["subject"] = _text(doc, root.first("subject"), "Subject")
    date = _text(doc, root.first("date"), "Date")
    h["date_raw"] = date
    h["date"] = None
    if date:
        try:
            dt = email.utils.parsedate_to_datetime(date)
            h["date"] = email.utils.format_datetime(dt)
            h["date_iso"] = dt.isoformat()
        except (TypeError, ValueError, IndexError, OverflowError):
            doc.notes.append(f"unreadable Date {date[:80]!r} not carried over")
    mid = msgids(_text(doc, root.first("message-id"), "Message-ID"), 1)
    h["message_id"] = mid[0] if mid else None
    h["in_reply_to"] = msgids(_text(doc, root.first("in-reply-to"), "In-Reply-To"), 5)
    h["references"] = msgids(_text(doc, root.first("references"), "References"))
    doc.headers = h
    for f in root.header("received")[:30]:
        doc.received.append(summarise_received(f.raw))


def summarise_received(raw: bytes) -> str:
    """from X by Y with Z; date: what traces the route, ASCII, short."""
    text = re.sub(r"[^\x20-\x7e]", "?", raw.decode("ascii", "replace"))
    text = re.sub(r"\s+", " ", text)
    body, _, date = text.rpartition(";")
    if not _:
        body, date = text, ""
    bits = []
    for kw in ("from", "by", "with", "id", "for"):
        m = re.search(rf"(?i)(?:^|\s){kw}\s+(\S+)", body)
        if m:
            bits.append(f"{kw} {m.group(1)[:100]}")
    ip = re.search(r"\[(?:IPv6:)?[0-9a-fA-F:.]+\]", body)
    if ip and bits and bits[0].startswith("from"):
        bits[0] += f" ({ip.group(0)})"
    out = " ".join(bits)
    if date.strip():
        out += "; " + date.strip()[:60]
    return out[:400]


# ------------------------------------------------------------------ the tree

def _is_attachment(e: Entity) -> bool:
    disp = e.disposition.value if e.disposition else ""
    return disp == "attachment" or bool(e.filename_candidates())


def _ancestors(root: Entity) -> dict[int, Entity]:
    parent: dict[int, Entity] = {}
    for e in root.walk():
        for c in e.children:
            parent[id(c)] = e
    return parent


@dataclass
class _Piece:
    plain: str | None = None
    html: str | None = None


def from_eml(buf: bytes, budget: MailBudget, unwrapped: int = 0) -> MailDoc:
    """Read an RFC 5322 message. Raises Blocked/Encrypted when the mail as a whole cannot be delivered."""
    doc = MailDoc()
    root = parse(buf, budget)
    if root.dropped:
        why = "; ".join(p.en for p in root.problems)
        why_ja = "、".join(p.ja for p in root.problems)
        raise Blocked(f"the mail's structure is ambiguous (readers would show it differently): {why}",
                      f"メールの構造があいまいなため（読むソフトにより内容が変わるため）配送を停止しました: {why_ja}",
                      threat_id="mail.ambiguous_mime")
    read_headers(doc, root)
    doc.fields = root.fields
    if root.mime in SMIME_TYPES:
        kind = (root.ctype.params.get("smime-type") or "").lower()
        name = root.filename().lower()
        if kind in ("enveloped-data", "authenveloped-data") or (not kind and "smime.p7m" in name):
            raise Encrypted("S/MIME encrypted mail: its content cannot be inspected",
                            "S/MIMEで暗号化されたメールのため、内容を確認できません。復号した状態での送付を依頼してください",
                            threat_id="mail.smime_encrypted")
        if kind == "signed-data" or name.endswith(".p7m"):
            if unwrapped >= 2:
                raise Blocked("S/MIME signatures wrapped in signatures", "S/MIME署名が何重にも重なっています",
                              threat_id="mail.smime_signed")
            inner = _unwrap_opaque(body_bytes(buf, root, budget))
            doc.smime = "signed"
            doc.threats.append(Threat("mail.smime_signed", "message", "removed",
                                      "S/MIME signature (opaque): content delivered unsigned"))
            nested = _rewrap(buf[root.start:root.body_start], inner)
            sub = from_eml(nested, budget, unwrapped + 1)
            sub.threats[:0] = doc.threats
            sub.smime = "signed"
            return sub
    if root.mime == "multipart/encrypted":
        raise Encrypted("encrypted mail (PGP/MIME or S/MIME): its content cannot be inspected",
                        "暗号化されたメールのため、内容を確認できません。復号した状態での送付を依頼してください",
                        threat_id="mail.smime_encrypted")
    _collect(buf, root, doc, budget)
    return doc


def _unwrap_opaque(der: bytes) -> bytes:
    """The content of an opaque S/MIME signature (CMS SignedData, RFC 5652), without checking it."""
    from .smime import signed_content

    content = signed_content(der)
    if content is None:
        raise Blocked("an S/MIME signed message whose content cannot be read",
                      "S/MIME署名付きメールの本文を読み取れませんでした", threat_id="mail.smime_signed")
    return content


def _rewrap(header_block: bytes, inner: bytes) -> bytes:
    """The outer header (without its Content-* fields) on the signed inner entity."""
    lines = re.split(rb"\r?\n(?![ \t])", header_block.rstrip(b"\r\n"))
    kept = [ln for ln in lines if ln and not re.match(rb"(?i)(content-|mime-version)", ln)]
    return b"\r\n".join(kept) + b"\r\n" + inner.lstrip(b"\r\n")


def _collect(buf: bytes, root: Entity, doc: MailDoc, budget: MailBudget) -> None:
    parent = _ancestors(root)
    pieces: list[_Piece] = []
    alt_piece: dict[int, _Piece] = {}
    skip: set[int] = set()
    n_unnamed = 0
    tnefs: list[tuple[bytes, str]] = []
    for e in root.walk():
        if id(e) in skip:
            skip.update(id(c) for c in e.children)
            continue
        for p in e.problems:
            if p.scope == "note":
                doc.threats.append(Threat("mail.ambiguous_mime", p.where, "removed", p.en))
        if e.dropped:
            doc.threats.append(Threat("mail.ambiguous_mime", e.location, "removed",
                                      "; ".join(p.en for p in e.problems)))
            doc.blocked_parts.append((e.location, "; ".join(p.en for p in e.problems),
                                      "、".join(p.ja for p in e.problems)))
            skip.update(id(c) for c in e.children)
            continue
        if e.is_multipart:
            if e.mime == "multipart/encrypted":
                doc.threats.append(Threat("mail.smime_encrypted", e.location, "removed", "encrypted part"))
                doc.blocked_parts.append((e.location, "an encrypted part cannot be inspected",
                                          "暗号化された部分は確認できないため削除しました"))
                skip.update(id(c) for c in e.children)
            elif e.mime == "multipart/signed":
                proto = (e.ctype.params.get("protocol") or "").lower()
                doc.smime = "pgp-signed" if "pgp" in proto else "signed"
                doc.threats.append(Threat("mail.smime_signed", e.location, "removed",
                                          f"signature ({proto or 'unknown protocol'}) removed: content delivered unsigned"))
                for c in e.children[1:]:
                    skip.add(id(c))
                    skip.update(id(x) for x in c.walk())
            continue
        mime = e.mime
        if mime in SIGNATURE_TYPES:
            continue
        try:
            data = body_bytes(buf, e, budget)
        except (DecodeProblem, ValueError) as exc:
            doc.threats.append(Threat("mail.ambiguous_mime", e.location, "removed", str(exc)))
            doc.blocked_parts.append((e.filename() or e.location, str(exc), "内容を一意に復号できないため削除しました"))
            continue
        name = e.filename()
        cands = e.filename_candidates()
        doc.add_defects(e.ctype.defects + (e.disposition.defects if e.disposition else 0), f"{e.location} parameters")
        up = parent.get(id(e))
        in_alt = up is not None and up.mime == "multipart/alternative"
        if mime in TNEF_TYPES or rule_name(name).lower() == "winmail.dat":
            tnefs.append((data, e.location))  # after the body is known: its RTF body is only a fallback
            continue
        if mime in SMIME_TYPES:
            kind = (e.ctype.params.get("smime-type") or "").lower()
            if kind in ("enveloped-data", "authenveloped-data"):
                doc.threats.append(Threat("mail.smime_encrypted", e.location, "removed", "encrypted S/MIME part"))
                doc.blocked_parts.append((name or e.location, "an encrypted S/MIME part cannot be inspected",
                                          "S/MIMEで暗号化された部分は確認できないため削除しました"))
                continue
        if mime in ("text/plain", "text/html") and not _is_attachment(e):
            dec = decode(data, e.ctype.params.get("charset"))
            doc.add_defects(dec.defects, f"{e.location} body")
            text = dec.text
            if mime == "text/plain":
                text = _take_uuencoded(data, dec.text, e, doc)
                if _HTML_SNIFF.search(text[:4096].lower()):
                    mime = "text/html"  # markup a lenient reader would render: sanitised as the HTML body
            key = id(up) if in_alt and up is not None else id(e)
            piece = alt_piece.get(key)
            if piece is None:
                piece = _Piece()
                alt_piece[key] = piece
                pieces.append(piece)
            if mime == "text/plain" and piece.plain is None:
                piece.plain = text
            elif mime == "text/html" and piece.html is None:
                piece.html = text
            else:  # a second body of the same kind in one alternative: shown by nobody, kept as a file
                doc.attachments.append(Attachment(f"body{len(doc.attachments) + 1}.txt", data, mime,
                                                  location=e.location))
            continue
        if mime in ("message/rfc822", "message/global"):
            n_unnamed += 1
            doc.attachments.append(Attachment(name or "", data, mime, cands, kind="message", location=e.location))
            continue
        if not name:
            n_unnamed += 1
        cid = (e.first("content-id") or b"").decode("ascii", "replace").strip().strip("<>")
        doc.attachments.append(Attachment(name, data, mime, cands, cid=cid,
                                          inline=bool(cid) and not _is_attachment(e) or (
                                              bool(cid) and up is not None and up.mime == "multipart/related"),
                                          location=e.location))
    for p in pieces:  # an empty text alternative next to real HTML says nothing: the HTML is the body
        if p.plain is not None and not p.plain.strip() and p.html and p.html.strip():
            p.plain = None
    texts = [p.plain for p in pieces]
    htmls = [p.html for p in pieces]
    if any(h is not None for h in htmls):
        doc.html = "\n".join(h if h is not None else f"<pre>{_esc(p.plain or '')}</pre>" for p, h in zip(pieces, htmls, strict=True))
    if all(t is not None for t in texts) and texts:
        doc.text = "\n".join(t for t in texts if t is not None)
    elif not pieces and not tnefs:
        doc.text = ""
    for data, where in tnefs:
        from .tnef import read_tnef

        read_tnef(data, doc, where, budget)
    if doc.text is None and doc.html is None:
        doc.text = ""


def _esc(s: str) -> str:
    import html

    return html.escape(s)


def _take_uuencoded(raw: bytes, text: str, e: Entity, doc: MailDoc) -> str:
    """Cut uuencoded files out of a plain body; each becomes an attachment the pipeline judges."""
    if b"begin " not in raw and b"begin-base64" not in raw:
        return text
    blocks = find_blocks(raw)
    if not blocks:
        return text
    charset = e.ctype.params.get("charset")
    out: list[str] = []
    pos = 0
    for start, end, name, content in blocks:
        out.append(decode(raw[pos:start], charset).text)
        pos = end
        if content is None:  # Outlook might still read it as a file: it goes, reported
            out.append(f"[読み取れない埋め込みファイル「{name}」を削除しました / undecodable uuencoded {name} removed]")
            doc.threats.append(Threat("mail.uuencode", f"{e.location}: {name}", "removed",
                                      "uuencoded block we cannot decode removed from the body"))
            continue
        out.append(f"[添付ファイル「{name}」を本文から分離しました / uuencoded file {name} taken out]")
        doc.attachments.append(Attachment(name, content, "application/octet-stream", [name],
                                          location=f"{e.location} uuencoded", origin="uuencode"))
        doc.threats.append(Threat("mail.uuencode", f"{e.location}: {name}", "converted",
                                  "uuencoded file in the body taken out as an attachment"))
    out.append(decode(raw[pos:], charset).text)
    return "".join(out)
