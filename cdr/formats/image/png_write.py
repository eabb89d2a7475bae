"""PNG written from decoded pixels with the engine's fast deflate (zlib-ng), instead of Pillow's zlib.

Pillow's encoder spends most of a screenshot's time in zlib at level 6 and in trying all five filters
on every row. Measured on 1366x768 to 2560x1440 UI screenshots (README Performance):
- rows of 8 bits per sample or more: the Up filter alone (vectorised; Sub, Average and Paeth did not
  pay on screenshots), zlib-ng level 2: 1.01-1.06x the size of the source, at a fifth to a tenth of
  the encode time; ISA-L level 1 is a little faster but 1.2-1.3x larger;
- palette and grey images below 8 bits: no filter (as libpng does), packed as Pillow would;
  a palette image stays a palette image.
Rows go through in blocks of about 1 MB: memory stays near the decoded image itself.
Modes other than 1, L, LA, P (RGB palette), RGB, RGBA and I;16 are left to Pillow (None).
"""
from __future__ import annotations

import struct

from PIL import Image

from .._deflate import compressobj, crc32

LEVEL = 2
_BLOCK = 1 << 20
# mode -> (PNG colour type, bits per sample, Pillow raw mode of one packed row)
_MODES = {"1": (0, 1, "1"), "L": (0, 8, "L"), "LA": (4, 8, "LA"), "RGB": (2, 8, "RGB"), "RGBA": (6, 8, "RGBA"),
          "I;16": (0, 16, "I;16B"), "I;16B": (0, 16, "I;16B")}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc32(body, crc32(ctype)))


def _palette(im: Image.Image) -> tuple[bytes, int, int] | None:
    """PLTE body, bit depth, raw mode, for a P image with an RGB palette; None otherwise."""
    if im.palette is None or im.palette.mode != "RGB":
        return None
    plte = bytes(im.palette.tobytes())[:768]
    colours = max(len(plte) // 3, 1)
    top = im.getextrema()[1]
    if isinstance(top, tuple) or top >= colours:  # indices past the palette: leave it to Pillow
        return None
    bits = 1 if colours <= 2 else 2 if colours <= 4 else 4 if colours <= 16 else 8
    return plte[:colours * 3], bits, colours


def _trns(im: Image.Image, ctype: int, colours: int) -> bytes | None:
    t = im.info.get("transparency")
    if t is None:
        return None
    if ctype == 3:
        if isinstance(t, bytes):
            return t[:colours]
        if isinstance(t, int) and 0 <= t < colours:
            return b"\xff" * t + b"\x00"
        return None
    if ctype == 0 and isinstance(t, int) and 0 <= t < 65536:
        return struct.pack(">H", t)
    if ctype == 2 and isinstance(t, tuple) and len(t) == 3 and all(isinstance(v, int) and 0 <= v < 65536 for v in t):
        return struct.pack(">HHH", *t)
    return None


def encode(im: Image.Image, dpi: tuple[float, float] | None = None, icc: bytes | None = None) -> bytes | None:
    """The PNG of a decoded single-frame image, or None when its mode is left to Pillow."""
    import numpy as np

    extra: list[bytes] = []
    if im.mode == "P":
        pal = _palette(im)
        if pal is None:
            return None
        plte, bits, colours = pal
        ctype, raw = 3, ("P" if bits == 8 else f"P;{bits}")
        extra.append(_chunk(b"PLTE", plte))
    elif im.mode in _MODES:
        ctype, bits, raw = _MODES[im.mode]
        colours = 0
    else:
        return None
    trns = _trns(im, ctype, colours)
    if trns is not None:
        extra.append(_chunk(b"tRNS", trns))
    w, h = im.size
    stride = (w * _CHANNELS[ctype] * bits + 7) // 8
    head = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0))]
    if icc:
        co = compressobj(6)
        head.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + co.compress(icc) + co.flush()))
    head += extra
    if dpi:
        ppm = [round(v / 0.0254) for v in dpi]
        if all(0 < v < 1 << 31 for v in ppm):
            head.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    up = bits >= 8  # "Up" on whole bytes; packed sub-byte rows go unfiltered
    co = compressobj(LEVEL)
    body: list[bytes] = []
    rows = max(1, _BLOCK // (stride + 1))
    prev = None
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        block = im.crop((0, y0, w, y1)) if (y0, y1) != (0, h) else im
        a = np.frombuffer(block.tobytes("raw", raw), np.uint8).reshape(y1 - y0, stride)
        f = np.empty((y1 - y0, stride + 1), np.uint8)
        if up:
            f[:, 0] = 2
            f[1:, 1:] = a[1:] - a[:-1]
            f[0, 1:] = a[0] - prev if prev is not None else a[0]
            prev = a[-1].copy()
        else:
            f[:, 0] = 0
            f[:, 1:] = a
        body.append(co.compress(f))
    body.append(co.flush())
    data = b"".join(body)
    idat = [_chunk(b"IDAT", data[i:i + (1 << 20)]) for i in range(0, len(data), 1 << 20)] or [_chunk(b"IDAT", b"")]
    return b"".join(head + idat + [_chunk(b"IEND", b"")])
