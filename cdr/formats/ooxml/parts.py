"""Element-level disarming of OOXML parts: fields, formulas, names, links, objects.

Every function works on an lxml tree already parsed with the safe parser and calls
`report(threat_id, detail)` for each finding it removes. Relationship-level decisions
(which targets survive) are made by the package rebuilder; `fix_references` then removes
or unhooks the elements that pointed at a dropped relationship.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable

from lxml import etree

from .._memo import remembered
from .._xml import SAFE_OPTIONS, bytes_literal, logged_error, remove_keep_tail, unwrap
from .const import (
    A_NS,
    AUTO_NAMES,
    C_NS,
    DANGEROUS_FUNCS,
    EP_NS,
    HYPERLINK_CALL,
    MC_NS,
    O_NS,
    P_NS,
    R_NS,
    S_NS,
    V_NS,
    W_NS,
    X_NS,
    XDR_NS,
    in_document,
    is_web_url,
    tags,
)
from .mce import tag_names

Report = Callable[[str, str], None]

_SAFE = dict(SAFE_OPTIONS, remove_comments=True, remove_pis=True, collect_ids=False)  # no xml:id table: unused, ~4% faster
PARSER = etree.XMLParser(**_SAFE)
# VML written by Excel is often not well-formed (<br> in text boxes): recover, still without DTD or network.
VML_PARSER = etree.XMLParser(recover=True, **_SAFE)


def parse(data: bytes, vml: bool = False) -> etree._Element:
    """Parse one part; raise ValueError for DTDs or anything that is not a single XML document."""
    if b"<!DOCTYPE" in data[:4096].upper():
        raise ValueError("DTD in a part")
    parser = VML_PARSER if vml else PARSER
    root = etree.fromstring(data, parser)
    if root is None:
        raise ValueError("empty part")
    err = logged_error(parser, lenient=vml)
    if err:
        raise ValueError(err)
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ValueError("DTD in a part")
    return root


def names_literal(data: bytes, root: etree._Element) -> bool:
    """True when element and attribute names appear as plain ASCII in `data` (UTF-8 or ASCII input),
    so that a byte search for a name can rule it out."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64]:
        return False
    enc = (root.getroottree().docinfo.encoding or "UTF-8").upper().replace("_", "-")
    return enc in ("UTF-8", "UTF8", "US-ASCII", "ASCII")


_VERSION_1_0 = re.compile(rb"<\?xml\s+version\s*=\s*([\"'])1\.0\1")


def canonical(data: bytes) -> bool:
    """True when keeping `data` as it is gives the same document as re-serialising its parse: XML 1.0
    in UTF-8 or ASCII (bytes_literal) with nothing the parser drops or reads differently (comments,
    processing instructions, CDATA sections, a DTD). `<` cannot appear unescaped in text or attribute
    values, so a byte search finds exactly those."""
    # bytes_literal reads the declaration itself: lxml would let a UTF-8 BOM override a declared encoding.
    if not bytes_literal(data):
        return False
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"<?xml", start):
        if not _VERSION_1_0.match(data, start):
            return False
        start = data.find(b"?>", start) + 2  # bytes_literal has checked that the declaration is closed
    # A one-byte search (memchr) first: most parts have no "!" or "?" at all after the declaration.
    return (data.find(b"!") < 0 or b"<!" not in data) and (data.find(b"?", start) < 0 or data.find(b"<?", start) < 0)


def untouched(data: bytes, role: str) -> bool:
    """Rebuild: True when byte scans prove that no disarm function would change this part (a role without
    one, a story without fields, a sheet without formulas, a slide without OLE frames or verbs; no link
    either) and its bytes are canonical."""
    if role not in _UNTOUCHED or any_token(data, _UNTOUCHED[role]) or (role == "sheet" and has_formula(data)) \
            or (role == "chart" and chart_formula(data)):
        return False
    # libxml2 caps a text node at 10 MB only while building a tree: bigger parts take the tree path.
    return len(data) <= _TREE_TEXT_CAP and not may_link(data) and canonical(data) and not _holds_tree_only(data)


_TREE_TEXT_CAP = 10_000_000


class _NoTree:
    def close(self) -> None:
        return None


# The same parser settings with no tree built: libxml2 checks everything but the namespace bindings,
# which it logs as errors instead of raising (see check_well_formed).
_CHECKER = etree.XMLParser(target=_NoTree(), **_SAFE)


