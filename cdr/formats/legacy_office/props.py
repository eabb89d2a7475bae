"""Document property streams ([MS-OLEPS]): rebuilt from the few values worth keeping.

SummaryInformation and DocumentSummaryInformation are parsed value by value and written anew.
With `metadata = "drop"` only what changes how a file is read survives: the code page (it
decides how every string is decoded), the application name and version, the locale and the
name-case behaviour. With `keep`, the plain standard properties (title, author, company, dates,
counts) are kept as well. Never kept: the user-defined section (Word stores hyperlink lists and
the link base there), thumbnails, and any value of a type outside the small list below.
A property stream that does not parse is dropped with a note, never copied.
"""
from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass, field

SUMMARY = "\x05SummaryInformation"
DOC_SUMMARY = "\x05DocumentSummaryInformation"
FMTID_SUMMARY = bytes.fromhex("e0859ff2f94f6810ab9108002b27b3d9")
FMTID_DOC_SUMMARY = bytes.fromhex("02d5cdd59c2e1b10939708002b2cf9ae")

VT_I2, VT_I4, VT_BOOL, VT_UI4, VT_LPSTR, VT_LPWSTR, VT_FILETIME = 0x02, 0x03, 0x0B, 0x13, 0x1E, 0x1F, 0x40
PID_CODEPAGE, PID_LOCALE, PID_BEHAVIOR = 0x01, 0x80000000, 0x80000003
PIDSI_APPNAME, PIDDSI_VERSION = 0x12, 0x17
_MAX_PROPS = 4096
_MAX_STRING = 1 << 16

# Kept whatever the policy: they change decoding or how an application treats the file.
_RENDERING = {
    FMTID_SUMMARY: {PID_CODEPAGE: VT_I2, PIDSI_APPNAME: VT_LPSTR, PID_LOCALE: VT_UI4, PID_BEHAVIOR: VT_UI4},
    FMTID_DOC_SUMMARY: {PID_CODEPAGE: VT_I2, PIDDSI_VERSION: VT_I4, PID_LOCALE: VT_UI4, PID_BEHAVIOR: VT_UI4},
}
# Kept with metadata = "keep": [MS-OLEPS] 3.2.1 and 3.2.2, simple types only.
_DESCRIPTIVE = {
    FMTID_SUMMARY: {0x02: VT_LPSTR, 0x03: VT_LPSTR, 0x04: VT_LPSTR, 0x05: VT_LPSTR, 0x06: VT_LPSTR,
                    0x07: VT_LPSTR, 0x08: VT_LPSTR, 0x09: VT_LPSTR, 0x0A: VT_FILETIME, 0x0B: VT_FILETIME,
                    0x0C: VT_FILETIME, 0x0D: VT_FILETIME, 0x0E: VT_I4, 0x0F: VT_I4, 0x10: VT_I4, 0x13: VT_I4},
    FMTID_DOC_SUMMARY: {0x02: VT_LPSTR, 0x03: VT_LPSTR, 0x04: VT_I4, 0x05: VT_I4, 0x06: VT_I4, 0x07: VT_I4,
                        0x08: VT_I4, 0x09: VT_I4, 0x0A: VT_I4, 0x0B: VT_BOOL, 0x0E: VT_LPSTR, 0x0F: VT_LPSTR,
                        0x10: VT_BOOL, 0x11: VT_I4, 0x13: VT_BOOL, 0x16: VT_BOOL, 0x1A: VT_LPSTR,
                        0x1B: VT_LPSTR, 0x1C: VT_LPSTR},
}
_FMTID = {SUMMARY: FMTID_SUMMARY, DOC_SUMMARY: FMTID_DOC_SUMMARY}


class PropertyError(ValueError):
    pass


@dataclass
class PropertySet:
    fmtid: bytes
    codepage: int | None = None
    values: dict[int, tuple[int, object]] = field(default_factory=dict)  # pid -> (type, value)
    skipped: int = 0  # properties present but not understood


def _codec(codepage: int | None) -> str | None:
    if codepage is None:
        return "cp1252"
    if codepage == 1200:
        return "utf-16-le"
    if codepage == 65001:
        return "utf-8"
    try:
        return codecs.lookup(f"cp{codepage}").name
    except LookupError:
        return None


def _u32(data: bytes, pos: int) -> int:
    if pos < 0 or pos + 4 > len(data):
        raise PropertyError("truncated property set")
    return struct.unpack_from("<I", data, pos)[0]


def read(data: bytes) -> PropertySet:
    """The first section of a property set stream."""
    if len(data) < 48:
        raise PropertyError("property stream too short")
    order, _version, _sysid = struct.unpack_from("<HHI", data, 0)
    nsets = _u32(data, 24)
    if order != 0xFFFE or not 1 <= nsets <= 2:
        raise PropertyError("not a property set stream")
    fmtid, base = data[28:44], _u32(data, 44)
    size, count = _u32(data, base), _u32(data, base + 4)
    if base + size > len(data) or count > _MAX_PROPS or 8 + count * 8 > size:
        raise PropertyError("property set out of bounds")
    section = data[base:base + size]
    entries = [struct.unpack_from("<II", section, 8 + i * 8) for i in range(count)]
    out = PropertySet(fmtid)
    for pid, off in entries:
        if pid == PID_CODEPAGE and off + 6 <= size and struct.unpack_from("<H", section, off)[0] == VT_I2:
            out.codepage = struct.unpack_from("<H", section, off + 4)[0]
    enc = _codec(out.codepage)
    for pid, off in entries:
        if pid == 0 or off + 4 > size:  # pid 0 is the dictionary: names of user properties
            out.skipped += 1
            continue
        vt = struct.unpack_from("<H", section, off)[0]
        try:
            out.values[pid] = (vt, _value(section, off + 4, vt, enc))
        except PropertyError:
            out.skipped += 1
    return out


