"""Header fields: split, decoded (RFC 2047, RFC 2231, raw 8-bit) and written back by us.

Reading keeps the raw bytes of each field so that every decoding rule is ours, not the
email package's (which loses CP932/CP50220 characters and raises on some malformed
fields). Writing produces only ASCII: RFC 2047 UTF-8 encoded-words, folded below 78
columns; CR, LF and NUL never reach an output line.
"""
from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from ...encoding import BIDI_CONTROLS
from .japanese import Decoded, decode, decode_8bit


@dataclass
class Field:
    name: str  # as written
    raw: bytes  # unfolded value, without the leading space
    line_ends: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.name.strip().lower()


class HeaderError(Exception):
    """A header block that readers would see differently (RFC 7103): the caller blocks or drops."""

    def __init__(self, en: str, ja: str, kind: str = "ambiguous") -> None:
        super().__init__(en)
        self.en, self.ja, self.kind = en, ja, kind


_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def split_fields(block: bytes, limit: int) -> list[Field]:
    """The fields of a header block (the bytes before the empty line), unfolded.

    Raises HeaderError for what RFC 7103 calls ambiguous: bare CR, a mix of CRLF and bare
    LF line ends, a line that is neither a field nor a continuation, a block over `limit`.
    """
    if len(block) > limit:
        raise HeaderError(f"header block of {len(block)} bytes is over the limit of {limit}",
                          f"ヘッダーの大きさ（{len(block)} バイト）が上限（{limit} バイト）を超えています", "limit")
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    crlf = sum(1 for ln in lines if ln.endswith(b"\r"))
    if crlf and crlf != len(lines):
        raise HeaderError("the header mixes CRLF and bare LF line ends",
                          "ヘッダーの改行コードにCRLFとLFが混在しています")
    fields: list[Field] = []
    for n, line in enumerate(lines):
        if crlf:
            line = line[:-1]
        if b"\r" in line:
            raise HeaderError("a bare CR inside the header", "ヘッダー内に単独のCR（改行）があります")
        if n == 0 and line.startswith(b"From ") and not fields:
            continue  # mbox "From " line of a saved mail
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise HeaderError("the header starts with a continuation line",
                                  "ヘッダーが継続行から始まっています")
            fields[-1].raw += b" " + line.strip(b" \t") if fields[-1].raw else line.strip(b" \t")
            continue
        m = _NAME.match(line)
        if not m:
            raise HeaderError(f"a header line is not a field: {line[:60]!r}",
                              "ヘッダーに項目として読めない行があります")
        value = line[m.end():].strip(b" \t")
        fields.append(Field(m.group(1).decode("ascii"), value))
    return fields


# ------------------------------------------------------------------ reading values

_EW = re.compile(rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


@dataclass
class Text:
    """A decoded header value and the trouble met on the way."""

    value: str
    defects: int = 0
    injected: bool = False  # CR, LF or NUL removed
    notes: list[str] = field(default_factory=list)


def _ew_bytes(enc: bytes, payload: bytes) -> bytes | None:
    if enc in (b"b", b"B"):
        p = payload + b"=" * (-len(payload) % 4)
        try:
            return base64.b64decode(p, validate=False)
        except (binascii.Error, ValueError):
            return None
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes((int(m.group(1), 16),)), payload.replace(b"_", b" "))


def decode_words(raw: bytes) -> Text:
    """RFC 2047 encoded-words (also glued to other text, as mailers write them) and raw 8-bit text.

    Adjacent encoded-words in one charset are joined as bytes before decoding: Outlook and others
    split an ISO-2022-JP or UTF-8 character across two words."""
    pieces: list[tuple[str | None, bytes]] = []  # (charset or None for literal, bytes)
    pos = 0
    for m in _EW.finditer(raw):
        lit = raw[pos:m.start()]
        # Whitespace between two encoded-words is not part of the text (RFC 2047 section 6.2).
        if lit and not (pieces and pieces[-1][0] is not None and not lit.strip(b" \t")):
            pieces.append((None, lit))
        data = _ew_bytes(m.group(2), m.group(3))
        if data is None:
            pieces.append((None, m.group(0)))
        else:
            cs = m.group(1).decode("ascii", "replace").lower()
            if pieces and pieces[-1][0] == cs:
                pieces[-1] = (cs, pieces[-1][1] + data)
            else:
                pieces.append((cs, data))
        pos = m.end()
    if pos < len(raw):
        pieces.append((None, raw[pos:]))
    out: list[str] = []
    t = Text("")
    for cs, data in pieces:
        d: Decoded = decode_8bit(data) if cs is None else decode(data, cs)
        out.append(d.text)
        t.defects += d.defects
        t.notes.extend(d.notes)
    return clean_value("".join(out), t)


def clean_value(value: str, t: Text | None = None) -> Text:
    """No CR, LF or NUL (header injection) and no other C0 control survives in a header value."""
    t = t or Text("")
    if any(c in value for c in "\r\n\x00"):
        t.injected = True
    value = "".join(" " if unicodedata.category(c) == "Cc" else c for c in value)
    t.value = re.sub(r"\s+", " ", value).strip()
    return t


