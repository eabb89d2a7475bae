"""What LibreOffice's OOXML export of a legacy file loses, carried over from the original (convert mode and
the fallback for damaged files).

The values are read from the original with the legacy walkers (docfib.py, biff.py) and patched into the
converted package before the OOXML rebuild, which then disarms it as any other OOXML file:
- .doc: the DOP's fDontUseHTMLAutoSpacing ([MS-DOC] 2.7.11 Copts) becomes w:doNotUseHTMLParagraphAutoSpacing
  (whether the spacing between paragraphs adds up), which the export leaves out.
- .xls: sheet visibility from BOUNDSHEET8 (hidden stays hidden, veryHidden becomes hidden and is reported)
  and an active tab that is a visible sheet (the export shows a hidden active sheet); first-page and
  even/odd headers and footers (HeaderFooter, which LibreOffice does not read from .xls); column widths and
  row heights as stored (COLINFO, ROW; the export rounds widths to 1/100 of a character); form check
  boxes: their checked state, and the drawing the export leaves unusable (VML shapes sharing one id that
  no control names, labels LibreOffice cannot read back, control anchors at A1 with no size).
A failure to read or patch skips the carry-over with a warning: the conversion stands on its own.
"""
from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from ...handler import Context
from ...model import Threat
from .._xml import SAFE_OPTIONS
from . import biff

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PR = "http://schemas.openxmlformats.org/package/2006/relationships"
_XDR = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
_X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
_V = "urn:schemas-microsoft-com:vml"
_XV = "urn:schemas-microsoft-com:office:excel"
_PARSER = etree.XMLParser(**SAFE_OPTIONS, remove_blank_text=False)
_MAX_PART = 64 << 20


class _Skip(Exception):
    """The original or the converted package is not as expected: no carry-over."""


def carry_over(ctx: Context, plain: Path, converted: Path, mime: str) -> list[Threat]:
    """Patch `converted` (LibreOffice's OOXML) in place with what its export lost; threats to report."""
    try:
        if mime == "application/msword":
            return _Package(converted).apply(_doc_edits(plain))
        if mime == "application/vnd.ms-excel":
            pkg = _Package(converted)
            threats = _XlsCarry(_read_workbook(plain), pkg).run()
            pkg.save()
            return threats
    except (_Skip, biff._Bad, etree.XMLSyntaxError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            struct.error) as exc:
        ctx.warn(f"settings of the original not carried over into the converted file ({str(exc)[:120]})")
    except Exception as exc:  # noqa: BLE001 - the walkers raise Unrebuildable on damaged files
        ctx.warn(f"settings of the original not carried over into the converted file ({type(exc).__name__})")
    return []


# ---------------------------------------------------------------- the converted package

class _Package:
    """The converted zip: parts read on demand, changed parts written back in one pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as z:
            self.infos = [i for i in z.infolist() if not i.is_dir()]
            if sum(i.file_size for i in self.infos) > 16 * _MAX_PART:
                raise _Skip("converted package too large")
            self.data = {i.filename: z.read(i) for i in self.infos}
        self.changed: dict[str, etree._Element] = {}

    def xml(self, name: str) -> etree._Element:
        if name in self.changed:
            return self.changed[name]
        data = self.data.get(name)
        if data is None:
            raise _Skip(f"{name} missing")
        return etree.fromstring(data, _PARSER)

    def put(self, name: str, root: etree._Element) -> None:
        self.changed[name] = root

    def rels(self, part: str) -> dict[str, str]:
        """rId -> target part of `part`'s internal relationships."""
        d, b = posixpath.split(part)
        name = posixpath.join(d, "_rels", b + ".rels")
        if name not in self.data:
            return {}
        out = {}
        for el in self.xml(name).iter(f"{{{_PR}}}Relationship"):
            if (el.get("TargetMode") or "").lower() != "external":
                out[el.get("Id") or ""] = posixpath.normpath(posixpath.join(d, el.get("Target") or ""))
        return out

    def apply(self, edits: dict[str, Callable[[etree._Element], bool]]) -> list[Threat]:
        for name, edit in edits.items():
            root = self.xml(name)
            if edit(root):
                self.put(name, root)
        self.save()
        return []

    def save(self) -> None:
        if not self.changed:
            return
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for info in self.infos:
                data = self.data[info.filename]
                if info.filename in self.changed:
                    data = etree.tostring(self.changed[info.filename], xml_declaration=True, encoding="UTF-8",
                                          standalone=True)
                z.writestr(info.filename, data)
        self.path.write_bytes(buf.getvalue())


