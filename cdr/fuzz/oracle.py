"""An independent scan of a delivered file for active content.

It shares no code with the engine's handlers: PDF objects are walked with pikepdf (object streams
included, names as pikepdf decodes them, #xx included) and the raw bytes are scanned for names too;
Office files go through oletools (olevba for macros, msodde for DDE); every XML part of a package is
scanned for elements, attributes and URL schemes that run or fetch something; archives are opened and
their members scanned in turn; HTML and SVG are scanned as markup. A finding is a short string.
"""
from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

from lxml import etree

_SAFE_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)

# ---------------------------------------------------------------- PDF

_PDF_BAD_KEYS = {"/JS", "/JavaScript", "/AA", "/Launch", "/XFA", "/RichMediaContent", "/RichMediaSettings",
                 "/EmbeddedFile", "/EmbeddedFiles", "/Win", "/Mac", "/Unix", "/ImportData", "/SubmitForm"}
_PDF_BAD_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE", "/Rendition",
                    "/Movie", "/Sound", "/RichMediaExecute", "/GoTo3DView"}
_PDF_BAD_SUBTYPES = {"/RichMedia", "/Movie", "/Sound", "/Screen", "/3D", "/FileAttachment"}
# Image codecs the rebuild decodes and never writes (JPEG and fax data it writes anew itself).
_PDF_FOREIGN_CODECS = {"/JBIG2Decode", "/JPXDecode"}
_RAW_NAME = re.compile(rb"/([A-Za-z0-9#._+\-]{2,40})")
_WEB = re.compile(r"^(https?://|mailto:)", re.I)


def _pdf_name(raw: bytes) -> str:
    return "/" + re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw).decode("latin-1")


def scan_pdf(data: bytes) -> list[str]:
    import pikepdf

    found: list[str] = []
    # Raw names anywhere in the file (also where a parser would not look), #xx decoded.
    for m in _RAW_NAME.finditer(data):
        name = _pdf_name(m.group(1))
        if name in _PDF_BAD_KEYS | _PDF_BAD_ACTIONS - {"/GoToR"} | {"/RichMedia"}:
            found.append(f"pdf raw name {name}")
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except Exception as exc:  # delivered but unreadable: a reader may still repair it
        return found + [f"pdf does not open: {type(exc).__name__}"]
    with pdf:
        for obj in pdf.objects:  # every object, those inside object streams included
            if isinstance(obj, pikepdf.Stream):
                _pdf_font_tables(obj, found)
            try:
                _pdf_walk(obj, found, 0)
            except (UnicodeDecodeError, ValueError, RuntimeError):  # an odd string: look at its bytes
                _pdf_walk_bytes(obj, found)
    return sorted(set(found))


# sfnt tables a PDF reader draws with: any other table in an output font was not rebuilt.
_FONT_TABLES = {b"head", b"hhea", b"maxp", b"loca", b"glyf", b"hmtx", b"CFF ", b"cmap", b"cvt ", b"fpgm", b"prep",
                b"gasp", b"name", b"OS/2", b"post", b"vhea", b"vmtx", b"VORG"}


