"""Word 97-2003 (.doc) rebuilt in its own format ([MS-DOC]).

The FIB is read and every fc/lcb pair checked against the table stream. The new table stream is
built pair by pair from what is understood and allowed (docfib.PAIRS); the customisation,
macro-name, routing, saved-by and mail-merge structures are left out. The WordDocument stream
is rebuilt from the pieces the piece table names (text), the formatting pages the bin tables
name (FKPs), the section properties and the pictures the drawing store names; every other byte
is zero. The Data stream keeps only the picture, form-field and property blocks that formatting
points to. Fields that fetch or run (DDE, INCLUDETEXT, INCLUDEPICTURE, MACROBUTTON, non-web
HYPERLINK, ...) keep their displayed result: the instruction is rewritten in place with the same
length, its cached type becomes QUOTE and the field is locked. OLE objects (ObjectPool) go; the
character that showed one becomes a plain picture of its preview where the file carries one.
Character positions never move, so headers, footers, sections, bookmarks, comments and
drawings keep their anchors.
"""
from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import Report, Unrebuildable, officeart
from .docfib import DROP, FIELD_PLCS, INDEX, KEEP, PAIRS, FibError, parse_fib
from .records import RecordError, parse

if TYPE_CHECKING:
    from ...handler import Context

# Field types ([MS-DOC] 2.9.90 flt) that fetch, link, embed or run something.
FLT_QUOTE = 0x23
DANGEROUS_FLT = {0x24: "INCLUDE", 0x2D: "DDE", 0x2E: "DDEAUTO", 0x33: "MACROBUTTON", 0x37: "IMPORT",
                 0x38: "LINK", 0x3A: "EMBED", 0x43: "INCLUDEPICTURE", 0x44: "INCLUDETEXT", 0x4E: "DATABASE",
                 0x57: "CONTROL", 0x5B: "HTMLCONTROL"}
_FETCH = {"INCLUDEPICTURE", "INCLUDETEXT", "INCLUDE", "LINK", "IMPORT", "DATABASE", "RD"}
_QUOTED = re.compile(r'"([^"]*)"|(\S+)')
_WEB = re.compile(r"(?i)(https?://|mailto:)")

# Character sprms ([MS-DOC] 2.6.1) the rebuild reads or edits.
SPRM_PIC_LOCATION = 0x6A03
SPRM_FDATA = 0x0806
SPRM_FOLE2 = 0x080A
SPRM_FSPEC = 0x0855
SPRM_FOBJ = 0x0856
# Paragraph sprms whose operand is an offset of a PrcData block in the Data stream.
SPRM_DATA_PRC = (0x6645, 0x6646, 0x646B)
_SPRA_SIZE = {0: 1, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2, 7: 3}
_PRM0_FOLE2 = 0x4B  # Prm0.isprm of sprmCFOle2
MAX_FIELD_CHARS = 2_000_000  # characters looked at one by one (field marks, instructions, results)

_COMPOBJ = (b"\x01\x00\xfe\xff\x03\x0a\x00\x00\xff\xff\xff\xff\x06\x09\x02\x00\x00\x00\x00\x00\xc0\x00\x00"
            b"\x00\x00\x00\x00\x46" + struct.pack("<I", 32) + b"Microsoft Word 97-2003 Document\0"
            + struct.pack("<I", 10) + b"MSWordDoc\0" + struct.pack("<I", 16) + b"Word.Document.8\0"
            + struct.pack("<I", 0x71B239F4) + b"\0" * 12)


class DocError(ValueError):
    """The document cannot be rebuilt safely (damaged, or a structure this rebuilder refuses)."""


class Unsupported(DocError):
    """A valid document of a kind this rebuilder does not handle (Word 6/95, encrypted)."""


@dataclass
class Found:
    """A finding: threat id, where, what was done, detail."""

    id: str
    location: str
    action: str
    detail: str


def sprms(buf: bytes | bytearray, start: int, end: int):
    """(sprm, operand offset, operand length) for each Prl in buf[start:end]."""
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise DocError("truncated property list")
        sprm, = struct.unpack_from("<H", buf, pos)
        pos += 2
        spra = sprm >> 13
        if spra != 6:
            size = _SPRA_SIZE[spra]
        elif sprm == 0xD608:  # sprmTDefTable: two-byte length
            if pos + 2 > end:
                raise DocError("truncated table definition")
            size = struct.unpack_from("<H", buf, pos)[0] + 1
        elif sprm == 0xC615 and pos < end and buf[pos] == 255:  # sprmPChgTabs, long form
            if pos + 2 > end:
                raise DocError("truncated tab list")
            n_del = buf[pos + 1]
            at = pos + 2 + 4 * n_del
            if at >= end:
                raise DocError("truncated tab list")
            size = 2 + 4 * n_del + 1 + 3 * buf[at]
        else:
            if pos >= end:
                raise DocError("truncated property")
            size = 1 + buf[pos]
        if pos + size > end:
            raise DocError(f"property 0x{sprm:04X} runs past its list")
        yield sprm, pos, size
        pos += size