def _value(sec: bytes, pos: int, vt: int, enc: str | None) -> object:
    if vt == VT_I2:
        if pos + 2 > len(sec):
            raise PropertyError("truncated")
        return struct.unpack_from("<h", sec, pos)[0]
    if vt in (VT_I4, VT_UI4, VT_BOOL):
        v = _u32(sec, pos)
        if vt == VT_BOOL:
            return v & 0xFFFF != 0
        return v if vt == VT_UI4 else struct.unpack("<i", struct.pack("<I", v))[0]
    if vt == VT_FILETIME:
        return _u32(sec, pos) | _u32(sec, pos + 4) << 32
    if vt in (VT_LPSTR, VT_LPWSTR):
        n = _u32(sec, pos)
        width = 2 if vt == VT_LPWSTR or enc == "utf-16-le" else 1
        if n > _MAX_STRING or pos + 4 + n * width > len(sec) or enc is None and vt == VT_LPSTR:
            raise PropertyError("bad string")
        raw = sec[pos + 4:pos + 4 + n * width]
        text = raw.decode("utf-16-le" if width == 2 else enc, "replace")
        return text.split("\0", 1)[0]
    raise PropertyError(f"type {vt:#x} not kept")


def _pack_value(vt: int, value: object, enc: str) -> bytes:
    if vt == VT_I2:
        return struct.pack("<HHhH", vt, 0, int(value), 0)
    if vt == VT_I4:
        return struct.pack("<HHi", vt, 0, int(value))
    if vt == VT_UI4:
        return struct.pack("<HHI", vt, 0, int(value))
    if vt == VT_BOOL:
        return struct.pack("<HHI", vt, 0, 0xFFFF if value else 0)
    if vt == VT_FILETIME:
        return struct.pack("<HHQ", vt, 0, int(value))
    text = str(value) + "\0"
    if vt == VT_LPWSTR or enc == "utf-16-le":
        raw = text.encode("utf-16-le")
        n = len(text)
    else:
        raw = text.encode(enc)
        n = len(raw)
    raw += b"\0" * (-len(raw) % 4)
    return struct.pack("<HHI", vt, 0, n) + raw


def write(fmtid: bytes, props: dict[int, tuple[int, object]], codepage: int) -> bytes:
    """A property set stream with one section holding `props` (the code page goes first)."""
    enc = _codec(codepage) or "cp1252"
    items = sorted(props.items(), key=lambda kv: (kv[0] != PID_CODEPAGE, kv[0]))
    offsets, blobs, pos = [], [], 8 + 8 * len(items)
    for pid, (vt, value) in items:
        blob = _pack_value(vt, value, enc)
        offsets.append((pid, pos))
        blobs.append(blob)
        pos += len(blob)
    section = struct.pack("<II", pos, len(items)) + b"".join(struct.pack("<II", p, o) for p, o in offsets)
    section += b"".join(blobs)
    head = struct.pack("<HHI16sI", 0xFFFE, 0, 0x00020006, b"\0" * 16, 1) + fmtid + struct.pack("<I", 48)
    return head + section


def rebuild(name: str, data: bytes, keep: bool) -> tuple[bytes | None, list[str]]:
    """A new property stream for stream `name` (SUMMARY or DOC_SUMMARY) and what was left out.

    Returns (None, [...]) when the stream does not parse: it is then dropped."""
    fmtid = _FMTID[name]
    try:
        ps = read(data)
    except (PropertyError, struct.error) as exc:
        return None, [f"unreadable property stream dropped ({exc})"]
    if ps.fmtid != fmtid:
        return None, ["property stream of an unexpected kind dropped"]
    allowed = dict(_RENDERING[fmtid])
    if keep:
        allowed.update(_DESCRIPTIVE[fmtid])
    codepage = ps.codepage if ps.codepage is not None and _codec(ps.codepage) else 1252
    kept: dict[int, tuple[int, object]] = {PID_CODEPAGE: (VT_I2, codepage if codepage < 0x8000 else codepage - 0x10000)}
    dropped: list[str] = []
    for pid, (vt, value) in ps.values.items():
        if pid == PID_CODEPAGE:
            continue
        want = allowed.get(pid)
        if want is None or (want != vt and not (want == VT_LPSTR and vt == VT_LPWSTR)):
            dropped.append(f"{pid:#x}")
            continue
        if vt in (VT_LPSTR, VT_LPWSTR) and not _encodable(str(value), codepage):
            dropped.append(f"{pid:#x}")
            continue
        kept[pid] = (vt, value)
    notes = []
    if dropped or ps.skipped or _u32(data, 24) > 1:
        notes.append(f"{len(dropped) + ps.skipped} document properties not kept")
    return write(fmtid, kept, codepage), notes


def _encodable(text: str, codepage: int) -> bool:
    enc = _codec(codepage)
    if enc is None:
        return False
    try:
        text.encode(enc)
    except UnicodeEncodeError:
        return False
    return True
