"""Image streams of the rebuilt PDF written anew, so that no image codec data of the sender reaches a reader.

Readers decode a PDF's images with large C decoders, and those are a known way in (Adobe Reader's JBIG2,
CVE-2009-0658; FORCEDENTRY's JBIG2 in CoreGraphics; OpenJPEG and PDFium's JPX). Every image stream whose
last filter is an image codec is decoded here, in the worker, and written again:
- DCTDecode (JPEG): rebuilt on its DCT coefficients (libjpeg-turbo, as for a JPEG file): the decoded
  pixels stay the same; a JPEG libjpeg only decodes with a warning is re-encoded with its own quality;
- JBIG2Decode (jbig2dec) and CCITTFaxDecode (libtiff through Pillow): decoded to their samples and written
  again as CCITT Group 4 by libtiff (lossless; JBIG2 usually codes a page smaller than Group 4 does);
- JPXDecode (OpenJPEG through Pillow): decoded and stored losslessly with Flate (the file grows: a lossy
  JPEG 2000 is far smaller than its pixels).
Anything that cannot be decoded exactly, or whose data disagrees with its dictionary, blocks the file.
"""
from __future__ import annotations

import io
import re
import struct
from typing import Any

import pikepdf
from pikepdf import Name

from ...errors import LimitExceeded, Malformed
from ...handler import Context
from ...model import Threat
from .._deflate import compressobj
from .allowlist import filter_names, name_str
from .content import reached

# Filters a reader undoes in full before the codec, and the image codecs (with their abbreviations).
_GENERAL = {"/FlateDecode", "/Fl", "/LZWDecode", "/LZW", "/RunLengthDecode", "/RL", "/ASCIIHexDecode", "/AHx",
            "/ASCII85Decode", "/A85"}
_CODECS = {"/DCTDecode": "dct", "/DCT": "dct", "/JPXDecode": "jpx", "/JBIG2Decode": "jbig2",
           "/CCITTFaxDecode": "ccitt", "/CCF": "ccitt"}
_NAMES = {"jbig2": "JBIG2", "jpx": "JPEG 2000", "ccitt": "CCITT fax", "dct": "JPEG"}
_COMPONENTS = {"/DeviceGray": 1, "/CalGray": 1, "/G": 1, "/DeviceRGB": 3, "/CalRGB": 3, "/RGB": 3, "/Lab": 3,
               "/DeviceCMYK": 4, "/CMYK": 4, "/Indexed": 1, "/I": 1, "/Separation": 1}
_LEVEL = 6


def _cannot(what: str, ja: str) -> Malformed:
    return Malformed(f"an image in the PDF cannot be rebuilt ({what})",
                     f"PDF内の画像を作り直せないため配送を停止しました（{ja}）")


def _parms(obj: Any, index: int) -> Any:
    p = obj.get("/DecodeParms")
    if isinstance(p, pikepdf.Array):
        p = p[index] if index < len(p) else None
    return p if isinstance(p, pikepdf.Dictionary) else None


def _codec_input(obj: Any, filters: list[str]) -> bytes:
    """The codec's input: the raw data with the general filters before it undone by qpdf. The stream is
    rewritten afterwards (or the file blocked), so its filter list is cut to those filters for the read."""
    if len(filters) == 1:
        return obj.read_raw_bytes()
    parms = obj.get("/DecodeParms")
    obj.Filter = pikepdf.Array([Name(f) for f in filters[:-1]])
    if isinstance(parms, pikepdf.Array):
        obj.DecodeParms = pikepdf.Array(list(parms)[:-1])
    elif parms is not None:
        del obj["/DecodeParms"]
    try:
        return obj.read_bytes()
    except pikepdf.PdfError:
        raise _cannot("damaged compressed data", "圧縮データの破損") from None