@dataclass
class Piece:
    cp0: int
    cp1: int
    pos: int  # byte offset in WordDocument
    compressed: bool
    prm_at: int  # offset of the Prm in the Clx bytes

    @property
    def width(self) -> int:
        return 1 if self.compressed else 2

    @property
    def end(self) -> int:
        return self.pos + (self.cp1 - self.cp0) * self.width


@dataclass
class Chpx:
    at: int  # offset of the grpprl in WordDocument
    size: int
    props: dict[int, tuple[int, int]] = field(default_factory=dict)  # sprm -> (operand offset, length)

    def value(self, buf: bytes | bytearray, sprm: int) -> int | None:
        if sprm not in self.props:
            return None
        off, size = self.props[sprm]
        return int.from_bytes(buf[off:off + min(size, 4)], "little")


@dataclass
class Field:
    story: int
    begin: int  # absolute CP
    sep: int | None
    end: int
    begin_fld: int  # index of the FLD entries in their Plc
    end_fld: int
    plc: str


class DocRebuild:
    """One rebuild: parse, disarm, assemble. `threats` lists what was found and done."""

    def __init__(self, streams: dict[str, bytes], hyperlinks: str = "web") -> None:
        self.streams = streams
        self.hyperlinks = hyperlinks
        self.threats: list[Found] = []
        self.notes: list[str] = []
        self.budget = MAX_FIELD_CHARS
        wd = streams.get("WordDocument")
        if wd is None:
            raise DocError("no WordDocument stream")
        if len(wd) >= 12 and struct.unpack_from("<H", wd, 10)[0] & 0x8100:
            raise Unsupported("encrypted or obfuscated Word document")
        try:
            self.fib = parse_fib(wd)
        except FibError as exc:
            if "Word 6/95" in str(exc):
                raise Unsupported(str(exc)) from None
            raise DocError(str(exc)) from None
        if self.fib.encrypted or self.fib.obfuscated:
            raise Unsupported("encrypted or obfuscated Word document")
        self.wd = bytes(wd)
        self.out = bytearray(len(wd))  # the new WordDocument stream: zero unless copied below
        table = streams.get(self.fib.table_name)
        if table is None:
            raise DocError(f"the table stream {self.fib.table_name} is missing")
        self.table = bytes(table)
        self.data = bytes(streams.get("Data", b""))
        self.data_out = bytearray(len(self.data))
        self.tables: dict[int, bytearray] = {}  # pair index -> bytes for the new table stream
        self.plc_edits: dict[str, bytearray] = {}

    # ------------------------------------------------------------------ helpers

    def report(self, tid: str, location: str, action: str, detail: str) -> None:
        f = Found(tid, location, action, detail)
        if f not in self.threats:
            self.threats.append(f)

    def pair_bytes(self, name: str) -> bytes:
        fc, lcb = self.fib.pair(name)
        if lcb == 0:
            return b""
        if fc + lcb > len(self.table):
            raise DocError(f"{name} points outside the table stream")
        return self.table[fc:fc + lcb]

    def copy(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.wd):
            raise DocError(f"{what} points outside the WordDocument stream")
        self.out[pos:pos + size] = self.wd[pos:pos + size]

    # ------------------------------------------------------------------ structure

    def check_pairs(self) -> None:
        for i in range(self.fib.count):
            fc, lcb = self.fib.pair_at(i)
            name, fate, tid, detail = PAIRS[i]
            if lcb == 0:
                continue
            if fate == DROP:
                if name == "Cmds" and self.table[fc:fc + lcb] in (b"\xff\x40", b"\xff", b"\x40"):
                    continue  # the empty customisation table Word writes in every document
                if tid:
                    action = "reported" if tid == "ole.metadata" else "removed"
                    self.report(tid, name, action, detail)
                continue
            if i == INDEX["ModifiedTime"]:
                continue  # a FILETIME, not a pair
            if fc + lcb > len(self.table):
                raise DocError(f"{name} points outside the table stream ({fc}+{lcb} > {len(self.table)})")

    def read_pieces(self) -> None:
        clx = self.pair_bytes("Clx")
        if not clx:
            raise DocError("no piece table")
        pos = 0
        self.prc_count = 0
        while pos < len(clx) and clx[pos] == 0x01:  # Prc: property lists for pieces
            if pos + 3 > len(clx):
                raise DocError("truncated piece property list")
            cb = struct.unpack_from("<h", clx, pos + 1)[0]
            if cb < 0 or pos + 3 + cb > len(clx):
                raise DocError("damaged piece property list")
            for sprm, off, _size in sprms(clx, pos + 3, pos + 3 + cb):
                if sprm == SPRM_FOLE2 and clx[off]:
                    self.report("ole.object", "piece table", "removed", "embedded OLE object marker")
                    clx = clx[:off] + b"\0" + clx[off + 1:]
            pos += 3 + cb
            self.prc_count += 1
        if pos >= len(clx) or clx[pos] != 0x02:
            raise DocError("piece table without its Pcdt")
        lcb, = struct.unpack_from("<I", clx, pos + 1)
        start = pos + 5
        if start + lcb != len(clx) or lcb < 16 or (lcb - 4) % 12:
            raise DocError("piece table size does not match")
        n = (lcb - 4) // 12
        cps = struct.unpack_from(f"<{n + 1}i", clx, start)
        if cps[0] != 0 or any(b <= a for a, b in zip(cps, cps[1:], strict=False)):
            raise DocError("piece table positions are not ascending")
        self.clx = bytearray(clx)
        self.pieces: list[Piece] = []
        for i in range(n):
            at = start + 4 * (n + 1) + 8 * i
            fc, = struct.unpack_from("<I", clx, at + 2)
            prm, = struct.unpack_from("<H", clx, at + 6)
            compressed = bool(fc & 0x40000000)
            off = (fc & 0x3FFFFFFF) // 2 if compressed else fc & 0x3FFFFFFF
            p = Piece(cps[i], cps[i + 1], off, compressed, at + 6)
            if p.end > len(self.wd):
                raise DocError("a text piece points outside the WordDocument stream")
            if prm & 1:
                if (prm >> 1) >= self.prc_count:
                    raise DocError("a piece names a property list that does not exist")
            elif (prm >> 1) & 0x7F == _PRM0_FOLE2 and prm >> 8:
                self.report("ole.object", "piece table", "removed", "embedded OLE object marker")
                struct.pack_into("<H", self.clx, at + 6, prm & 0x00FF)
            self.pieces.append(p)
            self.out[p.pos:p.end] = self.wd[p.pos:p.end]
        self.piece_cps = [p.cp0 for p in self.pieces]
        self.cp_total = cps[-1]
        ccps = self.fib.ccps()
        if any(c < 0 for c in ccps):
            raise DocError("negative story length")
        needed = sum(ccps) + (1 if sum(ccps[1:]) else 0)
        if needed > self.cp_total:
            raise DocError("the piece table is shorter than the text")
        self.story_start = []
        acc = 0
        for c in ccps:
            self.story_start.append(acc)
            acc += c

    def piece_of(self, cp: int) -> Piece:
        i = bisect.bisect_right(self.piece_cps, cp) - 1
        if i < 0 or cp >= self.pieces[i].cp1:
            raise DocError(f"character position {cp} is outside the text")
        return self.pieces[i]

    def byte_of(self, cp: int) -> tuple[int, int]:
        p = self.piece_of(cp)
        return p.pos + (cp - p.cp0) * p.width, p.width

    def char(self, cp: int) -> str:
        self.budget -= 1
        if self.budget < 0:  # fields nested or spanning without end: not worth walking character by character
            raise DocError("too many field characters to check")
        pos, width = self.byte_of(cp)
        if width == 1:
            return self.wd[pos:pos + 1].decode("cp1252", "replace")
        return self.wd[pos:pos + 2].decode("utf-16-le", "replace")

    def read_fkps(self) -> None:
        self.chpx_runs: list[tuple[int, int, Chpx]] = []  # (fc start, fc end, chpx), sorted
        self.data_refs: dict[int, str] = {}
        chpxs: dict[int, Chpx] = {}
        for name, kind in (("PlcfBteChpx", "chp"), ("PlcfBtePapx", "pap")):
            plc = self.pair_bytes(name)
            if len(plc) < 8 or (len(plc) - 4) % 8:
                raise DocError(f"{name} has a bad size")
            n = (len(plc) - 4) // 8
            pns = struct.unpack_from(f"<{n}I", plc, 4 * (n + 1))
            for pn in {pn & 0x3FFFFF for pn in pns}:
                page_at = pn * 512
                if page_at + 512 > len(self.wd):
                    raise DocError(f"{name} names a page outside the WordDocument stream")
                self.copy(page_at, 512, name)
                if kind == "chp":
                    self._chpx_page(page_at, chpxs)
                else:
                    self._papx_page(page_at)
        self.chpx_runs.sort(key=lambda r: r[0])
        self.run_starts = [r[0] for r in self.chpx_runs]
        self.chpxs = chpxs

    def _chpx_page(self, page_at: int, chpxs: dict[int, Chpx]) -> None:
        page = self.wd[page_at:page_at + 512]
        crun = page[511]
        if not 1 <= crun <= 0x65:
            raise DocError("damaged character formatting page")
        fcs = struct.unpack_from(f"<{crun + 1}I", page)
        if any(b < a for a, b in zip(fcs, fcs[1:], strict=False)):
            raise DocError("character formatting page out of order")
        table_end = 4 * (crun + 1) + crun
        for i in range(crun):
            b = page[4 * (crun + 1) + i]
            if b == 0:
                continue
            off = 2 * b
            if off < table_end or off >= 511 or off + 1 + page[off] > 511:
                raise DocError("character properties outside their page")
            at = page_at + off + 1
            ch = chpxs.get(at)
            if ch is None:
                ch = Chpx(at, page[off])
                for sprm, o, size in sprms(self.wd, at, at + ch.size):
                    ch.props[sprm] = (o, size)
                chpxs[at] = ch
            self.chpx_runs.append((fcs[i], fcs[i + 1], ch))

    def _papx_page(self, page_at: int) -> None:
        page = self.wd[page_at:page_at + 512]
        cpara = page[511]
        if not 1 <= cpara <= 0x1D:
            raise DocError("damaged paragraph formatting page")
        fcs = struct.unpack_from(f"<{cpara + 1}I", page)
        if any(b < a for a, b in zip(fcs, fcs[1:], strict=False)):
            raise DocError("paragraph formatting page out of order")
        table_end = 4 * (cpara + 1) + 13 * cpara
        for i in range(cpara):
            b = page[4 * (cpara + 1) + 13 * i]
            if b == 0:
                continue
            off = 2 * b
            if off < table_end or off + 1 >= 511:
                raise DocError("paragraph properties outside their page")
            cb = page[off]
            if cb == 0:
                start, size = off + 2, 2 * page[off + 1]
            else:
                start, size = off + 1, 2 * cb - 1
            if size < 2 or start + size > 511:
                raise DocError("paragraph properties outside their page")
            at = page_at + start
            for sprm, o, osize in sprms(self.wd, at + 2, at + size):
                if sprm in SPRM_DATA_PRC and osize == 4:
                    self.data_refs.setdefault(struct.unpack_from("<I", self.wd, o)[0], "prc")

    def chpx_at(self, fc: int) -> Chpx | None:
        i = bisect.bisect_right(self.run_starts, fc) - 1
        if i >= 0 and self.chpx_runs[i][0] <= fc < self.chpx_runs[i][1]:
            return self.chpx_runs[i][2]
        return None

    def chpx_of_cp(self, cp: int) -> Chpx | None:
        pos, _w = self.byte_of(cp)
        return self.chpx_at(pos)

    def read_sections(self) -> None:
        plc = self.pair_bytes("PlcfSed")
        if len(plc) < 16 or (len(plc) - 4) % 16:
            raise DocError("section table has a bad size")
        n = (len(plc) - 4) // 16
        for i in range(n):
            fc_sepx, = struct.unpack_from("<i", plc, 4 * (n + 1) + 12 * i + 2)
            if fc_sepx == -1:
                continue
            if fc_sepx < 0 or fc_sepx + 2 > len(self.wd):
                raise DocError("section properties outside the WordDocument stream")
            cb, = struct.unpack_from("<h", self.wd, fc_sepx)
            if cb < 0 or fc_sepx + 2 + cb > len(self.wd):
                raise DocError("section properties outside the WordDocument stream")
            list(sprms(self.wd, fc_sepx + 2, fc_sepx + 2 + cb))  # framing check
            self.copy(fc_sepx, 2 + cb, "section properties")

    # ------------------------------------------------------------------ fields

    def read_fields(self) -> list[Field]:
        fields: list[Field] = []
        for name, story in FIELD_PLCS:
            plc = self.pair_bytes(name)
            if not plc:
                continue
            if len(plc) < 4 or (len(plc) - 4) % 6:
                raise DocError(f"{name} has a bad size")
            n = (len(plc) - 4) // 6
            cps = struct.unpack_from(f"<{n + 1}i", plc)
            base = self.story_start[story]
            stack: list[list] = []
            for i in range(n):
                ch = plc[4 * (n + 1) + 2 * i] & 0x1F
                cp = base + cps[i]
                got = self.char(cp)
                if ord(got) != ch:
                    raise DocError(f"field mark {ch:#x} expected at CP {cp}, found {ord(got):#x}")
                if ch == 0x13:
                    stack.append([cp, None, i])
                elif ch == 0x14:
                    if not stack:
                        raise DocError("field separator without a field")
                    stack[-1][1] = cp
                elif ch == 0x15:
                    if not stack:
                        raise DocError("field end without a field")
                    b, s, bi = stack.pop()
                    fields.append(Field(story, b, s, cp, bi, i, name))
                else:
                    raise DocError("unknown field mark")
            if stack:
                raise DocError("a field is not closed")
            self.plc_edits[name] = bytearray(plc)
        return fields

    def instruction(self, f: Field) -> tuple[list[int], str, bool, bool]:
        """CPs of the field's own instruction characters, the instruction, whether it holds nested
        fields, and whether a nested field comes before the keyword is complete."""
        stop = f.sep if f.sep is not None else f.end
        cps: list[int] = []
        text: list[str] = []
        depth = 0
        nested = glued = False
        for cp in range(f.begin + 1, stop):
            c = self.char(cp)
            if c == "\x13":
                if depth == 0:
                    nested = True
                    pre = "".join(text).lstrip()
                    if not pre or not re.search(r"\s", pre):
                        glued = True
                depth += 1
            elif c == "\x15":
                depth -= 1
            elif depth == 0 and c >= " ":  # special characters (data, pictures) stay as they are
                cps.append(cp)
                text.append(c)
        return cps, "".join(text), nested, glued

    def field_verdict(self, f: Field, code: str, nested: bool, glued: bool, flt: int) -> tuple[str, str] | None:
        stripped = code.strip()
        if glued:
            return "ole.dde", f"field keyword completed by a nested field {stripped[:60]!r}"
        m = re.match(r"([A-Za-z]+)", stripped)
        if not m:
            if stripped and not stripped.startswith("="):
                return "ole.dde", f"obfuscated field code {stripped[:60]!r}"
            if flt in DANGEROUS_FLT:
                return "ole.field", f"{DANGEROUS_FLT[flt]} field with a hidden instruction"
            return None
        name = m.group(1).upper()
        if name in ("DDE", "DDEAUTO"):
            return "ole.dde", f"{name} field {stripped[:80]}"
        if name == "EMBED":
            return "ole.object", f"EMBED field {stripped[:80]}"
        if name in ("CONTROL", "HTMLCONTROL"):
            return "ole.activex", f"{name} field {stripped[:80]}"
        if name in _FETCH:
            return "ole.field", f"{name} field {stripped[:80]}"
        if name == "MACROBUTTON":
            return "ole.macro_reference", f"MACROBUTTON field {stripped[:80]}"
        if name == "HYPERLINK":
            target = _hyperlink_target(stripped[m.end():])
            if target and (self.hyperlinks == "drop" or not _web(target)):
                return "ole.hyperlink", f"HYPERLINK field {target[:80]}"
        if flt in DANGEROUS_FLT and DANGEROUS_FLT[flt] != name:
            return "ole.field", f"{DANGEROUS_FLT[flt]} field disguised as {name}"
        return None

    def disarm_fields(self, fields: list[Field]) -> None:
        for f in fields:
            plc = self.plc_edits[f.plc]
            n = (len(plc) - 4) // 6
            fld_at = 4 * (n + 1) + 2 * f.begin_fld
            end_at = 4 * (n + 1) + 2 * f.end_fld
            flt = plc[fld_at + 1]
            cps, code, nested, glued = self.instruction(f)
            verdict = self.field_verdict(f, code, nested, glued, flt)
            if verdict is None:
                continue
            tid, detail = verdict
            if code.strip().upper().startswith("MACROBUTTON") and f.sep is None:
                # No result: the instruction's display text is what shows. Keep it; the macro name
                # becomes one that cannot exist (underscores), so a double click does nothing.
                self._rename_macro(cps, code)
            else:
                self._rewrite(cps, "QUOTE")
                plc[fld_at + 1] = FLT_QUOTE
                # fLocked set; fZombieEmbed, fResultsDirty and fResultsEdited cleared.
                plc[end_at + 1] = (plc[end_at + 1] | 0x10) & ~0x0E
                if tid in ("ole.object", "ole.activex"):
                    self._object_result(f)
            self.report(tid, self._where(f), "neutralized", detail + " (result kept)")

    def _where(self, f: Field) -> str:
        return ("main text", "footnotes", "headers/footers", "comments", "endnotes", "text boxes",
                "header text boxes")[f.story]

    def _put(self, cp: int, ch: str) -> None:
        pos, width = self.byte_of(cp)
        self.out[pos:pos + width] = ch.encode("cp1252" if width == 1 else "utf-16-le")

    def _rewrite(self, cps: list[int], word: str) -> None:
        """Blank the instruction characters and put `word` at the first place it fits in one run."""
        chars = [" "] * len(cps)
        for i in range(len(cps) - len(word) + 1):
            if cps[i + len(word) - 1] - cps[i] == len(word) - 1:
                chars[i:i + len(word)] = list(word)
                break
        for cp, c in zip(cps, chars, strict=True):
            self._put(cp, c)

    def _rename_macro(self, cps: list[int], code: str) -> None:
        m = re.match(r"(\s*MACROBUTTON\s+)(\S+)", code, re.IGNORECASE)
        if not m:
            self._rewrite(cps, "QUOTE")
            return
        for i in range(m.start(2), m.end(2)):
            self._put(cps[i], "_")

    def _object_result(self, f: Field) -> None:
        """An EMBED field's separator names the ObjectPool storage (sprmCFOle2 + sprmCPicLocation);
        its result is a picture of the object in the Data stream, which stays."""
        if f.sep is None:
            return
        for cp in range(f.sep, f.end):
            ch = self.chpx_of_cp(cp)
            if ch is not None and SPRM_FOLE2 in ch.props and ch.value(self.wd, SPRM_FOLE2):
                self._unole(ch)

    def _unole(self, ch: Chpx) -> None:
        """The character no longer names an OLE object: fOle2, fObj and fSpec cleared, the storage
        number zeroed."""
        for sprm in (SPRM_FOLE2, SPRM_FOBJ, SPRM_FSPEC):
            if sprm in ch.props:
                self.out[ch.props[sprm][0]] = 0
        if SPRM_PIC_LOCATION in ch.props:
            off, _size = ch.props.pop(SPRM_PIC_LOCATION)
            self.out[off:off + 4] = b"\0\0\0\0"
        ch.props.pop(SPRM_FOLE2, None)

    def _is_block(self, off: int) -> bool:
        return 0 <= off and off + 6 <= len(self.data) and struct.unpack_from("<H", self.data, off + 4)[0] == 0x44

    def field_data(self, fields: list[Field]) -> None:
        """Form fields keep their data block (FFData, macros removed later); any other field's data
        block (a hyperlink's moniker, ...) is not needed to show it and is dropped."""
        for f in fields:
            _cps, code, _n, _g = self.instruction(f)
            if not code.strip().upper().startswith(("FORMTEXT", "FORMCHECKBOX", "FORMDROPDOWN")):
                continue
            # Word marks the field's begin character, LibreOffice a special character in the instruction.
            for cp in range(f.begin, f.sep if f.sep is not None else f.end):
                ch = self.chpx_of_cp(cp)
                if ch is not None and ch.value(self.wd, SPRM_FDATA):
                    self.form_chpx.add(ch.at)

    def disarm_objects(self) -> None:
        """Object characters no field claimed lose their object; picture and data references are
        collected for the Data stream."""
        for ch in self.chpxs.values():
            if SPRM_FOLE2 in ch.props and ch.value(self.wd, SPRM_FOLE2):
                self.report("ole.object", "ObjectPool", "removed", "embedded OLE object")
                self._unole(ch)
        for ch in self.chpxs.values():
            loc = ch.value(self.out, SPRM_PIC_LOCATION)
            if loc is None or ch.value(self.out, SPRM_FOLE2):
                continue
            if ch.value(self.out, SPRM_FDATA):
                if ch.at in self.form_chpx:
                    self.data_refs[loc] = "ffdata"
                    continue
                self.out[ch.props[SPRM_FDATA][0]] = 0
            elif self._is_block(loc):
                self.data_refs.setdefault(loc, "picf")
                continue
            # A hyperlink's moniker block, or a reference to nothing: not kept.
            off, _size = ch.props[SPRM_PIC_LOCATION]
            self.out[off:off + 4] = b"\0\0\0\0"

    # ------------------------------------------------------------------ Data stream

    def rebuild_data(self) -> None:
        for off, kind in sorted(self.data_refs.items()):
            if kind == "prc":
                if off + 2 > len(self.data):
                    raise DocError("paragraph properties outside the Data stream")
                cb, = struct.unpack_from("<H", self.data, off)
                if off + 2 + cb > len(self.data):
                    raise DocError("paragraph properties outside the Data stream")
                list(sprms(self.data, off + 2, off + 2 + cb))
                self.data_out[off:off + 2 + cb] = self.data[off:off + 2 + cb]
                continue
            if off + 6 > len(self.data):
                raise DocError("picture outside the Data stream")
            lcb, cb_header = struct.unpack_from("<IH", self.data, off)
            if cb_header != 0x44 or lcb < 0x44 or off + lcb > len(self.data):
                raise DocError("damaged picture header in the Data stream")
            block = bytearray(self.data[off:off + lcb])
            block = self._ffdata(block) if kind == "ffdata" else self._picf(block)
            self.data_out[off:off + len(block)] = block

    def _picf(self, block: bytearray) -> bytearray:
        mm, = struct.unpack_from("<H", block, 6)
        pos = 0x44
        if mm == 0x66:  # MM_SHAPEFILE: a linked picture, its path follows
            cch = block[pos]
            name = bytes(block[pos + 1:pos + 1 + cch]).decode("cp1252", "replace").strip("\0 ")
            if name:  # a blank path (a rebuilt file) links to nothing
                self.report("ole.external_link", "inline picture", "removed", f"linked picture {name[:80]}")
            block[pos + 1:pos + 1 + cch] = b"\0" * cch
            pos += 1 + cch
        elif mm != 0x64:
            raise DocError(f"inline picture of an old kind (mm 0x{mm:X})")
        try:
            recs = parse(bytes(block), pos, len(block))
        except RecordError as exc:
            raise DocError(f"damaged inline picture: {exc}") from None
        found = officeart.Findings()
        try:
            changed = officeart.clean_tree(recs, found, ole_shapes=True)
        except RecordError as exc:
            raise DocError(f"damaged inline picture: {exc}") from None
        self._drawing_findings(found, "inline picture")
        if changed:
            new = bytes(block[:pos]) + b"".join(r.to_bytes() for r in recs)
            block = bytearray(new.ljust(len(block), b"\0"))
            struct.pack_into("<I", block, 0, len(new))
        return block

    def _ffdata(self, block: bytearray) -> bytearray:
        b = bytes(block)
        pos = 0x44
        if pos + 10 > len(b) or struct.unpack_from("<I", b, pos)[0] != 0xFFFFFFFF:
            raise DocError("damaged form field data")
        bits, = struct.unpack_from("<H", b, pos + 4)
        itype = bits & 3
        pos += 10
        strings: list[tuple[int, int]] = []

        def xstz(p: int) -> int:
            if p + 2 > len(b):
                raise DocError("damaged form field data")
            cch, = struct.unpack_from("<H", b, p)
            e = p + 2 + 2 * cch + 2
            if e > len(b):
                raise DocError("damaged form field data")
            strings.append((p, e))
            return e

        pos = xstz(pos)  # name
        if itype == 0:
            pos = xstz(pos)  # default text
        else:
            pos += 2  # wDef
        for _ in range(3):  # format, help, status text
            pos = xstz(pos)
        entry_at = pos
        pos = xstz(pos)
        pos = xstz(pos)
        macros_end = pos
        names = [b[s + 2:e - 2].decode("utf-16-le", "replace") for s, e in strings[-2:]]
        if not any(names):
            return block
        self.report("ole.macro_reference", "form field", "removed", "macro run on entry or exit: " + ", ".join(n for n in names if n))
        new = b[:entry_at] + b"\0" * 8 + b[macros_end:]
        out = bytearray(new.ljust(len(b), b"\0"))
        struct.pack_into("<I", out, 0, len(new))
        return out

    # ------------------------------------------------------------------ drawings

    def _drawing_findings(self, found: officeart.Findings, where: str) -> None:
        for tid, detail in found.items:
            action = "neutralized" if tid == "ole.object" else "removed"
            self.report(tid, where, action, detail)
        self.notes.extend(n for n in found.notes if n not in self.notes)

    def rebuild_dgg(self) -> bytes:
        """OfficeArtContent: the drawing group, then each drawing behind a one-byte label."""
        raw = self.pair_bytes("DggInfo")
        if not raw:
            return b""
        found = officeart.Findings()
        try:
            end = 8 + struct.unpack_from("<I", raw, 4)[0]
            dgg = parse(raw, 0, end)
            drawings = []
            pos = end
            while pos < len(raw):
                end = pos + 9 + struct.unpack_from("<I", raw, pos + 5)[0]
                drawings.append((raw[pos], parse(raw, pos + 1, end)[0]))
                pos = end
            officeart.clean_tree(dgg + [r for _l, r in drawings], found, ole_shapes=True)
            for r in dgg[0].walk():
                if r.type == officeart.FBSE:
                    delay = officeart.fbse_delay(r)
                    if delay is not None:
                        fo, size = delay
                        if fo + size > len(self.wd):
                            raise DocError("a picture points outside the WordDocument stream")
                        officeart.check_blip(parse(self.wd, fo, fo + size)[0])
                        self.copy(fo, size, "picture")
        except (RecordError, struct.error, IndexError) as exc:
            raise DocError(f"damaged drawing data: {exc}") from None
        self._drawing_findings(found, "drawing")
        return dgg[0].to_bytes() + b"".join(bytes([label]) + r.to_bytes() for label, r in drawings)

    # ------------------------------------------------------------------ table stream

    def rebuild_assoc(self) -> bytes:
        """SttbfAssoc becomes 18 empty strings: no attached template, data source or author. The
        old values are read only to say what went; a damaged table is replaced all the same."""
        raw = self.pair_bytes("SttbfAssoc")
        if not raw:
            return b""
        values = _sttb_strings(raw)
        if values is None:
            self.report("ole.metadata", "associated strings", "reported", "damaged associated strings replaced")
            values = []
        if len(values) > 1 and values[1] and _remote(values[1]):
            self.report("ole.remote_template", "attached template", "removed", f"template {values[1][:80]}")
        if len(values) > 8 and values[8]:
            self.report("ole.data_connection", "mail merge", "removed", f"data source {values[8][:80]}")
        if any(values[2:8]):
            self.report("ole.metadata", "associated strings", "reported",
                        "title, subject, keywords, comments, author and last editor not carried over")
        return b"\xff\xff" + struct.pack("<HH", 18, 0) + b"\0\0" * 18

    def list_levels(self) -> bytes:
        """PlfLst and the LVL records that follow it (lcbPlfLst does not count them)."""
        fc, lcb = self.fib.pair("PlfLst")
        raw = self.table
        if lcb < 2:
            return b""
        count, = struct.unpack_from("<H", raw, fc)
        if 2 + 28 * count != lcb:
            raise DocError("list table has a bad size")
        pos = fc + lcb
        for i in range(count):
            simple = raw[fc + 2 + 28 * i + 26] & 1
            for _ in range(1 if simple else 9):
                if pos + 28 > len(raw):
                    raise DocError("list levels run past the table stream")
                cb_chpx, cb_papx = raw[pos + 24], raw[pos + 25]
                pos += 28 + cb_papx + cb_chpx
                if pos + 2 > len(raw):
                    raise DocError("list levels run past the table stream")
                pos += 2 + 2 * struct.unpack_from("<H", raw, pos)[0]
        if pos > len(raw):
            raise DocError("list levels run past the table stream")
        return raw[fc:pos]

    def rebuild_dop(self) -> bytes:
        dop = bytearray(self.pair_bytes("Dop"))
        if dop and dop[0] & 0x04:  # fPMHMainDoc: a mail-merge main document asks for its data source
            dop[0] &= ~0x04 & 0xFF
            self.report("ole.data_connection", "mail merge", "removed", "mail-merge main document")
        return bytes(dop)

    def assemble_table(self) -> bytes:
        special = {
            "Clx": lambda: bytes(self.clx),
            "Dop": self.rebuild_dop,
            "SttbfAssoc": self.rebuild_assoc,
            "DggInfo": lambda: self.dgg,
            "PlcfSed": lambda: self.pair_bytes("PlcfSed"),
            "PlfLst": self.list_levels,
            "PlcfBteChpx": lambda: self.pair_bytes("PlcfBteChpx"),
            "PlcfBtePapx": lambda: self.pair_bytes("PlcfBtePapx"),
        }
        out = bytearray()
        placed: dict[tuple[int, int], int] = {}
        fib = self.fib
        for i in range(fib.count):
            name, fate, _tid, _detail = PAIRS[i]
            fc, lcb = fib.pair_at(i)
            if name == "ModifiedTime":
                fib.set_pair_at(i, 0, 0)
                continue
            if name == "StshfOrig":
                continue  # pointed at the style sheet below
            if fate == DROP or lcb == 0:
                fib.set_pair_at(i, len(out), 0)
                continue
            if fate == KEEP:
                data = self.table[fc:fc + lcb]
                key = (fc, lcb)
                if key in placed:
                    fib.set_pair_at(i, placed[key], lcb)
                    continue
                placed[key] = len(out)
            elif name in self.plc_edits:
                data = bytes(self.plc_edits[name])
            else:
                data = special[name]()
            fib.set_pair_at(i, len(out), lcb if name == "PlfLst" else len(data))
            out += data
            out += b"\0" * (-len(out) % 2)
        fc, lcb = fib.pair("Stshf")
        fib.set_pair_at(INDEX["StshfOrig"], fc, lcb)
        return bytes(out)

    # ------------------------------------------------------------------ driver

    def run(self) -> dict[str, bytes]:
        self.check_pairs()
        self.read_pieces()
        self.read_fkps()
        self.read_sections()
        fields = self.read_fields()
        self.form_chpx: set[int] = set()
        self.field_data(fields)
        self.disarm_fields(fields)
        self.disarm_objects()
        self.dgg = self.rebuild_dgg()
        self.rebuild_data()
        table = self.assemble_table()
        self.out[:self.fib.size] = self.fib.raw
        out = {"WordDocument": bytes(self.out), self.fib.table_name: table, "\x01CompObj": _COMPOBJ}
        if "Data" in self.streams:
            out["Data"] = bytes(self.data_out)
        return out


