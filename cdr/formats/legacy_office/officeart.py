"""OfficeArt drawings ([MS-ODRAW]) inside .doc and .ppt: shape properties and pictures.

Drawings are kept as drawings. What goes: shape properties that link outside the file or carry
script (a picture's file name when it is linked, hyperlinks on shapes, HTML script and applet
properties, and `metroBlob`, an OOXML package hidden in a property that Office 2007+ reads
instead of the binary shape). Pictures (BLIPs) are checked against their record type: a PNG
must start like a PNG, a metafile header must fit, and so on.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .records import Rec, RecordError

FOPT_TYPES = (0xF00B, 0xF121, 0xF122)  # OfficeArtFOPT, secondary and tertiary FOPT
FSP = 0xF00A
FBSE = 0xF007
BSTORE = 0xF001
BLIP_FIRST, BLIP_LAST = 0xF018, 0xF117

PIB_NAME, PIB_FLAGS = 0x0105, 0x0106
FILL_BLIP_NAME, FILL_BLIP_FLAGS = 0x0187, 0x0188
LINE_BLIP_NAME, LINE_BLIP_FLAGS = 0x01C6, 0x01C7
PIHL_SHAPE = 0x0382
PICTURE_ID = 0x010B
# wzScript, wzScriptEx, scriptLang, wzScriptIdAttr, wzScriptLangAttr, scriptHtmlLocation,
# wzApplet, wzAppletArg: HTML script and applets attached to a shape for web pages.
SCRIPT_PROPS = frozenset((0x038E, 0x0397, 0x0398, 0x0399, 0x039A, 0x03A1, 0x03A2, 0x03A6))
METRO_BLOB = 0x03A9
_NAME_FLAGS = {PIB_NAME: PIB_FLAGS, FILL_BLIP_NAME: FILL_BLIP_FLAGS, LINE_BLIP_NAME: LINE_BLIP_FLAGS}

# BLIP record type -> (instance values with one UID, header bytes after the UID(s), kind)
_BLIPS = {
    0xF01A: ((0x3D4,), 34, "emf"),
    0xF01B: ((0x216,), 34, "wmf"),
    0xF01C: ((0x542,), 34, "pict"),
    0xF01D: ((0x46A, 0x6E2), 1, "jpeg"),
    0xF02A: ((0x46A, 0x6E2), 1, "jpeg"),
    0xF01E: ((0x6E0,), 1, "png"),
    0xF01F: ((0x7A8,), 1, "dib"),
    0xF029: ((0x6E4,), 1, "tiff"),
}


@dataclass
class Findings:
    """What a drawing walk removed: (threat id, detail) pairs, counted once each, and notes."""

    items: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # losses that are not active content

    def add(self, tid: str, detail: str) -> None:
        if (tid, detail) not in self.items:
            self.items.append((tid, detail))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _linked(flags: int | None) -> bool:
    # msoblipflagFile (1) / msoblipflagURL (2) in the low bits, msoblipflagLinkToFile (8).
    return flags is not None and ((flags & 3) in (1, 2) or bool(flags & 8))


def clean_fopt(rec: Rec, found: Findings, ole_shapes: bool = False) -> bool:
    """Drop unsafe properties from an FOPT record in place; True when it changed."""
    count = rec.inst
    body = rec.body
    if 6 * count > len(body):
        raise RecordError("shape property table longer than its record")
    props = []
    complex_total = 0
    for i in range(count):
        opid, op = struct.unpack_from("<HI", body, 6 * i)
        props.append([opid, op, b""])
        if opid & 0x8000:
            complex_total += op
    pos = 6 * count
    if pos + complex_total != len(body):
        # Some writers miscount array properties; only an exact layout can be edited safely.
        if not any(_unsafe(p[0] & 0x3FFF) for p in props):
            return False
        raise RecordError("shape properties with an inconsistent layout")
    for p in props:
        if p[0] & 0x8000:
            p[2] = body[pos:pos + p[1]]
            pos += p[1]
    values = {p[0] & 0x3FFF: p[1] for p in props}
    keep = []
    for p in props:
        pid = p[0] & 0x3FFF
        if pid in _NAME_FLAGS:
            if _linked(values.get(_NAME_FLAGS[pid])):
                name = p[2].decode("utf-16-le", "replace").rstrip("\0")
                found.add("ole.external_link", f"linked picture {name[:80]}")
            continue  # the file name of a picture is never needed to show it
        if pid in _NAME_FLAGS.values() and _linked(p[1]):
            continue
        if pid == PIHL_SHAPE:
            found.add("ole.hyperlink", "hyperlink on a shape")
            continue
        if pid in SCRIPT_PROPS:
            found.add("ole.script", "script attached to a shape")
            continue
        if pid == PICTURE_ID and ole_shapes:
            continue  # the ObjectPool storage of an OLE shape; the storage is gone
        if pid == METRO_BLOB:  # PowerPoint/Word 2007+ read it instead of the shape; we do not walk zips
            found.note("Office 2007 copies of shapes (metroBlob) not kept")
            continue
        keep.append(p)
    if len(keep) == len(props):
        return False
    rec.inst = len(keep)
    rec.body = b"".join(struct.pack("<HI", p[0], p[1]) for p in keep) + b"".join(p[2] for p in keep)
    return True


def _unsafe(pid: int) -> bool:
    return pid in _NAME_FLAGS or pid == PIHL_SHAPE or pid in SCRIPT_PROPS or pid == METRO_BLOB


def clean_tree(recs: list[Rec], found: Findings, ole_shapes: bool = False) -> bool:
    """Clean every FOPT below these records and check embedded BLIPs; True when anything changed.
    With ole_shapes (Word), a shape that showed an OLE object becomes a plain picture of it."""
    changed = False
    for top in recs:
        for r in top.walk():
            if r.type in FOPT_TYPES and not r.container:
                changed |= clean_fopt(r, found, ole_shapes)
            elif ole_shapes and r.type == FSP and len(r.body) >= 8 and r.body[4] & 0x10:
                r.body = r.body[:4] + bytes([r.body[4] & ~0x10 & 0xFF]) + r.body[5:]  # fOleShape
                found.add("ole.object", "OLE object shape (its picture kept)")
                changed = True
            elif BLIP_FIRST <= r.type <= BLIP_LAST and not r.container:
                check_blip(r)
            elif r.type == FBSE:
                check_fbse(r)
    return changed


def check_blip(rec: Rec) -> str:
    """Validate a BLIP record's header and image signature; returns its kind."""
    spec = _BLIPS.get(rec.type)
    if spec is None:
        raise RecordError(f"unknown picture record 0x{rec.type:04X}")
    single, extra, kind = spec
    if rec.inst in single:
        uids = 1
    elif rec.inst in tuple(s + 1 for s in single):
        uids = 2
    else:
        raise RecordError(f"{kind} picture with instance 0x{rec.inst:03X}")
    head = 16 * uids + extra
    body = rec.body
    if len(body) < head:
        raise RecordError(f"{kind} picture shorter than its header")
    data = body[head:]
    if kind in ("emf", "wmf", "pict"):
        cb_size, = struct.unpack_from("<I", body, 16 * uids)
        cb_save, compression, flt = struct.unpack_from("<IBB", body, 16 * uids + 28)
        if compression not in (0x00, 0xFE) or flt != 0xFE or cb_save > len(data):
            raise RecordError(f"{kind} picture with a damaged metafile header")
        if compression == 0xFE and cb_size > len(data):
            raise RecordError(f"{kind} picture shorter than it says")
    elif kind == "png" and not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise RecordError("PNG picture without a PNG signature")
    elif kind == "jpeg" and not data.startswith(b"\xff\xd8"):
        raise RecordError("JPEG picture without a JPEG signature")
    elif kind == "tiff" and data[:4] not in (b"II*\0", b"MM\0*"):
        raise RecordError("TIFF picture without a TIFF signature")
    elif kind == "dib" and (len(data) < 4 or struct.unpack_from("<I", data)[0] not in (12, 40, 52, 56, 64, 108, 124)):
        raise RecordError("bitmap picture with an unknown header")
    return kind


def fbse_delay(rec: Rec) -> tuple[int, int] | None:
    """(offset, size) of an FBSE's BLIP in the delay stream, or None when it is embedded or absent."""
    b = rec.body
    if len(b) < 36:
        raise RecordError("picture entry shorter than 36 bytes")
    size, _cref, fo = struct.unpack_from("<III", b, 20)
    cb_name = b[33]
    if 36 + cb_name > len(b):
        raise RecordError("picture entry name runs past its record")
    if len(b) > 36 + cb_name:  # the BLIP follows inside the FBSE
        return None
    if size == 0 or fo == 0xFFFFFFFF:
        return None
    return fo, size


def check_fbse(rec: Rec) -> None:
    """An FBSE whose BLIP is stored inside it: the BLIP must parse and validate."""
    from .records import parse

    b = rec.body
    if len(b) < 36:
        raise RecordError("picture entry shorter than 36 bytes")
    start = 36 + b[33]
    if start > len(b):
        raise RecordError("picture entry name runs past its record")
    if start < len(b):
        blips = parse(b, start, len(b))
        if len(blips) != 1:
            raise RecordError("picture entry holding more than one picture")
        check_blip(blips[0])
