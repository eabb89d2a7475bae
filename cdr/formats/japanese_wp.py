"""一太郎 (.jtd) and DocuWorks (.xdw): recognised, never rebuilt, text where it can be read.

No open-source rebuild exists for either format, so `rebuild` always refuses; the default policy
blocks both families and asks the clerk to request a PDF. Under the text-only policy the
pipeline takes the text rendition straight from the source (`rebuildable = False`).

Ichitaro 8 and later keep the body in the OLE stream `DocumentText`: a small block store
("SsmgV.01") whose first sub-stream is "TextV.01" + u32 unit count + UTF-16BE units, with
records opened by U+001C (layout is public reverse-engineering work: OpenJTD, Tika-JTD, rjtd).
Compressed files (.jtdc, stream `JSCompDocument`, LHA -lh5-) and Ichitaro 7 and older are not
read. DocuWorks is a closed format with no open reader: its text cannot be extracted.
"""
from __future__ import annotations

import struct
from pathlib import Path

from ..errors import Malformed, Unsupported
from ..handler import Context, Handler, Rebuilt, register
from ..model import Detection, Threat

_MAX_UNITS = 20_000_000
_ASK_PDF_JA = "送信者に PDF での再送を依頼してください"
_ASK_PDF_EN = "ask the sender to send it as a PDF"


def _u32(b: bytes, off: int) -> int:
    return struct.unpack_from(">I", b, off)[0]


def _substreams(data: bytes) -> dict[int, bytes] | None:
    """Split a SsmgV.01 block store into its sub-streams; None when the layout does not fit."""
    if len(data) < 20 or data[:8] != b"SsmgV.01":
        return None
    sub_count, bsize, bcount = _u32(data, 8), _u32(data, 12), _u32(data, 16)
    if not (0 < bsize <= 1 << 16) or bcount > len(data) // max(bsize, 1) or sub_count > 1_000_000:
        return None
    pos = 20 + bsize * bcount
    subs: dict[int, bytes] = {}
    for _ in range(sub_count):
        if pos + 20 > len(data):
            return None
        index, _zero, length, n1, _n2 = struct.unpack_from(">IIIII", data, pos)
        pos += 20
        if n1 > bcount or pos + 4 * n1 > len(data):
            return None
        ids = struct.unpack_from(f">{n1}I", data, pos)
        pos += 4 * n1
        if any(i >= bcount for i in ids):
            return None
        body = b"".join(data[20 + i * bsize: 20 + (i + 1) * bsize] for i in ids)
        subs[index] = body[:length]
    return subs


