"""Excel 97-2003 (BIFF8): the Workbook stream walked record by record and written again.

Only records on the lists below survive, each with its length checked; the rest are dropped
with a note. Removed: VBA (the storages, by the family), Excel 4.0 macro sheets and VB module
sheets (emptied to a blank hidden worksheet, so that sheet indexes in formulas stay valid),
Auto_Open-style and macro names, links to other workbooks, DDE and OLE links, add-in calls,
formulas with macro-only or dangerous functions or a computed HYPERLINK target (each cell keeps
its cached value: FORMULA becomes NUMBER/LABEL/BOOLERR with the same format), hyperlinks that
are not web or in-file, macros assigned to shapes and controls, query tables and data
connections. OLE objects and ActiveX controls keep their preview as a plain picture. A
veryHidden sheet becomes hidden. Positions are recomputed: BOUNDSHEET8.lbPlyPos and EXTSST;
INDEX and DBCELL (optional lookup aids that LibreOffice does not write either) are dropped.
References: [MS-XLS], [MS-OSHARED] 2.3.7 (hyperlinks), [MS-ODRAW] (drawings). The record stream
is read and written by biff.py, formulas checked by xlsformula.py, links, drawings and objects
by xlsparts.py.
"""
from __future__ import annotations

import re
import struct

from ...numfmt import builtin, format_number
from ..ooxml.const import in_document
from .biff import (
    ARRAY,
    BLANK,
    BOF,
    BOOLERR,
    BOUNDSHEET,
    BRAI,
    CF,
    CONDFMT,
    CRN,
    DBCELL,
    DV,
    DVAL,
    EOF,
    EXTERNNAME,
    EXTERNSHEET,
    EXTSST,
    FILEPASS,
    FORMULA,
    HLINK,
    HLINKTOOLTIP,
    INDEX,
    LABEL,
    LABELSST,
    MSODRAWING,
    MSODRAWINGGROUP,
    MULBLANK,
    MULRK,
    NAME,
    NOTE,
    NUMBER,
    OBJ,
    REFRESHALL,
    RK,
    RSTRING,
    SHRFMLA,
    SST,
    STRING,
    SUPBOOK,
    TABLE,
    TXO,
    WINDOW1,
    WRITEACCESS,
    WSBOOL,
    XCT,
    Rec,
    Substream,
    _Bad,
    _emit,
    _pack_xlstring,
    _substreams,
    _unrebuildable,
    _walk_sst,
    _xlstring,
)
from .xlsformula import (
    _ATP,
    FormulaIssue,
    Links,
    _dangerous_name,
    _web,
    rewrite_formula,
)
from .xlsparts import (
    _check_drawing,
    hyperlink_target,
    rewrite_obj,
)

ROOT_CLSIDS = ("00020820-0000-0000-C000-000000000046",  # Excel.Sheet.8
               "00020810-0000-0000-C000-000000000046")  # Excel.Sheet.5 (LibreOffice writes this)

_CELLS = {NUMBER, LABEL, BOOLERR, RK, MULRK, BLANK, MULBLANK, LABELSST, RSTRING, FORMULA}
_USERSVIEW_BEGIN, _USERSVIEW_END = 0x1AA, 0x1AB

