"""Which XML namespaces each kind of OOXML part may hold: everything else is dropped.

A part's content type says which schema it follows: ECMA-376 (transitional and strict URIs) plus the
Microsoft extensions documented for that part in [MS-DOCX], [MS-XLSX], [MS-PPTX] and [MS-ODRAWXML].
Extensions that fetch or run something (web extensions, linked web video, script links, external
code) are left out, and so are beta namespaces that no released Office writes. Allow-lists, not
deny-lists: a namespace not named here does not survive the rebuild.
"""
from __future__ import annotations

from .const import CHART_CT, MACRO_MAIN, VML_CT

_OX = "http://schemas.openxmlformats.org/"
_PURL = "http://purl.oclc.org/ooxml/"
_MSO = "http://schemas.microsoft.com/office/"

XML_NS = "http://www.w3.org/XML/1998/namespace"
MC_NS = _OX + "markup-compatibility/2006"


STRICT: dict[str, str] = {}  # strict URI -> its transitional twin (they define the same names)


def _ecma(*pairs: tuple[str, str]) -> frozenset[str]:
    """Transitional URI (after schemas.openxmlformats.org/) and its strict twin (after purl.oclc.org/ooxml/)."""
    STRICT.update({_PURL + s: _OX + t for t, s in pairs})
    return frozenset(u for t, s in pairs for u in (_OX + t, _PURL + s))


def _ms(*paths: str) -> frozenset[str]:
    return frozenset(_MSO + p for p in paths)


RELS = _ecma(("officeDocument/2006/relationships", "officeDocument/relationships"))
MATH = _ecma(("officeDocument/2006/math", "officeDocument/math"))

# DrawingML: shapes, pictures, charts, SmartArt, themes, and what Office 2010+ adds to them.
DRAWING = _ecma(
    ("drawingml/2006/main", "drawingml/main"), ("drawingml/2006/picture", "drawingml/picture"),
    ("drawingml/2006/chart", "drawingml/chart"), ("drawingml/2006/chartDrawing", "drawingml/chartDrawing"),
    ("drawingml/2006/diagram", "drawingml/diagram"), ("drawingml/2006/lockedCanvas", "drawingml/lockedCanvas"),
    ("drawingml/2006/compatibility", "drawingml/compatibility"),
    ("drawingml/2006/spreadsheetDrawing", "drawingml/spreadsheetDrawing"),
    ("drawingml/2006/wordprocessingDrawing", "drawingml/wordprocessingDrawing"),
) | _ms(
    "drawing/2010/main", "drawing/2012/main", "drawing/2014/main", "drawing/2016/11/main",  # a14 a15 a16 a1611
    "drawing/2017/decorative", "drawing/2018/hyperlinkcolor", "drawing/2016/SVG/main",  # adec ahyp asvg
    "drawing/2017/model3d", "drawing/2018/animation", "drawing/2018/animation/model3d",  # am3d aanim a3danim
    "drawing/2018/sketchyshapes", "drawing/2020/classificationShape", "drawing/2016/ink",  # ask aclsh aink
    "drawing/2010/picture", "drawing/2010/compatibility", "drawing/2010/chartDrawing",  # pic14 com14 cdr14
    "drawing/2007/8/2/chart", "drawing/2012/chart", "drawing/2014/chart", "drawing/2014/chart/ac",  # c14-c16ac
    "drawing/2015/06/chart", "drawing/2017/03/chart", "drawing/2012/chartStyle",  # c16r2 c16r3 cs
    "drawing/2014/chartex", "drawing/2015/9/8/chartex", "drawing/2015/10/21/chartex",  # cx cx1 cx2
    "drawing/2016/5/9/chartex", "drawing/2016/5/10/chartex", "drawing/2016/5/11/chartex",  # cx3 cx4 cx5
    "drawing/2016/5/12/chartex", "drawing/2016/5/13/chartex", "drawing/2016/5/14/chartex",  # cx6 cx7 cx8
    "drawing/2008/diagram", "drawing/2010/diagram", "drawing/2016/11/diagram", "drawing/2016/12/diagram",
    "drawing/2010/slicer", "drawing/2012/timeslicer", "excel/2010/spreadsheetDrawing",  # sle tsle xdr14
    "thememl/2012/main",  # thm15
) | MATH | RELS  # equations in shapes (a14:m)

