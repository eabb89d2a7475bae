"""Structure-aware mutations of sample files, reproducible from a seed.

Each mutator takes the bytes and a `random.Random` and returns the new bytes and a short description of
what it did (the description goes into a saved regression case). `mutate` picks the mutators that fit
the file: byte-level damage for everything; token damage for PDF; XML games inside the parts of an
Office or ODF package; disagreements between ZIP local headers and the central directory.
"""
from __future__ import annotations

import io
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable

Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]


# ---------------------------------------------------------------- bytes

def flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if not data:
        return b"\x00", "flip: empty -> NUL"
    buf = bytearray(data)
    n = rng.randint(1, 6)
    where = []
    for _ in range(n):
        i = rng.randrange(len(buf))
        buf[i] ^= rng.randint(1, 255)
        where.append(i)
    return bytes(buf), f"flip {n} bytes at {where}"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if len(data) < 2:
        return data, "truncate: too short"
    at = rng.randrange(1, len(data))
    return data[:at], f"truncate at {at} of {len(data)}"


def duplicate_span(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if not data:
        return data, "duplicate: empty"
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 4096))
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[a:b] + data[at:], f"duplicate [{a}:{b}] at {at}"


def insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data) + 1)
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return data[:at] + blob + data[at:], f"insert {blob.hex()} at {at}"


BYTES: list[Mutator] = [flip, truncate, duplicate_span, insert_bytes]


# ---------------------------------------------------------------- PDF tokens

_PDF_DELIMS = (b"<<", b">>", b"[", b"]", b"(", b")", b"/", b"endobj", b"stream", b"endstream")
_PDF_NAME = re.compile(rb"/[A-Za-z][A-Za-z0-9#]*")
_PDF_LENGTH = re.compile(rb"/Length\s+(\d+)")
_PDF_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])")


def _pick(rng: random.Random, matches: list) -> re.Match | None:
    return rng.choice(matches) if matches else None