# ------------------------------------------------------------------ parameters (Content-Type, -Disposition)

@dataclass
class Params:
    """A MIME type or disposition and its parameters, decoded; duplicates and conflicts noted."""

    value: str  # "text/plain", "attachment" (lower case)
    params: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # parameter names given twice or inconsistently
    defects: int = 0
    raw_names: dict[str, list[str]] = field(default_factory=dict)  # every decoded form of name/filename


_TOKEN = re.compile(rb'\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*(?:;|$)', re.S)


def _unquote(v: bytes) -> bytes:
    v = v.strip()
    if len(v) >= 2 and v[:1] == b'"' and v[-1:] == b'"':
        return re.sub(rb"\\(.)", rb"\1", v[1:-1])
    return v


def parse_params(raw: bytes) -> Params:
    """`type/subtype; a=b; c*=utf-8''%E3...; d*0*=...; d*1*=...` per RFC 2045 and RFC 2231."""
    head, _, rest = raw.partition(b";")
    p = Params(head.decode("ascii", "replace").strip().lower())
    seen: dict[str, int] = {}
    simple: dict[str, bytes] = {}
    extended: dict[str, bytes] = {}
    parts: dict[str, dict[int, tuple[bool, bytes]]] = {}
    for m in _TOKEN.finditer(rest):
        key = m.group(1).decode("ascii", "replace").lower()
        val = _unquote(m.group(2))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            p.conflicts.append(key)
        mm = re.fullmatch(r"([^*]+)\*(\d+)(\*?)", key)
        if mm:
            parts.setdefault(mm.group(1), {})[int(mm.group(2))] = (bool(mm.group(3)), val)
        elif key.endswith("*"):
            extended[key[:-1]] = val
        else:
            simple[key] = val
    for name, segs in parts.items():
        if name in extended or sorted(segs) != list(range(len(segs))):
            p.conflicts.append(name)  # continuations with gaps, or both forms: readers differ
        joined = b""
        charset = None
        for i in sorted(segs):
            enc, val = segs[i]
            if enc:
                if i == 0:
                    charset, _, val = _split_2231(val)
                joined += unquote_to_bytes(val)
            else:
                joined += val
        if charset is not None:
            d = decode(joined, charset)
        elif any(segs[i][0] for i in segs):
            d = decode_8bit(joined)
        else:
            d = _plain_value(joined)
        p.defects += d.defects
        p.params[name] = d.text
        p.raw_names.setdefault(name, []).append(d.text)
    for name, val in extended.items():
        if name in parts:
            continue
        charset, _, data = _split_2231(val)
        d = decode(unquote_to_bytes(data), charset or "utf-8")
        p.defects += d.defects
        p.params[name] = d.text
        p.raw_names.setdefault(name, []).append(d.text)
    for name, val in simple.items():
        d = _plain_value(val)
        p.defects += d.defects
        p.raw_names.setdefault(name, []).append(d.text)
        if name not in p.params:
            p.params[name] = d.text
        elif name == "boundary" and p.params[name] != d.text:
            p.conflicts.append(name)
    return p


def _split_2231(val: bytes) -> tuple[str | None, str, bytes]:
    bits = val.split(b"'", 2)
    if len(bits) != 3:
        return None, "", val
    return bits[0].decode("ascii", "replace") or None, bits[1].decode("ascii", "replace"), bits[2]


def _plain_value(val: bytes) -> Decoded:
    """A parameter value without RFC 2231: encoded-words inside the quotes (Outlook, Gmail) or 8-bit bytes."""
    if b"=?" in val:
        t = decode_words(val)
        return Decoded(t.value, "rfc2047", t.defects)
    return decode_8bit(val)


# ------------------------------------------------------------------ addresses

@dataclass
class Address:
    name: str
    addr: str  # ASCII addr-spec, or "" when unusable

    def display(self) -> str:
        if self.name and self.addr:
            return f"{self.name} <{self.addr}>"
        return self.addr or self.name


_ADDR_SPEC = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$")


def _split_top(s: str, sep: str) -> list[str]:
    """Split at `sep` outside quotes, angle brackets, parentheses."""
    out, cur, depth, quote_on, esc = [], [], 0, False, False
    for c in s:
        if esc:
            cur.append(c)
            esc = False
            continue
        if c == "\\":
            esc = True
            cur.append(c)
            continue
        if c == '"':
            quote_on = not quote_on
        elif not quote_on and c in "(<":
            depth += 1
        elif not quote_on and c in ")>" and depth:
            depth -= 1
        if c == sep and not quote_on and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur))
    return out


def ascii_addr(addr: str) -> str:
    """An addr-spec we can write: ASCII local part, IDNA domain; '' when not possible."""
    addr = addr.strip().strip("<>").strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        return ""
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return ""
    out = f"{local}@{domain.lower()}"
    return out if _ADDR_SPEC.match(out) and len(out) <= 254 else ""


