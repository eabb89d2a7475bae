"""Embedded TrueType, OpenType and CFF programs are parsed and compiled anew with fontTools: tables a PDF
does not draw with go (a SING table, CVE-2010-2883's), every glyph is parsed, the page renders the same."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pikepdf
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops

from cdr.formats.pdf import fonts
from cdr.fuzz import oracle
from cdr.pipeline import process
from samples.pdf_samples import _test_font, embedded_font_pdf, type1_font_pdf
from tests.test_pdf import _policy

SING = b"\x00\x01" + b"A" * 600 + b"MZ\x90\x00payload"


def _sanitize(tmp: Path, data: bytes):
    src = tmp / "f.pdf"
    src.write_bytes(data)
    return src, process(src, "f.pdf", tmp / "out", _policy())


def _render(path: Path, tmp: Path) -> Image.Image:
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp / path.stem)], check=True,
                   capture_output=True, timeout=60)
    (png,) = tmp.glob(f"{path.stem}-*.png")
    return Image.open(png).convert("L")


def _font_file(path: Path) -> tuple[str, bytes]:
    with pikepdf.open(path) as pdf:
        desc = pdf.pages[0].Resources.Font.FT.FontDescriptor
        key = "/FontFile2" if "/FontFile2" in desc else "/FontFile3"
        return key, desc[key].read_bytes()


@pytest.mark.parametrize("kind", ["truetype", "opentype", "cff"])
def test_font_programs_compiled_anew_and_drawn_the_same(tmp_path, kind):
    extra = {"SING": SING} if kind != "cff" else None
    src, res = _sanitize(tmp_path, embedded_font_pdf(kind, extra, b"MZ\x90\x00 after the font"))
    assert res.verdict == "clean", (res.reason, res.threats)
    out = Path(res.output)
    key, new = _font_file(out)
    _key, old = _font_file(src)
    assert new != old and b"payload" not in out.read_bytes() and b"after the font" not in new
    if kind != "cff":
        t = TTFont(io.BytesIO(new))
        assert "SING" not in t and {"glyf", "CFF "} & set(t.keys())
        assert [t.id for t in res.threats if t.id == "pdf.font_rebuilt"] == ["pdf.font_rebuilt"]
        assert "SING" in next(t.detail for t in res.threats if t.id == "pdf.font_rebuilt")
    before, after = _render(src, tmp_path), _render(out, tmp_path)
    assert ImageChops.difference(before, after).getbbox() is None
    # The text is drawn with the embedded glyphs: four rectangles of the font's own shapes.
    assert sum(1 for v in before.crop((30, 270, 330, 330)).tobytes() if v < 100) > 1000
    assert oracle.scan_file(out) == []


def test_truetype_length1_is_the_new_program(tmp_path):
    _src, res = _sanitize(tmp_path, embedded_font_pdf())
    with pikepdf.open(res.output) as pdf:
        ff = pdf.pages[0].Resources.Font.FT.FontDescriptor.FontFile2
        assert ff.Length1 == len(ff.read_bytes())


def test_a_font_whose_glyphs_do_not_parse_blocks(tmp_path):
    data = _test_font()
    t = TTFont(io.BytesIO(data))
    glyf_off = next(off for tag, off in ((t.reader.tables[k].tag, t.reader.tables[k].offset)
                                         for k in t.reader.tables) if tag == "glyf")
    broken = bytearray(data)
    broken[glyf_off:glyf_off + 2] = b"\x7f\xff"  # the first glyph claims 32,767 contours
    pdf = pikepdf.open(io.BytesIO(embedded_font_pdf()))
    ff = pdf.pages[0].Resources.Font.FT.FontDescriptor.FontFile2
    ff.write(bytes(broken))
    ff.Length1 = len(broken)
    buf = io.BytesIO()
    pdf.save(buf)
    _src, res = _sanitize(tmp_path, buf.getvalue())
    assert res.verdict == "blocked" and "a font in the PDF cannot be rebuilt" in res.reason_en, res.reason_en


def test_a_font_over_the_glyph_budget_is_rebuilt_table_by_table(tmp_path, monkeypatch):
    """A whole CJK font would take tens of seconds glyph by glyph: above the budget its glyph programs are
    copied and the tables around them compiled anew (the SING table still goes)."""
    monkeypatch.setattr(fonts, "GLYPH_BUDGET", 2)
    src, res = _sanitize(tmp_path, embedded_font_pdf("opentype", {"SING": SING}))
    assert res.verdict == "clean", res.reason
    _key, new = _font_file(Path(res.output))
    assert "SING" not in TTFont(io.BytesIO(new))
    assert ImageChops.difference(_render(src, tmp_path), _render(Path(res.output), tmp_path)).getbbox() is None


def test_the_oracle_sees_a_font_table_that_was_not_rebuilt():
    assert oracle.scan_pdf(embedded_font_pdf("opentype", {"SING": SING})) == ["pdf font tables not rebuilt: SING"]
    assert oracle.scan_pdf(embedded_font_pdf("truetype")) == []


def test_type1_program_decrypted_and_written_again(tmp_path):
    """A Type 1 program (FontFile): eexec decrypted, charstrings decompiled, encrypted anew with its three
    lengths; bytes after its trailer go; the page renders the same."""
    src, res = _sanitize(tmp_path, type1_font_pdf(b"MZ\x90\x00 after the font"))
    assert res.verdict == "clean", (res.reason, res.threats)
    out = Path(res.output)
    with pikepdf.open(src) as a, pikepdf.open(out) as b:
        old = next(o for o in a.objects if isinstance(o, pikepdf.Stream) and "/Length2" in o)
        new = next(o for o in b.objects if isinstance(o, pikepdf.Stream) and "/Length2" in o)
        data = new.read_bytes()
        assert data != old.read_bytes() and b"after the font" not in data
        assert int(new.Length1) + int(new.Length2) + int(new.Length3) == len(data)
        assert data[:int(new.Length1)].rstrip().endswith(b"eexec")
        assert data[int(new.Length1) + int(new.Length2):].lstrip().startswith(b"0" * 64) and b"cleartomark" in data[-64:]
    before, after = _render(src, tmp_path), _render(out, tmp_path)
    assert ImageChops.difference(before, after).getbbox() is None
    assert sum(1 for v in before.tobytes() if v < 100) > 300
