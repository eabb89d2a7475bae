"""OOXML package rebuild: read the zip, walk relationships, keep what the allow-lists accept,
disarm every XML part and write a clean new zip with consistent content types and relationships.
"""
from __future__ import annotations

import contextlib
import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from lxml import etree

from ...errors import Blocked, LimitExceeded, Malformed
from ...handler import Context
from ...model import Threat
from .._deflate import INFLATE_ERRORS, crc32, decompressobj, deflate_raw
from .._memo import Deflated
from .._xml import BAD_MEDIA_MAGIC, SAFE_OPTIONS
from . import mce
from . import parts as X
from . import vocab as V
from .const import (
    APP_CT,
    CHART_CT,
    COMPRESSED_MEDIA,
    CT_NS,
    CTRLPROP_CT,
    DENY_CT,
    KEEP_RELS,
    MACRO_MAIN,
    MAIN,
    META_RELS,
    OD,
    RELS_CT,
    RELS_NS,
    REMOVE_RELS,
    SHEET_CT,
    SILENT_RELS,
    SVG_CT,
    VML_CT,
    WORD_SETTINGS_CT,
    WORD_STORY_CT,
    WORD_WEBSETTINGS_CT,
    WORKBOOK_CT,
    XLSB_MAIN,
    XLSX_PKG_CT,
    P,
    ct_kind,
    in_document,
    is_web_url,
    norm_rel_type,
)

MAX_PARTS = 20000
# Reading only far enough to name the root element: lenient, as the full parse that follows is strict.
_PEEK_OPTIONS = dict(SAFE_OPTIONS, recover=True)
# A part up to this size is read whole to name its root, and its bytes are kept for the disarm step
# (decompressed once, not twice); at most _KEEP_TOTAL bytes are held at a time. Bigger parts, and any
# beyond the bound, are peeked at through a stream as before.
_KEEP_PART = 256 << 10
_KEEP_TOTAL = 16 << 20
_PEEK_CHUNKS = 65  # up to 1 MiB of prolog and start tag: a first chunk of 1 KiB, then 16 KiB ones
_PEEK_SPAN = 1024 + (_PEEK_CHUNKS - 1) * 16384
# The common shape of a part's beginning, read without a parser: an XML declaration of UTF-8 XML 1.0
# (or none), then the root start tag with ASCII names and plain double- or single-quoted ASCII values
# (no entity or character reference, no "<"). Anything else (a BOM, another encoding, a comment, a
# DOCTYPE, a processing instruction) does not match and goes to the parser.
_S = rb"[ \t\r\n]"
_NAME = rb"[A-Za-z_][A-Za-z0-9._-]{0,199}(?::[A-Za-z_][A-Za-z0-9._-]{0,199})?"
_VALUE = rb"\"[\x20\x21\x23-\x25\x27-\x3b\x3d-\x7e]{0,2000}\"|'[\x20-\x25\x28-\x3b\x3d-\x7e]{0,2000}'"
_DECL_QUICK = re.compile(
    rb"<\?xml" + _S + rb"+version" + _S + rb"*=" + _S + rb"*(?:\"1\.0\"|'1\.0')"
    rb"(?:" + _S + rb"+encoding" + _S + rb"*=" + _S + rb"*(?:\"(?:UTF|utf)-8\"|'(?:UTF|utf)-8'))?"
    rb"(?:" + _S + rb"+standalone" + _S + rb"*=" + _S + rb"*(?:\"(?:yes|no)\"|'(?:yes|no)'))?"
    + _S + rb"*\?>" + _S + rb"*")
_TAG_QUICK = re.compile(rb"<(" + _NAME + rb")((?:" + _S + rb"+" + _NAME + _S + rb"*=" + _S + rb"*(?:" + _VALUE
                        + rb"))*)" + _S + rb"*/?>")
_ATTR_QUICK = re.compile(rb"(" + _NAME + rb")" + _S + rb"*=" + _S + rb"*(?:\"([^\"]*)\"|'([^']*)')")


def root_name_quick(data: bytes) -> tuple[str, str] | None:
    """(namespace, local name) of the root element when `data` begins in the plain shape above and its
    start tag binds the element's prefix itself; None for anything else (the parser then decides). Where
    it answers, it answers what the lenient peek parser would: only documents it reads without error."""
    m = _DECL_QUICK.match(data)
    pos = m.end() if m is not None else 0
    t = _TAG_QUICK.match(data, pos)
    if t is None:
        return None
    prefix, _, local = t.group(1).decode("ascii").rpartition(":")
    if prefix in ("xml", "xmlns") or local == "xmlns" and not prefix:
        return None
    decl: dict[str, str] = {}
    attrs: list[tuple[str, str]] = []
    for a in _ATTR_QUICK.finditer(t.group(2)):
        ap, _, al = a.group(1).decode("ascii").rpartition(":")
        if ap == "xmlns" or (not ap and al == "xmlns"):
            key = al if ap else ""
            value = (a.group(2) if a.group(2) is not None else a.group(3)).decode("ascii")
            if key in decl or key in ("xml", "xmlns") or (ap and not value):
                return None  # redeclared, reserved or unbound (xmlns:p=""): the parser decides
            decl[key] = value
        else:
            attrs.append((ap, al))
    if len({al for _ap, al in attrs}) != len(attrs):
        return None  # perhaps one attribute twice (two prefixes bound to one namespace)
    if any(ap and ap != "xml" and ap not in decl for ap, _al in attrs):
        return None  # a prefix bound further out or nowhere
    if prefix:
        uri = decl.get(prefix)
        if uri is None:
            return None  # bound further out, or not at all: the parser says
        return uri, local
    return decl.get("", ""), local


