"""PDF image streams are written anew: JBIG2 and fax images decoded and written again as Group 4 by libtiff,
JPEG 2000 decoded and stored with Flate, JPEGs rebuilt on their coefficients; the pages render the same (poppler, pixel for pixel) and none of the sender's
codec bytes, nor anything after them, reaches the output."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name
from PIL import Image, ImageChops

from cdr.fuzz import oracle
from cdr.pipeline import process
from samples.pdf_samples import (
    _base,
    _bilevel,
    _jpeg_bytes,
    _jpx_bytes,
    _save,
    codec_images_pdf,
    g4_strip,
    jbig2_stream,
)
from tests.test_pdf import _policy

PAYLOAD = b"MZ\x90\x00 payload after the image data"


def _sanitize(tmp: Path, data: bytes, name: str = "t.pdf"):
    src = tmp / name
    src.write_bytes(data)
    return src, process(src, name, tmp / "out", _policy())


def _render(path: Path, tmp: Path) -> list[Image.Image]:
    prefix = tmp / f"r-{path.stem}"
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(path), str(prefix)], check=True, capture_output=True,
                   timeout=120)
    return [Image.open(p).convert("RGB") for p in sorted(tmp.glob(f"r-{path.stem}-*.png"))]


def _fax_samples(xo) -> bytes:
    """What a reader's CCITTFaxDecode gives for the stream (libtiff through a TIFF header, as pikepdf does)."""
    pim = pikepdf.PdfImage(xo)
    with pim.as_pil_image(apply_decode_array=False, apply_mask=False) as im:
        return im.tobytes()


def _xobjects(path: Path) -> dict[str, tuple]:
    """name -> (filter, decoded samples, dictionary without its length) of page 1's images."""
    with pikepdf.open(path) as pdf:
        out = {}
        for name, xo in pdf.pages[0].Resources.XObject.items():
            data = {"/FlateDecode": xo.read_bytes, "/CCITTFaxDecode": lambda x=xo: _fax_samples(x)}.get(
                str(xo.Filter), xo.read_raw_bytes)()
            out[name] = (str(xo.get("/Filter")), data, {k: str(v) for k, v in xo.items() if k != "/Length"})
        return out


def test_codec_images_are_rebuilt_and_render_the_same(tmp_path):
    src, res = _sanitize(tmp_path, codec_images_pdf())
    assert res.verdict == "clean", (res.reason, res.threats)
    out = Path(res.output)
    assert {t.detail for t in res.threats if t.id == "pdf.image_recoded"} == {
        "1 JBIG2, 1 CCITT fax image(s) decoded and stored again without loss (as CCITT G4 written anew); the pages "
        "look the same", "1 JPEG 2000 image(s) decoded and stored again without loss (with Flate); the pages look "
        "the same"}
    imgs = _xobjects(out)
    assert {k: v[0] for k, v in imgs.items()} == {"/J2": "/CCITTFaxDecode", "/Fax": "/CCITTFaxDecode",
                                                   "/Jpx": "/FlateDecode", "/Jpg": "/DCTDecode",
                                                   "/Cmyk": "/DCTDecode"}
    for name in ("/J2", "/Fax"):  # Group 4, the default black sense, no other parameter
        assert imgs[name][2]["/DecodeParms"] == str(Dictionary(K=-1, Columns=320, Rows=120))
    # JBIG2 and fax: the samples a reader's filter gives (0 = black), exactly. The fax data codes the page's
    # white as black runs (libtiff codes 1 bits as black) and says BlackIs1, so it too reads as the page.
    assert imgs["/J2"][1] == _bilevel().tobytes()
    assert imgs["/Fax"][1] == _bilevel(seed=20).tobytes()
    assert imgs["/Jpx"][2]["/ColorSpace"] == "/DeviceRGB" and imgs["/Jpx"][2]["/BitsPerComponent"] == "8"
    with Image.open(io.BytesIO(_jpx_bytes())) as jpx:
        assert imgs["/Jpx"][1] == jpx.tobytes()
    # JPEG: a stream written from the same coefficients (libjpeg decodes the same pixels; for these files,
    # written by libjpeg with the standard tables, even the same bytes); the Decode array stays.
    for name, original in (("/Jpg", _jpeg_bytes()), ("/Cmyk", _jpeg_bytes(cmyk=True))):
        with Image.open(io.BytesIO(imgs[name][1])) as a, Image.open(io.BytesIO(original)) as b:
            assert a.mode == b.mode and a.tobytes() == b.tobytes()
    assert imgs["/Cmyk"][2]["/Decode"] == str(Array([1, 0, 1, 0, 1, 0, 1, 0]))
    # The page as poppler draws it: the same pixels.
    before, after = _render(src, tmp_path), _render(out, tmp_path)
    assert len(before) == len(after) == 1
    assert ImageChops.difference(before[0], after[0]).getbbox() is None
    assert before[0].convert("L").getextrema()[0] == 0  # the images drew something black
    assert oracle.scan_file(out) == []


