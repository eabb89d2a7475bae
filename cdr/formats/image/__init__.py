"""Raster images (JPEG, PNG, GIF, BMP, TIFF, WebP): coefficient, pixel or chunk-level rebuild.

Mode "rebuild" (default): a JPEG is rebuilt on its DCT coefficients (turbojpeg.py: every scan
entropy-decoded, a new stream written with fresh Huffman tables, no marker copied, EXIF orientation
applied losslessly where the geometry allows); the decoded pixels stay the same. Other formats, and a
JPEG that cannot be rebuilt so (colour conversion, an imperfect turn, a stream libjpeg warns about),
are re-encoded from their pixels.
Mode "reencode" decodes the pixels with Pillow and writes a new file of the same format from the
pixels alone, JPEG included: EXIF orientation is applied first, frames and their timing are kept, and
nothing else of the original container survives (EXIF, XMP, IPTC, comments, text chunks, private
chunks, data after the end marker). PNG is written by png_write.py (fast deflate).
Mode "lossless": JPEG as in "rebuild"; PNG rewritten at chunk level without re-encoding, keeping
only the chunks needed to draw the image; other formats as in "reencode".
The pixel limit is checked from the header before any pixel is decoded.
"""
from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, JpegImagePlugin

from ...errors import LimitExceeded, Malformed
from ...handler import Context, Handler, Rebuilt, register
from ...model import Detection, Threat
from .._catalog import OPTIONS
from .._deflate import INFLATE_ERRORS, decompressobj
from .._deflate import crc32 as _crc32
from . import png_write, turbojpeg

ORIENTATION = 0x0112
# Same table as ImageOps.exif_transpose; applied per frame.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
MAX_FRAMES = 10_000
MAX_ICC = 4 << 20
_PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/bmp": "BMP",
               "image/tiff": "TIFF", "image/webp": "WEBP"}
# Errors Pillow raises on damaged data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError,
                  KeyError, TypeError, ZeroDivisionError)


def _malformed(what: str) -> Malformed:
    return Malformed(f"the image is damaged or truncated ({what})",
                     f"画像ファイルが壊れているか途中で切れています（{what}）")


@dataclass
class _Finding:
    id: str
    location: str
    detail: str = ""


# ---------------------------------------------------------------- opening with the pixel limit

