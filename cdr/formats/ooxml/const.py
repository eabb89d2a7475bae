"""OOXML vocabulary: relationship types, content types, namespaces and what we do with each.

Allow-lists, not deny-lists: a relationship type or content type not named here is dropped.
"""
from __future__ import annotations

import re

OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
OD_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships/"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships/"
MS = "http://schemas.microsoft.com/office/"

R_NS = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "http://purl.oclc.org/ooxml/officeDocument/relationships")
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
RELS_CT = "application/vnd.openxmlformats-package.relationships+xml"

W_NS = ("http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main")
S_NS = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "http://purl.oclc.org/ooxml/spreadsheetml/main")
P_NS = ("http://schemas.openxmlformats.org/presentationml/2006/main",
        "http://purl.oclc.org/ooxml/presentationml/main")
A_NS = ("http://schemas.openxmlformats.org/drawingml/2006/main",
        "http://purl.oclc.org/ooxml/drawingml/main")
XDR_NS = ("http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing",
          "http://purl.oclc.org/ooxml/drawingml/spreadsheetDrawing")
C_NS = ("http://schemas.openxmlformats.org/drawingml/2006/chart",
        "http://purl.oclc.org/ooxml/drawingml/chart")
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
V_NS = "urn:schemas-microsoft-com:vml"
O_NS = "urn:schemas-microsoft-com:office:office"
X_NS = "urn:schemas-microsoft-com:office:excel"
EP_NS = ("http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
         "http://purl.oclc.org/ooxml/officeDocument/extendedProperties")


def tags(nss: tuple[str, ...] | str, *locals_: str) -> frozenset[str]:
    """Clark names of `locals_` in every namespace variant (transitional and strict)."""
    if isinstance(nss, str):
        nss = (nss,)
    return frozenset(f"{{{ns}}}{loc}" for ns in nss for loc in locals_)


def norm_rel_type(t: str) -> str:
    t = t.strip()
    if t.startswith(OD_STRICT):
        return OD + t[len(OD_STRICT):]
    if t == "http://schemas.openxmlformats.org/officedocument/2006/relationships/metadata/core-properties":
        return PKG + "metadata/core-properties"
    return t


# Relationship types we keep (internal targets only).
KEEP_RELS = frozenset([OD + s for s in (
    "officeDocument", "extended-properties", "custom-properties", "styles", "numbering", "settings",
    "webSettings", "fontTable", "theme", "themeOverride", "footnotes", "endnotes", "comments", "header",
    "footer", "image", "customXml", "customXmlProps", "glossaryDocument", "chart", "chartUserShapes",
    "diagramData", "diagramLayout", "diagramQuickStyle", "diagramColors", "worksheet", "chartsheet",
    "sharedStrings", "drawing", "table", "pivotTable", "pivotCacheDefinition", "pivotCacheRecords",
    "vmlDrawing", "sheetMetadata", "revisionHeaders", "revisionLog", "usernames", "tableSingleCells",
    "slide", "slideLayout", "slideMaster", "notesSlide", "notesMaster", "handoutMaster", "presProps",
    "viewProps", "tableStyles", "tags", "commentAuthors", "audio", "video", "customProperty", "ctrlProp",
    "xmlMaps", "hyperlink", "package",
)] + [PKG + "metadata/core-properties", PKG + "metadata/thumbnail"] + [MS + s for s in (
    "2007/relationships/stylesWithEffects", "2007/relationships/diagramDrawing", "2007/relationships/hdphoto",
    "2007/relationships/media", "2007/relationships/slicer", "2007/relationships/slicerCache",
    "2010/relationships/slicer", "2010/relationships/slicerCache", "2007/relationships/slideUpdateInfo",
    "2011/relationships/commentsExtended", "2011/relationships/people", "2011/relationships/chartStyle",
    "2011/relationships/chartColorStyle", "2011/relationships/timeline", "2011/relationships/timelineCache",
    "2014/relationships/chartEx", "2016/09/relationships/commentsIds", "2017/10/relationships/threadedComment",
    "2017/10/relationships/person", "2018/08/relationships/commentsExtensible", "2018/10/relationships/authors",
    "2018/10/relationships/comments", "2017/06/relationships/rdRichValue",
    "2017/06/relationships/rdRichValueStructure", "2017/06/relationships/rdRichValueTypes",
    "2017/06/relationships/rdSupportingPropertyBag", "2017/06/relationships/rdSupportingPropertyBagStructure",
    "2017/06/relationships/rdArray", "2017/06/relationships/richStyles", "2019/04/relationships/namedSheetView",
    "2015/10/relationships/revisionInfo", "2020/02/relationships/classificationlabels",
    "2006/relationships/legacyDocTextInfo",
    # Pictures placed in cells (Excel 365): the rich-value list points at images in xl/media.
    "2022/10/relationships/richValueRel",
)])