def _pdf_font_tables(obj: object, found: list[str]) -> None:
    """TrueType (FontFile2: Length1 without Length2) and OpenType (FontFile3) programs: their table tags."""
    import struct

    import pikepdf

    d = obj.stream_dict
    if not (("/Length1" in d and "/Length2" not in d) or d.get("/Subtype") == pikepdf.Name.OpenType):
        return
    try:
        data = obj.read_bytes()
    except Exception:
        return
    if len(data) < 12 or data[:4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
        return
    n = struct.unpack(">H", data[4:6])[0]
    tags = {data[12 + 16 * i:16 + 16 * i] for i in range(min(n, (len(data) - 12) // 16))}
    odd = sorted(t.decode("latin-1") for t in tags - _FONT_TABLES)
    if odd:
        found.append(f"pdf font tables not rebuilt: {', '.join(odd)[:60]}")


def _raw_names(data: bytes) -> list[str]:
    return [_pdf_name(m.group(1)) for m in _RAW_NAME.finditer(data)]


def _pdf_walk_bytes(obj: object, found: list[str]) -> None:
    """An object whose values pikepdf cannot turn into text: its unparsed form, scanned for names."""
    try:
        raw = obj.unparse() if hasattr(obj, "unparse") else b""
    except Exception:
        return
    found += [f"pdf name {n}" for n in _raw_names(raw) if n in _PDF_BAD_KEYS | _PDF_BAD_ACTIONS]


def _pdf_walk(obj: object, found: list[str], depth: int) -> None:
    import pikepdf

    if depth > 12:
        return
    if isinstance(obj, pikepdf.Stream):
        obj = obj.stream_dict
    if isinstance(obj, pikepdf.Dictionary):
        for key in obj.keys():
            if key in _PDF_BAD_KEYS:
                found.append(f"pdf key {key}")
            try:
                value = obj.get(key)
            except Exception:
                continue
            if key == "/S" and isinstance(value, pikepdf.Name) and str(value) in _PDF_BAD_ACTIONS:
                found.append(f"pdf action {value}")
            elif key == "/Subtype" and isinstance(value, pikepdf.Name) and str(value) in _PDF_BAD_SUBTYPES:
                found.append(f"pdf annotation {value}")
            elif key == "/Filter" and any(str(f) in _PDF_FOREIGN_CODECS for f in (
                    value if isinstance(value, pikepdf.Array) else [value]) if isinstance(f, pikepdf.Name)):
                found.append("pdf image codec data not rebuilt")
            elif key == "/URI" and isinstance(value, pikepdf.String):
                uri = bytes(value).decode("latin-1").strip()
                if not _WEB.match(uri):
                    found.append(f"pdf URI {uri[:60]}")
            elif key == "/OpenAction" and isinstance(value, pikepdf.Dictionary) and value.get("/S") not in (
                    None, pikepdf.Name.GoTo):
                found.append(f"pdf OpenAction {value.get('/S')}")
            if isinstance(value, (pikepdf.Dictionary, pikepdf.Array)) and not value.is_indirect:
                _pdf_walk(value, found, depth + 1)
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            if isinstance(item, (pikepdf.Dictionary, pikepdf.Array)) and not item.is_indirect:
                _pdf_walk(item, found, depth + 1)


# ---------------------------------------------------------------- XML (Office parts, ODF, SVG, HTML)

# Elements that run or fetch something, by vocabulary: markup (HTML, SVG, no namespace), ODF, OOXML.
_BAD_WEB = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "foreignObject", "handler",
            "listener", "base"}
_BAD_ODF = {"execute-macro", "dde-connection-decl", "dde-connection-decls",
            "dde-source", "dde-link", "dde-links", "object-ole", "applet", "script", "submission",
            "database-display", "database-next", "database-row-select", "database-row-number", "database-name",
            "database-source-sql", "database-source-table", "database-source-query"}
_BAD_OOXML = {"OLEObject", "oleObj", "oleObject", "attachedTemplate", "altChunk", "subDoc", "webExtension",
              "entryMacro", "exitMacro", "FmlaMacro", "ddeLink", "oleLink", "mailMerge", "script",
              "webPublishItem", "webPublishObject", "webVideoPr", "DataBinding"}
_WEB_NS = {"", "http://www.w3.org/1999/xhtml", "http://www.w3.org/2000/svg"}
_XSD = "http://www.w3.org/2001/XMLSchema"
_SCHEMA_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STYLE_FILE = re.compile(r"[\\/]?[A-Za-z0-9 _-][A-Za-z0-9 ._-]*\.xslt?", re.I)  # a file in Word's style folder
_PRES = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
_XLINK = "{http://www.w3.org/1999/xlink}href"
# Presentation click actions that only move within the show.
_NAVIGATION = {"none", "previous-page", "next-page", "first-page", "last-page", "hide", "stop", "fade-out", "show"}
_ODF_REFS = {"object", "plugin", "floating-frame", "image", "a"}  # fine when they point inside the file
_BAD_ATTR_VALUE = re.compile(r"^\s*(javascript|vbscript|livescript|file|smb|ms-[a-z\-]+|shell|mhtml|res|its|"
                             r"vnd\.sun\.star\.script|macro)\s*:|^\s*\\\\", re.I)
_URL_ATTRS = {"href", "src", "action", "formaction", "target", "Target", "data", "background", "poster",
              "codebase", "image-data", "link", "url"}
_BAD_FUNC = re.compile(r"(?i)(?<![A-Za-z0-9_.])(?:_xlfn\.)?(WEBSERVICE|CALL|REGISTER|EXEC|RTD|DDE|FOPEN|"
                       r"SQL\.REQUEST|IMPORTTEXT|IMPORTCSV|FILTERXML)\s*\(|\|\s*'")
_BAD_REL = re.compile(r"vbaProject|oleObject|attachedTemplate|aFChunk|activeX|control$|externalLink|"
                      r"webextension|subDocument|frame$|customUI|ui/extensibility|xlMacrosheet|dialogsheet|"
                      r"connections|queryTable|mailMergeSource|recipientData|font$", re.I)
_BAD_CT = re.compile(r"macroEnabled|vbaProject|activex|oleobject|macrosheet|dialogsheet|externallink|"
                     r"webextension|connections|querytable", re.I)
_FIELD = re.compile(r"(?i)^\s*(DDE|DDEAUTO|INCLUDEPICTURE|INCLUDETEXT|INCLUDE|LINK|IMPORT|MACROBUTTON|"
                    r"DATABASE|RD)\b")
# Where a formula or reference is written: cells, rules, tables, chart data, form controls (and their VML),
# text links.
_FORMULA_ELEMENTS = {"f", "formula", "formula1", "formula2", "FmlaLink", "FmlaRange", "FmlaTxbx", "FmlaGroup",
                     "FmlaPict", "calculatedColumnFormula", "totalsRowFormula"}
_FORMULA_ATTRS = {"formula", "condition", "expression", "instr", "fmlaLink", "fmlaRange", "fmlaTxbx", "fmlaGroup",
                  "fmlaPict", "textlink"}
# Another workbook named by its file ([x.xlsx]) or a UNC path.
_OTHER_BOOK = re.compile(r"(?i)\[[^\]\[]*\.(?:xl[a-z]{0,2}|od[st]|csv)\]|\\\\")
_STRING = re.compile(r'"(?:[^"]|"")*"')


def _other_book(formula: str) -> bool:
    return _OTHER_BOOK.search(_STRING.sub('""', formula)) is not None  # text in quotes names nothing


_HYPERLINK_TARGET = re.compile(r'(?i)(?<![A-Za-z0-9_.])HYPERLINK\s*\(\s*("(?:[^"]|"")*")?\s*([,;)&]?)')


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def scan_xml(data: bytes, where: str) -> list[str]:
    found: list[str] = []
    try:
        root = etree.fromstring(data, etree.XMLParser(**_SAFE_PARSER))
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    map_schemas = {s.get("ID") for s in root.iter("{*}Schema")}  # an XML map joins its schemas by ID
    for el in root.iter():
        local = _local(el.tag)
        ns = el.tag[1:].split("}", 1)[0] if isinstance(el.tag, str) and el.tag.startswith("{") else ""
        odf = ns.startswith("urn:oasis:names:tc:opendocument")
        if ns == _XSD and el.get("schemaLocation") is not None and not (el.get("schemaLocation") in map_schemas
                                                                         and _SCHEMA_ID.fullmatch(el.get("schemaLocation"))):
            found.append(f"{where}: schema {local} from {el.get('schemaLocation', '')[:60]}")
        bad = _BAD_WEB if ns in _WEB_NS else _BAD_ODF if odf else _BAD_OOXML
        if local in bad:
            found.append(f"{where}: element {local}")
        if odf and local == "event-listener" and (ns.endswith(":script:1.0") or el.get(
                f"{{{_PRES}}}action", "none") not in _NAVIGATION or not el.get(_XLINK, "#").startswith("#")):
            found.append(f"{where}: event listener {el.get(f'{{{_PRES}}}action') or el.get(_XLINK, '')}"[:120])
        if odf and local == "form" and el.get(f"{{{ns}}}datasource"):
            found.append(f"{where}: form bound to {el.get(f'{{{ns}}}datasource', '')[:60]}")
        if odf and local == "config-item" and (el.text or "").strip() and el.get(
                f"{{{ns}}}name") in ("CurrentDatabaseDataSource", "CurrentDatabaseCommand"):
            found.append(f"{where}: mail merge database {(el.text or '').strip()[:60]}")
        if odf and local in _ODF_REFS - {"a", "image"}:
            href = el.get("{http://www.w3.org/1999/xlink}href", "")
            if re.match(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*:|/|\\|\.\./)", href):
                found.append(f"{where}: {local} from {href[:60]}")
        for name, value in el.attrib.items():
            alocal = _local(name)
            if alocal.lower().startswith("on") and alocal.lower() not in ("on", "onoff"):
                found.append(f"{where}: event attribute {alocal}")
            if alocal in ("macro", "fmlaMacro") and value.strip():
                found.append(f"{where}: macro attribute {value[:40]}")
            if local == "Sources" and (alocal == "URI" and value or alocal == "SelectedStyle" and not (
                    _STYLE_FILE.fullmatch(value) and ".." not in value)):
                found.append(f"{where}: bibliography style {value[:60]}")
            if local == "smartTagType" and alocal == "url" and value.strip():
                found.append(f"{where}: smart tag download {value[:60]}")
            if alocal == "action" and re.match(r"(?i)ppaction://(program|macro|ole)", value.strip()):
                found.append(f"{where}: action {value[:40]}")
            if (alocal in _URL_ATTRS or "href" in alocal.lower()) and _BAD_ATTR_VALUE.search(value):
                found.append(f"{where}: {alocal}={value[:60]}")
            if "vnd.sun.star.script" in value or value.lower().startswith("macro:"):
                found.append(f"{where}: macro URL {value[:60]}")
            if alocal in _FORMULA_ATTRS and (_BAD_FUNC.search(value) or _other_book(value)):
                found.append(f"{where}: formula {value[:60]}")
            if alocal == "instr" and _FIELD.match(value):
                found.append(f"{where}: field {value[:60]}")
            if alocal == "Type" and local == "Relationship" and _BAD_REL.search(value):
                found.append(f"{where}: relationship {value.rsplit('/', 1)[-1]}")
            if alocal == "TargetMode" and value == "External":
                target = el.get("Target", "")
                if not re.match(r"(?i)(https?://|mailto:)", target.strip()) and not target.startswith("#"):
                    found.append(f"{where}: external target {target[:60]}")
            if alocal == "ContentType" and _BAD_CT.search(value):
                found.append(f"{where}: content type {value[:60]}")
        if local in _FORMULA_ELEMENTS and el.text:
            if _BAD_FUNC.search(el.text) or _other_book(el.text):
                found.append(f"{where}: formula {el.text[:60]}")
            for m in _HYPERLINK_TARGET.finditer(el.text):
                target = (m.group(1) or "").strip('"')
                if not m.group(1) or m.group(2) == "&" or not (target.startswith("#") or re.match(
                        r"(?i)(https?://|mailto:)", target)):
                    found.append(f"{where}: HYPERLINK {el.text[:60]}")
        if local in ("instrText", "delInstrText") and el.text and _FIELD.match(el.text):
            found.append(f"{where}: field {el.text[:60]}")
    return found


# Inside a tag, outside its quoted values: escaped text (&lt;meta http-equiv=...&gt;) is not markup.
_IN_TAG = r"<[A-Za-z][^<>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^<>\"']*)*?"
_HTML_BAD = (
    (r"<\s*script\b", "script"), (r"<\s*(iframe|frame|object|embed|applet|form|base)\b", "element"),
    (r"<[^>]+\son[a-z]+\s*=", "event attribute"),
    (_IN_TAG + r"\bhttp-equiv\s*=\s*['\"]?\s*refresh", "meta refresh"),
    # Pictures inside the file (data:image/png;base64,...) are what an SVG may keep; other data: URLs run.
    (_IN_TAG + r"\b(href|src|action)\s*=\s*['\"]?\s*(javascript:|vbscript:|data:(?!image/(png|jpe?g|gif|webp);base64,))",
     "URL"),
)


def scan_html(data: bytes, where: str) -> list[str]:
    text = data.decode("utf-8", "replace")
    return [f"{where}: html {what}" for pat, what in _HTML_BAD if re.search(pat, text, re.I)]


# ---------------------------------------------------------------- Office (oletools) and packages

def _web_hyperlink(field: str) -> bool:
    """msodde lists HYPERLINK fields too: one to a web address, a bookmark (\\l) or nothing is not active."""
    m = re.match(r"(?i)\s*HYPERLINK\b(.*)", field)
    if m is None:
        return False
    args = [a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', m.group(1))]
    target = next((a for a in args if not re.fullmatch(r"\\[A-Za-z]", a)), "")  # \l, \o, \t are switches
    return not target or "\\l" in args[:1] or bool(re.match(r"(?i)(https?://|mailto:|#)", target))


def scan_office(data: bytes, name: str) -> list[str]:
    found: list[str] = []
    try:
        from oletools.olevba import VBA_Parser

        vp = VBA_Parser(name, data=data)
        try:
            if vp.detect_vba_macros():
                found.append(f"{name}: VBA macros (olevba)")
            if getattr(vp, "detect_xlm_macros", None) and vp.detect_xlm_macros():
                found.append(f"{name}: XLM macros (olevba)")
        finally:
            vp.close()
    except Exception:  # olevba refuses files it does not know: nothing to report from it
        pass
    try:
        import tempfile

        from oletools import msodde

        with tempfile.NamedTemporaryFile(suffix=Path(name).suffix or ".bin") as tmp:
            tmp.write(data)
            tmp.flush()
            links = msodde.process_file(tmp.name, msodde.FIELD_FILTER_BLACKLIST)
        for line in (links or "").splitlines():
            # Only a real keyword runs or fetches ("IdCLUDEPICTURE" is an error field to Word).
            if _FIELD.match(line) or (re.match(r"(?i)\s*HYPERLINK\b", line) and not _web_hyperlink(line)):
                found.append(f"{name}: field (msodde) {line.strip()[:80]}")
    except Exception:
        pass
    return found


def scan_zip(data: bytes, name: str, depth: int) -> list[str]:
    found: list[str] = []
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:
        return [f"{name}: delivered ZIP does not open ({type(exc).__name__})"]
    with z:
        names = z.namelist()
        package = "[Content_Types].xml" in names or "mimetype" in names
        if package:
            found += scan_office(data, name)
        for info in z.infolist():
            if info.is_dir():
                continue
            try:
                body = z.read(info)
            except Exception as exc:
                found.append(f"{name}:{info.filename}: unreadable member ({type(exc).__name__})")
                continue
            low = info.filename.lower()
            if package and (low.endswith((".xml", ".rels", ".vml", ".rdf")) or body.lstrip()[:5] == b"<?xml"):
                found += scan_xml(body, f"{name}:{info.filename}")
            elif package and low.endswith(".bin") and body[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
                found.append(f"{name}:{info.filename}: OLE storage in the package")
            elif not package:
                found += scan_bytes(body, f"{name}:{info.filename}", depth + 1)
    return found


_MAIL_HEAD = re.compile(rb"(?im)^(mime-version|content-type|received|return-path|message-id)\s*:")


def scan_mail(data: bytes, name: str, depth: int) -> list[str]:
    """A delivered message: every part decoded and scanned as a file of its own (HTML bodies as HTML)."""
    import email
    from email import policy

    found: list[str] = []
    msg = email.message_from_bytes(data, policy=policy.compat32)
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            continue
        body = part.get_payload(decode=True) or b""
        where = f"{name}:part{i}:{part.get_filename() or part.get_content_type()}"
        if part.get_content_type() == "text/html":
            found += scan_html(body, where)
        else:
            found += scan_bytes(body, where, depth + 1)
    return found


def scan_bytes(data: bytes, name: str, depth: int = 0) -> list[str]:
    """Findings for one delivered file (or archive member)."""
    if depth > 4:
        return []
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return scan_pdf(data)
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return scan_zip(data, name, depth)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") or head.lstrip()[:5] == b"{\\rtf":
        return scan_office(data, name)
    if len(data) > 262 and data[257:262] == b"ustar" or data[:2] in (b"\x1f\x8b", b"BZ") or data[:6] == b"\xfd7zXZ\x00":
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                out: list[str] = []
                for m in t.getmembers():
                    if m.isfile():
                        f = t.extractfile(m)
                        if f is not None:
                            out += scan_bytes(f.read(), f"{name}:{m.name}", depth + 1)
                    elif m.issym() or m.islnk() or m.isdev():
                        out.append(f"{name}:{m.name}: link or device in a delivered archive")
                return out
        except Exception:
            return []
    if _MAIL_HEAD.search(head[:1024]):
        return scan_mail(data, name, depth)
    low = head.lower()
    if b"<svg" in low:
        return scan_xml(data, name) + scan_html(data, name)
    if b"<html" in low or b"<!doctype html" in low or b"<body" in low:
        return scan_html(data, name)
    return []


def scan_file(path: str | Path) -> list[str]:
    p = Path(path)
    return scan_bytes(p.read_bytes(), p.name)