@contextmanager
def _pixel_guard(max_pixels: int) -> Iterator[None]:
    """Pillow's own bomb check as an error at our limit, for the duration of a decode."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(int(max_pixels), 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _bomb(w: int, h: int, limit: int) -> LimitExceeded:
    return LimitExceeded(f"the image claims {w}x{h} pixels, more than the policy limit of {limit:,}",
                         f"画像の画素数（{w}×{h}）がポリシーの上限（{limit:,}）を超えています",
                         threat_id="image.bomb")


def _open(data: bytes, limit: int) -> Image.Image:
    """Open lazily (header only) and enforce the pixel limit before any decoding."""
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LimitExceeded("the image is larger than the pixel limit", "画像の画素数が上限を超えています",
                            threat_id="image.bomb") from None
    except Image.UnidentifiedImageError:
        raise _malformed("unreadable header") from None
    except _DECODE_ERRORS as exc:
        raise _malformed(type(exc).__name__) from None
    w, h = im.size
    if w <= 0 or h <= 0:
        raise _malformed("zero size")
    if w * h > limit:
        raise _bomb(w, h, limit)
    return im


# ---------------------------------------------------------------- ICC profiles

def _icc_ok(data: bytes | None) -> bool:
    if not data or len(data) > MAX_ICC:
        return False
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(data))
    except Exception:
        return False
    return True


def _icc_findings(data: bytes | None, policy: str, where: str) -> list[_Finding]:
    if data is None:
        return []
    if policy == "keep" and _icc_ok(data):
        return []
    why = "converted to sRGB by policy" if policy != "keep" else "profile cannot be parsed"
    return [_Finding("image.icc", where, why)]


# ---------------------------------------------------------------- JPEG structure

_JPEG_KEEP = {0xD8, 0xD9, 0xDB, 0xC4, 0xCC, 0xDD, 0xDA, 0xDC, *range(0xD0, 0xD8),
              0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB}
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"
# End of entropy-coded data: 0xFF followed by anything but stuffing (00), RSTn or fill (FF).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """[(marker, start, end)] from SOI to EOI, and the offset just after EOI."""
    if data[:2] != b"\xff\xd8":
        raise _malformed("no JPEG start marker")
    segs = [(0xD8, 0, 2)]
    pos, n = 2, len(data)
    while True:
        if pos >= n:
            raise _malformed("no JPEG end marker")
        if data[pos] != 0xFF:  # junk between segments: libjpeg skips it, so do we (and report it)
            nxt = data.find(b"\xff", pos)
            if nxt < 0:
                raise _malformed("no JPEG end marker")
            segs.append((-1, pos, nxt))
            pos = nxt
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise _malformed("no JPEG end marker")
        marker, start = data[pos], pos - 1
        pos += 1
        if marker == 0xD9:
            segs.append((marker, start, pos))
            return segs, pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            segs.append((marker, start, pos))
            continue
        if pos + 2 > n:
            raise _malformed("segment header cut off")
        length = int.from_bytes(data[pos:pos + 2], "big")
        end = pos + length
        if length < 2 or end > n:
            raise _malformed(f"segment 0x{marker:02X} runs past the end")
        if marker == 0xDA:  # entropy-coded data runs to the next real marker
            m = _SCAN_END.search(data, end)
            if m is None:
                raise _malformed("scan data cut off before the end marker")
            end = m.start()
        segs.append((marker, start, end))
        pos = end


def _exif_has_gps(payload: bytes) -> bool:
    try:
        ex = Image.Exif()
        ex.load(payload)
        return 0x8825 in ex
    except Exception:
        return False


def _jpeg_findings(data: bytes, icc_policy: str,
                   walked: tuple[list[tuple[int, int, int]], int] | None = None) -> tuple[list[_Finding], int]:
    segs, eoi = walked or _jpeg_segments(data)
    out: list[_Finding] = []
    icc_parts: list[tuple[int, bytes]] = []
    for marker, s, e in segs:
        if marker in _JPEG_KEEP:
            continue
        if marker < 0:
            out.append(_Finding("image.metadata", f"{e - s} extraneous bytes between segments"))
            continue
        p = data[s + 4:e]
        if marker == 0xE0:
            if p.startswith(b"JFIF\x00") and len(p) >= 14:
                if p[12] or p[13]:
                    out.append(_Finding("image.metadata", "JFIF thumbnail"))
            elif p.startswith(b"JFXX\x00"):
                out.append(_Finding("image.metadata", "JFXX thumbnail"))
            else:
                out.append(_Finding("image.metadata", "APP0 segment"))
        elif marker == 0xE1:
            if p.startswith(b"Exif\x00\x00"):
                gps = " (including GPS location)" if _exif_has_gps(p) else ""
                out.append(_Finding("image.metadata", f"EXIF{gps}"))
            elif p.startswith((_XMP, _XMP_EXT)):
                out.append(_Finding("image.metadata", "XMP"))
            else:
                out.append(_Finding("image.metadata", "APP1 segment"))
        elif marker == 0xE2 and p.startswith(b"ICC_PROFILE\x00") and len(p) > 14:
            icc_parts.append((p[12], p[14:]))
        elif marker == 0xE2 and p.startswith(b"MPF\x00"):
            out.append(_Finding("image.metadata", "MPF (multi-picture index)"))
        elif marker == 0xED:
            out.append(_Finding("image.metadata", "IPTC/Photoshop (APP13)"))
        elif marker == 0xEE and p.startswith(b"Adobe") and len(p) >= 12:
            continue
        elif marker == 0xFE:
            out.append(_Finding("image.metadata", "comment (COM)"))
        elif 0xE0 <= marker <= 0xEF:
            out.append(_Finding("image.metadata", f"APP{marker - 0xE0} segment"))
        else:
            out.append(_Finding("image.metadata", f"unknown marker 0x{marker:02X}"))
    if icc_parts:
        icc = b"".join(d for _, d in sorted(icc_parts, key=lambda x: x[0]))
        out += _icc_findings(icc, icc_policy, "ICC profile (APP2)")
    tail = data[eoi:]
    if tail.strip(b"\x00\xff"):
        out.append(_Finding("image.trailing_data", f"{len(tail)} bytes after the JPEG end marker"))
    return out, eoi


_PROGRESSIVE_SOF = {0xC2, 0xCA}  # progressive, Huffman or arithmetic
_ICC_CHUNK = 65519  # APP2 payload less its 14-byte header


def _jfif_density(out: bytes, dpi: dict) -> bytes:
    """The source's resolution in the JFIF header libjpeg wrote, when that header says none (unit 0):
    a source whose dpi was in its EXIF only keeps its print size."""
    if not dpi or out[2:4] != b"\xff\xe0" or out[6:11] != b"JFIF\x00" or len(out) < 20 or out[13]:
        return out
    x, y = (round(v) for v in dpi["dpi"])
    if not (0 < x < 65536 and 0 < y < 65536):
        return out
    return out[:13] + b"\x01" + struct.pack(">HH", x, y) + out[18:]


def _jpeg_icc(data: bytes, segs: list[tuple[int, int, int]]) -> bytes | None:
    """The ICC profile of the APP2 segments, in their sequence order; None without one."""
    parts = sorted((data[s + 16], data[s + 18:e]) for m, s, e in segs
                   if m == 0xE2 and data[s + 4:s + 16] == b"ICC_PROFILE\x00" and e - s > 18)
    return b"".join(p for _n, p in parts) if parts else None


# Levels 0, 64, 128, 192, 255 of each channel: 125 colours that a profile must leave where they are.
_PROBE = bytes(v for r in (0, 64, 128, 192, 255) for g in (0, 64, 128, 192, 255) for b in (0, 64, 128, 192, 255)
               for v in (r, g, b))


def _icc_is_srgb(icc: bytes | None) -> bool:
    """True when converting from this profile to sRGB moves no probe colour by more than 1 level (its
    description is not trusted: the colours are)."""
    if not _icc_ok(icc):
        return False
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))  # type: ignore[arg-type]
        if src.profile.xcolor_space.strip() != "RGB":
            return False
        t = ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                    ImageCms.Intent.RELATIVE_COLORIMETRIC)
        out = ImageCms.applyTransform(Image.frombytes("RGB", (125, 1), _PROBE), t)
    except Exception:
        return False
    return out is not None and max(abs(a - b) for a, b in zip(out.tobytes(), _PROBE, strict=True)) <= 1


def _jpeg_rebuild(data: bytes, segs: list[tuple[int, int, int]], icc_policy: str, orientation: int,
                  info: dict) -> bytes:
    """The JPEG rebuilt on its coefficients (turbojpeg.transcode); raises TranscodeError.

    Only three things of ours are added to libjpeg's output: the resolution (_jfif_density), and, with
    icc = "keep", the ICC profile segments once LittleCMS has parsed the profile."""
    progressive = any(m in _PROGRESSIVE_SOF for m, _s, _e in segs)
    out = turbojpeg.transcode(data, orientation, progressive)
    out = _jfif_density(out, _dpi(info, orientation))
    if icc_policy == "keep":
        icc = _jpeg_icc(data, segs)
        if icc and _icc_ok(icc):  # written anew, in chunks of our own, once LittleCMS has read it
            chunks = [icc[i:i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
            app2 = b"".join(b"\xff\xe2" + struct.pack(">H", len(c) + 16) + b"ICC_PROFILE\x00"
                            + bytes((n + 1, len(chunks))) + c for n, c in enumerate(chunks))
            at = 4 + int.from_bytes(out[4:6], "big") if out[2:4] == b"\xff\xe0" else 2
            out = out[:at] + app2 + out[at:]
    return out


# ---------------------------------------------------------------- PNG structure

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"pHYs",
             b"acTL", b"fcTL", b"fdAT", b"bKGD", b"sBIT"}


def _png_chunks(data: bytes) -> tuple[list[tuple[bytes, int, int]], int]:
    if not data.startswith(_PNG_SIG):
        raise _malformed("no PNG signature")
    pos, n, chunks = 8, len(data), []
    view = memoryview(data)
    while True:
        if pos + 12 > n:
            raise _malformed("PNG ends before IEND")
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n or not ctype.isalpha():
            raise _malformed("PNG chunk runs past the end")
        crc = int.from_bytes(data[end - 4:end], "big")
        if _crc32(view[pos + 4:end - 4]) != crc:
            raise _malformed(f"bad checksum in PNG chunk {ctype.decode('latin-1')}")
        if not chunks and ctype != b"IHDR":
            raise _malformed("PNG does not start with IHDR")
        chunks.append((ctype, pos, end))
        pos = end
        if ctype == b"IEND":
            return chunks, pos


def _png_iccp(data: bytes, s: int, e: int) -> bytes | None:
    body = data[s + 8:e - 4]
    nul = body.find(b"\x00")
    if nul < 0 or nul + 2 > len(body):
        return None
    try:
        d = zlib.decompressobj()
        icc = d.decompress(body[nul + 2:], MAX_ICC + 1)
    except zlib.error:
        return None
    return icc if len(icc) <= MAX_ICC else None


def _png_findings(data: bytes, icc_policy: str,
                  walked: tuple[list[tuple[bytes, int, int]], int] | None = None) -> tuple[list[_Finding], int]:
    chunks, iend = walked or _png_chunks(data)
    out: list[_Finding] = []
    for ctype, s, e in chunks:
        if ctype in _PNG_KEEP:
            continue
        name = ctype.decode("latin-1")
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            kw = data[s + 8:min(e - 4, s + 88)].split(b"\x00", 1)[0].decode("latin-1", "replace")
            what = "XMP" if kw == "XML:com.adobe.xmp" else f"text chunk {name} '{kw}'"
            out.append(_Finding("image.metadata", f"PNG {what}"))
        elif ctype == b"eXIf":
            out.append(_Finding("image.metadata", "PNG EXIF (eXIf)"))
        elif ctype == b"iCCP":
            out += _icc_findings(_png_iccp(data, s, e) or b"", icc_policy, "ICC profile (iCCP)")
        elif ctype == b"tIME":
            out.append(_Finding("image.metadata", "PNG timestamp (tIME)"))
        else:
            out.append(_Finding("image.metadata", f"PNG private or unknown chunk '{name}'"))
    tail = data[iend:]
    if tail.strip(b"\x00"):
        out.append(_Finding("image.trailing_data", f"{len(tail)} bytes after the PNG IEND chunk"))
    return out, iend


def _png_orientation(data: bytes, chunks: list[tuple[bytes, int, int]], im: Image.Image) -> int:
    """EXIF orientation from the eXIf chunk found by the chunk walk, without decoding any pixels.

    Pillow's getexif() on a PNG loads the whole image to reach chunks after IDAT. Orientation can also
    come from XMP or a "Raw profile type exif" text chunk: for those rare files ask Pillow after all."""
    exifs = [(s, e) for ct, s, e in chunks if ct == b"eXIf"]
    if len(exifs) == 1:
        s, e = exifs[0]
        try:
            ex = Image.Exif()
            ex.load(b"Exif\x00\x00" + data[s + 8:e - 4])
            if ORIENTATION in ex:
                o = int(ex[ORIENTATION])
                return o if 1 <= o <= 8 else 1
        except Exception:
            pass
    elif not exifs:
        for ct, s, _e in chunks:
            if ct in (b"tEXt", b"zTXt", b"iTXt") and (
                    data[s + 8:s + 26] == b"XML:com.adobe.xmp\x00"
                    or data[s + 8:s + 30] == b"Raw profile type exif\x00"):
                break
        else:
            return 1  # no EXIF, no XMP: nothing Pillow could read an orientation from
    return _orientation(im)


# Sizes the PNG specification gives the chunks lossless mode keeps (a set: any of those lengths).
_PNG_SIZES = {b"IHDR": {13}, b"gAMA": {4}, b"sRGB": {1}, b"cHRM": {32}, b"pHYs": {9}, b"sBIT": {1, 2, 3, 4},
              b"bKGD": {1, 2, 6}, b"IEND": {0}}
_PNG_ONCE = {b"IHDR", b"PLTE", b"gAMA", b"sRGB", b"cHRM", b"pHYs", b"sBIT", b"bKGD", b"tRNS", b"IEND"}


def _png_odd_chunk(chunks: list[tuple[bytes, int, int]]) -> str | None:
    """A kept chunk of a size its type cannot have, or repeated: a place to carry other data."""
    seen: set[bytes] = set()
    for ct, s, e in chunks:
        n = e - s - 12
        sizes = _PNG_SIZES.get(ct)
        if (sizes is not None and n not in sizes) or (ct == b"PLTE" and (n % 3 or n > 768)) \
                or (ct == b"tRNS" and n > 256):
            return f"PNG {ct.decode('latin-1')} chunk of {n} bytes"
        if ct in _PNG_ONCE:
            if ct in seen:
                return f"repeated PNG {ct.decode('latin-1')} chunk"
            seen.add(ct)
    return None


# Decompressed PNG data is counted and dropped piece by piece: memory stays small.
_INFLATE_STEP = 1 << 20


def _png_lossless(data: bytes, chunks: list[tuple[bytes, int, int]], icc_policy: str,
                  max_pixels: int) -> list[bytes | memoryview] | None:
    """The chunks to keep, as pieces to write out (views, not copies), once the image data is proven whole;
    None when the image data carries bytes after its compressed stream (the caller re-encodes)."""
    w, h, depth, ctype_ = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype_)
    if channels is None or depth not in (1, 2, 4, 8, 16) or w * h > max_pixels:
        raise _malformed("bad PNG header")
    interlace = data[28]
    raw = h * (1 + (w * channels * depth + 7) // 8)
    if interlace:
        raw = raw * 2 + 1024  # Adam7 passes add per-row filter bytes; bound only needs to be generous
    # Integrity: inflate the image data (bounded) to prove it is complete.
    idat = [(s + 8, e - 4) for ct, s, e in chunks if ct == b"IDAT"]
    first = data[idat[0][0]:idat[0][0] + 2] if idat else b""
    # zlib's own header rules (deflate, window <= 32K, no preset dictionary), which ISA-L does not enforce.
    if len(first) < 2 or first[0] & 0x0F != 8 or first[0] >> 4 > 7 or first[1] & 0x20 \
            or int.from_bytes(first, "big") % 31:
        raise _malformed("PNG image data cannot be decompressed")
    # zlib-ng refuses what zlib (and so every PNG decoder) refuses; ISA-L accepts a few such streams.
    d = decompressobj()
    total = 0
    view = memoryview(data)
    try:
        for s, e in idat:
            buf = view[s:e]
            while buf:
                total += len(d.decompress(buf, _INFLATE_STEP))
                buf = d.unconsumed_tail
                if total > raw:
                    raise _malformed("image data larger than its header says")
    except INFLATE_ERRORS:
        raise _malformed("PNG image data cannot be decompressed") from None
    if not d.eof:
        raise _malformed("PNG image data is cut off")
    if d.unused_data:  # bytes after the end of the compressed stream: a hiding place, re-encode instead
        return None
    parts: list[bytes | memoryview] = [_PNG_SIG]
    for ct, s, e in chunks:
        if ct in _PNG_KEEP:
            parts.append(view[s:e])
        elif ct == b"iCCP" and icc_policy == "keep" and _icc_ok(_png_iccp(data, s, e)):
            parts.append(view[s:e])
    return parts


# ---------------------------------------------------------------- GIF / WebP / BMP / TIFF structure

def _gif_findings(data: bytes, icc_policy: str, limit: int = 0) -> list[_Finding]:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise _malformed("no GIF header")
    n = len(data)
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    out: list[_Finding] = []
    screen = max(1, int.from_bytes(data[6:8], "little") * int.from_bytes(data[8:10], "little"))
    frames = 0

    def blocks(p: int) -> tuple[int, bytes]:
        first = b""
        while True:
            if p >= n:
                raise _malformed("GIF data cut off")
            size = data[p]
            if size == 0:
                return p + 1, first
            if not first:
                first = data[p + 1:p + 1 + size]
            p += 1 + size

    while True:
        if pos >= n:
            return out  # no trailer: tolerated, nothing follows
        b = data[pos]
        if b == 0x3B:
            tail = data[pos + 1:]
            if tail.strip(b"\x00"):
                out.append(_Finding("image.trailing_data", f"{len(tail)} bytes after the GIF trailer"))
            return out
        if b == 0x21:
            if pos + 2 > n:
                raise _malformed("GIF data cut off")
            label = data[pos + 1]
            pos, first = blocks(pos + 2)
            if label == 0xFE:
                out.append(_Finding("image.metadata", "GIF comment"))
            elif label == 0xFF:
                ident = first[:11]
                if ident in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                    continue
                if ident == b"XMP DataXMP":
                    out.append(_Finding("image.metadata", "GIF XMP"))
                elif ident == b"ICCRGBG1012":
                    out.append(_Finding("image.icc", "GIF ICC profile", "not kept in GIF"))
                else:
                    out.append(_Finding("image.metadata",
                                        f"GIF application extension '{ident.decode('latin-1', 'replace')}'"))
            elif label not in (0xF9, 0x01):
                out.append(_Finding("image.metadata", f"GIF unknown extension 0x{label:02X}"))
        elif b == 0x2C:
            frames += 1
            if limit and (frames > MAX_FRAMES or frames * screen > limit):
                raise LimitExceeded(f"the GIF has more frames than the pixel limit allows ({limit:,})",
                                    "GIF のフレーム数と画素数の合計がポリシーの上限を超えています",
                                    threat_id="image.bomb")
            if pos + 10 > n:
                raise _malformed("GIF data cut off")
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            pos, _ = blocks(pos)
        else:
            raise _malformed(f"unexpected GIF block 0x{b:02X}")


_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}


def _webp_findings(data: bytes, icc_policy: str) -> list[_Finding]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _malformed("no WebP header")
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        raise _malformed("WebP cut off")
    out: list[_Finding] = []
    pos = 12
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        body = data[pos + 8:pos + 8 + size]
        if cid == b"EXIF":
            gps = " (including GPS location)" if _exif_has_gps(body) else ""
            out.append(_Finding("image.metadata", f"WebP EXIF{gps}"))
        elif cid == b"XMP ":
            out.append(_Finding("image.metadata", "WebP XMP"))
        elif cid == b"ICCP":
            out += _icc_findings(body, icc_policy, "ICC profile (ICCP)")
        elif cid not in _WEBP_KEEP:
            out.append(_Finding("image.metadata", f"WebP unknown chunk '{cid.decode('latin-1', 'replace')}'"))
        pos += 8 + size + (size & 1)
    tail = data[end:]
    if tail.strip(b"\x00"):
        out.append(_Finding("image.trailing_data", f"{len(tail)} bytes after the WebP RIFF data"))
    return out


def _bmp_findings(data: bytes, icc_policy: str) -> list[_Finding]:
    if data[:2] != b"BM" or len(data) < 18:
        raise _malformed("no BMP header")
    out: list[_Finding] = []
    declared = int.from_bytes(data[2:6], "little")
    if 0 < declared < len(data) and data[declared:].strip(b"\x00"):
        out.append(_Finding("image.trailing_data", f"{len(data) - declared} bytes after the BMP data"))
    if int.from_bytes(data[14:18], "little") >= 124 and len(data) >= 14 + 60:
        cs = data[14 + 56:14 + 60]
        if cs == b"KNIL":
            out.append(_Finding("image.metadata", "BMP linked colour profile (file path)"))
        elif cs == b"DEBM":
            out.append(_Finding("image.icc", "BMP embedded colour profile", "not kept in BMP"))
    return out


_TIFF_META = {270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime",
              315: "Artist", 316: "HostComputer", 33432: "Copyright", 269: "DocumentName",
              34665: "EXIF", 34853: "GPS", 700: "XMP", 33723: "IPTC", 34377: "Photoshop",
              37724: "Photoshop layers", 50341: "PrintIM", 40965: "Interoperability"}
# Tags that describe the pixels; everything else is reported and dropped.
_TIFF_PIXEL_TAGS = {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 274, 277, 278, 279, 280, 281, 282, 283,
                    284, 285, 286, 287, 296, 297, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341,
                    347, 530, 531, 532, 34675, 292, 293, 321, 332, 333, 334, 336, 337, 301, 290, 291, 529}


def _tiff_findings(data: bytes, icc_policy: str, limit: int) -> list[_Finding]:
    with _pixel_guard(limit):
        im = _open(data, limit)
        out: list[_Finding] = []
        seen: set[str] = set()
        try:
            for i in range(min(getattr(im, "n_frames", 1), MAX_FRAMES)):
                im.seek(i)
                for tag in im.tag_v2:
                    if tag == 34675:
                        for f in _icc_findings(im.tag_v2[tag], icc_policy, "ICC profile (TIFF tag)"):
                            if f.location not in seen:
                                seen.add(f.location)
                                out.append(f)
                    elif tag not in _TIFF_PIXEL_TAGS:
                        name = _TIFF_META.get(tag, f"tag {tag}")
                        loc = f"TIFF {name}"
                        if loc not in seen:
                            seen.add(loc)
                            out.append(_Finding("image.metadata", loc))
        except _DECODE_ERRORS as exc:
            raise _malformed(f"TIFF directory: {type(exc).__name__}") from None
    return out


def _findings(data: bytes, mime: str, icc_policy: str, limit: int, walked: tuple | None = None) -> list[_Finding]:
    if mime == "image/jpeg":
        return _jpeg_findings(data, icc_policy, walked)[0]
    if mime == "image/png":
        return _png_findings(data, icc_policy, walked)[0]
    if mime == "image/gif":
        return _gif_findings(data, icc_policy, limit)
    if mime == "image/webp":
        return _webp_findings(data, icc_policy)
    if mime == "image/bmp":
        return _bmp_findings(data, icc_policy)
    if mime == "image/tiff":
        return _tiff_findings(data, icc_policy, limit)
    raise _malformed(f"unsupported image type {mime}")


# ---------------------------------------------------------------- re-encoding

@dataclass
class _Frames:
    frames: list[Image.Image]
    durations: list[int]
    loop: int | None
    orientation: int
    info: dict  # the container's info of frame 0, read before frames are stripped


def _orientation(im: Image.Image) -> int:
    try:
        o = int(im.getexif().get(ORIENTATION, 1))
    except Exception:
        return 1
    return o if 1 <= o <= 8 else 1


def _decode(ctx: Context, im: Image.Image, limit: int, first_only: bool) -> _Frames:
    orientation = _orientation(im)
    info = dict(im.info)
    n = 1 if first_only else getattr(im, "n_frames", 1)
    if n > MAX_FRAMES or im.size[0] * im.size[1] * n > limit:
        w, h = im.size
        raise LimitExceeded(f"{n} frames of {w}x{h} pixels exceed the policy pixel limit of {limit:,}",
                            f"フレーム数（{n}）と画素数（{w}×{h}）の合計がポリシーの上限を超えています",
                            threat_id="image.bomb")
    loop = im.info.get("loop")
    frames, durations = [], []
    method = _TRANSPOSE.get(orientation)
    for i in range(n):
        ctx.check_time()
        if i:
            im.seek(i)
        im.load()
        durations.append(int(im.info.get("duration", 0) or 0))
        keep = {k: im.info[k] for k in ("transparency",) if k in im.info}
        if method is not None:
            fr = im.transpose(method)
        elif n == 1:
            fr = im  # single frame: no copy needed
        else:
            fr = im.copy()
        fr.info = keep  # nothing of the container rides along into the encoder
        frames.append(fr)
    return _Frames(frames, durations, loop, orientation, info)


def _to_srgb(fr: Image.Image, icc: bytes) -> Image.Image:
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.createProfile("sRGB")
    if fr.mode in ("RGB", "RGBA", "CMYK"):
        out_mode = "RGBA" if fr.mode == "RGBA" else "RGB"
        res = ImageCms.profileToProfile(fr, src, dst, outputMode=out_mode)
        assert res is not None
        # Pillow records the output profile in info; the PNG and TIFF encoders would write it back.
        res.info.pop("icc_profile", None)
        return res
    if fr.mode == "P" or fr.mode == "LA" or fr.mode == "PA":
        return _to_srgb(fr.convert("RGBA"), icc)
    return fr  # grey and 16-bit modes: dropping the profile is a gamma nuance only


def _save_kwargs_jpeg(src: Image.Image, info: dict, orientation: int) -> dict:
    # optimize=False: standard Huffman tables, as most cameras write; optimizing saves ~8% size but
    # triples the encode time.
    kw: dict = {"optimize": False}
    q = getattr(src, "quantization", None)
    if q:
        tables = [list(q[k]) for k in sorted(q)][:4]
        if orientation >= 5:  # rotated 90 degrees: the 8x8 tables turn with the image
            tables = [[t[c * 8 + r] for r in range(8) for c in range(8)] for t in tables]
        kw["qtables"] = tables
        sampling = JpegImagePlugin.get_sampling(src)
        if sampling == 1 and orientation >= 5:
            sampling = 0  # 4:2:2 turned sideways is 4:4:0, which Pillow cannot write; keep full chroma
        if sampling >= 0:
            kw["subsampling"] = sampling
    else:
        kw["quality"] = 90
    if info.get("progressive") or info.get("progression"):
        kw["progressive"] = True
    return kw


def _dpi(info: dict, orientation: int) -> dict:
    dpi = info.get("dpi")
    try:
        if dpi and len(dpi) == 2 and all(0 < float(v) < 100000 for v in dpi):
            x, y = float(dpi[0]), float(dpi[1])
            return {"dpi": (y, x) if orientation >= 5 else (x, y)}
    except (TypeError, ValueError):
        pass
    return {}


_TIFF_COMPRESSIONS = {"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits", "group3", "group4",
                      "jpeg"}


def _reencode(ctx: Context, data: bytes, mime: str, limit: int, icc_policy: str,
              threats: list[Threat]) -> bytes:
    fmt = _PIL_FORMAT[mime]
    with _pixel_guard(limit):
        im = _open(data, limit)
        try:
            fr = _decode(ctx, im, limit, first_only=(mime in ("image/jpeg", "image/bmp")))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise LimitExceeded("the image is larger than the pixel limit", "画像の画素数が上限を超えています",
                                threat_id="image.bomb") from None
        except _DECODE_ERRORS as exc:
            raise _malformed(f"{type(exc).__name__}: {exc}"[:120]) from None
    info = fr.info
    icc = info.get("icc_profile") or None
    keep_icc: bytes | None = None
    if icc:
        if icc_policy == "keep" and _icc_ok(icc):
            keep_icc = icc
        elif icc_policy != "keep" and _icc_ok(icc):
            try:
                fr.frames = [_to_srgb(f, icc) for f in fr.frames]
            except Exception as exc:
                raise _malformed(f"colour conversion failed: {exc}"[:120]) from None
    frames = fr.frames
    kw: dict = {}
    if keep_icc:
        kw["icc_profile"] = keep_icc
    kw.update(_dpi(info, fr.orientation))
    if fmt == "JPEG":
        kw.update(_save_kwargs_jpeg(im, info, fr.orientation))
        if frames[0].mode not in ("L", "RGB", "CMYK"):
            frames[0] = frames[0].convert("RGB")
    elif fmt == "PNG":
        if len(frames) == 1 and getattr(im, "n_frames", 1) == 1:
            out = png_write.encode(frames[0], kw.get("dpi"), keep_icc)
            if out is not None:
                return out
        # Other modes and APNG: zlib level 6 is the libpng default most PNGs were written with.
        kw["compress_level"] = 6
    elif fmt == "WEBP":
        lossless = b"VP8L" in data[:4096] and b"VP8 " not in data[:4096]
        # No way to read the source quality back from VP8; 85 keeps size within ~1.0-1.15x of q75-80 sources.
        kw.update({"lossless": lossless, "quality": 85 if not lossless else 80, "method": 4})
    elif fmt == "TIFF":
        comp = info.get("compression", "raw")
        if comp not in _TIFF_COMPRESSIONS or (comp in ("group3", "group4") and frames[0].mode != "1"):
            comp = "tiff_deflate"
        kw["compression"] = None if comp == "raw" else comp
    elif fmt == "GIF":
        if isinstance(info.get("background"), int):
            kw["background"] = info["background"]
        if len(frames) > 1 and any(f.mode in ("RGBA", "LA", "PA") or "transparency" in f.info for f in frames):
            # Frames are full composites: clear before each, or transparent pixels show the last one.
            kw["disposal"] = 2
    if len(frames) > 1:
        kw["save_all"] = True
        kw["append_images"] = frames[1:]
        if fmt in ("GIF", "PNG", "WEBP"):
            kw["duration"] = fr.durations
            if fr.loop is not None:
                kw["loop"] = fr.loop
    elif fmt in ("GIF", "PNG", "WEBP") and fr.durations[0] and getattr(im, "n_frames", 1) > 1:
        kw["duration"] = fr.durations[0]
    buf = io.BytesIO()
    try:
        frames[0].save(buf, format=fmt, **kw)
    except (OSError, ValueError) as exc:
        raise _malformed(f"could not write {fmt}: {exc}"[:120]) from None
    return buf.getvalue()


# ---------------------------------------------------------------- handler

@register
class ImageHandler(Handler):
    family = "image"
    mime_types = tuple(_PIL_FORMAT)
    has_text = False
    options = OPTIONS["image"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        data = path.read_bytes()
        # In verify after SVG rasterising, ctx.options are the svg family's: default to srgb.
        icc_policy = ctx.options.get("icc", "srgb")
        limit = int(ctx.limits.max_pixels)
        with _pixel_guard(limit):
            _open(data, limit)  # the header must fit the pixel limit even on inspection
        return [Threat(f.id, f.location, "found", f.detail)
                for f in _findings(data, detection.mime, icc_policy, limit)]

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        data = src.read_bytes()
        mime = detection.mime
        mode = ctx.options.get("mode", "rebuild")
        icc_policy = ctx.options.get("icc", "srgb")
        limit = int(ctx.limits.max_pixels)
        with _pixel_guard(limit):
            head = _open(data, limit)
            # The structure is walked once and shared by orientation, findings and the rebuild.
            walked = _jpeg_segments(data) if mime == "image/jpeg" else _png_chunks(data) if mime == "image/png" \
                else None
            if mime == "image/png" and walked is not None:
                orientation = _png_orientation(data, walked[0], head)
            else:
                orientation = _orientation(head)
        findings = _findings(data, mime, icc_policy, limit, walked)
        out: list[bytes | memoryview] | None = None
        convert = icc_policy != "keep" and any(f.id == "image.icc" for f in findings)
        if convert and mime == "image/jpeg" and mode in ("rebuild", "lossless") \
                and _icc_is_srgb(_jpeg_icc(data, walked[0])):
            convert = False  # an sRGB profile: dropping it is the conversion, and the coefficients can stay
            findings = [_Finding(f.id, f.location, "an sRGB profile: dropped, colours unchanged")
                        if f.id == "image.icc" else f for f in findings]
        if mime == "image/jpeg" and mode in ("rebuild", "lossless") and turbojpeg.available() and not convert:
            try:
                out = [_jpeg_rebuild(data, walked[0], icc_policy, orientation, head.info)]
            except turbojpeg.TranscodeError as exc:  # rebuilt from the pixels instead, as in "reencode"
                if exc.warning:
                    findings.append(_Finding("image.hidden_data", "compressed image data", f"libjpeg: {exc}"[:160]))
        elif mode == "lossless" and mime == "image/png" and orientation == 1 \
                and not any(f.id == "image.icc" for f in findings) \
                and not any(ct == b"acTL" for ct, _s, _e in walked[0]):  # animation frames: re-encode
            odd = _png_odd_chunk(walked[0])
            if odd:  # kept chunk types must still have their own size: otherwise they carry other data
                findings.append(_Finding("image.metadata", odd))
            else:
                out = _png_lossless(data, walked[0], icc_policy, limit)
                if out is None:
                    findings.append(_Finding("image.trailing_data", "bytes after the end of the compressed image data"))
        threats: list[Threat] = []
        if out is None:
            out = [_reencode(ctx, data, mime, limit, icc_policy, threats)]
        for f in findings:
            action = "converted" if f.id == "image.icc" and icc_policy != "keep" else "removed"
            threats.append(Threat(f.id, f.location, action, f.detail))
        with open(dst, "wb") as fh:
            fh.writelines(out)
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        limit = int(ctx.limits.max_pixels)
        with _pixel_guard(limit):
            im = _open(path.read_bytes(), limit)
            frames = getattr(im, "n_frames", 1)
        label = detection.label or detection.mime
        extra = f", {frames} frames" if frames > 1 else ""
        return f"[{label}, {im.size[0]}x{im.size[1]} pixels{extra}]\n"


def rebuild_bytes(ctx: Context, data: bytes, mime: str) -> tuple[bytes, list[Threat]]:
    """Re-encode an image held in memory (used by the SVG sanitizer for embedded data: images)."""
    limit = int(ctx.limits.max_pixels)
    findings = _findings(data, mime, "srgb", limit)
    out = _reencode(ctx, data, mime, limit, "srgb", [])
    return out, [Threat(f.id, f.location, "converted" if f.id == "image.icc" else "removed", f.detail)
                 for f in findings]


# ---------------------------------------------------------------- pictures inside documents

_EMBEDDED_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
                   (b"GIF89a", "image/gif"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
                   (b"BM", "image/bmp"))


def embedded_kind(data: bytes) -> str | None:
    """The raster format of a document's picture by its bytes (readers sniff too), or None (EMF, WMF, ...)."""
    return next((m for sig, m in _EMBEDDED_MAGIC if data.startswith(sig)), None)