# Printable ASCII but for the characters XML escapes in an attribute value.
_PLAIN_VALUE = re.compile(r"[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\x7e]*\Z")
_RELS_HEAD = f"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<Relationships xmlns=\"{RELS_NS}\">"
_MALLOC_TUNED = False


def _tune_malloc() -> None:
    """Big XML trees free hundreds of thousands of small blocks; glibc then spends tens of ms
    consolidating its fast bins on the next large allocation. Turning fast bins off (tcache stays)
    removes that stall. glibc also hands the freed tree back to the kernel (trim) and serves every
    part-sized buffer with a fresh mmap, so each part is paid again in page faults (27,000 per
    100k-cell workbook, a third of its time): keep up to 128 MiB of free heap and take buffers up to
    32 MiB from the heap. The peak (RLIMIT_AS) is unchanged. Best effort, once per process, glibc only."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        # By soname: find_library would start ldconfig and gcc, which the sandbox refuses (the tuning
        # was never applied in a worker, and its first Office file paid three failed process starts).
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(1, 0)  # M_MXFAST = 1
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD = -1
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD = -3 (the largest glibc accepts on 64-bit)
    except (OSError, AttributeError, ValueError):  # not glibc
        pass


_SLIDE_CT = frozenset(f"{P}.{k}+xml" for k in ("slide", "slidelayout", "slidemaster", "notesslide",
                                                 "notesmaster", "handoutmaster"))
_PRES_CT = frozenset(f"{P}.{k}.main+xml" for k in ("presentation", "template", "slideshow"))
_DRAWING_CT = "application/vnd.openxmlformats-officedocument.drawing+xml"
_TABLE_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"
_EXT_LINK_PATHS = (OD + "externalLinkPath", "http://schemas.microsoft.com/office/2006/relationships/xlExternalLinkPath")


# What a relationship type says its target is: LibreOffice loads a header or a sheet by relationship
# whatever content type it declares, so a generic type must not spare the part its disarm rules.
_REL_ROLES = {OD + t: role for t, role in (
    ("header", "word_story"), ("footer", "word_story"), ("footnotes", "word_story"), ("endnotes", "word_story"),
    ("comments", "word_story"), ("glossaryDocument", "word_story"), ("worksheet", "sheet"), ("slide", "slide"),
    ("slideLayout", "slide"), ("slideMaster", "slide"), ("notesSlide", "slide"), ("vmlDrawing", "vml"),
    ("chart", "chart"), ("drawing", "drawing"), ("ctrlProp", "ctrlprop"), ("settings", "word_settings"),
    ("table", "table"))}


def role_of(ctl: str) -> str:
    """Which disarm function a part of this (lower-case) content type goes through; "" for none."""
    eff = MACRO_MAIN.get(ctl, ctl)
    if ctl == VML_CT:
        return "vml"
    if eff in WORD_STORY_CT:
        return "word_story"
    if eff in (WORD_SETTINGS_CT, WORD_WEBSETTINGS_CT):
        return "word_settings"
    if eff in WORKBOOK_CT:
        return "workbook"
    if eff in SHEET_CT:
        return "sheet"
    if eff == CTRLPROP_CT:
        return "ctrlprop"
    if eff == _DRAWING_CT:
        return "drawing"
    if eff == _TABLE_CT:
        return "table"
    if eff in CHART_CT:
        return "chart"
    if eff in _SLIDE_CT:
        return "slide"
    if eff in _PRES_CT:
        return "pres"
    if eff == APP_CT:
        return "app"
    return ""


@dataclass
class Rel:
    id: str
    type: str  # as written (strict or transitional)
    ntype: str  # normalised to the transitional namespace
    target: str
    external: bool


@dataclass
class Outcome:
    kind: str  # docx | xlsx | pptx
    mime: str
    extension: str


def _err_zip(msg: str) -> Malformed:
    return Malformed(f"the Office package is damaged or crafted: {msg}",
                     f"Office ファイルの構造が壊れているか不正に加工されています（{msg}）", threat_id="file.malformed")


# What ZipOut deflated for the file at hand (forgotten with it): the verify step reads it back.
_DEFLATED = Deflated()


class ZipOut:
    """A minimal ZIP writer: no comments, no extra fields, no data descriptors, fixed timestamps."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.entries: list[tuple[bytes, int, int, int, int, int, int]] = []
        self.names: set[str] = set()

    def add(self, name: str, data: bytes, compress: bool) -> None:
        crc = crc32(data)
        if compress and data:
            packed = deflate_raw(data)
            if len(packed) < len(data):
                self.add_raw(name, 8, crc, len(data), packed)
                _DEFLATED.remember(packed, data)
                return
        self.add_raw(name, 0, crc, len(data), data)

    def add_raw(self, name: str, method: int, crc: int, size: int, packed: bytes) -> None:
        key = name.lower()
        if key in self.names:
            raise _err_zip(f"duplicate part {name}")
        self.names.add(key)
        nb = name.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        offset = self.fp.tell()
        if offset + len(packed) > 0xFFFF0000 or len(self.entries) >= 0xFFFF:
            raise LimitExceeded("the rebuilt package is too large", "再構築後のファイルが大きすぎます")
        self.fp.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc,
                                  len(packed), size, len(nb), 0))
        self.fp.write(nb)
        self.fp.write(packed)
        self.entries.append((nb, flags, method, crc, len(packed), size, offset))

    def close(self) -> None:
        start = self.fp.tell()
        for nb, flags, method, crc, csize, size, offset in self.entries:
            self.fp.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc,
                                      csize, size, len(nb), 0, 0, 0, 0, 0, offset))
            self.fp.write(nb)
        end = self.fp.tell()
        n = len(self.entries)
        self.fp.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, end - start, start, 0))