def _int(obj: Any, key: str) -> int | None:
    v = obj.get(key)
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _components(cs: Any) -> int | None:
    if isinstance(cs, Name):
        return _COMPONENTS.get(name_str(cs))
    if isinstance(cs, pikepdf.Array) and len(cs) and isinstance(cs[0], Name):
        family = name_str(cs[0])
        if family == "/ICCBased" and len(cs) > 1 and isinstance(cs[1], pikepdf.Stream):
            return _int(cs[1], "/N")
        if family == "/DeviceN" and len(cs) > 1 and isinstance(cs[1], pikepdf.Array):
            return len(cs[1])
        return _COMPONENTS.get(family)
    return None


def _deflate(data: bytes) -> bytes:
    co = compressobj(_LEVEL)
    return co.compress(data) + co.flush()


def _check_size(obj: Any, w: int, h: int, limit: int) -> None:
    if w * h > limit:
        raise LimitExceeded(f"an image in the PDF has {w}x{h} pixels, over the policy limit",
                            "PDF内の画像の画素数が上限を超えています", threat_id="pdf.bomb")
    dw, dh = _int(obj, "/Width"), _int(obj, "/Height")
    if (dw is not None and dw != w) or (dh is not None and dh != h):
        raise _cannot(f"its data is {w}x{h} pixels, its dictionary says {dw}x{dh}", "画像の大きさの不一致")


# --- per codec -----------------------------------------------------------------------------------
def _dct(obj: Any, data: bytes, parms: Any, limit: int) -> bool:
    """Rebuilt on the coefficients; True when it had to be re-encoded instead (libjpeg warned)."""
    from PIL import Image

    from ..image import _pixel_guard, turbojpeg

    try:  # the JPEG's own size (readers draw that one), before libjpeg allocates for it
        with _pixel_guard(limit), Image.open(io.BytesIO(data)) as head:
            w, h = head.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        w = h = limit  # over it
    except (OSError, ValueError, SyntaxError) as exc:
        raise _cannot(f"JPEG: {exc}"[:160], "JPEG画像の破損") from None
    if w * h > limit:
        raise LimitExceeded("a JPEG image in the PDF has more pixels than the policy limit",
                            "PDF内の画像の画素数が上限を超えています", threat_id="pdf.bomb")
    try:
        out, lossy = turbojpeg.transcode(data), False
    except turbojpeg.TranscodeError as exc:
        if not exc.warning:
            raise _cannot(f"JPEG: {exc}", "JPEG画像の破損") from None
        out, lossy = _reencode_jpeg(data, limit), True
    keep = pikepdf.Dictionary({"/ColorTransform": parms.ColorTransform}) \
        if parms is not None and isinstance(parms.get("/ColorTransform"), int) else None
    obj.write(out, filter=Name.DCTDecode, decode_parms=keep)
    return lossy


