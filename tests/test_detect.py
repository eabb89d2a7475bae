"""Detection decides by content, never by name."""
from __future__ import annotations

import zipfile

import pytest

from cdr.detect import detect

CT = ('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
      '<Override PartName="/main.xml" ContentType="{ct}"/></Types>')


def make_zip(path, members: dict[str, bytes], first: str | None = None):
    with zipfile.ZipFile(path, "w") as z:
        if first:
            z.writestr(zipfile.ZipInfo(first), members.pop(first))
        for k, v in members.items():
            z.writestr(k, v)
    return path


@pytest.mark.parametrize("ct, mime, ext", [
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/vnd.ms-word.document.macroEnabled.main+xml",
     "application/vnd.ms-word.document.macroEnabled.12", ".docm"),
    ("application/vnd.ms-excel.sheet.macroEnabled.main+xml", "application/vnd.ms-excel.sheet.macroEnabled.12",
     ".xlsm"),
    ("application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
     "application/vnd.openxmlformats-officedocument.presentationml.slideshow", ".ppsx"),
    ("application/vnd.ms-excel.sheet.binary.macroEnabled.main",
     "application/vnd.ms-excel.sheet.binary.macroEnabled.12", ".xlsb"),
])
def test_ooxml_flavours_from_content_types(tmp_path, ct, mime, ext):
    p = make_zip(tmp_path / "renamed.zip", {"[Content_Types].xml": CT.format(ct=ct).encode(), "main.xml": b"<a/>"})
    det = detect(p)
    assert det.mime == mime and det.family == "ooxml" and det.extension == ext
    assert any(t.id == "file.type_mismatch" for t in det.threats)


def test_odf_from_mimetype_member(tmp_path):
    p = make_zip(tmp_path / "a.odt", {"mimetype": b"application/vnd.oasis.opendocument.text",
                                      "content.xml": b"<x/>"}, first="mimetype")
    det = detect(p)
    assert det.mime == "application/vnd.oasis.opendocument.text" and not det.threats


def test_pdf_with_junk_before_header(tmp_path):
    p = tmp_path / "a.pdf"
    p.write_bytes(b"JUNKJUNK" * 20 + b"%PDF-1.4\n%%EOF\n")
    det = detect(p)
    assert det.mime == "application/pdf"
    assert any("leading junk" in r for r in det.reasons)


def test_name_does_not_decide(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(b"%PDF-1.4\n%%EOF\n")
    det = detect(p)
    assert det.mime == "application/pdf" and det.claimed == ".jpg"
    assert [t.id for t in det.threats] == ["file.type_mismatch"]


def test_plain_zip_and_jar(tmp_path):
    assert detect(make_zip(tmp_path / "a.zip", {"a.txt": b"x"})).mime == "application/zip"
    jar = make_zip(tmp_path / "a.zip", {"META-INF/MANIFEST.MF": b"x", "a/B.class": b"\xca\xfe"})
    assert detect(jar).family == "executable"


def test_dangerous_extension_blocks_inert_content(tmp_path):
    p = tmp_path / "readme.js"
    p.write_text("just words")
    det = detect(p)
    assert det.family == "executable" and any(t.id == "file.executable" for t in det.threats)


def test_images_and_svg(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17)
    assert detect(png).mime == "image/png"
    svg = tmp_path / "a.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')
    assert detect(svg).mime == "image/svg+xml"


def test_empty_file_is_text(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    assert detect(p).family == "text"


def test_reasons_for_clerks_name_the_type_in_japanese(tmp_path):
    """The Japanese reason names the type in Japanese (the English one keeps the English label)."""
    from cdr.pipeline import process
    from cdr.policy import load_policy

    exe = tmp_path / "請求書.pdf"
    exe.write_bytes(b"MZ" + b"\x90" * 58 + b"\x40\x00\x00\x00PE\x00\x00" + b"\x00" * 400)
    r = process(exe, exe.name, tmp_path / "o", load_policy("default"))
    assert r.verdict == "blocked" and "Windowsの実行ファイル" in r.reason_ja, r.reason_ja
    assert "executable" in r.reason_en and "executable" not in r.reason_ja


def test_shift_jis_text_starting_with_mi_is_not_a_dos_program(tmp_path):
    """libmagic takes 0x8C (見 in Shift_JIS) for a DOS .COM opcode; 見積書 in a text file is text."""
    p = tmp_path / "見積.txt"
    p.write_bytes("見積書\t金額\r\n工事一式\t100000\r\n".encode("cp932"))
    assert detect(p, p.name).mime == "text/plain"
    com = tmp_path / "prog.txt"
    com.write_bytes(b"\xe9\x10\x00\xcd\x21\xb4\x4c\xcd\x21" * 50)  # machine code stays refused
    assert detect(com, com.name).family in ("unknown", "executable")


def test_content_types_bomb_is_not_inflated_by_detection(tmp_path):
    """Detection reads the first 2 MB of [Content_Types].xml, never the whole member (a 1 MB ZIP
    could otherwise make it inflate a gigabyte before any archive limit applies)."""
    import tracemalloc

    p = tmp_path / "bomb.docx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", b" " * (200 << 20))
    tracemalloc.start()
    det = detect(p, p.name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert det.mime == "application/zip" and peak < 32 << 20, (det.mime, peak)