# Relationship types removed as active content, with the threat id we report.
REMOVE_RELS: dict[str, str] = {
    MS + "2006/relationships/vbaProject": "ooxml.vba",
    MS + "2006/relationships/vbaProjectSignature": "ooxml.vba",
    MS + "2020/07/relationships/vbaProjectSignatureAgile": "ooxml.vba",
    MS + "2020/07/relationships/vbaProjectSignatureV3": "ooxml.vba",
    MS + "2006/relationships/wordVbaData": "ooxml.vba",
    MS + "2006/relationships/keyMapCustomizations": "ooxml.vba",
    MS + "2006/relationships/attachedToolbars": "ooxml.vba",
    MS + "2006/relationships/xlMacrosheet": "ooxml.xlm_macrosheet",
    MS + "2006/relationships/xlIntlMacrosheet": "ooxml.xlm_macrosheet",
    OD + "dialogsheet": "ooxml.xlm_macrosheet",
    OD + "control": "ooxml.activex",
    MS + "2006/relationships/activeXControlBinary": "ooxml.activex",
    OD + "oleObject": "ooxml.ole_object",
    MS + "2006/relationships/ui/extensibility": "ooxml.custom_ui",
    MS + "2007/relationships/ui/extensibility": "ooxml.custom_ui",
    MS + "2006/relationships/ui/userCustomization": "ooxml.custom_ui",
    OD + "aFChunk": "ooxml.alt_chunk",
    OD + "attachedTemplate": "ooxml.remote_template",
    OD + "subDocument": "ooxml.external_relationship",
    OD + "frame": "ooxml.external_relationship",
    OD + "externalLink": "ooxml.external_link",
    OD + "externalLinkPath": "ooxml.external_link",
    OD + "connections": "ooxml.data_connection",
    OD + "queryTable": "ooxml.data_connection",
    OD + "mailMergeSource": "ooxml.data_connection",
    OD + "mailMergeHeaderSource": "ooxml.data_connection",
    OD + "recipientData": "ooxml.data_connection",
    OD + "transform": "ooxml.external_relationship",
    OD + "font": "ooxml.embedded_font",
    MS + "2011/relationships/webextension": "ooxml.web_extension",
    MS + "2011/relationships/webextensiontaskpanes": "ooxml.web_extension",
    PKG + "digital-signature/origin": "ooxml.signature",
    PKG + "digital-signature/signature": "ooxml.signature",
}
META_RELS = frozenset([PKG + "metadata/core-properties", OD + "extended-properties", OD + "custom-properties"])
# Caches and printer blobs that Office rebuilds by itself: dropped without a finding.
SILENT_RELS = frozenset([OD + "calcChain", OD + "printerSettings", OD + "volatileDependencies"])

