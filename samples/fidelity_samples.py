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