# Choices whose content most readers cannot draw (Office 2016 charts, 3D models, ink) come with a picture
# as their Fallback: that picture is kept instead, so LibreOffice and older Office still show it.
PICTURE_FALLBACK = _ms("drawing/2014/chartex", "drawing/2015/9/8/chartex", "drawing/2015/10/21/chartex",
                       "drawing/2016/5/9/chartex", "drawing/2016/5/10/chartex", "drawing/2016/5/11/chartex",
                       "drawing/2016/5/12/chartex", "drawing/2016/5/13/chartex", "drawing/2016/5/14/chartex",
                       "drawing/2017/model3d", "drawing/2018/animation/model3d", "drawing/2016/ink",
                       "word/2010/wordprocessingInk")

VML = frozenset(["urn:schemas-microsoft-com:vml", "urn:schemas-microsoft-com:office:office",
                 "urn:schemas-microsoft-com:office:word", "urn:schemas-microsoft-com:office:excel",
                 "urn:schemas-microsoft-com:office:powerpoint"]) | RELS

WORD = _ecma(("wordprocessingml/2006/main", "wordprocessingml/main")) | _ms(
    "word/2006/wordml", "word/2010/wordml", "word/2012/wordml", "word/2015/wordml/symex",  # wne w14 w15 w16se
    "word/2016/wordml/cid", "word/2018/wordml", "word/2018/wordml/cex", "word/2020/wordml/sdtdatahash",
    "word/2023/wordml/word16du", "word/2024/wordml/sdtformatlock",
    "word/2010/wordprocessingDrawing", "word/2012/wordprocessingDrawing",  # wp14 wp15
    "word/2010/wordprocessingCanvas", "word/2010/wordprocessingGroup", "word/2010/wordprocessingShape",
    "word/2010/wordprocessingInk",  # wpc wpg wps wpi
) | DRAWING | VML

SHEET = _ecma(("spreadsheetml/2006/main", "spreadsheetml/main")) | _ms(
    "spreadsheetml/2009/9/main", "spreadsheetml/2009/9/ac", "spreadsheetml/2010/11/main",  # x14 x14ac x15
    "spreadsheetml/2011/1/ac", "spreadsheetml/2014/11/main", "spreadsheetml/2015/02/main",  # x12ac x16 x16r2
    "spreadsheetml/2018/08/main", "spreadsheetml/2018/calcfeatures", "spreadsheetml/2017/dynamicarray",
    "spreadsheetml/2017/richdata", "spreadsheetml/2017/richdata2", "spreadsheetml/2022/richvaluerel",
    "spreadsheetml/2020/richvaluerefresh", "spreadsheetml/2018/threadedcomments",
    "spreadsheetml/2020/threadedcomments2", "spreadsheetml/2019/namedsheetviews",
    "spreadsheetml/2016/pivotdefaultlayout", "spreadsheetml/2020/pivotNov2020",
    "spreadsheetml/2022/pivotVersionInfo", "spreadsheetml/2022/pivotRichData",
    "spreadsheetml/2023/pivot2023Calculation", "spreadsheetml/2024/pivotDynamicArrays",
    "spreadsheetml/2022/featurepropertybag", "spreadsheetml/2016/01/main",  # xfpb xlPr
    "spreadsheetml/2014/revision", "spreadsheetml/2015/revision2", "spreadsheetml/2016/revision3",  # xr-xr3
    "spreadsheetml/2016/revision5", "spreadsheetml/2016/revision6", "spreadsheetml/2016/revision9",
    "spreadsheetml/2016/revision10", "spreadsheetml/2017/revision16",
    "excel/2006/main",  # xm: formulas and ranges of x14 conditional formats and validations
    # Not: x15ac (absPath: where the author kept the file), external code (Python in Excel), MS Forms
    # links, external links 2021, rich-data web images (fetched), pivot auto-refresh and data sources.
) | DRAWING  # chart sheets and form-control anchors (xdr) inside the sheet

# An XML map part (xl/xmlMaps.xml, declared application/xml) holds the map's XML schema inside its Schema
# elements: Excel needs it to import and export the mapped cells (parts.disarm_map_schemas keeps it to there).
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_MAPS = SHEET | {XSD_NS}

PRESENTATION = _ecma(("presentationml/2006/main", "presentationml/main")) | _ms(
    "powerpoint/2010/main", "powerpoint/2012/main", "powerpoint/2015/main",  # p14 p15 p16
    "powerpoint/2015/09/main", "powerpoint/2015/10/main", "powerpoint/2017/10/main", "powerpoint/2017/3/main",
    "powerpoint/2018/4/main", "powerpoint/2018/8/main", "powerpoint/2019/12/main", "powerpoint/2020/02/main",
    "powerpoint/2021/06/main", "powerpoint/2022/03/main", "powerpoint/2022/08/main", "powerpoint/2023/02/main",
    "2007/6/19/audiovideo",  # pav: media bookmarks and trims
) | DRAWING

