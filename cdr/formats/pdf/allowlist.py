"""The rebuilt PDF by allow-list: only what ISO 32000-2 defines (and the policy keeps) is written.

Every dictionary the rebuild copies is typed by where it is reached from (the catalog's /Pages is a
page tree node, a page's /Annots holds annotations, an annotation's /A is an action, ...) and then
keeps only the keys its type defines, with values of the defined kind (name, string, number,
boolean, array, dictionary, stream). Annotation subtypes and action types are allow-listed as well:
any other annotation is dropped (its visible normal appearance kept as page content), any other
action is dropped. Key tables follow the PDF 2.0 specification (and the Arlington PDF model) for
the types named in issue 20; the dictionaries below them that hold no actions of their own (colour
spaces, graphics states, structure elements, ...) are walked generically and lose only the keys and
names that belong to active content.

Names are compared as pikepdf gives them, i.e. after #xx decoding.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pikepdf
from pikepdf import Name, ObjectType

from ...model import Threat
from .walk import (
    ACTION_THREATS,
    RICH_SUBTYPES,
    STANDARD_NAMED,
    Walker,
    _outside_keys,
    action_threat,
    web_uri_ok,
)

Spec = tuple[str, str | None]  # (value kinds, child type)
# By the identity of pikepdf's type code (hashing the enum member costs more than the lookup is worth).
_KIND = {id(ObjectType.name_): "n", id(ObjectType.string): "s", id(ObjectType.array): "a",
         id(ObjectType.dictionary): "d", id(ObjectType.stream): "S"}
_CONTAINERS = {id(ObjectType.array), id(ObjectType.dictionary), id(ObjectType.stream)}
_ID_DICT = id(ObjectType.dictionary)
_NUMBERS = re.compile(rb"[\[\]0-9.+\- \n]*")  # an array of numbers (and arrays of them), as qpdf writes it


def _t(spec: str, *more: dict[str, Spec]) -> dict[str, Spec]:
    """'Key:kinds>Child ...' -> {"/Key": (kinds, child)}. Kinds: n name, s string, i number, b boolean,
    a array, d dictionary, S stream. Child: the type of a dictionary or stream value (or of the
    dictionaries in an array value); "*" walks it generically. No child: an array holds values only
    (numbers, strings, names, arrays of them), a dictionary or stream is walked generically."""
    out: dict[str, Spec] = {}
    for m in more:
        out.update(m)
    for item in spec.split():
        key, _, rest = item.partition(":")
        kinds, _, child = rest.partition(">")
        out["/" + key] = (kinds, child or None)
    return out


# ---- the tables ---------------------------------------------------------------------------------
_STREAM = _t("Length:i Filter:na DecodeParms:da>* DL:i")  # /F /FFilter /FDecodeParms: outside files

CATALOG = _t("Type:n Version:n Pages:d>Pages PageLabels:d>NumTree:PageLabel Names:d>Names Dests:d>Map:Dest "
             "ViewerPreferences:d>* PageLayout:n PageMode:n Outlines:d>Outline OpenAction:ad>OpenAction "
             "AcroForm:d>AcroForm Metadata:S>* StructTreeRoot:d>* MarkInfo:d>* Lang:s OutputIntents:a>* "
             "OCProperties:d>*")
PAGES = _t("Type:n Parent:d>Pages Kids:a>PageNode Count:i Resources:d>Resources MediaBox:a CropBox:a Rotate:i")
PAGE = _t("Type:n Parent:d>Pages LastModified:s Resources:d>Resources MediaBox:a CropBox:a BleedBox:a TrimBox:a "
          "ArtBox:a BoxColorInfo:d>* Contents:aS>Stream Rotate:i Group:d>* Thumb:S>Image B:a>* Dur:i Trans:d>* "
          "Annots:a Metadata:S>* PieceInfo:d>* StructParents:i ID:s PZ:i SeparationInfo:d>* Tabs:n UserUnit:i "
          "VP:a>* AF:ad>* OutputIntents:a>*")
RESOURCES = _t("ExtGState:d>* ColorSpace:d>* Pattern:d>* Shading:d>* XObject:d>Map:XObject Font:d>Map:Font "
               "ProcSet:a Properties:d>* Encoding:d>*")
CONTENT = _t("", _STREAM)
IMAGE = _t("Type:n Subtype:n Width:i Height:i ColorSpace:na>* BitsPerComponent:i Intent:n ImageMask:b "
           "Mask:Sa>Image Decode:a Interpolate:b Alternates:a>* SMask:S>Image SMaskInData:i Name:n "
           "StructParent:i ID:s OPI:d>* Metadata:S>* OC:d>* AF:ad>* Measure:d>* PtData:d>*", _STREAM)
FORM = _t("Type:n Subtype:n FormType:i BBox:a Matrix:a Resources:d>Resources Group:d>* Metadata:S>* "
          "PieceInfo:d>* LastModified:s StructParent:i StructParents:i OPI:d>* OC:d>* Name:n AF:ad>* "
          "Measure:d>* PtData:d>*", _STREAM)
XOBJECT_SUBTYPES = {"/Image": IMAGE, "/Form": FORM}

_SIMPLE_FONT = ("Type:n Subtype:n Name:n BaseFont:n FirstChar:i LastChar:i Widths:a "
                "FontDescriptor:d>FontDescriptor Encoding:nd>* ToUnicode:nS>*")
FONTS = {
    "/Type1": _t(_SIMPLE_FONT), "/MMType1": _t(_SIMPLE_FONT), "/TrueType": _t(_SIMPLE_FONT),
    "/Type3": _t(_SIMPLE_FONT + " FontBBox:a FontMatrix:a CharProcs:d>* Resources:d>Resources"),
    "/Type0": _t("Type:n Subtype:n Name:n BaseFont:n Encoding:nS>* DescendantFonts:a>Font ToUnicode:nS>*"),
    "/CIDFontType0": _t("Type:n Subtype:n Name:n BaseFont:n CIDSystemInfo:d>* FontDescriptor:d>FontDescriptor DW:i W:a "
                        "DW2:a W2:a CIDToGIDMap:nS>*"),
}
FONTS["/CIDFontType2"] = FONTS["/CIDFontType0"]
FONT_ANY = _t("", *FONTS.values())  # a damaged /Subtype: any font key (it renders nothing anyway)
FONT_DESCRIPTOR = _t("Type:n FontName:n FontFamily:s FontStretch:n FontWeight:i Flags:i FontBBox:a ItalicAngle:i "
                     "Ascent:i Descent:i Leading:i CapHeight:i XHeight:i StemV:i StemH:i AvgWidth:i MaxWidth:i "
                     "MissingWidth:i FontFile:S>* FontFile2:S>* FontFile3:S>* CharSet:s Style:d>* Lang:n FD:d>* "
                     "CIDSet:S>*")

# Annotations: the keys of every annotation, of markup annotations, and of each allowed subtype.
ANNOT = _t("Type:n Subtype:n Rect:a Contents:s P:d>Page NM:s M:s F:i AP:d>AP AS:n Border:a C:a StructParent:i "
           "OC:d>* AF:ad>* ca:i CA:i BM:n Lang:s")
MARKUP = _t("T:s Popup:d>Annot RC:sS CreationDate:s IRT:d>Annot Subj:s RT:n IT:n ExData:d>*", ANNOT)
FIELD = _t("FT:n Parent:d>Field Kids:a>Field T:s TU:s TM:s Ff:i V:nsad>* DV:nsad>* DA:s Q:i DS:s RV:sS Opt:a "
           "TI:i I:a MaxLen:i Lock:d>* SV:d>*")
_BORDER = "BS:d>* BE:d>* IC:a RD:a"
ANNOTS = {
    "/Link": _t("A:d>Action Dest:nsa>Dest H:n PA:d>Action QuadPoints:a BS:d>*", ANNOT),
    "/Text": _t("Open:b Name:n State:s StateModel:s", MARKUP),
    "/FreeText": _t("DA:s Q:i DS:s CL:a LE:n " + _BORDER, MARKUP),
    "/Line": _t("L:a LE:a LL:i LLE:i Cap:b LLO:i CP:n Measure:d>* CO:a " + _BORDER, MARKUP),
    "/Square": _t(_BORDER, MARKUP), "/Circle": _t(_BORDER, MARKUP),
    "/Polygon": _t("Vertices:a LE:a Measure:d>* Path:a " + _BORDER, MARKUP),
    "/Caret": _t("RD:a Sy:n", MARKUP),
    "/Ink": _t("InkList:a Path:a BS:d>*", MARKUP),
    "/Stamp": _t("Name:n", MARKUP),
    "/Popup": _t("Parent:d>Annot Open:b", ANNOT),
    "/FileAttachment": _t("FS:sd>Filespec Name:n", MARKUP),
    "/Widget": _t("H:n MK:d>MK A:d>Action BS:d>* Parent:d>Field", ANNOT, FIELD),
}
ANNOTS["/PolyLine"] = ANNOTS["/Polygon"]
for _sub in ("/Highlight", "/Underline", "/Squiggly", "/StrikeOut"):
    ANNOTS[_sub] = _t("QuadPoints:a", MARKUP)
MK = _t("R:i BC:a BG:a CA:s RC:s AC:s I:S>Form RI:S>Form IX:S>Form IF:d>* TP:i")
AP = _t("N:Sd>APState R:Sd>APState D:Sd>APState")

# Actions: the allowed types and their keys.
_ACTION = "Type:n S:n Next:da>Action "
ACTION_BASE = _t(_ACTION)
ACTIONS = {
    "/GoTo": _t(_ACTION + "D:nsa>Dest SD:a>*"),
    "/URI": _t(_ACTION + "URI:s IsMap:b"),
    "/Named": _t(_ACTION + "N:n"),
}

OUTLINE = _t("Type:n Title:s Parent:d>Outline Prev:d>Outline Next:d>Outline First:d>Outline Last:d>Outline "
             "Count:i Dest:nsa>Dest A:d>Action SE:d>* C:a F:i")
NAMES = _t("Dests:d>NameTree:Dest EmbeddedFiles:d>NameTree:Filespec")
DEST_DICT = _t("D:a>Dest SD:a>*")
PAGE_LABEL = _t("Type:n S:n P:s St:i")
FILESPEC = _t("Type:n FS:n F:s UF:s ID:a V:b EF:d>* Desc:s CI:d>* Thumb:S>Image AFRelationship:n")
ACROFORM = _t("Fields:a>Field NeedAppearances:b CO:a>Field DR:d>Resources DA:s Q:i")
TABLES: dict[str, dict[str, Spec]] = {
    "Catalog": CATALOG, "Pages": PAGES, "Resources": RESOURCES, "Stream": CONTENT, "Image": IMAGE,
    "Form": FORM, "FontDescriptor": FONT_DESCRIPTOR, "MK": MK, "AP": AP, "Outline": OUTLINE, "Names": NAMES,
    "PageLabel": PAGE_LABEL, "Filespec": FILESPEC, "AcroForm": ACROFORM, "DestDict": DEST_DICT,
}

# Generic walk (dictionaries below the typed ones): keys and name values that only active content has.
DENY_KEYS = {"/JS", "/JavaScript", "/AA", "/OpenAction", "/URI", "/Win", "/Mac", "/Unix", "/DOS", "/Launch",
             "/RichMediaContent", "/RichMediaSettings", "/XFA", "/RF", "/Movie", "/Sound", "/3DD", "/ImportData",
             "/SubmitForm", "/Renditions", "/AlternatePresentations"}
DENY_NAMES = set(ACTION_THREATS) | RICH_SUBTYPES | {"/RichMediaContent", "/RichMediaSettings", "/Win", "/Mac",
                                                    "/Unix", "/JS", "/AA", "/XFA"}
_FILE_NAMES = {"/EmbeddedFile", "/EmbeddedFiles"}  # names of attachments, where the policy drops them
# Dropped keys that stand for active content make the unknown-key finding a removal, not a note.
ACTIVE_KEYS = DENY_KEYS | {"/A", "/PA", "/Dest", "/EF", "/EmbeddedFiles", "/FS"}
# Keys with a rule of their own in every dictionary (the rule walk's, in walk.py, which no longer runs on
# the rebuilt document: what it would remove goes here).
_RULED = {"/AF", "/EF", "/EmbeddedFiles"}
PAGE_LABEL_STYLES = {"/D", "/R", "/r", "/A", "/a"}
# Tables whose dictionaries are mostly names, numbers and strings, where reading the text pays (_to_check):
# annotations (thousands in a commented file), font descriptors, page labels, appearance characteristics.
_BY_TEXT = {id(t) for t in (*ANNOTS.values(), ANNOT, FIELD, FONT_DESCRIPTOR, PAGE_LABEL, MK)}


_BAD = object()

# One "/Key value " entry of a dictionary as qpdf writes it (unparse): names with #xx escapes only where
# a byte needs one, so a name of the plain characters below is its own decoded text; null entries left out.
_PLAIN = rb"/[A-Za-z0-9_.+\-]*"
_NUMBER = rb"[+\-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"  # one way to match a run of digits (no backtracking blow-up)
_SLASHLESS = rb"\((?:[^()\\/]|\\[nrtbf()\\]|\\(?!057)[0-7]{3})*\)|<(?:(?!2f)[0-9a-f]{2})*>"
_NUMBER_ARRAY = rb"\[(?: (?:" + _NUMBER + rb"|\[(?: " + _NUMBER + rb")* \]))* \]"
_OTHER = rb"/[^\s/\[\]()<>{}%]*|\((?:[^()\\]|\\[nrtbf()\\]|\\[0-7]{3})*\)|<[0-9a-f]*>|\[[^\[\]()<>{}]*\]"
_ENTRY = re.compile(
    rb"(" + _PLAIN + rb") (?:"
    rb"(" + _PLAIN + rb")"  # 2: a name
    rb"|([0-9]+ [0-9]+ R)"  # 3: a reference (before the numbers, which would take its first part)
    rb"|(" + _NUMBER + rb")"  # 4: a number
    rb"|(true|false)"  # 5: a boolean
    # 6: a string without "/" in its bytes (so not _hidden): qpdf writes "/" as itself in a literal string
    # (only bytes that are not printable are escaped, in octal); in a hex string it is 2f at an even offset.
    rb"|(" + _SLASHLESS + rb")"
    # 7: an array of numbers, and of arrays of numbers (_NUMBERS matches its text): bracket by bracket, so that
    # it ends where the array does ("[ 1 [ 2 ] /JS [ 3 ] ]" is not "[ 1 [ 2 ]", "/JS" and "[ 3 ] ]")
    rb"|(" + _NUMBER_ARRAY + rb")"
    # 8: any other name, string, array of names, numbers and references, or dictionary of such values (whose
    # tokens are matched one way only: with two ways, such as a reference or three words, a dictionary that
    # fails to match would be tried in 2**n ways)
    rb"|(" + _OTHER + rb"|<<(?: (?:" + _OTHER + rb"|[^\s/\[\]()<>{}%]+))* >>)"
    rb") (?=/|>>)")
_E_NAME, _E_REF, _E_NUMBER, _E_BOOL, _E_STRING, _E_NUMBERS, _E_OTHER = 2, 3, 4, 5, 6, 7, 8
_E_KIND = {_E_NAME: "n", _E_NUMBER: "i", _E_BOOL: "b", _E_STRING: "s", _E_NUMBERS: "a"}
_E_VALUE = {"n": _PLAIN, "i": _NUMBER, "b": rb"true|false", "s": _SLASHLESS, "a": _NUMBER_ARRAY}
_UNSET = object()
# The patterns below cost about a millisecond each to compile: one is made once the process has read this many
# texts it would serve (before that, and for a process that reads a few, the entry-by-entry reading does).
_COMPILE_AFTER = 200
_USES: Counter[tuple[int, frozenset[str]]] = Counter()
_PLAIN_VALUES: dict[frozenset[str], re.Pattern[bytes]] = {}


def _plain_name_re(deny: frozenset[str]) -> bytes:
    """A plain name (_PLAIN) that is not one of `deny`: for such a name, what _denied says."""
    names = sorted((re.escape(n[1:].encode()) for n in deny if n), key=len, reverse=True)
    return (rb"/(?!(?:" + b"|".join(names) + rb") )" if names else b"/") + _PLAIN[1:]


def _plain_values_re(deny: frozenset[str]) -> re.Pattern[bytes] | None:
    """The text of an array _data leaves as it is element by element: numbers, booleans, nulls and plain
    names not in `deny` (what _name_denied passes), and nothing else. None until _COMPILE_AFTER uses."""
    pattern = _PLAIN_VALUES.get(deny)
    if pattern is None:
        _USES[(0, deny)] += 1
        if _USES[(0, deny)] < _COMPILE_AFTER:
            return None
        pattern = _PLAIN_VALUES[deny] = re.compile(
            rb"\[(?: (?:" + _NUMBER + rb"|" + _plain_name_re(deny) + rb"|true|false|null))* \]")
    return pattern


# (id(table), deny) -> (table, pattern): the table held, so that its id is never that of another table.
_TILED: dict[tuple[int, frozenset[str]], tuple[dict[str, Spec], re.Pattern[bytes] | None]] = {}
_REF = rb"[0-9]+ [0-9]+ R"  # _ENTRY's kind 3
# In a text _tiled_re matches, a "/" starts a key or a name value, and a value with a "/" is a name: the keys
# of references, and the keys with a name value (with that value's "/", so the next match starts at a key).
_REF_KEYS = re.compile(rb"(" + _PLAIN + rb") " + _REF + rb" (?=/|>>)")
_NAME_VALUED = re.compile(_PLAIN + rb" /")


def _tiled_re(table: dict[str, Spec], deny: frozenset[str]) -> re.Pattern[bytes] | None:
    """The text of a dictionary made of entries that _kept_as_is keeps and of references (which it never
    keeps): the entries of _ENTRY's kinds 2-7 (with its patterns, so the same spans), for the keys and
    kinds `table` keeps as they are, a name value unless in `deny` (for a plain name, what _denied says).
    One match instead of one per entry; None for page labels, whose /S names are judged one by one, and
    _UNSET until _COMPILE_AFTER uses."""
    cached = _TILED.get((id(table), deny))
    if cached is not None and cached[0] is table:
        return cached[1]
    _USES[(id(table), deny)] += 1
    if _USES[(id(table), deny)] < _COMPILE_AFTER:
        return _UNSET  # type: ignore[return-value]
    by_kind: dict[str, list[bytes]] = {k: [] for k in _E_VALUE}
    for key, (kinds, child) in table.items():
        raw = key.encode()
        if key in _RULED or (key == "/Annots" and table is PAGE) or not re.fullmatch(_PLAIN, raw):
            continue
        for k in kinds:
            if k in by_kind and (k != "a" or child is None):
                by_kind[k].append(re.escape(raw))
    values = {**_E_VALUE, "n": _plain_name_re(deny)}
    alts = [rb"(?:" + b"|".join(sorted(keys, key=len, reverse=True)) + rb") (?:" + values[k] + rb") "
            for k, keys in by_kind.items() if keys]
    alts.append(_PLAIN + rb" " + _REF + rb" ")
    pattern = None if table is PAGE_LABEL else re.compile(rb"<< (?:" + b"|".join(alts) + rb")*>>")
    _TILED[(id(table), deny)] = (table, pattern)
    return pattern


def _get(d: Any, key: str) -> Any:
    """d[key], or _BAD for a key or name value whose bytes are not UTF-8 (pikepdf cannot hand them over)."""
    try:
        return d.get(key)
    except (TypeError, ValueError, UnicodeError):
        return _BAD


def name_str(v: Any) -> str:
    """A name as text; "" for one that is not UTF-8 (it is none of the names the tables know)."""
    try:
        return str(v)
    except (UnicodeError, ValueError):
        return ""


def filter_names(stream: Any) -> list[str]:
    """A stream's /Filter as names ("" for an entry that is not a name, or not UTF-8)."""
    f = stream.get("/Filter")
    if f is None:
        return []
    return [name_str(x) if isinstance(x, Name) else "" for x in (f if isinstance(f, pikepdf.Array) else [f])]