def _sttb_strings(raw: bytes) -> list[str] | None:
    """The strings of an extended (UTF-16) Sttb, or None when it does not parse."""
    if len(raw) < 6 or raw[:2] != b"\xff\xff":
        return None
    count, extra = struct.unpack_from("<HH", raw, 2)
    pos, values = 6, []
    for _ in range(count):
        if pos + 2 > len(raw):
            return None
        cch, = struct.unpack_from("<H", raw, pos)
        if pos + 2 + 2 * cch + extra > len(raw):
            return None
        values.append(raw[pos + 2:pos + 2 + 2 * cch].decode("utf-16-le", "replace"))
        pos += 2 + 2 * cch + extra
    return values


def _hyperlink_target(args: str) -> str:
    """The address of a HYPERLINK field: the first argument that is neither a switch nor the value
    of \\l (bookmark), \\o (tip) or \\t (frame). Quoted values are never switches (a UNC path
    starts with backslashes too)."""
    skip = False
    for m in _QUOTED.finditer(args):
        quoted, value = m.group(1) is not None, m.group(1) if m.group(1) is not None else m.group(2)
        if skip:
            skip = False
            continue
        if not quoted and value.startswith("\\"):
            skip = value[:2].lower() in ("\\l", "\\o", "\\t")
            continue
        return value
    return ""