CORE_PROPS = frozenset(["http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
                        "http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/", "http://purl.org/dc/dcmitype/",
                        "http://www.w3.org/2001/XMLSchema-instance"])
_VTYPES = _ecma(("officeDocument/2006/docPropsVTypes", "officeDocument/docPropsVTypes"))
APP_PROPS = _ecma(("officeDocument/2006/extended-properties", "officeDocument/extendedProperties")) | _VTYPES
CUSTOM_PROPS = _ecma(("officeDocument/2006/custom-properties", "officeDocument/customProperties")) | _VTYPES
CUSTOM_XML_PROPS = _ecma(("officeDocument/2006/customXml", "officeDocument/customXml"))
# Custom XML data parts (customXml/itemN.xml) hold any XML by design; only the kinds Office itself
# shows are kept: a bibliography (citations) and cover page properties (bound to the cover page).
BIBLIOGRAPHY = _ecma(("officeDocument/2006/bibliography", "officeDocument/bibliography"))
CUSTOM_XML_DATA = BIBLIOGRAPHY | _ms("2006/coverPageProps")
CLASSIFICATION = _ms("2020/mipLabelMetadata")


def always_parsed(vocab: frozenset[str]) -> bool:
    """Parts no byte proof covers, read as a tree every time (both small): an XML map with its schema, a
    bibliography (parts.disarm_map_schemas, parts.disarm_bibliography)."""
    return XSD_NS in vocab or not BIBLIOGRAPHY.isdisjoint(vocab)


_W = "application/vnd.openxmlformats-officedocument.wordprocessingml."
_S = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_P = "application/vnd.openxmlformats-officedocument.presentationml."
_D = "application/vnd.openxmlformats-officedocument.drawingml."
_BY_CT: dict[str, frozenset[str]] = {
    VML_CT: VML,
    "application/vnd.openxmlformats-package.core-properties+xml": CORE_PROPS,
    "application/vnd.openxmlformats-officedocument.extended-properties+xml": APP_PROPS,
    "application/vnd.openxmlformats-officedocument.custom-properties+xml": CUSTOM_PROPS,
    "application/vnd.openxmlformats-officedocument.customxmlproperties+xml": CUSTOM_XML_PROPS,
    "application/vnd.openxmlformats-officedocument.theme+xml": DRAWING,
    "application/vnd.openxmlformats-officedocument.themeoverride+xml": DRAWING,
    "application/vnd.openxmlformats-officedocument.drawing+xml": DRAWING,
    "application/vnd.ms-office.chartstyle+xml": DRAWING,
    "application/vnd.ms-office.chartcolorstyle+xml": DRAWING,
    "application/vnd.ms-office.drawingml.diagramdrawing+xml": DRAWING,
    "application/vnd.ms-office.classificationlabels+xml": CLASSIFICATION,
    "application/vnd.ms-excel.controlproperties+xml": SHEET,
    **{ct: DRAWING for ct in CHART_CT},
}
# Families of content types by prefix: Word, Excel and PowerPoint parts and their Microsoft additions
# (commentsExtended, slicers, threaded comments, rich data, modern comments...).
_BY_PREFIX = ((_W, WORD), ("application/vnd.ms-word.", WORD), (_S, SHEET), ("application/vnd.ms-excel.", SHEET),
              (_P, PRESENTATION), ("application/vnd.ms-powerpoint.", PRESENTATION), (_D, DRAWING))


def vocabulary(ctl: str, custom_xml: bool = False) -> frozenset[str]:
    """The namespaces a part of this (lower-case) content type may use; empty when none is known.
    `custom_xml`: the part is a custom XML data item (reached by a customXml relationship)."""
    if custom_xml:
        return CUSTOM_XML_DATA
    ctl = MACRO_MAIN.get(ctl, ctl)
    if ctl in _BY_CT:
        return _BY_CT[ctl]
    for prefix, vocab in _BY_PREFIX:
        if ctl.startswith(prefix):
            return vocab
    return frozenset()


# Elements without a namespace that a VML part may hold: the root <xml> and the HTML subset Excel and
# Word write in text boxes and comments.
VML_PLAIN = frozenset(["xml", "div", "font", "b", "i", "u", "s", "br", "span", "p", "sub", "sup", "strike"])


