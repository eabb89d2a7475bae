"""OpenDocument (odt/ods/odp): rebuild the package member by member.

Macros (Basic/, Scripts/, Dialogs/), event listeners, external links and embedded objects are
removed; charts and formulas (pure-XML sub-documents) and replacement images are kept. Every XML
part is parsed safely and re-serialised; the new zip has `mimetype` first and stored and a
manifest listing exactly what is in it.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from lxml import etree

from ..errors import Encrypted, LimitExceeded, Malformed
from ..handler import Context, Handler, Rebuilt, register
from ..model import Detection, Threat
from ._catalog import OPTIONS
from ._xml import (
    BAD_MEDIA_MAGIC,
    SAFE_OPTIONS,
    attached,
    declarations,
    foreign_nodes,
    logged_error,
    remove_keep_tail,
    unwrap,
)
from .ooxml.parts import formula_threat

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "script": "urn:oasis:names:tc:opendocument:xmlns:script:1.0",
    "xlink": "http://www.w3.org/1999/xlink",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
    "form": "urn:oasis:names:tc:opendocument:xmlns:form:1.0",
    "dom": "http://www.w3.org/2001/xml-events",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "calcext": "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0",
    "chart": "urn:oasis:names:tc:opendocument:xmlns:chart:1.0",
    "config": "urn:oasis:names:tc:opendocument:xmlns:config:1.0",
}
MIMES = ("application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
         "application/vnd.oasis.opendocument.presentation")
_SUBDOC_KEEP = ("application/vnd.oasis.opendocument.chart", "application/vnd.oasis.opendocument.formula")
_XML_PARTS = {"content.xml", "styles.xml", "meta.xml", "settings.xml"}
_MACRO_DIRS = ("Basic/", "Scripts/", "Dialogs/")
_MEDIA_DIRS = ("Pictures/", "Media/", "ObjectReplacements/", "Thumbnails/")
_HREF = f"{{{NS['xlink']}}}href"
_SAFE_LINK = re.compile(r"^(https?://|mailto:)", re.I)
_SAFE_PRES_ACTIONS = {"none", "previous-page", "next-page", "first-page", "last-page", "hide", "stop", "fade-out",
                      "show"}
_HYPERLINKS = {f"{{{NS['text']}}}a", f"{{{NS['draw']}}}a"}


def _q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


_OBJECT_TAGS = {_q("draw", "object-ole"), _q("draw", "applet"), _q("draw", "plugin"), _q("draw", "floating-frame")}
_EVENT_TAGS = {_q("office", "event-listeners")}
_MACRO_TAGS = {_q("office", "script"), _q("text", "script")}
_DDE_TAGS = {_q("text", "dde-connection-decls"), _q("table", "dde-links"), _q("office", "dde-source"),
             _q("text", "section-source"), _q("table", "table-source"), _q("table", "cell-range-source")}
_UNWRAP_TAGS = {_q("text", "dde-connection"), _q("text", "execute-macro")}
# Database fields (a mail merge's): LibreOffice connects to the data source they name to fill them.
_DB_FIELDS = {_q("text", n) for n in ("database-display", "database-next", "database-row-select",
                                      "database-row-number", "database-name")}
# Where a sheet range or a pivot table imports from a database (re-read on load or every refresh-delay).
_DB_SOURCES = {_q("table", n) for n in ("database-source-sql", "database-source-table", "database-source-query")}
# A form bound to a database: LibreOffice connects when the document opens, to show the first record.
_FORM_DB_ATTRS = tuple(_q("form", n) for n in ("datasource", "command", "command-type", "filter", "order",
                                                "escape-processing", "ignore-result", "master-fields", "detail-fields"))
# settings.xml: what names a database (the mail merge's data source and its SQL command), and opaque blobs
# (the printer driver's job setup, base64) that no reader of ours looks inside.
_FORM, _CONFIG_ITEM = _q("form", "form"), _q("config", "config-item")
_DB_SETTINGS = {"CurrentDatabaseDataSource", "CurrentDatabaseCommand"}
_PRINTER_SETTINGS = {"PrinterName", "PrinterSetup", "PrinterPaperFromSetup"}


_PARSER = etree.XMLParser(**SAFE_OPTIONS, remove_blank_text=False)

# The namespaces ODF 1.3 defines for its XML parts and those LibreOffice writes (its extensions), the
# RDF metadata of manifest.rdf apart. Not: XML events (dom:, scripts' events), XForms (forms that submit
# to an address, with their xsd/xsi types), report designs and database documents.
_OASIS = "urn:oasis:names:tc:opendocument:xmlns:"
ODF_VOCAB = frozenset([_OASIS + n + ":1.0" for n in (
    "office", "style", "text", "table", "drawing", "xsl-fo-compatible", "meta", "datastyle", "svg-compatible",
    "chart", "dr3d", "form", "script", "config", "presentation", "animation", "smil-compatible")] + [
    _OASIS + "of:1.2", "http://www.w3.org/1999/xlink", "http://purl.org/dc/elements/1.1/",
    "http://www.w3.org/1998/Math/MathML", "http://www.w3.org/1999/xhtml", "http://www.w3.org/2003/g/data-view#",
    "http://www.w3.org/XML/1998/namespace",
    "http://openoffice.org/2004/office", "http://openoffice.org/2004/writer", "http://openoffice.org/2004/calc",
    "http://openoffice.org/2009/office", "http://openoffice.org/2009/table", "http://openoffice.org/2010/draw",
    "http://openoffice.org/2013/office", "http://openoffice.org/2010/chart", "http://www.w3.org/TR/css3-text/",
    "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0",
    "urn:org:documentfoundation:names:experimental:office:xmlns:loext:1.0",
    "urn:openoffice:names:experimental:ooo-ms-interop:xmlns:field:1.0",
    "urn:openoffice:names:experimental:ooxml-odf-interop:xmlns:form:1.0",
])
RDF_VOCAB = frozenset(["http://www.w3.org/1999/02/22-rdf-syntax-ns#", "http://docs.oasis-open.org/ns/office/1.2/meta/pkg#",
                       "http://docs.oasis-open.org/ns/office/1.2/meta/odf#", "http://www.w3.org/XML/1998/namespace"])
# What a part's root may be: an office: document (a formula object's content.xml is MathML).
_ROOTS = frozenset([_OASIS + "office:1.0", "http://www.w3.org/1998/Math/MathML"])
_ROOTS_RDF = frozenset(["http://www.w3.org/1999/02/22-rdf-syntax-ns#"])
_TEXT_CONTAINERS = {f"{{{NS['text']}}}p", f"{{{NS['text']}}}h"}
_PROCESS_CONTENT = f"{{{NS['office']}}}process-content"


def _drop_foreign(root: etree._Element, data: bytes | None, part: str) -> list[Threat]:
    """Elements and attributes outside ODF's namespaces go. A foreign element inside a paragraph gives
    way to its content (ODF 19.3: consumers process it, unless office:process-content="false"); any other
    goes with its content. ODF allows foreign markup and readers ignore it: reported, not a finding."""
    rdf = part.endswith("manifest.rdf")
    vocab = RDF_VOCAB if rdf else ODF_VOCAB
    rq = etree.QName(root)
    if (rq.namespace or "") not in (_ROOTS_RDF if rdf else _ROOTS):
        raise Malformed(f"{part}: the root element {rq.localname!r} is not ODF", f"{part} は ODF の XML ではありません")
    elements, attrs = foreign_nodes(root, data, vocab)
    counts: Counter = Counter()
    for el in elements:
        if not attached(el, root):
            continue
        counts[etree.QName(el).namespace or "(no namespace)"] += 1
        in_text = any(a.tag in _TEXT_CONTAINERS for a in el.iterancestors())
        if in_text and el.get(_PROCESS_CONTENT) != "false":
            for a in [a for a in el.attrib if etree.QName(a).namespace not in vocab]:
                del el.attrib[a]
            unwrap(el)
        else:
            remove_keep_tail(el)
    for el, name in attrs:
        if attached(el, root) and name in el.attrib:
            counts[etree.QName(name).namespace or ""] += 1
            del el.attrib[name]
    decls = declarations(data) if data is not None else None
    if decls is not None and any(u not in vocab for _p, u in decls):
        # Declarations of foreign namespaces go too; ODF's stay, since formulas name them by prefix (of:=).
        etree.cleanup_namespaces(root, keep_ns_prefixes=sorted({p for p, u in decls if p and u in vocab}))
    if not counts:
        return []
    top = ", ".join(f"{ns} ({n})" for ns, n in counts.most_common(4))
    return [Threat("odf.unknown_markup", part, "reported",
                   f"{sum(counts.values())} elements or attributes outside ODF's namespaces: {top}"[:300])]


def _parse(data: bytes, name: str) -> etree._Element:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Malformed(f"{name} is not well-formed XML ({exc})"[:300], f"{name} の XML が不正です") from None
    if root is None:
        raise Malformed(f"{name} is empty", f"{name} が空です")
    err = logged_error(_PARSER)
    if err:
        raise Malformed(f"{name} is not well-formed XML ({err})"[:300], f"{name} の XML が不正です")
    return root


def _norm(href: str) -> str:
    h = href.strip()
    while h.startswith("./"):
        h = h[2:]
    return h


def _media_plugin(el: etree._Element, members: set[str]) -> bool:
    """A sound or video inside the file (Media/), played by LibreOffice's own player: kept like PPTX
    media. Any other plugin, or media by address, is an object and goes."""
    if el.tag != _q("draw", "plugin") or el.get(_q("draw", "mime-type")) != "application/vnd.sun.star.media":
        return False
    href = el.get(_HREF) or ""
    return _is_internal(href, members) and posixpath.normpath(_norm(href)).startswith(_MEDIA_DIRS)


def _is_internal(href: str, members: set[str]) -> bool:
    h = _norm(href)
    if not h or h.startswith("#"):
        return True
    if ":" in h or h.startswith(("/", "\\", "../")) or ".." in h.split("/"):
        return False
    h = posixpath.normpath(h)
    return h in members or any(m.startswith(h.rstrip("/") + "/") for m in members)


# --- formulas ------------------------------------------------------------------------------------
# Attributes that hold a formula (or a cell address, which may name another document) in the
# spreadsheet, text and style vocabularies; draw:formula (shape geometry) is another language.
_FORMULA_NS = {NS["table"], NS["text"], NS["style"], NS["calcext"]}
_FORMULA_ATTRS = {"formula", "condition", "expression", "cell-range-address", "base-cell-address"}
_CALCEXT_VALUE = _q("calcext", "value")
# "of:=", "oooc:=", "msoxl:=" (namespace of the formula syntax), or Writer's "ooow:".
# The condition keywords of ODF 1.3 (19.477 style:condition), exactly and case-sensitively: anything
# else ("cell-content-WEBSERVICE(") is left for the formula rules to judge.
_CONDITION_FUNCS = re.compile(
    r"(?<![\w.-])(?:is-true-formula|cell-content|cell-content-is-between|cell-content-is-not-between"
    r"|cell-content-is-in-list|cell-content-is-whole-number|cell-content-is-decimal-number"
    r"|cell-content-is-date|cell-content-is-time|cell-content-text-length"
    r"|cell-content-text-length-is-between|cell-content-text-length-is-not-between)\(")
_SYNTAX_PREFIX = re.compile(r"^\s*(?:[A-Za-z][\w.\-]*:(?!//))?\s*=?")
_DQ_STRING = re.compile(r'"(?:[^"]|"")*"')
_SQ_NAME = re.compile(r"'((?:[^']|'')*)'")
# A quoted name that is a URL or path: ['file:///x.ods'#$Sheet1.A1], 'http://h/x.ods'#...
_SOURCE = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:|/|\\\\)")
# LibreOffice functions that talk to other programs; the Excel list is shared (DANGEROUS_FUNCS).
_ODF_FUNCS = re.compile(r"(?i)(?<![A-Za-z0-9_])(DDE)\s*\(")
_FILE_SCHEME = re.compile(r"(?i)file:")
_INDIRECT = re.compile(r"(?i)(?<![A-Za-z0-9_.])INDIRECT\s*\(")


def odf_formula_threat(value: str) -> str | None:
    """Why an ODF formula or cell address is active content (None when it is safe).

    ODF syntax differs from Excel's (`;` separators, `[.A1]` references, `'doc'#$Sheet.A1` links to other
    documents), so the ODF-only external reference forms are checked here and the rest goes to the rules
    the OOXML handler applies to Excel formulas."""
    text = _SYNTAX_PREFIX.sub("", value, count=1)
    # Conditional-format wrappers (is-true-formula(...), cell-content-is-between(...)) are ODF
    # syntax, not functions: FORMULA( inside "is-true-formula(" is not Excel's FORMULA().
    text = _CONDITION_FUNCS.sub("(", text)
    if not text.strip():
        return None
    bare = _DQ_STRING.sub('""', text)
    for m in _SQ_NAME.finditer(bare):
        after = bare[m.end():].lstrip()
        if after.startswith("#") or _SOURCE.match(m.group(1)):
            return f"external document reference ={text[:80]}"
    unquoted = _SQ_NAME.sub("''", bare)
    if "#$" in unquoted.replace(" ", "") or "://" in unquoted or _FILE_SCHEME.search(unquoted):
        return f"external document reference ={text[:80]}"
    m = _ODF_FUNCS.search(bare)
    if m:
        return f"{m.group(1).upper()}() in ={text[:80]}"
    # INDIRECT("'file:///x.ods'#$Sheet1.A1") makes LibreOffice load the other document.
    if _INDIRECT.search(bare):
        for s in _DQ_STRING.findall(text):
            if "#" in s or "://" in s or _FILE_SCHEME.search(s):
                return f"INDIRECT() to another document ={text[:80]}"
    verdict = formula_threat(text, "web")
    return verdict[1] if verdict else None


def _where(el: etree._Element, part: str, attr: str) -> str:
    table = next((a.get(_q("table", "name")) for a in el.iterancestors(_q("table", "table"))), None)
    at = f"{etree.QName(el).localname}@{etree.QName(attr).localname}"
    return f"{part}: {table}: {at}" if table else f"{part}: {at}"


def _disarm_formulas(root: etree._Element, part: str) -> list[Threat]:
    """Dangerous formulas go; a cell or field keeps its cached value and displayed text."""
    threats: list[Threat] = []
    drop: list[etree._Element] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for k, v in list(el.attrib.items()):
            ns, _, local = k[1:].partition("}")
            if not ((ns in _FORMULA_NS and local in _FORMULA_ATTRS) or k == _CALCEXT_VALUE):
                continue
            why = odf_formula_threat(v)
            if why is None:
                continue
            threats.append(Threat("odf.formula", _where(el, part, k), "removed", why[:200]))
            holder = etree.QName(el).localname
            if holder in ("content-validation", "named-range", "named-expression", "map", "condition"):
                drop.append(el)  # the rule or name itself is the formula; cells keep their values
            elif holder in ("color-scale-entry", "data-bar-entry", "formatting-entry"):
                drop.append(el.getparent())  # an entry cannot go alone (fixed count per scale)
            else:
                del el.attrib[k]  # cell or field: office:*value and the text stay
    gone_validations = set()
    for el in drop:
        if el is None or el.getparent() is None:
            continue
        if el.tag == _q("table", "content-validation"):
            gone_validations.add(el.get(_q("table", "name")))
        parent = el.getparent()
        remove_keep_tail(el)
        if len(parent) == 0 and etree.QName(parent).localname in ("content-validations", "conditional-format",
                                                                  "named-expressions"):
            remove_keep_tail(parent)
    if gone_validations:
        attr = _q("table", "content-validation-name")
        for el in root.iter(_q("table", "table-cell")):
            if el.get(attr) in gone_validations:
                del el.attrib[attr]
    # A validation may run a macro (also an application-wide one) on invalid input.
    for el in list(root.iter(_q("table", "error-macro"))):
        threats.append(Threat("odf.macro", f"{part}: error-macro", "removed", (el.get(_q("table", "name")) or "")[:200]))
        remove_keep_tail(el)
    return threats


def _disarm_databases(root: etree._Element, part: str) -> list[Threat]:
    """What makes LibreOffice connect to a database (a server's address, a file or folder path, or a data
    source registered on the reader's machine): database fields give way to their text, a form loses its
    binding (its controls stay), a sheet range or pivot table its import (the cells keep what they show; a
    pivot table cannot stand without a source and goes, its output cells stay), settings.xml the mail
    merge's data source. Printer settings go without a word: the driver's job setup is an opaque blob, and
    a printer named by a UNC path (\\\\server\\printer, common in offices) is a server LibreOffice may ask
    for its metrics; the reader's own printer is the right one anyway."""
    threats: list[Threat] = []
    found = list(root.iter(*_DB_FIELDS, *_DB_SOURCES, _FORM, _CONFIG_ITEM))  # one walk of the tree
    for el in [e for e in found if e.tag in _DB_FIELDS]:
        name = el.get(_q("text", "database-name")) or ""
        threats.append(Threat("odf.external_link", f"{part}: {etree.QName(el).localname}", "neutralized",
                              f"database field ({name[:150]}); its text kept"))
        unwrap(el)
    for el in [e for e in found if e.tag == _FORM]:
        if any(a in el.attrib for a in _FORM_DB_ATTRS):
            threats.append(Threat("odf.external_link", f"{part}: form {el.get(_q('form', 'name')) or ''}".rstrip(),
                                  "neutralized", f"form bound to the database "
                                  f"{(el.get(_q('form', 'datasource')) or '(none named)')[:150]}"))
            for a in _FORM_DB_ATTRS:
                el.attrib.pop(a, None)
    for el in [e for e in found if e.tag in _DB_SOURCES]:
        if not attached(el, root):
            continue  # a second source of a pivot table removed already
        parent = el.getparent()
        what = (el.get(_q("table", "database-name")) or "")[:150]
        if parent is not None and parent.tag == _q("table", "data-pilot-table"):
            threats.append(Threat("odf.external_link", f"{part}: data-pilot-table", "removed",
                                  f"pivot table fed from the database {what}; its cells kept"))
            tables = parent.getparent()
            remove_keep_tail(parent)
            if tables is not None and len(tables) == 0 and tables.getparent() is not None:
                remove_keep_tail(tables)  # the list may not be empty
        elif parent is not None:
            threats.append(Threat("odf.external_link", f"{part}: {etree.QName(parent).localname}", "removed",
                                  f"range imported from the database {what}; its cells kept"))
            remove_keep_tail(el)
            parent.attrib.pop(_q("table", "refresh-delay"), None)
    for el in [e for e in found if e.tag == _CONFIG_ITEM]:
        name = el.get(_q("config", "name")) or ""
        if name in _DB_SETTINGS and (el.text or "").strip():
            threats.append(Threat("odf.external_link", f"{part}: {name}", "removed",
                                  f"mail merge database ({name}): {(el.text or '').strip()[:150]}"))
            remove_keep_tail(el)
        elif name in _PRINTER_SETTINGS or el.get(_q("config", "type")) == "base64Binary":
            remove_keep_tail(el)
    return threats


def sanitize_xml(root: etree._Element, part: str, members: set[str], kept_objects: set[str],
                 data: bytes | None = None) -> list[Threat]:
    """Disarm one XML part in place; `kept_objects` are sub-document dirs ("Object 1") that stay; `data`, the
    bytes `root` was parsed from, spares a walk of the whole tree when they declare no foreign namespace."""
    threats: list[Threat] = _drop_foreign(root, data, part)
    for el in list(root.iter(*_EVENT_TAGS)):
        kept = []
        for lst in list(el):
            if lst.tag == _q("presentation", "event-listener"):
                action = lst.get(_q("presentation", "action"), "")
                href = lst.get(_HREF)
                if action in _SAFE_PRES_ACTIONS and (href is None or href.startswith("#")):
                    kept.append(lst)
                    continue
            el.remove(lst)
            name = lst.get(_q("script", "event-name")) or lst.get(_q("presentation", "action")) or ""
            threats.append(Threat("odf.event", f"{part}: {name}".strip(": "), "removed",
                                  (lst.get(_HREF) or lst.get(_q("script", "macro-name")) or "")[:200]))
        if not kept:
            remove_keep_tail(el)
    for el in list(root.iter(*_MACRO_TAGS)):
        threats.append(Threat("odf.macro", f"{part}: {etree.QName(el).localname}", "removed", "inline script"))
        remove_keep_tail(el)
    for el in list(root.iter(*_UNWRAP_TAGS)):
        tid = "odf.macro" if el.tag == _q("text", "execute-macro") else "odf.external_link"
        threats.append(Threat(tid, f"{part}: {etree.QName(el).localname}", "neutralized", "field text kept"))
        unwrap(el)
    for el in list(root.iter(*_DDE_TAGS)):
        threats.append(Threat("odf.external_link", f"{part}: {etree.QName(el).localname}", "removed",
                              (el.get(_HREF) or "")[:200]))
        remove_keep_tail(el)
    for el in list(root.iter(*_OBJECT_TAGS)):
        if _media_plugin(el, members):
            continue
        threats.append(Threat("odf.object", f"{part}: {etree.QName(el).localname}", "removed",
                              (el.get(_HREF) or "")[:200]))
        remove_keep_tail(el)
    for el in list(root.iter(_q("draw", "object"))):
        target = _norm(el.get(_HREF) or "").rstrip("/")
        if target in kept_objects:
            continue
        threats.append(Threat("odf.object", f"{part}: {target or 'inline object'}", "removed", "embedded object"))
        remove_keep_tail(el)
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        href = el.get(_HREF)
        if href is None:
            continue
        if el.tag in _HYPERLINKS or el.tag == _q("form", "button"):
            if _SAFE_LINK.match(href.strip()) or _is_internal(href, members):
                continue
            threats.append(Threat("odf.external_link", f"{part}: {etree.QName(el).localname}", "removed",
                                  href[:200]))
            if el.tag in _HYPERLINKS:
                unwrap(el)
            else:
                del el.attrib[_HREF]
            continue
        if _is_internal(href, members):
            continue
        if el.tag == _q("chart", "chart") and _norm(href) in ("..", ".") and "/" in part:
            continue  # a chart object's data lives in the document that contains it
        threats.append(Threat("odf.external_link", f"{part}: {etree.QName(el).localname}", "removed", href[:200]))
        for attr in ("href", "type", "show", "actuate"):
            el.attrib.pop(f"{{{NS['xlink']}}}{attr}", None)
    # A form control's picture is fetched when the document opens.
    image_data = _q("form", "image-data")
    for el in root.iter():
        v = el.get(image_data) if isinstance(el.tag, str) else None
        if v is not None and v.strip() and not _is_internal(v, members):
            threats.append(Threat("odf.external_link", f"{part}: {etree.QName(el).localname}@image-data", "removed",
                                  v[:200]))
            del el.attrib[image_data]
    threats += _disarm_databases(root, part)
    threats += _disarm_formulas(root, part)
    # Macro URLs can also hide in other attributes (form control bindings, hyperlink targets).
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for k, v in list(el.attrib.items()):
            if "vnd.sun.star.script:" in v or v.lower().startswith("macro:"):
                threats.append(Threat("odf.macro", f"{part}: {etree.QName(el).localname}@{etree.QName(k).localname}",
                                      "removed", v[:200]))
                del el.attrib[k]
    return threats


_META = NS["office"].replace(":office:", ":meta:")
_GENERATOR = re.compile(r"[^\x00-\x1f]{1,256}")


def minimal_meta(root: etree._Element) -> bool:
    """metadata = "drop": meta.xml keeps only meta:generator, which LibreOffice reads to lay out documents of
    older OpenOffice.org versions as they did (isGeneratorVersionOlderThan); True when anything went."""
    removed = False
    for meta in root.iter(_q("office", "meta")):
        kept = False
        for el in list(meta):
            text = (el.text or "").strip() if isinstance(el.tag, str) else ""
            if (el.tag == f"{{{_META}}}generator" and not kept and not len(el)
                    and _GENERATOR.fullmatch(text)):
                kept = True
                el.attrib.clear()
                el.text = text
                continue
            removed = removed or isinstance(el.tag, str)
            meta.remove(el)
    return removed


def _meta_threat(name: str) -> Threat:
    return Threat("odf.metadata", name, "reported", "document properties other than the generator dropped by policy")


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class _Package:
    """The members of an ODF zip, checked for the basic structural lies."""

    def __init__(self, ctx: Context | None, path: Path) -> None:
        limit = int((ctx.limits.max_xml_part_mb if ctx else 64) * 1024 * 1024)
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError) as exc:
            raise Malformed(f"not a readable ODF package ({exc})", "ODF パッケージとして読み取れません") from None
        infos = self.zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise Malformed("duplicate member names in the package", "パッケージ内に同名のメンバーが重複しています")
        total = sum(i.file_size for i in infos)
        max_total = int((ctx.limits.archive_total_mb if ctx else 1024) * 1024 * 1024)
        if total > max_total:
            raise LimitExceeded("the document expands beyond the size limit", "展開後のサイズが上限を超えています")
        for i in infos:
            if i.filename.startswith("/") or ".." in i.filename.split("/") or "\\" in i.filename:
                raise Malformed(f"bad member name {i.filename!r}", "不正なメンバー名が含まれています")
            if i.flag_bits & 0x1:
                raise Encrypted("the document's members are encrypted; ask the sender for a copy without a password",
                                "文書がパスワードで暗号化されています。送信者にパスワードなしの文書を依頼してください",
                                threat_id="odf.encrypted")
            if i.filename.endswith(".xml") and i.file_size > limit:
                raise LimitExceeded(f"{i.filename} is larger than the XML part limit",
                                    f"{i.filename} が XML パートのサイズ上限を超えています")
        self.infos = {i.filename: i for i in infos if not i.is_dir()}
        self.mimetype = self.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in self.infos else ""
        self.manifest: dict[str, str] = {}
        self.encrypted = False
        if "META-INF/manifest.xml" in self.infos:
            man = _parse(self.read("META-INF/manifest.xml"), "META-INF/manifest.xml")
            for fe in man.iter(_q("manifest", "file-entry")):
                self.manifest[fe.get(_q("manifest", "full-path"), "")] = fe.get(_q("manifest", "media-type"), "")
                if fe.find(_q("manifest", "encryption-data")) is not None:
                    self.encrypted = True

    def read(self, name: str) -> bytes:
        try:
            return self.zf.read(name)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise Malformed(f"member {name} of the package is damaged ({type(exc).__name__})",
                            f"パッケージの {name} が壊れています") from None

    def close(self) -> None:
        self.zf.close()