# Workbook globals kept, with (min, max) body length (None: no upper bound but 8224).
_GLOBALS: dict[int, tuple[int, int | None]] = {
    BOF: (16, 20), EOF: (0, 0), 0xE1: (0, 2), 0xC1: (2, 2), 0xE2: (0, 0), WRITEACCESS: (0, 112),
    0x42: (2, 2), 0x161: (2, 2), 0x1C0: (0, 0), 0x13D: (0, None), 0x9C: (2, 2), 0x19: (2, 2), 0x12: (2, 2),
    0x13: (2, 2), 0x1AF: (2, 2), 0x1BC: (2, 2), WINDOW1: (18, 18), 0x40: (2, 2), 0x8D: (2, 2), 0x22: (2, 2),
    0x0E: (2, 2), REFRESHALL: (2, 2), 0xDA: (2, 2), 0x31: (15, None), 0x41E: (5, None), 0xE0: (20, 20),
    0x87C: (12, None), 0x87D: (20, None), 0x88D: (14, None), 0x293: (4, None), 0x892: (14, None),
    0x88E: (20, None), 0x88F: (20, None), 0x890: (20, None), 0x92: (2, None), 0x160: (2, 2), BOUNDSHEET: (8, None),
    0x8C: (4, 4), SUPBOOK: (4, None), EXTERNNAME: (6, None), EXTERNSHEET: (2, None), NAME: (15, None),
    MSODRAWINGGROUP: (8, None), SST: (8, None), EXTSST: (2, None), 0x863: (20, None), 0x896: (16, None),
    0x89B: (16, None), 0x88C: (16, None), 0x89A: (28, None), 0x8A3: (16, None), 0x1C1: (8, 8), 0x86: (0, 0),
    0x1BA: (3, None), 0xDE: (8, 8), XCT: (2, None), CRN: (4, None),
}
# Sheet and chart substream records kept.
_SHEET: dict[int, tuple[int, int | None]] = {
    BOF: (16, 20), EOF: (0, 0), 0x0D: (2, 2), 0x0C: (2, 2), 0x0F: (2, 2), 0x11: (2, 2), 0x10: (8, 8),
    0x5F: (2, 2), 0x2A: (2, 2), 0x2B: (2, 2), 0x82: (2, 2), 0x80: (8, 8), 0x225: (4, 4), WSBOOL: (2, 2),
    0x1B: (2, None), 0x1A: (2, None), 0x14: (0, None), 0x15: (0, None), 0x83: (2, 2), 0x84: (2, 2),
    0x26: (8, 8), 0x27: (8, 8), 0x28: (8, 8), 0x29: (8, 8), 0xA1: (34, 34), 0x89C: (12, None), 0x12: (2, 2),
    0xDD: (2, 2), 0x63: (2, 2), 0x13: (2, 2), 0x55: (2, 2), 0x7D: (10, 12), 0x200: (14, 14), 0x208: (16, 16),
    BLANK: (6, 6), MULBLANK: (8, None), NUMBER: (14, 14), RK: (10, 10), MULRK: (12, None), LABELSST: (10, 10),
    LABEL: (9, None), RSTRING: (9, None), BOOLERR: (8, 8), FORMULA: (22, None), STRING: (3, None),
    ARRAY: (15, None), SHRFMLA: (11, None), TABLE: (16, 16), MSODRAWING: (8, None), OBJ: (4, None),
    TXO: (18, None), NOTE: (8, None), 0x23E: (10, 18), 0x88B: (16, 16), 0xA0: (4, 4), 0x41: (10, 10),
    0x1D: (9, None), 0xE5: (2, None), CONDFMT: (12, None), CF: (6, None), DVAL: (18, 18), DV: (16, None),
    HLINK: (32, None), HLINKTOOLTIP: (10, None), 0x862: (20, None), 0x867: (19, None), 0x868: (27, None),
    0xEF: (4, None), 0x15F: (4, None), 0x9D: (2, 2), 0x9E: (24, None), 0x9B: (0, 0), 0x90: (5, None),
    0x5E: (4, 4), 0xED: (8, None), 0x1BA: (3, None), 0x19: (2, 2), 0x874: (12, None), 0x33: (2, 2),
    0x87E: (12, None), 0x99: (2, 2), 0xE9: (8, None),
    # Chart FRT records (start/end blocks, label extensions, layouts) kept in charts.
    0x850: (8, None), 0x851: (12, None), 0x852: (12, None), 0x853: (12, None), 0x854: (12, None),
    0x855: (12, None), 0x856: (16, None), 0x857: (14, None), 0x85A: (12, None), 0x86A: (12, None),
    0x86B: (12, None), 0x89D: (12, None), 0x89E: (12, None), 0x8A4: (12, None), 0x8A5: (12, None),
    0x8A6: (12, None), 0x8A7: (12, None),
}
# Chart records 0x1001-0x10FF are kept in chart substreams (length only bounded by the record size).
_CHART_RANGE = range(0x1001, 0x1100)
# Cell records of fixed size (and ROW), checked on a fast path: size, and column <= IV for cells.
_FAST = {NUMBER: 14, RK: 10, LABELSST: 10, BLANK: 6, BOOLERR: 8, 0x208: 16}
# Dropped without a note: lookup aids we do not recompute, identifying or machine-specific data.
_QUIET = {INDEX, DBCELL, 0x4D, 0x5B, _USERSVIEW_BEGIN, _USERSVIEW_END}
# Dropped and reported: (threat id, detail).
_ACTIVE = {
    0xD3: ("ole.vba", "VBA project marker (OBPROJ)"), 0x897: ("ole.vba", "VBA type library reference"),
    0x1AD: ("ole.external_link", "query table (external data)"), 0x802: ("ole.external_link", "query table"),
    0x803: ("ole.external_link", "query table"), 0x806: ("ole.external_link", "query table"),
    0x807: ("ole.external_link", "query table"), 0x876: ("ole.external_link", "data connection"),
    0x801: ("ole.external_link", "publish-to-web target"), 0x35: ("ole.dde", "DDE link in chart"),
    0x51: ("ole.external_link", "data consolidation reference"), 0x858: ("ole.external_link", "pivot chart link"),
}

# --- the rebuild -----------------------------------------------------------------------------

