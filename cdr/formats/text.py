"""Plain text and CSV/TSV.

Plain text is inert: delivered byte for byte, once every byte is proven to decode in the
encoding detected. CSV cells that a spreadsheet would run as a formula (beginning with
= + - @, their full-width forms, tab or CR) get a leading apostrophe; every other byte
stays as it was, in the original encoding.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..encoding import decode_text, decode_whole
from ..errors import Blocked, Malformed
from ..handler import Context, Handler, Rebuilt, register
from ..model import Detection, Threat
from ._catalog import OPTIONS
from ._memo import ProvenClean

# Control characters no text file needs (TAB, LF, VT, FF, CR, the DOS end-of-file mark and ESC stay).
# Detection looks at the head only; a ZIP or an EXE appended to text is full of them.
_BINARY = re.compile(r"[\x00-\x08\x0e-\x19\x1c-\x1f]")
# Codecs in which such a byte is always that character and no multi-byte character holds or decodes to
# one (tests check every sequence): a strict decoding holds one exactly when the bytes do, and
# bytes.translate finds that 8 times faster than the regex on the text.
_CONTROL_BYTE_SAFE = frozenset({"utf-8", "utf-8-sig", "cp932", "euc_jp"})
_NOT_BINARY_BYTES = bytes(b for b in range(256) if not _BINARY.match(chr(b)))
# A rebuild's input proven free of findings and written unchanged: the verify step's inspect of the same
# bytes need not scan them again.
_proven = ProvenClean()


def binary_data(text: str, where: str = "") -> Threat | None:
    """A finding when decoded 'text' holds bytes only binary data has (a smuggled archive or program)."""
    m = _BINARY.search(text)
    if m is None:
        return None
    return Threat("text.binary_data", where or f"character {m.start()}", "found",
                  f"control character U+{ord(m.group()):04X}: binary data inside a text file")


def _refuse_binary(found: Threat) -> None:
    if found.location == "encoding":
        raise Blocked(f"the text file does not decode completely ({found.detail}); it is cut short or holds "
                      "binary data", "テキストファイルの文字コードを最後まで読み取れません（途中で切れているか、"
                      "バイナリデータが含まれています）。配送を停止しました", threat_id="text.binary_data")
    raise Blocked(f"the text file contains binary data ({found.location}); it may hide a program or archive",
                  "テキストファイルの中にバイナリデータ（プログラムや圧縮ファイルの可能性）が含まれているため"
                  "配送を停止しました", threat_id="text.binary_data")


def decode_checked(data: bytes) -> tuple[str, str, Threat | None]:
    """(text, codec, finding): the whole file decoded strictly and checked for binary data. A file that no
    encoding reads to its end (UTF-16 cut to an odd length, an unpaired surrogate, invalid UTF-8) is
    reported, with the lenient decoding as its text."""
    whole = decode_whole(data)
    if whole is None:
        text, enc = decode_text(data)
        return text, enc, Threat("text.binary_data", "encoding", "found",
                                 f"not decodable as {enc} to its end: truncated or binary data")
    text, enc = whole
    if codecs.lookup(enc).name in _CONTROL_BYTE_SAFE and not data.translate(None, _NOT_BINARY_BYTES):
        return text, enc, None
    return text, enc, binary_data(text)


@register
class TextHandler(Handler):
    family = "text"
    mime_types = ("text/plain",)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        data = path.read_bytes()
        if _proven.holds(self.family, data):
            return []
        found = decode_checked(data)[2]
        return [found] if found else []

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        data = src.read_bytes()
        found = decode_checked(data)[2]
        if found:
            _refuse_binary(found)
        dst.write_bytes(data)  # the bytes just checked, not a second read of the source
        _proven.remember(self.family, data)
        return Rebuilt()

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return decode_text(path.read_bytes())[0]


# Japanese Excel reads full-width ＝ ＋ － ＠ as their ASCII forms (and "－５" as the number -5): a cell is
# judged after that reading. "－" alone and "－" before a number stay data, as "-" and "-5" do.
_LEAD = "=@＝＠"
_SIGNS = "+-＋－"
_SIGN = f"[{re.escape(_SIGNS)}]"
_D = "[0-9０-９]"
_UNUM = rf"(?:{_D}+(?:[.,．，]{_D}+)*|[.．]{_D}+)(?:[eE][+\-]?{_D}+)?[%％]?"
# Plain numbers such as -5, +81, 1,234.5 or 3e5 are data, not formulas.
_NUMBER = re.compile(rf"{_SIGN}?{_UNUM}$")
_SIGNS_ONLY = re.compile(rf"{_SIGN}+$")
_WS = r"[^\S\r\n]*"
# Encodings in which the bytes for , " \t \r \n never occur inside a multi-byte character.
_BYTE_SAFE = {"utf-8", "cp932", "shift_jis", "euc_jp", "ascii", "latin-1"}
# Excel (Japanese locale) splits a .csv on commas whatever it holds, a UTF-16 file on tabs, and honours
# a `sep=X` first line; a file laid out with tabs or semicolons is read that way by other programs and
# locales. We neutralise what any of those readings would run, and only those: splitting a comma file
# on tabs would make "-500,返金" one cell that starts with a sign.
_SEP_LINE = re.compile(r'\ufeff?"?sep=([^\r\n])', re.IGNORECASE)
_DELIM_NAMES = {"\t": "tab", ";": "semicolon"}


def _delimiters(text: str, utf16: bool = False) -> tuple[str, ...]:
    first = text[:65536].split("\n", 2)
    header = first[1] if _SEP_LINE.match(text) and len(first) > 1 else first[0]
    delims = [","]
    for d in ("\t", ";"):
        if (d == "\t" and utf16) or header.count(d) > header.count(","):
            delims.append(d)
    m = _SEP_LINE.match(text)
    if m and m.group(1) not in delims:
        delims.append(m.group(1))
    return tuple(delims)


def _cell_start(d: str | None, quoted: bool) -> str:
    """Regex for what follows a cell boundary when the cell is a formula, split on `d`.

    d=None is for a line start under any split: it flags a superset (a sign is data only when the
    number ends the line), since a comma-split "-5,x" is one cell "-5,x" when split on tabs.
    """
    d = d or ""
    term = f"(?:[{re.escape(d)}\r\n]|$)"

    def chars(cs: str) -> str:
        return re.escape("".join(c for c in cs if c != d))

    # = and @ always start a formula; a sign, or whitespace a spreadsheet trims, unless a plain number follows.
    lead, signs, ws = chars(_LEAD), chars(_SIGNS), chars("\t")
    alts = [f"[{lead}]"] if lead else []
    # A cell of signs alone ("-", "--": 該当なし) cannot call anything: it stays as it is.
    alts += [rf"[{signs}](?!{_UNUM}{_WS}{term})(?![{signs}]*{_WS}{term})"] if signs else []
    alts += [rf"[{ws}](?!{_WS}{_SIGN}?{_UNUM}{_WS}{term})"] if ws else []
    if quoted and d != '"':  # a quoted cell, unless the quote is the delimiter
        end = rf'\s*"{term}'
        qalts = [f"[{lead}]"] if lead else []
        qalts += [rf"[{signs}](?!{_UNUM}{end})(?![{signs}]*{end})"] if signs else []
        qalts.append(rf"[{chars(chr(9) + chr(13))}](?!\s*{_SIGN}?{_UNUM}{end})")
        alts.insert(0, f'"(?:{"|".join(qalts)})')
    return "|".join(alts)


@lru_cache(maxsize=32)
def _patterns(d: str) -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """(first cell, pre-check, tokenizer) for cells split on `d`.

    The pre-check ignores quote state, so it finds a superset of the tokenizer's formula cells and
    lets a clean file skip tokenizing. The tokenizer consumes quoted fields whole (delimiters and
    newlines inside them are not boundaries) and yields quoted fields and unquoted formula cells; it
    starts only where a quote or trigger follows a boundary (or the start), a lookahead the regex engine
    skips to quickly. Row ends are counted between its matches (_formula_cells).
    """
    e = re.escape(d)
    start = _cell_start(d, True)
    quoted = rf'"(?P<q>[^"]*(?:""[^"]*)*)(?:"(?P<t>[^{e}\r\n]*))?|' if d != '"' else ""
    tok = rf"(?=[{re.escape(_TRIGGERS)}])(?<![^{e}\r\n])(?:{quoted}(?P<u>{_cell_start(d, False)}))"
    return re.compile(f"(?:{start})"), re.compile(rf"[{e}\r\n](?:{start})"), re.compile(tok)


@lru_cache(maxsize=32)
def _any_split_patterns(delims: tuple[str, ...]) -> tuple[re.Pattern, re.Pattern]:
    """(first cell, one pass) finding a superset of the formula cells of every split in `delims`."""
    branches = [rf"[\r\n](?:{_cell_start(None, True)})"]
    branches += [rf"{re.escape(d)}(?:{_cell_start(d, True)})" for d in delims]
    # The leading lookahead lets the regex engine skip quickly from one boundary character to the next.
    return (re.compile(f"(?:{_cell_start(None, True)})"),
            re.compile(f"(?=[{re.escape(''.join(delims))}\r\n])(?:{'|'.join(branches)})"))


# What can follow a cell boundary when the cell is a formula, under any split (see _cell_start), and
# what can follow the opening quote of a quoted one.
_TRIGGERS = _LEAD + _SIGNS + '\t"'
_AFTER_QUOTE = _LEAD + _SIGNS + "\t\r"


@lru_cache(maxsize=128)
def _candidates(trigger: str, delims: tuple[str, ...]) -> re.Pattern:
    """`trigger` right after a boundary of any split in `delims` (a quote only before a trigger): where a
    match of `_any_split_patterns` can start, one character later. One literal per regex: the engine
    skips to a literal 8 times faster than to any of a set."""
    pattern = f"{re.escape(trigger)}(?<=[{re.escape(''.join(delims))}\r\n].)"
    if trigger == '"':
        pattern += f"(?=[{re.escape(_AFTER_QUOTE)}])"
    return re.compile(pattern, re.DOTALL)


def _any_formula_cell(text: str, delims: tuple[str, ...]) -> bool:
    """Whether some split in `delims` may have a formula cell: the answer of `_any_split_patterns`."""
    return _starts_formula(text, delims, *_any_split_patterns(delims))


def _starts_formula(text: str, delims: tuple[str, ...], first: re.Pattern, anywhere: re.Pattern) -> bool:
    """`first.match(text) or anywhere.search(text)`, for a pair whose every match of `anywhere` starts
    at a boundary of `delims` (or a line) before a trigger (`_candidates`).

    That regex stops at every boundary (a CSV is full of them); here it is asked only where a trigger
    follows a boundary, found by a search for each trigger that occurs at all.
    """
    if first.match(text):
        return True
    budget = 64
    for c in _TRIGGERS:
        if c not in text:
            continue
        for m in _candidates(c, delims).finditer(text):
            if anywhere.match(text, m.start() - 1):
                return True
            budget -= 1
            if not budget:  # many near misses (-5 is data): one pass costs less than a call each
                return anywhere.search(text) is not None
    return False


def _formula_cells(text: str, d: str) -> list[tuple[int, int, int]]:
    """(insert_at, row, col) of every cell that a spreadsheet splitting on `d` would evaluate."""
    first, pre, tok = _patterns(d)
    if not _starts_formula(text, (d,), first, pre):
        return []
    found, row, col, last = [], 1, 1, 0
    for m in tok.finditer(text):
        # Every line break since the last match ends a row (those in quoted cells are inside matches;
        # no match starts or ends inside a CRLF): counted here instead of a match each.
        nl = max(text.rfind("\n", last, m.start()), text.rfind("\r", last, m.start()))
        if nl < 0:
            col += text.count(d, last, m.start())
        else:
            end = nl + 1
            row += text.count("\n", last, end) + text.count("\r", last, end) - text.count("\r\n", last, end)
            col = 1 + text.count(d, nl + 1, m.start())
        if m["u"]:
            found.append((m.start(), row, col))
            last = m.start()
            continue
        last = m.end()
        q = m.group("q")
        c = q[:1]
        value = (q.replace('""', '"') + (m.group("t") or "")).strip()
        if c and c != d and (c in _LEAD or c in _SIGNS + "\t\r" and not _NUMBER.match(value)
                             and not (c in _SIGNS and _SIGNS_ONLY.match(value))):
            found.append((m.start() + 1, row, col))
    return found


@dataclass
class _Scan:
    data: bytes
    enc: str
    codec: str | None  # None: the file cannot be rewritten in place
    errors: str
    bom: int = 0
    tail: int = 0  # stray last byte of odd-length UTF-16 (inspect only: such a file is never delivered)
    text: str = ""
    cells: list[tuple[int, str, str]] = field(default_factory=list)  # (insert_at, location, preview)


@register
class CsvHandler(Handler):
    family = "csv"
    mime_types = ("text/csv",)
    options = OPTIONS["csv"]

    def _scan(self, data: bytes) -> tuple[_Scan, Threat | None]:
        text, enc, found = decode_checked(data)
        return self._scan_as(data, enc, None if found else text), found

    def _scan_as(self, data: bytes, enc: str, text: str | None) -> _Scan:
        """`text`: the file already decoded strictly in `enc` (the same text as decoding the body)."""
        name = codecs.lookup(enc).name
        if name == "utf-8-sig":
            return self._cells(_Scan(data, enc, "utf-8", "surrogateescape", 3, text=text or ""))
        if name == "utf-16":
            # Decode one byte order explicitly so that offsets map to bytes; keep a stray odd byte as is.
            codec = "utf-16-le" if data[:2] == b"\xff\xfe" else "utf-16-be"
            return self._cells(_Scan(data, enc, codec, "surrogatepass", 2, (len(data) - 2) % 2, text or ""))
        if name in _BYTE_SAFE or _single_byte(name):
            scan = self._cells(_Scan(data, enc, name, "surrogateescape", text=text or ""))
            if name in ("utf-8", "euc_jp") and any("@" <= d <= "~" for d in _delimiters(scan.text)):
                self._check_cp932_reading(scan)
            return scan
        # ISO-2022-JP and other encodings whose multi-byte characters contain ASCII bytes: Japanese Excel
        # reads a BOM-less CSV as CP932 and sees those bytes as , = + ..., which we cannot prefix without
        # breaking the character. Look at both readings; such a file can only be delivered untouched.
        scan = self._cells(_Scan(data, enc, None, "replace", text=text or ""))
        ascii_view = data.decode("latin-1")  # CP932 reading: same delimiter, quote and trigger bytes
        for d in _delimiters(ascii_view):
            scan.cells += [(p, f"row {r}, column {c} (as Shift_JIS)", _preview(ascii_view, p, d))
                           for p, r, c in _formula_cells(ascii_view, d)]
        return scan

    @staticmethod
    def _check_cp932_reading(scan: _Scan) -> None:
        """Japanese Excel reads a BOM-less CSV as CP932, where a lead byte can swallow a following
        0x40-0x7E byte. Only a `sep=` delimiter lies in that range; a swallowed one shifts quoting, so
        formula cells of that reading must be ones we neutralise anyway, or the file cannot be fixed."""
        view = scan.data.decode("cp932", "surrogateescape")
        theirs: dict[int, str] = {}
        for d in _delimiters(view):
            cells = _formula_cells(view, d)
            for b, (_p, r, c) in zip(_byte_offsets(view, [x[0] for x in cells], "cp932", "surrogateescape"),
                                     cells, strict=True):
                theirs.setdefault(b, f"row {r}, column {c} (as Shift_JIS)")
        ours = set(_byte_offsets(scan.text, [x[0] for x in scan.cells], scan.codec, scan.errors))
        extra = sorted(set(theirs) - ours)
        if extra:
            scan.codec = None
            scan.cells += [(b, theirs[b], "") for b in extra]

    @staticmethod
    def _cells(scan: _Scan) -> _Scan:
        if not scan.text:
            body = scan.data[scan.bom:len(scan.data) - scan.tail]
            scan.text = body.decode(scan.codec or scan.enc, scan.errors)
        found: dict[int, tuple[str, str]] = {}
        delims = _delimiters(scan.text, utf16=(scan.codec or "").startswith("utf-16"))
        if not _any_formula_cell(scan.text, delims):
            delims = ()  # the common clean file: one regex pass instead of one per split
        for d in delims:
            how = f" (split on {_DELIM_NAMES.get(d, repr(d))})" if d != "," else ""
            for p, r, c in _formula_cells(scan.text, d):
                found.setdefault(p, (f"row {r}, column {c}{how}", _preview(scan.text, p, d)))
        scan.cells = [(p, *found[p]) for p in sorted(found)]
        return scan

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        data = path.read_bytes()
        if _proven.holds(self.family, data):
            return []
        scan, found = self._scan(data)
        return [Threat("csv.formula", loc, "found", preview) for _pos, loc, preview in scan.cells[:1000]] + \
            ([found] if found else [])

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        data = src.read_bytes()
        scan, found = self._scan(data)
        if found:
            _refuse_binary(found)
        cells = scan.cells
        if not cells:
            dst.write_bytes(data)
            _proven.remember(self.family, data)
            return Rebuilt()
        loc = cells[0][1]
        if scan.codec is None:
            label = {"iso2022_jp": "ISO-2022-JP (JIS)", "utf-8": "UTF-8 without BOM", "euc_jp": "EUC-JP"}.get(
                codecs.lookup(scan.enc).name, scan.enc)
            raise Blocked(f"the CSV is saved as {label}, which Excel reads differently, and contains cells "
                          f"that would run as formulas ({loc}); ask the sender to save it as Shift_JIS "
                          f"(CP932) or UTF-8 (Excel: CSV UTF-8)",
                          f"この CSV は {label} で保存されており、Excel では別の文字として読まれて数式が実行"
                          f"されるおそれがあります（{loc}）。送信者に Shift_JIS（CP932）または UTF-8"
                          f"（Excel の「CSV UTF-8」）で保存し直すよう依頼してください", threat_id="csv.formula")
        if ctx.options.get("formulas") == "block":
            raise Blocked(f"the CSV contains spreadsheet formulas ({loc})",
                          f"CSV に数式として実行されるセルがあります（{loc}）", threat_id="csv.formula")
        threats = [Threat("csv.formula", loc, "neutralized", preview) for _pos, loc, preview in cells[:1000]]
        if len(cells) > 1000:
            threats.append(Threat("csv.formula", f"{len(cells) - 1000} more cells", "neutralized"))
        out, expected = _insert_apostrophes(scan)
        # Offsets come from re-encoding chunks; a codec whose round trip changes a length (EUC-JP maps
        # 0x8FA2B7 to "~") would shift them, so check the result decodes to exactly what we meant.
        body = out[scan.bom:len(out) - scan.tail]
        if body.decode(scan.codec, scan.errors) != expected:
            raise Malformed("the CSV encoding could not be rewritten byte for byte",
                            "CSV の文字コードを元のまま書き換えられませんでした", threat_id="csv.formula")
        dst.write_bytes(out)
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return decode_text(path.read_bytes())[0]


def _insert_apostrophes(scan: _Scan) -> tuple[bytes, str]:
    """Insert an encoded apostrophe before each cell, leaving every original byte alone; also the text
    that output should decode to."""
    data, text = scan.data, scan.text
    mark = "'".encode(scan.codec)
    positions = sorted(pos for pos, *_ in scan.cells)
    out, parts, last_char, last_byte = [], [], 0, 0
    for pos, at in zip(positions, _byte_offsets(text, positions, scan.codec, scan.errors), strict=True):
        out += [data[scan.bom + last_byte:scan.bom + at], mark]
        parts += [text[last_char:pos], "'"]
        last_byte, last_char = at, pos
    return data[:scan.bom] + b"".join(out) + data[scan.bom + last_byte:], "".join(parts) + text[last_char:]


def _byte_offsets(text: str, positions: list[int], codec: str, errors: str) -> list[int]:
    offsets, last, at = [], 0, 0
    for pos in sorted(positions):
        at += len(text[last:pos].encode(codec, errors))
        offsets.append(at)
        last = pos
    return offsets


_QUOTED = re.compile(r'(?:[^"]|"")*')


def _preview(text: str, pos: int, d: str = ",") -> str:
    """The cell's value (its first 40 characters): up to its delimiter, or its closing quote when quoted."""
    window = text[pos:pos + 400]
    if pos > 0 and text[pos - 1] == '"' and (pos == 1 or text[pos - 2] in (d, "\n", "\r")):
        quoted = _QUOTED.match(window).group(0)
        cell = quoted.replace('""', '"')
        # After a closing quote that does not end the cell (a stray " inside), Excel keeps reading up to
        # the delimiter: "=HYPERLINK("http://x",...) is the cell =HYPERLINK(http://x" as Excel shows it.
        rest = window[len(quoted) + 1:]
        if rest and rest[0] not in (d, "\r", "\n"):
            cell += re.split("[\r\n" + re.escape(d) + "]", rest, maxsplit=1)[0]
    else:
        cell = re.split("[\r\n" + re.escape(d) + "]", window, maxsplit=1)[0]
    cell = " ".join(cell.split("\n")).replace("\r", " ")
    if len(cell) > 40:
        cell = cell[:40] + "…"
    return cell.encode("utf-8", "replace").decode("utf-8")


@lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """One character per byte and ASCII as ASCII (cp1252, latin-1, ...): offsets map 1:1."""
    # Stateful codecs (ISO-2022-JP, UTF-7, HZ) pass single bytes through but not escape sequences.
    sample = bytes(range(256)) + b"\x1b$B0,\x1b(B+AD0-~{0,~}"
    try:
        whole = sample.decode(codec, "surrogateescape")
        each = "".join(bytes([b]).decode(codec, "surrogateescape") for b in sample)
    except (UnicodeDecodeError, LookupError):
        return False
    return whole == each and len(whole) == len(sample) and whole[:128] == "".join(map(chr, range(128)))