def _subdocs(pkg: _Package) -> tuple[set[str], set[str]]:
    """(kept sub-document dirs, removed sub-document dirs or binary objects)."""
    keep, drop = set(), set()
    tops = {n.split("/")[0] for n in pkg.infos if n.startswith("Object ")}
    for top in tops:
        is_dir = any(n.startswith(top + "/") for n in pkg.infos)
        media = pkg.manifest.get(top + "/", "") if is_dir else pkg.manifest.get(top, "")
        if is_dir and media in _SUBDOC_KEEP:
            keep.add(top)
        else:
            drop.add(top)
    return keep, drop


def _plan(pkg: _Package) -> tuple[list[str], list[Threat], set[str]]:
    """Which members to keep, the threats for dropped ones, and the kept sub-documents."""
    keep_docs, drop_docs = _subdocs(pkg)
    kept: list[str] = []
    threats: list[Threat] = []
    macro_seen: set[str] = set()
    for name in pkg.infos:
        top = name.split("/")[0]
        if name == "mimetype" or name == "META-INF/manifest.xml":
            continue
        if name.startswith(_MACRO_DIRS):
            if top not in macro_seen:
                macro_seen.add(top)
                threats.append(Threat("odf.macro", top + "/", "removed", "macro storage"))
            continue
        if top in drop_docs:
            if top not in macro_seen:
                macro_seen.add(top)
                threats.append(Threat("odf.object", top, "removed", pkg.manifest.get(top + "/")
                                      or pkg.manifest.get(top) or "embedded object"))
            continue
        if top in keep_docs:
            rest = name[len(top) + 1:]
            if rest in _XML_PARTS or rest.startswith("Pictures/"):
                kept.append(name)
            continue
        if name.startswith("Configurations2/"):
            data = pkg.read(name) if pkg.infos[name].file_size < 4 << 20 else b""
            if b"vnd.sun.star.script" in data or b"macro:" in data:
                threats.append(Threat("odf.macro", name, "removed", "toolbar/menu bound to a macro"))
            continue
        if name.startswith(_MEDIA_DIRS) and pkg.infos[name].file_size:
            head = pkg.read(name)[:512]
            if head[:8].startswith(BAD_MEDIA_MAGIC):
                threats.append(Threat("odf.object", name, "removed", "media part holds a program or document"))
                continue
            if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<" and not name.lower().endswith(".svg"):
                # Markup where a picture belongs (document XML, HTML): not a picture, not carried over.
                threats.append(Threat("odf.object", name, "removed", "media part holds markup"))
                continue
        if name in _XML_PARTS or name == "manifest.rdf" or name.startswith(_MEDIA_DIRS):
            kept.append(name)
            continue
        # Signatures no longer match after a rebuild; anything else is unknown and not carried over.
    return kept, threats, keep_docs