def pdf_delimiter(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    tok = rng.choice(_PDF_DELIMS)
    spots = [m.start() for m in re.finditer(re.escape(tok), data)]
    if not spots:
        return flip(data, rng)
    at = rng.choice(spots)
    how = rng.choice(["drop", "double", "damage"])
    if how == "drop":
        return data[:at] + data[at + len(tok):], f"pdf: drop {tok.decode()} at {at}"
    if how == "double":
        return data[:at] + tok + data[at:], f"pdf: double {tok.decode()} at {at}"
    repl = bytes([tok[0] ^ rng.randint(1, 255)]) + tok[1:]
    return data[:at] + repl + data[at + len(tok):], f"pdf: damage {tok.decode()} at {at} -> {repl!r}"


def pdf_name(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = _pick(rng, list(_PDF_NAME.finditer(data)))
    if m is None:
        return flip(data, rng)
    name = m.group()
    how = rng.choice(["hex", "case", "damage", "split"])
    if how == "hex":  # /JavaScript -> /J#61vaScript: the same name to a reader
        i = rng.randrange(1, len(name))
        new = name[:i] + b"#%02x" % name[i] + name[i + 1:] if name[i:i + 1] != b"#" else name
    elif how == "case":
        new = name.swapcase()
    elif how == "damage":
        i = rng.randrange(1, len(name))
        new = name[:i] + bytes([rng.randrange(33, 127)]) + name[i + 1:]
    else:
        i = rng.randrange(1, len(name))
        new = name[:i] + b" " + name[i:]
    return data[:m.start()] + new + data[m.end():], f"pdf: name {name.decode('latin-1')} -> {new.decode('latin-1')} ({how})"


def pdf_length(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = _pick(rng, list(_PDF_LENGTH.finditer(data)))
    if m is None:
        return flip(data, rng)
    n = int(m.group(1))
    new = max(0, n + rng.choice([-100, -10, -1, 1, 10, 100, 10**6]))
    return data[:m.start(1)] + str(new).encode() + data[m.end(1):], f"pdf: /Length {n} -> {new}"


def pdf_xref(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    m = _pick(rng, list(_PDF_XREF_ENTRY.finditer(data)))
    if m is None:
        return pdf_delimiter(data, rng)
    off = int(m.group(1))
    how = rng.choice(["offset", "free", "generation"])
    if how == "offset":
        new = b"%010d %s %s" % (max(0, off + rng.randint(-64, 64)), m.group(2), m.group(3))
    elif how == "free":
        new = b"%s %s %s" % (m.group(1), m.group(2), b"f" if m.group(3) == b"n" else b"n")
    else:
        new = b"%s %05d %s" % (m.group(1), rng.randint(1, 65535), m.group(3))
    return data[:m.start()] + new + data[m.end():], f"pdf: xref {m.group().decode()} -> {new.decode()}"


PDF: list[Mutator] = [pdf_delimiter, pdf_name, pdf_length, pdf_xref]


# ---------------------------------------------------------------- XML inside Office and ODF packages

_TAG_END = re.compile(rb"(?<=[\"'A-Za-z0-9])(/?>)")
_BETWEEN = re.compile(rb">(?=<[A-Za-z])")
_ATTR_VALUE = re.compile(rb"=\"([^\"<&]{1,200})\"")
_TEXT = re.compile(rb">([^<&]{1,200})<")
_DECL = re.compile(rb"xmlns:([A-Za-z][\w.\-]*)=\"([^\"]+)\"")
MC = b"http://schemas.openxmlformats.org/markup-compatibility/2006"


def _charref(chunk: bytes, rng: random.Random) -> bytes:
    text = chunk.decode("utf-8", "replace")
    if not text:
        return chunk
    i = rng.randrange(len(text))
    ref = f"&#x{ord(text[i]):x};" if rng.random() < 0.5 else f"&#{ord(text[i])};"
    return (text[:i] + ref + text[i + 1:]).encode("utf-8")


def xml_whitespace(x: bytes, rng: random.Random) -> tuple[bytes, str]:
    spots = [m.start() for m in _TAG_END.finditer(x)]
    if not spots:
        return x, "xml: no tag"
    at = rng.choice(spots)
    ws = rng.choice([b" ", b"\t", b"\r\n", b"\n  "])
    return x[:at] + ws + x[at:], f"xml: whitespace {ws!r} before tag end at {at}"


def xml_comment(x: bytes, rng: random.Random) -> tuple[bytes, str]:
    spots = [m.start() + 1 for m in _BETWEEN.finditer(x)]
    if not spots:
        return x, "xml: nowhere to comment"
    at = rng.choice(spots)
    c = rng.choice([b"<!-- -->", b"<!--x-->", b"<?pi data?>", b"<![CDATA[]]>"])
    return x[:at] + c + x[at:], f"xml: insert {c.decode()} at {at}"


def xml_charref(x: bytes, rng: random.Random) -> tuple[bytes, str]:
    ms = list(_ATTR_VALUE.finditer(x)) + list(_TEXT.finditer(x))
    m = _pick(rng, ms)
    if m is None:
        return x, "xml: no value"
    new = _charref(m.group(1), rng)
    return x[:m.start(1)] + new + x[m.end(1):], f"xml: character reference in {m.group(1)[:40]!r}"


def xml_namespace(x: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Namespace games: a second prefix for a known URI, a known prefix rebound to a foreign URI, a URI
    in another case, a default namespace, an undeclaration."""
    decls = list(_DECL.finditer(x))
    m = _pick(rng, decls)
    root = re.search(rb"<([A-Za-z][\w.\-]*:)?[A-Za-z][\w.\-]*[\s>]", x[x.find(b"?>") + 2 if x.startswith(b"<?") else 0:])
    how = rng.choice(["alias", "rebind", "case", "foreign-el", "undeclare"])
    if m is None or root is None:
        return x, "xml: no namespace declaration"
    prefix, uri = m.group(1), m.group(2)
    if how == "alias":  # q: bound to the same URI, used for the first element of that prefix
        first = re.search(rb"<" + re.escape(prefix) + rb":([A-Za-z][\w.\-]*)", x[m.end():])
        if first is None:
            return x, "xml: prefix unused"
        s = m.end() + first.start()
        name = first.group(1)
        end = x.find(b"</" + prefix + b":" + name + b">", s)
        new = x[:s] + b"<zq:" + name + b' xmlns:zq="' + uri + b'"' + x[s + len(prefix) + len(name) + 2:]
        if end > 0:
            end += len(new) - len(x)
            new = new[:end] + b"</zq:" + name + b">" + new[end + len(prefix) + len(name) + 3:]
        return new, f"xml: alias prefix zq for {uri.decode()}"
    if how == "rebind":
        i = m.start(2)
        return x[:i] + b"urn:evil:" + x[i:], f"xml: rebind {prefix.decode()} to urn:evil:{uri.decode()}"
    if how == "case":
        return x[:m.start(2)] + uri.swapcase() + x[m.end(2):], f"xml: {prefix.decode()} URI in other case"
    spots = [mm.start() + 1 for mm in _BETWEEN.finditer(x)]
    if not spots:
        return x, "xml: nowhere"
    at = rng.choice(spots)
    if how == "foreign-el":
        el = rng.choice([b'<e:script xmlns:e="urn:evil">calc.exe</e:script>', b"<script>alert(1)</script>",
                         b'<mc:AlternateContent xmlns:mc="' + MC + b'"><mc:Choice Requires="e" xmlns:e="urn:evil">'
                         b'<e:x/></mc:Choice><mc:Fallback/></mc:AlternateContent>'])
        return x[:at] + el + x[at:], f"xml: insert {el[:40]!r} at {at}"
    return x[:at] + b'<zz xmlns="">plain</zz>' + x[at:], f"xml: no-namespace element at {at}"


XML: list[Mutator] = [xml_whitespace, xml_comment, xml_charref, xml_namespace]


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(i, z.read(i)) for i in z.infolist()]
    except Exception:  # a damaged seed: byte mutations only
        return None


def _rezip(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, body in members:
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = info.compress_type if info.compress_type in (0, 8) else 8
            z.writestr(zi, body)
    return buf.getvalue()


def xml_in_package(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    members = _members(data)
    if not members:
        return flip(data, rng)
    xmls = [k for k, (i, b) in enumerate(members)
            if i.filename.endswith((".xml", ".rels", ".vml", ".rdf")) and b.lstrip()[:1] == b"<"]
    if not xmls:
        return flip(data, rng)
    k = rng.choice(xmls)
    info, body = members[k]
    new, what = rng.choice(XML)(body, rng)
    members[k] = (info, new)
    return _rezip(members), f"{info.filename}: {what}"


# ---------------------------------------------------------------- ZIP structure

def zip_structure(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Local headers and the central directory disagree (name, method, sizes, CRC, offsets), entries are
    duplicated, or the end record is tampered with."""
    eocd = data.rfind(b"PK\x05\x06")
    locs = [m.start() for m in re.finditer(rb"PK\x03\x04", data)]
    cds = [m.start() for m in re.finditer(rb"PK\x01\x02", data)]
    if eocd < 0 or not locs or not cds:
        return flip(data, rng)
    buf = bytearray(data)
    how = rng.choice(["local-name", "local-method", "cd-size", "cd-crc", "cd-offset", "dup-entry",
                      "eocd-count", "eocd-offset", "prefix", "second-eocd"])
    if how == "local-name":
        at = rng.choice(locs)
        n = struct.unpack_from("<H", buf, at + 26)[0]
        if n:
            i = at + 30 + rng.randrange(n)
            buf[i] = ord(rng.choice("aAzZ_./"))
    elif how == "local-method":
        at = rng.choice(locs)
        struct.pack_into("<H", buf, at + 8, rng.choice([0, 8, 12, 14, 99]))
    elif how == "cd-size":
        at = rng.choice(cds)
        off = rng.choice([20, 24])
        v = struct.unpack_from("<I", buf, at + off)[0]
        struct.pack_into("<I", buf, at + off, max(0, v + rng.choice([-7, -1, 1, 1000, 2**20])) & 0xFFFFFFFF)
    elif how == "cd-crc":
        at = rng.choice(cds)
        struct.pack_into("<I", buf, at + 16, rng.getrandbits(32))
    elif how == "cd-offset":
        at = rng.choice(cds)
        struct.pack_into("<I", buf, at + 42, rng.choice(locs))
    elif how == "dup-entry":
        at = rng.choice(cds)
        n, m_, k = struct.unpack_from("<HHH", buf, at + 28)
        entry = bytes(buf[at:at + 46 + n + m_ + k])
        cd_start = struct.unpack_from("<I", buf, eocd + 16)[0]
        cd_size = struct.unpack_from("<I", buf, eocd + 12)[0]
        count = struct.unpack_from("<H", buf, eocd + 10)[0]
        ins = cd_start + cd_size
        buf[ins:ins] = entry
        eocd += len(entry)
        struct.pack_into("<HHI", buf, eocd + 8, count + 1, count + 1, cd_size + len(entry))
    elif how == "eocd-count":
        struct.pack_into("<HH", buf, eocd + 8, *([rng.randint(0, 70)] * 2))
    elif how == "eocd-offset":
        v = struct.unpack_from("<I", buf, eocd + 16)[0]
        struct.pack_into("<I", buf, eocd + 16, max(0, v + rng.choice([-46, -1, 1, 30])))
    elif how == "prefix":
        blob = rng.choice([b"MZ" + b"\x00" * 62, b"%PDF-1.7\n", b"GIF89a" + b"\x00" * 10])
        return blob + data, f"zip: {blob[:8]!r} before the archive"
    else:
        return data + data[eocd:], "zip: a second end record"
    return bytes(buf), f"zip: {how}"


def zip_member_swap(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A member's stored bytes replaced by another's (same CRC in the central directory or not)."""
    members = _members(data)
    if not members or len(members) < 2:
        return zip_structure(data, rng)
    a, b = rng.sample(range(len(members)), 2)
    ia, ba = members[a]
    members[a] = (ia, members[b][1])
    out = _rezip(members)
    if rng.random() < 0.5:  # keep the old CRC: the central directory now disagrees with the data
        crc = zlib.crc32(ba) & 0xFFFFFFFF
        pos = out.find(b"PK\x01\x02")
        while pos >= 0:
            n = struct.unpack_from("<H", out, pos + 28)[0]
            if out[pos + 46:pos + 46 + n] == ia.filename.encode():
                out = out[:pos + 16] + struct.pack("<I", crc) + out[pos + 20:]
                break
            pos = out.find(b"PK\x01\x02", pos + 4)
    return out, f"zip: {ia.filename} holds the bytes of {members[b][0].filename}"


ZIP: list[Mutator] = [zip_structure, zip_member_swap]


def kind_of(data: bytes) -> str:
    """Which mutators fit: pdf, package (OOXML/ODF), zip, xml (SVG/HTML/XML text) or bytes."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "package" if (b"[Content_Types].xml" in data or b"mimetypeapplication/vnd.oasis" in data) else "zip"
    if head.lstrip()[:1] == b"<":
        return "xml"
    return "bytes"


def mutate(data: bytes, rng: random.Random, rounds: int | None = None) -> tuple[bytes, list[str]]:
    """Apply 1-3 mutations that fit the file; returns the bytes and what was done, in order."""
    steps: list[str] = []
    for _ in range(rounds or rng.choice([1, 1, 1, 2, 3])):
        kind = kind_of(data)
        pool: list[Mutator] = list(BYTES)
        if kind == "pdf":
            pool += PDF * 3
        elif kind == "package":
            pool += [xml_in_package] * 8 + ZIP * 2
        elif kind == "zip":
            pool += ZIP * 3
        elif kind == "xml":
            pool += XML * 2
        fn = rng.choice(pool)
        try:
            data, what = fn(data, rng)
        except (struct.error, ValueError, IndexError, zipfile.BadZipFile, OverflowError) as exc:
            # A structure the mutator expected is too damaged already: plain byte damage instead.
            data, what = flip(data, rng)
            what = f"({fn.__name__} failed: {type(exc).__name__}) {what}"
            fn = flip
        steps.append(f"{fn.__name__}: {what}")
    return data, steps
