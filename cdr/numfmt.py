"""What a spreadsheet cell shows: a number under its number format, as Japanese Excel displays it.

Text renditions of .xlsx and .xls print the displayed text (`1,234`, `12.5%`, `2024/1/1`,
`令和6年1月1日`), not the stored float (`2.2857142857142856`). The general engine is the xlfmt
library; this module adds what Japanese workbooks need and it lacks (built-in formats as a
Japanese Excel defines them, era years `g`/`e` and weekday names `aaa`/`aaaa`), and a fast path for
the plain formats most cells use. Anything it cannot format falls back to the General form: a
number is never lost.
"""
from __future__ import annotations

import math
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import xlfmt

# Built-in number formats (numFmtId / BIFF ifmt) as a Japanese Excel shows them (ECMA-376 18.8.30,
# ja-JP column); ids not listed are General.
BUILTIN: dict[int, str] = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
    5: '"¥"#,##0;"¥"\\-#,##0', 6: '"¥"#,##0;[Red]"¥"\\-#,##0',
    7: '"¥"#,##0.00;"¥"\\-#,##0.00', 8: '"¥"#,##0.00;[Red]"¥"\\-#,##0.00',
    9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??",
    14: "yyyy/m/d", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM", 19: "h:mm:ss AM/PM",
    20: "h:mm", 21: "h:mm:ss", 22: "yyyy/m/d h:mm",
    27: "[$-411]ge.m.d", 28: '[$-411]ggge"年"m"月"d"日"', 29: '[$-411]ggge"年"m"月"d"日"', 30: "m/d/yy",
    31: 'yyyy"年"m"月"d"日"', 32: 'h"時"mm"分"', 33: 'h"時"mm"分"ss"秒"', 34: 'yyyy"年"m"月"', 35: 'm"月"d"日"',
    36: "[$-411]ge.m.d",
    37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)", 39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)",
    41: '_ * #,##0_ ;_ * \\-#,##0_ ;_ * "-"_ ;_ @_ ', 42: '_ "¥"* #,##0_ ;_ "¥"* \\-#,##0_ ;_ "¥"* "-"_ ;_ @_ ',
    43: '_ * #,##0.00_ ;_ * \\-#,##0.00_ ;_ * "-"??_ ;_ @_ ',
    44: '_ "¥"* #,##0.00_ ;_ "¥"* \\-#,##0.00_ ;_ "¥"* "-"??_ ;_ @_ ',
    45: "mm:ss", 46: "[h]:mm:ss", 47: "mm:ss.0", 48: "##0.0E+0", 49: "@",
    50: "[$-411]ge.m.d", 51: '[$-411]ggge"年"m"月"d"日"', 52: 'yyyy"年"m"月"', 53: 'm"月"d"日"',
    54: '[$-411]ggge"年"m"月"d"日"', 55: 'yyyy"年"m"月"', 56: 'm"月"d"日"', 57: "[$-411]ge.m.d",
    58: '[$-411]ggge"年"m"月"d"日"',
}

# Japanese eras from their first day: (start, letter, short, name).
_ERAS = ((date(2019, 5, 1), "R", "令", "令和"), (date(1989, 1, 8), "H", "平", "平成"),
         (date(1926, 12, 25), "S", "昭", "昭和"), (date(1912, 7, 30), "T", "大", "大正"),
         (date(1868, 1, 1), "M", "明", "明治"))
_WEEKDAYS = "月火水木金土日"  # date.weekday(): Monday first
_MAX_SERIAL = 2958465  # 9999-12-31: beyond it Excel shows ####
_MAX_CODE = 255  # Excel's own limit on a format code

# Plain formats done without xlfmt: 0, 0.00, #,##0, #,##0.00, 0%, 0.0% ...
_PLAIN = re.compile(r"(#,##)?0(?:\.(0{1,15}))?(%?)")
# Tokens outside quotes, brackets and escapes: era (g, e), Japanese weekday (aaa, aaaa).
_LEX = re.compile(r'"[^"]*"?|\[[^\]]*\]?|\\.|_.|\*.|g+|e+(?![+-])|[aA]{3,4}|.', re.S)


