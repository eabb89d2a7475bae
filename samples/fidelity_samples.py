"""Files that show what a rebuild must carry over for a document to look and calculate as before.

Not registered as corpus generators: tests build what they need (tests/test_metadata_rendering.py,
tests/test_legacy_carry.py).

- OOXML whose rendering in LibreOffice depends on docProps/app.xml: cached text results of formulas
  (recalculated without it: PHONETIC gives #NAME?, a date before March 1900 moves by a day), row
  heights off Excel's 0.75 pt grid (snapped only for files made by Microsoft Office), and chart
  labels that Office 2007 wrote without their "show" flags (read as "show everything" otherwise).
- An ODP written by OpenOffice.org 2.4, whose outline lists LibreOffice lays out as that version did
  only while meta:generator says so.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .office_samples import patch

APP = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns="http://schemas.openxmlformats.org/'
       'officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
       'docPropsVTypes"><Template>\\\\fileserver\\templates\\様式.xltx</Template><Application>{app}</Application>'
       "<Company>○○市役所 市民課</Company><Manager>山田太郎</Manager><AppVersion>{version}</AppVersion>"
       "</Properties>")
PHONETIC = "ヤマダタロウ"
DATE_TEXT = "1900/1/10"


def set_app(path: Path, app: str = "Microsoft Excel", version: str = "16.0300") -> Path:
    """app.xml as Excel writes it (with a company and a manager that must not survive `metadata = "drop"`)."""
    return patch(path, path, edit={"docProps/app.xml": lambda _s: APP.format(app=app, version=version)})


def without_app(src: Path, dst: Path) -> Path:
    """The same package without docProps/app.xml (what `metadata = "drop"` used to deliver)."""
    return patch(src, dst, drop={"docProps/app.xml"},
                 edit={"_rels/.rels": lambda s: re.sub(r"<Relationship[^>]*extended-properties[^>]*/>", "", s),
                       "[Content_Types].xml": lambda s: re.sub(r'<Override PartName="/docProps/app.xml"[^>]*/>', "", s)})


def cached_text_formulas(path: Path) -> Path:
    """PHONETIC() and TEXT() of a date before 1 March 1900, with the text results Excel stored."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名簿"
    ws.append(["氏名", "フリガナ", "基準日", "表示"])
    ws.append(["山田太郎", "=PHONETIC(A2)", 10, '=TEXT(C2,"yyyy/m/d")'])
    wb.save(path)

    def cached(s: str) -> str:
        s = s.replace('<c r="B2"><f>PHONETIC(A2)</f><v></v></c>',
                      f'<c r="B2" t="str"><f>PHONETIC(A2)</f><v>{PHONETIC}</v></c>')
        return s.replace('<c r="D2"><f>TEXT(C2,"yyyy/m/d")</f><v></v></c>',
                         f'<c r="D2" t="str"><f>TEXT(C2,"yyyy/m/d")</f><v>{DATE_TEXT}</v></c>')

    patch(path, path, edit={"xl/worksheets/sheet1.xml": cached})
    return set_app(path)


