"""Embedded font programs of the rebuilt PDF parsed and written again with fontTools.

Font parsers in readers are a known way in: Adobe CoolType's SING table (CVE-2010-2883, exploited through
PDFs), and many FreeType and Windows font bugs triggered by table directories, offsets and glyph data that
do not add up. TrueType (FontFile2) and OpenType/CFF (FontFile3) programs are read table by table; only the
tables a PDF reader draws with are kept, every glyph is parsed (contours, components, CFF charstrings; up to
GLYPH_BUDGET glyphs a font) and the font is compiled anew, so offsets, lengths, checksums and the glyph data
are fontTools' own. Hinting programs stay (they shape the glyphs on screen). Type 1 programs (FontFile) are
parsed by t1Lib (eexec decrypted, charstrings decompiled) and written again, encrypted anew, with their three
lengths. A table a reader needs that fontTools cannot read blocks the file; others that fail are left out.
"""
from __future__ import annotations

import io
from typing import Any

import pikepdf
from pikepdf import Name

from ...errors import Malformed
from ...handler import Context
from ...model import Threat
from .._deflate import compressobj
from .allowlist import name_str

# What PDF readers draw TrueType and CFF-flavoured OpenType glyphs with (ISO 32000-2, 9.9).
_NEEDED = {"head", "hhea", "maxp", "loca", "glyf", "hmtx", "CFF "}
_KEEP = _NEEDED | {"cmap", "cvt ", "fpgm", "prep", "gasp", "name", "OS/2", "post", "vhea", "vmtx", "VORG"}
# Tables fonts carry for layout or signing, which a PDF never uses: left out without a word.
_UNUSED = {"DSIG", "GDEF", "GPOS", "GSUB", "BASE", "JSTF", "LTSH", "VDMX", "hdmx", "PCLT", "meta", "FFTM", "kern",
           "morx", "mort", "feat", "prop", "trak", "MATH", "COLR", "CPAL", "STAT", "fvar", "gvar", "avar", "HVAR",
           "MVAR", "cvar", "vhea", "vmtx"} - _KEEP
_CFF_SUBTYPES = {"/Type1C", "/CIDFontType0C"}
# Glyphs parsed one by one up to this many in a font (subsets, nearly every embedded font: 0.1 ms a TrueType
# glyph, 0.7 ms a CFF one here); a larger font (a whole CJK font: 65,535 glyphs, 44 s) is rebuilt table by
# table with its glyph programs copied (2.2 s for 25 MB).
GLYPH_BUDGET = 4000


def _cannot(what: str) -> Malformed:
    return Malformed(f"a font in the PDF cannot be rebuilt ({what})",
                     "PDF内のフォントを作り直せないため配送を停止しました")


def _cff_normalised(cff: Any) -> None:
    """Every charstring parsed into its program (compiled again from that program on save), within the budget."""
    for name in cff.keys():
        strings = cff[name].CharStrings
        if len(strings) > GLYPH_BUDGET:
            continue
        for g in strings.keys():
            strings[g].decompile()


def _sfnt(data: bytes, dropped: set[str]) -> bytes:
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(data), lazy=False, recalcBBoxes=False, recalcTimestamp=False, checkChecksums=0)
    for tag in list(font.keys()):
        if tag == "GlyphOrder":
            continue
        if tag not in _KEEP:
            del font[tag]
            dropped.add(tag)
            continue
        try:
            table = font[tag]  # decompiled here
            if tag == "glyf" and len(font.getGlyphOrder()) <= GLYPH_BUDGET:
                for name in font.getGlyphOrder():
                    table[name]  # noqa: B018 - expands the glyph: contours, components, instructions
            elif tag == "CFF ":
                _cff_normalised(table.cff)
        except Exception as exc:  # fontTools raises many kinds on damaged tables
            if tag in _NEEDED:
                raise _cannot(f"{tag.strip()} table: {type(exc).__name__}") from None
            del font[tag]
            dropped.add(tag)
    buf = io.BytesIO()
    font.save(buf, reorderTables=True)
    return buf.getvalue()