def test_bytes_after_the_image_data_do_not_survive(tmp_path):
    data = codec_images_pdf(PAYLOAD)
    assert data.count(PAYLOAD) == 2
    src, res = _sanitize(tmp_path, data)
    assert res.verdict == "clean", (res.reason, res.threats)
    out = Path(res.output).read_bytes()
    assert PAYLOAD not in out
    with pikepdf.open(io.BytesIO(out)) as pdf:
        for xo in pdf.pages[0].Resources.XObject.values():
            assert PAYLOAD not in (xo.read_bytes() if xo.Filter == Name.FlateDecode else xo.read_raw_bytes())
    before, after = _render(src, tmp_path), _render(Path(res.output), tmp_path)
    assert ImageChops.difference(before[0], after[0]).getbbox() is None


def test_the_oracle_sees_codec_data_left_in_an_output():
    assert oracle.scan_pdf(codec_images_pdf()) == ["pdf image codec data not rebuilt"]


def _one_image(data: bytes, **kw) -> bytes:
    pdf = _base()
    s = pikepdf.Stream(pdf, data)
    s.Type, s.Subtype = Name.XObject, Name.Image
    for k, v in kw.items():
        s[Name("/" + k)] = v
    pdf.pages[0].obj.Resources.XObject = Dictionary(Im=pdf.make_indirect(s))
    page = pdf.pages[0].obj
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nq 100 0 0 50 40 600 cm /Im Do Q")
    return _save(pdf)


@pytest.mark.parametrize("case, data, kw, words", [
    ("jbig2 damaged", b"\x00\x00\x00\x00\x30" + b"\xff" * 40, dict(Width=32, Height=8, BitsPerComponent=1,
                                                                     ColorSpace=Name.DeviceGray,
                                                                     Filter=Name.JBIG2Decode), "JBIG2"),
    ("jbig2 larger than its dictionary", None, dict(Width=32, Height=8, BitsPerComponent=1,
                                                    ColorSpace=Name.DeviceGray, Filter=Name.JBIG2Decode), "320x120"),
    ("jpx not jpx", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 30, dict(Width=8, Height=8,
                                                                             Filter=Name.JPXDecode), "JPEG 2000"),
    ("jpeg damaged", b"\xff\xd8\xff\xdb" + b"\x00" * 50, dict(Width=8, Height=8, BitsPerComponent=8,
                                                              ColorSpace=Name.DeviceGray, Filter=Name.DCTDecode),
     "JPEG"),
    ("codec before a general filter", None, dict(Width=120, Height=80, BitsPerComponent=8,
                                                  ColorSpace=Name.DeviceRGB,
                                                  Filter=Array([Name.DCTDecode, Name.FlateDecode])), "filters"),
    ("fax with another width", None, dict(Width=300, Height=120, BitsPerComponent=1, ColorSpace=Name.DeviceGray,
                                          Filter=Name.CCITTFaxDecode,
                                          DecodeParms=Dictionary(K=-1, Columns=320, Rows=120)), "fax"),
])
def test_image_data_that_cannot_be_rebuilt_exactly_blocks(tmp_path, case, data, kw, words):
    if data is None:
        data = {"jbig2 larger than its dictionary": lambda: jbig2_stream(_bilevel()),
                "codec before a general filter": _jpeg_bytes,
                "fax with another width": lambda: g4_strip(_bilevel())}[case]()
    _src, res = _sanitize(tmp_path, _one_image(data, **kw))
    assert res.verdict == "blocked" and res.output is None
    assert "an image in the PDF cannot be rebuilt" in res.reason and words in res.reason, res.reason