class XlsRebuild:
    def __init__(self, data: bytes, ctx, report):
        self.data = data
        self.ctx = ctx
        self.report = report
        self.links = Links()
        self.drop_links = ctx.options.get("hyperlinks", "web") == "drop"
        self.sst_starts: list[tuple[int, int]] = []
        self._extname_i = 0

    # globals ---------------------------------------------------------------------------------
    def _globals(self, sub: Substream) -> list[Rec]:
        recs = [r for r in sub.recs]
        self._plan_links(recs)
        out: list[Rec] = []
        skip_externnames = False
        addin_sb = None
        sb_index = -1
        name_index = 0
        for r in recs:
            rt = r.rt
            if rt == FILEPASS:
                raise _unrebuildable("the workbook is still encrypted")
            if rt == SUPBOOK:
                sb_index += 1
                keep = self.sb_keep.get(sb_index, False)
                skip_externnames = not keep
                addin_sb = sb_index if self.sb_kind.get(sb_index) == "addin" else None
                self._extname_i = 0
                if keep:
                    out.append(r)
                continue
            if rt in (EXTERNNAME, XCT, CRN):
                if rt == EXTERNNAME and addin_sb is not None and not skip_externnames:
                    self._extname_i += 1
                    if (addin_sb, self._extname_i) in self.links.addin_names:
                        out.append(r)
                continue
            if rt == EXTERNSHEET:
                if self.new_xti:
                    out.append(Rec(rt, self._externsheet()))
                continue
            if rt == NAME:
                name_index += 1
                rec = self._name(r, name_index)
                if rec is not None:
                    out.append(rec)
                continue
            if rt == BOUNDSHEET:
                out.append(r)  # rewritten once the sheets are known
                continue
            if rt == SST:
                try:
                    _strings, self.sst_starts = _walk_sst(r, decode=False)
                except (_Bad, struct.error) as exc:
                    raise _unrebuildable(f"shared strings: {exc}") from None
                out.append(r)
                continue
            if rt == EXTSST:
                continue  # recomputed
            if rt == MSODRAWINGGROUP:
                out.append(r)
                continue
            if rt == WRITEACCESS:
                out.append(Rec(rt, b" " * 112 if len(r.body) == 112 else b""))
                continue
            if rt == REFRESHALL:
                out.append(Rec(rt, b"\0\0"))  # never refresh external data on open
                continue
            kept = self._generic(r, _GLOBALS, "workbook")
            if kept is not None:
                out.append(kept)
        self._check_group_drawing(out)
        return out

    def _check_group_drawing(self, recs: list[Rec]) -> None:
        for r in recs:
            if r.rt == MSODRAWINGGROUP:
                frags = [r.body] + r.conts
                try:
                    new, found = _check_drawing(frags)
                except (_Bad, struct.error) as exc:
                    raise _unrebuildable(f"drawing group: {exc}") from None
                r.body, r.conts = new[0], new[1:]
                self._drawing_findings(found, "workbook")

    def _drawing_findings(self, found: list[str], where: str) -> None:
        if "shape_hyperlink" in found:
            raise _unrebuildable("a shape carries a hyperlink")
        if "linked_picture" in found:
            self.report.threat("ole.external_link", where, "picture linked to an outside file kept as embedded")

    def _plan_links(self, recs: list[Rec]) -> None:
        """Decide which SUPBOOKs, add-in names and XTIs survive, and number them anew."""
        self.sb_kind: dict[int, str] = {}
        self.sb_keep: dict[int, bool] = {}
        xtis: list[tuple[int, int, int]] = []
        sb, ext_i = -1, 0
        for r in recs:
            if r.rt == SUPBOOK:
                sb += 1
                ext_i = 0
                body = r.joined()
                ctab, cch = struct.unpack_from("<HH", body, 0)
                if cch == 0x0401:
                    self.sb_kind[sb] = "self"
                    self.sb_keep[sb] = True
                elif cch == 0x3A01:
                    self.sb_kind[sb] = "addin"
                    self.sb_keep[sb] = False  # kept below if one of its names is kept
                else:
                    try:
                        path, _end = _xlstring(body, 2)
                    except _Bad:
                        path = ""
                    dde = "\x03" in path
                    self.sb_kind[sb] = "dde" if dde else "external"
                    self.sb_keep[sb] = False
                    shown = path.replace("\x01", "").replace("\x02", "/").replace("\x03", "|")[:120]
                    self.report.threat("ole.dde" if dde else "ole.external_link", f"link {shown}",
                                       "DDE/OLE link" if dde else "link to another workbook (cached values kept)")
            elif r.rt == EXTERNNAME and sb >= 0:
                ext_i += 1
                body = r.joined()
                flags = struct.unpack_from("<H", body, 0)[0]
                if self.sb_kind.get(sb) == "addin":
                    try:
                        name, _e = _xlstring(body, 6, 1)
                    except _Bad:
                        name = ""
                    if _ATP.match(name) and not _dangerous_name(name):
                        self.sb_keep[sb] = True
                        self.links.addin_names[(sb, ext_i)] = 0  # numbered below
                        self.links.addin_text[(sb, ext_i)] = name
                    else:
                        self.report.threat("ole.external_link", f"add-in function {name[:60]}",
                                           "call into an add-in (cached values kept)")
                elif flags & 0x18:
                    self.report.threat("ole.dde", "OLE link", "OLE object link")
            elif r.rt == EXTERNSHEET:
                body = r.joined()
                count = struct.unpack_from("<H", body, 0)[0]
                if 2 + 6 * count > len(body):
                    raise _unrebuildable("EXTERNSHEET overruns")
                xtis = [struct.unpack_from("<HHH", body, 2 + 6 * i) for i in range(count)]
        # Renumber supbooks, add-in names and XTIs.
        new_sb, n = {}, 0
        for i in range(sb + 1):
            if self.sb_keep.get(i):
                new_sb[i] = n
                n += 1
        per_sb: dict[int, int] = {}
        for key in sorted(self.links.addin_names):
            per_sb[key[0]] = per_sb.get(key[0], 0) + 1
            self.links.addin_names[key] = per_sb[key[0]]
        self.new_xti: list[tuple[int, int, int]] = []
        for i, (isb, first, last) in enumerate(xtis):
            kind = self.sb_kind.get(isb, "external")
            self.links.xti_kind[i] = kind
            self.links.xti_supbook[i] = isb
            if isb in new_sb:
                self.links.xti[i] = len(self.new_xti)
                self.new_xti.append((new_sb[isb], first, last))
        # Names: which survive, numbered in order (a name may refer to a later one: settle by passes).
        self._names_plan(recs)

    def _name_info(self, body: bytes) -> tuple[int, str, int, int]:
        flags, _key, cch, cce = struct.unpack_from("<HBBH", body, 0)
        text, end = "", 14
        if 15 + cch > len(body) + 1:
            raise _Bad("short NAME")
        high = body[14] & 1
        raw = body[15:15 + cch * (2 if high else 1)]
        text = raw.decode("utf-16-le", "replace") if high else raw.decode("latin-1")
        end = 15 + len(raw)
        return flags, text, end, cce

    def _names_plan(self, recs: list[Rec]) -> None:
        bodies = [r.joined() for r in recs if r.rt == NAME]
        alive = set(range(1, len(bodies) + 1))
        why: dict[int, tuple[str, str]] = {}
        infos = {}
        for i, body in enumerate(bodies, 1):
            try:
                flags, text, end, cce = self._name_info(body)
            except (_Bad, struct.error):
                alive.discard(i)
                why[i] = ("ole.formula", "unreadable name")
                continue
            infos[i] = (flags, text, end, cce)
            label = _builtin_label(flags, text)
            self.links.name_text[i] = label
            if flags & 0x0020 and text[:1] in ("\x01", "\x02", "\x0a", "\x0b"):
                alive.discard(i)
                why[i] = ("ole.xlm", f"auto-run name {label}")
            elif flags & 0x000E and not label.lower().startswith("_xlfn."):  # fFunc/fOB/fProc: a macro
                alive.discard(i)
                why[i] = ("ole.xlm", f"macro name {label}")
            elif re.match(r"(?i)^(?:_xlnm\.)?auto_(?:open|close|activate|deactivate)", label):
                alive.discard(i)
                why[i] = ("ole.xlm", f"auto-run name {label}")
            elif label.lower().startswith("_xlfn.") and _dangerous_name(label[6:]):
                alive.discard(i)
                why[i] = ("ole.dangerous_function", f"function {label[6:]}")
        self.name_rgce: dict[int, bytes] = {}
        while True:  # a name may use another: drop until nothing more has to go
            self.links.names = {old: k for k, old in enumerate(sorted(alive), 1)}
            self.links.removed = {i: why[i][0] for i in why}
            failed = []
            for i in sorted(alive):
                _flags, _text, end, cce = infos[i]
                try:
                    self.name_rgce[i] = rewrite_formula(bodies[i - 1][end:end + cce], self.links)
                except FormulaIssue as exc:
                    failed.append(i)
                    why[i] = (exc.tid, f"{exc.detail} in name {self.links.name_text[i]}")
            if not failed:
                break
            alive.difference_update(failed)
        for i, (tid, detail) in sorted(why.items()):
            self.report.threat(tid, f"name {self.links.name_text.get(i, i)}", detail)

    def _name(self, r: Rec, index: int) -> Rec | None:
        if index not in self.links.names:
            return None
        body = r.joined()
        flags, text, end, cce = self._name_info(body)
        rgce = self.name_rgce[index]
        return Rec(NAME, body[:end] + rgce + body[end + cce:])  # over 8224 bytes: _emit splits it

    def _externsheet(self) -> bytes:
        return struct.pack("<H", len(self.new_xti)) + b"".join(struct.pack("<HHH", *x) for x in self.new_xti)

    # records of any substream ----------------------------------------------------------------
    def _generic(self, r: Rec, table: dict, where: str, chart: bool = False) -> Rec | None:
        rt = r.rt
        if rt in _ACTIVE:
            tid, detail = _ACTIVE[rt]
            self.report.threat(tid, where, detail)
            return None
        if rt in _QUIET or rt == 0 and not any(r.body):  # rt 0: where msoffcrypto blanked FILEPASS
            return None
        limits = table.get(rt)
        if limits is None and chart and rt in _CHART_RANGE:
            limits = (0, None)
        if limits is None:
            self.report.note(f"record {rt:#06x} not kept ({where})")
            return None
        lo, hi = limits
        size = r.size()
        if size < lo or (hi is not None and size > hi):
            self.report.note(f"record {rt:#06x} with a bad length dropped ({where})")
            return None
        return r

    # sheets ----------------------------------------------------------------------------------
    def _sheet(self, sub: Substream, name: str, macro: bool) -> list[Rec]:
        where = f"sheet {name}"
        if macro:
            return _blank_sheet()
        out: list[Rec] = []
        recs = sub.recs
        # Shared formulas, arrays and tables that must go: their cells become values.
        bad_shared: set[tuple[int, int]] = set()
        for r in recs:
            if r.rt in (SHRFMLA, ARRAY):
                body = r.joined()
                off = 8 if r.rt == SHRFMLA else 12
                cce = struct.unpack_from("<H", body, off)[0] if len(body) >= off + 2 else -1
                try:
                    if cce < 0 or off + 2 + cce > len(body):
                        raise FormulaIssue("ole.formula", "bad shared formula")
                    rewrite_formula(body[off + 2:off + 2 + cce], self.links)
                except FormulaIssue as exc:
                    rw, _rl, col = struct.unpack_from("<HHB", body, 0)
                    bad_shared.add((rw, col))
                    self.report.threat(exc.tid, where, exc.detail, action="neutralized")
        drawings: list[Rec] = []
        depth = 0
        chart = sub.dt == 0x0020
        i = 0
        drop_tooltip = False
        fast = _FAST
        while i < len(recs):
            r = recs[i]
            i += 1
            rt = r.rt
            want = fast.get(rt)
            if want is not None and not r.conts:  # the common cells, fixed size: checked here, cheaply
                body = r.body
                if len(body) == want and (rt == 0x208 or body[3] == 0):
                    out.append(r)
                else:
                    self.report.note(f"record {rt:#06x} with a bad length or column dropped ({where})")
                continue
            if rt == _USERSVIEW_BEGIN:  # a custom view: its records would read as the sheet's own
                while i < len(recs) and recs[i].rt not in (_USERSVIEW_END, EOF):
                    i += 1
                self.report.note(f"custom views not kept ({where})")
                continue
            if rt == BOF:
                depth += 1
                if depth > 1:
                    chart = True
                out.append(r)
                continue
            if rt == EOF:
                depth -= 1
                if depth == 1:
                    chart = sub.dt == 0x0020
                out.append(r)
                continue
            if rt == FORMULA:
                nxt = recs[i] if i < len(recs) else None
                new, consumed = self._formula(r, nxt, recs[i + 1] if i + 1 < len(recs) else None, bad_shared, where)
                i += consumed
                out.extend(new)
                continue
            if rt in (SHRFMLA, ARRAY):
                body = r.joined()
                rw, _rl, col = struct.unpack_from("<HHB", body, 0)
                if (rw, col) in bad_shared:
                    continue
                off = 8 if rt == SHRFMLA else 12
                cce = struct.unpack_from("<H", body, off)[0]
                rgce = rewrite_formula(body[off + 2:off + 2 + cce], self.links)
                out.append(Rec(rt, body[:off + 2] + rgce + body[off + 2 + cce:]))
                continue
            if rt == STRING:  # kept only after its FORMULA (and that formula's SHRFMLA/ARRAY/TABLE)
                if out and (out[-1].rt == FORMULA or out[-1].rt in (SHRFMLA, ARRAY, TABLE) and len(out) > 1
                            and out[-2].rt == FORMULA):
                    out.append(r)
                continue
            if rt == HLINK:
                keep = self._hlink(r, where)
                drop_tooltip = not keep
                if keep:
                    out.append(r)
                continue
            if rt == HLINKTOOLTIP:
                if not drop_tooltip:
                    out.append(r)
                continue
            if rt == OBJ:
                try:
                    body = rewrite_obj(r.joined(), self.links, self.report, where)
                except (_Bad, struct.error):
                    body = None
                if body is None:
                    raise _unrebuildable(f"an object in {where} cannot be read")
                out.append(Rec(OBJ, body))
                continue
            if rt == MSODRAWING:
                drawings.append(r)
                out.append(r)
                continue
            if rt == CF:
                new = self._cf(r, where)
                if new is not None:
                    out.append(new)
                continue
            if rt == DV:
                new = self._dv(r, where)
                if new is not None:
                    out.append(new)
                continue
            if rt == BRAI:
                out.append(self._brai(r, where))
                continue
            if rt in _CELLS and len(r.body) >= 4:
                col = struct.unpack_from("<H", r.body, 2)[0]
                if col > 255:
                    self.report.note(f"cell beyond column IV dropped ({where})")
                    continue
            kept = self._generic(r, _SHEET, where, chart)
            if kept is not None:
                out.append(kept)
        if drawings:
            frags = [f for d in drawings for f in [d.body, *d.conts]]
            try:
                new, found = _check_drawing(frags)
            except (_Bad, struct.error) as exc:
                raise _unrebuildable(f"drawing in {where}: {exc}") from None
            k = 0
            for d in drawings:
                d.body, d.conts = new[k], new[k + 1:k + 1 + len(d.conts)]
                k += 1 + len(d.conts)
            self._drawing_findings(found, where)
        return _fix_condfmt_counts(out)

    def _formula(self, r: Rec, nxt: Rec | None, nxt2: Rec | None, bad_shared: set, where: str
                 ) -> tuple[list[Rec], int]:
        body = r.joined()
        if len(body) < 22:
            self.report.note(f"short formula dropped ({where})")
            return [], 0
        rw, col, ixfe = struct.unpack_from("<HHH", body, 0)
        value = body[6:14]
        cce = struct.unpack_from("<H", body, 20)[0]
        rgce = body[22:22 + cce]
        if len(rgce) != cce or col > 255:
            self.report.note(f"bad formula dropped ({where})")
            return [], 0
        issue: FormulaIssue | None = None
        new_rgce = rgce
        if rgce[:1] in (b"\x01", b"\x02") and len(rgce) >= 5:  # ptgExp/ptgTbl: shared formula, array, table
            anchor = struct.unpack_from("<HH", rgce, 1)
            if anchor in bad_shared:
                issue = FormulaIssue("ole.formula", "shared formula removed")
        else:
            try:
                new_rgce = rewrite_formula(rgce, self.links)
            except FormulaIssue as exc:
                issue = exc
        # The STRING record with the cached text follows, possibly after SHRFMLA/ARRAY/TABLE.
        string_rec, string_at = None, 0
        if nxt is not None and nxt.rt == STRING:
            string_rec, string_at = nxt, 1
        elif nxt is not None and nxt.rt in (SHRFMLA, ARRAY, TABLE) and nxt2 is not None and nxt2.rt == STRING:
            string_rec, string_at = nxt2, 2
        if issue is None:
            out = [Rec(FORMULA, body[:22] + new_rgce + body[22 + cce:])]
            if string_at == 1:
                out.append(string_rec)
                return out, 1
            return out, 0  # a STRING after SHRFMLA/ARRAY is picked up when that record is handled
        self.report.threat(issue.tid, where, f"{issue.detail}; cached value kept", action="neutralized")
        consumed = 1 if string_at == 1 else 0
        if value[6:8] == b"\xff\xff":
            kind = value[0]
            if kind == 0x00:
                text = ""
                if string_rec is not None:
                    try:
                        text, _e = _xlstring(string_rec.joined(), 0)
                    except _Bad:
                        text = ""
                return [Rec(LABEL, struct.pack("<HHH", rw, col, ixfe) + _pack_xlstring(text[:32767]))], consumed
            if kind in (0x01, 0x02):
                return [Rec(BOOLERR, struct.pack("<HHHBB", rw, col, ixfe, value[2], kind - 1))], consumed
            return [Rec(LABEL, struct.pack("<HHH", rw, col, ixfe) + _pack_xlstring(""))], consumed
        return [Rec(NUMBER, struct.pack("<HHH", rw, col, ixfe) + value)], consumed

    def _hlink(self, r: Rec, where: str) -> bool:
        try:
            kind, target = hyperlink_target(r.joined())
        except (_Bad, struct.error):
            kind, target = "other", "unreadable"
        if kind == "location" and in_document("#" + target):
            return True
        if kind == "url" and _web(target) and not self.drop_links:
            return True
        self.report.threat("ole.hyperlink", where, f"link to {target[:80]}")
        return False

    def _cf(self, r: Rec, where: str) -> Rec | None:
        body = r.joined()
        cce1, cce2 = struct.unpack_from("<HH", body, 2)
        if 6 + cce1 + cce2 > len(body):
            self.report.note(f"bad conditional format dropped ({where})")
            return None
        head = body[:len(body) - cce1 - cce2]
        try:
            f1 = rewrite_formula(body[len(head):len(head) + cce1], self.links)
            f2 = rewrite_formula(body[len(head) + cce1:], self.links)
        except FormulaIssue as exc:
            self.report.threat(exc.tid, where, f"{exc.detail} in a conditional format")
            return None
        return Rec(CF, head + f1 + f2)

    def _dv(self, r: Rec, where: str) -> Rec | None:
        body = r.joined()
        try:
            pos = 4
            for _ in range(4):
                _t, pos = _xlstring(body, pos)
            out = bytearray(body[:pos])
            for _ in range(2):
                cce = struct.unpack_from("<H", body, pos)[0]
                rgce = body[pos + 4:pos + 4 + cce]
                if len(rgce) != cce:
                    raise _Bad("bad validation formula")
                out += body[pos:pos + 4] + rewrite_formula(rgce, self.links)
                pos += 4 + cce
            out += body[pos:]
        except FormulaIssue as exc:
            self.report.threat(exc.tid, where, f"{exc.detail} in a data validation rule")
            return None
        except (_Bad, struct.error):
            self.report.note(f"bad data validation dropped ({where})")
            return None
        return Rec(DV, bytes(out))

    def _brai(self, r: Rec, where: str) -> Rec:
        body = r.joined()
        if len(body) < 8:
            return Rec(BRAI, body[:2] + b"\x01" + b"\0" * 5)
        cce = struct.unpack_from("<H", body, 6)[0]
        try:
            rgce = rewrite_formula(body[8:8 + cce], self.links)
            if len(body[8:8 + cce]) != cce:
                raise FormulaIssue("ole.formula", "bad chart reference")
        except FormulaIssue as exc:
            self.report.threat(exc.tid, where, f"{exc.detail} in a chart (cached values kept)",
                               action="neutralized")
            return Rec(BRAI, body[:1] + b"\x01" + body[2:6] + b"\0\0")  # literal data: the cached values
        return Rec(BRAI, body[:8] + rgce + body[8 + cce:])

    # the whole stream -------------------------------------------------------------------------
    def run(self) -> bytes:
        subs = _substreams(self.data)
        glob = self._globals(subs[0])
        by_pos = {s.start: s for s in subs[1:]}
        sheets_out: list[list[Rec]] = []
        bound = [r for r in glob if r.rt == BOUNDSHEET]
        for b in bound:
            body = b.body
            pos, hs, dt = struct.unpack_from("<IBB", body, 0)
            try:
                name, _e = _xlstring(body, 6, 1)
            except _Bad:
                raise _unrebuildable("unreadable sheet name") from None
            sub = by_pos.get(pos)
            if sub is None:
                raise _unrebuildable(f"sheet {name} is not where the workbook says")
            state = hs & 0x03
            macro = dt in (0x01, 0x06)
            if dt == 0x01:
                self.report.threat("ole.xlm", f"sheet {name}", "Excel 4.0 (XLM) macro sheet emptied")
            elif dt == 0x06:
                self.report.threat("ole.vba", f"sheet {name}", "VB module sheet emptied")
            if state == 2:
                self.report.threat("ole.hidden_sheet", f"sheet {name}", "very hidden sheet made hidden",
                                   action="converted")
                state = 1
            elif state == 1:
                self.report.threat("ole.hidden_sheet", f"sheet {name}", "hidden sheet (still hidden)",
                                   action="reported")
            if macro:
                state = max(state, 1)
                dt = 0x00
            b.body = struct.pack("<IBB", 0, (hs & 0xFC) | state, dt) + body[6:]
            sheets_out.append(self._sheet(sub, name, macro))
            self.ctx.check_time()
        if len(by_pos) != len(bound):
            self.report.note("substreams not listed as sheets dropped")
        _fix_active_tab(glob, bound)
        return _serialize(glob, bound, sheets_out, self.sst_starts)


