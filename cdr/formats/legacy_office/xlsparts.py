"""Parts of a BIFF8 sheet that can act: hyperlinks (HLINK, [MS-OSHARED] 2.3.7), drawings
(MSODRAWING/MSODRAWINGGROUP, [MS-ODRAW]) and objects (OBJ: macros on shapes and controls, OLE and
ActiveX links)."""
from __future__ import annotations

import struct

from .biff import (
    _Bad,
)
from .xlsformula import (
    FormulaIssue,
    Links,
    rewrite_formula,
)

# --- hyperlinks ------------------------------------------------------------------------------
_URL_MONIKER = bytes.fromhex("e0c9ea79f9bace118c8200aa004ba90b")
_STD_HLINK = bytes.fromhex("d0c9ea79f9bace118c8200aa004ba90b")


def _hl_string(b: bytes, pos: int) -> tuple[str, int]:
    if pos + 4 > len(b):
        raise _Bad("truncated hyperlink")
    n = struct.unpack_from("<I", b, pos)[0]
    end = pos + 4 + 2 * n
    if n > 32768 or end > len(b):
        raise _Bad("bad hyperlink string")
    return b[pos + 4:end].decode("utf-16-le", "replace").split("\0", 1)[0], end


def hyperlink_target(body: bytes) -> tuple[str, str]:
    """('url'|'location'|'other', text) of an HLINK record; _Bad when it does not parse."""
    if len(body) < 32 or body[8:24] != _STD_HLINK:
        raise _Bad("not a standard hyperlink")
    version, flags = struct.unpack_from("<II", body, 24)
    if version != 2:
        raise _Bad("hyperlink version")
    pos = 32
    url = location = None
    other = False
    if flags & 0x14:  # hlstmfHasDisplayName (and SiteGaveDisplayName)
        if flags & 0x10:
            _t, pos = _hl_string(body, pos)
    if flags & 0x80:
        _t, pos = _hl_string(body, pos)
    if flags & 0x01:
        if flags & 0x100:
            url, pos = _hl_string(body, pos)
        else:
            clsid = body[pos:pos + 16]
            if clsid == _URL_MONIKER:
                if pos + 20 > len(body):
                    raise _Bad("truncated moniker")
                size = struct.unpack_from("<I", body, pos + 16)[0]
                raw = body[pos + 20:pos + 20 + size]
                if len(raw) != size:
                    raise _Bad("truncated URL")
                url = raw.decode("utf-16-le", "replace").split("\0", 1)[0]
                pos += 20 + size
            else:
                other = True
                pos = len(body)
    if flags & 0x08 and not other:
        location, pos = _hl_string(body, pos)
    if other:
        return "other", "file or other moniker"
    if url is not None:
        return "url", url
    return "location", location or ""


# --- drawings (OfficeArt) --------------------------------------------------------------------
_FSP, _FOPT, _TFOPT = 0xF00A, 0xF00B, 0xF122
_BLIP_FLAGS = (0x0106, 0x0187, 0x01C7)  # pibFlags, fillBlipFlags, lineFillBlipFlags
_HYPERLINK_PROP = 0x0382


def _walk_art(data: bytearray, pos: int, end: int, found: list[str], depth: int = 0) -> None:
    """Validate OfficeArt records in data[pos:end]; clear OLE shape flags and link-to-file blips."""
    if depth > 32:
        raise _Bad("drawing nested too deeply")
    while pos < end:
        if pos + 8 > end:
            raise _Bad("truncated drawing record")
        ver_inst, rtype, size = struct.unpack_from("<HHI", data, pos)
        body_end = pos + 8 + size
        if body_end > end:
            raise _Bad("drawing record overruns its container")
        if ver_inst & 0x0F == 0x0F:
            _walk_art(data, pos + 8, body_end, found, depth + 1)
        elif rtype == _FSP and size >= 8:
            flags = struct.unpack_from("<I", data, pos + 12)[0]
            if flags & 0x10:  # fOleShape: a plain picture from now on
                struct.pack_into("<I", data, pos + 12, flags & ~0x10)
                found.append("ole_shape")
        elif rtype in (_FOPT, _TFOPT):
            count = ver_inst >> 4
            if 6 * count > size:
                raise _Bad("drawing properties overrun")
            for i in range(count):
                at = pos + 8 + 6 * i
                opid, value = struct.unpack_from("<HI", data, at)
                pid = opid & 0x3FFF
                if pid in _BLIP_FLAGS and value & 0x0E:  # file, URL, link to file
                    struct.pack_into("<HI", data, at, opid, value & ~0x0E)
                    found.append("linked_picture")
                elif pid == _HYPERLINK_PROP:
                    found.append("shape_hyperlink")
        pos = body_end