def test_codec_data_in_a_stream_that_is_not_an_image_blocks(tmp_path):
    pdf = _base()
    form = pikepdf.Stream(pdf, _jpeg_bytes())
    form.Type, form.Subtype, form.BBox, form.Filter = Name.XObject, Name.Form, Array([0, 0, 10, 10]), Name.DCTDecode
    pdf.pages[0].obj.Resources.XObject = Dictionary(F=pdf.make_indirect(form))
    _src, res = _sanitize(tmp_path, _save(pdf))
    assert res.verdict == "blocked" and "not an image" in res.reason


def test_general_filters_before_the_codec_are_undone_and_jbig2_globals_dropped(tmp_path):
    import zlib

    mono = _bilevel(seed=9)
    data = zlib.compress(jbig2_stream(mono))
    pdf = pikepdf.open(io.BytesIO(_one_image(data, Width=320, Height=120, BitsPerComponent=1,
                                             ColorSpace=Name.DeviceGray,
                                             Filter=Array([Name.FlateDecode, Name.JBIG2Decode]))))
    # An empty globals stream (a producer writes one even when the symbols are all in the page's data).
    xo = pdf.pages[0].Resources.XObject.Im
    xo.DecodeParms = Array([pikepdf.Dictionary(), Dictionary(JBIG2Globals=pdf.make_stream(b""))])
    _src, res = _sanitize(tmp_path, _save(pdf))
    assert res.verdict == "clean", res.reason
    (_f, samples, d), = _xobjects(Path(res.output)).values()
    assert d["/Filter"] == "/CCITTFaxDecode" and "JBIG2Globals" not in d["/DecodeParms"]
    assert samples == mono.tobytes()


def test_jpx_with_alpha_keeps_it_as_a_soft_mask(tmp_path):
    im = Image.new("RGBA", (40, 30), (200, 30, 30, 255))
    for x in range(40):
        for y in range(15):
            im.putpixel((x, y), (20, 20, 200, x * 6))
    buf = io.BytesIO()
    im.save(buf, "JPEG2000")
    _src, res = _sanitize(tmp_path, _one_image(buf.getvalue(), Width=40, Height=30, Filter=Name.JPXDecode,
                                               SMaskInData=1))
    assert res.verdict == "clean", res.reason
    with pikepdf.open(res.output) as pdf:
        xo = pdf.pages[0].Resources.XObject.Im
        assert xo.Filter == Name.FlateDecode and xo.ColorSpace == Name.DeviceRGB and "/SMaskInData" not in xo
        assert xo.read_bytes() == im.convert("RGB").tobytes()
        assert xo.SMask.read_bytes() == im.getchannel("A").tobytes()


def _inline_pdf(in_pattern: bool = False) -> bytes:
    """A page drawing a JPEG and a hex-wrapped fax image inline (BI ... ID ... EI), or a pattern that does."""
    pdf = _base()
    page = pdf.pages[0].obj
    fax = g4_strip(_bilevel(seed=5)).hex().encode() + b">"
    jpeg = (b"BI /W 120 /H 80 /CS /RGB /BPC 8 /F /DCT ID " + _jpeg_bytes() + PAYLOAD + b"\nEI")
    ccf = (b"BI /W 320 /H 120 /CS /G /BPC 1 /F [/AHx /CCF] /DP [null << /K -1 /Columns 320 /BlackIs1 true >>] ID "
           + fax + b"\nEI")
    if in_pattern:
        pat = pdf.make_stream(b"q 10 0 0 10 0 0 cm " + jpeg + b" Q")
        pat.Type, pat.PatternType, pat.PaintType, pat.TilingType = Name.Pattern, 1, 1, 1
        pat.BBox, pat.XStep, pat.YStep, pat.Resources = Array([0, 0, 10, 10]), 10, 10, Dictionary()
        page.Resources.Pattern = Dictionary(P0=pat)
        draw = b"q /Pattern cs /P0 scn 40 400 200 200 re f Q"
    else:
        draw = b"q 240 0 0 160 40 600 cm " + jpeg + b" Q q 320 0 0 120 40 420 cm " + ccf + b" Q"
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\n" + draw)
    return _save(pdf)