def findings(ctx: Context | None, path: Path) -> list[Threat]:
    pkg = _Package(ctx, path)
    try:
        if pkg.encrypted:
            return [Threat("odf.encrypted", "META-INF/manifest.xml", "found", "password protected")]
        kept, threats, keep_docs = _plan(pkg)
        members = set(kept)
        drop_meta = ctx is not None and ctx.options.get("metadata", "keep") == "drop"
        for name in kept:
            if name.rsplit("/", 1)[-1] in _XML_PARTS or name == "manifest.rdf":
                data = pkg.read(name)
                root = _parse(data, name)
                threats += sanitize_xml(root, name, members, keep_docs, data)
                if drop_meta and name.rsplit("/", 1)[-1] == "meta.xml" and minimal_meta(root):
                    threats.append(_meta_threat(name))
    finally:
        pkg.close()
    return [Threat(t.id, t.location, "found", t.detail) for t in threats]


def _manifest(pkg: _Package, kept: list[str], mimetype: str) -> bytes:
    m = NS["manifest"]
    root = etree.Element(f"{{{m}}}manifest", nsmap={"manifest": m})
    root.set(f"{{{m}}}version", "1.2")
    fe = etree.SubElement(root, f"{{{m}}}file-entry")
    fe.set(f"{{{m}}}full-path", "/")
    fe.set(f"{{{m}}}media-type", mimetype)
    dirs = sorted({n.split("/")[0] + "/" for n in kept if n.startswith("Object ")})
    for d in dirs:
        e = etree.SubElement(root, f"{{{m}}}file-entry")
        e.set(f"{{{m}}}full-path", d)
        e.set(f"{{{m}}}media-type", pkg.manifest.get(d, ""))
    for name in kept:
        e = etree.SubElement(root, f"{{{m}}}file-entry")
        e.set(f"{{{m}}}full-path", name)
        media = pkg.manifest.get(name) or ("text/xml" if name.endswith(".xml") else "")
        if name == "manifest.rdf":
            media = "application/rdf+xml"
        e.set(f"{{{m}}}media-type", media)
    return _serialize(root)


