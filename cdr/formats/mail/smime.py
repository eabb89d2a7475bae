"""Just enough BER/DER to take the content out of an opaque S/MIME signature (CMS SignedData,
RFC 5652): the signature itself is not checked (rebuilding breaks it anyway); its presence is
reported. Lengths are bounded by the buffer; nothing recurses deeper than the structure we walk."""
from __future__ import annotations

_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2


class BerError(ValueError):
    pass


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """(tag, start of content, end of content or -1 when indefinite, position after) of one element."""
    if pos + 2 > end:
        raise BerError("truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("high tag numbers are not used here")
    n = buf[pos + 1]
    pos += 2
    if n == 0x80:
        return tag, pos, -1, -1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise BerError("bad length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise BerError("length past the end")
    return tag, pos, pos + n, pos + n


def _skip(buf: bytes, pos: int, end: int) -> int:
    """Position after the element at `pos` (indefinite lengths walked with a counter, not recursion)."""
    depth = 0
    while True:
        if depth and buf[pos:pos + 2] == b"\x00\x00":
            depth -= 1
            pos += 2
            if depth == 0:
                return pos
            continue
        tag, start, cend, after = _tlv(buf, pos, end)
        if cend == -1:
            if not tag & 0x20:
                raise BerError("indefinite length on a primitive")
            depth += 1
            pos = start
        else:
            pos = after
            if depth == 0:
                return pos
        if pos >= end:
            raise BerError("unterminated")


def _children(buf: bytes, start: int, cend: int, end: int) -> list[int]:
    out = []
    pos = start
    stop = cend if cend != -1 else end
    while pos < stop:
        if cend == -1 and buf[pos:pos + 2] == b"\x00\x00":
            break
        out.append(pos)
        pos = _skip(buf, pos, stop)
        if len(out) > 64:
            raise BerError("too many elements")
    return out


def _octets(buf: bytes, pos: int, end: int) -> bytes:
    """An OCTET STRING, primitive or constructed (chunks), flattened."""
    out = bytearray()
    stack = [pos]
    while stack:
        p = stack.pop()
        tag, start, cend, _ = _tlv(buf, p, end)
        if tag == 0x04:
            out += buf[start:cend]
        elif tag == 0x24:
            stack.extend(reversed(_children(buf, start, cend, end)))
        else:
            raise BerError("not an octet string")
    return bytes(out)


def signed_content(der: bytes) -> bytes | None:
    """The encapsulated content of a CMS SignedData, or None when it is not one we can read."""
    try:
        end = len(der)
        tag, start, cend, _ = _tlv(der, 0, end)
        ci = _children(der, start, cend, end)
        if tag != 0x30 or len(ci) < 2:
            return None
        t, s, e, _ = _tlv(der, ci[0], end)
        if t != 0x06 or der[s:e] != _SIGNED_DATA:
            return None
        t, s, e, _ = _tlv(der, ci[1], end)  # [0] EXPLICIT
        inner = _children(der, s, e, end)
        t, s, e, _ = _tlv(der, inner[0], end)  # SignedData SEQUENCE
        sd = _children(der, s, e, end)
        t, s, e, _ = _tlv(der, sd[2], end)  # encapContentInfo
        eci = _children(der, s, e, end)
        if len(eci) < 2:
            return None  # detached: the content is elsewhere
        t, s, e, _ = _tlv(der, eci[1], end)  # [0] EXPLICIT eContent
        return _octets(der, _children(der, s, e, end)[0], end)
    except (BerError, IndexError):
        return None
