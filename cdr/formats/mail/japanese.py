"""Charsets of Japanese mail, decoded as Japanese mailers write them.

Outlook and most Japanese mailers write ISO-2022-JP with Windows' CP50220 table:
NEC row 13 (①, ㈱, ㍻), NEC-selected IBM extensions (髙, 﨑) and half-width kana all
occur. Python's iso2022_jp codecs refuse or lose them, and map 〜 (0x2141) to U+301C
where Windows shows U+FF5E. We read every JIS X 0208 pair through CP932 instead (the
same table Windows uses), half-width kana from ESC ( I or SO/SI, JIS X 0212 through
EUC-JP. Labels that say shift_jis are read as cp932; EUC-JP goes through the same
CP932 table (Microsoft's CP51932 semantics).

Every character we cannot decode becomes U+FFFD and is *counted*: callers report a
non-zero count as a decode defect, never silently.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

# Labels seen in Japanese mail, mapped to how we decode them.
_ISO2022 = {"iso-2022-jp", "iso2022-jp", "iso2022jp", "iso-2022-jp-ms", "iso-2022-jp-1", "iso-2022-jp-2",
            "iso-2022-jp-3", "iso-2022-jp-2004", "csiso2022jp", "cp50220", "cp50221", "cp50222", "jis",
            "x-cp50220", "x-cp50221", "iso-2022-jp-ext"}
_SJIS = {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932",
         "ms932", "x-ms-cp932", "shift_jisx0213", "shift_jis-2004", "x-shift_jis", "ibm-943", "cp943"}
_EUC = {"euc-jp", "eucjp", "x-euc-jp", "euc_jp", "cseucpkdfmtjapanese", "cp51932", "x-euc", "ujis"}
_UNKNOWN = {"unknown-8bit", "x-unknown", "unknown", "x-user-defined", "default", "8bit", "binary", ""}
# Codecs that are not charsets (they turn bytes into escapes or host names), never used for mail text.
_NOT_CHARSETS = {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "charmap",
                 "mbcs", "oem", "unicode_internal", "palmos"}


@dataclass
class Decoded:
    """Text plus what went wrong while decoding it."""

    text: str
    charset: str  # what we used
    defects: int = 0  # characters we could not decode (each became U+FFFD)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ JIS X 0208 through CP932

_PAIRS: dict[bytes, str] | None = None


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 & 1:
        s2 = j2 + (0x1F if j2 <= 0x5F else 0x20)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def _pairs() -> dict[bytes, str]:
    """Every JIS X 0208 code pair (rows 1-94, NEC row 13 and the IBM rows included) as CP932 reads it."""
    global _PAIRS
    if _PAIRS is None:
        table: dict[bytes, str] = {}
        for j1 in range(0x21, 0x7F):
            for j2 in range(0x21, 0x7F):
                try:
                    ch = _jis_to_sjis(j1, j2).decode("cp932")
                except UnicodeDecodeError:
                    continue
                if j1 >= 0x75 and j1 <= 0x78:  # CP932 user-defined area (外字): a private-use character
                    continue
                table[bytes((j1, j2))] = ch
        _PAIRS = table
    return _PAIRS


def _double(seg: bytes, out: list[str]) -> int:
    """Decode a run of JIS X 0208 pairs; returns the number of undecodable characters."""
    table = _pairs()
    bad = 0
    for i in range(0, len(seg) - 1, 2):
        ch = table.get(seg[i:i + 2])
        if ch is None:
            bad += 1
            ch = "\ufffd"
        out.append(ch)
    if len(seg) % 2:
        bad += 1
        out.append("\ufffd")
    return bad


_ESC = re.compile(rb"\x1b(\$@|\$B|&@\x1b\$B|\$\(D|\$\(O|\$\(Q|\$\(B|\(B|\(J|\(H|\(I|\$A|\$\(C|\.A|\.F|N)|[\x0e\x0f\r\n]")


def decode_iso2022jp(data: bytes) -> Decoded:
    """ISO-2022-JP as CP50220/50221/50222 decode it (see module doc)."""
    if not data.isascii():
        # 8-bit bytes under an ISO-2022-JP label: the mailer lied about the charset.
        guess = decode_8bit(data, jis=False)
        guess.notes.append("8-bit data labelled ISO-2022-JP")
        return guess
    out: list[str] = []
    bad = 0
    state = "ascii"
    shifted = False  # SO: half-width kana (CP50221)
    pos = 0
    for m in _ESC.finditer(data):
        chunk = data[pos:m.start()]
        bad += _emit(chunk, state, shifted, out)
        tok = m.group(0)
        pos = m.end()
        if tok in (b"\r", b"\n"):
            out.append(tok.decode())
            # A line must end in ASCII; mailers that forget are read as if they had not.
            state, shifted = "ascii", False
            continue
        if tok == b"\x0e":
            shifted = True
        elif tok == b"\x0f":
            shifted = False
        else:
            esc = tok[1:]
            if esc in (b"$@", b"$B", b"&@\x1b$B", b"$(O", b"$(Q", b"$(B"):
                state = "jis0208"
            elif esc == b"$(D":
                state = "jis0212"
            elif esc in (b"(B", b"(J", b"(H"):
                state = "ascii"
            elif esc == b"(I":
                state = "kana"
            else:  # ISO-2022-JP-2 sets (Chinese, Korean, Latin-1 G2): not Japanese mail
                state = "unknown"
    bad += _emit(data[pos:], state, shifted, out)
    return Decoded("".join(out), "iso-2022-jp", bad)


def _emit(chunk: bytes, state: str, shifted: bool, out: list[str]) -> int:
    if not chunk:
        return 0
    if shifted or state == "kana":
        bad = 0
        for b in chunk:
            if 0x21 <= b <= 0x5F:
                out.append(chr(0xFF61 + b - 0x21))
            elif b in (0x20, 0x09):
                out.append(chr(b))
            else:
                bad += 1
                out.append("\ufffd")
        return bad
    if state == "jis0208":
        return _double(chunk, out)
    if state == "jis0212":
        bad = 0
        for i in range(0, len(chunk) - 1, 2):
            try:
                out.append(bytes((0x8F, chunk[i] | 0x80, chunk[i + 1] | 0x80)).decode("euc_jp"))
            except UnicodeDecodeError:
                bad += 1
                out.append("\ufffd")
        if len(chunk) % 2:
            bad += 1
            out.append("\ufffd")
        return bad
    if state == "unknown":
        out.append("\ufffd" * max(1, len(chunk) // 2))
        return max(1, len(chunk) // 2)
    out.append(chunk.decode("ascii"))
    return 0


def decode_eucjp(data: bytes) -> Decoded:
    """EUC-JP with CP51932 semantics: two-byte codes read through the CP932 table (NEC/IBM rows)."""
    table = _pairs()
    out: list[str] = []
    bad = 0
    i, n = 0, len(data)
    while i < n:
        # ASCII runs in one step: most of a Japanese mail's bytes are markup, addresses and spaces.
        j = i
        while j < n and data[j] < 0x80:
            j += 1
        if j > i:
            out.append(data[i:j].decode("ascii"))
            i = j
            continue
        b = data[i]
        if b == 0x8E and i + 1 < n and 0xA1 <= data[i + 1] <= 0xDF:
            out.append(chr(0xFF61 + data[i + 1] - 0xA1))
            i += 2
        elif b == 0x8F and i + 2 < n:
            try:
                out.append(data[i:i + 3].decode("euc_jp"))
            except UnicodeDecodeError:
                bad += 1
                out.append("\ufffd")
            i += 3
        elif 0xA1 <= b <= 0xFE and i + 1 < n and 0xA1 <= data[i + 1] <= 0xFE:
            ch = table.get(bytes((b & 0x7F, data[i + 1] & 0x7F)))
            if ch is None:
                bad += 1
                ch = "\ufffd"
            out.append(ch)
            i += 2
        else:
            bad += 1
            out.append("\ufffd")
            i += 1
    return Decoded("".join(out), "euc-jp", bad)


# ------------------------------------------------------------------ everything else

def _count_replace(data: bytes, codec: str) -> Decoded:
    try:
        return Decoded(data.decode(codec), codec)
    except UnicodeDecodeError:
        pass
    bad = [0]

    def handler(exc: UnicodeError) -> tuple[str, int]:
        assert isinstance(exc, UnicodeDecodeError)
        bad[0] += 1
        return "\ufffd", exc.end

    name = f"cdr-mail-count-{id(bad)}"
    codecs.register_error(name, handler)
    text = data.decode(codec, name)
    return Decoded(text, codec, bad[0])


def decode_8bit(data: bytes, jis: bool = True) -> Decoded:
    """Bytes with no (or a false) label: strict UTF-8, then CP932, then EUC-JP, as Japanese mail is.
    `jis`: also try ISO-2022-JP escapes (not when called from the ISO-2022-JP decoder itself)."""
    if data.isascii():
        if jis and (b"\x1b$B" in data or b"\x1b$@" in data):  # raw JIS, as old mailers put it in headers
            return decode_iso2022jp(data)
        return Decoded(data.decode("ascii"), "us-ascii")
    for codec in ("utf-8", "cp932"):
        try:
            return Decoded(data.decode(codec), codec)
        except UnicodeDecodeError:
            continue
    euc = decode_eucjp(data)
    if euc.defects == 0:
        return euc
    sj = _count_replace(data, "cp932")
    utf = _count_replace(data, "utf-8")
    return min((sj, utf, euc), key=lambda d: d.defects)


def canonical(label: str) -> str:
    """How we will decode a charset label: 'iso-2022-jp', 'cp932', 'euc-jp', 'guess' or a Python codec."""
    lab = (label or "").strip().strip("\"'").lower()
    if lab in _ISO2022:
        return "iso-2022-jp"
    if lab in _SJIS:
        return "cp932"
    if lab in _EUC:
        return "euc-jp"
    if lab in ("us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us") or lab in _UNKNOWN:
        return "guess"
    try:
        info = codecs.lookup(lab)
    except LookupError:
        return "guess"
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS \
            or info.name.startswith("raw_"):
        return "guess"
    return info.name


def decode(data: bytes, label: str | None) -> Decoded:
    """Decode mail text under its declared charset, the Japanese way (see module doc)."""
    how = canonical(label or "")
    if how == "iso-2022-jp":
        return decode_iso2022jp(data)
    if how == "euc-jp":
        return decode_eucjp(data)
    if how == "guess":
        d = decode_8bit(data)
        if label and not data.isascii() and (label or "").strip().lower() not in _UNKNOWN:
            d.notes.append(f"8-bit data labelled {label}")
        return d
    if how == "cp932":
        return _count_replace(data, "cp932")
    if how == "utf-8" or how.startswith("utf_8"):
        return _count_replace(data, "utf-8")
    if how in ("ascii",):
        return decode_8bit(data)
    d = _count_replace(data, how)
    if how in ("latin_1", "iso8859-1", "cp1252") and not data.isascii():
        # Japanese text sent as "iso-8859-1" by a broken mailer: prefer a clean Japanese decoding.
        alt = decode_8bit(data)
        if alt.defects == 0 and alt.charset in ("utf-8", "cp932"):
            alt.notes.append(f"8-bit Japanese data labelled {label}")
            return alt
    return d


# ------------------------------------------------------------------ writing ISO-2022-JP (samples, tests)

def encode_iso2022jp_ms(text: str) -> bytes:
    """Text as Outlook writes ISO-2022-JP (CP50220): CP932 double-byte characters as JIS pairs,
    half-width kana converted by ESC ( I (CP50221 style, which CP50220 readers accept)."""
    out = bytearray()
    state = "ascii"
    for ch in text:
        if ch in "\r\n":
            if state != "ascii":
                out += b"\x1b(B"
                state = "ascii"
            out += ch.encode()
            continue
        b = ch.encode("cp932")
        if len(b) == 1 and b[0] < 0x80:
            want, code = "ascii", b
        elif len(b) == 1:
            want, code = "kana", bytes((b[0] - 0x80,))
        else:
            s1, s2 = b
            if s1 >= 0xFA:  # IBM extension: CP50220 writes the NEC-selected form (rows 89-92)
                raise ValueError(f"{ch!r} has no JIS form")
            j1 = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) * 2
            if s2 >= 0x9F:
                j2 = s2 - 0x7E
            else:
                j1 -= 1
                j2 = s2 - (0x1F if s2 < 0x7F else 0x20)
            want, code = "jis0208", bytes((j1, j2))
        if want != state:
            out += {"ascii": b"\x1b(B", "kana": b"\x1b(I", "jis0208": b"\x1b$B"}[want]
            state = want
        out += code
    if state != "ascii":
        out += b"\x1b(B"
    return bytes(out)