# Content types of parts that are active content whatever relationship points at them.
DENY_CT: dict[str, str] = {
    "application/vnd.ms-office.vbaproject": "ooxml.vba",
    "application/vnd.ms-office.vbaprojectsignature": "ooxml.vba",
    "application/vnd.ms-word.vbadata+xml": "ooxml.vba",
    "application/vnd.ms-word.keymapcustomizations+xml": "ooxml.vba",
    "application/vnd.ms-word.attachedtoolbars": "ooxml.vba",
    "application/vnd.ms-excel.macrosheet+xml": "ooxml.xlm_macrosheet",
    "application/vnd.ms-excel.intlmacrosheet+xml": "ooxml.xlm_macrosheet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.dialogsheet+xml": "ooxml.xlm_macrosheet",
    "application/vnd.ms-office.activex+xml": "ooxml.activex",
    "application/vnd.ms-office.activex": "ooxml.activex",
    "application/vnd.openxmlformats-officedocument.oleobject": "ooxml.ole_object",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.externallink+xml": "ooxml.external_link",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.connections+xml": "ooxml.data_connection",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.querytable+xml": "ooxml.data_connection",
    "application/vnd.ms-office.webextension+xml": "ooxml.web_extension",
    "application/vnd.ms-office.webextensiontaskpanes+xml": "ooxml.web_extension",
    "application/vnd.openxmlformats-officedocument.obfuscatedfont": "ooxml.embedded_font",
    "application/x-fontdata": "ooxml.embedded_font",
    "application/x-font-ttf": "ooxml.embedded_font",
}
_XML_CT_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.openxmlformats-package.",
                    "application/vnd.ms-office.", "application/vnd.ms-excel.", "application/vnd.ms-word.",
                    "application/vnd.ms-powerpoint.")
VML_CT = "application/vnd.openxmlformats-officedocument.vmldrawing"
SVG_CT = "image/svg+xml"
XLSX_PKG_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ct_kind(ct: str) -> str:
    """'xml', 'vml', 'media', 'package' or '' (not allowed) for a lower-case content type."""
    if ct in DENY_CT:
        return ""
    if ct == VML_CT:
        return "vml"
    if ct == XLSX_PKG_CT:
        return "package"
    if ct in ("application/xml", "text/xml") or (ct.endswith("+xml") and ct.startswith(_XML_CT_PREFIXES)):
        return "xml"
    if ct.startswith(("image/", "audio/", "video/")) and ct != SVG_CT:
        return "media"
    return ""


W = "application/vnd.openxmlformats-officedocument.wordprocessingml"
S = "application/vnd.openxmlformats-officedocument.spreadsheetml"
P = "application/vnd.openxmlformats-officedocument.presentationml"
# Macro-enabled main part -> the plain equivalent, and what it is.
MACRO_MAIN = {
    "application/vnd.ms-word.document.macroenabled.main+xml": f"{W}.document.main+xml",
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml": f"{W}.template.main+xml",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": f"{S}.sheet.main+xml",
    "application/vnd.ms-excel.template.macroenabled.main+xml": f"{S}.template.main+xml",
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": f"{P}.presentation.main+xml",
    "application/vnd.ms-powerpoint.template.macroenabled.main+xml": f"{P}.template.main+xml",
    "application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml": f"{P}.slideshow.main+xml",
}
# Plain main part content type -> (kind, package MIME, extension).
MAIN = {
    f"{W}.document.main+xml": ("docx", f"{W}.document", ".docx"),
    f"{W}.template.main+xml": ("docx", f"{W}.template", ".dotx"),
    f"{S}.sheet.main+xml": ("xlsx", f"{S}.sheet", ".xlsx"),
    f"{S}.template.main+xml": ("xlsx", f"{S}.template", ".xltx"),
    f"{P}.presentation.main+xml": ("pptx", f"{P}.presentation", ".pptx"),
    f"{P}.template.main+xml": ("pptx", f"{P}.template", ".potx"),
    f"{P}.slideshow.main+xml": ("pptx", f"{P}.slideshow", ".ppsx"),
}
XLSB_MAIN = "application/vnd.ms-excel.sheet.binary.macroenabled.main"