def _web(target: str) -> bool:
    t = target.strip()
    return bool(_WEB.match(t)) and "\\" not in t and not any(ord(c) < 0x20 for c in t)


def _remote(path: str) -> bool:
    p = path.strip().replace("/", "\\")
    return bool(re.match(r"(?i)[a-z][a-z0-9+.-]*:(?!\\)", path.strip())) or p.startswith("\\\\") or "://" in path


def rebuild_bytes(streams: dict[str, bytes], hyperlinks: str = "web") -> tuple[dict[str, bytes], list[Found]]:
    """New streams for a .doc (WordDocument, table, Data, CompObj) and what was found and done."""
    r = DocRebuild(streams, hyperlinks)
    return r.run(), r.threats


# ---------------------------------------------------------------------- family interface

ROOT_CLSIDS = ("00020906-0000-0000-C000-000000000046",)  # Word.Document.8
_SOURCE_STREAMS = ("WordDocument", "0Table", "1Table", "Data")


def rebuild(ole, ctx: Context, report: Report) -> dict[str, bytes]:
    """The family's entry point: the new file's streams; findings go to `report`."""
    streams = {name: ole.openstream(name).read() for name in _SOURCE_STREAMS if ole.exists(name)}
    try:
        r = DocRebuild(streams, ctx.options.get("hyperlinks", "web"))
        out, found, notes = r.run(), r.threats, r.notes
    except DocError as exc:
        raise Unrebuildable(str(exc)) from None
    for f in found:
        report.threat(f.id, f.location, f.detail, f.action)
    for n in notes:
        report.note(n)
    return out