def _exif_orientation(o: int) -> bytes:
    """An APP1 segment holding nothing but the EXIF orientation tag."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + struct.pack(">HHIHH", ORIENTATION, 3, 1, o, 0) + b"\x00" * 4
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def rebuild_embedded(ctx: Context, data: bytes) -> bytes | None:
    """A picture inside a document (Office media, ODF pictures) written anew in its own format, so that none
    of the sender's image data reaches the reader's decoder: a JPEG on its DCT coefficients (same pixels), other
    raster formats from their pixels (PNG by png_write). A JPEG is not turned: whether a document's reader
    applies EXIF orientation is the reader's affair, so the tag alone is written back. Metadata, comments and
    data after the image go, silently (a picture's own metadata is not the document's). None for formats this
    module does not read (the caller keeps those). Raises Malformed or LimitExceeded for a damaged or huge one."""
    mime = embedded_kind(data)
    if mime is None:
        return None
    limit = int(ctx.limits.max_pixels)
    with _pixel_guard(limit):
        head = _open(data, limit)
        if mime == "image/jpeg" and turbojpeg.available():
            segs = _jpeg_segments(data)[0]
            orientation = _orientation(head)
            try:
                out = _jpeg_rebuild(data, segs, "keep", 1, head.info)
            except turbojpeg.TranscodeError:
                out = None  # from the pixels instead, as a standalone JPEG would be
            if out is not None:
                if orientation != 1:
                    at = 4 + int.from_bytes(out[4:6], "big") if out[2:4] == b"\xff\xe0" else 2
                    out = out[:at] + _exif_orientation(orientation) + out[at:]
                return out
    return _reencode(ctx, data, mime, limit, "keep", [])


def rebuild_picture(ctx: Context, name: str, data: bytes) -> bytes | None:
    """rebuild_embedded for a document's member `name`: a damaged picture blocks the document, naming it."""
    try:
        return rebuild_embedded(ctx, data)
    except Malformed as exc:
        raise Malformed(f"the picture {name} in the document is damaged ({exc.en})",
                        f"文書内の画像（{name}）が壊れています") from None
    except LimitExceeded as exc:
        raise LimitExceeded(f"the picture {name} in the document: {exc.en}", f"文書内の画像（{name}）: {exc.ja}",
                            threat_id=exc.threat_id) from None