def _builtin_label(flags: int, text: str) -> str:
    builtin = {0: "Consolidate_Area", 1: "Auto_Open", 2: "Auto_Close", 3: "Extract", 4: "Database", 5: "Criteria",
               6: "Print_Area", 7: "Print_Titles", 8: "Recorder", 9: "Data_Form", 10: "Auto_Activate",
               11: "Auto_Deactivate", 12: "Sheet_Title", 13: "_FilterDatabase"}
    if flags & 0x0020 and text:
        return builtin.get(ord(text[0]), f"builtin {ord(text[0])}")
    return text


def _blank_sheet() -> list[Rec]:
    """An empty worksheet in place of a macro sheet, so that sheet numbers stay as they were."""
    return [Rec(BOF, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 0x06)),
            Rec(0x200, struct.pack("<IIHHH", 0, 0, 0, 0, 0)),
            Rec(0x23E, struct.pack("<HHHHH", 0x06B6, 0, 0, 0x40, 0) + b"\0" * 8),
            Rec(EOF, b"")]


def _fix_condfmt_counts(recs: list[Rec]) -> list[Rec]:
    """CONDFMT says how many CF records follow; keep it true after some were dropped."""
    if not any(r.rt in (CONDFMT, DVAL) for r in recs):
        return recs
    out: list[Rec] = []
    i = 0
    while i < len(recs):
        r = recs[i]
        if r.rt == CONDFMT:
            j = i + 1
            while j < len(recs) and recs[j].rt == CF:
                j += 1
            n = j - i - 1
            if n:
                body = bytearray(r.joined())
                struct.pack_into("<H", body, 0, n)
                out.append(Rec(CONDFMT, bytes(body)))
                out.extend(recs[i + 1:j])
            i = j
            continue
        if r.rt == DVAL:
            j = i + 1
            while j < len(recs) and recs[j].rt == DV:
                j += 1
            body = bytearray(r.body)
            struct.pack_into("<I", body, 14, j - i - 1)
            if j - i - 1:
                out.append(Rec(DVAL, bytes(body)))
                out.extend(recs[i + 1:j])
            i = j
            continue
        out.append(r)
        i += 1
    return [r for r in out if r.rt >= 0]