def row_heights(path: Path, rows: int = 120, height: float = 14.4) -> Path:
    """A survey sheet whose rows Excel stored at 14.4 pt (a 120 dpi screen), off the 0.75 pt grid."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "調査票"
    for r in range(1, rows + 1):
        ws.cell(r, 1, f"設問{r}")
        ws.cell(r, 2, "はい・いいえ")
        ws.row_dimensions[r].height = height
    wb.save(path)
    return set_app(path)


def chart_labels_2007(path: Path) -> Path:
    """A bar chart whose data labels show values only, saved by Excel 2007 (AppVersion 12), which leaves
    out the flags it does not set."""
    import openpyxl
    from openpyxl.chart import BarChart, Reference
    from openpyxl.chart.label import DataLabelList

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計"
    ws.append(["地区", "人口"])
    for row in (("中央区", 12000), ("北区", 8000), ("南区", 9500)):
        ws.append(list(row))
    ch = BarChart()
    ch.title = "地区別人口"
    ch.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
    ch.set_categories(Reference(ws, min_col=1, min_row=2, max_row=4))
    ch.dataLabels = DataLabelList()
    ch.dataLabels.showVal = True
    ws.add_chart(ch, "D2")
    wb.save(path)
    return set_app(path, version="12.0000")


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
           'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
           'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
           'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
           'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.2"')
OOO_24 = "OpenOffice.org/2.4$Win32 OpenOffice.org_project/680m17$Build-9310"


def old_outline_odp(path: Path, generator: str | None = OOO_24) -> Path:
    """A slide with an outline list, as OpenOffice.org 2.4 saved it (meta:generator says so), with an
    author and dates that `metadata = "drop"` removes."""
    items = "".join(f"<text:list-item><text:p>手続きの流れ その{i}</text:p></text:list-item>" for i in range(1, 5))
    content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS}><office:automatic-styles>'
               '<text:list-style style:name="L1"><text:list-level-style-bullet text:level="1" text:bullet-char="●">'
               '<style:list-level-properties text:min-label-width="0.9cm"/><style:text-properties fo:font-size="100%"/>'
               "</text:list-level-style-bullet></text:list-style></office:automatic-styles><office:body>"
               '<office:presentation><draw:page draw:name="p1" draw:master-page-name="M"><draw:frame '
               'presentation:class="outline" svg:x="2cm" svg:y="3cm" svg:width="20cm" svg:height="10cm"><draw:text-box>'
               f'<text:list text:style-name="L1">{items}</text:list></draw:text-box></draw:frame></draw:page>'
               "</office:presentation></office:body></office:document-content>")
    styles = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles {_ODF_NS}><office:styles/>'
              '<office:automatic-styles><style:page-layout style:name="PM1"><style:page-layout-properties '
              'fo:page-width="28cm" fo:page-height="21cm"/></style:page-layout></office:automatic-styles>'
              '<office:master-styles><style:master-page style:name="M" style:page-layout-name="PM1"/>'
              "</office:master-styles></office:document-styles>")
    gen = f"<meta:generator>{generator}</meta:generator>" if generator else ""
    meta = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {_ODF_NS}><office:meta>{gen}'
            "<meta:initial-creator>市民課 山田太郎</meta:initial-creator><dc:creator>山田太郎</dc:creator>"
            "<meta:creation-date>2008-04-01T09:00:00</meta:creation-date></office:meta></office:document-meta>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.presentation"/>'
                + "".join(f'<manifest:file-entry manifest:full-path="{n}" manifest:media-type="text/xml"/>'
                          for n in ("content.xml", "styles.xml", "meta.xml")) + "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.presentation")
        for name, data in (("content.xml", content), ("styles.xml", styles), ("meta.xml", meta),
                           ("META-INF/manifest.xml", manifest)):
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


# ---------------------------------------------------------------- legacy files made by LibreOffice

SPACING_PARAGRAPHS = 12


def spacing_docx(path: Path) -> Path:
    """Paragraphs with space before and after under Word's "do not use HTML paragraph auto spacing"
    compatibility option: the spacings add up (two pages) instead of the larger one winning (one)."""
    import docx
    from docx.shared import Pt

    d = docx.Document()
    for i in range(SPACING_PARAGRAPHS):
        p = d.add_paragraph(f"段落{i + 1} 申請書の記載例です。")
        p.paragraph_format.space_before = Pt(18)
        p.paragraph_format.space_after = Pt(24)
    d.save(path)
    flag = "<w:doNotUseHTMLParagraphAutoSpacing/>"
    return patch(path, path, edit={"word/settings.xml": lambda s: s.replace("<w:compat>", "<w:compat>" + flag)
                                   if "<w:compat>" in s else s.replace("</w:settings>",
                                                                       f"<w:compat>{flag}</w:compat></w:settings>")})


FORM_ROWS = 150
FORM_COLUMNS = 12
CHECKBOXES = (("同意する", True), ("郵送を希望", False))
HEADERS = ("&C表紙ヘッダー", "&C表紙フッター", "&L偶数ページ &P", "&R偶数フッター")  # first h/f, even h/f


def form_ods(path: Path) -> Path:
    """A three-page form (narrow columns, fixed row heights, two check boxes, one checked), a hidden
    sheet and a sheet to be made very hidden."""
    from .legacy_samples import _ODF_NS, ODS

    boxes = "".join(f'<form:checkbox form:name="chk{i}" form:id="c{i}" form:label="{label}"'
                    + (' form:current-state="checked" form:state="checked"' if on else "") + "/>"
                    for i, (label, on) in enumerate(CHECKBOXES))
    controls = "".join(f'<draw:control draw:control="c{i}" svg:width="3cm" svg:height="0.6cm" svg:x="1cm" '
                       f'svg:y="{1 + 1.2 * i}cm"/>' for i in range(len(CHECKBOXES)))
    rows = "".join(f'<table:table-row table:style-name="ro1"><table:table-cell office:value-type="string"><text:p>'
                   f"設問{r}</text:p></table:table-cell><table:table-cell table:number-columns-repeated="
                   f'"{FORM_COLUMNS - 2}"/><table:table-cell office:value-type="float" office:value="{r}">'
                   f"<text:p>{r}</text:p></table:table-cell></table:table-row>" for r in range(1, FORM_ROWS + 1))
    other = ('<table:table-column/><table:table-row><table:table-cell office:value-type="string"><text:p>{}'
             "</text:p></table:table-cell></table:table-row>")
    content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS}><office:automatic-styles>'
               '<style:style style:name="co1" style:family="table-column"><style:table-column-properties '
               'style:column-width="0.67cm"/></style:style><style:style style:name="ro1" style:family="table-row">'
               '<style:table-row-properties style:row-height="0.5cm" style:use-optimal-row-height="false"/>'
               '</style:style><style:style style:name="ta2" style:family="table"><style:table-properties '
               'table:display="false"/></style:style></office:automatic-styles><office:body><office:spreadsheet>'
               f'<table:table table:name="申請"><office:forms><form:form form:name="F">{boxes}</form:form>'
               f"</office:forms><table:shapes>{controls}</table:shapes>"
               f'<table:table-column table:style-name="co1" table:number-columns-repeated="{FORM_COLUMNS}"/>{rows}'
               f'</table:table><table:table table:name="控え" table:style-name="ta2">{other.format("控えの内容")}'
               f'</table:table><table:table table:name="設定" table:style-name="ta2">{other.format("設定値")}'
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                f'opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" '
                f'manifest:media-type="{ODS}"/><manifest:file-entry manifest:full-path="content.xml" '
                'manifest:media-type="text/xml"/></manifest:manifest>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), ODS)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _header_footer_record(first_h: str, first_f: str, even_h: str, even_f: str) -> bytes:
    """[MS-XLS] 2.4.137 HeaderFooter for the sheet itself: different first page and odd/even pages."""
    import struct

    def xlstr(t: str) -> bytes:
        return struct.pack("<HB", len(t), 1) + t.encode("utf-16-le")

    body = struct.pack("<HH8s", 0x89C, 0, b"\0" * 8) + b"\0" * 16
    body += struct.pack("<HHHHH", 0x3, len(even_h), len(even_f), len(first_h), len(first_f))
    return body + b"".join(xlstr(t) for t in (even_h, even_f, first_h, first_f) if t)


def form_xls(ods_xls: Path, dst: Path) -> Path:
    """LibreOffice's .xls of form_ods() with what LibreOffice does not write: the first sheet's first-page
    and even-page headers and footers, the hidden sheet as the active tab, and the 設定 sheet very hidden."""
    import struct
    import uuid

    import olefile

    from . import xls_samples as xs
    from .legacy_samples import ole_streams, write_cfb

    streams, storages = ole_streams(ods_xls)
    recs = xs.records(xs.very_hidden(streams["Workbook"], "設定"))
    out, added = [], False
    for r in recs:
        if r[0] == 0x3D:  # WINDOW1: itabCur = 1 (控え, hidden)
            body = bytearray(r[1])
            struct.pack_into("<H", body, 10, 1)
            r[1] = bytes(body)
        out.append(r)
        if r[0] == 0xA1 and not added:  # SETUP of the first sheet
            out.append([0x89C, _header_footer_record(*HEADERS)])
            added = True
    with olefile.OleFileIO(str(ods_xls)) as ole:
        clsid = {"": uuid.UUID(ole.root.clsid).bytes_le} if ole.root.clsid else {}
    dst.write_bytes(write_cfb({**streams, "Workbook": xs.serialize(out)}, storages, clsid))
    return dst
