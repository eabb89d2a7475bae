"""OOXML namespace allow-lists (issue 20): after mc:AlternateContent is resolved, only the namespaces a
part's content type defines survive; what renders (charts, SmartArt, equations, x14 conditional formats,
text effects) stays."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from lxml import etree

from cdr.formats.ooxml import inspect_ooxml, mce
from cdr.formats.ooxml import vocab as V
from cdr.handler import Context
from cdr.pipeline import process
from cdr.policy import Limits
from samples.office_samples import add_ct, add_rel, make_docx, make_pptx, make_xlsx, patch

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
WPS = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
EVIL = "urn:evil:active"


def _ctx(tmp_path: Path) -> Context:
    return Context(name="t", options={"metadata": "keep", "hyperlinks": "web"}, limits=Limits(), workdir=tmp_path,
                   password=None)


def _read(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(name).decode("utf-8")


def _doc(tmp_path: Path, fragment: str, root_attrs: str = "", name: str = "f.docx") -> Path:
    def edit(x: str) -> str:
        x = x.replace("<w:document ", f"<w:document {root_attrs} ", 1) if root_attrs else x
        return x.replace("<w:sectPr", fragment + "<w:sectPr", 1)

    return patch(make_docx(tmp_path / "base.docx"), tmp_path / name, edit={"word/document.xml": edit})


def _findings(path: Path, tmp_path: Path, prescan: bool) -> list[tuple[str, str, str]]:
    from cdr.formats.ooxml.package import Rebuild

    rb = Rebuild(_ctx(tmp_path), write=False, prescan=prescan)
    rb.run(path, None)
    return sorted((t.id, t.location, t.action) for t in rb.threats)


def _verified(src: Path, tmp_path: Path, policy) -> tuple[object, Path]:
    r = process(src, src.name, tmp_path / ("out-" + src.stem), policy)
    assert r.verdict != "blocked", r.reason
    assert _findings(src, tmp_path, True) == _findings(src, tmp_path, False)  # the prescan misses nothing
    return r, Path(r.output)


# ---------------------------------------------------------------- foreign elements and attributes

def test_foreign_elements_attributes_and_plain_elements_are_removed(tmp_path, default_policy):
    fragment = (f'<w:p xmlns:e="{EVIL}" e:onload="calc.exe"><w:r><w:t>本文</w:t></w:r>'
                '<e:script>payload()</e:script><script>x()</script>'
                f'<w:r xmlns:w="{EVIL}"><w:t>偽のw</w:t></w:r>'  # a foreign namespace under the prefix w
                '<w:r><w:t xml:space="preserve"> 残る </w:t></w:r></w:p>')
    r, out = _verified(_doc(tmp_path, fragment), tmp_path, default_policy)
    assert r.verdict == "sanitized"
    found = [t for t in r.threats if t.id == "ooxml.unknown_markup"]
    assert [t.action for t in found] == ["removed"] and found[0].detail.startswith("4 ")  # w:t went with its w:r
    doc = _read(out, "word/document.xml")
    for gone in ("payload", "x()", "calc.exe", "偽のw", "onload", EVIL):
        assert gone not in doc, gone
    assert "本文" in doc and "> 残る <" in doc


def test_no_namespace_after_xmlns_undeclaration_is_removed(tmp_path, default_policy):
    fragment = '<w:p><w:r><w:t>a</w:t></w:r><w:r xmlns=""><p>plain</p></w:r></w:p>'
    src = _doc(tmp_path, fragment, root_attrs=f'xmlns="{W}"')
    r, out = _verified(src, tmp_path, default_policy)
    doc = _read(out, "word/document.xml")
    assert "plain" not in doc and r.verdict == "sanitized"


# ---------------------------------------------------------------- markup compatibility

def test_alternate_content_resolves_to_a_supported_choice_else_the_fallback(tmp_path, default_policy):
    shape = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:wps="{WPS}"><mc:Choice Requires="wps"><w:r><w:t>'
             'CHOICE-WPS</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t>FALLBACK-VML</w:t></w:r></mc:Fallback>'
             '</mc:AlternateContent>')
    unknown = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:e="{EVIL}"><mc:Choice Requires="e"><w:r><e:run>'
               'CHOICE-EVIL</e:run></w:r></mc:Choice><mc:Fallback><w:r><w:t>FALLBACK-PLAIN</w:t></w:r>'
               '</mc:Fallback></mc:AlternateContent>')
    nothing = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:e="{EVIL}"><mc:Choice Requires="e"><w:r><w:t>'
               'CHOICE-ONLY</w:t></w:r></mc:Choice></mc:AlternateContent>')
    nested = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:e="{EVIL}"><mc:Choice Requires="e"><w:r><w:t>N1</w:t>'
              f'</w:r></mc:Choice><mc:Fallback><mc:AlternateContent><mc:Choice Requires="w14" xmlns:w14="{W14}">'
              '<w:r><w:t>N2-CHOICE</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t>N2-FALLBACK</w:t></w:r>'
              '</mc:Fallback></mc:AlternateContent></mc:Fallback></mc:AlternateContent>')
    stray = f'<mc:Fallback xmlns:mc="{MC}"><w:r><w:t>STRAY</w:t></w:r></mc:Fallback>'
    src = _doc(tmp_path, "".join(f"<w:p>{x}</w:p>" for x in (shape, unknown, nothing, nested, stray)))
    r, out = _verified(src, tmp_path, default_policy)
    doc = _read(out, "word/document.xml")
    assert "CHOICE-WPS" in doc and "FALLBACK-VML" not in doc  # the supported Choice, kept in its block
    root = etree.fromstring(doc.encode())
    blocks = root.findall(f".//{{{MC}}}AlternateContent")
    assert [len(b) for b in blocks] == [1, 1] and {b[0].get("Requires") for b in blocks} == {"wps", "w14"}
    assert "FALLBACK-PLAIN" in doc and "CHOICE-EVIL" not in doc and EVIL not in doc.split(">", 2)[-1]
    assert "CHOICE-ONLY" not in doc
    assert "N2-CHOICE" in doc and "N1" not in doc and "N2-FALLBACK" not in doc
    assert "STRAY" not in doc
    # Resolving again changes nothing: the delivered file inspects clean.
    assert inspect_ooxml(_ctx(tmp_path), out) == []


def test_ignorable_and_process_content(tmp_path, default_policy):
    """Ignorable content of a namespace we do not know is dropped like any reader that does not know it
    would (reported, the verdict stays clean); mc:ProcessContent keeps the children of such an element."""
    fragment = ('<w:p e:note="x" w14:paraId="12345678" w14:textId="77777777"><e:wrap><w:r><w:t>包まれた本文</w:t>'
                '</w:r></e:wrap><e:drop><w:r><w:t>消える</w:t></w:r></e:drop></w:p>')
    src = patch(_doc(tmp_path, fragment), tmp_path / "ign.docx", edit={"word/document.xml": lambda x: x.replace(
        'mc:Ignorable="w14 wp14"', f'xmlns:e="{EVIL}" mc:Ignorable="w14 wp14 e" mc:ProcessContent="e:wrap"', 1)})
    assert 'mc:Ignorable="w14 wp14 e"' in _read(src, "word/document.xml")
    r, out = _verified(src, tmp_path, default_policy)
    assert r.verdict == "clean", r.threats
    found = [t for t in r.threats if t.id == "ooxml.unknown_markup"]
    assert [t.action for t in found] == ["reported"]
    doc = _read(out, "word/document.xml")
    assert "包まれた本文" in doc and "消える" not in doc and 'w14:paraId="12345678"' in doc
    root = etree.fromstring(doc.encode())
    assert root.get(f"{{{MC}}}Ignorable").split() == ["w14", "wp14"]
    assert root.get(f"{{{MC}}}ProcessContent") is None


# ---------------------------------------------------------------- the fast path

def test_a_canonical_part_with_a_foreign_namespace_or_mc_takes_the_tree_path(tmp_path, default_policy):
    src = make_docx(tmp_path / "plain.docx")
    with zipfile.ZipFile(src) as z:
        styles = z.read("word/styles.xml")
    assert mce.quiet(styles, V.WORD)  # python-docx's styles: declared mc:Ignorable of known namespaces only
    games = {  # name: (changed part, marker that must not survive)
        "foreign": (styles.replace(b"<w:docDefaults>", f'<e:x xmlns:e="{EVIL}">e</e:x><w:docDefaults>'.encode(), 1),
                    b"<e:x"),
        "attr": (styles.replace(b"<w:docDefaults>", f'<w:docDefaults xmlns:e="{EVIL}" e:a="1">'.encode(), 1),
                 b'e:a="1"'),
        "unicode-prefix": (styles.replace(b"<w:docDefaults>", f'<日本:x xmlns:日本="{EVIL}"/><w:docDefaults>'.encode(),
                                          1), "日本".encode()),
        "ac": (styles.replace(b"<w:docDefaults>", b'<mc:AlternateContent><mc:Choice Requires="w14"/>'
                              b"</mc:AlternateContent><w:docDefaults>", 1), b"AlternateContent"),
        "ignorable": (styles.replace(b'mc:Ignorable="', f'xmlns:e="{EVIL}" mc:Ignorable="e '.encode(), 1),
                      b'Ignorable="e '),
        "plain": (styles.replace(b"<w:docDefaults>", b"<x>plain</x><w:docDefaults>", 1), b"plain"),
    }
    for name, (data, marker) in games.items():
        assert data != styles and marker in data, name
        assert not mce.quiet(data, V.WORD), name
        s = patch(src, tmp_path / f"{name}.docx", edit={"word/styles.xml": lambda _x, d=data: d.decode()})
        r = process(s, s.name, tmp_path / f"o-{name}", default_policy)
        assert r.verdict != "blocked", (name, r.reason)
        out = _read(Path(r.output), "word/styles.xml").encode()
        assert marker not in out and EVIL.encode() not in out and b"w:docDefaults" in out, name
    # Declared but unused foreign namespaces (Mac Word's mo/mv) do not cost the fast path.
    unused = styles.replace(b"<w:styles ", f'<w:styles xmlns:e="{EVIL}" '.encode(), 1)
    assert mce.quiet(unused, V.WORD)


# ---------------------------------------------------------------- parts and their vocabularies

def test_root_outside_the_vocabulary_drops_the_part_or_blocks_the_main_part(tmp_path, default_policy):
    base = make_docx(tmp_path / "b.docx")
    s = patch(base, tmp_path / "ft.docx", edit={"word/fontTable.xml": lambda x: x.replace(
        "<w:fonts ", f'<w:fonts xmlns:w="{EVIL}" ', 1)})
    r = process(s, s.name, tmp_path / "o1", default_policy)
    assert r.verdict == "sanitized" and any(t.id == "ooxml.unknown_part" and "fontTable" in t.location
                                            for t in r.threats)
    with zipfile.ZipFile(r.output) as z:
        assert "word/fontTable.xml" not in z.namelist()
    s = patch(base, tmp_path / "main.docx", edit={"word/document.xml": lambda x: x.replace(
        "<w:document ", f'<w:document xmlns:w="{EVIL}" ', 1).replace("</w:document>", "</w:document>")})
    r = process(s, s.name, tmp_path / "o2", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}


def test_custom_xml_data_only_bibliography_and_cover_page(tmp_path, default_policy):
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/customXml"
    bib = ('<b:Sources xmlns:b="http://schemas.openxmlformats.org/officeDocument/2006/bibliography" '
           'SelectedStyle="\\APA.XSL"><b:Source><b:Tag>山田</b:Tag><b:Title>市史</b:Title></b:Source></b:Sources>')
    other = f'<root xmlns="{EVIL}"><payload>http://203.0.113.5/</payload></root>'
    src = patch(make_docx(tmp_path / "b.docx"), tmp_path / "cx.docx", edit={
        "word/_rels/document.xml.rels": lambda x: add_rel(add_rel(x, "rIdC1", rel, "../customXml/item91.xml"),
                                                          "rIdC2", rel, "../customXml/item92.xml")},
        add={"customXml/item91.xml": bib, "customXml/item92.xml": other})
    r, out = _verified(src, tmp_path, default_policy)
    assert r.verdict == "clean", r.threats  # dropping data Office does not show is reported only
    assert [(t.id, t.action) for t in r.threats if t.id == "ooxml.custom_xml"] == [("ooxml.custom_xml", "reported")]
    with zipfile.ZipFile(out) as z:
        assert "customXml/item91.xml" in z.namelist() and "customXml/item92.xml" not in z.namelist()
        assert "市史" in z.read("customXml/item91.xml").decode()


def test_vml_keeps_its_html_subset_only(tmp_path, default_policy):
    from samples.office_samples import R

    vml = ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
           'xmlns:x="urn:schemas-microsoft-com:office:excel"><v:shape id="_x0000_s1025" type="#_x0000_t202">'
           '<v:textbox><div style="text-align:left"><font face="ＭＳ Ｐゴシック">確認済み</font><br/>'
           '<script>alert(1)</script><iframe src="http://203.0.113.5/"/></div></v:textbox>'
           '<x:ClientData ObjectType="Note"><x:Row>0</x:Row></x:ClientData></v:shape></xml>')
    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "v.xlsx", edit={
        "xl/worksheets/_rels/sheet1.xml.rels": lambda x: add_rel(x, "rIdV", R + "vmlDrawing", "../drawings/v1.vml"),
        "[Content_Types].xml": lambda x: add_ct(x, ext="vml", ct="application/vnd.openxmlformats-officedocument.vmlDrawing"),
        "xl/worksheets/sheet1.xml": lambda x: x.replace("</worksheet>", f'<legacyDrawing xmlns:r="{R[:-1]}" '
                                                        'r:id="rIdV"/></worksheet>')},
        add={"xl/drawings/v1.vml": vml})
    r, out = _verified(src, tmp_path, default_policy)
    v = _read(out, "xl/drawings/v1.vml")
    assert "確認済み" in v and "<br/>" in v and "x:ClientData" in v
    assert "script" not in v and "iframe" not in v and "203.0.113.5" not in v


# ---------------------------------------------------------------- fidelity: what Office 2010+ adds stays

X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
XM = "http://schemas.microsoft.com/office/excel/2006/main"
X14AC = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"


def test_excel_2010_extensions_are_kept(tmp_path, default_policy):
    """Data bars, icon sets and validations of x14 (with xm: formulas), sparklines, x14ac row heights;
    x15ac:absPath (where the author kept the file) goes, reported only."""
    ext = (f'<extLst><ext uri="{{78C0D931-6437-407d-A8EE-F0AAD7539E65}}" xmlns:x14="{X14}">'
           f'<x14:conditionalFormattings><x14:conditionalFormatting xmlns:xm="{XM}"><x14:cfRule type="dataBar" '
           'id="{00000000-000E-0000-0000-000001000000}"><x14:dataBar minLength="0" maxLength="100" gradient="0">'
           '<x14:cfvo type="autoMin"/><x14:cfvo type="autoMax"/></x14:dataBar></x14:cfRule><xm:sqref>B2:B4</xm:sqref>'
           '</x14:conditionalFormatting></x14:conditionalFormattings></ext>'
           f'<ext uri="{{05C60535-1F16-4fd2-B633-F4F36F0B64E0}}" xmlns:x14="{X14}"><x14:sparklineGroups '
           f'xmlns:xm="{XM}"><x14:sparklineGroup displayEmptyCellsAs="gap"><x14:colorSeries rgb="FF376092"/>'
           '<x14:sparklines><x14:sparkline><xm:f>集計表!B2:C2</xm:f><xm:sqref>E2</xm:sqref></x14:sparkline>'
           '</x14:sparklines></x14:sparklineGroup></x14:sparklineGroups></ext></extLst>')
    abspath = (f'<mc:AlternateContent xmlns:mc="{MC}"><mc:Choice Requires="x15"><x15ac:absPath '
               'url="C:\\Users\\yamada\\Desktop\\" xmlns:x15ac="http://schemas.microsoft.com/office/spreadsheetml/'
               '2010/11/ac"/></mc:Choice></mc:AlternateContent>')

    def sheet(x: str) -> str:
        x = x.replace("<worksheet ", f'<worksheet xmlns:mc="{MC}" xmlns:x14ac="{X14AC}" mc:Ignorable="x14ac" ', 1)
        x = x.replace('<row r="2"', '<row r="2" x14ac:dyDescent="0.25"', 1)
        return x.replace("</worksheet>", ext + "</worksheet>")

    def workbook(x: str) -> str:
        x = x.replace("<workbook ", '<workbook xmlns:x15="http://schemas.microsoft.com/office/spreadsheetml/2010/11/'
                                    f'main" xmlns:mc="{MC}" ', 1)
        return x.replace("<bookViews>", abspath + "<bookViews>", 1)

    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "x14.xlsx",
                edit={"xl/worksheets/sheet1.xml": sheet, "xl/workbook.xml": workbook})
    r, out = _verified(src, tmp_path, default_policy)
    assert r.verdict == "clean", r.threats
    s = _read(out, "xl/worksheets/sheet1.xml")
    for kept in ("x14:dataBar", "<xm:sqref>B2:B4</xm:sqref>", "x14:sparkline", "<xm:f>集計表!B2:C2</xm:f>",
                 'x14ac:dyDescent="0.25"', 'mc:Ignorable="x14ac"'):
        assert kept in s, kept
    wb = _read(out, "xl/workbook.xml")
    assert "absPath" not in wb and "yamada" not in wb and "AlternateContent" not in wb


def test_powerpoint_transition_choice_and_equation_kept(tmp_path, default_policy):
    p14 = "http://schemas.microsoft.com/office/powerpoint/2010/main"
    a14 = "http://schemas.microsoft.com/office/drawing/2010/main"
    m = "http://schemas.openxmlformats.org/officeDocument/2006/math"
    transition = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:p14="{p14}"><mc:Choice Requires="p14">'
                  '<p:transition spd="slow" p14:dur="2000"><p14:prism/></p:transition></mc:Choice><mc:Fallback>'
                  '<p:transition spd="slow"><p:fade/></p:transition></mc:Fallback></mc:AlternateContent>')
    math = (f'<mc:AlternateContent xmlns:mc="{MC}" xmlns:a14="{a14}"><mc:Choice Requires="a14"><p:sp><p:nvSpPr>'
            '<p:cNvPr id="90" name="数式"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/>'
            f'<a:p><a14:m><m:oMathPara xmlns:m="{m}"><m:oMath><m:r><m:t>x=1</m:t></m:r></m:oMath></m:oMathPara>'
            '</a14:m></a:p></p:txBody></p:sp></mc:Choice><mc:Fallback><p:sp><p:nvSpPr><p:cNvPr id="90" '
            'name="数式"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/></p:sp></mc:Fallback></mc:AlternateContent>')

    def slide(x: str) -> str:
        x = x.replace("</p:spTree>", math + "</p:spTree>", 1)
        return x.replace("</p:sld>", transition + "</p:sld>", 1)

    src = patch(make_pptx(tmp_path / "b.pptx"), tmp_path / "t.pptx", edit={"ppt/slides/slide1.xml": slide})
    r, out = _verified(src, tmp_path, default_policy)
    assert r.verdict == "clean", r.threats
    s = _read(out, "ppt/slides/slide1.xml")
    assert "p14:prism" in s and "<p:fade/>" not in s and "<m:t>x=1</m:t>" in s


def test_every_content_type_kept_has_a_vocabulary():
    """Every XML content type the rebuild keeps maps to a vocabulary (none is kept by accident)."""
    from cdr.formats.ooxml.const import CHART_CT, MAIN

    for ct in [*MAIN, *CHART_CT, "application/vnd.openxmlformats-officedocument.theme+xml",
               "application/vnd.openxmlformats-officedocument.vmldrawing",
               "application/vnd.ms-excel.controlproperties+xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml",
               "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"]:
        assert V.vocabulary(ct.lower()), ct
    for bad in ("application/vnd.ms-office.webextension+xml", "application/xml", "text/html"):
        assert not V.vocabulary(bad), bad


@pytest.mark.parametrize("uri", ["http://schemas.microsoft.com/office/drawing/2021/scriptlink",
                                 "http://schemas.microsoft.com/office/word/2020/oembed",
                                 "http://schemas.microsoft.com/office/drawing/2021/oembed",
                                 "http://schemas.microsoft.com/office/spreadsheetml/2023/externalCodeService",
                                 "http://schemas.microsoft.com/office/webextensions/webextension/2010/11",
                                 "urn:schemas-microsoft-com:office:office:evil"])
def test_extensions_that_fetch_or_run_are_not_in_any_vocabulary(uri):
    for vocab in (V.WORD, V.SHEET, V.PRESENTATION, V.DRAWING, V.VML):
        assert uri not in vocab


def test_a_choice_most_readers_cannot_draw_gives_way_to_its_picture(tmp_path, default_policy):
    """An Office 2016 chart (chartex) in Word comes with a picture of itself as Fallback: LibreOffice and
    older Office show that picture, so it is kept rather than the chart only Office 2016 draws."""
    cx = "http://schemas.microsoft.com/office/drawing/2015/9/8/chartex"
    block = (f'<w:p><w:r><mc:AlternateContent xmlns:mc="{MC}" xmlns:cx1="{cx}"><mc:Choice Requires="cx1"><w:t>'
             'CHARTEX</w:t></mc:Choice><mc:Fallback><w:t>PICTURE</w:t></mc:Fallback></mc:AlternateContent>'
             f'</w:r></w:p><w:p><w:r><mc:AlternateContent xmlns:mc="{MC}" xmlns:cx1="{cx}"><mc:Choice '
             'Requires="cx1"><w:t>ONLY-CHARTEX</w:t></mc:Choice></mc:AlternateContent></w:r></w:p>')
    r, out = _verified(_doc(tmp_path, block), tmp_path, default_policy)
    doc = _read(out, "word/document.xml")
    assert "PICTURE" in doc and ">CHARTEX<" not in doc
    assert "ONLY-CHARTEX" in doc  # without a picture, the chart is kept for the readers that draw it


def test_names_a_namespace_does_not_define_are_dropped(tmp_path, default_policy):
    """Found by the fuzzer: <script> unprefixed in a sheet whose default namespace is SpreadsheetML is in
    an allowed namespace, but SpreadsheetML defines no such element: dropped. Smart tags (Word 2007) stay."""
    def sheet(x: str) -> str:
        return x.replace("<sheetData>", "<script>alert(1)</script><sheetData>", 1)

    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "s.xlsx", edit={"xl/worksheets/sheet1.xml": sheet})
    assert "<script>" in _read(src, "xl/worksheets/sheet1.xml")
    r, out = _verified(src, tmp_path, default_policy)
    assert r.verdict == "sanitized" and "ooxml.unknown_markup" in {t.id for t in r.threats}
    assert "script" not in _read(out, "xl/worksheets/sheet1.xml")
    tag = ('<w:p><w:smartTag w:uri="urn:schemas-microsoft-com:office:smarttags" w:element="place"><w:r><w:t>東京'
           '</w:t></w:r></w:smartTag></w:p>')
    r, out = _verified(_doc(tmp_path, tag, name="tag.docx"), tmp_path, default_policy)
    assert r.verdict == "clean" and "<w:smartTag" in _read(out, "word/document.xml")


def test_markup_compatibility_proof_reads_names_by_their_bound_prefix(tmp_path):
    """The byte proof that a part needs no markup-compatibility processing looks at every name written
    with a prefix bound to the MCE namespace (not at a fixed list of words): only mc:Ignorable passes."""
    from cdr.formats import _xml

    mc = V.MC_NS
    src = make_docx(tmp_path / "plain.docx")
    with zipfile.ZipFile(src) as z:
        styles = z.read("word/styles.xml")
    assert mce.quiet(styles, V.WORD)
    at = b"<w:docDefaults>"
    for extra in (b'<mc:AlternateContent><mc:Choice Requires="w14"/></mc:AlternateContent>',
                  f'<m2:AlternateContent xmlns:m2="{mc}"><m2:Fallback/></m2:AlternateContent>'.encode(),
                  f'<AlternateContent xmlns="{mc}"><Fallback/></AlternateContent>'.encode(),
                  b'<w:docDefaults mc:MustUnderstand="w14">', b'<w:docDefaults\n\tmc:ProcessContent="w14:x">',
                  b'<w:docDefaults mc:PreserveElements="w14:x" >', b'<w:docDefaults mc:IgnorableX="w14">'):
        data = styles.replace(at, extra + (b"" if extra.startswith(at[:-1]) else at), 1)
        assert data != styles and not mce.quiet(data, V.WORD), extra
    # The words themselves in text, or in another namespace, are not markup compatibility.
    for extra in (b"<w:pPr/>", b'<w:name w:val="mc:AlternateContent Fallback"/>'):
        data = styles.replace(at, at + extra, 1)
        assert mce.quiet(data, V.WORD) or b"w:name" in extra, extra
    # The root's default namespace is read from its own attributes, one by one.
    e = EVIL
    assert _xml._root_default_ns(f'<?xml version="1.0"?><r xmlns="{e}" a="1"/>'.encode()) == e.encode()
    assert _xml._root_default_ns(f"<r a=\" xmlns='{e}'\"><x/></r>".encode()) is None
    assert _xml._root_default_ns(f'<r a=">" xmlns="{e}"/>'.encode()) == e.encode()  # ">" may be in a value
    assert _xml._root_default_ns(f'<!-- <r xmlns="{e}"> --><r/>'.encode()) is None
    assert _xml._root_default_ns(f'<?pi <r xmlns="{e}">?><r/>'.encode()) is None
    assert not _xml.vocabulary_clean(f"<r a=\" xmlns='{e}'\"><x/></r>".encode(), frozenset([e]))
