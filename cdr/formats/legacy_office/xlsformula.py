"""BIFF8 parsed formulas ([MS-XLS] 2.5.198): walked token by token, checked and renumbered.

A formula stays only if every token is known, every function is a worksheet function (not an
Excel 4.0 macro function, not unknown), every name and 3-D reference still exists after the
rebuild (links to other workbooks, DDE and add-ins other than the Analysis ToolPak go) and a
HYPERLINK's target is a constant web or in-file address. Otherwise FormulaIssue says why, and
the caller keeps the cached value instead.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from ..ooxml.const import DANGEROUS_FUNCS, WEB_SCHEMES, in_document

# --- functions -------------------------------------------------------------------------------
# Worksheet functions (Ftab indexes) kept; everything else (Excel 4.0 macro functions such as EXEC,
# CALL, REGISTER.ID, GET.CELL, EVALUATE, and unknown indexes) turns the formula into its value.
_SAFE_FUNCS = frozenset(i for a, b in (
    (0, 52), (56, 78), (82, 83), (86, 86), (97, 102), (105, 105), (109, 109), (111, 121), (124, 131), (140, 144),
    (148, 148), (162, 165), (167, 169), (183, 184), (189, 190), (193, 199), (204, 216), (219, 222), (227, 235),
    (244, 244), (247, 247), (252, 252), (261, 261), (269, 332), (336, 337), (342, 347), (350, 354), (358, 367),
) for i in range(a, b + 1))
_HYPERLINK, _UDF = 359, 255
# Analysis ToolPak functions, called as add-in names in .xls; any other add-in name is removed.
_ATP = re.compile(
    r"(?i)^(?:_xlfn\.[A-Z0-9.]+|EDATE|EOMONTH|NETWORKDAYS|WORKDAY|YEARFRAC|WEEKNUM|ISEVEN|ISODD|MROUND|QUOTIENT|"
    r"RANDBETWEEN|GCD|LCM|SERIESSUM|SQRTPI|MULTINOMIAL|FACTDOUBLE|CONVERT|(?:BIN|OCT|DEC|HEX)2(?:BIN|OCT|DEC|HEX)|"
    r"COMPLEX|IM[A-Z0-9]+|BESSEL[IJKY]|ERFC?|DELTA|GESTEP|ACCRINTM?|XIRR|XNPV|DOLLARDE|DOLLARFR|EFFECT|NOMINAL|"
    r"PRICE(?:DISC|MAT)?|YIELD(?:DISC|MAT)?|M?DURATION|COUP[A-Z]+|DISC|INTRATE|RECEIVED|TBILL[A-Z]+|FVSCHEDULE|"
    r"CUMIPMT|CUMPRINC|ODD[FL](?:PRICE|YIELD)|AMORDEGRC|AMORLINC)$")


def _dangerous_name(name: str) -> bool:
    return bool(DANGEROUS_FUNCS.search(name + "("))


# --- formulas --------------------------------------------------------------------------------

@dataclass
class Links:
    """What formulas may refer to after the rebuild, and how old indexes map to new ones."""

    xti: dict[int, int] = field(default_factory=dict)  # old XTI index -> new (absent: removed)
    xti_kind: dict[int, str] = field(default_factory=dict)  # old XTI -> "self" | "addin" | "external"
    names: dict[int, int] = field(default_factory=dict)  # old 1-based NAME index -> new
    name_text: dict[int, str] = field(default_factory=dict)  # old 1-based NAME index -> label
    addin_names: dict[tuple[int, int], int] = field(default_factory=dict)  # (supbook, old iName) -> new
    xti_supbook: dict[int, int] = field(default_factory=dict)  # old XTI -> old supbook index
    removed: dict[int, str] = field(default_factory=dict)  # old NAME index -> threat id of its removal
    addin_text: dict[tuple[int, int], str] = field(default_factory=dict)


class FormulaIssue(Exception):
    """Why a formula cannot stay (its cell keeps the cached value)."""

    def __init__(self, tid: str, detail: str):
        super().__init__(detail)
        self.tid = tid
        self.detail = detail


_FIXED_PTG = {0x01: 4, 0x02: 4, 0x1C: 1, 0x1D: 1, 0x1E: 2, 0x1F: 8}
_NOARG = set(range(0x03, 0x17))


def rewrite_formula(rgce: bytes, links: Links, allow_names: bool = True) -> bytes:
    """Check a parsed formula and renumber its references; FormulaIssue when it must go."""
    out = bytearray(rgce)
    pos, n = 0, len(rgce)
    strings: list[str | None] = []  # constant strings pushed, for HYPERLINK's first argument
    while pos < n:
        ptg = rgce[pos]
        base = ptg & 0x1F if ptg & 0x60 else ptg  # class bits fold reference tokens together
        kind = ptg if ptg < 0x20 else 0x20 | base
        p = pos + 1
        if ptg in _NOARG:
            size = 0
            if ptg <= 0x11:  # binary operators
                del strings[-2:]
                strings.append(None)
            elif ptg <= 0x14:  # unary operators
                del strings[-1:]
                strings.append(None)
            elif ptg == 0x16:  # missing argument
                strings.append(None)
        elif ptg in _FIXED_PTG:
            size = _FIXED_PTG[ptg]
            strings.append(None)
        elif ptg == 0x17:  # ptgStr
            if p + 2 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            cch, flags = rgce[p], rgce[p + 1]
            size = 2 + cch * (2 if flags & 1 else 1)
            raw = rgce[p + 2:p + size]
            strings.append(raw.decode("utf-16-le", "replace") if flags & 1 else raw.decode("latin-1"))
        elif ptg == 0x19:  # ptgAttr
            if p + 3 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            grbit, w = rgce[p], struct.unpack_from("<H", rgce, p + 1)[0]
            size = 3 + (2 * (w + 1) if grbit & 0x04 else 0)
        elif kind == 0x20:  # ptgArray (its values follow the formula)
            size = 7
            strings.append(None)
        elif kind == 0x21:  # ptgFunc
            if p + 2 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            _check_func(struct.unpack_from("<H", rgce, p)[0], strings, 0)
            size = 2
        elif kind == 0x22:  # ptgFuncVar
            if p + 3 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            argc, tab = rgce[p], struct.unpack_from("<H", rgce, p + 1)[0]
            if tab & 0x8000:
                raise FormulaIssue("ole.xlm", "Excel 4.0 macro command")
            _check_func(tab, strings, argc)
            size = 3
        elif kind == 0x23:  # ptgName
            if not allow_names:
                raise FormulaIssue("ole.formula", "name where none is allowed")
            old = struct.unpack_from("<H", rgce, p)[0]
            if old not in links.names:
                raise FormulaIssue(links.removed.get(old, "ole.formula"), f"refers to a removed name #{old}")
            struct.pack_into("<H", out, p, links.names[old])
            strings.append(None)
            size = 4
        elif kind in (0x24, 0x2A, 0x2C):  # ptgRef, ptgRefErr, ptgRefN
            size = 4
            strings.append(None)
        elif kind in (0x25, 0x2B, 0x2D):  # ptgArea, ptgAreaErr, ptgAreaN
            size = 8
            strings.append(None)
        elif kind in (0x26, 0x27, 0x28):  # ptgMemArea/MemErr/MemNoMem: a sub-expression follows
            size = 6
        elif kind == 0x29:  # ptgMemFunc
            size = 2
        elif kind == 0x39:  # ptgNameX
            if p + 6 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            ixti, iname = struct.unpack_from("<HH", rgce, p)
            _nameX(out, p, ixti, iname, links)
            strings.append(None)
            size = 6
        elif kind in (0x3A, 0x3B, 0x3C, 0x3D):  # 3-D references
            if p + 2 > n:
                raise FormulaIssue("ole.formula", "truncated formula")
            ixti = struct.unpack_from("<H", rgce, p)[0]
            if links.xti_kind.get(ixti) != "self" or ixti not in links.xti:
                raise _link_issue(links.xti_kind.get(ixti), "reference to another workbook")
            struct.pack_into("<H", out, p, links.xti[ixti])
            strings.append(None)
            size = 6 if kind in (0x3A, 0x3C) else 10
        else:
            raise FormulaIssue("ole.formula", f"unknown formula token {ptg:#04x}")
        if p + size > n:
            raise FormulaIssue("ole.formula", "truncated formula")
        pos = p + size
    return bytes(out)


def _check_func(iftab: int, strings: list[str | None], argc: int) -> None:
    fixed_argc = {_HYPERLINK: 2}
    n = argc or fixed_argc.get(iftab, 0)
    args = strings[len(strings) - n:] if n else []
    if n:
        del strings[len(strings) - n:]
    strings.append(None)
    if iftab == _UDF:
        return  # the called name was already checked as ptgName/ptgNameX
    if iftab not in _SAFE_FUNCS:
        raise FormulaIssue("ole.dangerous_function", f"macro or unknown function #{iftab}")
    if iftab == _HYPERLINK:
        target = args[0] if args else None
        if target is None:
            raise FormulaIssue("ole.hyperlink", "HYPERLINK with a computed target")
        if not (_web(target) or in_document(target)):
            raise FormulaIssue("ole.hyperlink", "HYPERLINK to a non-web target")


def _nameX(out: bytearray, p: int, ixti: int, iname: int, links: Links) -> None:
    kind = links.xti_kind.get(ixti)
    if ixti not in links.xti or kind is None:
        raise _link_issue(kind, "name in another workbook")
    if kind == "self":
        if iname not in links.names:
            raise FormulaIssue(links.removed.get(iname, "ole.formula"), "refers to a removed name")
        struct.pack_into("<HH", out, p, links.xti[ixti], links.names[iname])
    elif kind == "addin":
        sb = links.xti_supbook[ixti]
        new = links.addin_names.get((sb, iname))
        if new is None:
            raise FormulaIssue("ole.external_link", "add-in function")
        struct.pack_into("<HH", out, p, links.xti[ixti], new)
    else:
        raise _link_issue(kind, "name in another workbook")


def _link_issue(kind: str | None, detail: str) -> FormulaIssue:
    if kind == "dde":
        return FormulaIssue("ole.dde", "DDE/OLE link")
    return FormulaIssue("ole.external_link", detail)


def _web(target: str) -> bool:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", target.strip())
    return bool(m) and m.group(1).lower() in WEB_SCHEMES
