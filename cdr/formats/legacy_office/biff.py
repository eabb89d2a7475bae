"""BIFF8 record streams ([MS-XLS] 2.1): records with the CONTINUE records that follow them, the
substreams (workbook globals, sheets, charts), the shared string table walked across CONTINUE
boundaries, and records written back (split at 8224 bytes)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

_MAX_BODY = 8224
_MAX_RECORDS = 4_000_000


class _Bad(Exception):
    """A structure that cannot be trusted: the caller decides whether to drop it or give up."""


def _unrebuildable(msg: str) -> Exception:
    from . import Unrebuildable

    return Unrebuildable(msg)


# --- record ids ------------------------------------------------------------------------------
BOF, EOF, CONTINUE, BOUNDSHEET, SST, EXTSST, INDEX, DBCELL = 0x809, 0x0A, 0x3C, 0x85, 0xFC, 0xFF, 0x20B, 0xD7
FORMULA, STRING, ARRAY, SHRFMLA, TABLE = 0x06, 0x207, 0x221, 0x4BC, 0x236
NUMBER, LABEL, BOOLERR, RK, MULRK, BLANK, MULBLANK, LABELSST, RSTRING = \
    0x203, 0x204, 0x205, 0x27E, 0xBD, 0x201, 0xBE, 0xFD, 0xD6
NAME, SUPBOOK, EXTERNNAME, EXTERNSHEET, XCT, CRN = 0x18, 0x1AE, 0x23, 0x17, 0x59, 0x5A
HLINK, HLINKTOOLTIP, OBJ, MSODRAWING, MSODRAWINGGROUP, TXO = 0x1B8, 0x800, 0x5D, 0xEC, 0xEB, 0x1B6
CONDFMT, CF, DVAL, DV, WRITEACCESS, FILEPASS, REFRESHALL, WINDOW1, WSBOOL = \
    0x1B0, 0x1B1, 0x1B2, 0x1BE, 0x5C, 0x2F, 0x1B7, 0x3D, 0x81
BRAI, NOTE = 0x1051, 0x1C

# --- strings ---------------------------------------------------------------------------------

def _xlstring(b: bytes, pos: int, cch_size: int = 2) -> tuple[str, int]:
    """An XLUnicodeString (cch_size 2) or ShortXLUnicodeString (1) at pos: (text, end)."""
    if pos + cch_size + 1 > len(b):
        raise _Bad("truncated string")
    cch = b[pos] if cch_size == 1 else struct.unpack_from("<H", b, pos)[0]
    flags = b[pos + cch_size]
    if flags & 0xFE:
        raise _Bad("string with rich text where none is allowed")
    start = pos + cch_size + 1
    end = start + cch * (2 if flags & 1 else 1)
    if end > len(b):
        raise _Bad("truncated string")
    raw = b[start:end]
    return (raw.decode("utf-16-le", "replace") if flags & 1 else raw.decode("latin-1")), end


def _pack_xlstring(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<HB", len(raw) // 2, 1) + raw


# --- the record stream -----------------------------------------------------------------------

class Rec:
    """A record and the bodies of the CONTINUE records that follow it; `at`: its source offset."""

    __slots__ = ("rt", "body", "conts", "at")

    def __init__(self, rt: int, body: bytes, conts: list[bytes] | None = None, at: int = -1):
        self.rt, self.body, self.conts, self.at = rt, body, conts if conts is not None else [], at

    def joined(self) -> bytes:
        return self.body + b"".join(self.conts) if self.conts else self.body

    def size(self) -> int:
        return len(self.body) + sum(map(len, self.conts)) if self.conts else len(self.body)


def _read(data: bytes) -> list[Rec]:
    recs: list[Rec] = []
    pos, end = 0, len(data)
    unpack = struct.Struct("<HH").unpack_from
    last = None
    while pos + 4 <= end:
        rt, size = unpack(data, pos)
        if rt == 0 and size == 0 and last is not None and last.rt == EOF:
            break  # padding after the last EOF
        nxt = pos + 4 + size
        if size > _MAX_BODY or nxt > end:
            raise _unrebuildable(f"record {rt:#06x} at {pos} overruns the stream")
        if rt == CONTINUE:  # belongs to the record before (one we do not keep is dropped with it)
            if last is None or last.rt in (BOF, EOF):
                raise _unrebuildable(f"CONTINUE at {pos} follows nothing that continues")
            last.conts.append(data[pos + 4:nxt])
        else:
            last = Rec(rt, data[pos + 4:nxt], None, pos)
            recs.append(last)
        pos = nxt
    if len(recs) > _MAX_RECORDS:
        raise _unrebuildable("too many records")
    return recs


@dataclass
class Substream:
    dt: int
    start: int  # stream offset of its BOF in the source
    recs: list[Rec]


def _substreams(data: bytes) -> list[Substream]:
    """Split into substreams at top-level BOF/EOF; charts embedded in a sheet stay inside it."""
    out: list[Substream] = []
    depth, cur = 0, None
    for r in _read(data):
        if r.rt == BOF:
            if len(r.body) < 4:
                raise _unrebuildable("short BOF")
            vers, dt = struct.unpack_from("<HH", r.body, 0)
            if depth == 0:
                if vers != 0x0600:
                    raise _unrebuildable(f"not BIFF8 (BOF version {vers:#x})")
                cur = Substream(dt, r.at, [])
                out.append(cur)
            depth += 1
            if depth > 2:
                raise _unrebuildable("substreams nested too deeply")
        if cur is None:
            raise _unrebuildable("records outside any substream")
        cur.recs.append(r)
        if r.rt == EOF:
            depth -= 1
            if depth == 0:
                cur = None
    if depth != 0:
        raise _unrebuildable("the last substream has no EOF")
    if not out or out[0].dt != 0x0005:
        raise _unrebuildable("the workbook globals do not come first")
    return out


# --- SST -------------------------------------------------------------------------------------

class _Frags:
    """Reads a record split over CONTINUE fragments, as SST strings must be read."""

    def __init__(self, rec: Rec):
        self.frags = [rec.body] + rec.conts
        self.i, self.pos = 0, 0

    def _next_frag(self) -> None:
        self.i += 1
        self.pos = 0
        if self.i >= len(self.frags):
            raise _Bad("SST ends inside a string")

    def take(self, n: int) -> bytes:
        out = bytearray()
        while n:
            if self.pos >= len(self.frags[self.i]):
                self._next_frag()
            part = self.frags[self.i][self.pos:self.pos + n]
            out += part
            self.pos += len(part)
            n -= len(part)
        return bytes(out)

    def where(self) -> tuple[int, int]:
        if self.pos >= len(self.frags[self.i]) and self.i + 1 < len(self.frags):
            return self.i + 1, 0
        return self.i, self.pos

    def chars(self, cch: int, high: bool, decode: bool = True) -> str:
        """Character data: a fragment boundary inside it starts with a new high-byte flag."""
        text = []
        while cch:
            if self.pos >= len(self.frags[self.i]):
                self._next_frag()
                flag = self.take(1)[0]
                if flag & 0xFE:
                    raise _Bad("bad continuation flag in SST")
                high = bool(flag & 1)
            width = 2 if high else 1
            avail = (len(self.frags[self.i]) - self.pos) // width
            if avail == 0:
                raise _Bad("character split across records")
            n = min(avail, cch)
            raw = self.take(n * width)
            if decode:
                text.append(raw.decode("utf-16-le", "replace") if high else raw.decode("latin-1"))
            cch -= n
        return "".join(text)


def _walk_sst(rec: Rec, decode: bool = True) -> tuple[list[str], list[tuple[int, int]]]:
    """Every string of the SST (validated; "" unless `decode`) and where each starts: (fragment, offset)."""
    f = _Frags(rec)
    total, unique = struct.unpack("<II", f.take(8))
    strings, starts = [], []
    for _ in range(unique):
        starts.append(f.where())
        cch, flags = struct.unpack("<HB", f.take(3))
        if flags & 0xF2:
            raise _Bad("unknown SST string flags")
        runs = struct.unpack("<H", f.take(2))[0] if flags & 0x08 else 0
        ext = struct.unpack("<I", f.take(4))[0] if flags & 0x04 else 0
        strings.append(f.chars(cch, bool(flags & 1), decode))
        if runs:
            f.take(4 * runs)
        if ext:
            if ext > 1 << 20:
                raise _Bad("phonetic data too large")
            f.take(ext)
    if f.i != len(f.frags) - 1 or f.pos != len(f.frags[-1]):
        raise _Bad("bytes after the last SST string")
    return strings, starts


def _emit(recs: list[Rec], out: bytearray, where: dict[int, list[int]] | None = None) -> None:
    """Append records with their CONTINUE records; `where` gets the offset of each fragment of each record."""
    pack = struct.Struct("<HH").pack
    for r in recs:
        body = r.body
        if not r.conts and len(body) <= _MAX_BODY:
            if where is not None:
                where[id(r)] = [len(out)]
            out += pack(r.rt, len(body))
            out += body
            continue
        frags = [body, *r.conts]
        if len(body) > _MAX_BODY or any(len(c) > _MAX_BODY for c in r.conts):
            frags = _split(r.joined())
        at = []
        for k, f in enumerate(frags):
            at.append(len(out))
            out += pack(r.rt if k == 0 else CONTINUE, len(f)) + f
        if where is not None:
            where[id(r)] = at


def _split(data: bytes) -> list[bytes]:
    return [data[i:i + _MAX_BODY] for i in range(0, len(data), _MAX_BODY)] or [b""]
