"""Convert mode carries over what LibreOffice's OOXML export of a legacy file loses (issue 17, point 2).

Two files made by LibreOffice and patched where it cannot write a construct (samples/fidelity_samples.py):
- a .doc whose DOP sets "do not use HTML paragraph auto spacing" (spacings add up: two pages; the plain
  export lays it out on one);
- an .xls with a three-page form (narrow columns, fixed rows, two check boxes, one checked), first-page
  and even-page headers and footers, a hidden sheet that is the active tab and a very hidden sheet.
Both go through the real pipeline with `mode = "convert"`; outputs are checked part by part and rendered
by LibreOffice (four LibreOffice runs for the samples and conversions, one for the rendering).
"""
from __future__ import annotations

import re
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from benchmarks import fidelity
from cdr.formats.legacy_office import biff
from cdr.pipeline import process
from cdr.policy import Policy
from samples import fidelity_samples as fs
from samples.legacy_samples import _soffice

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                                reason="LibreOffice and poppler needed")
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


@pytest.fixture(scope="module")
def converted(tmp_path_factory, default_policy):
    t = tmp_path_factory.mktemp("legacy-carry")
    fs.form_ods(t / "form.ods")
    fs.spacing_docx(t / "spacing.docx")
    _soffice(t / "profile", "--convert-to", "xls:MS Excel 97", "--outdir", str(t / "lo"), str(t / "form.ods"))
    _soffice(t / "profile", "--convert-to", "doc:MS Word 97", "--outdir", str(t / "lo"), str(t / "spacing.docx"))
    xls = fs.form_xls(t / "lo" / "form.xls", t / "申請様式.xls")
    doc = shutil.copyfile(t / "lo" / "spacing.doc", t / "記載例.doc")
    data = default_policy.to_dict()
    data["families"]["legacy_office"]["mode"] = "convert"
    policy = Policy.from_dict(data)
    results = {}
    for src in (xls, doc):
        res = process(src, src.name, t / "out", policy)
        assert res.verdict in ("clean", "sanitized") and res.output, (src.name, res.reason)
        assert not res.warnings, res.warnings
        results[src.suffix] = (src, res)
    stage = t / "stage"
    stage.mkdir()
    files = {"xls-out": Path(results[".xls"][1].output), "doc-in": doc, "doc-out": Path(results[".doc"][1].output)}
    staged = {k: Path(shutil.copyfile(p, stage / f"{k}{p.suffix}")) for k, p in files.items()}
    pdfs = fidelity.to_pdf(list(staged.values()), t / "pdf", t / "profile-render")
    assert len(pdfs) == len(staged)
    return results, {k: pdfs[s] for k, s in staged.items()}


def _part(path: str, name: str) -> etree._Element:
    with zipfile.ZipFile(path) as z:
        return etree.fromstring(z.read(name))


def _pages(pdf: Path) -> list[str]:
    return [p for p in fidelity.pdf_text(pdf).split("\f") if p.strip()]


def test_paragraph_spacing_option(converted, tmp_path):
    results, pdfs = converted
    settings = _part(results[".doc"][1].output, "word/settings.xml")
    assert settings.find(".//{*}compat/{*}doNotUseHTMLParagraphAutoSpacing") is not None
    # Spacings add up as in the .doc: the same two pages, the same layout (without it: one page).
    r = fidelity.compare_pdfs("spacing", pdfs["doc-in"], pdfs["doc-out"], tmp_path)
    assert r.same_pages and r.pages_original == 2 and r.text >= 0.98 and r.visual >= 0.99, r


def test_sheet_visibility_and_active_tab(converted):
    results, pdfs = converted
    res = results[".xls"][1]
    wb = _part(res.output, "xl/workbook.xml")
    assert [(s.get("name"), s.get("state")) for s in wb.iter(f"{S}sheet")] == [
        ("申請", "visible"), ("控え", "hidden"), ("設定", "hidden")]
    assert wb.find(f".//{S}workbookView").get("activeTab") == "0"  # the active hidden 控え is not shown
    hidden = {(t.id, t.location, t.action) for t in res.threats if t.id.endswith("hidden_sheet")}
    assert hidden == {("ole.hidden_sheet", "sheet 設定", "converted"),
                      ("ooxml.hidden_sheet", "xl/workbook.xml: 控え", "reported")}
    text = fidelity.pdf_text(pdfs["xls-out"])
    assert "設問1" in text and "控えの内容" not in text and "設定値" not in text