def _units(piece: bytes, magic: bytes = b"TextV.01") -> list[int]:
    if piece[:8] != magic or len(piece) < 12:
        return []
    count = min(_u32(piece, 8), (len(piece) - 12) // 2, _MAX_UNITS)
    return list(struct.unpack_from(f">{count}H", piece, 12))


def _text_units(data: bytes) -> list[int]:
    subs = _substreams(data)
    if subs and 0 in subs:
        first = subs[0]
        if first[:8] == b"TextV.01":
            return _units(first)
        if first[:8] == b"QLSTV.01" and len(first) >= 12:
            n = min(_u32(first, 8), 100_000)
            units: list[int] = []
            for k in range(n):
                off = 12 + 8 * k
                if off + 8 > len(first):
                    break
                count, sub = _u32(first, off), _u32(first, off + 4)
                piece = subs.get(sub, b"")
                units.extend(struct.unpack_from(f">{min(count, len(piece) // 2)}H", piece, 0))
                if len(units) > _MAX_UNITS:
                    break
            return units
    # Small files (and older writers): "TextV.01" straight after the header.
    at = data.find(b"TextV.01")
    return _units(data[at:]) if at >= 0 else []


def _render(units: list[int]) -> str:
    out: list[int] = []
    i, n = 0, len(units)
    hide = 0  # inside a template instruction (hidden inline text)
    while i < n:
        u = units[i]
        if u == 0x001C and i + 2 < n:  # record: 001C class len ... ; len counts the whole record
            cls, length = units[i + 1], units[i + 2]
            if cls == 0x0001 and i + 5 < n and units[i + 4] == 0x0001 and units[i + 5] == 0x0000:
                hide += 1
            i += max(length, 3)
            continue
        if u == 0x001E and i + 1 < n:  # inline footer: 001E len 0000 class 001F
            hide = max(0, hide - 1)
            i += max(units[i + 1], 2)
            continue
        i += 1
        if hide:
            continue
        if u in (0x000A, 0x000E, 0x000C):
            out.append(0x000A)
        elif u == 0x0009:
            out.append(0x0009)
        elif u == 0x0000:
            break
        elif u >= 0x0020:
            out.append(u)
    text = struct.pack(f">{len(out)}H", *out).decode("utf-16-be", "replace")
    return text


def ichitaro_streams(path: Path) -> dict[str, int]:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return {"/".join(e): ole.get_size("/".join(e)) for e in ole.listdir(streams=True, storages=False)}
    except Exception as exc:
        raise Malformed(f"not a readable Ichitaro file ({type(exc).__name__})",
                        "一太郎ファイルとして読み取れません") from None


def ichitaro_text(path: Path) -> str:
    """The body text of an Ichitaro 8+ document."""
    import olefile

    try:
        ole = olefile.OleFileIO(str(path))
    except Exception as exc:
        raise Malformed(f"not a readable Ichitaro file ({type(exc).__name__})",
                        "一太郎ファイルとして読み取れません") from None
    try:
        if ole.exists("JSCompDocument"):
            raise Unsupported("compressed Ichitaro files (.jtdc) cannot be read; " + _ASK_PDF_EN,
                              "圧縮形式の一太郎文書は読み取れません。" + _ASK_PDF_JA)
        if not ole.exists("DocumentText"):
            raise Unsupported("this Ichitaro version keeps no readable text stream; " + _ASK_PDF_EN,
                              "この版の一太郎文書からは本文を読み取れません。" + _ASK_PDF_JA)
        data = ole.openstream("DocumentText").read()
    finally:
        ole.close()
    units = _text_units(data)
    if not units:
        raise Unsupported("no text could be read from this Ichitaro document; " + _ASK_PDF_EN,
                          "この一太郎文書から本文を読み取れませんでした。" + _ASK_PDF_JA)
    text = _render(units)
    return text.strip("\n") + "\n"


@register
class IchitaroHandler(Handler):
    family = "ichitaro"
    mime_types = ("application/x-js-taro",)
    options = {}
    rebuildable = False
    block_hint = (_ASK_PDF_JA, _ASK_PDF_EN)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        found: list[Threat] = []
        streams = ichitaro_streams(path)
        if any(n.startswith("DocumentMacro/") and size > 0 for n, size in streams.items()):
            found.append(Threat("ichitaro.macro", "DocumentMacro", "found", "Ichitaro macro storage"))
        objects = sorted({n.split("/")[0] for n in streams if n.startswith(("Embedding", "OleItem"))})
        for o in objects:
            found.append(Threat("ole.object", o, "found", "embedded object"))
        return found

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        raise Unsupported("Ichitaro documents cannot be rebuilt safely; " + _ASK_PDF_EN,
                          "一太郎文書は安全に再構築できません。" + _ASK_PDF_JA, threat_id="file.unsupported")

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return ichitaro_text(path)


@register
class DocuWorksHandler(Handler):
    family = "docuworks"
    mime_types = ("application/vnd.fujixerox.docuworks",)
    options = {}
    has_text = False
    rebuildable = False
    block_hint = (_ASK_PDF_JA, _ASK_PDF_EN)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return []

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        raise Unsupported("DocuWorks documents cannot be rebuilt safely; " + _ASK_PDF_EN,
                          "DocuWorks 文書は安全に再構築できません。" + _ASK_PDF_JA, threat_id="file.unsupported")

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        raise Unsupported("DocuWorks is a closed format; its text cannot be read without the vendor's software; "
                          + _ASK_PDF_EN,
                          "DocuWorks は非公開形式のため本文を取り出せません。" + _ASK_PDF_JA,
                          threat_id="file.unsupported")