# ---------------------------------------------------------------- Word

def _dont_use_html_auto_spacing(plain: Path) -> bool:
    """Copts.fDontUseHTMLAutoSpacing of the DOP (bit 2 of the word at offset 512 in a Dop2000 or later). A
    shorter DOP (Word 97) has no HTML auto spacing: LibreOffice reads it as set, and so do we."""
    from .docfib import parse_fib
    from .findings import read_ole

    ole = read_ole(plain)
    try:
        wd = ole.openstream("WordDocument").read()
        fib = parse_fib(wd)
        fc, lcb = fib.pair("Dop")
        if not ole.exists(fib.table_name) or lcb < 2:
            raise _Skip("no DOP")
        table = ole.openstream(fib.table_name).read()
    finally:
        ole.close()
    if fc + lcb > len(table):
        raise _Skip("DOP outside the table stream")
    if lcb < 516:
        return True
    return bool(struct.unpack_from("<I", table, fc + 512)[0] & 0x4)


def _doc_edits(plain: Path) -> dict[str, Callable[[etree._Element], bool]]:
    if not _dont_use_html_auto_spacing(plain):
        return {}

    def edit(root: etree._Element) -> bool:
        compat = root.find(f"{{{_W}}}compat")
        if compat is None:
            compat = etree.Element(f"{{{_W}}}compat")
            # CT_Settings: compat follows the elements up to docVars; placed before the first of its successors.
            after = {"docVars", "rsids", "mathPr", "attachedSchema", "themeFontLang", "clrSchemeMapping",
                     "doNotIncludeSubdocsInStats", "doNotAutoCompressPictures", "forceUpgrade", "captions",
                     "readModeInkLockDown", "smartTagType", "schemaLibrary", "shapeDefaults",
                     "doNotEmbedSmartTags", "decimalSymbol", "listSeparator"}
            nxt = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname in after), None)
            if nxt is not None:
                nxt.addprevious(compat)
            else:
                root.append(compat)
        if compat.find(f"{{{_W}}}doNotUseHTMLParagraphAutoSpacing") is not None:
            return False
        # CT_Compat lists it among the leading flags: first is always a valid place for it.
        compat.insert(0, etree.Element(f"{{{_W}}}doNotUseHTMLParagraphAutoSpacing"))
        return True

    return {"word/settings.xml": edit}


# ---------------------------------------------------------------- Excel

_OBJ, _TXO, _WINDOW1, _COLINFO, _ROW, _HEADERFOOTER, _FONT = 0x5D, 0x1B6, 0x3D, 0x7D, 0x208, 0x89C, 0x31
_LABEL_TWIPS = 160  # a control label without its own font: 8 pt, as LibreOffice shows it in the .xls
_OT_CHECKBOX = 0x0B


class _Sheet:
    def __init__(self, name: str, state: int) -> None:
        self.name, self.state = name, state
        self.widths: dict[int, int] = {}  # column (0-based) -> coldx (1/256 character)
        self.heights: dict[int, int] = {}  # row (0-based) -> twips
        self.hf: tuple[bool, bool, list[str]] | None = None  # (odd/even, first, [even h, even f, first h, first f])
        self.checks: list[int] = []  # check box states, in record order (0 off, 1 on, 2 mixed)
        self.labels: list[tuple[str, int] | None] = []  # each check box label's font (name, twips), if set