_IRREGULAR = re.compile(r"[^A-Za-z0-9#._+\-]")


def _denied(name: str, deny: set[str] | frozenset[str]) -> bool:
    """Whether a name is, or starts as, one of `deny`: a lenient tokenizer ends a name at the first character
    outside the usual ones (/Win!nsiEncoding read as /Win), so the part before it counts too."""
    if name in deny:
        return True
    m = _IRREGULAR.search(name, 1)
    if m is None:
        return False
    head = re.sub(r"#([0-9A-Fa-f]{2})", lambda x: chr(int(x.group(1), 16)), name[:m.start()])
    return head in deny


def _kind(v: Any) -> str:
    t = type(v)
    if t is int or t is Decimal:
        return "i"
    if t is bool:
        return "b"
    if v is None:
        return ""
    tc = getattr(v, "_type_code", None)
    return _KIND.get(id(tc), "") if tc is not None else "i" if isinstance(v, (int, float)) else ""


def _entries(d: Any) -> list[tuple[str, Any]]:
    """The key/value pairs of d; a value is _BAD where the key or a name is not UTF-8."""
    try:
        items = list(d.items())
    except (TypeError, ValueError, UnicodeError):
        items = [(k, _get(d, k)) for k in list(d.keys())]
    return [(k, v) if k.isascii() or _utf8(k) else (k, _BAD) for k, v in items]