@register
class OdfHandler(Handler):
    family = "odf"
    mime_types = MIMES
    options = OPTIONS["odf"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return findings(ctx, path)

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        pkg = _Package(ctx, src)
        try:
            if pkg.encrypted:
                raise Encrypted("the document is password protected; ask the sender for a copy without a password",
                                "パスワードで保護された文書です。送信者にパスワードなしの文書を依頼してください",
                                threat_id="odf.encrypted")
            mimetype = pkg.mimetype if pkg.mimetype in MIMES else detection.mime
            drop_meta = ctx.options.get("metadata", "keep") == "drop"
            kept, threats, keep_docs = _plan(pkg)
            members = set(kept)
            dropped = sorted(n for n in pkg.infos if n not in members and n not in ("mimetype", "META-INF/manifest.xml")
                             and not n.startswith(_MACRO_DIRS) and not n.startswith("Object ")
                             and not n.startswith("Configurations2/"))
            if dropped:
                ctx.warn("members not carried over: " + ", ".join(dropped)[:300])
            with zipfile.ZipFile(dst, "w") as out:
                zi = zipfile.ZipInfo("mimetype", date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_STORED
                out.writestr(zi, mimetype.encode("ascii"))
                for name in kept:
                    ctx.check_time()
                    data = pkg.read(name)
                    if name.rsplit("/", 1)[-1] in _XML_PARTS or name == "manifest.rdf":
                        root = _parse(data, name)
                        threats += sanitize_xml(root, name, members, keep_docs, data)
                        if drop_meta and name.rsplit("/", 1)[-1] == "meta.xml" and minimal_meta(root):
                            threats.append(_meta_threat(name))
                        data = _serialize(root)
                    elif name.lower().endswith(".svg"):
                        # An SVG picture goes through the SVG family's sanitizer, as in OOXML.
                        from .svg import sanitize_svg

                        data, found = sanitize_svg(ctx, data, rebuild=True)
                        threats += [Threat(t.id, name, t.action, t.detail) for t in found]
                        data = data or b""
                    elif name.startswith(_MEDIA_DIRS) or "/Pictures/" in name:
                        from .image import rebuild_picture

                        data = rebuild_picture(ctx, name, data) or data  # a raster picture written anew
                    zi = zipfile.ZipInfo(name, date_time=pkg.infos[name].date_time)
                    zi.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(zi, data)
                zi = zipfile.ZipInfo("META-INF/manifest.xml", date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(zi, _manifest(pkg, kept, mimetype))
        finally:
            pkg.close()
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return odf_text(path, ctx)


# --- text rendition ------------------------------------------------------------------------------

_P = {_q("text", "p"), _q("text", "h")}
_SKIP_TEXT = {_q("text", "tracked-changes"), _q("office", "forms"), _q("text", "sequence-decls"),
              _q("table", "table-columns"), _q("office", "scripts"), _q("text", "variable-decls"),
              _q("text", "user-field-decls"), _q("office", "event-listeners"), _q("text", "note-citation")}


def _inline(el: etree._Element, out: list[str]) -> None:
    if el.text:
        out.append(el.text)
    for c in el:
        if not isinstance(c.tag, str):
            pass
        elif c.tag == _q("text", "s"):
            out.append(" " * min(int(c.get(_q("text", "c"), "1") or 1), 1000))
        elif c.tag == _q("text", "tab"):
            out.append("\t")
        elif c.tag == _q("text", "line-break"):
            out.append("\n")
        elif c.tag in _SKIP_TEXT:
            pass
        elif c.tag in _P:
            out.append("\n")
            _inline(c, out)
        else:
            _inline(c, out)
        if c.tail:
            out.append(c.tail)


def _block(el: etree._Element, lines: list[str]) -> None:
    for c in el:
        if not isinstance(c.tag, str) or c.tag in _SKIP_TEXT:
            continue
        if c.tag in _P:
            buf: list[str] = []
            _inline(c, buf)
            lines.append("".join(buf))
        elif c.tag == _q("table", "table-row"):
            cells: list[str] = []
            for cell in c:
                if cell.tag not in (_q("table", "table-cell"), _q("table", "covered-table-cell")):
                    continue
                sub: list[str] = []
                _block(cell, sub)
                txt = " ".join(s for s in sub if s)
                rep = int(cell.get(_q("table", "number-columns-repeated"), "1") or 1)
                cells.extend([txt] * (min(rep, 256) if txt else 1))
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                lines.append("\t".join(cells))
        elif c.tag == _q("draw", "page"):
            _block(c, lines)
            lines.append("")
        else:
            _block(c, lines)


def odf_text(path: Path, ctx: Context | None = None) -> str:
    pkg = _Package(ctx, path)
    try:
        if pkg.encrypted:
            raise Encrypted("the document is password protected", "パスワードで保護された文書です",
                            threat_id="odf.encrypted")
        if "content.xml" not in pkg.infos:
            raise Malformed("content.xml is missing", "content.xml がありません")
        root = _parse(pkg.read("content.xml"), "content.xml")
    finally:
        pkg.close()
    body = root.find(_q("office", "body"))
    lines: list[str] = []
    _block(body if body is not None else root, lines)
    return "\n".join(lines).strip("\n") + "\n"
