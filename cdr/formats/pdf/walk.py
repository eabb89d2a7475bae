"""Finding (and, in fix mode, removing) active content in a pikepdf document.

One rule set serves both `inspect` (find mode, over every object of a file)
and `rebuild` (fix mode, over the fresh document): what fix mode deletes is
exactly what find mode reports, so a rebuilt file re-inspects clean.

A byte-level pre-scan (`scan`) lets both skip the Python walk when the
serialised file cannot contain any name the rules look at; qpdf writes every
name literally (or #-escaped, which the scan decodes), and our output has no
object streams, so the scan is a sound superset of the walk.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pikepdf
from pikepdf import Name, ObjectType

from ...model import Threat

_DICT, _ARRAY, _STREAM = ObjectType.dictionary, ObjectType.array, ObjectType.stream
_OBJ = pikepdf.Object

# Action types (/S) that run code, reach outside the document or play media.
ACTION_THREATS = {
    "/JavaScript": "pdf.javascript",
    "/Launch": "pdf.launch",
    "/SubmitForm": "pdf.submit_form",
    "/ImportData": "pdf.import_data",
    "/GoToR": "pdf.remote_goto",
    "/GoToE": "pdf.remote_goto",
    "/Rendition": "pdf.rich_media",
    "/Movie": "pdf.rich_media",
    "/Sound": "pdf.rich_media",
    "/GoTo3DView": "pdf.rich_media",
    "/RichMediaExecute": "pdf.rich_media",
}
# Annotation (or stream) subtypes that embed players or media.
RICH_SUBTYPES = {"/RichMedia", "/Movie", "/Sound", "/Screen", "/3D"}
STANDARD_NAMED = {"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"}
WEB_SCHEMES = ("http://", "https://", "mailto:")
EF_KEYS = {"/F", "/UF", "/DOS", "/Mac", "/Unix"}

# Keys removed wherever they appear, with the threat they stand for.
_SELF_KEYS = {
    "/AA": "pdf.additional_actions",
    "/JS": "pdf.javascript",
    "/JavaScript": "pdf.javascript",
    "/XFA": "pdf.xfa",
    "/RF": "pdf.embedded_file",
    "/Renditions": "pdf.rich_media",
    "/AlternatePresentations": "pdf.rich_media",
}
_DROP_FILE_KEYS = {"/EF": "pdf.embedded_file", "/EmbeddedFiles": "pdf.embedded_file"}



def _outside_keys(d: Any) -> dict[str, str]:
    """Keys of this dictionary or stream that make a reader fetch another file, with what they are."""
    if d._type_code != _STREAM:
        return {}
    keys = {k: "stream data in an outside file" for k in ("/F", "/FFilter", "/FDecodeParms") if k in d}
    if "/Ref" in d and _name(d, "/Subtype") == "/Form":
        keys["/Ref"] = "reference XObject showing a page of another file"
    return keys


# --- byte-level pre-scan -------------------------------------------------------------------------
_DELIM = rb"(?=[\x00\t\n\f\r ()<>\[\]{}/%]|$)"
_TOKENS = (
    "JS JavaScript AA Launch SubmitForm ImportData GoToR GoToE Thread Rendition Renditions Movie Sound "
    "Screen 3D RichMedia RichMediaExecute GoTo3DView XFA EF RF EmbeddedFiles EmbeddedFile FileAttachment "
    "Named AlternatePresentations ObjStm Encrypt FFilter FDecodeParms"
).split()
_TOKEN_SET = {t.encode() for t in _TOKENS}
_NAME_CHARS = rb"[^\x00\t\n\f\r ()<>\[\]{}/%]"
# One pass: a rule name, a name the walk checks in context, or any #-escaped name (decoded below).
_WS = rb"[\x00\t\n\f\r ]*"
# One literal "/" first, then the alternatives: that keeps the regex engine's fast prefix search.
_SCAN_RE = re.compile(rb"/(?:(" + b"|".join(sorted(_TOKEN_SET | {b"OpenAction", b"URI", b"Metadata", b"Info"},
                                                    key=len, reverse=True)) + rb")" + _DELIM
                      + rb"|(" + _NAME_CHARS + rb"*#" + _NAME_CHARS + rb"*)"
                      # Keys that reach outside files, by their value's form (an annotation's /F is a number):
                      # a file specification /F (a string, a dictionary or a reference to one: never an
                      # annotation's flags number), associated files /AF, a reference XObject's /Ref. Short
                      # names, so a delimiter before them keeps encoded stream data from matching by chance.
                      + rb"|(?<=[\x00\t\n\f\r <>\]]/)(?:F(?=" + _WS + rb"(?:[(<]|[0-9]+" + _WS + rb"[0-9]+" + _WS + rb"R))|AF(?=" + _WS + rb"[\[<0-9])"
                      + rb"|Ref(?=" + _WS + rb"[<0-9])))")
_WS_RE = re.compile(rb"[\x00\t\n\f\r ]*")
# Every name an escaped name can count as; a byte outside these (and the hex digits of an escape) stays in the
# decoded name, which then is none of them: such a name needs no decoding (binary image data has many).
_ESCAPED_MATTERS = _TOKEN_SET | {b"OpenAction", b"URI", b"Metadata", b"Info"}
_NOT_IN_NAMES = bytes(sorted(set(range(256)) - set(b"".join(_ESCAPED_MATTERS)) - set(b"#0123456789abcdefABCDEF")))
_URI_WEB_RE = re.compile(rb"[\x00\t\n\f\r ]*\((?:https?://|mailto:)[\x21-\x27\x2a-\x5b\x5d-\x7e]*\)", re.I)


def _unescape(name: bytes) -> bytes:
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name)


def scan(data: bytes | memoryview, links: str, want_meta: bool = False) -> tuple[bool, bool]:
    """(walk, meta): walk is False only when no object of the serialised file can hold anything
    the rule walk acts on; meta says document metadata may be present."""
    walk = meta = False
    for m in _SCAN_RE.finditer(data):
        name, escaped = m.group(1), m.group(2) is not None
        if name is None and not escaped:  # /F, /AF or /Ref: it may name an outside file
            walk = True
            if meta or not want_meta:
                break
            continue
        if escaped:
            raw = m.group(2)
            if len(raw.translate(None, _NOT_IN_NAMES)) != len(raw):
                continue
            name = _unescape(raw)
        if name in (b"Metadata", b"Info"):
            meta = want_meta
        elif name in _TOKEN_SET or escaped and name in (b"OpenAction", b"URI"):
            walk = True
        elif name == b"OpenAction":
            at = _WS_RE.match(data, m.end()).end()
            walk = walk or data[at:at + 1] != b"["
        elif name == b"URI":
            # Decided by what follows, never by what precedes (qpdf sorts keys, so "/U /S /URI (...)" puts
            # a fake "/S" before a real key): a name or the end of the dictionary makes this the action
            # type of "/S /URI"; a string must be a web link; anything else (hex string, reference) is walked.
            at = _WS_RE.match(data, m.end()).end()
            nxt = data[at:at + 1]
            if links == "drop" or (nxt not in (b"/", b">") and not _URI_WEB_RE.match(data, m.end())):
                walk = True
        if walk and (meta or not want_meta):
            break
    return walk, meta


# --- object rules --------------------------------------------------------------------------------
def web_uri_ok(uri: Any) -> bool:
    """A plain http/https/mailto link without control characters."""
    try:
        text = bytes(uri).decode("utf-8", "replace") if isinstance(uri, pikepdf.String) else str(uri)
    except Exception:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    return text.strip().lower().startswith(WEB_SCHEMES)


def _name(obj: Any, key: str) -> str | None:
    try:
        v = obj.get(key)
        return str(v) if isinstance(v, Name) else None
    except (UnicodeError, ValueError, TypeError):  # a name that is not UTF-8 is none of the names we know
        return "/?"


def action_threat(obj: Any, links: str) -> tuple[str, str] | None:
    """(threat id, detail) when dict `obj` is an action that must go."""
    s = _name(obj, "/S")
    if s is None:
        return None
    tid = ACTION_THREATS.get(s)
    if tid:
        return tid, f"{s[1:]} action"
    if s == "/URI":
        uri = obj.get("/URI")
        if links == "drop" or uri is None or not web_uri_ok(uri):
            shown = str(uri)[:80] if uri is not None else ""
            return "pdf.uri", f"link to {shown!r}" if shown else "URI action"
        return None
    if s == "/Named":
        n = _name(obj, "/N")
        if n not in STANDARD_NAMED:
            return "pdf.named_action", f"named action {n}"
        return None
    if s == "/Thread" and "/F" in obj:
        return "pdf.remote_goto", "thread action into another file"
    return None


@dataclass
class Walker:
    """Walk every object; report (and with fix=True remove) active content."""

    pdf: pikepdf.Pdf
    links: str = "web"
    embedded: str = "drop"  # drop | sanitize
    fix: bool = False
    labels: dict[tuple[int, int], str] = field(default_factory=dict)
    # sanitize mode, fix mode: called with (filespec dict, EF dict, location) to sanitize attachments
    on_attachment: Callable[[Any, Any, str], list[Threat]] | None = None
    tick: Callable[[], None] | None = None
    threats: list[Threat] = field(default_factory=list)
    _seen: set = field(default_factory=set)
    _cache: dict = field(default_factory=dict)
    _visited: set = field(default_factory=set)
    _stack: Any = None

    @property
    def action(self) -> str:
        return "removed" if self.fix else "found"

    def add(self, tid: str, location: str, detail: str, key: Any = None) -> None:
        k = (tid, key if key is not None else location)
        if k in self._seen:
            return
        self._seen.add(k)
        self.threats.append(Threat(tid, location, self.action, detail))

    def label(self, og: tuple[int, int]) -> str:
        return self.labels.get(og) or f"object {og[0]}"

    def classify(self, obj: Any, key: str | None) -> tuple[str, str] | None:
        """(threat id, detail) when `obj`, reached under `key` (None: not known), must not stay."""
        if obj.is_indirect:
            ctx = "oa" if key == "/OpenAction" else "ef" if key in EF_KEYS else "none" if key is None else ""
            ck = (obj.objgen, ctx)
            if ck in self._cache:
                return self._cache[ck]
        res = self._classify(obj, key)
        if obj.is_indirect:
            self._cache[ck] = res
        return res

    def _classify(self, obj: Any, key: str | None) -> tuple[str, str] | None:
        tc = obj._type_code
        if tc == _ARRAY:
            return None
        if key == "/OpenAction":
            if tc == _DICT and _name(obj, "/S") == "/GoTo":
                return None
            inner = action_threat(obj, self.links) if tc == _DICT else None
            return "pdf.open_action", (inner[1] if inner else "open action") + " run when the file opens"
        if tc == _DICT and "/S" in obj:
            hit = action_threat(obj, self.links)
            if hit:
                return hit
        sub = _name(obj, "/Subtype")
        if sub in RICH_SUBTYPES:
            return "pdf.rich_media", f"{sub[1:]} {'annotation' if tc == _DICT else 'data'}"
        typ = _name(obj, "/Type")
        if typ == "/Sound" and tc == _STREAM:
            return "pdf.rich_media", "sound data"
        if self.embedded == "drop":
            if sub == "/FileAttachment":
                return "pdf.embedded_file", "file attachment annotation"
            if typ == "/EmbeddedFile":
                return "pdf.embedded_file", "embedded file"
        elif typ == "/EmbeddedFile" and key is not None and key not in EF_KEYS:
            return "pdf.embedded_file", "embedded file outside a file specification"
        return None

    def run(self) -> list[Threat]:
        """Find mode: every object of the file, orphans included. Fix mode: what the trailer reaches."""
        if self.fix:
            self._stack = [self.pdf.trailer]
            n = 0
            while self._stack:
                obj = self._stack.pop()
                n += 1
                if self.tick and n % 2000 == 0:
                    self.tick()
                og = obj.objgen
                self._visit(obj, obj._type_code, self.label(og) if og[0] else "trailer", og)
            return self.threats
        self._stack = None
        for n, obj in enumerate(self.pdf.objects):
            if not isinstance(obj, _OBJ):
                continue
            tc = obj._type_code
            if tc not in (_DICT, _STREAM, _ARRAY):
                continue
            if self.tick and n % 2000 == 0:
                self.tick()
            og = obj.objgen
            if tc != _ARRAY:
                # An orphan never reached through an edge is still worth reporting on input files.
                hit = self.classify(obj, None)
                if hit:
                    self.add(hit[0], self.label(og), hit[1], key=og)
            self._visit(obj, tc, self.label(og), og)
        return self.threats

    def _follow(self, v: Any) -> None:
        """Fix mode: queue an indirect object reached through a kept edge."""
        og = v.objgen
        if og not in self._visited:
            self._visited.add(og)
            self._stack.append(v)  # type: ignore[union-attr]

    def _visit(self, obj: Any, tc: int, where: str, og: tuple[int, int]) -> None:
        if tc == _ARRAY:
            self._array(obj, where, og)
        else:
            self._dict(obj, where, og)

    def _dict(self, d: Any, where: str, og: tuple[int, int]) -> None:
        self_keys = _SELF_KEYS if self.embedded == "sanitize" else {**_SELF_KEYS, **_DROP_FILE_KEYS}
        outside = _outside_keys(d)
        for key in list(d.keys()):
            tid = self_keys.get(key)
            if tid:
                self._self_key(d, key, tid, where)
                continue
            if key in outside:
                self.add("pdf.external_ref", f"{where} {key}", outside[key])
                if self.fix:
                    del d[key]
                continue
            if key == "/AF":
                self._associated(d, where)
                continue
            if key == "/EF" and self.fix and self.on_attachment is not None:
                self.threats.extend(self.on_attachment(d, d.get("/EF"), where))
                continue
            v = d.get(key)
            if not isinstance(v, _OBJ):
                continue
            vt = v._type_code
            if vt not in (_DICT, _STREAM, _ARRAY):
                continue
            hit = self.classify(v, key)
            if hit:
                vk = v.objgen if v.is_indirect else None
                self.add(hit[0], f"{where} {key}", hit[1], key=vk)
                if hit[0] == "pdf.open_action" and vt == _DICT:
                    inner = action_threat(v, self.links)
                    if inner and inner[0] != "pdf.open_action":
                        self.add(inner[0], f"{where} {key}", inner[1], key=("oa", vk, where))
                if self.fix:
                    del d[key]
                continue
            if v.is_indirect:
                if self._stack is not None:
                    self._follow(v)
            elif vt != _STREAM:
                self._visit(v, vt, f"{where} {key}", og)

    def _array(self, a: Any, where: str, og: tuple[int, int]) -> None:
        drop: list[int] = []
        for i, v in enumerate(a):
            if not isinstance(v, _OBJ):
                continue
            vt = v._type_code
            if vt not in (_DICT, _STREAM, _ARRAY):
                continue
            hit = self.classify(v, "")
            if hit:
                self.add(hit[0], f"{where}[{i}]", hit[1], key=v.objgen if v.is_indirect else None)
                drop.append(i)
                continue
            if v.is_indirect:
                if self._stack is not None:
                    self._follow(v)
            elif vt != _STREAM:
                self._visit(v, vt, f"{where}[{i}]", og)
        if self.fix:
            for i in reversed(drop):
                del a[i]

    def _associated(self, d: Any, where: str) -> None:
        """/AF (associated files): a file specification without the file in it points outside."""
        af = d.get("/AF")
        items = list(af) if isinstance(af, pikepdf.Array) else [af]
        if all(isinstance(fs, pikepdf.Dictionary) and "/EF" in fs for fs in items):
            for fs in items:  # embedded: the /EF rules apply inside
                if fs.is_indirect:
                    if self._stack is not None:
                        self._follow(fs)
                else:
                    self._visit(fs, _DICT, f"{where} /AF", fs.objgen)
            return
        self.add("pdf.external_ref", f"{where} /AF", "associated file outside the document")
        if self.fix:
            del d["/AF"]

    def _self_key(self, d: Any, key: str, tid: str, where: str) -> None:
        v = d.get(key)
        detail = {"/AA": "additional actions", "/JS": "JavaScript code", "/JavaScript": "document JavaScript",
                  "/XFA": "XFA form (fields kept as AcroForm)"}.get(key, key[1:])
        if key == "/AA" and isinstance(v, pikepdf.Dictionary):
            kinds = []
            for trig in v.keys():
                act = v.get(trig)
                hit = action_threat(act, self.links) if isinstance(act, pikepdf.Dictionary) else None
                kinds.append(f"{trig[1:]}:{_name(act, '/S') or '?'}" if isinstance(act, pikepdf.Dictionary)
                             else trig[1:])
                if hit:
                    self.add(hit[0], f"{where} /AA{trig}", hit[1] + " (additional action)")
            detail = "additional actions " + ", ".join(kinds)
        self.add(tid, f"{where} {key}", detail)
        if self.fix:
            del d[key]