def builtin(fmt_id: int) -> str:
    return BUILTIN.get(fmt_id, "General")


def general(value: float) -> str:
    """Excel's General form in a standard-width cell (2.285714286, 1.23457E+15), except that whole numbers
    keep every digit up to 15 (Excel would show an id of 12 digits as 1.23457E+11)."""
    if not math.isfinite(value):
        return "#NUM!"
    if value == int(value) and abs(value) < 1e15:  # every digit of an id or a phone number
        return str(int(value))
    return str(xlfmt.format_value(value, "General"))


def format_number(value: float, code: str | None, date1904: bool = False) -> str:
    """The text Excel shows for `value` under the format `code` (None or "" = General)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not code or code == "General" or code == "@" or len(code) > _MAX_CODE or not math.isfinite(value):
        return general(value)
    try:
        return _format(value, code, date1904)
    except Exception:  # noqa: BLE001 - a format we cannot read shows the number itself
        return general(value)


@lru_cache(maxsize=4096)
def _plain(code: str) -> tuple[bool, int, bool] | None:
    m = _PLAIN.fullmatch(code)
    if not m:
        return None
    return bool(m.group(1)), len(m.group(2) or ""), bool(m.group(3))


@lru_cache(maxsize=4096)
def _tokens(code: str) -> tuple[tuple[str, ...], bool]:
    """The code's tokens with what xlfmt misreads mended (a lower-case exponent; a dot between date
    parts, which it drops: `yyyy.m.d`), and whether it holds era or weekday tokens."""
    toks = _LEX.findall(code)
    bare = "".join(t for t in toks if t[0] not in '"[\\_*')
    datelike = bool(re.search(r"[ymdhsge]", bare, re.I)) and not re.search(r"[#?]|(?<!\.)0", bare)
    out, special = [], False
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t == "e" and nxt in ("+", "-") and not datelike:
            t = "E"
        elif t == "." and datelike and nxt != "0":
            t = '"."'
        elif (t[0] in "ge" and t.isalpha()) or t.lower() in ("aaa", "aaaa"):
            special = True
        out.append(t)
    return tuple(out), special


def _format(value: float, code: str, date1904: bool) -> str:
    plain = _plain(code)
    if plain is not None:
        grouped, places, percent = plain
        d = Decimal(repr(value)) * (100 if percent else 1)
        d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if d == 0:
            d = abs(d)  # Excel shows 0, not -0
        text = f"{d:,.{places}f}" if grouped else f"{d:.{places}f}"
        return text + ("%" if percent else "")
    toks, special = _tokens(code)
    code = _japanese(value, toks, date1904) if special else "".join(toks)
    return str(xlfmt.format_value(value, code, date1904=date1904)).strip()


def _day(serial: float, date1904: bool) -> date:
    if not 0 <= serial <= _MAX_SERIAL:
        raise ValueError("date out of range")
    days = int(serial)
    if date1904:
        return date(1904, 1, 1) + timedelta(days=days)
    if days >= 60:  # Excel's 1900-02-29, a day that did not exist
        days -= 1
    return date(1899, 12, 31) + timedelta(days=days)


def _japanese(value: float, toks: tuple[str, ...], date1904: bool) -> str:
    """Replace era and weekday tokens with the quoted text they stand for (xlfmt then does the rest)."""
    d = _day(value, date1904)
    era = next((e for e in _ERAS if d >= e[0]), _ERAS[-1])
    out = []
    for tok in toks:
        if tok[0] == "g" and tok.isalpha():
            out.append('"' + (era[1] if len(tok) == 1 else era[2] if len(tok) == 2 else era[3]) + '"')
        elif tok[0] == "e" and tok.isalpha():
            year = d.year - era[0].year + 1
            out.append(f'"{year:02d}"' if len(tok) >= 2 else f'"{year}"')
        elif tok.lower() in ("aaa", "aaaa"):
            out.append('"' + _WEEKDAYS[d.weekday()] + ("曜日" if len(tok) == 4 else "") + '"')
        else:
            out.append(tok)
    return "".join(out)
