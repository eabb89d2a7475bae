"""MAPI property ids and types shared by the .msg (MS-OXMSG) and TNEF (MS-OXTNEF) readers, and the
compressed RTF body (MS-OXRTFCP)."""
from __future__ import annotations

import struct

# Property types
PT_SHORT, PT_LONG, PT_FLOAT, PT_DOUBLE, PT_CURRENCY, PT_APPTIME = 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007
PT_ERROR, PT_BOOLEAN, PT_OBJECT, PT_I8, PT_STRING8, PT_UNICODE = 0x000A, 0x000B, 0x000D, 0x0014, 0x001E, 0x001F
PT_SYSTIME, PT_CLSID, PT_BINARY, PT_NULL, MV_FLAG = 0x0040, 0x0048, 0x0102, 0x0001, 0x1000
FIXED_SIZE = {PT_SHORT: 2, PT_LONG: 4, PT_FLOAT: 4, PT_DOUBLE: 8, PT_CURRENCY: 8, PT_APPTIME: 8, PT_ERROR: 4,
              PT_BOOLEAN: 2, PT_I8: 8, PT_SYSTIME: 8, PT_CLSID: 16, PT_NULL: 4, 0x0000: 4}
VARIABLE = {PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT}

# Property ids
SUBJECT, SENDER_NAME, SENDER_EMAIL, SENDER_SMTP = 0x0037, 0x0C1A, 0x0C1F, 0x5D01
SENT_REP_NAME, SENT_REP_EMAIL, SENT_REP_SMTP = 0x0042, 0x0065, 0x5D02
DISPLAY_TO, DISPLAY_CC, TRANSPORT_HEADERS, MESSAGE_CLASS = 0x0E04, 0x0E03, 0x007D, 0x001A
BODY, BODY_HTML, RTF_COMPRESSED, INTERNET_MESSAGE_ID = 0x1000, 0x1013, 0x1009, 0x1035
CLIENT_SUBMIT_TIME, DELIVERY_TIME, IN_REPLY_TO, REFERENCES = 0x0039, 0x0E06, 0x1042, 0x1039
INTERNET_CPID, MESSAGE_CODEPAGE = 0x3FDE, 0x3FFD
RECIPIENT_TYPE, DISPLAY_NAME, EMAIL_ADDRESS, ADDRTYPE, SMTP_ADDRESS = 0x0C15, 0x3001, 0x3003, 0x3002, 0x39FE
ATTACH_DATA, ATTACH_FILENAME, ATTACH_METHOD, ATTACH_LONG_FILENAME = 0x3701, 0x3704, 0x3705, 0x3707
ATTACH_MIME_TAG, ATTACH_CONTENT_ID, ATTACH_FLAGS, ATTACHMENT_HIDDEN = 0x370E, 0x3712, 0x3714, 0x7FFE
ATTACH_BY_VALUE, ATTACH_BY_REFERENCE, ATTACH_BY_REF_RESOLVE, ATTACH_BY_REF_ONLY = 1, 2, 3, 4
ATTACH_EMBEDDED_MSG, ATTACH_OLE = 5, 6
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")


def codepage_codec(cp: int | None) -> str:
    """A Python codec for a Windows code page (PT_STRING8 values); Japanese Outlook writes 932."""
    if not cp:
        return "cp932"
    return {932: "cp932", 50220: "iso-2022-jp", 50221: "iso-2022-jp", 50222: "iso-2022-jp", 51932: "euc-jp",
            20932: "euc-jp", 65001: "utf-8", 1200: "utf-16-le", 20127: "ascii", 28591: "latin-1"}.get(
        cp, f"cp{cp}")


def filetime(raw: bytes) -> float | None:
    """A FILETIME (100 ns since 1601) as a POSIX timestamp."""
    if len(raw) < 8:
        return None
    (v,) = struct.unpack("<Q", raw[:8])
    if not v:
        return None
    return v / 10_000_000 - 11_644_473_600


# ------------------------------------------------------------------ compressed RTF

_RTF_PREBUF = (b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript "
               b"\\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
               b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx")


class RtfError(ValueError):
    pass


def decompress_rtf(data: bytes, limit: int) -> bytes:
    """MS-OXRTFCP: LZFu ('LZFu') or stored ('MELA'); the output is bounded by `limit` bytes."""
    if len(data) < 16:
        raise RtfError("too short")
    comp_size, raw_size, magic, _crc = struct.unpack("<IIII", data[:16])
    if raw_size > limit:
        raise RtfError(f"compressed RTF claims {raw_size} bytes")
    body = data[16:4 + comp_size] if comp_size >= 12 else data[16:]
    if magic == 0x414C454D:  # MELA: stored
        return body[:raw_size]
    if magic != 0x75465A4C:  # LZFu
        raise RtfError("unknown compressed RTF type")
    dictionary = bytearray(4096)
    dictionary[: len(_RTF_PREBUF)] = _RTF_PREBUF
    wpos = len(_RTF_PREBUF)
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        flags = body[i]
        i += 1
        for bit in range(8):
            if i >= n:
                break
            if flags & (1 << bit):
                if i + 1 >= n:
                    break
                ref = (body[i] << 8) | body[i + 1]
                i += 2
                off, length = ref >> 4, (ref & 0xF) + 2
                if off == wpos:
                    return bytes(out)  # end marker
                for k in range(length):
                    b = dictionary[(off + k) & 0xFFF]
                    out.append(b)
                    dictionary[wpos] = b
                    wpos = (wpos + 1) & 0xFFF
            else:
                b = body[i]
                i += 1
                out.append(b)
                dictionary[wpos] = b
                wpos = (wpos + 1) & 0xFFF
            if len(out) > limit:
                raise RtfError("compressed RTF expands past the limit")
    return bytes(out)