def parse_addresses(value: str) -> list[Address]:
    """Addresses of a decoded From/To/Cc value (groups flattened, comments dropped)."""
    out: list[Address] = []
    for item in _split_top(value, ","):
        item = item.strip()
        # Groups ("部署: a@b.jp, c@d.jp;") are flattened: the group name and the closing ";" go.
        head, colon, rest = item.partition(":")
        if colon and '"' not in head and "<" not in head and "@" not in head:
            item = rest.strip()
        item = item.rstrip(";").strip()
        if not item:
            continue
        m = re.match(r'^(.*)<([^<>]*)>\s*(\(.*\))?\s*$', item, re.S)
        if m:
            name, spec = m.group(1).strip(), m.group(2)
        else:
            spec = re.sub(r"\([^()]*\)", "", item).strip()
            cm = re.search(r"\(([^()]*)\)", item)
            name = cm.group(1).strip() if cm else ""
        name = re.sub(r'\\(.)', r"\1", name.strip().strip('"')).strip()
        out.append(Address(name, ascii_addr(spec)))
    return out


# ------------------------------------------------------------------ file names

def rule_name(name: str) -> str:
    """The name rules are matched on: NFC, without bidi and other format controls, without trailing
    dots and spaces (Windows drops them: 'a.exe. ' is 'a.exe')."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if c not in BIDI_CONTROLS and unicodedata.category(c) not in ("Cc", "Cf"))
    return name.rstrip(" .\u3000")


# ------------------------------------------------------------------ writing

def _encode_words(text: str, room: int) -> list[str]:
    """UTF-8 B encoded-words of at most 75 characters, never splitting a character."""
    words, cur = [], ""
    for ch in text:
        cand = cur + ch
        if len(cand.encode("utf-8")) > 39 and cur:  # 39 bytes -> 52 base64 characters + 12 of framing
            words.append(cur)
            cand = ch
        cur = cand
    if cur:
        words.append(cur)
    return ["=?UTF-8?B?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words]


def _needs_encoding(text: str) -> bool:
    """Encoded-words also for a word too long to fold (they split anywhere)."""
    return not text.isascii() or "=?" in text or any(ord(c) < 32 or ord(c) == 127 for c in text) \
        or any(len(w) > 70 for w in text.split(" "))


def fold(name: str, tokens: list[str]) -> str:
    """`name: tok tok ...` folded at 76 columns between tokens (CRLF + space); ASCII only."""
    lines = [f"{name}:"]
    for tok in tokens:
        if len(lines[-1]) + 1 + len(tok) > 76 and lines[-1] != f"{name}:":
            lines.append(" " + tok)
        else:
            lines[-1] += " " + tok
    return "\r\n".join(lines)


def unstructured(name: str, text: str) -> str:
    """A free-text field (Subject): encoded-words when not plain ASCII, else folded at spaces."""
    text = clean_value(text).value
    if not text:
        return f"{name}: "
    if _needs_encoding(text):
        return fold(name, _encode_words(text, 75))
    return fold(name, text.split(" "))


def phrase(text: str) -> str:
    """A display name: an encoded-word when needed, else a quoted string when it has specials."""
    text = clean_value(text).value
    if not text:
        return ""
    if _needs_encoding(text):
        return " ".join(_encode_words(text, 75))
    if re.search(r'[()<>\[\]:;@\\,."]', text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def address_field(name: str, addrs: list[Address]) -> str | None:
    tokens: list[str] = []
    usable = [a for a in addrs if a.addr]
    for i, a in enumerate(usable):
        sep = "," if i < len(usable) - 1 else ""
        ph = phrase(a.name)
        if ph:
            tokens.extend(ph.split(" "))
            tokens.append(f"<{a.addr}>{sep}")
        else:
            tokens.append(f"{a.addr}{sep}")
    return fold(name, tokens) if tokens else None


def param_value(key: str, value: str) -> list[str]:
    """A parameter for writing: plain when it is a safe token/quoted ASCII string, otherwise RFC 2231
    UTF-8 (split into key*0*, key*1* ... when long)."""
    value = clean_value(value).value
    if value.isascii() and not re.search(r'[\\"\x00-\x1f\x7f]', value) and len(value) < 60:
        return [f'{key}="{value}"']
    chunks, cur = [], ""
    for ch in value:  # whole characters per segment: some readers decode each segment on its own
        e = quote(ch.encode("utf-8"), safe="!#$&+-.^_`|~")
        if cur and len(cur) + len(e) > 60:
            chunks.append(cur)
            cur = ""
        cur += e
    chunks.append(cur)
    if len(chunks) == 1 and len(chunks[0]) + len(key) < 70:
        return [f"{key}*=UTF-8''{chunks[0]}"]
    return [f"{key}*{n}*={'UTF-8' + chr(39) * 2 if n == 0 else ''}{c}" for n, c in enumerate(chunks)]


def encoded_name(value: str) -> str:
    """A name as one RFC 2047 quoted string: the fallback Outlook reads in name= and filename=."""
    value = clean_value(value).value
    if value.isascii() and not re.search(r'[\\"]', value):
        return f'"{value}"'
    return '"' + " ".join(_encode_words(value, 75)) + '"'