def _reencode_jpeg(data: bytes, limit: int) -> bytes:
    """A JPEG libjpeg decodes only with a warning (damaged or extra data), as a reader shows it, encoded
    again with its own quantisation tables (the least loss Pillow offers)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limit:
                raise LimitExceeded("an image in the PDF is over the pixel limit", "PDF内の画像の画素数が上限を超えています",
                                    threat_id="pdf.bomb")
            im.load()
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality="keep", subsampling="keep")
            return buf.getvalue()
    except (OSError, ValueError, SyntaxError) as exc:
        raise _cannot(f"JPEG: {exc}", "JPEG画像の破損") from None


def _jbig2(obj: Any, data: bytes, parms: Any, limit: int) -> None:
    from ..image import jbig2dec

    glob = parms.get("/JBIG2Globals") if parms is not None else None
    try:
        w, h, bits = jbig2dec.decode(data, glob.read_bytes() if isinstance(glob, pikepdf.Stream) else None)
    except jbig2dec.Jbig2Error as exc:
        raise _cannot(f"JBIG2: {exc}", "JBIG2画像の破損") from None
    except OSError:  # libjbig2dec0 is not installed (scripts/bootstrap.sh installs it)
        raise _cannot("no JBIG2 decoder on this machine", "JBIG2の復号ライブラリがありません") from None
    _check_size(obj, w, h, limit)
    if _int(obj, "/BitsPerComponent") not in (None, 1):
        raise _cannot("JBIG2 with more than one bit per pixel", "JBIG2画像の形式")
    # JBIG2 writes black as 1; the filter's output has black as 0 (PDF 32000-1, 7.4.7; so do pdf.js and poppler).
    _write_bilevel(obj, w, h, bits.translate(_INVERT))


_INVERT = bytes(255 - i for i in range(256))


def _write_bilevel(obj: Any, w: int, h: int, samples: bytes) -> None:
    """One-bit samples (the filter output a reader would get) stored as CCITT Group 4 written by libtiff: as
    exact as Flate, and a scanned page stays near its JBIG2 size (Flate is several times larger). libtiff codes
    1 bits as black runs, so it gets the inverted samples and the stream the default BlackIs1 false."""
    from PIL import Image

    im = Image.frombytes("1", (w, h), samples.translate(_INVERT))
    buf = io.BytesIO()
    im.save(buf, "TIFF", compression="group4", tiffinfo={278: h})  # one strip: strips cannot be joined
    with Image.open(io.BytesIO(buf.getvalue())) as t:
        (off,), (count,) = t.tag_v2[273], t.tag_v2[279]
    obj.write(buf.getvalue()[off:off + count], filter=Name.CCITTFaxDecode,
              decode_parms=pikepdf.Dictionary({"/K": -1, "/Columns": w, "/Rows": h}))
    obj.BitsPerComponent = 1


def _ccitt(obj: Any, data: bytes, parms: Any, limit: int) -> None:
    from PIL import Image

    p = parms if parms is not None else pikepdf.Dictionary()
    k = _int(p, "/K") or 0
    cols = _int(p, "/Columns") or 1728
    width, height = _int(obj, "/Width"), _int(obj, "/Height")
    rows = _int(p, "/Rows") or height
    if width is None or rows is None or cols != width or rows <= 0 or (height is not None and rows != height):
        raise _cannot("fax image whose size disagrees with its dictionary", "ファクス画像の大きさの不一致")
    if p.get("/EncodedByteAlign") is True:
        raise _cannot("fax image with byte-aligned lines", "ファクス画像の形式")
    _check_size(obj, cols, rows, limit)
    # A one-strip TIFF around the data for libtiff; photometric as pikepdf does: the decoded bits are the
    # filter's output (BlackIs1 false: black is 0).
    photometric = 1 if p.get("/BlackIs1") is True else 0
    tags = [(256, 4, cols), (257, 4, rows), (258, 3, 1), (259, 3, 4 if k < 0 else 3), (262, 3, photometric),
            (266, 3, 1), (273, 4, 0), (277, 3, 1), (278, 4, rows), (279, 4, len(data))]
    if k >= 0:
        tags.append((292, 4, 1 if k > 0 else 0))
    tags.sort()
    head = 8 + 2 + 12 * len(tags) + 4
    ifd = b"".join(struct.pack("<HHII", t, typ, 1, head if t == 273 else v) if typ == 4 else
                   struct.pack("<HHIHH", t, typ, 1, v, 0) for t, typ, v in tags)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + ifd + b"\x00" * 4 + data
    try:
        with Image.open(io.BytesIO(tiff)) as im:
            im.load()
            if im.mode != "1" or im.size != (cols, rows):
                raise _cannot("fax image libtiff read differently", "ファクス画像の形式")
            samples = im.tobytes()
    except (OSError, ValueError, SyntaxError) as exc:
        raise _cannot(f"fax image: {exc}", "ファクス画像の破損") from None
    _write_bilevel(obj, cols, rows, samples)


def _jpx(pdf: pikepdf.Pdf, obj: Any, data: bytes, limit: int) -> None:
    from PIL import Image

    from ..image import _pixel_guard

    if obj.get("/ImageMask") is True:
        raise _cannot("JPEG 2000 stencil mask", "JPEG 2000画像の形式")
    try:
        with _pixel_guard(limit):
            im = Image.open(io.BytesIO(data))
        if im.format not in ("JPEG2000",):
            raise _cannot("JPEG 2000 data that is not JPEG 2000", "JPEG 2000画像の破損")
        _check_size(obj, im.width, im.height, limit)
        im.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _cannot(f"JPEG 2000: {exc}", "JPEG 2000画像の破損") from None
    bands = im.getbands()
    alpha = im.getchannel("A") if "A" in bands else None
    cs = obj.get("/ColorSpace")
    want = _components(cs) if cs is not None else None
    if cs is not None and want is None:
        raise _cannot("JPEG 2000 in a colour space of unknown size", "JPEG 2000画像の色空間")
    colour = [b for b in bands if b != "A"]
    if want is not None and want == len(bands):
        colour, alpha = list(bands), None  # four components in a CMYK space are colours, not alpha
    elif want is not None and want != len(colour):
        raise _cannot(f"JPEG 2000 with {len(bands)} components in a {want}-component colour space",
                      "JPEG 2000画像の色空間")
    if im.mode in ("I;16", "I;16B", "I;16L"):
        samples, bpc = im.tobytes("raw", "I;16B"), 16
    elif im.mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        samples = im.tobytes() if not alpha or len(colour) == len(bands) else \
            Image.merge("L" if len(colour) == 1 else "RGB", [im.getchannel(b) for b in colour]).tobytes()
        bpc = 8
    else:
        raise _cannot(f"JPEG 2000 decoded as {im.mode}", "JPEG 2000画像の形式")
    if cs is None:
        obj.ColorSpace = {1: Name.DeviceGray, 3: Name.DeviceRGB, 4: Name.DeviceCMYK}[len(colour)] \
            if len(colour) in (1, 3, 4) else Name.DeviceGray
    smask_in_data = _int(obj, "/SMaskInData") or 0
    obj.write(_deflate(samples), filter=Name.FlateDecode)
    obj.BitsPerComponent = bpc
    for key in ("/Decode", "/SMaskInData"):
        if key in obj:
            del obj[key]
    if alpha is not None and smask_in_data and "/SMask" not in obj:
        mask = pikepdf.Stream(pdf, _deflate(alpha.tobytes()))
        mask.Type, mask.Subtype, mask.Filter = Name.XObject, Name.Image, Name.FlateDecode
        mask.Width, mask.Height, mask.ColorSpace, mask.BitsPerComponent = im.width, im.height, Name.DeviceGray, 8
        obj.SMask = pdf.make_indirect(mask)
    im.close()


# --- inline images -------------------------------------------------------------------------------
# The BI operator: content with an inline image is parsed to read its filters (a byte search for the codec
# names would miss one spelled with #xx escapes, /DC#54).
_BI = re.compile(rb"(?:^|[\s\[\]<>(){}/%])BI[\s/]")
_ABBREVIATED = {"/G": Name.DeviceGray, "/RGB": Name.DeviceRGB, "/CMYK": Name.DeviceCMYK, "/I": Name.Indexed}


def _content(obj: Any) -> bytes:
    try:
        return obj.read_bytes()
    except pikepdf.PdfError:
        return b""  # undecodable content draws nothing a reader could decode an image from


def _inline_codecs(stream_or_page: Any) -> list[str]:
    """Codec filters of the inline images in a content stream (or a page's contents)."""
    found = []
    try:
        instructions = pikepdf.parse_content_stream(stream_or_page)
    except pikepdf.PdfError:
        return ["unreadable content"]
    for inst in instructions:
        if isinstance(inst, pikepdf.ContentStreamInlineImage):
            f = inst.iimage.obj.get("/Filter")
            names = [name_str(x) for x in (f if isinstance(f, pikepdf.Array) else [f]) if isinstance(x, Name)]
            found += [n for n in names if n in _CODECS]
    return found


def _codec_inline(content: Any) -> list[str]:
    data = _content(content)
    return _inline_codecs(content) if b"BI" in data and _BI.search(data) else []  # the first test: a fast scan


def _externalize_inline(pdf: pikepdf.Pdf, contents: list[Any]) -> bool:
    """Inline images whose data a codec decodes become image XObjects (qpdf's externalization, on the pages
    and the forms they use), so that the pass over streams rebuilds them. Inline images elsewhere (a pattern,
    a glyph, an annotation's appearance) block the file."""
    if not any(_codec_inline(c) for c in contents):
        return False
    before = {o.objgen for o in pdf.objects}
    for page in pdf.pages:
        page.externalize_inline_images(min_size=0)
    for obj in pdf.objects:  # qpdf keeps abbreviations nested in arrays ([/I /RGB ...], [/AHx /DCT])
        if obj.objgen not in before and isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == Name.Image:
            cs = obj.get("/ColorSpace")
            if isinstance(cs, pikepdf.Array):
                obj.ColorSpace = pikepdf.Array([_ABBREVIATED.get(name_str(x), x) if isinstance(x, Name) else x
                                                for x in cs])
            elif isinstance(cs, Name) and name_str(cs) in _ABBREVIATED:
                obj.ColorSpace = _ABBREVIATED[name_str(cs)]
    for c in reached(pdf, list(pdf.objects)).contents:  # anew: the pages' contents were replaced
        left = _codec_inline(c)
        if left:
            raise _cannot(f"an inline image outside a page's content ({left[0]})", "ページ以外の埋め込み画像")
    return True


# --- the pass over the document ------------------------------------------------------------------
def rebuild(ctx: Context, pdf: pikepdf.Pdf, objects: list[Any], contents: list[Any]) -> list[Threat]:
    """Write every image codec stream of `pdf` anew (see the module's docstring); `objects` are the document's
    objects, `contents` its content streams (content.reached)."""
    limit = int(ctx.limits.max_pixels)
    counts: dict[str, int] = {}
    reencoded = 0
    if _externalize_inline(pdf, contents):
        objects = list(pdf.objects)
    for n, obj in enumerate(objects):
        if n % 200 == 0:
            ctx.check_time()
        if not isinstance(obj, pikepdf.Stream):
            continue
        filters = filter_names(obj)
        if not filters or not any(f in _CODECS for f in filters):
            continue
        codec = _CODECS.get(filters[-1])
        if codec is None or any(f not in _GENERAL for f in filters[:-1]):
            raise _cannot(f"filters {' '.join(filters)}", "画像の圧縮方式の組み合わせ")
        subtype = obj.get("/Subtype")
        if subtype != Name.Image and not (subtype is None and "/Width" in obj and "/Height" in obj):
            raise _cannot(f"{_NAMES[codec]} data in a stream that is not an image", "画像以外のデータに画像の圧縮方式")
        parms = _parms(obj, len(filters) - 1)
        data = _codec_input(obj, filters)
        if codec == "dct":
            reencoded += _dct(obj, data, parms, limit)
        elif codec == "jbig2":
            _jbig2(obj, data, parms, limit)
        elif codec == "ccitt":
            _ccitt(obj, data, parms, limit)
        else:
            _jpx(pdf, obj, data, limit)
        counts[codec] = counts.get(codec, 0) + 1
    threats = []
    for codecs, how in ((("jbig2", "ccitt"), "as CCITT G4 written anew"), (("jpx",), "with Flate")):
        notes = [f"{counts[c]} {_NAMES[c]}" for c in codecs if counts.get(c)]
        if notes:
            threats.append(Threat("pdf.image_recoded", "document", "reported",
                                  f"{', '.join(notes)} image(s) decoded and stored again without loss ({how}); "
                                  "the pages look the same"))
    if reencoded:
        threats.append(Threat("pdf.image_recoded", "document", "reported",
                              f"{reencoded} damaged JPEG image(s) re-encoded as a reader shows them (same quality)"))
    return threats