def check_well_formed(data: bytes) -> None:
    """What parse() proves, at about half the cost for a part nobody needs the tree of: raise ValueError
    unless `data` is one well-formed, namespace-well-formed XML document without a DTD."""
    if b"<!DOCTYPE" in data[:4096].upper():
        raise ValueError("DTD in a part")
    try:
        etree.fromstring(data, _CHECKER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(str(exc)) from None
    err = logged_error(_CHECKER)
    if err:
        raise ValueError(err)


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(el: etree._Element) -> str:
    tag = el.tag
    return tag[1:tag.index("}")] if isinstance(tag, str) and tag.startswith("{") else ""


# ---------------------------------------------------------------- references to relationships

_REL_ATTRS = etree.XPath("//@*[namespace-uri()=$a or namespace-uri()=$b or "
                         "(namespace-uri()=$o and local-name()='relid')]")
# Elements that make no sense without their target: removed with it (others just lose the attribute).
_DROP_ON_DANGLING = frozenset([
    "hlinkClick", "hlinkHover", "hlinkMouseOver", "videoFile", "audioFile", "quickTimeFile", "wavAudioFile",
    "hyperlink", "altChunk", "attachedTemplate", "subDoc", "OLEObject", "oleObject", "oleObj", "control",
    "externalData", "externalReference", "embedRegular", "embedBold", "embedItalic", "embedBoldItalic",
    "svgBlip", "saveThroughXslt", "dataSource", "headerSource", "sourceFileName", "picture", "tablePart",
    "customProperty", "objectEmbed", "objectLink", "drawing", "legacyDrawing", "legacyDrawingHF",
    "webExtension", "embeddedFont", "userShapes", "snd",
])
_CONTAINER_TAGS = (tags(S_NS, "hyperlinks", "controls", "oleObjects", "externalReferences", "tableParts")
                   | tags(P_NS, "embeddedFontLst", "controls") | tags(W_NS, "frameset")
                   # An extension (a:ext uri=...) whose content went, e.g. an SVG picture's svgBlip.
                   | tags(A_NS, "ext", "extLst"))
_MC_ALT = f"{{{MC_NS}}}AlternateContent"


_R_URIS = (b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
           b"http://purl.oclc.org/ooxml/officeDocument/relationships")
_O_URI = b"urn:schemas-microsoft-com:office:office"
_XMLNS = re.compile(rb"xmlns:([A-Za-z_][\w.\-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
HAS_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:f|formula[12]?)[\s>/]")
# Superset of HAS_FORMULA that starts with a literal, so re skips ahead with a fast search (~5x faster).
_MAYBE_FORMULA = re.compile(rb"f(?:[\s>/]|ormula)")
_XML_WS = b" \t\r\n"


@remembered
def has_formula(data: bytes) -> bool:
    """Byte-level: may `data` hold a formula element (f, formula, formula1, formula2, any prefix)?
    Remembered for the file: the verify step asks again about the sheets written as they were read."""
    return _MAYBE_FORMULA.search(data) is not None and HAS_FORMULA.search(data) is not None


def _ref_pattern(prefix: bytes, relid_only: bool) -> re.Pattern[bytes]:
    # Starts with the literal prefix: re then jumps between occurrences instead of trying every byte.
    name = rb":relid" if relid_only else rb":[A-Za-z_][\w.\-]*"
    return re.compile(re.escape(prefix) + name + rb"\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def has_dangling(data: bytes, kept: set[str]) -> bool:
    """Byte-level check: does any r:* (or o:relid) attribute name a relationship id not in `kept`?

    Only valid when names are literal bytes (see names_literal). Any doubt (an entity in a namespace
    URI or in a value, a value that runs over markup) answers True, which only costs the slow, exact path."""
    pats: list[re.Pattern[bytes]] = []
    for m in _XMLNS.finditer(data):
        uri = m.group(2) if m.group(2) is not None else m.group(3)
        if b"&" in uri:
            return True
        if uri in _R_URIS:
            pats.append(_ref_pattern(m.group(1), False))
        elif uri == _O_URI:
            pats.append(_ref_pattern(m.group(1), True))
    if not pats:
        return False
    kept_b = {k.encode("utf-8") for k in kept}
    for pat in pats:
        pos = 0
        while True:
            m = pat.search(data, pos)
            if m is None:
                break
            s = m.start()
            if s == 0 or data[s - 1] not in _XML_WS:  # "xr:uid", text: not an attribute of that prefix
                pos = s + 1
                continue
            v = m.group(1) if m.group(1) is not None else m.group(2)
            if v and (v not in kept_b or b"&" in v or b"<" in v):
                return True
            pos = m.end()
    return False


# Elements only the tree path removes: a sheet's webPublishItems and the workbook's webPublishObjects
# (drop_web_publishing); in a part of any role, since Word and Excel find them by relationship type or
# inside a picture whatever content type the part declares, an online video's page and an XML map's
# binding (drop_outside_sources).
_WEB_PUBLISH_LISTS = ("webPublishItems", "webPublishObjects")
_WEB_PUBLISH_ITEMS = ("webPublishItem", "webPublishObject")
_OUTSIDE_SOURCES = ("webVideoPr", "DataBinding")
# Byte tokens for the tree path; "webPublish" begins all four publishing names.
WEB_PUBLISH = b"webPublish"
OUTSIDE_SOURCES = tuple(n.encode() for n in _OUTSIDE_SOURCES)
# The byte proofs look for the names among the part's start-tag names instead (names cannot be escaped;
# they are scanned for the markup proof anyway, where a byte search per token would read a 4 MB sheet
# four more times).
_TREE_ONLY = frozenset(n.encode() for n in _WEB_PUBLISH_LISTS + _WEB_PUBLISH_ITEMS + _OUTSIDE_SOURCES)


def _holds_tree_only(data: bytes) -> bool:
    return any(n.rpartition(b":")[2] in _TREE_ONLY for n in tag_names(data))


# Byte tokens per part role (see package.role_of): when none occurs, the disarm function for that
# role finds nothing. Element and attribute names cannot be escaped in XML, so with literal names a
# missing local name rules the element out. Roles absent here (the workbook) are always parsed.
TRIGGERS: dict[str, tuple[bytes, ...]] = {
    "vml": (b"Fmla",),  # FmlaMacro, and the references of FmlaLink, FmlaRange, ...
    "word_story": (b"fldChar", b"nstrText", b"fldSimple", b"Macro"),  # nstrText: instrText, delInstrText
    "word_settings": (b"mailMerge", b"smartTagType"),
    "ctrlprop": (b"fmla",),
    "drawing": (b"macro", b"textlink"),
    "slide": (b"cmd",),
    "app": (b"HyperlinkBase",),
    "chart": (),
    "table": (b"Formula",),  # calculatedColumnFormula, totalsRowFormula
    "pres": (),
    "": (),
}
# Rebuild: byte tokens without which a role's disarm function changes nothing (reported or not), and
# the reference-only elements drop_unreferenced removes: a field or OLE object in a story, an OLE object
# in a sheet (whose formulas has_formula finds), an OLE frame or a verb command on a slide, a chart's
# autoUpdate, embedded fonts. Roles absent here (app, VML, settings, the workbook, ...) are always parsed.
_UNTOUCHED: dict[str, tuple[bytes, ...]] = {
    "": (), "word_story": TRIGGERS["word_story"] + (b"OLEObject", b"attachedTemplate", b"altChunk", b"subDoc"),
    "sheet": (b"oleObject",), "slide": (b"oleObj", b"cmd"), "chart": (b"autoUpdate",), "table": (b"Formula",),
    "pres": (b"embeddedFontLst",),
}
# disarm_links, for every part: DrawingML click/hover actions and VML href/althref (a theme's a:hlink
# colour is neither). One literal first letter keeps the regex engine's fast search; the VML src
# attribute gets its own pattern (an alternation here made the scan 10x slower). XML allows blanks
# around "=": a plain b"src=" search let `src ="http://..."` through as written.
_LINK_TRIGGER = re.compile(rb"h(?:link(?:Click|Hover|MouseOver)|ref)")
_SRC_ATTR = re.compile(rb"src\s*=")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def any_token(data: bytes, tokens: tuple[bytes, ...]) -> bool:
    return any(t in data for t in tokens)


def quiet(data: bytes, role: str) -> bool:
    """Inspect only: True when a byte scan proves that parsing and disarming this part would report
    nothing (the rebuild never takes this shortcut: it parses every part)."""
    if role == "sheet":
        if has_formula(data):
            return False
    elif role not in TRIGGERS or any_token(data, TRIGGERS[role]) or (role == "chart" and chart_formula(data)):
        return False
    if may_link(data):
        return False
    return bytes_literal(data) and _plain_prolog(data) and not _holds_tree_only(data)


@remembered
def may_link(data: bytes) -> bool:
    """Byte-level, literal names only: may disarm_links find anything (hlink*, VML href)? Remembered for
    the file, as has_formula."""
    return _LINK_TRIGGER.search(data) is not None or _SRC_ATTR.search(data) is not None


def _plain_prolog(data: bytes) -> bool:
    """Only the XML declaration or processing instructions before the root element: no DTD (which
    blocks the file in the rebuild; the full parse then raises it here too) and no comment."""
    i = 0
    while True:
        j = data.find(b"<", i)
        if j < 0:
            return False
        nxt = data[j + 1:j + 2]
        if nxt == b"!":
            return False
        if nxt != b"?":
            return True
        i = data.find(b"?>", j)
        if i < 0:
            return False


def fix_references(root: etree._Element, kept: set[str]) -> None:
    """Unhook every reference (r:id, r:embed, r:link, o:relid, ...) to a relationship not in `kept`."""
    drop: list[etree._Element] = []
    for attr in _REL_ATTRS(root, a=R_NS[0], b=R_NS[1], o=O_NS):
        value = str(attr)
        if not value or value in kept:
            continue
        el = attr.getparent()
        local = _local(el)
        if local in _DROP_ON_DANGLING and not (local == "hyperlink" and _ns(el) in W_NS):
            drop.append(el)
        else:
            el.attrib.pop(attr.attrname, None)
    for el in drop:
        remove_keep_tail(el)
    tidy(root)


# The only elements that may use a kept external relationship (a web hyperlink).
_LINK_ELEMENTS = frozenset(["hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"])


def misused_links(root: etree._Element, link_ids: set[str], report: Report) -> None:
    """A web-link relationship used by anything but a hyperlink element (a picture's r:link, a template's
    r:id) would make Office fetch it when the file opens: unhook such references."""
    drop: list[etree._Element] = []
    for attr in _REL_ATTRS(root, a=R_NS[0], b=R_NS[1], o=O_NS):
        value = str(attr)
        el = attr.getparent()
        local = _local(el)
        if value not in link_ids or local in _LINK_ELEMENTS:
            continue
        report("ooxml.external_relationship", f"{local} refers to web link {value}")
        if local in _DROP_ON_DANGLING:
            drop.append(el)
        else:
            el.attrib.pop(attr.attrname, None)
    for el in drop:
        remove_keep_tail(el)


# Elements that are nothing but a reference to another part: an OLE object, a template, an imported
# chunk, a subdocument (add-ins live in parts of their own, never kept). Without a relationship id (a
# damaged file, or an r: prefix bound to another namespace, whose attribute the vocabulary removes) they
# point nowhere, yet a reader may still offer them (an object frame to activate): removed. Threat ids as
# for their relationships.
_R_CLARK = tuple(f"{{{ns}}}" for ns in R_NS)
_REFERENCE_ONLY = {
    **{t: "ooxml.ole_object" for t in tags(O_NS, "OLEObject") | tags(S_NS, "oleObject") | tags(P_NS, "oleObj")},
    **{t: "ooxml.remote_template" for t in tags(W_NS, "attachedTemplate")},
    **{t: "ooxml.alt_chunk" for t in tags(W_NS, "altChunk")},
    **{t: "ooxml.external_relationship" for t in tags(W_NS, "subDoc")},
}


def drop_unreferenced(root: etree._Element, report: Report) -> None:
    """Remove (and report) reference-only elements that carry no relationship id."""
    gone = [el for el in root.iter(*_REFERENCE_ONLY)
            if not any(v.strip() for k, v in el.attrib.items() if k.startswith(_R_CLARK))]
    for el in gone:
        report(_REFERENCE_ONLY[el.tag], f"{_local(el)} without a relationship id")
        remove_keep_tail(el)


def tidy(root: etree._Element) -> None:
    """Remove containers and mc:AlternateContent blocks that removals left empty (innermost first)."""
    for _ in range(8):
        changed = False
        for el in reversed(list(root.iter(_MC_ALT, *_CONTAINER_TAGS))):
            if el.tag == _MC_ALT:
                if all(len(branch) == 0 for branch in el):
                    remove_keep_tail(el)
                    changed = True
            elif _local(el) == "tableParts" and len(el):
                el.set("count", str(len(el)))
            elif _local(el) == "ext" and el.get("uri") is None:
                continue  # a:ext cx= cy= is a shape's size, empty by design
            elif len(el) == 0 and el.getparent() is not None:
                remove_keep_tail(el)
                changed = True
        if not changed:
            break


# ---------------------------------------------------------------- hyperlinks and actions (all parts)

_HLINKS = tags(A_NS, "hlinkClick", "hlinkHover", "hlinkMouseOver")
_SAFE_ACTIONS = ("ppaction://hlinkshowjump", "ppaction://hlinksldjump", "ppaction://customshow",
                 "ppaction://media", "ppaction://noaction")


def _action_threat(action: str) -> str:
    a = action.lower()
    if a.startswith("ppaction://macro"):
        return "ooxml.macro_reference"
    if a.startswith("ppaction://ole"):
        return "ooxml.ole_object"
    return "ooxml.hyperlink"


def disarm_links(root: etree._Element, report: Report) -> None:
    """DrawingML click/hover actions that run programs, macros or OLE verbs; VML href attributes."""
    for el in list(root.iter(*_HLINKS)):
        action = el.get("action", "").strip()
        if action and not action.lower().startswith(_SAFE_ACTIONS):
            report(_action_threat(action), f"{_local(el)} action {action[:80]}")
            remove_keep_tail(el)
    for el in root.iter(f"{{{V_NS}}}*", f"{{{O_NS}}}*"):
        for name in ("href", f"{{{O_NS}}}href", f"{{{O_NS}}}althref"):
            href = el.get(name)
            if href is not None and not href.startswith("#") and not is_web_url(href):
                report("ooxml.hyperlink", f"VML href {href[:80]}")
                del el.attrib[name]
        # A picture or fill by address (v:imagedata src=, v:fill src=) is fetched when the file opens.
        for name in ("src", f"{{{O_NS}}}src"):
            src = el.get(name)
            if src is not None and (_URL_SCHEME.match(src.strip()) or src.strip().replace("\\", "/").startswith("//")):
                report("ooxml.external_relationship", f"VML {_local(el)} picture from {src[:80]}")
                del el.attrib[name]


# ---------------------------------------------------------------- WordprocessingML

_W_FLDCHAR = tags(W_NS, "fldChar")
_W_INSTR = tags(W_NS, "instrText", "delInstrText")
_W_R = tags(W_NS, "r")
_W_FLDSIMPLE = tags(W_NS, "fldSimple")
_W_MACROS = tags(W_NS, "entryMacro", "exitMacro")
_FETCH_FIELDS = {"INCLUDEPICTURE", "INCLUDETEXT", "INCLUDE", "LINK", "IMPORT", "DATABASE", "RD"}
_QUOTED = re.compile(r'"([^"]*)"|(\S+)')


def _wattr(el: etree._Element, local: str) -> str | None:
    for ns in W_NS:
        v = el.get(f"{{{ns}}}{local}")
        if v is not None:
            return v
    return None


def classify_field(code: str, nested: bool, hyperlinks: str) -> tuple[str, str] | None:
    """The threat a field code carries, or None for ordinary fields (PAGE, TOC, MERGEFIELD, ...)."""
    code = code.strip()
    m = re.match(r"([A-Za-z]+)", code)
    if not m:
        if nested or code:
            return "ooxml.dde", f"obfuscated field code {code[:60]!r}"
        return None
    name = m.group(1).upper()
    if name in ("DDE", "DDEAUTO"):
        return "ooxml.dde", f"{name} field {code[:80]}"
    if name in _FETCH_FIELDS:
        return "ooxml.external_relationship", f"{name} field {code[:80]}"
    if name == "MACROBUTTON":
        return "ooxml.macro_reference", f"MACROBUTTON field {code[:80]}"
    if name == "HYPERLINK":
        args = [a or b for a, b in _QUOTED.findall(code[m.end():])]
        if "\\l" in args and args.index("\\l") == 0:
            return None  # a bookmark in this document
        target = next((a for a in args if not a.startswith("\\")), "")
        if target and (hyperlinks == "drop" or not is_web_url(target)):
            return "ooxml.hyperlink", f"HYPERLINK field {target[:80]}"
    return None


def disarm_word_story(root: etree._Element, opts: dict, report: Report) -> None:
    """Fields (DDE, fetching, macro buttons, bad hyperlinks) keep their displayed result as text."""
    hyperlinks = opts.get("hyperlinks", "web")
    bad: list[dict] = []
    stack: list[dict] = []
    for el in root.iter(*_W_FLDCHAR, *_W_INSTR):
        if el.tag in _W_INSTR:
            if stack and stack[-1]["state"] == "instr":
                stack[-1]["code"].append(el.text or "")
            continue
        kind = _wattr(el, "fldCharType")
        if kind == "begin":
            if stack and stack[-1]["state"] == "instr":
                stack[-1]["nested"] = True
                # A nested field before the outer keyword is complete supplies part of it
                # ({ {QUOTE "INCLUDE"}PICTURE ... }): the field is judged by text we cannot see.
                pre = "".join(stack[-1]["code"]).lstrip()
                if not pre or not re.search(r"\s", pre):
                    stack[-1]["glued"] = True
            stack.append({"begin": el, "sep": None, "end": None, "code": [], "nested": False, "state": "instr"})
        elif kind == "separate" and stack:
            stack[-1]["sep"] = el
            stack[-1]["state"] = "result"
        elif kind == "end" and stack:
            f = stack.pop()
            f["end"] = el
            _judge_field(f, hyperlinks, bad)
    while stack:
        _judge_field(stack.pop(), hyperlinks, bad)
    if bad:
        runs = list(root.iter(*_W_R))
        index = {id(r): i for i, r in enumerate(runs)}
        doomed: list[etree._Element] = []
        for f, (tid, detail) in bad:
            report(tid, detail)
            marks = [m for m in (f["begin"], f["sep"] if f["sep"] is not None else f["end"]) if m is not None]
            run_ids = [index.get(id(m.getparent()), -1) for m in marks]
            if len(run_ids) == 2 and min(run_ids) >= 0:
                for r in runs[run_ids[0] + 1:run_ids[1]]:
                    doomed.append(r)
                for r in (runs[run_ids[0]], runs[run_ids[1]]):
                    doomed.extend(c for c in r if c.tag in _W_INSTR)
            doomed.extend(m for m in (f["begin"], f["sep"], f["end"]) if m is not None)
        for el in doomed:
            if el.getparent() is not None:
                remove_keep_tail(el)
    for el in list(root.iter(*_W_FLDSIMPLE)):
        verdict = classify_field(_wattr(el, "instr") or "", False, hyperlinks)
        if verdict:
            report(*verdict)
            unwrap(el)
    for el in list(root.iter(*_W_MACROS)):
        report("ooxml.macro_reference", f"form field {_local(el)} {_wattr(el, 'val') or ''}")
        remove_keep_tail(el)


def _judge_field(f: dict, hyperlinks: str, bad: list) -> None:
    code = "".join(f["code"])
    if f.get("glued"):
        bad.append((f, ("ooxml.dde", f"field keyword completed by a nested field {code.strip()[:60]!r}")))
        return
    verdict = classify_field(code, f["nested"], hyperlinks)
    if verdict:
        bad.append((f, verdict))


_W_MAILMERGE = tags(W_NS, "mailMerge")
_W_FRAMESET = tags(W_NS, "frameset")


_W_SMART_TAG_TYPE = tags(W_NS, "smartTagType")
_W_URL = tuple(f"{{{ns}}}url" for ns in W_NS)


def disarm_word_settings(root: etree._Element, report: Report) -> None:
    # A smart tag type's url is where Word 2003/2007 downloads the tag's recognizer and actions (code) when the
    # user asks for them: an address outside the document. The type's namespace and name stay. (Excel's
    # smartTagTypes are outside the workbook vocabulary and go whole.)
    for el in root.iter(*_W_SMART_TAG_TYPE):
        for a in _W_URL:
            url = el.attrib.pop(a, None)
            if url is not None and url.strip():
                report("ooxml.external_relationship", f"smart tag download address {url[:100]}")
    for el in list(root.iter(*_W_MAILMERGE)):
        if any(_local(c) in ("connectString", "query", "dataSource", "headerSource", "odso") for c in el):
            report("ooxml.data_connection", "mail merge data source")
        remove_keep_tail(el)
    for el in list(root.iter(*_W_FRAMESET)):
        remove_keep_tail(el)


# ---------------------------------------------------------------- SpreadsheetML

_S_F = tags(S_NS, "f")
_S_V = tags(S_NS, "v")
_STRINGS = re.compile(r'"(?:[^"]|"")*"')
_QUOTED_SHEET = re.compile(r"'(?:[^']|'')*'")
# [1], [2]... index externalReferences; [0] is this workbook ("[0]!Name", how a chart names a defined range).
_EXT_IDX = re.compile(r"\[[1-9]\d*\]")
_EXT_PATH = re.compile(r"\[[^\]]*(?:\.xl\w*|:\\|\\\\|://)[^\]]*\]", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z0-9_.\u0080-\uffff]")


def _external_ref(bare: str) -> bool:
    """`[1]Sheet!A1` (an index into externalReferences) or a literal path in brackets; structured
    table references (`Table1[2020]`, `T[[#This Row],[2020]]`) are not external."""
    if "[" not in bare:
        return False
    if _EXT_PATH.search(bare):
        return True
    for m in _EXT_IDX.finditer(bare):
        i = m.start()
        depth = bare.count("[", 0, i) - bare.count("]", 0, i)
        prev = bare[i - 1] if i else ""
        if prev == "'":
            prev = bare[i - 2] if i > 1 else ""
        if depth == 0 and not (prev and _IDENT.match(prev)):
            return True
    return False
_DDE = re.compile(r"[A-Za-z0-9_.\-]+\s*\|")
_RULE_FORMULAS = tags(S_NS, "formula", "formula1", "formula2") | tags("http://schemas.microsoft.com/office/excel/2006/main", "f")


def formula_threat(text: str, hyperlinks: str, macro_sheets: set[str] | None = None) -> tuple[str, str] | None:
    """The threat a formula carries (DDE, dangerous function, external workbook, bad HYPERLINK)."""
    if not text:
        return None
    bare = _STRINGS.sub('""', text)
    unquoted = _QUOTED_SHEET.sub("''", bare)
    # "|" has no meaning in a formula outside strings and quoted names but DDE ('cmd'|'/c calc'!A0).
    if _DDE.search(unquoted) or "|" in unquoted:
        return "ooxml.dde", f"DDE formula ={text[:80]}"
    m = DANGEROUS_FUNCS.search(bare)
    if m:
        return "ooxml.dangerous_function", f"{m.group(1).upper()}() in ={text[:80]}"
    if _external_ref(bare):
        return "ooxml.external_link", f"external workbook reference ={text[:80]}"
    if macro_sheets:
        low = unquoted.lower()
        quoted = [q.lower() for q in _QUOTED_SHEET.findall(bare)]
        for name in macro_sheets:
            if f"{name}!" in low or f"'{name}'" in quoted:
                return "ooxml.xlm_macrosheet", f"reference to macro sheet {name}"
    for start in _calls(text, HYPERLINK_CALL):
        target = _literal(_first_arg(text, start))
        if target is None:
            # Built from cell values, names or functions ("http://x/?q="&A1, CONCAT(...), A1): the address
            # it opens is not in the file. Removed like any fetching function; the cell keeps its value.
            return "ooxml.hyperlink", f"HYPERLINK() with a computed target ={text[:80]}"
        if in_document(target):
            continue  # "#'歳入'!A1": a jump inside this workbook (目次 sheets), never leaves the file
        if hyperlinks == "drop" or not target or not is_web_url(target):
            return "ooxml.hyperlink", f"HYPERLINK() ={text[:80]}"
    return None


def _mask_quoted(text: str) -> str:
    """`text` with the inside of "strings" and 'quoted names' blanked, same length: a function name
    inside a string is not a call."""
    def blank(m: re.Match) -> str:
        return m.group()[0] + " " * (len(m.group()) - 2) + m.group()[-1]

    return _QUOTED_SHEET.sub(blank, _STRINGS.sub(blank, text))


def _calls(text: str, pattern: re.Pattern) -> list[int]:
    """Offsets just after the "(" of every call `pattern` matches outside strings and quoted names."""
    return [m.end() for m in pattern.finditer(_mask_quoted(text))]


def _first_arg(text: str, start: int) -> str:
    """The first argument of the call whose "(" ends at `start`: up to the first top-level "," or ";"
    (ODF's separator) or the closing ")"."""
    masked = _mask_quoted(text)
    depth = 0
    for i in range(start, len(masked)):
        c = masked[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return text[start:i]
            depth -= 1
        elif c in ",;" and depth == 0:
            return text[start:i]
    return text[start:]


_LITERALS = re.compile(r'\s*"((?:[^"]|"")*)"\s*(?:&\s*"((?:[^"]|"")*)"\s*)*')
_LITERAL = re.compile(r'"((?:[^"]|"")*)"')


def _literal(arg: str) -> str | None:
    """The text of an argument made of string literals only ("https://x.jp/" or "a" & "b"), else None."""
    if not _LITERALS.fullmatch(arg):
        return None
    return "".join(m.group(1).replace('""', '"') for m in _LITERAL.finditer(arg))



def disarm_sheet(root: etree._Element, opts: dict, report: Report) -> None:
    """Formulas become their cached values; rules with dangerous formulas are removed."""
    hyperlinks = opts.get("hyperlinks", "web")
    shared_bad: set[str] = set()
    neutral: list[etree._Element] = []
    shared: list[etree._Element] = []
    rules: list[tuple[etree._Element, tuple[str, str]]] = []
    for f in root.iter(*_S_F, *_RULE_FORMULAS):
        verdict = formula_threat(f.text or "", hyperlinks)
        if f.tag in _S_F:
            if verdict:
                report(*verdict)
                neutral.append(f)
                if f.get("t") == "shared" and f.get("si") is not None:
                    shared_bad.add(f.get("si"))
            elif f.get("t") == "shared" and not f.text:
                shared.append(f)
        elif verdict:
            rules.append((f, verdict))
    neutral.extend(f for f in shared if f.get("si") in shared_bad)
    for f in neutral:
        _formula_to_value(f)
    for el, verdict in rules:
        report(*verdict)
        rule = el.getparent()
        while rule is not None and _local(rule) not in ("cfRule", "dataValidation"):
            rule = rule.getparent()
        remove_keep_tail(rule if rule is not None else el)


_WP15_VIDEO = "{http://schemas.microsoft.com/office/word/2012/wordprocessingDrawing}webVideoPr"
_S_DATA_BINDING = tags(S_NS, _OUTSIDE_SOURCES[1])
_HTML_SRC = re.compile(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.I)


def drop_outside_sources(root: etree._Element, report: Report) -> None:
    """Word's online video (wp15:webVideoPr): its embeddedHtml is a web page (an iframe) that Word shows in
    a browser frame when the picture is clicked; the poster picture stays. An XML map's DataBinding: Excel
    loads the map's data from a file or web address (or a connection); the map stays, unbound."""
    for el in list(root.iter(_WP15_VIDEO, *_S_DATA_BINDING)):
        if el.tag == _WP15_VIDEO:
            html = el.get("embeddedHtml") or ""
            m = _HTML_SRC.search(html)
            report("ooxml.online_video", f"online video shown as a web page: {(m.group(1) if m else html)[:100]}")
        else:
            where = el.get("FileBindingName") or (f"connection {el.get('ConnectionID')}" if el.get("ConnectionID")
                                                  else "data inside the map")
            report("ooxml.data_connection", f"XML map bound to {where[:100]}")
        remove_keep_tail(el)


_XSD = "{http://www.w3.org/2001/XMLSchema}"
_S_SCHEMA = tags(S_NS, "Schema")
_S_MAP_INFO = tags(S_NS, "MapInfo")
_XSD_REFERENCES = (_XSD + "import", _XSD + "include", _XSD + "redefine")
# A Schema ID as Excel writes them ("Schema2"): a name no resolver could take for a file or an address,
# whatever ID the sender gave a Schema ("x.xsd" would be a file beside the workbook).
_SCHEMA_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def disarm_map_schemas(root: etree._Element, report: Report) -> None:
    """An XML map's embedded schema (xl/xmlMaps.xml, MapInfo/Schema/xsd:schema) stays: Excel needs it to
    import and export the mapped cells. What would make a schema processor read another schema goes: a
    schemaLocation that names anything but a Schema of this part by a plain ID (Excel joins the schemas
    of a map by their IDs), with the include or redefine it belongs to (an import keeps its namespace).
    Schema markup anywhere else in the part is dropped: Excel reads it nowhere else."""
    schemas = [s for s in root if s.tag in _S_SCHEMA] if root.tag in _S_MAP_INFO else []
    ids = {s.get("ID") for s in schemas} - {None}
    for el in list(root.iter(_XSD + "*")):
        parent = el.getparent()
        if parent is not None and not parent.tag.startswith(_XSD) and not (
                el.tag == _XSD + "schema" and any(parent is s for s in schemas)):
            remove_keep_tail(el)
    for el in list(root.iter(*_XSD_REFERENCES)):
        where = el.get("schemaLocation")
        if where is None or (where in ids and _SCHEMA_ID.fullmatch(where)):
            continue
        report("ooxml.external_relationship", f"XML map schema {el.tag[len(_XSD):]} from {where[:100]}")
        if el.tag == _XSD + "import":
            del el.attrib["schemaLocation"]
        else:
            remove_keep_tail(el)


_B_SOURCES = tags(("http://schemas.openxmlformats.org/officeDocument/2006/bibliography",
                   "http://purl.oclc.org/ooxml/officeDocument/bibliography"), "Sources")
# Word formats citations with an XSLT from its own Bibliography\Style folder, named by file name ("\APA.XSL",
# "/APA.XSL" from python-docx); the standard calls the attribute a path.
_STYLE_FILE = re.compile(r"[\\/]?[A-Za-z0-9 _-][A-Za-z0-9 ._-]{0,127}\.xslt?", re.I)


def disarm_bibliography(root: etree._Element, report: Report) -> None:
    """A bibliography's style (Sources SelectedStyle, URI) is an XSLT Word runs over the sources when it
    formats the citations. Only a plain file name stays (Word looks it up in its own style folder); a path
    or an address elsewhere goes, and Word uses its default style. The sources themselves stay."""
    for el in root.iter(*_B_SOURCES):
        style = el.get("SelectedStyle")
        if style is not None and (not _STYLE_FILE.fullmatch(style) or ".." in style):
            report("ooxml.external_relationship", f"bibliography style from {style[:100]}")
            del el.attrib["SelectedStyle"]
        if el.get("URI"):
            report("ooxml.external_relationship", f"bibliography style at {el.get('URI', '')[:100]}")
        el.attrib.pop("URI", None)


_S_WEB_PUBLISH = tags(S_NS, *_WEB_PUBLISH_LISTS)
_S_WEB_PUBLISH_ITEM = tags(S_NS, *_WEB_PUBLISH_ITEMS)


def drop_web_publishing(root: etree._Element, report: Report) -> None:
    """A sheet's webPublishItems, the workbook's webPublishObjects: Excel publishes a web page to each
    destinationFile, on every save when autoRepublish is on. The path is the sender's choice (a UNC path
    is a write to their server, and an NTLM handshake with it) and no relationship names it, so the link
    removal never sees it. Removed whole, and any item outside its list; a clerk can publish again by hand."""
    lists = list(root.iter(*_S_WEB_PUBLISH))
    for el in lists:
        remove_keep_tail(el)
    strays = list(root.iter(*_S_WEB_PUBLISH_ITEM))  # what is left once the lists are gone
    for item in [i for el in lists for i in el.iter(*_S_WEB_PUBLISH_ITEM)] + strays:
        report("ooxml.web_publish", f"web page published to {(item.get('destinationFile') or '?')[:100]}")
    for item in strays:
        remove_keep_tail(item)


_S_TABLE_FORMULAS = tags(S_NS, "calculatedColumnFormula", "totalsRowFormula")


def disarm_table(root: etree._Element, opts: dict, report: Report) -> None:
    """A table's column formula (Excel writes it into each row added) and totals formula are formulas like a
    cell's: a dangerous one goes (the column becomes a plain one; the cells keep their values)."""
    for el in list(root.iter(*_S_TABLE_FORMULAS)):
        verdict = formula_threat(el.text or "", opts.get("hyperlinks", "web"))
        if verdict is None:
            continue
        report(verdict[0], f"table {etree.QName(el).localname}: {verdict[1]}")
        column = el.getparent()
        remove_keep_tail(el)
        if column is not None and etree.QName(el).localname == "totalsRowFormula" \
                and column.get("totalsRowFunction") == "custom":
            del column.attrib["totalsRowFunction"]


def _formula_to_value(f: etree._Element) -> None:
    cell = f.getparent()
    remove_keep_tail(f)
    if cell is None:
        return
    v = next(iter(cell.iter(*_S_V)), None)
    if cell.get("t") == "str":
        ns = _ns(cell)
        text = v.text if v is not None else ""
        if v is not None:
            cell.remove(v)
        cell.set("t", "inlineStr")
        is_ = etree.SubElement(cell, f"{{{ns}}}is")
        t = etree.SubElement(is_, f"{{{ns}}}t")
        t.text = text or ""
        if t.text != t.text.strip():
            t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    elif v is None:
        cell.attrib.pop("t", None)


_S_SHEET = tags(S_NS, "sheet")
_S_DEFNAME = tags(S_NS, "definedName")
_S_VIEW = tags(S_NS, "workbookView")


def unhide_sheets(root: etree._Element) -> tuple[list[str], list[str]]:
    """A veryHidden sheet (which Excel's 再表示 does not list) becomes hidden, so that a clerk can find it;
    (names made hidden, names still hidden)."""
    made, hidden = [], []
    for sh in root.iter(*_S_SHEET):
        state = sh.get("state")
        if state == "veryHidden":
            sh.set("state", "hidden")
            made.append(sh.get("name") or "")
        elif state == "hidden":
            hidden.append(sh.get("name") or "")
    return made, hidden


def disarm_workbook(root: etree._Element, kept: set[str], opts: dict, report: Report) -> None:
    """Drop sheets whose part was removed, renumber local names, remove macro and dangerous names and web
    publishing targets."""
    hyperlinks = opts.get("hyperlinks", "web")
    drop_web_publishing(root, report)
    sheets = list(root.iter(*_S_SHEET))
    removed_idx: set[int] = set()
    removed_names: set[str] = set()
    for i, sh in enumerate(sheets):
        rid = next((sh.get(f"{{{ns}}}id") for ns in R_NS if sh.get(f"{{{ns}}}id") is not None), None)
        if rid is not None and rid not in kept:
            removed_idx.add(i)
            removed_names.add((sh.get("name") or "").lower())
            remove_keep_tail(sh)
    if sheets and len(removed_idx) == len(sheets):
        raise ValueError("the workbook holds only macro or dialog sheets")
    remap = {}
    n = 0
    for i in range(len(sheets)):
        if i not in removed_idx:
            remap[i] = n
            n += 1
    for dn in list(root.iter(*_S_DEFNAME)):
        name = dn.get("name") or ""
        verdict = None
        if AUTO_NAMES.match(name):
            verdict = ("ooxml.xlm_macrosheet", f"macro start-up name {name}")
        elif any(dn.get(a) in ("1", "true") for a in ("xlm", "function", "vbProcedure")):
            verdict = ("ooxml.xlm_macrosheet", f"macro name {name}")
        else:
            verdict = formula_threat(dn.text or "", hyperlinks, removed_names)
        local = dn.get("localSheetId")
        if verdict is None and local is not None and local.isdigit() and removed_idx:
            if int(local) in removed_idx:
                verdict = ("ooxml.xlm_macrosheet", f"name {name} local to a macro sheet")
            elif int(local) in remap:
                dn.set("localSheetId", str(remap[int(local)]))
        if verdict:
            report(*verdict)
            remove_keep_tail(dn)
    if removed_idx:
        for view in root.iter(*_S_VIEW):
            for attr in ("activeTab", "firstSheet"):
                v = view.get(attr)
                if v is not None and v.isdigit():
                    view.set(attr, str(remap.get(int(v), 0)))
    for el in list(root.iter(*tags(S_NS, "definedNames"))):
        if len(el) == 0:
            remove_keep_tail(el)


# A form control's cell link, list range, picture and text sources, a shape's text link: references, so
# formulas (another workbook, DDE, a fetching function) are judged as in cells.
_CONTROL_FORMULAS = ("fmlaLink", "fmlaRange", "fmlaTxbx", "fmlaGroup", "fmlaPict")
_VML_FORMULAS = tuple(f"{{{X_NS}}}{n}" for n in ("FmlaLink", "FmlaRange", "FmlaTxbx", "FmlaGroup", "FmlaPict"))


def disarm_ctrlprop(root: etree._Element, report: Report) -> None:
    for el in root.iter():
        if el.get("fmlaMacro"):
            report("ooxml.macro_reference", f"form control macro {el.get('fmlaMacro')[:60]}")
            del el.attrib["fmlaMacro"]
        for name in _CONTROL_FORMULAS:
            verdict = formula_threat(el.get(name) or "", "web")
            if verdict:
                report(verdict[0], f"form control {name}: {verdict[1]}")
                del el.attrib[name]


def disarm_drawing(root: etree._Element, report: Report) -> None:
    """Shapes in a worksheet drawing that run a macro when clicked."""
    for el in root.iter(f"{{{XDR_NS[0]}}}*", f"{{{XDR_NS[1]}}}*"):
        if el.get("macro"):
            report("ooxml.macro_reference", f"shape macro {el.get('macro')[:60]}")
            el.set("macro", "")
        verdict = formula_threat(el.get("textlink") or "", "web")
        if verdict:
            report(verdict[0], f"shape text link: {verdict[1]}")
            del el.attrib["textlink"]  # the shape keeps the text it shows


def disarm_vml(root: etree._Element, report: Report) -> None:
    for el in list(root.iter(f"{{{X_NS}}}FmlaMacro")):
        report("ooxml.macro_reference", f"VML control macro {(el.text or '')[:60]}")
        remove_keep_tail(el)
    for el in list(root.iter(f"{{{O_NS}}}OLEObject")):
        remove_keep_tail(el)
    for el in list(root.iter(*_VML_FORMULAS)):
        verdict = formula_threat(el.text or "", "web")
        if verdict:
            report(verdict[0], f"form control {etree.QName(el).localname}: {verdict[1]}")
            remove_keep_tail(el)


# ---------------------------------------------------------------- PresentationML

_P_FRAME = tags(P_NS, "graphicFrame")
_P_OLEOBJ = tags(P_NS, "oleObj")
_P_PIC = tags(P_NS, "pic")
_P_TIMING = tags(P_NS, "timing")
_P_CMD = tags(P_NS, "cmd")
_P_EMBFONTS = tags(P_NS, "embeddedFontLst")


def disarm_slide(root: etree._Element, kept: set[str], report: Report) -> None:
    """OLE frames whose object was removed become their preview picture; OLE verbs leave the timeline."""
    for frame in list(root.iter(*_P_FRAME)):
        ole = next(iter(frame.iter(*_P_OLEOBJ)), None)
        if ole is None:
            continue
        rids = [v for o in frame.iter(*_P_OLEOBJ) for ns in R_NS if (v := o.get(f"{{{ns}}}id"))]
        if rids and all(r in kept for r in rids):
            continue
        _frame_to_picture(frame)
    for timing in list(root.iter(*_P_TIMING)):
        if any(c.get("type") == "verb" for c in timing.iter(*_P_CMD)):
            report("ooxml.ole_object", "animation that activates an OLE object")
            remove_keep_tail(timing)


def _frame_to_picture(frame: etree._Element) -> None:
    pics = list(frame.iter(*_P_PIC))
    if not pics:
        remove_keep_tail(frame)
        return
    pic = copy.deepcopy(pics[-1])  # the mc:Fallback picture is the most widely readable one
    nv_frame = next(iter(frame.iter(*tags(P_NS, "cNvPr"))), None)
    nv_pic = next(iter(pic.iter(*tags(P_NS, "cNvPr"))), None)
    if nv_frame is not None and nv_pic is not None:
        for attr in ("id", "name"):
            if nv_frame.get(attr) is not None:
                nv_pic.set(attr, nv_frame.get(attr))
    sppr = next(iter(pic.iter(*tags(P_NS, "spPr"))), None)
    xfrm_frame = next(iter(frame.iterchildren(*tags(P_NS, "xfrm"))), None)
    if sppr is not None and xfrm_frame is not None and next(iter(sppr.iter(*tags(A_NS, "xfrm"))), None) is None:
        ans = A_NS[0] if _ns(sppr) == P_NS[0] else A_NS[1]
        x = etree.Element(f"{{{ans}}}xfrm")
        for child in xfrm_frame:
            x.append(etree.Element(f"{{{ans}}}{_local(child)}", dict(child.attrib)))
        sppr.insert(0, x)
    parent = frame.getparent()
    parent.replace(frame, pic)


def disarm_presentation(root: etree._Element) -> None:
    for el in list(root.iter(*_P_EMBFONTS)):
        remove_keep_tail(el)


# ---------------------------------------------------------------- charts and properties

_C_AUTOUPDATE = tags(C_NS, "autoUpdate")


# Any chart's data reference: c:f, c15:f (label ranges), cx:f (Office 2016 charts).
_ANY_F = "{*}f"
# An f element whose text may call a function, name another workbook or hold DDE: the cheap byte test
# that sends a chart through the tree ("&" for character references; a CDATA section anywhere counts too).
_CHART_F = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?f(?:\s[^>]*)?>[^<]*?[\[|(&]|<!\[CDATA\[")


@remembered
def chart_formula(data: bytes) -> bool:
    """Byte-level: may a chart hold a data reference that disarm_chart would change?"""
    return _CHART_F.search(data) is not None


def disarm_chart(root: etree._Element, report: Report) -> None:
    """A chart's data references are formulas like a cell's: one that names another workbook (a UNC path
    makes Excel offer to update it), calls a function or holds DDE gives way to the values the chart
    caches, as Excel's Break Link does (numRef/strRef become numLit/strLit, a series name its text, a
    title or label its text as rich text); a reference in an extension goes with the extension."""
    for el in list(root.iter(*_C_AUTOUPDATE)):
        remove_keep_tail(el)
    for f in list(root.iter(_ANY_F)):
        verdict = formula_threat(f.text or "", "web")
        if verdict is None or f.getparent() is None:
            continue
        report(verdict[0], f"chart data: {verdict[1]}")
        _chart_ref_to_values(f)


def _chart_ref_to_values(f: etree._Element) -> None:
    ref = f.getparent()
    ns, local = etree.QName(ref).namespace or "", etree.QName(ref).localname
    if ns in C_NS and local in ("numRef", "strRef"):
        cache = next((c for c in ref if etree.QName(c).localname in ("numCache", "strCache")), None)
        lit = etree.Element(f"{{{ns}}}{local[:3]}Lit")
        for child in list(cache) if cache is not None else []:
            lit.append(child)
        holder = ref.getparent()
        hl = etree.QName(holder).localname if holder is not None else ""
        cached = "".join(t.text or "" for t in lit.iter(f"{{{ns}}}v"))  # the cached points' text
        if hl == "tx" and holder.getparent() is not None and etree.QName(holder.getparent()).localname == "ser":
            lit = etree.Element(f"{{{ns}}}v")  # a series name: text, not a list
            lit.text = cached
        elif hl == "tx":  # a title or a data label: its cached text as rich text
            a = A_NS[C_NS.index(ns)]  # DrawingML of the chart's own flavour (transitional or strict)
            lit = etree.Element(f"{{{ns}}}rich")
            etree.SubElement(lit, f"{{{a}}}bodyPr")
            run = etree.SubElement(etree.SubElement(etree.SubElement(lit, f"{{{a}}}p"), f"{{{a}}}r"), f"{{{a}}}t")
            run.text = cached
        ref.addnext(lit)
        lit.tail = ref.tail
        ref.getparent().remove(ref)
        return
    if ns in C_NS and local == "multiLvlStrRef":
        cat = ref.getparent()  # categories in several levels have no literal form: the axis numbers them
        remove_keep_tail(cat if cat is not None and cat.getparent() is not None else ref)
        return
    ext = next((a for a in f.iterancestors() if etree.QName(a).localname == "ext"), None)
    if ext is not None and ext.getparent() is not None:
        lst = ext.getparent()
        remove_keep_tail(ext)  # an extension (c15 label ranges, ...): optional by design
        if len(lst) == 0 and lst.getparent() is not None:
            remove_keep_tail(lst)
        return
    if local == "txData" and not any(etree.QName(c).localname == "v" for c in ref):
        etree.SubElement(ref, f"{{{etree.QName(f).namespace}}}v").text = ""
    remove_keep_tail(f)  # Office 2016 charts (cx:f) keep their cached levels


# What of docProps/app.xml changes how a file is read: LibreOffice trusts cached formula results, snaps row
# heights to Excel's 0.75 pt grid and defaults chart label flags as Office 2007 did by these two values.
_APP_KEEP = {"Application": re.compile(r"[^\x00-\x1f]{1,128}"),
             "AppVersion": re.compile(r"\d{1,3}(\.\d{1,6})?")}


def minimal_app_props(root: etree._Element) -> bool:
    """Keep only Application and AppVersion (with plausible values); True when anything else went."""
    removed = False
    seen: set[str] = set()
    for el in list(root):
        q = etree.QName(el) if isinstance(el.tag, str) else None
        pattern = _APP_KEEP.get(q.localname) if q is not None and q.namespace in EP_NS else None
        text = (el.text or "").strip()
        if pattern is None or len(el) or q.localname in seen or not pattern.fullmatch(text):
            removed = removed or isinstance(el.tag, str)
            root.remove(el)
            continue
        seen.add(q.localname)
        el.text = text
        el.attrib.clear()
    return removed


def disarm_app_props(root: etree._Element, opts: dict, report: Report) -> None:
    for el in list(root.iter(*tags(EP_NS, "HyperlinkBase"))):
        base = (el.text or "").strip()
        if base and (opts.get("hyperlinks", "web") == "drop" or not is_web_url(base)):
            report("ooxml.hyperlink", f"hyperlink base {base[:80]}")
        remove_keep_tail(el)
    for el in list(root.iter(*tags(EP_NS, "HLinks"))):
        remove_keep_tail(el)