def test_inline_codec_images_become_rebuilt_xobjects(tmp_path):
    src, res = _sanitize(tmp_path, _inline_pdf())
    assert res.verdict == "clean", (res.reason, res.threats)
    out = Path(res.output)
    assert PAYLOAD not in out.read_bytes()
    with pikepdf.open(out) as pdf:
        content = pdf.pages[0].obj.Contents.read_bytes()
        assert b" ID " not in content and b"BI" not in content.split()
        filters = sorted(str(x.Filter) for x in pdf.pages[0].Resources.XObject.values())
        assert filters == ["/CCITTFaxDecode", "/DCTDecode"]
    before, after = _render(src, tmp_path), _render(out, tmp_path)
    assert ImageChops.difference(before[0], after[0]).getbbox() is None
    assert oracle.scan_file(out) == []


def test_inline_codec_image_in_a_pattern_blocks(tmp_path):
    _src, res = _sanitize(tmp_path, _inline_pdf(in_pattern=True))
    assert res.verdict == "blocked" and "inline image" in res.reason, res.reason


def test_through_the_sandboxed_worker(tmp_path):
    """`cdr sanitize` runs the rebuild in a sandboxed worker: jbig2dec and OpenJPEG load there too."""
    import json
    import sys

    src = tmp_path / "scan.pdf"
    src.write_bytes(codec_images_pdf())
    cdr = Path(sys.executable).with_name("cdr")
    subprocess.run([str(cdr), "sanitize", str(src), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json")],
                   check=True, capture_output=True, timeout=120)
    (f,) = json.loads((tmp_path / "r.json").read_text("utf-8"))["files"]
    assert f["verdict"] == "clean" and "pdf.image_recoded" in {t["id"] for t in f["threats"]}, f
    assert oracle.scan_file(Path(f["output"])) == []


def test_a_damaged_object_qpdf_cannot_cast_blocks_as_damaged(tmp_path):
    """Fuzz case (seed 2050): qpdf raised std::bad_cast copying a damaged catalog entry; the file was blocked as
    "could not be parsed (RuntimeError)". It is a damaged PDF, and the reason says so."""
    case = Path(__file__).parent / "fuzz_regressions" / "pdf" / "82bf64799755.bin"
    _src, res = _sanitize(tmp_path, case.read_bytes())
    assert res.verdict == "blocked" and res.reason_en.startswith("the PDF is damaged where its parser"), res.reason_en


def test_a_jpeg_larger_than_the_pixel_limit_blocks_before_libjpeg_allocates(tmp_path):
    """The JPEG's own frame size is checked (its dictionary may claim a small image)."""
    import struct as st

    data = bytearray(_jpeg_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = st.pack(">HH", 60000, 60000)  # height, width in the frame header
    _src, res = _sanitize(tmp_path, _one_image(bytes(data), Width=120, Height=80, BitsPerComponent=8,
                                                ColorSpace=Name.DeviceRGB, Filter=Name.DCTDecode))
    assert res.verdict == "blocked" and "more pixels than the policy limit" in res.reason_en, res.reason_en


def test_a_filter_name_that_is_not_utf8_is_no_codec(tmp_path):
    """Fuzz case (seed 2052): a flipped byte made a stream's /Filter a name that is not UTF-8; the image pass
    turned it into text and raised. It is no codec: the file goes on through the rebuild."""
    case = Path(__file__).parent / "fuzz_regressions" / "pdf" / "2c7333f1685f.bin"
    _src, res = _sanitize(tmp_path, case.read_bytes())
    assert not (res.reason_en or "").startswith("the file could not be parsed"), res.reason_en


def test_an_inline_codec_image_behind_an_escaped_filter_name_is_rebuilt(tmp_path):
    """/F /DC#54 is /DCT to every reader: the look for inline images reads the filters parsed, not spelled."""
    pdf = _base()
    page = pdf.pages[0].obj
    inline = b"BI /W 120 /H 80 /CS /RGB /BPC 8 /F /DC#54 ID " + _jpeg_bytes() + PAYLOAD + b"\nEI"
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nq 240 0 0 160 40 600 cm " + inline + b" Q")
    src, res = _sanitize(tmp_path, _save(pdf))
    assert res.verdict == "clean", (res.reason, res.threats)
    with pikepdf.open(res.output) as out:
        assert b"DC#54" not in out.pages[0].obj.Contents.read_bytes()
        (xo,) = out.pages[0].Resources.XObject.values()
        assert xo.Filter == Name.DCTDecode and PAYLOAD not in xo.read_raw_bytes()
    assert ImageChops.difference(_render(src, tmp_path)[0], _render(Path(res.output), tmp_path)[0]).getbbox() is None