def _bare_cff(data: bytes) -> bytes:
    from fontTools.cffLib import CFFFontSet
    from fontTools.ttLib import TTFont

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), TTFont())
    _cff_normalised(cff)
    buf = io.BytesIO()
    cff.compile(buf, TTFont())
    return buf.getvalue()


def _type1(data: bytes) -> tuple[bytes, int, int, int]:
    """A Type 1 program (cleartext, eexec-encrypted part, trailer) parsed by fontTools' t1Lib, every charstring
    decompiled within the budget, and written again: (data, Length1, Length2, Length3)."""
    from fontTools.t1Lib import T1Font

    font = T1Font.__new__(T1Font)  # from bytes: the constructor reads a file
    font.data, font.encoding = data, "ascii"
    font.parse()
    strings = font.font["CharStrings"]
    if len(strings) <= GLYPH_BUDGET:
        for g in strings.keys():
            strings[g].decompile()
    out = font.createData()
    start = out.index(b"eexec") + len(b"eexec")
    while out[start:start + 1] in (b" ", b"\r", b"\n"):
        start += 1
    end = out.rindex(b"cleartomark")
    while end > start and out[end - 1:end] in (b"0", b" ", b"\r", b"\n"):
        end -= 1
    return out, start, end - start, len(out) - end


def rebuild(ctx: Context, fonts: list[Any]) -> list[Threat]:
    """Rebuild the font programs of `fonts` (font dictionaries a page, form, pattern or glyph names)."""
    descriptors, seen = [], set()
    for font in fonts:
        kids = font.get("/DescendantFonts")
        for f in ([font] + (list(kids) if isinstance(kids, pikepdf.Array) else [])):
            d = f.get("/FontDescriptor") if isinstance(f, pikepdf.Dictionary) else None
            if isinstance(d, pikepdf.Dictionary) and (d.objgen == (0, 0) or d.objgen not in seen):
                seen.add(d.objgen)
                descriptors.append(d)
    done: set[tuple[int, int]] = set()
    dropped: set[str] = set()
    count = 0
    for d in descriptors:
        for key in ("/FontFile", "/FontFile2", "/FontFile3"):
            s = d.get(key)
            if not isinstance(s, pikepdf.Stream) or s.objgen in done:
                continue
            done.add(s.objgen)
            ctx.check_time()
            try:
                data = s.read_bytes()
            except pikepdf.PdfError:
                raise _cannot("damaged compressed data") from None
            sub = s.get("/Subtype")
            lengths = None
            try:
                if key == "/FontFile":
                    parts = [s.get(k) for k in ("/Length1", "/Length2", "/Length3")]
                    if all(isinstance(n, int) and n >= 0 for n in parts) and sum(parts) <= len(data):
                        data = data[:sum(parts)]  # what the three lengths cover: readers read no further
                    new, *lengths = _type1(data)
                elif key == "/FontFile3" and name_str(sub) in _CFF_SUBTYPES:
                    new = _bare_cff(data)
                elif key == "/FontFile2" or sub == Name.OpenType:
                    new = _sfnt(data, dropped)
                else:
                    continue  # another FontFile3 subtype: the allow-list has no entry for it either
            except Malformed:
                raise
            except Exception as exc:
                raise _cannot(f"{key[1:]}: {type(exc).__name__}: {str(exc)[:80]}") from None
            co = compressobj(6)
            s.write(co.compress(new) + co.flush(), filter=Name.FlateDecode)
            for k in ("/Length2", "/Length3"):
                if k in s:
                    del s[k]
            if key == "/FontFile2":
                s.Length1 = len(new)
            elif lengths:
                s.Length1, s.Length2, s.Length3 = lengths
            count += 1
    odd = sorted(dropped - _UNUSED)
    if odd:
        return [Threat("pdf.font_rebuilt", "document", "reported",
                       f"font tables a PDF does not draw with left out of {count} rebuilt font(s): {', '.join(odd)}")]
    return []
