"""uuencoded files inside a text body (`begin 644 name` ... `end`): old mailers still send them, and
Outlook shows them as attachments. Each block is cut out of the text and becomes an attachment
that the whole pipeline judges."""
from __future__ import annotations

import binascii
import re

_BEGIN = re.compile(rb"(?m)^begin(?:-base64)?[ \t]+([0-7]{3,4})[ \t]+([^\r\n]+?)[ \t]*\r?$")
_END = re.compile(rb"(?m)^end[ \t]*\r?$")
MAX_LINE = 62  # "M" + 60 characters + slack


def _lines(raw: bytes) -> list[bytes]:
    return [ln.rstrip(b"\r") for ln in raw.split(b"\n")]


def _decode_lines(lines: list[bytes]) -> bytes | None:
    out = bytearray()
    for ln in lines:
        if not ln or ln in (b"`", b" "):
            continue
        if len(ln) > MAX_LINE + 20:
            return None
        try:
            out += binascii.a2b_uu(ln)
        except binascii.Error:
            # Some encoders write a few characters too many; the length byte rules.
            n = (ln[0] - 32) & 63
            try:
                out += binascii.a2b_uu(ln[: 1 + (n + 2) // 3 * 4])
            except binascii.Error:
                return None
    return bytes(out)


def find_blocks(data: bytes) -> list[tuple[int, int, str, bytes | None]]:
    """(start, end, name, content) of every uuencoded block in `data`. content is None for a block we
    cannot decode (or without its `end` line): another reader might, so the caller removes it."""
    from .japanese import decode_8bit

    found: list[tuple[int, int, str, bytes | None]] = []
    pos = 0
    while True:
        m = _BEGIN.search(data, pos)
        if not m:
            return found
        name = decode_8bit(m.group(2)).text
        e = _END.search(data, m.end())
        if not e:
            found.append((m.start(), len(data), name, None))
            return found
        content = _decode_lines(_lines(data[m.end():e.start()]))
        found.append((m.start(), e.end(), name, content))
        pos = e.end()


def decode_block(raw: bytes) -> tuple[str, bytes] | None:
    """A body sent with Content-Transfer-Encoding: x-uuencode."""
    blocks = [b for b in find_blocks(raw) if b[3] is not None]
    if blocks:
        return blocks[0][2], blocks[0][3]  # type: ignore[return-value]
    content = _decode_lines(_lines(raw))
    return ("", content) if content is not None else None
