"""The Word 97-2003 File Information Block ([MS-DOC] 2.5): layout and what each fc/lcb pair is.

Every pair in FibRgFcLcb points into the table stream. Each has a fate here: kept (copied into
the new table stream after a bounds check), dropped (its lcb becomes zero), or handled by the
rebuilder (piece table, fields, drawings, document properties, associated strings).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

WIDENT = 0xA5EC
# cbRgFcLcb of each FIB version: Word 97, 2000, 2002, 2003, 2007.
RGFCLCB_SIZES = (0x5D, 0x6C, 0x88, 0xA4, 0xB7)

KEEP, DROP, SPECIAL = "keep", "drop", "special"

# (name, fate, threat id when a non-empty dropped pair is reported, detail)
_P = tuple[str, str, str, str]


def _k(name: str) -> _P:
    return (name, KEEP, "", "")


def _z(name: str) -> _P:  # undefined, ignored or a cache Word rebuilds: dropped silently
    return (name, DROP, "", "")


def _s(name: str) -> _P:
    return (name, SPECIAL, "", "")


def _d(name: str, tid: str, detail: str) -> _P:
    return (name, DROP, tid, detail)


PAIRS: tuple[_P, ...] = (
    # FibRgFcLcb97
    _s("StshfOrig"), _k("Stshf"), _k("PlcffndRef"), _k("PlcffndTxt"), _k("PlcfandRef"), _k("PlcfandTxt"),
    _s("PlcfSed"), _k("PlcPad"), _k("PlcfPhe"), _k("SttbfGlsy"), _k("PlcfGlsy"), _k("PlcfHdd"),
    _s("PlcfBteChpx"), _s("PlcfBtePapx"), _k("PlcfSea"), _k("SttbfFfn"), _s("PlcfFldMom"), _s("PlcfFldHdr"),
    _s("PlcfFldFtn"), _s("PlcfFldAtn"), _z("PlcfFldMcr"), _k("SttbfBkmk"), _k("PlcfBkf"), _k("PlcfBkl"),
    _d("Cmds", "ole.customization", "toolbars, menus and key assignments"),
    _d("PlcMcr", "ole.vba", "macro table"), _d("SttbfMcr", "ole.vba", "macro names"),
    _z("PrDrvr"), _z("PrEnvPort"), _z("PrEnvLand"), _k("Wss"), _s("Dop"), _s("SttbfAssoc"), _s("Clx"),
    _k("PlcfPgdFtn"), _z("AutosaveSource"), _k("GrpXstAtnOwners"), _k("SttbfAtnBkmk"), _z("PlcDoaMom"),
    _z("PlcDoaHdr"), _k("PlcSpaMom"), _k("PlcSpaHdr"), _k("PlcfAtnBkf"), _k("PlcfAtnBkl"),
    _d("Pms", "ole.data_connection", "mail merge data source"), _k("FormFldSttbs"), _k("PlcfendRef"),
    _k("PlcfendTxt"), _s("PlcfFldEdn"), _z("PlcfPgdEdn"), _s("DggInfo"), _k("SttbfRMark"), _k("SttbCaption"),
    _k("SttbAutoCaption"), _d("PlcfWkb", "ole.external_link", "master document with subdocuments"),
    _k("PlcfSpl"), _k("PlcftxbxTxt"), _s("PlcfFldTxbx"), _k("PlcfHdrtxbxTxt"), _s("PlcffldHdrTxbx"),
    _k("StwUser"), _z("SttbTtmbd"), _z("CookieData"), _k("PgdMotherOldOld"), _k("BkdMotherOldOld"),
    _k("PgdFtnOldOld"), _k("BkdFtnOldOld"), _k("PgdEdnOldOld"), _k("BkdEdnOldOld"), _k("SttbfIntlFld"),
    _d("RouteSlip", "ole.metadata", "routing slip (recipients)"),
    _d("SttbSavedBy", "ole.metadata", "names and paths of earlier editors"),
    _d("SttbFnm", "ole.external_link", "names of outside files (subdocuments)"), _s("PlfLst"), _k("PlfLfo"),
    _k("PlcfTxbxBkd"), _k("PlcfTxbxHdrBkd"), _z("DocUndoWord9"), _z("RgbUse"), _z("Usp"), _z("Uskf"),
    _z("PlcupcRgbUse"), _z("PlcupcUsp"), _k("SttbGlsyStyle"), _k("Plgosl"),
    _d("Plcocx", "ole.activex", "ActiveX controls"), _k("PlcfBteLvc"), _s("ModifiedTime"),
    _k("PlcfLvcPre10"), _k("PlcfAsumy"), _k("PlcfGram"), _k("SttbListNames"), _z("SttbfUssr"),
    # FibRgFcLcb2000
    _k("PlcfTch"), _z("RmdThreading"), _z("Mid"), _k("SttbRgtplc"),
    _d("MsoEnvelope", "ole.metadata", "mail envelope"), _k("PlcfLad"),
    _d("RgDofr", "ole.external_link", "frames page"), _k("Plcosl"), _k("PlcfCookieOld"),
    _k("PgdMotherOld"), _k("BkdMotherOld"), _k("PgdFtnOld"), _k("BkdFtnOld"), _k("PgdEdnOld"), _k("BkdEdnOld"),
    # FibRgFcLcb2002
    _z("Unused1"), _k("PlcfPgp"), _k("Plcfuim"), _k("PlfguidUim"), _k("AtrdExtra"), _k("Plrsid"),
    _k("SttbfBkmkFactoid"), _k("PlcfBkfFactoid"), _k("Plcfcookie"), _k("PlcfBklFactoid"), _k("FactoidData"),
    _z("DocUndo"), _k("SttbfBkmkFcc"), _k("PlcfBkfFcc"), _k("PlcfBklFcc"), _k("SttbfbkmkBPRepairs"),
    _k("PlcfbkfBPRepairs"), _k("PlcfbklBPRepairs"), _d("PmsNew", "ole.data_connection", "mail merge data source"),
    _d("ODSO", "ole.data_connection", "mail merge data source (ODSO)"), _k("PlcfpmiOldXP"), _k("PlcfpmiNewXP"),
    _k("PlcfpmiMixedXP"), _z("Unused2"), _k("Plcffactoid"), _k("PlcflvcOldXP"), _k("PlcflvcNewXP"),
    _k("PlcflvcMixedXP"),
    # FibRgFcLcb2003
    _d("Hplxsdr", "ole.external_link", "XML schema references"), _k("SttbfBkmkSdt"), _k("PlcfBkfSdt"),
    _k("PlcfBklSdt"), _d("CustomXForm", "ole.external_link", "XML transform applied on open"),
    _k("SttbfBkmkProt"), _k("PlcfBkfProt"), _k("PlcfBklProt"), _k("SttbProtUser"), _z("Unused"),
    _k("PlcfpmiOld"), _k("PlcfpmiOldInline"), _k("PlcfpmiNew"), _k("PlcfpmiNewInline"), _k("PlcflvcOld"),
    _k("PlcflvcOldInline"), _k("PlcflvcNew"), _k("PlcflvcNewInline"), _k("PgdMother"), _k("BkdMother"),
    _k("AfdMother"), _k("PgdFtn"), _k("BkdFtn"), _k("AfdFtn"), _k("PgdEdn"), _k("BkdEdn"), _k("AfdEdn"),
    _k("Afd"),
    # FibRgFcLcb2007
    _k("Plcfmthd"), _k("SttbfBkmkMoveFrom"), _k("PlcfBkfMoveFrom"), _k("PlcfBklMoveFrom"),
    _k("SttbfBkmkMoveTo"), _k("PlcfBkfMoveTo"), _k("PlcfBklMoveTo"), _z("Unused1_2007"), _z("Unused2_2007"),
    _z("Unused3_2007"), _k("SttbfBkmkArto"), _k("PlcfBkfArto"), _k("PlcfBklArto"), _k("ArtoData"),
    _z("Unused4_2007"), _z("Unused5_2007"), _z("Unused6_2007"), _k("OssTheme"), _k("ColorSchemeMapping"),
)
assert len(PAIRS) == RGFCLCB_SIZES[-1]
INDEX = {p[0]: i for i, p in enumerate(PAIRS)}

# Field tables and the story each belongs to (in CP order: main, footnotes, headers, comments,
# endnotes, text boxes, header text boxes).
FIELD_PLCS = (("PlcfFldMom", 0), ("PlcfFldFtn", 1), ("PlcfFldHdr", 2), ("PlcfFldAtn", 3),
              ("PlcfFldEdn", 4), ("PlcfFldTxbx", 5), ("PlcffldHdrTxbx", 6))


class FibError(ValueError):
    pass


@dataclass
class Fib:
    raw: bytearray  # the FIB bytes, edited in place
    nfib: int
    flags: int
    rglw_at: int
    rgfclcb_at: int
    count: int  # number of fc/lcb pairs
    size: int  # bytes of the whole FIB

    @property
    def table_name(self) -> str:
        return "1Table" if self.flags & 0x0200 else "0Table"

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x0100)

    @property
    def obfuscated(self) -> bool:
        return bool(self.flags & 0x8000)

    def pair(self, name: str) -> tuple[int, int]:
        i = INDEX[name]
        if i >= self.count:
            return 0, 0
        return struct.unpack_from("<II", self.raw, self.rgfclcb_at + 8 * i)

    def pair_at(self, i: int) -> tuple[int, int]:
        return struct.unpack_from("<II", self.raw, self.rgfclcb_at + 8 * i)

    def set_pair_at(self, i: int, fc: int, lcb: int) -> None:
        struct.pack_into("<II", self.raw, self.rgfclcb_at + 8 * i, fc, lcb)

    def lw(self, i: int) -> int:
        return struct.unpack_from("<i", self.raw, self.rglw_at + 4 * i)[0]

    def ccps(self) -> list[int]:
        """Character counts of the stories: main, footnotes, headers, comments, endnotes, text boxes,
        header text boxes (FibRgLw97 ccpText, ccpFtn, ccpHdd, ccpAtn, ccpEdn, ccpTxbx, ccpHdrTxbx)."""
        return [self.lw(i) for i in (3, 4, 5, 7, 8, 9, 10)]


def parse_fib(wd: bytes) -> Fib:
    if len(wd) < 34 or struct.unpack_from("<H", wd, 0)[0] != WIDENT:
        raise FibError("no Word document header (FIB)")
    nfib, = struct.unpack_from("<H", wd, 2)
    flags, = struct.unpack_from("<H", wd, 10)
    if nfib < 0xC1:
        raise FibError(f"Word 6/95 document (nFib 0x{nfib:X})")
    pos = 32
    csw, = struct.unpack_from("<H", wd, pos)
    if csw != 14:
        raise FibError(f"unexpected FIB layout (csw {csw})")
    pos += 2 + 2 * csw
    cslw, = struct.unpack_from("<H", wd, pos)
    if cslw != 22:
        raise FibError(f"unexpected FIB layout (cslw {cslw})")
    rglw_at = pos + 2
    pos = rglw_at + 4 * cslw
    if pos + 2 > len(wd):
        raise FibError("truncated FIB")
    count, = struct.unpack_from("<H", wd, pos)
    if count not in RGFCLCB_SIZES:
        raise FibError(f"unexpected FIB layout (cbRgFcLcb 0x{count:X})")
    rgfclcb_at = pos + 2
    pos = rgfclcb_at + 8 * count
    if pos + 2 > len(wd):
        raise FibError("truncated FIB")
    csw_new, = struct.unpack_from("<H", wd, pos)
    if csw_new not in (0, 2, 5):
        raise FibError(f"unexpected FIB layout (cswNew {csw_new})")
    size = pos + 2 + 2 * csw_new
    if size > len(wd):
        raise FibError("truncated FIB")
    if csw_new:
        nfib = struct.unpack_from("<H", wd, pos + 2)[0]
    return Fib(bytearray(wd[:size]), nfib, flags, rglw_at, rgfclcb_at, count, size)