class Rebuild:
    """One package. `write=False` only collects findings (inspect)."""

    def __init__(self, ctx: Context, depth: int = 0, write: bool = True, prefix: str = "",
                 prescan: bool = True) -> None:
        _tune_malloc()
        self.ctx = ctx
        # Inspect only: skip parsing parts that a byte scan proves quiet (X.quiet). The test suite
        # turns it off to show that the full walk finds nothing more.
        self.prescan = prescan and not write
        self.skipped: list[str] = []
        self._rel_role: dict[str, str] = {}  # part -> role its relationship type implies (_REL_ROLES)
        self.opts: dict[str, Any] = {"metadata": "keep", "hyperlinks": "web", **(ctx.options or {})}
        self.depth = depth
        self.write = write
        self.prefix = prefix
        self.threats: list[Threat] = []
        self._rels_cache: dict[str, list[Rel]] = {}
        self._resolved: dict[tuple[str, str], str | None] = {}
        self._nested: dict[str, bytes] = {}
        self._read_total = 0
        self._vocabs: dict[str, frozenset[str]] = {}  # part -> namespaces it may use (vocab.py)
        self.foreign = mce.Foreign()  # markup dropped for being outside its part's vocabulary
        self._app_minimal: set[str] = set()  # app.xml parts reduced to Application and AppVersion
        self._main = ""
        # Parts read whole by the root-name peek, kept until the disarm step reads them (_KEEP_PART).
        self._kept_reads: dict[str, tuple[bytes, tuple[int, bytes] | None]] = {}
        self._held = 0

    # ------------------------------------------------------------------ findings
    def report(self, tid: str, location: str, detail: str = "", action: str = "removed") -> None:
        self.threats.append(Threat(tid, self.prefix + location, action, detail))

    # ------------------------------------------------------------------ reading
    def _open(self, src: Path | BinaryIO) -> None:
        try:
            self.zf = zipfile.ZipFile(src)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise _err_zip(f"not a readable ZIP ({type(exc).__name__})") from None
        infos = self.zf.infolist()
        if len(infos) > MAX_PARTS:
            raise LimitExceeded(f"the package has more than {MAX_PARTS} parts",
                                f"パッケージの部品数が上限 ({MAX_PARTS}) を超えています", threat_id="file.limit")
        self.lookup: dict[str, zipfile.ZipInfo] = {}
        self.order: list[str] = []
        total = 0
        for info in infos:
            name = info.filename
            if name.endswith("/"):
                continue
            if (name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ".." in name.split("/")
                    or "" in name.split("/") or ":" in name.split("/")[0]):
                raise _err_zip(f"illegal part name {name[:80]!r}")
            if info.flag_bits & 0x1:
                raise _err_zip("encrypted ZIP member")
            key = name.lower()
            if key in self.lookup:
                raise _err_zip(f"duplicate part name {name[:80]!r}")
            self.lookup[key] = info
            self.order.append(name)
            total += info.file_size
        limit = self.ctx.limits.archive_total_mb * 1024 * 1024
        if total > limit:
            raise LimitExceeded("the Office package expands beyond the size limit",
                                "Office ファイルの展開後サイズが上限を超えています", threat_id="archive.bomb")

    def read(self, name: str, xml: bool = True) -> bytes:
        return self._read(name, xml)[0]

    def _read(self, name: str, xml: bool) -> tuple[bytes, tuple[int, bytes] | None]:
        """The member's bytes, size- and CRC-checked, and, when its stored form is a clean copy of
        them (stored, or one complete deflate stream with nothing after it), (method, stored bytes)."""
        got = self._kept_reads.pop(name.lower(), None) if xml else None
        if got is not None:
            self._held -= len(got[0])
            data, clean = got
        else:
            data, clean = self._inflate(name, xml, self._stored(self.lookup[name.lower()]))
        lim = self.ctx.limits
        self._read_total += len(data)
        if self._read_total > lim.archive_total_mb * 1024 * 1024:
            raise LimitExceeded("the Office package expands beyond the size limit",
                                "Office ファイルの展開後サイズが上限を超えています", threat_id="archive.bomb")
        return data, clean

    def _inflate(self, name: str, xml: bool, stored: tuple[int, bytes] | None,
                 exact: bool = False) -> tuple[bytes, tuple[int, bytes] | None]:
        """_read without the running total. `exact`: inflate with zlib itself, as zipfile does."""
        info = self.lookup[name.lower()]
        lim = self.ctx.limits
        cap = int((lim.max_xml_part_mb if xml else lim.max_stream_mb) * 1024 * 1024)
        if info.file_size > cap:
            raise LimitExceeded(f"part {name} is larger than the limit", f"部品 {name} が上限を超えています",
                                threat_id="file.limit")
        clean: tuple[int, bytes] | None = None
        if stored is None:  # anything unusual: zipfile's own checks and errors
            try:
                with self.zf.open(info) as fh:
                    data = fh.read(cap + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
                raise _err_zip(f"unreadable part {name} ({type(exc).__name__})") from None
        else:
            # One inflate straight from the stored bytes: no ZipExtFile per part, and media can be
            # copied from the same bytes without reading them twice.
            method, packed = stored
            known = _DEFLATED.get(packed) if method == zipfile.ZIP_DEFLATED else None
            if known is not None:  # our own deflate of these bytes: a complete stream, nothing after it
                data, complete, clean = known, True, stored
            elif method == zipfile.ZIP_DEFLATED:
                # Media keeps these very bytes: zlib-ng, which refuses what zlib refuses. XML is
                # deflated again, so the faster inflater for its ratio may read it.
                d = zlib.decompressobj(-15) if exact else \
                    decompressobj(-15, info.file_size / max(1, len(packed)) if xml else None)
                try:
                    data = d.decompress(packed, cap + 1)
                except INFLATE_ERRORS:
                    raise _err_zip(f"unreadable part {name} (zlib error)") from None
                complete = d.eof or len(data) > cap
                if d.eof and not d.unused_data:
                    clean = stored
            else:
                data, complete, clean = packed, True, stored
            if len(data) <= cap and (not complete or len(data) != info.file_size
                                     or crc32(data) != info.CRC):
                raise _err_zip(f"unreadable part {name} (bad CRC or size)")
        if len(data) > cap:
            raise LimitExceeded(f"part {name} is larger than the limit", f"部品 {name} が上限を超えています",
                                threat_id="file.limit")
        return data, clean

    def _stored(self, info: zipfile.ZipInfo, strict: bool = False) -> tuple[int, bytes] | None:
        """(method, bytes as stored) for a stored or deflated member whose local header agrees with the
        central directory; None leaves the member to zipfile. `strict`: only when zipfile would open the
        member too (its name in the local header decodes without error, as zipfile decodes it)."""
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x61:
            return None
        if info.compress_size > info.file_size + (info.file_size >> 6) + 1024:
            return None  # more stored bytes than any deflate of the data needs: let zipfile stream it
        fp = self.zf.fp
        if fp is None:
            return None
        fp.seek(info.header_offset)
        head = fp.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            return None
        flags, method = struct.unpack("<HH", head[6:10])
        nlen, elen = struct.unpack("<HH", head[26:30])
        if method != info.compress_type or flags & 0x61:
            return None
        fname = fp.read(nlen)
        try:
            if fname.decode("utf-8" if flags & 0x800 else "cp437", "strict" if strict else "replace") \
                    != info.orig_filename:
                return None
        except UnicodeDecodeError:
            return None
        fp.seek(elen, 1)
        data = fp.read(info.compress_size)
        if len(data) != info.compress_size:
            return None
        return method, data

    def head(self, name: str, n: int = 16) -> bytes:
        try:
            with self.zf.open(self.lookup[name.lower()]) as fh:
                return fh.read(n)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise _err_zip(f"unreadable part {name} ({type(exc).__name__})") from None

    def parse(self, name: str, vml: bool = False) -> etree._Element:
        try:
            return X.parse(self.read(name), vml=vml)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise _err_zip(f"part {name} is not well-formed XML ({str(exc)[:80]})") from None

    def exists(self, name: str) -> bool:
        return name.lower() in self.lookup

    def real(self, name: str) -> str:
        return self.lookup[name.lower()].filename

    # ------------------------------------------------------------------ content types and relationships
    def _content_types(self) -> None:
        if not self.exists("[Content_Types].xml"):
            raise _err_zip("no [Content_Types].xml")
        root = self.parse("[Content_Types].xml")
        self.defaults: dict[str, str] = {}
        self.overrides: dict[str, str] = {}
        for el in root:
            if el.tag == f"{{{CT_NS}}}Default":
                self.defaults[(el.get("Extension") or "").lower()] = (el.get("ContentType") or "").strip()
            elif el.tag == f"{{{CT_NS}}}Override":
                self.overrides[unquote(el.get("PartName") or "").lstrip("/").lower()] = \
                    (el.get("ContentType") or "").strip()

    def ct_of(self, name: str) -> str:
        ct = self.overrides.get(name.lower())
        if ct is None:
            ext = name.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(name) else ""
            ct = self.defaults.get(ext, "")
        return ct

    @staticmethod
    def rels_name(part: str) -> str:
        if not part:
            return "_rels/.rels"
        d, b = posixpath.split(part)
        return posixpath.join(d, "_rels", b + ".rels")

    def rels(self, part: str) -> list[Rel]:
        if part in self._rels_cache:
            return self._rels_cache[part]
        name = self.rels_name(part)
        out: list[Rel] = []
        if self.exists(name):
            root = self.parse(name)
            seen: set[str] = set()
            for el in root:
                if el.tag != f"{{{RELS_NS}}}Relationship":
                    continue
                rid, rtype, target = el.get("Id") or "", el.get("Type") or "", el.get("Target") or ""
                if not rid or rid in seen:
                    raise _err_zip(f"duplicate or missing relationship id in {name}")
                seen.add(rid)
                out.append(Rel(rid, rtype, norm_rel_type(rtype), target,
                               (el.get("TargetMode") or "").lower() == "external"))
        self._rels_cache[part] = out
        return out

    def resolve(self, src: str, target: str) -> str | None:
        # Slides and sheets repeat the same few targets (layouts, themes): resolved once per folder.
        key = (posixpath.dirname(src), target)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(key[0], target)
        return self._resolved[key]

    def _resolve(self, folder: str, target: str) -> str | None:
        t = target.split("#", 1)[0].strip()
        if not t:
            return None
        for cand in (t, unquote(t)):
            path = cand[1:] if cand.startswith("/") else posixpath.join(folder, cand)
            path = posixpath.normpath(path)
            if path.startswith("../") or path in ("..", "."):
                return None
            if self.exists(path):
                return self.real(path)
        return None

    # ------------------------------------------------------------------ decisions
    def decide(self, src: str, src_ct: str, rel: Rel) -> str | None:
        """The target part name when this relationship is kept, "" for a kept external link, else None."""
        t = rel.ntype
        here = src or "_rels/.rels"
        if rel.external:
            if t == OD + "hyperlink":
                if in_document(rel.target) or self.opts["hyperlinks"] == "web" and is_web_url(rel.target):
                    return ""  # a web link, or a jump inside this file (how openpyxl writes one)
                self.report("ooxml.hyperlink", here, f"link to {rel.target[:100]}")
            elif t == OD + "attachedTemplate":
                self.report("ooxml.remote_template", here, f"template {rel.target[:100]}")
            elif t.startswith(_EXT_LINK_PATHS):
                self.report("ooxml.external_link", here, f"workbook {rel.target[:100]}")
            else:
                self.report("ooxml.external_relationship", here,
                            f"{t.rsplit('/', 1)[-1]} -> {rel.target[:100]}")
            return None
        target = self.resolve(src, rel.target)
        low = (target or "").lower()
        if target is not None and (low == "[content_types].xml" or low.endswith(".rels")):
            # The package's own bookkeeping is rebuilt, never carried over as a part.
            self.report("ooxml.unknown_part", target, "relationship to package metadata")
            return None
        if target is None:
            if t in REMOVE_RELS:  # pointing at nothing is still a declared macro/template/link
                self.report(REMOVE_RELS[t], here, f"{t.rsplit('/', 1)[-1]} -> {rel.target[:100]}")
            return None
        ct = self.ct_of(target)
        ctl = ct.lower()
        if t in META_RELS and self.opts["metadata"] == "drop":
            if t == OD + "extended-properties":
                # Kept with only the application's name and version: LibreOffice reads them to decide
                # whether to trust cached formula results, snap row heights and how to default chart labels.
                self._app_minimal.add(target)
            else:
                # Not active content: recorded as "reported" (as the PDF handler does) so it alone keeps "clean".
                self.report("ooxml.metadata", target, "document properties dropped by policy", action="reported")
                return None
        if t in SILENT_RELS:
            return None
        if t in REMOVE_RELS:
            tid = REMOVE_RELS[t]
            if t == OD + "externalLink" and self.exists(target):
                head = self.read(target)
                if b"ddeLink" in head:
                    tid = "ooxml.dde"
                elif b"oleLink" in head:
                    tid = "ooxml.ole_object"
            self.report(tid, target, t.rsplit("/", 1)[-1])
            return None
        if t == OD + "package":
            if self.depth == 0 and src_ct.lower() in CHART_CT and ctl == XLSX_PKG_CT:
                return target if self._nested_package(target) else None
            self.report("ooxml.ole_object", target, f"embedded package ({ct})")
            return None
        if t not in KEEP_RELS:
            self.report("ooxml.unknown_part", target, f"relationship type {rel.type[:100]}")
            return None
        if ctl in DENY_CT:
            self.report(DENY_CT[ctl], target, f"content type {ct}")
            return None
        if ctl == SVG_CT:
            return target  # an icon: rebuilt by the SVG sanitizer below (its PNG fallback stays too)
        kind = ct_kind(ctl)
        if not kind or kind == "package" or (t == OD + "hyperlink"):
            self.report("ooxml.unknown_part", target, f"content type {ct or 'none'}")
            return None
        if kind == "media":
            head = self.head(target)
            if head.startswith(BAD_MEDIA_MAGIC) or (ctl.startswith("image/") and head.lstrip()[:1] == b"<"):
                self.report("ooxml.unknown_part", target, f"{ct} part holds other content")
                return None
        elif target not in self._vocabs and not self._choose_vocabulary(src, t, target, ct, ctl):
            return None
        return target

    def _choose_vocabulary(self, src: str, t: str, target: str, ct: str, ctl: str) -> bool:
        """The namespaces `target` may use, from its content type (or, for a generic one, its relationship
        or the part pointing at it). A part no vocabulary fits is dropped; so is custom XML data of a kind
        Office does not show (anything but a bibliography or cover page properties)."""
        ns, local = self._root_name(target)
        if t == V.CUSTOM_XML_REL:
            if ns not in V.CUSTOM_XML_DATA:
                self.report("ooxml.custom_xml", target, f"custom XML data ({ns[:80] or 'no namespace'})",
                            action="reported")
                return False
            vocab = V.CUSTOM_XML_DATA
        else:
            vocab = V.vocabulary(ctl)
            if not vocab and ctl in V.GENERIC_XML:
                vocab = V.REL_VOCAB.get(t) or self._vocabs.get(src, frozenset())
        root_ok = ns in vocab or (not ns and ctl == VML_CT and local in V.VML_PLAIN)
        if root_ok and V.expected_root(ctl) not in (None, local):
            root_ok = False  # another part's markup under this content type (settings where numbering belongs)
        if not vocab or not root_ok:
            if target == self._main:
                raise _err_zip(f"the main part's root element {local[:40]!r} is not of its content type")
            self.report("ooxml.unknown_part", target, f"content type {ct or 'none'} with a root element "
                        f"{local[:40]!r} in {ns[:80] or 'no namespace'}")
            return False
        self._vocabs[target] = vocab
        return True

    def _root_name(self, name: str) -> tuple[str, str]:
        """(namespace, local name) of a part's root element, from the first bytes that hold it."""
        key = name.lower()
        got = self._kept_reads.get(key)
        info = self.lookup[key]
        if got is None and info.file_size <= _KEEP_PART and self._held + info.file_size <= _KEEP_TOTAL:
            # Read whole once, with zlib as zipfile would: where that succeeds, the stream below would
            # have yielded these very bytes, and the disarm step takes them instead of reading again.
            # Where it fails, the stream finds what it finds, and the disarm step's read fails as before.
            stored = self._stored(info, strict=True)
            if stored is not None:
                with contextlib.suppress(Malformed, LimitExceeded):
                    got = self._inflate(name, True, stored, exact=True)
                    self._kept_reads[key] = got
                    self._held += len(got[0])
        if got is not None:
            data = got[0]
            quick = root_name_quick(data[:_PEEK_SPAN])
            if quick is not None:
                return quick
            return self._peek(name, io.BytesIO(data).read)  # the same chunks as the stream
        try:
            with self.zf.open(info) as fh:
                return self._peek(name, fh.read)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise _err_zip(f"unreadable part {name} ({type(exc).__name__})") from None

    @staticmethod
    def _peek(name: str, read: Callable[[int], bytes]) -> tuple[str, str]:
        parser = etree.XMLPullParser(events=("start",), **_PEEK_OPTIONS)
        try:
            for i in range(_PEEK_CHUNKS):
                # A small first chunk: the parser reads all it is fed, and the root is near the top.
                chunk = read(16384 if i else 1024)
                if not chunk:
                    break
                parser.feed(chunk)
                for _ev, el in parser.read_events():
                    q = etree.QName(el)  # ValueError: a prefix the recovering parser could not bind
                    return q.namespace or "", q.localname
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise _err_zip(f"part {name} is not well-formed XML ({str(exc)[:80]})") from None
        return "", ""

    def _nested_package(self, target: str) -> bool:
        """Charts keep their data workbook, itself rebuilt; a failure drops it (the chart keeps its cache)."""
        # In memory: the workbook is already read whole, and spares four file operations per chart.
        src = io.BytesIO(self.read(target, xml=False))
        dst = io.BytesIO() if self.write else None
        sub = Rebuild(self.ctx, self.depth + 1, self.write, prefix=f"{self.prefix}{target}:",
                      prescan=self.prescan)
        try:
            out = sub.run(src, dst)
        except (Malformed, LimitExceeded, Blocked) as exc:
            self.report("ooxml.ole_object", target, f"chart data workbook dropped: {exc.en[:80]}")
            return False
        if out.kind != "xlsx" or out.extension != ".xlsx":
            self.report("ooxml.ole_object", target, "chart data is not a plain workbook")
            return False
        self.threats.extend(sub.threats)
        self.skipped.extend(sub.skipped)
        if dst is not None:
            self._nested[target] = dst.getvalue()
        return True

    # ------------------------------------------------------------------ the walk
    def run(self, src: Path | BinaryIO, dst: Path | BinaryIO | None) -> Outcome:
        self._open(src)
        try:
            return self._run(dst)
        finally:
            self.zf.close()

    def _run(self, dst: Path | BinaryIO | None) -> Outcome:
        self._content_types()
        pkg_rels = self.rels("")
        if not pkg_rels:
            raise _err_zip("no package relationships (_rels/.rels)")
        mains = [r for r in pkg_rels if r.ntype == OD + "officeDocument" and not r.external]
        main = self.resolve("", mains[0].target) if len(mains) == 1 else None
        if main is None:
            raise _err_zip("no single main document part")
        main_ct = self.ct_of(main).lower()
        if main_ct == XLSB_MAIN:
            raise Blocked("Excel binary workbooks (.xlsb) cannot be rebuilt safely; ask the sender to save the "
                          "file as .xlsx", "Excel バイナリ形式（.xlsb）は安全に再構築できません。送信者に .xlsx "
                          "形式で保存し直して送るよう依頼してください", threat_id="ooxml.xlsb")
        out_main_ct = MACRO_MAIN.get(main_ct, main_ct)
        if out_main_ct not in MAIN:
            raise _err_zip(f"unknown main part type {main_ct[:80]}")
        if main_ct in MACRO_MAIN:
            self.report("ooxml.macro_content_type", main, f"{main_ct} -> {out_main_ct}", action="converted")
        kind, mime, ext = MAIN[out_main_ct]
        self._main = main

        # Every part reachable in the original graph; the rest are unreferenced payloads.
        reachable: set[str] = set()
        todo = deque([""])
        while todo:
            part = todo.popleft()
            for rel in self.rels(part):
                if rel.external:
                    continue
                tgt = self.resolve(part, rel.target)
                if tgt is not None and tgt not in reachable:
                    reachable.add(tgt)
                    todo.append(tgt)
        stray = [n for n in self.order if n not in reachable and n.lower() != "[content_types].xml"
                 and not (posixpath.basename(posixpath.dirname(n)) == "_rels" and n.endswith(".rels"))]
        if stray:
            self.report("ooxml.unknown_part", "package", f"unreferenced parts: {', '.join(stray[:5])}"
                        + (f" and {len(stray) - 5} more" if len(stray) > 5 else ""))

        # Keep what the allow-lists accept, walking from the package relationships.
        kept: dict[str, str] = {}  # part -> content type as written
        kept_rels: dict[str, list[Rel]] = {}
        todo = deque([""])
        seen = {""}
        while todo:
            part = todo.popleft()
            part_ct = kept.get(part, "")
            keep_here: list[Rel] = []
            for rel in self.rels(part):
                self.ctx.check_time()
                tgt = self.decide(part, part_ct, rel)
                if tgt is None:
                    continue
                keep_here.append(rel)
                if tgt and tgt not in seen:
                    seen.add(tgt)
                    kept[tgt] = out_main_ct if tgt == main else self.ct_of(tgt)
                    if rel.ntype in _REL_ROLES:
                        self._rel_role.setdefault(tgt, _REL_ROLES[rel.ntype])
                    if tgt not in self._nested:
                        todo.append(tgt)
            kept_rels[part] = keep_here

        # Disarm every kept part.
        payload: dict[str, tuple[str, Any]] = {}
        for part, ct in kept.items():
            self.ctx.check_time()
            ids = {r.id for r in kept_rels.get(part, [])}
            ctl = ct.lower()
            kindp = ct_kind(ctl) if part != main else "xml"
            if part in self._nested:
                payload[part] = ("bytes", self._nested.get(part, b""))
            elif kindp in ("xml", "vml"):
                data = self.read(part)
                # Kept external relationships are web links: only hyperlink elements may use them.
                link_ids = {r.id for r in kept_rels.get(part, []) if r.external}
                vocab, plain = self._vocabs.get(part, frozenset()), V.VML_PLAIN if kindp == "vml" else frozenset()
                tree = V.always_parsed(vocab)
                if self.prescan and not link_ids and not tree and part not in self._app_minimal \
                        and X.quiet(data, self._role(part, ctl)) \
                        and mce.quiet(data, vocab, plain):
                    self.skipped.append(self.prefix + part)
                    continue
                # Every relationship kept: no reference can have lost its target here.
                complete = len(kept_rels.get(part, ())) == len(self.rels(part))
                if self.write and kindp == "xml" and complete and not link_ids and not tree \
                        and X.untouched(data, self._role(part, ctl)) and mce.quiet(data, vocab) \
                        and not X.has_dangling(data, ids):
                    # Nothing to disarm and already in re-serialised form: proven well-formed without
                    # building a tree, then written as it is (deflated by us).
                    try:
                        X.check_well_formed(data)
                    except ValueError as exc:
                        raise _err_zip(f"part {part} is not well-formed XML ({str(exc)[:80]})") from None
                    payload[part] = ("bytes", data)
                    continue
                try:
                    root = X.parse(data, vml=kindp == "vml")
                except (etree.XMLSyntaxError, ValueError) as exc:
                    raise _err_zip(f"part {part} is not well-formed XML ({str(exc)[:80]})") from None
                out = self._disarm(part, ctl, root, ids, data, complete, link_ids, vocab, plain)
                if self.write:
                    payload[part] = ("bytes", out)
            elif kindp == "media" and self.write:
                payload[part] = ("media", ctl)
            elif ctl == SVG_CT:
                out = self._svg(part)
                if self.write:
                    payload[part] = ("bytes", out)
        self._report_foreign()
        if dst is not None and self.write:
            self._write(dst, main, kept, kept_rels, payload)
        return Outcome(kind, mime, ext)

    def _report_foreign(self) -> None:
        """Once per package: markup outside its part's vocabulary, with counts. What a newer Office
        marked ignorable or put in an extension list is "reported" (any reader drops what it does not
        know); the rest no conforming reader would accept, and is "removed"."""
        for counts, action in ((self.foreign.removed, "removed"), (self.foreign.tolerated, "reported")):
            if counts:
                top = ", ".join(f"{ns} ({n})" for ns, n in counts.most_common(4))
                self.report("ooxml.unknown_markup", "package", f"{sum(counts.values())} elements or attributes "
                            f"outside the part's vocabulary: {top}"[:300], action=action)

    def _svg(self, part: str) -> bytes:
        """An SVG picture (Office icons) through the SVG family's sanitizer: scripts, event handlers and
        outside references go, as for a delivered .svg; what it finds is reported against this part."""
        from ..svg import sanitize_svg

        out, found = sanitize_svg(self.ctx, self.read(part, xml=False), rebuild=self.write)
        for t in found:
            self.report(t.id, part, t.detail)
        return out or b""

    def _role(self, part: str, ctl: str) -> str:
        return role_of(ctl) or self._rel_role.get(part, "")

    def _disarm(self, part: str, ctl: str, root: etree._Element, ids: set[str], data: bytes,
                complete: bool = False, link_ids: set[str] | None = None,
                vocab: frozenset[str] = frozenset(), plain: frozenset[str] = frozenset()) -> bytes:
        """Disarm one parsed part and return its new serialisation. `complete`: all of the part's
        relationships were kept, so only references that were already dangling in the input can be.
        `vocab`: the namespaces the part may use (everything else goes first, after mc: is resolved)."""
        def rep(tid: str, detail: str) -> None:
            # In-place changes (a formula turned into its value, a field into its text) are "neutralized".
            self.report(tid, part, detail, action="neutralized")

        try:
            foreign = mce.apply(root, data, vocab, plain)
        except ValueError as exc:
            raise _err_zip(f"part {part}: {str(exc)[:100]}") from None
        self.foreign.add(foreign)
        before = len(self.threats)
        role = self._role(part, ctl)
        literal = X.names_literal(data, root)
        try:
            if role == "vml":
                X.disarm_vml(root, rep)
            elif role == "word_story":
                # Big stories and sheets: a byte scan spares whole-tree walks (lxml's name dictionary
                # is shared by every document in the thread, so a tag filter alone does not skip them).
                if not literal or X.any_token(data, X.TRIGGERS["word_story"]):
                    X.disarm_word_story(root, self.opts, rep)
            elif role == "word_settings":
                X.disarm_word_settings(root, rep)
            elif role == "workbook":
                X.disarm_workbook(root, ids, self.opts, rep)
                made, hidden = X.unhide_sheets(root)
                for name in made:
                    self.report("ooxml.hidden_sheet", f"{part}: {name}", "very hidden sheet made hidden",
                                action="converted")
                for name in hidden if self.write else ():  # a note for the clerk, not a finding to verify
                    self.report("ooxml.hidden_sheet", f"{part}: {name}", "hidden sheet (still hidden)",
                                action="reported")
            elif role == "sheet":
                if not literal or X.has_formula(data):
                    X.disarm_sheet(root, self.opts, rep)
                if not literal or X.WEB_PUBLISH in data:
                    X.drop_web_publishing(root, rep)
            elif role == "ctrlprop":
                X.disarm_ctrlprop(root, rep)
            elif role == "drawing":
                X.disarm_drawing(root, rep)
            elif role == "chart":
                X.disarm_chart(root, rep)
            elif role == "table":
                X.disarm_table(root, self.opts, rep)
            elif role == "slide":
                X.disarm_slide(root, ids, rep)
            elif role == "pres":
                X.disarm_presentation(root)
            elif role == "app":
                X.disarm_app_props(root, self.opts, rep)
                if part in self._app_minimal and X.minimal_app_props(root):
                    self.report("ooxml.metadata", part, "document properties other than the application's name "
                                "and version dropped by policy", action="reported")
        except ValueError as exc:
            raise Blocked(f"{part}: {exc}", f"{part} を安全に再構築できません（{exc}）",
                          threat_id="ooxml.xlm_macrosheet") from None
        if not literal or X.any_token(data, X.OUTSIDE_SOURCES):
            X.drop_outside_sources(root, rep)
        if V.XSD_NS in vocab:
            X.disarm_map_schemas(root, rep)
        if not V.BIBLIOGRAPHY.isdisjoint(vocab):
            X.disarm_bibliography(root, rep)
        # Names cannot be escaped in XML: when they are plain bytes, a miss rules the element out.
        if not literal or X.may_link(data):
            X.disarm_links(root, rep)
        if link_ids:
            X.misused_links(root, link_ids, rep)
        if not self.write:
            return b""  # inspect: findings only; references are unhooked silently, nothing to report
        X.drop_unreferenced(root, lambda tid, detail: self.report(tid, part, detail))
        if len(self.threats) > before or foreign:
            X.tidy(root)
        out = X.serialize(root)
        # Disarming only removes or copies elements: with every relationship kept it cannot leave a
        # reference without a target, and a reference that had none in the input still points nowhere.
        # A reference without a target, even one the input already had (a damaged .rels), is unhooked:
        # an altChunk or OLE element left pointing nowhere is still markup no reader should meet.
        if X.has_dangling(out, ids):
            X.fix_references(root, ids)
            out = X.serialize(root)
        return out

    # ------------------------------------------------------------------ writing
    def _write(self, dst: Path | BinaryIO, main: str, kept: dict[str, str], kept_rels: dict[str, list[Rel]],
               payload: dict[str, tuple[str, Any]]) -> None:
        defaults = {"rels": RELS_CT, "xml": "application/xml"}
        overrides: list[tuple[str, str]] = []
        for part, ct in kept.items():
            ext = part.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(part) else ""
            if ext in defaults and defaults[ext].lower() == ct.lower():
                continue
            if ext and ext not in defaults and payload.get(part, ("", None))[0] == "media" \
                    and self.defaults.get(ext, "").lower() == ct.lower():
                defaults[ext] = ct
                continue
            overrides.append(("/" + part, ct))
        ct_root = etree.Element(f"{{{CT_NS}}}Types", nsmap={None: CT_NS})
        for ext, ct in defaults.items():
            etree.SubElement(ct_root, f"{{{CT_NS}}}Default", Extension=ext, ContentType=ct)
        for name, ct in overrides:
            etree.SubElement(ct_root, f"{{{CT_NS}}}Override", PartName=name, ContentType=ct)

        order = [main] + [n for n in self.order if n in kept and n != main]
        with open(dst, "wb") if isinstance(dst, (str, Path)) else contextlib.nullcontext(dst) as fp:
            z = ZipOut(fp)
            z.add("[Content_Types].xml", X.serialize(ct_root), True)
            self._write_rels(z, "", kept_rels.get("", []))
            for part in order:
                how, value = payload[part]
                if how == "bytes":
                    z.add(part, value, True)
                else:
                    self._copy_media(z, part, value)
                self._write_rels(z, part, kept_rels.get(part, []))
            z.close()

    def _write_rels(self, z: ZipOut, part: str, rels: list[Rel]) -> None:
        if not rels:
            return
        z.add(self.rels_name(part), rels_xml(rels), True)

    def _copy_media(self, z: ZipOut, part: str, ctl: str) -> None:
        data, clean = self._read(part, xml=False)  # reads to the end: checks size limits and the CRC
        from ..image import rebuild_picture

        new = rebuild_picture(self.ctx, part, data)
        if new is not None:  # a raster picture written anew: none of the sender's image data is copied
            z.add(part, new, not new.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8")))
        elif clean is not None:
            method, packed = clean
            z.add_raw(part, method, crc32(data), len(data), packed)
        else:
            z.add(part, data, not ctl.startswith(COMPRESSED_MEDIA))


def rels_xml(rels: list[Rel]) -> bytes:
    """A relationships part: lxml's serialisation of it, written directly when every value is printable
    ASCII that XML writes as it is (most packages: a third of the time)."""
    if all(_PLAIN_VALUE.match(v) for r in rels for v in (r.id, r.type, r.target)):
        return (_RELS_HEAD + "".join(f'<Relationship Id="{r.id}" Type="{r.type}" Target="{r.target}"'
                                     + ('' if not r.external else ' TargetMode="External"') + "/>"
                                     for r in rels) + "</Relationships>").encode("ascii")
    root = etree.Element(f"{{{RELS_NS}}}Relationships", nsmap={None: RELS_NS})
    for r in rels:
        el = etree.SubElement(root, f"{{{RELS_NS}}}Relationship", Id=r.id, Type=r.type, Target=r.target)
        if r.external:
            el.set("TargetMode", "External")
    return X.serialize(root)
