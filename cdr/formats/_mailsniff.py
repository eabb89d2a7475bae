"""Is this text a mail? The header check detection runs on every text file (`cdr.detect`).

It lives outside the mail package: importing `cdr.formats.mail` brings in the whole mail handler
(its HTML and authentication stacks), which a CSV or a plain text does not need.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

_MAIL_FIELDS = {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version", b"received",
                b"return-path", b"content-type", b"reply-to", b"sender", b"delivered-to", b"x-mailer",
                b"dkim-signature", b"authentication-results", b"references", b"in-reply-to", b"user-agent",
                b"content-transfer-encoding", b"x-originating-ip", b"thread-topic", b"thread-index",
                b"arc-seal", b"received-spf", b"importance", b"x-priority", b"list-unsubscribe", b"x-cdr-sanitized"}
_STRONG = {b"from", b"date", b"message-id", b"received", b"mime-version", b"return-path", b"subject"}


def _lines(data: bytes) -> Iterator[bytes]:
    """The pieces of re.split(rb"\\r?\\n", data), one at a time: most texts fail sniff() on their first
    line, and splitting all 64 KB of a CSV first cost a millisecond."""
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            yield data[pos:]
            return
        yield data[pos:nl - 1] if nl > pos and data[nl - 1] == 13 else data[pos:nl]
        pos = nl + 1


def sniff(head: bytes) -> str | None:
    """Why `head` is an RFC 5322 message, or None: a header block of fields, at least two of them fields
    that only mail has (From, Date, Message-ID, Received, MIME-Version, ...), or fields that say how the
    body is encoded. The block ends at the first line that is not a field, as in mail readers. A header
    of mail fields too few to decide whose body begins with a MIME header is a message too (a forwarded
    mail whose own header lost its fields: a lenient reader reads the body as the mail)."""
    data = head[:65536]
    if data.startswith(b"From ") and b"\n" in data[:1000]:
        data = data[data.index(b"\n") + 1:]
    block = _header(data)
    if block is None:
        return None
    names, fields, blank = block
    known = {n for n in names if n in _MAIL_FIELDS}
    why = _why(known, fields)
    if why is None and known & _STRONG and blank:
        end = _BLANK_LINE.search(data)  # the first empty line, where the header block ended
        if end is not None and mime_header_at(data[end.end():]):
            why = "a MIME message after a header of mail fields: " + ", ".join(sorted(n.decode() for n in known)[:6])
    return why


def mime_header_at(body: bytes) -> bool:
    """Whether `body` (after empty lines) begins with the header of a mail or MIME entity that says how
    its own body is encoded (Content-Type or Content-Transfer-Encoding): a text that a lenient reader
    would take for the message itself. A forward quoted inline (From/Date/Subject only) is not one."""
    block = _header(body[:65536].lstrip(b"\r\n"))
    if block is None:
        return False
    known = {n for n in block[0] if n in _MAIL_FIELDS}
    return bool(known & _ENCODING_FIELDS) and _why(known, block[1]) is not None


def _header(data: bytes) -> tuple[list[bytes], list[bytes], bool] | None:
    """The header block at the start of `data`: field names (lower case), the field lines, and whether an
    empty line ended it; None where it is not one."""
    names: list[bytes] = []
    fields: list[bytes] = []
    for line in _lines(data):
        if line == b"":
            return names, fields, True
        if line[:1] in (b" ", b"\t") and names:
            continue
        m = _NAME_RE.match(line)
        if not m:
            if names:
                break  # a damaged separator: mail readers end the header here and read the rest as body
            return None
        names.append(m.group(1).lower())
        fields.append(line)
    return (names, fields, False) if names else None  # ended by a line not a field, or by the probe's end


def _why(known: set[bytes], fields: list[bytes]) -> str | None:
    """The rules on the known mail fields of one header block (see sniff)."""
    strong = known & _STRONG
    if len(strong) >= 2 or (strong and len(known) >= 3):
        return "RFC 5322 header fields: " + ", ".join(sorted(n.decode() for n in known)[:6])
    # A header block that says how its body is encoded is a MIME entity: a mail program decodes it (a
    # damaged mail whose other fields were lost still opens as one), so it is rebuilt as a mail, never
    # delivered as text with its encoded HTML or archive inside.
    if known & _MIME_FIELDS and (strong or any(_MIME_VALUE.match(f) for f in fields)):
        return "MIME entity header fields: " + ", ".join(sorted(n.decode() for n in known)[:6])
    return None


_BLANK_LINE = re.compile(rb"(?:^|\n)\r?\n")
_MIME_FIELDS = {b"content-type", b"content-transfer-encoding", b"mime-version"}
_ENCODING_FIELDS = {b"content-type", b"content-transfer-encoding"}
_MIME_VALUE = re.compile(rb"(?im)^(?:content-transfer-encoding[ \t]*:[ \t]*"
                         rb"(?:base64|quoted-printable|7bit|8bit|binary)|content-type[ \t]*:[ \t]*(?:text|multipart|message|application|image|audio|video)/"
                         rb"|mime-version[ \t]*:[ \t]*1\.0)")


_NAME_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