def _del(d: Any, key: str) -> None:
    """del d[key]; a key whose value is null is absent to qpdf although pikepdf lists it."""
    try:
        del d[key]
    except KeyError:
        pass


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeError:
        return False


def _norm(rect: Any) -> tuple[float, float, float, float] | None:
    try:
        x0, y0, x1, y1 = (float(x) for x in rect)
    except (TypeError, ValueError):
        return None
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


class AllowList:
    """One pass over a rebuilt document: drop what its type does not define; report what went."""

    def __init__(self, pdf: pikepdf.Pdf, *, links: str = "web", embedded: str = "drop",
                 labels: Callable[[], dict[tuple[int, int], str]] | None = None,
                 tick: Callable[[], None] | None = None,
                 on_attachment: Callable[[Any, Any, str], list[Threat]] | None = None) -> None:
        self.pdf, self.links, self.embedded = pdf, links, embedded
        self.on_attachment = on_attachment
        self._labels_of = labels
        self._labels: dict[tuple[int, int], str] | None = None
        self.tick = tick
        self.threats: list[Threat] = []
        self.unknown: Counter[str] = Counter()
        self.active_unknown = False
        self._seen: set[tuple[str, str]] = set()
        self._visited: set[tuple[int, int]] = set()
        self._stack: list[tuple[Any, str, str, dict[str, Spec] | None]] = []
        # Generic ("*") visits wait until the typed walk is done, so that an object the generic walk reaches
        # first (a page under the structure tree's /Pg, an annotation under /Obj) still gets its table.
        self._later: list[tuple[Any, str, str, dict[str, Spec] | None]] = []
        self._queued: set[tuple[int, int]] = set()
        self.unreached: list[tuple[int, int]] = []  # indirect objects the walk never reached (emptied)
        self._classifier = Walker(pdf, links=links, embedded=embedded, fix=False)
        self._flat = 0
        self.deny = DENY_NAMES | _FILE_NAMES | {"/FileAttachment"} if embedded == "drop" else DENY_NAMES
        # Embedded files live under a file specification's /EF (walked generically): no typed table has one.
        self.typed_deny = self.deny | _FILE_NAMES
        self.generic_keys = DENY_KEYS | {"/EF", "/EmbeddedFiles"} if embedded == "drop" else DENY_KEYS
        self._wrapped: set[tuple[int, int]] = set()
        self._denied: dict[str, bool] = {}  # name -> _denied(name, typed_deny), per pass
        self._denied_generic: dict[str, bool] = {}  # name -> _denied(name, deny)
        self._keep: dict[tuple[int, bytes, bytes | int], bool] = {}  # (table, key, name or kind) -> _kept_as_is
        self._deny_key = frozenset(self.typed_deny)
        self._deny_generic_key = frozenset(self.deny)
        self._plain_values: re.Pattern[bytes] | None = None  # _plain_values_re(deny), once made
        self._tiled: dict[int, Any] = {}  # id(table) -> _tiled_re(table, typed_deny)
        self._pages = {p.objgen: f"page {i}" for i, p in enumerate(pdf.pages, 1)}

    # -- reporting --
    def _add(self, tid: str, where: str, detail: str, action: str = "removed") -> None:
        if (tid, where) not in self._seen:
            self._seen.add((tid, where))
            self.threats.append(Threat(tid, where, action, detail))

    def _where(self, obj: Any, fallback: str) -> str:
        """A readable location: the object's label (page and annotation) where it has one. Labels are made
        on the first report only, since most files have nothing to report."""
        og = obj.objgen
        if og == (0, 0):
            return fallback
        if self._labels is None:
            self._labels = self._labels_of() if self._labels_of else {}
        return self._labels.get(og, fallback)

    def _drop(self, d: Any, key: str, v: Any, typ: str, where: str) -> None:
        """Remove d[key], reporting it by what it is when that is known, else counting it."""
        hit = self._why(d, key, v) if v is not None else None
        _del(d, key)
        if v is None:
            return  # a null value is the same as no entry
        if hit:
            self._add(hit[0], f"{self._where(d, where)} {key}", hit[1])
            return
        self.unknown[f"{typ} {key}"] += 1
        if key in ACTIVE_KEYS:
            self.active_unknown = True

    def _undecodable(self, d: Any, key: str) -> None:
        _del(d, key)
        self.unknown["undecodable key or name"] += 1
        self.active_unknown = True

    def _why(self, d: Any, key: str, v: Any) -> tuple[str, str] | None:
        if key in ("/AA", "/JS", "/JavaScript", "/XFA", "/RF", "/Renditions", "/AlternatePresentations"):
            return {"/AA": ("pdf.additional_actions", "additional actions"), "/JS": ("pdf.javascript", "JavaScript code"),
                    "/JavaScript": ("pdf.javascript", "document JavaScript"),
                    "/XFA": ("pdf.xfa", "XFA form (fields kept as AcroForm)"),
                    "/RF": ("pdf.embedded_file", "related files")}.get(key, ("pdf.rich_media", key[1:]))
        if key in ("/EF", "/EmbeddedFiles") and self.embedded == "drop":
            return "pdf.embedded_file", "embedded file"
        outside = _outside_keys(d) if d._type_code == ObjectType.stream else {}
        if key in outside:
            return "pdf.external_ref", outside[key]
        if _kind(v) in ("d", "S"):
            return self._classifier.classify(v, key)
        return None

    # -- the walk --
    def run(self) -> list[Threat]:
        self._push(self.pdf.Root, "Catalog", "document catalog")
        info = self.pdf.trailer.get("/Info")
        if _kind(info) == "d":  # metadata = keep: strings only (_copy_metadata)
            self._push(info, "*", "document information")
        n = 0
        stack, later, visited = self._stack, self._later, self._visited
        while stack or later:
            if stack:
                obj, typ, where, table = stack.pop()
            else:
                obj, typ, where, table = later.pop()
                og = obj.objgen
                if og != (0, 0):
                    if og in visited:  # typed meanwhile
                        continue
                    visited.add(og)
            n += 1
            if self.tick and n % 2000 == 0:
                self.tick()
            if table is not None:  # resolved by the caller (annotations): _visit would go straight to _keys
                self._keys(obj, typ, where, table)
            else:
                self._visit(obj, typ, where)
        self._sweep()
        if self.unknown:
            total = sum(self.unknown.values())
            shown = ", ".join(k for k, _ in self.unknown.most_common(6))
            self.threats.append(Threat(
                "pdf.unknown_key", "document", "removed" if self.active_unknown else "reported",
                f"{total} key(s) the PDF specification does not define for their dictionary (or with a value "
                f"of the wrong type) not carried over: {shown}" + (", ..." if len(self.unknown) > 6 else "")))
        return self.threats

    def _push(self, obj: Any, typ: str, where: str, table: dict[str, Spec] | None = None) -> None:
        og = obj.objgen
        if typ == "*":
            if og != (0, 0):
                if og in self._visited or og in self._queued:
                    return
                self._queued.add(og)
            self._later.append((obj, typ, where, table))
            return
        if og != (0, 0):
            if og in self._visited:
                return
            self._visited.add(og)
        self._stack.append((obj, typ, where, table))

    def _sweep(self) -> None:
        """Every dictionary, array and stream written was reached and typed by this walk, or goes: an indirect
        one no kept entry led to is emptied. Unreferenced ones are not written anyway; one still referenced
        would be a gap in the walk (tests/test_pdf_allowlist.py checks the samples and fuzz cases for it)."""
        visited = self._visited
        objects = self.pdf.objects
        # Every objgen in `visited` is that of an indirect object of this document, and pdf.objects lists each
        # of those once (non-containers too): as many as visited means every one was reached.
        if len(objects) == len(visited):
            return
        for obj in objects:
            if not isinstance(obj, pikepdf.Object) or id(obj._type_code) not in _CONTAINERS \
                    or obj.objgen in visited:
                continue
            self.unreached.append(obj.objgen)
            if obj._type_code == ObjectType.array:
                del obj[:]
                continue
            for key in list(obj.keys()):
                _del(obj, key)
            if obj._type_code == ObjectType.stream:
                obj.write(b"")

    def _table(self, d: Any, typ: str) -> dict[str, Spec] | None:
        if typ in TABLES:
            return TABLES[typ]
        if typ in ("PageNode", "Page"):  # a page reached from a destination or /P may be a tree node
            return PAGES if d.get("/Type") == Name.Pages else PAGE
        if typ == "Annot":
            return ANNOTS.get(name_str(d.get("/Subtype")), ANNOT)
        if typ == "Field":
            return ANNOTS["/Widget"] if d.get("/Subtype") == Name.Widget else FIELD
        if typ == "Font":
            return FONTS.get(name_str(d.get("/Subtype")), FONT_ANY)
        if typ == "XObject":
            return XOBJECT_SUBTYPES.get(name_str(d.get("/Subtype")), FORM)
        if typ == "Action":
            return ACTIONS.get(name_str(d.get("/S")), ACTION_BASE)
        return None  # generic

    def _visit(self, obj: Any, typ: str, where: str, table: dict[str, Spec] | None = None) -> None:
        if table is not None:  # resolved by the caller (annotations)
            self._keys(obj, typ, where, table)
            return
        tc = obj._type_code
        if tc == ObjectType.array:
            if typ == "Data":
                self._data(obj, where)
            else:
                self._generic_array(obj, typ, where)
            return
        if typ.startswith("Map:"):
            self._map(obj, typ[4:], where)
            return
        if typ.startswith(("NameTree:", "NumTree:")):
            self._tree(obj, typ, where)
            return
        if typ == "APState":
            if tc == ObjectType.stream:
                self._visit(obj, "Form", where)
            else:
                self._map(obj, "Form", where)
            return
        table = self._table(obj, typ)
        if table is None:
            self._generic(obj, where)
            return
        if table is PAGE:
            where = self._pages.get(obj.objgen, where)
        if typ in ("PageNode", "Page", "XObject"):  # as reported: the type the table is for
            typ = "Pages" if table is PAGES else "Page" if table is PAGE else "Image" if table is IMAGE else "Form"
        self._keys(obj, typ, where, table)

    def _keys(self, obj: Any, typ: str, where: str, table: dict[str, Spec]) -> None:
        """Keep the keys `table` defines, with values of the kinds it names; queue the values to check."""
        denied = self._denied
        entries = self._to_check(obj, table) if id(table) in _BY_TEXT and id(obj._type_code) == _ID_DICT else None
        for key, v in _entries(obj) if entries is None else entries:
            t = type(v)  # _kind, inlined: this loop is most of the pass
            if t is int or t is Decimal:
                k = "i"
            elif t is bool:
                k = "b"
            elif v is _BAD:
                self._undecodable(obj, key)
                continue
            else:
                k = _kind(v)
            if key == "/Annots" and table is PAGE and k == "a":
                self._annots(obj, v, where)
                continue
            if key in _RULED:
                self._ruled(obj, key, v, k, typ, where)
                continue
            spec = table.get(key)
            if spec is None or not k or k not in spec[0]:
                self._drop(obj, key, v, typ, where)
                continue
            if k == "n":
                n = name_str(v)
                if not n:
                    self._undecodable(obj, key)
                else:
                    bad = denied.get(n)
                    if bad is None:
                        bad = denied[n] = _denied(n, self.typed_deny)
                    if bad or (key == "/S" and table is PAGE_LABEL and n not in PAGE_LABEL_STYLES):
                        self._drop(obj, key, v, typ, where)
                continue
            if k in "sib":
                if k == "s" and key != "/URI" and _hidden(v):
                    self._hidden_string(obj, key, where)
                continue
            child = spec[1]
            w = f"{where} {key}"
            if child is None:  # values only (a box, widths, a colour): nothing else is kept in them
                if k != "a":
                    self._push(v, "*", w)
                elif v.is_indirect:
                    self._push(v, "Data", w)
                else:
                    self._data(v, w)
            elif child in ("Dest", "OpenAction") and k == "a":
                self._dest(v, w)
            elif k == "a":
                self._array(key, v, child, w)
            elif child in ("Action", "OpenAction"):
                if self._action_ok(v) and (child == "Action" or v.get("/S") == Name.GoTo):
                    self._push(v, "Action", w)
                else:
                    self._drop_action(v, f"{self._where(obj, where)} {key}")
                    _del(obj, key)
            else:
                self._push(v, "DestDict" if child == "Dest" else child, w)

    def _to_check(self, d: Any, table: dict[str, Spec]) -> list[tuple[str, Any]] | None:
        """The entries of `d` the loop in _keys has anything to do with, read from the dictionary's text (one
        call into qpdf instead of a Python object per key and value): a name, number, boolean, string or
        array of numbers the table keeps as it is (an entry the loop would pass over without a trace) is
        left out; the others are fetched as _entries gives them. None (the caller reads every entry) where
        most entries need reading anyway, or the text is not in the form expected (dictionaries nested twice)."""
        check = self._check_keys(d.unparse(resolved=True), table)
        return None if check is None else [(key, _get(d, key)) for key in check]

    def _check_keys(self, text: bytes, table: dict[str, Spec]) -> list[str] | None:
        """The keys of the entries of a dictionary's text that _to_check fetches, in order; None where it reads
        every entry. Mostly one match of _tiled_re (the entries kept as they are, and references, which are
        never: the keys to fetch are those of the references); else entry by entry (_check_entries)."""
        tid = id(table)
        tiled = self._tiled.get(tid, _UNSET)
        if tiled is _UNSET:
            tiled = _tiled_re(table, self._deny_key)
            if tiled is not _UNSET:
                self._tiled[tid] = tiled
        if tiled is not _UNSET and tiled is not None and tiled.fullmatch(text):  # type: ignore[union-attr]
            if b" R " not in text:
                return []
            refs = _REF_KEYS.findall(text)
            # Entries: one "/" each, and a second one where the value is a name (_NAME_VALUED finds those).
            if 3 * len(refs) > text.count(b"/") - len(_NAME_VALUED.findall(text)):
                return None
            return [key.decode() for key in refs]
        return self._check_entries(text, table)

    def _check_entries(self, text: bytes, table: dict[str, Spec]) -> list[str] | None:
        """_check_keys, entry by entry: each entry matched by _ENTRY and judged by _kept_as_is."""
        end = len(text) - 2
        if not text.startswith(b"<< ") or text[end:] != b">>":
            return None
        keep, match, tid = self._keep, _ENTRY.match, id(table)
        pos, check, n = 3, [], 0
        while pos < end:
            n += 1
            m = match(text, pos)
            if m is None:
                return None
            pos = m.end()
            kind = m.lastindex
            key, value = m.group(1, kind)
            tag = (tid, key, value if kind == _E_NAME else kind)  # only a name's decision is its own
            known = keep.get(tag)
            if known is None:
                known = keep[tag] = self._kept_as_is(table, key, value, kind)
            if not known:
                check.append(key.decode())
        if pos != end or 3 * len(check) > n:  # one get per entry costs more than items() for all
            return None
        return check

    def _kept_as_is(self, table: dict[str, Spec], key: bytes, value: bytes, kind: int) -> bool:
        """Whether an entry read from the text goes through _keys untouched."""
        k = _E_KIND.get(kind)
        if k is None:  # a reference or anything else: read it
            return False
        name = key.decode()
        if name in _RULED or (name == "/Annots" and table is PAGE and k == "a"):
            return False
        spec = table.get(name)
        if spec is None or k not in spec[0]:
            return False
        if k == "n":
            n = value.decode()
            bad = self._denied.get(n)
            if bad is None:
                bad = self._denied[n] = _denied(n, self.typed_deny)
            return not bad and not (name == "/S" and table is PAGE_LABEL and n not in PAGE_LABEL_STYLES)
        if k == "a":
            return spec[1] is None  # _data: an array of numbers (as _NUMBERS matches it) is left as it is
        return True

    def _action_ok(self, a: Any) -> bool:
        if a._type_code != ObjectType.dictionary:
            return False
        s = a.get("/S")
        if s == Name.GoTo:
            return "/D" in a or "/SD" in a
        if s == Name.URI:
            uri = a.get("/URI")
            return self.links != "drop" and _kind(uri) == "s" and web_uri_ok(uri)
        if s == Name.Named:
            return name_str(a.get("/N")) in STANDARD_NAMED
        return False

    def _drop_action(self, a: Any, where: str) -> None:
        hit = action_threat(a, self.links) if a._type_code == ObjectType.dictionary else None
        if hit:
            self._add(hit[0], where, hit[1])
        else:
            s = a.get("/S") if a._type_code == ObjectType.dictionary else None
            self._add("pdf.other_action", where,
                      f"{name_str(s)[1:]} action (not on the allow-list)" if isinstance(s, Name)
                      else "action of no known type")

    def _array(self, key: str, arr: Any, child: str, where: str) -> None:
        drop: list[int] = []
        for i, v in enumerate(arr):
            k = _kind(v)
            if k in ("d", "S"):
                if child == "Action":
                    if not self._action_ok(v):
                        self._drop_action(v, f"{where}[{i}]")
                        drop.append(i)
                        continue
                self._push(v, child, f"{where}[{i}]")
            elif k == "a":
                self._push(v, "*", f"{where}[{i}]")
            elif self._bad_value(v, k, f"{where}[{i}]"):
                drop.append(i)
        for i in reversed(drop):
            del arr[i]

    def _bad_value(self, v: Any, k: str, where: str) -> bool:
        """A name of active content (or not UTF-8), or a string hiding such names (reported): not kept."""
        if k == "n":
            return self._name_denied(v)
        if k == "s" and _hidden(v):
            self._add("pdf.hidden_data", where, _HIDDEN)
            return True
        return False

    def _dest(self, arr: Any, where: str) -> None:
        """An explicit destination: [page /XYZ left top zoom] and the like. The page goes through as a page;
        the rest are values."""
        drop: list[int] = []
        for i, v in enumerate(arr):
            k = _kind(v)
            if i == 0 and k == "d":
                self._push(v, "Page", where)
            elif k in ("d", "S", "a"):
                drop.append(i)
                self.unknown["destination non-value"] += 1
            elif self._bad_value(v, k, f"{where}[{i}]"):
                drop.append(i)
        for i in reversed(drop):
            del arr[i]

    def _name_denied(self, v: Any) -> bool:
        """A name value of active content (counted as a removed unknown entry), or one that is not UTF-8."""
        n = name_str(v)
        bad = self._denied_generic.get(n) if n else True
        if bad is None:
            bad = self._denied_generic[n] = _denied(n, self.deny)
        if bad:
            self.unknown[f"array name {n}" if n else "undecodable key or name"] += 1
            self.active_unknown = True
        return bad

    def _data(self, arr: Any, where: str) -> None:
        """An array of values (numbers, strings, names, booleans, arrays of them), as the specification
        defines /MediaBox, /W, /Opt, /QuadPoints and the like: a dictionary or stream in it goes."""
        text = arr.unparse(resolved=True)
        if _NUMBERS.fullmatch(text):  # the usual case, without a Python object per number
            return
        values = self._plain_values
        if values is None:
            values = self._plain_values = _plain_values_re(self._deny_generic_key)
        if values is not None and values.fullmatch(text):  # numbers and names the loop keeps (/ProcSet, /Filter)
            return
        drop: list[int] = []
        for i, v in enumerate(arr):
            t = type(v)
            if t is int or t is Decimal or t is bool or v is None:
                continue
            k = _kind(v)
            if k == "a":
                self._push(v, "Data", f"{where}[{i}]")
            elif k in ("d", "S"):
                drop.append(i)
                hit = self._classifier.classify(v, None)
                if hit:
                    self._add(hit[0], f"{where}[{i}]", hit[1])
                else:
                    self.unknown["dictionary in an array of values"] += 1
            elif k == "n" and self._name_denied(v):
                drop.append(i)
            elif k == "s" and _hidden(v):
                drop.append(i)
                self._add("pdf.hidden_data", f"{where}[{i}]", _HIDDEN)
            elif not k and not isinstance(v, (int, float)):  # an operator or a reserved word qpdf let through
                drop.append(i)
        for i in reversed(drop):
            del arr[i]

    def _map(self, d: Any, child: str, where: str) -> None:
        """Font and XObject resources, destinations by name: any key, values of one type."""
        for key, v in _entries(d):
            if v is _BAD:
                self._undecodable(d, key)
                continue
            k = _kind(v)
            if child == "XObject" and (k != "S" or name_str(v.get("/Subtype")) not in XOBJECT_SUBTYPES):
                self._drop(d, key, v, "XObject", where)
            elif child in ("Font", "Form") and k not in ("d", "S"):
                self._drop(d, key, v, child, where)
            elif child == "Dest":
                if k == "a":
                    self._dest(v, f"{where} {key}")
                elif k == "d":
                    self._push(v, "DestDict", f"{where} {key}")
                else:
                    self._drop(d, key, v, "Dest", where)
            else:
                self._push(v, child, f"{where} {key}")

    def _tree(self, node: Any, typ: str, where: str) -> None:
        """A name or number tree node: /Kids, /Limits and the /Names or /Nums pairs; values typed."""
        numbers = typ.startswith("NumTree:")
        child = typ.split(":", 1)[1]
        pairs = "/Nums" if numbers else "/Names"
        for key, v in _entries(node):
            if v is _BAD:
                self._undecodable(node, key)
                continue
            if key not in ("/Kids", "/Limits", pairs) or _kind(v) != "a":
                self._drop(node, key, v, "NameTree", where)
                continue
            if key == "/Kids":
                drop = []
                for i, kid in enumerate(v):
                    if _kind(kid) == "d":
                        self._push(kid, typ, f"{where}[{i}]")
                    else:
                        drop.append(i)
                        self.unknown["NameTree /Kids non-dictionary"] += 1
                for i in reversed(drop):
                    del v[i]
            elif key == "/Limits":
                self._push(v, "Data", f"{where} /Limits")
            else:
                self._pairs(v, child, numbers, where)

    def _pairs(self, arr: Any, child: str, numbers: bool, where: str) -> None:
        """/Names or /Nums: (string or integer key, value of the tree's type) pairs; any other pair goes."""
        keyed = "i" if numbers else "s"
        drop: list[int] = []
        items = list(arr)
        for i in range(0, len(items), 2):
            k0 = _kind(items[i])
            val = items[i + 1] if i + 1 < len(items) else None
            k = _kind(val)
            if k0 == "s" and _hidden(items[i]):
                drop.extend((i, i + 1) if i + 1 < len(items) else (i,))
                self._add("pdf.hidden_data", f"{where}[{i}]", _HIDDEN)
            elif k0 == keyed and child == "Dest" and k == "a":
                self._dest(val, f"{where} {items[i]}")
            elif k0 == keyed and k in ("d", "S"):
                self._push(val, "DestDict" if child == "Dest" else child, f"{where}[{i + 1}]")
            else:
                drop.extend((i, i + 1) if i + 1 < len(items) else (i,))
                self.unknown["NameTree entry of another type"] += 1
        for i in reversed(drop):
            del arr[i]

    def _generic(self, d: Any, where: str) -> None:
        """A dictionary no table is kept for: the rule walk's rules (walk.py), key by key."""
        s = _get(d, "/S")
        if isinstance(s, Name) and name_str(s) in ("/URI", "/Named", "/Thread"):  # an action, whatever holds it
            hit = action_threat(d, self.links)
            if hit:
                self._add(hit[0], where, hit[1])
                for key in list(d.keys()):
                    _del(d, key)
                return
        outside = _outside_keys(d) if d._type_code == ObjectType.stream else {}
        for key, v in _entries(d):
            if v is _BAD:
                self._undecodable(d, key)
                continue
            k = _kind(v)
            if key in _RULED:
                self._ruled(d, key, v, k, "dictionary", where)
            elif key == "/URI" and k == "s" and s == Name.URI and self.links != "drop" and web_uri_ok(v):
                continue  # a web link's address (the action was judged above)
            elif k == "s" and _hidden(v):
                self._hidden_string(d, key, where)
            elif key in outside or _denied(key, self.generic_keys) or (k == "n" and self._generic_name(v)):
                self._drop(d, key, v, "dictionary", where)
            elif k in ("d", "S", "a"):
                if key in ("/A", "/PA", "/Next") and k == "d" and "/S" in v and not self._action_ok(v):
                    self._drop_action(v, f"{where} {key}")
                    _del(d, key)
                    continue
                hit = self._classifier.classify(v, key) if k == "S" else None
                if hit:  # sound, media or an embedded file outside a file specification
                    self._add(hit[0], f"{where} {key}", hit[1])
                    _del(d, key)
                    continue
                self._push(v, "*", f"{where} {key}")

    def _hidden_string(self, d: Any, key: str, where: str) -> None:
        """A string holding names of active content (the text of an object a damaged file ran into it)."""
        _del(d, key)
        self._add("pdf.hidden_data", f"{self._where(d, where)} {key}", _HIDDEN)

    def _generic_name(self, v: Any) -> bool:
        n = name_str(v)
        bad = self._denied_generic.get(n)
        if bad is None:
            bad = self._denied_generic[n] = _denied(n, self.deny)
        return bad

    def _ruled(self, d: Any, key: str, v: Any, k: str, typ: str, where: str) -> None:
        """/AF, /EF and /EmbeddedFiles, in any dictionary: attachments per the policy, no outside file."""
        if key == "/AF":
            items = list(v) if k == "a" else [v]
            if k in ("a", "d") and all(_kind(fs) == "d" and "/EF" in fs for fs in items):
                if self.embedded == "sanitize":
                    self._push(v, "*", f"{where} /AF")
                else:
                    _del(d, key)
                    self._add("pdf.embedded_file", f"{self._where(d, where)} /AF", "associated files")
            else:
                _del(d, key)
                if v is not None:
                    self._add("pdf.external_ref", f"{self._where(d, where)} /AF",
                              "associated file outside the document")
            return
        if self.embedded == "drop" or k != "d" or (key == "/EmbeddedFiles" and typ != "Names"):
            self._drop(d, key, v, typ, where)
            return
        if key == "/EF" and self.on_attachment is not None:
            self.threats.extend(self.on_attachment(d, v, self._where(d, where)))
            v = d.get("/EF")
            if _kind(v) != "d":
                return
        if key == "/EF":
            self._push(v, "*", f"{where} /EF")
        else:
            self._push(v, "NameTree:Filespec", f"{where} /EmbeddedFiles")

    def _generic_array(self, a: Any, typ: str, where: str) -> None:
        drop = []
        for i, v in enumerate(a):
            k = _kind(v)
            if k == "S":
                hit = self._classifier.classify(v, "")
                if hit:
                    self._add(hit[0], f"{where}[{i}]", hit[1])
                    drop.append(i)
                    continue
            if k in ("d", "S", "a"):
                self._push(v, "*", f"{where}[{i}]")
            elif k == "n" and self._name_denied(v):
                drop.append(i)
            elif k == "s" and _hidden(v):
                drop.append(i)
                self._add("pdf.hidden_data", f"{where}[{i}]", _HIDDEN)
        for i in reversed(drop):
            del a[i]

    # -- annotations --
    def _annots(self, page: Any, arr: Any, where: str) -> None:
        drop: list[int] = []
        push, sanitize = self._push, self.embedded == "sanitize"
        for i, a in enumerate(arr):
            # _kind(a) != "d", inlined: only a pikepdf object has a type code
            if id(getattr(a, "_type_code", None)) != _ID_DICT:
                drop.append(i)
                if a is not None:
                    self.unknown["Annots non-dictionary"] += 1
                continue
            sub = name_str(a.get("/Subtype"))
            table = ANNOTS.get(sub)
            if table is not None and (sub != "/FileAttachment" or sanitize):
                push(a, "Annot", where, table)
                continue
            drop.append(i)
            self._drop_annot(page, a, self._where(a, f"{where} annotation {i + 1}"))
        for i in reversed(drop):
            del arr[i]

    def _drop_annot(self, page: Any, a: Any, where: str) -> None:
        sub = a.get("/Subtype")
        shown = f"{name_str(sub)[1:]} annotation" if isinstance(sub, Name) and name_str(sub) \
            else "annotation of a damaged or missing type"
        flat = self._flatten(page, a)
        kept = " (its appearance kept as page content)" if flat else ""
        if name_str(sub) in RICH_SUBTYPES:
            self._add("pdf.rich_media", where, shown + kept)
        elif sub == Name.FileAttachment:
            self._add("pdf.embedded_file", where, "file attachment annotation")
        else:
            self._add("pdf.other_annotation", where, shown + " not on the allow-list" + kept)
        if a.is_indirect:  # other references (structure tree, popups) must not carry it on
            for key in list(a.keys()):
                _del(a, key)

    def _flatten(self, page: Any, a: Any) -> bool:
        """Draw the annotation's visible normal appearance into the page, as a reader would show it."""
        if name_str(a.get("/Subtype")) in ("/FileAttachment", "/Popup"):
            return False
        flags = a.get("/F", 0)
        if isinstance(flags, int) and flags & (2 | 32):  # Hidden, NoView
            return False
        ap = a.get("/AP")
        n = ap.get("/N") if _kind(ap) == "d" else None
        if _kind(n) == "d":
            state = a.get("/AS")
            n = n.get(state) if isinstance(state, Name) and state in n else None
        if _kind(n) != "S":
            return False
        rect, bbox = _norm(a.get("/Rect")), _norm(n.get("/BBox"))
        if rect is None or bbox is None:
            return False
        m = n.get("/Matrix")
        try:
            ma, mb, mc, md, me, mf = (float(x) for x in m) if _kind(m) == "a" else (1, 0, 0, 1, 0, 0)
        except (TypeError, ValueError):
            return False
        xs, ys = [], []
        for x, y in ((bbox[0], bbox[1]), (bbox[2], bbox[1]), (bbox[0], bbox[3]), (bbox[2], bbox[3])):
            xs.append(ma * x + mc * y + me)
            ys.append(mb * x + md * y + mf)
        w, h = max(xs) - min(xs), max(ys) - min(ys)
        if w <= 0 or h <= 0 or rect[2] <= rect[0] or rect[3] <= rect[1]:
            return False
        sx, sy = (rect[2] - rect[0]) / w, (rect[3] - rect[1]) / h
        tx, ty = rect[0] - sx * min(xs), rect[1] - sy * min(ys)
        res = page.get("/Resources")
        if _kind(res) != "d":
            res = page.Resources = pikepdf.Dictionary()
        xo = res.get("/XObject")
        if _kind(xo) != "d":
            xo = res.XObject = pikepdf.Dictionary()
        self._flat += 1
        name = f"/CdrAnnot{self._flat}"
        stream = n if n.is_indirect else self.pdf.make_indirect(n)
        stream.Type, stream.Subtype = Name.XObject, Name.Form
        xo[name] = stream
        pg = pikepdf.Page(page)
        if page.objgen not in self._wrapped:  # the page's own graphics state may be left unbalanced
            self._wrapped.add(page.objgen)
            pg.contents_add(self._own(b"q\n"), prepend=True)
            pg.contents_add(self._own(b"\nQ\n"))
        pg.contents_add(self._own(f"q {sx:.6f} 0 0 {sy:.6f} {tx:.4f} {ty:.4f} cm {name} Do Q\n".encode()))
        self._push(stream, "Form", f"flattened {name}")
        return True

    def _own(self, data: bytes) -> Any:
        """A content stream the walk writes itself (reached, nothing to check)."""
        s = self.pdf.make_stream(data)
        self._visited.add(s.objgen)
        return s


