"""Deflate, inflate and CRC-32 for the hot paths (OOXML parts, PNG image data).

Same bytes in and out as the standard zlib module, from faster implementations:
- inflate: zlib-ng for data that compressed well (long matches: ~3.5x ISA-L and 25x zlib on a flat-colour
  screenshot), ISA-L for data that did not (its Huffman decoding is ~1.5x zlib-ng on a photo saved as
  PNG); they break even at about 16:1;
- deflate of big parts: zlib-ng level 5 (about 2x faster than zlib at level 5, and smaller);
- deflate of small parts: ISA-L level 2 (zlib-ng, like zlib, spends most of a small part on set-up);
- CRC-32: ISA-L (about 10x zlib).
Each falls back to zlib when its library is missing.
"""
from __future__ import annotations

import zlib

try:
    from zlib_ng import zlib_ng as _ng
except ImportError:  # pragma: no cover - optional speed-up
    _ng = zlib  # type: ignore[assignment]
try:
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - optional speed-up
    _isal = None

INFLATE_ERRORS: tuple[type[Exception], ...] = tuple({zlib.error, _ng.error, *((_isal.error,) if _isal else ())})
crc32 = _isal.crc32 if _isal is not None else zlib.crc32
# Below this size a part's deflate time is mostly set-up: ISA-L level 2 is 2-3x faster there for
# ~7 % more bytes. It would add 20-40 % on big sheets, so those go to zlib-ng.
SMALL_PART = 32 << 10


_RATIO_BREAK_EVEN = 16


def decompressobj(wbits: int = zlib.MAX_WBITS, ratio: float | None = None):  # noqa: ANN201 - zlib's Decompress
    """An inflater; `ratio` (expected output size / input size) picks the faster library for the data."""
    if _isal is not None and ratio is not None and ratio < _RATIO_BREAK_EVEN:
        return _isal.decompressobj(wbits)
    return _ng.decompressobj(wbits)


def deflate_raw(data: bytes) -> bytes:
    """Raw deflate (no zlib header), as stored in a ZIP member."""
    if _isal is not None and len(data) < SMALL_PART:
        return _isal.compress(data, 2, -15)
    # A window no larger than the part loses nothing and spares setting up 32 KiB tables.
    wbits = max(9, min(15, (len(data) - 1).bit_length()))
    co = _ng.compressobj(5, zlib.DEFLATED, -wbits)
    return co.compress(data) + co.flush()


def compressobj(level: int):  # noqa: ANN201 - zlib's Compress
    """A zlib-format deflater (zlib-ng): PNG image data."""
    return _ng.compressobj(level)
