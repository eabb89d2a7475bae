"""Pictures in RTF (\\pict): the data must be what the picture type says, and end where that format ends.

A \\pict group holds hex digits (or one \\binN with N raw bytes) and names its type with one control word
(\\pngblip, \\jpegblip, \\emfblip, \\wmetafileN, \\dibitmapN, \\wbitmapN, \\macpict). A reader hands the
decoded bytes to an image decoder of that type, so bytes of another kind (a ZIP, an executable) or bytes
after the image's own end are data hidden in the document: the first drops the picture, the second is cut.
"""
from __future__ import annotations

import re
import struct

from .vocab import PICTURE_TYPES

_HEX = re.compile(rb"[0-9a-fA-F\s]*\Z")
_WS = re.compile(rb"\s+")
# BITMAPINFOHEADER sizes: core, info, v2, v3, OS/2 2.x, v4, v5.
_DIB_HEADERS = {12, 40, 52, 56, 64, 108, 124}


class Rejected(Exception):
    """The picture is not kept; the message says why (it becomes the threat's detail)."""


def _png_end(data: bytes) -> int:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise Rejected("PNG picture whose data is not a PNG")
    pos, n = 8, len(data)
    while pos + 12 <= n:
        length, kind = struct.unpack_from(">I4s", data, pos)
        pos += 12 + length
        if kind == b"IEND":
            if pos > n:
                break
            return pos
    raise Rejected("PNG picture without its end (IEND)")


def _jpeg_end(data: bytes) -> int:
    if not data.startswith(b"\xff\xd8\xff"):
        raise Rejected("JPEG picture whose data is not a JPEG")
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise Rejected("JPEG picture with damaged markers")
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            break
        pos += struct.unpack_from(">H", data, pos)[0]
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not a restart or stuffing
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    raise Rejected("JPEG picture without its end (EOI)")
                nxt = data[pos + 1]
                if nxt == 0 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    raise Rejected("JPEG picture without its end (EOI)")


def _emf_end(data: bytes) -> int:
    if len(data) < 88 or struct.unpack_from("<I", data, 0)[0] != 1 or data[40:44] != b" EMF":
        raise Rejected("EMF picture whose data is not an EMF")
    size = struct.unpack_from("<I", data, 48)[0]
    if size < 88 or size > len(data):
        raise Rejected("EMF picture shorter than its header says")
    return size


def _wmf_end(data: bytes) -> int:
    start = 22 if data.startswith(b"\xd7\xcd\xc6\x9a") else 0
    if len(data) < start + 18:
        raise Rejected("WMF picture whose data is not a WMF")
    kind, header, version, words = struct.unpack_from("<HHHI", data, start)
    if kind not in (1, 2) or header != 9 or version not in (0x100, 0x300):
        raise Rejected("WMF picture whose data is not a WMF")
    size = start + 2 * words
    if size > len(data):
        raise Rejected("WMF picture shorter than its header says")
    return size


def _dib_end(data: bytes) -> int:
    if len(data) < 12 or struct.unpack_from("<I", data, 0)[0] not in _DIB_HEADERS:
        raise Rejected("bitmap picture whose data is not a bitmap")
    return len(data)  # no end of its own to check: the rows fill the rest


def _pict_end(data: bytes) -> int:
    # QuickDraw PICT (without the 512-byte file header): size, frame, then the version opcode.
    if not (data[10:12] == b"\x11\x01" or data[10:14] == b"\x00\x11\x02\xff"):
        raise Rejected("Macintosh picture whose data is not a PICT")
    return len(data)


_CHECKS = {"png": _png_end, "jpeg": _jpeg_end, "emf": _emf_end, "wmf": _wmf_end, "dib": _dib_end,
           "pict": _pict_end}


def image_end(kind: str, data: bytes, words: dict[bytes, int | None]) -> int:
    """Where the image of `kind` ends in `data`; raises Rejected when the data is not such an image."""
    if not data:
        raise Rejected("picture without data")
    if kind == "ddb":
        # A device-dependent bitmap has no header: its rows are \wbmwidthbytes long, \pich of them.
        width, height = words.get(b"wbmwidthbytes") or 0, words.get(b"pich") or 0
        if width <= 0 or height <= 0 or width * height > len(data):
            raise Rejected("bitmap picture whose size does not match its data")
        return width * height
    check = _CHECKS.get(kind)
    if check is None:
        raise Rejected("OS/2 metafile picture (not kept)")
    return check(data)


def picture_kind(types: list[bytes]) -> str:
    """The one picture type named; Rejected if none or several."""
    kinds = {PICTURE_TYPES[t] for t in types}
    if len(kinds) != 1:
        raise Rejected("picture without a known type" if not kinds else "picture with more than one type")
    return kinds.pop()


def hex_ok(raw: bytes) -> bool:
    return _HEX.match(raw) is not None


def hex_digits(raw: bytes) -> bytes:
    return _WS.sub(b"", raw)