def test_first_page_and_even_page_headers(converted):
    results, pdfs = converted
    hf = _part(results[".xls"][1].output, "xl/worksheets/sheet1.xml").find(f"{S}headerFooter")
    assert hf.get("differentFirst") in ("1", "true") and hf.get("differentOddEven") in ("1", "true")
    first_h, first_f, even_h, even_f = fs.HEADERS
    assert [(etree.QName(c).localname, c.text) for c in hf][2:] == [
        ("evenHeader", even_h), ("evenFooter", even_f), ("firstHeader", first_h), ("firstFooter", first_f)]
    pages = _pages(pdfs["xls-out"])
    assert "表紙ヘッダー" in pages[0] and "表紙フッター" in pages[0] and "偶数ページ" not in pages[0]
    assert "偶数ページ 2" in pages[1] and "偶数フッター" in pages[1] and "表紙" not in pages[1]
    assert "偶数" not in pages[2] and "表紙" not in pages[2]


def test_column_widths_and_row_heights_as_stored(converted):
    results, _ = converted
    import olefile

    with olefile.OleFileIO(str(results[".xls"][0])) as ole:
        subs = biff._substreams(ole.openstream("Workbook").read())
    first = subs[1].recs
    widths = {}
    for r in first:
        if r.rt == 0x7D:
            lo, hi, dx = struct.unpack_from("<HHH", r.body, 0)
            widths.update({c: dx for c in range(lo, min(hi, 20) + 1)})
    heights = {struct.unpack_from("<H", r.body, 0)[0]: struct.unpack_from("<H", r.body, 6)[0] & 0x7FFF
               for r in first if r.rt == 0x208}
    sheet = _part(results[".xls"][1].output, "xl/worksheets/sheet1.xml")
    cols = [(int(c.get("min")), float(c.get("width"))) for c in sheet.iter(f"{S}col")]
    assert cols and all(w == widths[lo - 1] / 256 for lo, w in cols), (cols, widths)
    rows = {int(r.get("r")) - 1: float(r.get("ht")) for r in sheet.iter(f"{S}row") if r.get("ht")}
    assert len(rows) >= fs.FORM_ROWS and all(rows[k] == heights[k] / 20 for k in rows if k in heights)


def test_check_boxes_keep_state_label_and_place(converted):
    results, pdfs = converted
    out = results[".xls"][1].output
    sheet = _part(out, "xl/worksheets/sheet1.xml")
    controls = list(sheet.iter(f"{S}control"))
    assert len(controls) == len(fs.CHECKBOXES)
    rels = {el.get("Id"): el.get("Target") for el in _part(out, "xl/worksheets/_rels/sheet1.xml.rels")}
    vml_name = "xl/" + rels[sheet.find(f"{S}legacyDrawing").get(R_ID)].removeprefix("../")
    with zipfile.ZipFile(out) as z:
        vml = z.read(vml_name).decode()
        props = [z.read("xl/" + rels[c.get(R_ID)].removeprefix("../")).decode() for c in controls]
    ids = re.findall(r'<v:shape id="([^"]+)"', vml)
    assert ids == [f"_x0000_s{int(c.get('shapeId')):04d}" for c in controls]  # each shape found by its control
    checked = re.findall(r"<x:Checked>(\d)</x:Checked>", vml)
    assert checked == ["1"] and ['checked="Checked"' in p for p in props] == [on for _l, on in fs.CHECKBOXES]
    for c in controls:  # placed where the VML says, not at A1 with no size
        frm = c.find(f".//{S}anchor/{S}from")
        assert frm is not None and int(frm.find("{*}row").text) > 0
    text = fidelity.pdf_text(pdfs["xls-out"])
    assert all(label in text for label, _on in fs.CHECKBOXES)  # labels LibreOffice can read back