def _check_drawing(chunks: list[bytes]) -> tuple[list[bytes], list[str]]:
    """One sheet's (or the group's) drawing data, split as it was; patched copies and what changed."""
    data = bytearray(b"".join(chunks))
    found: list[str] = []
    _walk_art(data, 0, len(data), found)
    out, p = [], 0
    for c in chunks:
        out.append(bytes(data[p:p + len(c)]))
        p += len(c)
    return out, found


# --- OBJ records -----------------------------------------------------------------------------
_FT_END, _FT_MACRO, _FT_CF, _FT_PIOGRBIT, _FT_PICTFMLA, _FT_CMO = 0x00, 0x04, 0x07, 0x08, 0x09, 0x15
_FT_SBSFMLA, _FT_LBSDATA, _FT_CBLSFMLA = 0x0E, 0x13, 0x14


def _obj_formula(sub: bytes, links: Links) -> bytes:
    """An ObjFmla (cbFmla, then cce/unused/rgce and padding) with its references renumbered."""
    if len(sub) < 2:
        raise _Bad("short object formula")
    cb = struct.unpack_from("<H", sub, 0)[0]
    if cb == 0:
        return sub
    if cb < 6 or 2 + cb > len(sub):
        raise _Bad("bad object formula")
    cce = struct.unpack_from("<H", sub, 2)[0] & 0x7FFF
    if 8 + cce > 2 + cb:
        raise _Bad("bad object formula")
    rgce = rewrite_formula(sub[8:8 + cce], links, allow_names=True)
    return sub[:8] + rgce + sub[8 + cce:]


def rewrite_obj(body: bytes, links: Links, report, where: str) -> bytes | None:
    """OBJ without macro assignments; OLE objects and ActiveX become plain pictures. None: drop it."""
    out = bytearray()
    pos, n, ot = 0, len(body), None
    while pos + 4 <= n:
        ft, cb = struct.unpack_from("<HH", body, pos)
        if ft == _FT_LBSDATA:  # its cb is not reliable; it runs to the end (ftEnd included)
            rest = body[pos + 4:]
            try:
                rest = _obj_formula(rest, links)
            except (_Bad, FormulaIssue):
                return None
            out += struct.pack("<HH", ft, cb) + rest
            return bytes(out)
        sub = body[pos + 4:pos + 4 + cb]
        if len(sub) != cb:
            raise _Bad("object sub-record overruns")
        pos += 4 + cb
        if ft == _FT_CMO:
            if cb < 6:
                raise _Bad("short object header")
            ot = struct.unpack_from("<H", sub, 0)[0]
        elif ft == _FT_MACRO:
            report.threat("ole.macro_reference", where, "macro assigned to a shape or control")
            continue
        elif ft == _FT_PIOGRBIT and cb >= 2:
            flags = struct.unpack_from("<H", sub, 0)[0]
            if flags & 0x0012:  # fDde | fCtl
                kind = "ActiveX control" if flags & 0x10 else "OLE link"
                report.threat("ole.activex" if flags & 0x10 else "ole.object", where, f"{kind} kept as its picture")
            sub = struct.pack("<H", flags & ~0x02B2) + sub[2:]  # no DDE, control, stream, camera, autoload
        elif ft == _FT_PICTFMLA:
            if ot == 0x08:
                report.threat("ole.object", where, "embedded object kept as its picture")
            continue  # the link to the object storage, control stream or camera range goes
        elif ft in (_FT_SBSFMLA, _FT_CBLSFMLA):
            try:
                sub = _obj_formula(sub, links)
            except (_Bad, FormulaIssue):
                continue  # the control keeps working, unlinked
        out += struct.pack("<HH", ft, len(sub)) + sub
        if ft == _FT_END:
            break
    return bytes(out)
