"""Telling Japanese text encodings apart: UTF-8, UTF-16, Shift_JIS (CP932), EUC-JP, ISO-2022-JP.

charset-normalizer alone often takes short Shift_JIS text for something else,
so we decode strictly with the Japanese candidates first and score by how
Japanese the result looks; charset-normalizer only breaks the remaining ties.
"""
from __future__ import annotations

import re

# Bidirectional controls reorder how a name is shown (invoice\u202egpj.exe looks like invoiceexe.jpg).
BIDI_CONTROLS = frozenset(["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)),
                           *map(chr, range(0x2066, 0x206A))])

_JA = re.compile(r"[\u3000-\u303f\u3040-\u309f\u30a0-\u30ff\u4e00-\u9fff\uff00-\uffef]")
_HALF_KANA = re.compile(r"[\uff61-\uff9f]")
_ODD = re.compile(r"[\u0080-\u009f\ufffd\ue000-\uf8ff]")


def _score(text: str) -> float:
    text = text[:65536]  # strict decoding already checked the whole sample; this only ranks
    if not text:
        return 0.0
    ja = len(_JA.findall(text))
    # Half-width kana runs are typical of mis-decoded EUC-JP / UTF-8 read as CP932.
    half = len(_HALF_KANA.findall(text))
    odd = len(_ODD.findall(text))
    return (ja - 2 * half - 5 * odd) / len(text)


# A failed strict decoding copies its whole input into the error: Shift_JIS fails as UTF-8 at its first
# Japanese character, so a prefix is tried first.
_PROBE = 16384


def detect_encoding(data: bytes) -> str:
    """Return a Python codec name for `data` (text). Never raises."""
    return _detect(data)[0]


def _detect(data: bytes) -> tuple[str, str | None]:
    """(codec, text): `text` is all of `data` decoded strictly in that codec when detection has already
    done so (a file no larger than the sample), so that decode_whole need not decode it again; else None."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", None
    sample = data[:1 << 20]
    whole = len(sample) == len(data)
    # ISO-2022-JP is 7-bit and would pass as UTF-8: look for its escape sequences first.
    # (ESC itself first: one memchr instead of three substring searches through a clean file.)
    if b"\x1b" in sample and (b"\x1b$B" in sample or b"\x1b$@" in sample or b"\x1b(J" in sample):
        if all(b < 0x80 for b in sample):
            return "iso2022_jp", None
    try:
        if len(sample) > _PROBE:
            try:
                sample[:_PROBE].decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.start < _PROBE - 3:  # not a character cut by the probe: the sample fails there too
                    raise
        text = sample.decode("utf-8")
        return "utf-8", text if whole else None
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample boundary is still UTF-8.
        if len(sample) < len(data) and exc.start >= len(sample) - 3:
            return "utf-8", None
    candidates: list[tuple[str, str | None, str]] = []  # (codec, strict whole text, text to score)
    for enc in ("cp932", "euc_jp"):
        try:
            text = sample.decode(enc)
            strict = True
        except UnicodeDecodeError as exc:
            if len(sample) < len(data) and exc.start >= len(sample) - 2:
                text = sample[: exc.start].decode(enc, "replace")
                strict = False
            else:
                continue
        candidates.append((enc, text if strict and whole else None, text))
    if candidates:
        # Scoring only ranks: one candidate (the usual Shift_JIS file fails as EUC-JP) needs none.
        if len(candidates) == 1:
            return candidates[0][0], candidates[0][1]
        best = max(candidates, key=lambda c: (_score(c[2]), c[0]))
        return best[0], best[1]
    try:
        from charset_normalizer import from_bytes

        found = from_bytes(sample).best()
        if found is not None:
            return found.encoding, None
    except Exception:
        pass
    return "latin-1", None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode to str with the detected encoding; undecodable bytes are replaced."""
    enc, text = _detect(data)
    return (data.decode(enc, "replace") if text is None else text), enc


# Encodings a Japanese text file is tried in when the one detected from its head fails further on.
_JAPANESE = ("utf-8", "cp932", "euc_jp")


def decode_whole(data: bytes) -> tuple[str, str] | None:
    """Decode every byte of `data` strictly: (text, codec), or None when no encoding reads it all.

    The encoding is detected from the first megabyte; when the rest does not decode in it (an ASCII head
    before Shift_JIS rows), the other Japanese encodings are tried on the whole file. A BOM is binding:
    UTF-16 cut to an odd length or holding an unpaired surrogate does not decode, nor does invalid UTF-8."""
    enc, text = _detect(data)
    if text is not None:
        return text, enc
    try:
        return data.decode(enc), enc
    except (UnicodeDecodeError, LookupError):
        pass
    if enc.replace("-", "_").lower() not in ("utf_8", "cp932", "euc_jp", "iso2022_jp"):
        return None  # a BOM, or an encoding charset-normalizer chose for the whole sample
    best: tuple[float, str, str] | None = None
    for cand in _JAPANESE:
        try:
            text = data.decode(cand)
        except UnicodeDecodeError:
            continue
        score = _score(text)
        if best is None or score > best[0]:
            best = (score, text, cand)
    return (best[1], best[2]) if best else None