def _read_workbook(plain: Path) -> tuple[list[_Sheet], int, int]:
    """(sheets in BOUNDSHEET order, active tab, first visible tab) from the original Workbook stream."""
    from .findings import read_ole

    ole = read_ole(plain)
    try:
        name = "Workbook" if ole.exists("Workbook") else "Book"
        data = ole.openstream(name).read()
    finally:
        ole.close()
    subs = biff._substreams(data)
    sheets: list[_Sheet] = []
    by_pos: dict[int, _Sheet] = {}
    fonts: list[tuple[str, int]] = []
    active = first = 0
    for r in subs[0].recs:
        if r.rt == _FONT and len(r.body) >= 16:
            fonts.append((biff._xlstring(r.body, 14, 1)[0], struct.unpack_from("<H", r.body, 0)[0]))
        elif r.rt == biff.BOUNDSHEET and len(r.body) >= 8:
            pos, hs, _dt = struct.unpack_from("<IBB", r.body, 0)
            sh = _Sheet(biff._xlstring(r.body, 6, 1)[0], hs & 0x03)
            sheets.append(sh)
            by_pos[pos] = sh
        elif r.rt == _WINDOW1 and len(r.body) >= 14:
            active, first = struct.unpack_from("<HH", r.body, 10)
    for sub in subs[1:]:
        sh = by_pos.get(sub.start)
        if sh is None or sub.dt != 0x10:
            continue
        in_box = False
        for r in sub.recs:
            body = r.joined()
            if r.rt == _TXO and in_box:
                sh.labels[-1] = _label_font(r, fonts)
                in_box = False
            if r.rt == _COLINFO and len(body) >= 6:
                lo, hi, dx = struct.unpack_from("<HHH", body, 0)
                for c in range(lo, min(hi, 16383) + 1):
                    sh.widths[c] = dx
            elif r.rt == _ROW and len(body) >= 8:
                row, height = struct.unpack_from("<H", body, 0)[0], struct.unpack_from("<H", body, 6)[0] & 0x7FFF
                if 2 <= height <= 8192:
                    sh.heights[row] = height
            elif r.rt == _HEADERFOOTER:
                sh.hf = _header_footer(body) or sh.hf
            elif r.rt == _OBJ:
                state = _checkbox_state(body)
                in_box = state is not None
                if in_box:
                    sh.checks.append(state)
                    sh.labels.append(None)
    return sheets, active, first


def _header_footer(body: bytes) -> tuple[bool, bool, list[str]] | None:
    """[MS-XLS] 2.4.137 HeaderFooter of the sheet itself (not of a custom view)."""
    if len(body) < 38 or struct.unpack_from("<H", body, 0)[0] != _HEADERFOOTER or any(body[12:28]):
        return None
    flags = struct.unpack_from("<H", body, 28)[0]
    cchs = struct.unpack_from("<4H", body, 30)
    pos, texts = 38, []
    for cch in cchs:
        if cch == 0:
            texts.append("")
            continue
        text, pos = biff._xlstring(body, pos)
        if len(text) != cch or cch > 255:
            raise biff._Bad("header/footer string length")
        texts.append(text)
    return bool(flags & 1), bool(flags & 2), texts


def _label_font(txo: biff.Rec, fonts: list[tuple[str, int]]) -> tuple[str, int] | None:
    """The font of a TXO's first formatting run (the second CONTINUE), unless it is the default one."""
    if len(txo.conts) < 2 or len(txo.conts[1]) < 8:
        return None
    ifnt = struct.unpack_from("<H", txo.conts[1], 2)[0]
    index = ifnt - 1 if ifnt > 4 else ifnt  # font index 4 does not exist in BIFF
    return fonts[index] if 0 < ifnt and index < len(fonts) else None


def _checkbox_state(body: bytes) -> int | None:
    """fChecked of a check box OBJ (FtCblsData); None for any other object."""
    pos, ot, state = 0, None, 0
    while pos + 4 <= len(body):
        ft, cb = struct.unpack_from("<HH", body, pos)
        sub = body[pos + 4:pos + 4 + cb]
        if ft == 0x15 and cb >= 2:
            ot = struct.unpack_from("<H", sub, 0)[0]
        elif ft == 0x0A and cb >= 2:
            state = struct.unpack_from("<H", sub, 0)[0]
        elif ft in (0x00, 0x13):  # ftEnd, or list box data that runs to the end
            break
        pos += 4 + cb
    return min(state, 2) if ot == _OT_CHECKBOX else None


def _num(v: float) -> str:
    return f"{v:.8f}".rstrip("0").rstrip(".")


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


_HF_ORDER = ("oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter")
# CT_Worksheet elements that follow headerFooter.
_AFTER_HF = {"rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing",
             "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
             "webPublishItems", "tableParts", "extLst", "AlternateContent"}