def apply(pdf: pikepdf.Pdf, *, links: str, embedded: str, labels: Callable[[], dict[tuple[int, int], str]],
          tick: Callable[[], None] | None = None,
          on_attachment: Callable[[Any, Any, str], list[Threat]] | None = None) -> list[Threat]:
    """Cut the rebuilt document down to its allow-list; returns what was removed or noted. `labels` makes
    the readable locations of pages and annotations, called once there is something to report."""
    return AllowList(pdf, links=links, embedded=embedded, labels=labels, tick=tick, on_attachment=on_attachment).run()


# ---- stream data ----------------------------------------------------------------------------------------
_RAW_NAME = re.compile(rb"/([A-Za-z0-9#._+\-]{2,40})")
_RAW_DENY = {n[1:].encode() for n in DENY_NAMES | DENY_KEYS | _FILE_NAMES}


_HIDDEN = "a string holding names of active content (the text of another object, run into it by damage)"


def _hidden(v: Any) -> bool:
    """Whether a string value's bytes hold a name of active content (/JavaScript, /JS, /Launch, ...): text no
    reader runs, but which a lenient parser or a byte scanner downstream reads as such."""
    raw = bytes(v)
    return b"/" in raw and _raw_denied(raw)


def _raw_denied(raw: bytes) -> bool:
    for m in _RAW_NAME.finditer(raw):
        name = m.group(1)
        if b"#" in name:
            name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda x: bytes([int(x.group(1), 16)]), name)
        if name in _RAW_DENY:
            return True
    return False