# A part declared with a generic content type (application/xml) takes the vocabulary its relationship
# type implies; failing that, the one of the part that points at it (xl/styles.xml from the workbook).
GENERIC_XML = frozenset(["application/xml", "text/xml"])
_OD = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
REL_VOCAB: dict[str, frozenset[str]] = {
    **{_OD + t: WORD for t in ("header", "footer", "footnotes", "endnotes", "comments", "glossaryDocument",
                               "settings", "webSettings", "fontTable", "numbering")},
    **{_OD + t: SHEET for t in ("worksheet", "chartsheet", "sharedStrings", "table", "pivotTable",
                                "pivotCacheDefinition", "pivotCacheRecords", "sheetMetadata")},
    **{_OD + t: PRESENTATION for t in ("slide", "slideLayout", "slideMaster", "notesSlide", "notesMaster",
                                       "handoutMaster", "presProps", "viewProps", "tableStyles", "commentAuthors",
                                       "tags")},
    **{_OD + t: DRAWING for t in ("theme", "themeOverride", "chart", "chartUserShapes", "drawing", "diagramData",
                                  "diagramLayout", "diagramQuickStyle", "diagramColors")},
    _OD + "vmlDrawing": VML,
    _OD + "xmlMaps": XML_MAPS,
    _OD + "extended-properties": APP_PROPS,
    _OD + "custom-properties": CUSTOM_PROPS,
    _OD + "customXmlProps": CUSTOM_XML_PROPS,
    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties": CORE_PROPS,
}
CUSTOM_XML_REL = _OD + "customXml"


# The root element each kind of part has (content type without its family prefix -> local names): a part
# holding another part's markup (settings in place of numbering) is not that part.
_ROOTS_W = {"document.main+xml": "document", "template.main+xml": "document", "document.glossary+xml": "glossaryDocument",
            "styles+xml": "styles", "numbering+xml": "numbering", "settings+xml": "settings",
            "websettings+xml": "webSettings", "fonttable+xml": "fonts", "footnotes+xml": "footnotes",
            "endnotes+xml": "endnotes", "comments+xml": "comments", "header+xml": "hdr", "footer+xml": "ftr"}
_ROOTS_S = {"sheet.main+xml": "workbook", "template.main+xml": "workbook", "worksheet+xml": "worksheet",
            "chartsheet+xml": "chartsheet", "sharedstrings+xml": "sst", "styles+xml": "styleSheet", "table+xml": "table",
            "comments+xml": "comments", "pivottable+xml": "pivotTableDefinition",
            "pivotcachedefinition+xml": "pivotCacheDefinition", "pivotcacherecords+xml": "pivotCacheRecords",
            "calcchain+xml": "calcChain", "sheetmetadata+xml": "metadata"}
_ROOTS_P = {"presentation.main+xml": "presentation", "template.main+xml": "presentation",
            "slideshow.main+xml": "presentation", "slide+xml": "sld", "slidelayout+xml": "sldLayout",
            "slidemaster+xml": "sldMaster", "notesslide+xml": "notes", "notesmaster+xml": "notesMaster",
            "handoutmaster+xml": "handoutMaster", "presprops+xml": "presentationPr", "viewprops+xml": "viewPr",
            "tablestyles+xml": "tblStyleLst", "commentauthors+xml": "cmAuthorLst", "comments+xml": "cmLst"}
_ROOTS_D = {"chart+xml": "chartSpace", "chartshapes+xml": "userShapes", "diagramdata+xml": "dataModel",
            "diagramlayout+xml": "layoutDef", "diagramstyle+xml": "styleDef", "diagramcolors+xml": "colorsDef"}
_ROOTS_OTHER = {"application/vnd.openxmlformats-officedocument.theme+xml": "theme",
                "application/vnd.openxmlformats-officedocument.themeoverride+xml": "themeOverride",
                "application/vnd.openxmlformats-officedocument.drawing+xml": "wsDr",
                "application/vnd.openxmlformats-package.core-properties+xml": "coreProperties",
                "application/vnd.openxmlformats-officedocument.extended-properties+xml": "Properties",
                "application/vnd.openxmlformats-officedocument.custom-properties+xml": "Properties"}


def expected_root(ctl: str) -> str | None:
    """The local name of the root element a part of this (lower-case) content type must have, if known."""
    ctl = MACRO_MAIN.get(ctl, ctl)
    if ctl in _ROOTS_OTHER:
        return _ROOTS_OTHER[ctl]
    for prefix, table in ((_W, _ROOTS_W), (_S, _ROOTS_S), (_P, _ROOTS_P), (_D, _ROOTS_D)):
        if ctl.startswith(prefix):
            return table.get(ctl[len(prefix):])
    return None