class _XlsCarry:
    def __init__(self, read: tuple[list[_Sheet], int, int], pkg: _Package) -> None:
        self.sheets, self.active, self.first = read
        self.pkg = pkg
        self.threats: list[Threat] = []

    def run(self) -> list[Threat]:
        wb_name = "xl/workbook.xml"
        wb = self.pkg.xml(wb_name)
        rels = self.pkg.rels(wb_name)
        orig = {s.name: s for s in self.sheets}
        entries = list(wb.iter(_q(_S, "sheet")))
        parts: list[tuple[etree._Element, _Sheet | None, str | None]] = []
        for el in entries:
            sh = orig.get(el.get("name") or "")
            parts.append((el, sh, rels.get(el.get(_q(_R, "id")) or "")))
            if sh is None:
                continue
            if sh.state in (1, 2):
                el.set("state", "hidden")
                if sh.state == 2:
                    self.threats.append(Threat("ole.hidden_sheet", f"sheet {sh.name}", "converted",
                                               "very hidden sheet made hidden"))
            elif el.get("state") in ("hidden", "veryHidden"):
                el.set("state", "visible")
        visible = [i for i, (el, _s, _p) in enumerate(parts) if el.get("state") in (None, "visible")]
        want = self.sheets[self.active].name if self.active < len(self.sheets) else None
        active = next((i for i in visible if parts[i][0].get("name") == want), visible[0] if visible else 0)
        want_first = self.sheets[self.first].name if self.first < len(self.sheets) else None
        first = next((i for i in visible if parts[i][0].get("name") == want_first), active)
        for view in wb.iter(_q(_S, "workbookView")):
            view.set("activeTab", str(active))
            view.set("firstSheet", str(min(first, active)))
        self.pkg.put(wb_name, wb)
        for i, (_el, sh, part) in enumerate(parts):
            if part is None or part not in self.pkg.data:
                continue
            root = self.pkg.xml(part)
            for sv in root.iter(_q(_S, "sheetView")):
                sv.set("tabSelected", "true" if i == active else "false")
            if sh is not None:
                self._geometry(root, sh)
                if sh.hf is not None:
                    self._headers(root, sh.hf)
                self._controls(part, root, sh)
            self.pkg.put(part, root)
        return self.threats

    @staticmethod
    def _geometry(root: etree._Element, sh: _Sheet) -> None:
        for col in root.iter(_q(_S, "col")):
            try:
                lo, hi = int(col.get("min", "0")), int(col.get("max", "0"))
            except ValueError:
                continue
            dxs = {sh.widths.get(c - 1) for c in range(lo, min(hi, 16384) + 1)}
            if len(dxs) == 1 and None not in dxs and col.get("width") is not None:
                col.set("width", _num(dxs.pop() / 256))
        for row in root.iter(_q(_S, "row")):
            try:
                r = int(row.get("r", "0")) - 1
            except ValueError:
                continue
            if r in sh.heights and row.get("ht") is not None:
                row.set("ht", _num(sh.heights[r] / 20))

    @staticmethod
    def _headers(root: etree._Element, hf: tuple[bool, bool, list[str]]) -> None:
        odd_even, first, (even_h, even_f, first_h, first_f) = hf
        if not (odd_even or first):
            return
        node = root.find(_q(_S, "headerFooter"))
        if node is None:
            node = etree.Element(_q(_S, "headerFooter"))
            nxt = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname in _AFTER_HF), None)
            if nxt is not None:
                nxt.addprevious(node)
            else:
                root.append(node)
        node.set("differentOddEven", "true" if odd_even else "false")
        node.set("differentFirst", "true" if first else "false")
        texts = {"evenHeader": even_h, "evenFooter": even_f, "firstHeader": first_h, "firstFooter": first_f}
        have = {etree.QName(c).localname: c for c in node if isinstance(c.tag, str)}
        for name in ("evenHeader", "evenFooter") if odd_even else ():
            have.setdefault(name, etree.SubElement(node, _q(_S, name))).text = texts[name]
        for name in ("firstHeader", "firstFooter") if first else ():
            have.setdefault(name, etree.SubElement(node, _q(_S, name))).text = texts[name]
        for c in sorted(node, key=lambda c: _HF_ORDER.index(etree.QName(c).localname)
                        if isinstance(c.tag, str) and etree.QName(c).localname in _HF_ORDER else 99):
            node.append(c)  # schema order

    def _controls(self, part: str, root: etree._Element, sh: _Sheet) -> None:
        """Check boxes: the VML shapes the export writes share one id that no control names and hold their
        label where LibreOffice does not read it back; the controls' own anchors are empty. Each VML shape
        gets its control's id, its label a font run, its checked state from the original; the control and
        drawing anchors are taken from the VML anchor."""
        rels = self.pkg.rels(part)
        legacy = root.find(_q(_S, "legacyDrawing"))
        vml_part = rels.get(legacy.get(_q(_R, "id")) or "") if legacy is not None else None
        if vml_part is None or vml_part not in self.pkg.data:
            return
        controls = [c for c in root.iter(_q(_S, "control")) if c.get("shapeId")]
        vml = self.pkg.xml(vml_part)
        shapes = [s for s in vml.iter(_q(_V, "shape"))
                  if (cd := s.find(_q(_XV, "ClientData"))) is not None and cd.get("ObjectType") is not None]
        if not shapes or len(shapes) != len(controls):
            return
        boxes = [s for s in shapes if s.find(_q(_XV, "ClientData")).get("ObjectType") == "Checkbox"]
        states = sh.checks if len(sh.checks) == len(boxes) else None
        labels = sh.labels if states is not None else [None] * len(boxes)
        for shape, ctl in zip(shapes, controls, strict=True):
            shape.set("id", f"_x0000_s{int(ctl.get('shapeId')):04d}")
            cd = shape.find(_q(_XV, "ClientData"))
            anchor = cd.find(_q(_XV, "Anchor"))
            cells = [int(v) for v in re.findall(r"-?\d+", anchor.text or "")] if anchor is not None else []
            label = labels[boxes.index(shape)] if shape in boxes else None
            for div in shape.iter("div"):
                if div.text and not len(div):
                    font = etree.SubElement(div, "font", size=str(label[1] if label else _LABEL_TWIPS))
                    if label:
                        font.set("face", label[0])
                    font.text, div.text = div.text, None
            if cd.get("ObjectType") == "Checkbox" and states is not None:
                state = states[boxes.index(shape)]
                checked = cd.find(_q(_XV, "Checked"))
                if state and checked is None:
                    checked = etree.Element(_q(_XV, "Checked"))
                    valign = cd.find(_q(_XV, "TextVAlign"))
                    (valign.addprevious if valign is not None else cd.append)(checked)
                if checked is not None:
                    checked.text = str(state)
                pr = rels.get(ctl.get(_q(_R, "id")) or "")
                if pr in self.pkg.data:
                    form = self.pkg.xml(pr)
                    if state:
                        form.set("checked", "Mixed" if state == 2 else "Checked")
                    else:
                        form.attrib.pop("checked", None)
                    self.pkg.put(pr, form)
            if len(cells) == 8:
                self._anchor(ctl, cells)
        self.pkg.put(vml_part, vml)
        drawing = root.find(_q(_S, "drawing"))
        dr_part = rels.get(drawing.get(_q(_R, "id")) or "") if drawing is not None else None
        if dr_part in self.pkg.data:
            self._drawing_anchors(dr_part, controls, shapes)

    @staticmethod
    def _set_anchor(frm: etree._Element | None, to: etree._Element | None, cells: list[int]) -> None:
        """VML anchor (col, dx px, row, dy px) x2 -> DrawingML from/to (col, colOff EMU, row, rowOff EMU)."""
        for node, (c, dx, r, dy) in ((frm, cells[:4]), (to, cells[4:])):
            if node is None:
                continue
            for local, v in (("col", c), ("colOff", dx * 9525), ("row", r), ("rowOff", dy * 9525)):
                el = node.find(_q(_XDR, local))
                if el is not None:
                    el.text = str(v)

    def _anchor(self, ctl: etree._Element, cells: list[int]) -> None:
        a = ctl.find(f"{_q(_X14, 'controlPr')}/{_q(_X14, 'anchor')}")
        if a is None:
            a = ctl.find(f"{_q(_S, 'controlPr')}/{_q(_S, 'anchor')}")
        if a is not None:
            ns = etree.QName(a).namespace
            self._set_anchor(a.find(_q(ns, "from")), a.find(_q(ns, "to")), cells)

    def _drawing_anchors(self, part: str, controls: list[etree._Element], shapes: list[etree._Element]) -> None:
        dr = self.pkg.xml(part)
        by_id = {}
        for shape, ctl in zip(shapes, controls, strict=True):
            anchor = shape.find(_q(_XV, "ClientData")).find(_q(_XV, "Anchor"))
            cells = [int(v) for v in re.findall(r"-?\d+", anchor.text or "")] if anchor is not None else []
            if len(cells) == 8:
                by_id[ctl.get("shapeId")] = cells
        changed = False
        for anchor in dr.iter(_q(_XDR, "twoCellAnchor")):
            pr = next(anchor.iter(_q(_XDR, "cNvPr")), None)
            cells = by_id.get(pr.get("id")) if pr is not None else None
            if cells is None:
                continue
            self._set_anchor(anchor.find(_q(_XDR, "from")), anchor.find(_q(_XDR, "to")), cells)
            changed = True
        if changed:
            self.pkg.put(part, dr)