def _fix_active_tab(glob: list[Rec], bound: list[Rec]) -> None:
    """The active and first visible tab must be visible sheets."""
    visible = [i for i, b in enumerate(bound) if b.body[4] & 0x03 == 0]
    for r in glob:
        if r.rt == WINDOW1 and len(r.body) == 18 and visible:
            itab_cur, itab_first = struct.unpack_from("<HH", r.body, 10)
            body = bytearray(r.body)
            if itab_cur not in visible:
                struct.pack_into("<H", body, 10, visible[0])
            if itab_first >= len(bound) or itab_first > visible[-1]:
                struct.pack_into("<H", body, 12, visible[0])
            r.body = bytes(body)


def _serialize(glob: list[Rec], bound: list[Rec], sheets: list[list[Rec]], starts: list[tuple[int, int]]
               ) -> bytes:
    # EXTSST after the SST: a bucket every `dsst` strings, pointing at where each bucket's first string starts.
    sst = next((r for r in glob if r.rt == SST), None)
    if sst is not None:
        dsst = max(8, -(-len(starts) // 128))
        buckets = starts[::dsst]
        ext = Rec(EXTSST, struct.pack("<H", dsst) + b"\0" * (8 * len(buckets)))
        glob = list(glob)
        glob.insert(next(i for i, r in enumerate(glob) if r is sst) + 1, ext)
    out = bytearray()
    where: dict[int, list[int]] = {}
    _emit(glob, out, where)
    sheet_pos = []
    for recs in sheets:
        sheet_pos.append(len(out))
        _emit(recs, out)
    for b, pos in zip(bound, sheet_pos, strict=True):
        at = where[id(b)][0]
        struct.pack_into("<I", out, at + 4, pos)
    if sst is not None:
        frag_at = where[id(sst)]
        at = where[id(ext)][0] + 4 + 2
        for k, (frag, off) in enumerate(buckets):
            head = frag_at[frag]
            struct.pack_into("<IHH", out, at + 8 * k, head + 4 + off, 4 + off, 0)
    return bytes(out)


def rebuild(ole, ctx, report) -> dict[str, bytes]:
    """The Workbook stream rebuilt (see the module docstring); the family adds the property streams."""
    name = "Workbook" if ole.exists("Workbook") else None
    if name is None:
        if ole.exists("Book"):
            raise _unrebuildable("Excel 5.0/95 workbook (BIFF5)")
        raise _unrebuildable("no Workbook stream")
    data = ole.openstream(name).read()
    try:
        stream = XlsRebuild(data, ctx, report).run()
    except (_Bad, struct.error, FormulaIssue) as exc:
        raise _unrebuildable(f"workbook structure: {exc}") from None
    if len(stream) < 4096:  # Excel expects the Workbook stream outside the mini stream
        stream += b"\0" * (4096 - len(stream))
    return {"Workbook": stream}


# --- text rendition --------------------------------------------------------------------------

def _rk(v: int) -> float:
    """An RkNumber: a 30-bit integer or the top of a double, possibly divided by 100."""
    if v & 0x02:
        n: float = struct.unpack("<i", struct.pack("<I", v & 0xFFFFFFFC))[0] >> 2
    else:
        n = struct.unpack("<d", struct.pack("<Q", (v & 0xFFFFFFFC) << 32))[0]
    return n / 100 if v & 0x01 else n


_FORMAT, _XF, _DATEMODE = 0x041E, 0x00E0, 0x0022


class _Shown:
    """Number formats of the workbook globals: what a cell with style `ixfe` shows for a number."""

    def __init__(self) -> None:
        self.codes: dict[int, str] = {}  # FORMAT records: ifmt -> code
        self.xf: list[int] = []  # XF records in order: ifmt
        self.date1904 = False

    def read(self, r: Rec) -> None:
        try:
            if r.rt == _FORMAT:
                self.codes[struct.unpack_from("<H", r.body, 0)[0]] = _xlstring(r.joined(), 2)[0]
            elif r.rt == _XF and len(r.body) >= 4:
                self.xf.append(struct.unpack_from("<H", r.body, 2)[0])
            elif r.rt == _DATEMODE and len(r.body) >= 2:
                self.date1904 = struct.unpack_from("<H", r.body, 0)[0] == 1
        except (_Bad, struct.error):
            pass

    def __call__(self, v: float, ixfe: int) -> str:
        ifmt = self.xf[ixfe] if ixfe < len(self.xf) else 0
        return format_number(v, self.codes.get(ifmt) or builtin(ifmt), self.date1904)


def _cells(r: Rec, sst: list[str], pending: list, shown: _Shown) -> list[tuple[int, int, str]]:
    """(row, column, text) of a cell record, numbers as their format shows them; cached values for formulas."""
    rt, b = r.rt, r.body
    if rt == LABELSST:
        rw, col, _x, i = struct.unpack_from("<HHHI", b, 0)
        return [(rw, col, sst[i] if i < len(sst) else "")]
    if rt in (LABEL, RSTRING):
        rw, col = struct.unpack_from("<HH", b, 0)
        return [(rw, col, _xlstring(r.joined(), 6)[0])]
    if rt == NUMBER:
        rw, col, x, v = struct.unpack_from("<HHHd", b, 0)
        return [(rw, col, shown(v, x))]
    if rt == RK:
        rw, col, x, v = struct.unpack_from("<HHHI", b, 0)
        return [(rw, col, shown(_rk(v), x))]
    if rt == MULRK:
        rw, first = struct.unpack_from("<HH", b, 0)
        n = (len(b) - 6) // 6
        return [(rw, first + k, shown(_rk(struct.unpack_from("<I", b, 4 + 6 * k + 2)[0]),
                                      struct.unpack_from("<H", b, 4 + 6 * k)[0])) for k in range(n)]
    if rt == BOOLERR:
        rw, col, _x, val, err = struct.unpack_from("<HHHBB", b, 0)
        return [] if err else [(rw, col, "TRUE" if val else "FALSE")]
    if rt == FORMULA:
        rw, col, x = struct.unpack_from("<HHH", b, 0)
        value = b[6:14]
        if value[6:8] != b"\xff\xff":
            return [(rw, col, shown(struct.unpack("<d", value)[0], x))]
        if value[0] == 0x00:
            pending.append((rw, col))  # the text is in the STRING record that follows
        elif value[0] == 0x01:
            return [(rw, col, "TRUE" if value[2] else "FALSE")]
        return []
    if rt == STRING and pending:
        rw, col = pending.pop()
        return [(rw, col, _xlstring(r.joined(), 0)[0])]
    return []


def text(ole, ctx) -> str:
    """The text rendition, read by the walker (no LibreOffice): see workbook_text."""
    return workbook_text(ole.openstream("Workbook").read())


def workbook_text(data: bytes) -> str:
    """Every sheet's cell values in row order, tab-separated, as the OOXML rendition writes them."""
    subs = _substreams(data)
    sst: list[str] = []
    sheets: list[tuple[int, str]] = []
    shown = _Shown()
    for r in subs[0].recs:
        shown.read(r)
        if r.rt == SST:
            try:
                sst = _walk_sst(r)[0]
            except (_Bad, struct.error):
                sst = []
        elif r.rt == BOUNDSHEET and len(r.body) >= 8:
            pos, _hs, dt = struct.unpack_from("<IBB", r.body, 0)
            try:
                name = _xlstring(r.body, 6, 1)[0]
            except _Bad:
                name = ""
            if dt == 0x00:
                sheets.append((pos, name))
    by_pos = {s.start: s for s in subs[1:]}
    out: list[str] = []
    for pos, name in sheets:
        out.append(f"--- シート: {name} ---")
        sub = by_pos.get(pos)
        if sub is None:
            continue
        rows: dict[int, dict[int, str]] = {}
        pending: list = []
        depth = 0
        for r in sub.recs:
            depth += (r.rt == BOF) - (r.rt == EOF)
            if depth != 1:
                continue  # embedded charts hold cached series values, not cells
            try:
                found = _cells(r, sst, pending, shown)
            except (_Bad, struct.error):
                continue
            for rw, col, value in found:
                if value and col < 256:
                    rows.setdefault(rw, {})[col] = value.replace("\t", " ").replace("\n", " ")
        for rw in sorted(rows):
            cells = rows[rw]
            out.append("\t".join(cells.get(c, "") for c in range(max(cells) + 1)))
    return "\n".join(out)