WORD_STORY_CT = frozenset([f"{W}.document.main+xml", f"{W}.template.main+xml", f"{W}.header+xml",
                           f"{W}.footer+xml", f"{W}.footnotes+xml", f"{W}.endnotes+xml", f"{W}.comments+xml",
                           f"{W}.document.glossary+xml"])
WORD_SETTINGS_CT = f"{W}.settings+xml"
WORD_WEBSETTINGS_CT = f"{W}.websettings+xml"
WORKBOOK_CT = frozenset([f"{S}.sheet.main+xml", f"{S}.template.main+xml"])
SHEET_CT = frozenset([f"{S}.worksheet+xml", f"{S}.chartsheet+xml"])
CTRLPROP_CT = "application/vnd.ms-excel.controlproperties+xml"
CHART_CT = frozenset(["application/vnd.openxmlformats-officedocument.drawingml.chart+xml",
                      "application/vnd.ms-office.chartex+xml"])
CORE_CT = "application/vnd.openxmlformats-package.core-properties+xml"
APP_CT = "application/vnd.openxmlformats-officedocument.extended-properties+xml"

# Already-compressed media: copied as stored bytes, never deflated again.
COMPRESSED_MEDIA = ("image/jpeg", "image/png", "image/gif", "image/vnd.ms-photo", "image/webp", "video/",
                    "audio/mpeg", "audio/mp4", "audio/x-m4a", "audio/aac")

# Worksheet functions that fetch, call code or run commands.
DANGEROUS_FUNCS = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(?:_xlfn\.|_xlws\.|_xll\.)?(WEBSERVICE|CALL|REGISTER|REGISTER\.ID|EXEC|RTD|"
    r"SQL\.REQUEST|IMAGE|FOPEN|FWRITE|FWRITELN|FREAD|FREADLN|FCLOSE|FPOS|FSIZE|DIRECTORY|FILES|RUN|HALT|"
    r"EVALUATE|SET\.VALUE|SET\.NAME|FORMULA|FORMULA\.FILL|SEND\.KEYS|APP\.ACTIVATE|WORKBOOK\.HIDE|"
    r"DOCUMENTS|ON\.TIME|ON\.KEY|ON\.ENTRY|ON\.SHEET|ON\.WINDOW|ON\.DATA|ON\.RECALC|CREATE\.OBJECT|"
    r"INITIATE|REQUEST|EXECUTE|POKE|TERMINATE|"
    # Newer functions that fetch from or send to a service, or run code (Python in Excel).
    r"IMPORTTEXT|IMPORTCSV|STOCKHISTORY|PY|TRANSLATE|DETECTLANGUAGE|COPILOT)\s*\(")
HYPERLINK_CALL = re.compile(r"(?i)(?<![A-Za-z0-9_.])HYPERLINK\s*\(")
AUTO_NAMES = re.compile(r"(?i)^(?:_xlnm\.)?auto_(?:open|close|activate|deactivate)")

WEB_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def in_document(target: str) -> bool:
    """A location in the same file ("#'歳入'!A1", "#目次"): '#' and a reference or name, nothing a
    path or address could be."""
    # "[Book2.xlsx]Sheet1!A1" names another workbook; a sheet name cannot hold [ ] \ / anyway.
    return target.startswith("#") and not any(c in target for c in ("\\", "/", "@", "[", "]")) \
        and "::" not in target


def is_web_url(target: str) -> bool:
    """True for http, https and mailto targets without tricks (control chars, backslashes)."""
    t = target.strip()
    if not t or "\\" in t or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in t):
        return False
    m = _SCHEME.match(t)
    if not m or m.group(1).lower() not in WEB_SCHEMES:
        return False
    if m.group(1).lower() != "mailto" and not t[m.end():].startswith("//"):
        return False
    return True
