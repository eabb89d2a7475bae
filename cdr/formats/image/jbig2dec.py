"""JBIG2 decoded by jbig2dec (Debian's libjbig2dec0, the decoder Ghostscript and MuPDF use), bound with ctypes.

A PDF's JBIG2Decode images are decoded here so that their bytes never reach the recipient's decoder (the
JBIG2 decoders of PDF readers are a known way in: CVE-2009-0658, FORCEDENTRY). There is no maintained
Python binding; pikepdf runs the `jbig2dec` program, which the worker's sandbox does not allow. The
library's API is five calls; a fatal error, or a page that does not come out, raises Jbig2Error.
"""
from __future__ import annotations

import contextlib
import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_size_t, c_uint8, c_uint32, c_void_p

_EMBEDDED = 1  # JBIG2_OPTIONS_EMBEDDED: the stream format of a PDF (no file header)
_FATAL = 3  # JBIG2_SEVERITY_FATAL
# jbig2_ctx_new is a macro passing the header's version; the library refuses another.
_VERSIONS = ((0, 19), (0, 20), (0, 18))


class Jbig2Error(Exception):
    """jbig2dec refused the data."""


class _Image(Structure):
    _fields_ = [("width", c_uint32), ("height", c_uint32), ("stride", c_uint32), ("data", POINTER(c_uint8)),
                ("refcount", c_int)]


_CALLBACK = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_uint32)
_lib = None


def _load():  # noqa: ANN202 - a ctypes.CDLL
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libjbig2dec.so.0")  # by soname: find_library would run ldconfig in the worker
        lib.jbig2_ctx_new_imp.restype = c_void_p
        lib.jbig2_ctx_new_imp.argtypes = [c_void_p, c_int, c_void_p, _CALLBACK, c_void_p, c_int, c_int]
        lib.jbig2_ctx_free.argtypes = [c_void_p]
        lib.jbig2_ctx_free.restype = c_void_p
        lib.jbig2_make_global_ctx.argtypes = [c_void_p]
        lib.jbig2_make_global_ctx.restype = c_void_p
        lib.jbig2_global_ctx_free.argtypes = [c_void_p]
        lib.jbig2_global_ctx_free.restype = c_void_p
        lib.jbig2_data_in.argtypes = [c_void_p, c_char_p, c_size_t]
        lib.jbig2_data_in.restype = c_int
        lib.jbig2_complete_page.argtypes = [c_void_p]
        lib.jbig2_complete_page.restype = c_int
        lib.jbig2_page_out.argtypes = [c_void_p]
        lib.jbig2_page_out.restype = POINTER(_Image)
        lib.jbig2_release_page.argtypes = [c_void_p, POINTER(_Image)]
        _lib = lib
    return _lib


# Mapped when the module is first imported (in the worker, at its first JBIG2 image); when the library is
# missing, decode() raises OSError and the image's file is blocked.
with contextlib.suppress(OSError):
    _load()


def decode(data: bytes, globals_data: bytes | None = None) -> tuple[int, int, bytes]:
    """The first page of an embedded JBIG2 stream: (width, height, rows of ceil(width/8) bytes, 1 = black)."""
    lib = _load()
    errors: list[str] = []

    @_CALLBACK
    def on_error(_data, msg, severity, _seg) -> None:  # noqa: ANN001
        if severity >= _FATAL and len(errors) < 5:
            errors.append((msg or b"").decode("ascii", "replace"))

    def new_ctx(global_ctx: int | None) -> int:
        for major, minor in _VERSIONS:
            ctx = lib.jbig2_ctx_new_imp(None, _EMBEDDED, global_ctx, on_error, None, major, minor)
            if ctx:
                errors.clear()  # a refused version reports itself; that is not the data's fault
                return ctx
        raise Jbig2Error("jbig2dec could not start")

    global_ctx = None
    if globals_data:
        gctx = new_ctx(None)
        if lib.jbig2_data_in(gctx, globals_data, len(globals_data)) < 0 or errors:
            lib.jbig2_ctx_free(gctx)
            raise Jbig2Error("; ".join(errors) or "damaged JBIG2 global data")
        global_ctx = lib.jbig2_make_global_ctx(gctx)
    ctx = None
    try:
        ctx = new_ctx(global_ctx)
        if lib.jbig2_data_in(ctx, data, len(data)) < 0 or errors:
            raise Jbig2Error("; ".join(errors) or "damaged JBIG2 data")
        lib.jbig2_complete_page(ctx)
        page = lib.jbig2_page_out(ctx)
        if errors or not page:
            if page:
                lib.jbig2_release_page(ctx, page)
            raise Jbig2Error("; ".join(errors) or "the JBIG2 data holds no complete page")
        try:
            im = page.contents
            width, height, stride = im.width, im.height, im.stride
            row = (width + 7) // 8
            raw = ctypes.string_at(im.data, stride * height) if height else b""
        finally:
            lib.jbig2_release_page(ctx, page)
        if stride != row:
            raw = b"".join(raw[y * stride:y * stride + row] for y in range(height))
        return width, height, raw
    finally:
        if ctx:
            lib.jbig2_ctx_free(ctx)
        if global_ctx:
            lib.jbig2_global_ctx_free(global_ctx)
