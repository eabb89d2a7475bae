"""JPEG rebuilt on its DCT coefficients: libjpeg-turbo's tjTransform (jpegtran in a library).

Every scan is entropy-decoded into coefficients and a new stream is written from them with fresh
Huffman tables (the standard ones for baseline, optimised ones for progressive), copying no marker:
nothing of the original entropy-coded bytes, padding, unused tables or data after EOI survives,
and the decoded pixels stay the same (no generation loss).

Measured on 2-12 MP phone-like photos (2 vCPU, see README Performance): this in-process call,
PyTurboJPEG 1.8 (`crop` of the whole image, copynone) and Debian's jpegtran run as a process do the
same work; jpegtran pays a process and two pipes (+60 % on 12 MP), jpeglib goes through numpy
(about 10x). PyTurboJPEG exposes neither the rotations, nor the progressive option, nor
TJFLAG_STOPONWARNING, so the four calls needed are bound here with ctypes against Debian's
libturbojpeg0 (TurboJPEG API 2.x, ABI-stable since libjpeg-turbo 1.2).
"""
from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_short, c_ulong, c_void_p

# tjTransform operations, by EXIF orientation (same turns as ImageOps.exif_transpose).
OP_FOR_ORIENTATION = {1: 0, 2: 1, 3: 6, 4: 2, 5: 3, 6: 5, 7: 4, 8: 7}
_XOPT_PERFECT, _XOPT_PROGRESSIVE, _XOPT_COPYNONE = 1, 32, 64
# A warning (corrupt or extraneous data, premature end) is an error; at most 500 progressive scans.
_FLAGS = 8192 | 32768  # TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
_TJERR_WARNING = 0


class TranscodeError(Exception):
    """libjpeg refused the stream, or the turn is not possible without losing edge pixels."""

    def __init__(self, message: str, warning: bool) -> None:
        super().__init__(message)
        self.warning = warning  # libjpeg would decode it, with a warning (damaged or extraneous data)


class _Region(Structure):
    _fields_ = [("x", c_int), ("y", c_int), ("w", c_int), ("h", c_int)]


_FILTER = CFUNCTYPE(c_int, POINTER(c_short), _Region, _Region, c_int, c_int, c_void_p)


class _Transform(Structure):
    _fields_ = [("r", _Region), ("op", c_int), ("options", c_int), ("data", c_void_p), ("customFilter", _FILTER)]


_lib = None


def _load():  # noqa: ANN202 - a ctypes.CDLL
    global _lib
    if _lib is None:
        # The soname directly: find_library would run ldconfig (a process) in the worker.
        lib = ctypes.CDLL("libturbojpeg.so.0")
        lib.tjInitTransform.restype = c_void_p
        lib.tjTransform.argtypes = [c_void_p, c_char_p, c_ulong, c_int, POINTER(c_void_p), POINTER(c_ulong),
                                    POINTER(_Transform), c_int]
        lib.tjTransform.restype = c_int
        lib.tjDestroy.argtypes = [c_void_p]
        lib.tjFree.argtypes = [c_void_p]
        lib.tjGetErrorStr2.argtypes = [c_void_p]
        lib.tjGetErrorStr2.restype = c_char_p
        lib.tjGetErrorCode.argtypes = [c_void_p]
        lib.tjGetErrorCode.restype = c_int
        _lib = lib
    return _lib


def available() -> bool:
    try:
        _load()
    except OSError:
        return False
    return True


# Loaded when the image family is imported (worker warm-up), not at the first JPEG: a worker sandbox
# that restricts opening files later still finds the library mapped.
available()


def transcode(data: bytes, orientation: int = 1, progressive: bool = False) -> bytes:
    """A new JPEG from the coefficients of `data`, turned to `orientation` 1 when it is not.

    Raises TranscodeError when libjpeg refuses the file, warns about it, or the turn is not perfect
    (a partial MCU at an edge that would have to move)."""
    lib = _load()
    handle = lib.tjInitTransform()
    if not handle:
        raise TranscodeError("TurboJPEG could not start", False)
    out, size = c_void_p(), c_ulong(0)
    xf = _Transform(_Region(0, 0, 0, 0), OP_FOR_ORIENTATION.get(orientation, 0),
                    _XOPT_PERFECT | _XOPT_COPYNONE | (_XOPT_PROGRESSIVE if progressive else 0), None, _FILTER())
    try:
        if lib.tjTransform(handle, data, len(data), 1, byref(out), byref(size), byref(xf), _FLAGS):
            msg = (lib.tjGetErrorStr2(handle) or b"").decode("ascii", "replace").strip()
            raise TranscodeError(msg, lib.tjGetErrorCode(handle) == _TJERR_WARNING)
        return ctypes.string_at(out, size.value)
    finally:
        if out:
            lib.tjFree(out)
        lib.tjDestroy(handle)