def _inflate(raw: bytes, limit: int = 64 << 20) -> tuple[bytes, int | None]:
    """What the zlib data at the start of `raw` decodes to, as a reader gets it (up to damage), and where
    that data ends (None: damaged, unfinished or over `limit`)."""
    d = zlib.decompressobj()
    out: list[bytes] = []
    size, buf = 0, raw
    try:
        while buf and not d.eof and size <= limit:
            chunk = d.decompress(buf, 1 << 16)
            out.append(chunk)
            size += len(chunk)
            buf = d.unconsumed_tail
    except zlib.error:
        return b"".join(out), None
    return b"".join(out), (len(raw) - len(d.unused_data) if d.eof else None)


def trim_streams(pdf: pikepdf.Pdf) -> list[Threat]:
    """Flate stream data holding names of active content past the end of its compressed data (no part of
    its content: readers stop there), or in data that does not decode to its end, such as a JavaScript
    action's text pasted into it: cut at the end, or replaced by what decodes, as a reader shows it.
    Called only when the byte scan of the output saw such names."""
    threats = []
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Object) or obj._type_code != ObjectType.stream:
            continue
        filt = obj.get("/Filter")
        first = filt[0] if isinstance(filt, pikepdf.Array) and len(filt) == 1 else filt
        if first not in (Name.FlateDecode, Name("/Fl")):
            continue
        raw = obj.read_raw_bytes()
        if not _raw_denied(raw):
            continue
        data, end = _inflate(raw)
        if end is not None:
            if not raw[end:].strip(b"\x00\t\n\f\r "):
                continue
            obj.write(raw[:end], filter=filt, decode_parms=obj.get("/DecodeParms"))
            detail = f"{len(raw) - end} bytes after the end of a stream's compressed data"
        else:
            obj.write(zlib.compress(data), filter=filt, decode_parms=obj.get("/DecodeParms"))
            detail = "damaged compressed stream data, kept as far as it decodes"
        threats.append(Threat("pdf.hidden_data", f"object {obj.objgen[0]}", "removed", detail))
    return threats
