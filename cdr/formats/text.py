"""Plain text and CSV/TSV.

Plain text is inert: delivered byte for byte. CSV cells that a spreadsheet would
run as a formula (beginning with = + - @, tab or CR) get a leading apostrophe;
every other byte stays as it was, in the original encoding.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..encoding import decode_text, detect_encoding
from ..handler import Context, Handler, Option, Rebuilt, register
from ..model import Detection, Threat

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Plain numbers such as -5, +81, 1,234.5 or 3e5 are data, not formulas.
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d+)*|\.\d+)([eE][+-]?\d+)?%?$")
# Encodings in which the bytes for , " \t \r \n never occur inside a multi-byte character.
_BYTE_SAFE = {"utf-8", "utf-8-sig", "cp932", "shift_jis", "euc_jp", "ascii", "latin-1"}


@register
class TextHandler(Handler):
    family = "text"
    mime_types = ("text/plain",)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return []

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        shutil.copyfile(src, dst)
        return Rebuilt()

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return decode_text(path.read_bytes())[0]


def _delimiter(name: str, text_head: str) -> str:
    if name.lower().endswith(".tsv"):
        return "\t"
    first = text_head.split("\n", 5)[:5]
    tabs = sum(line.count("\t") for line in first)
    commas = sum(line.count(",") for line in first)
    return "\t" if tabs > commas else ","


def _cell_starts(text: str, delim: str):
    """Yield (insert_at, row, col, cell_preview) for every cell a spreadsheet would evaluate.

    A small state machine over RFC 4180: it tracks quotes so that delimiters and
    newlines inside quoted cells are not taken as cell boundaries.
    """
    i, n = 0, len(text)
    row, col = 1, 1
    while i <= n:
        start = i
        quoted = i < n and text[i] == '"'
        first = i + 1 if quoted else i
        # Find the end of this cell.
        if quoted:
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            content = text[i + 1:j].replace('""', '"')
            j += 1
            while j < n and text[j] not in (delim, "\n", "\r"):
                j += 1
        else:
            j = i
            while j < n and text[j] not in (delim, "\n", "\r"):
                j += 1
            content = text[i:j]
        if first < n and content[:1] in _TRIGGERS and (quoted or content[:1] not in ("\r",)) \
                and content[:1] != delim and not _NUMBER.match(content.strip()):
            yield first, row, col, content[:40].encode("utf-8", "replace").decode("utf-8")
        del start
        if j >= n:
            break
        if text[j] == delim:
            col += 1
            i = j + 1
        else:
            if text[j] == "\r" and j + 1 < n and text[j + 1] == "\n":
                j += 1
            row, col = row + 1, 1
            i = j + 1
            if i >= n:
                break


@register
class CsvHandler(Handler):
    family = "csv"
    mime_types = ("text/csv",)
    options = {
        "formulas": Option("neutralize", ("neutralize", "block"),
                           "cells that a spreadsheet would evaluate: prefix an apostrophe, or block the file"),
    }

    def _scan(self, ctx: Context, data: bytes) -> tuple[str, str, str, list]:
        enc = detect_encoding(data)
        # surrogateescape keeps one character per undecodable byte, so offsets map back to bytes exactly.
        errors = "surrogateescape" if enc.replace("-sig", "") in _BYTE_SAFE else "replace"
        text = data.decode(enc, errors)
        delim = _delimiter(ctx.name, text[:4096])
        # Conservative pre-check: no trigger right after a cell boundary (optionally behind a quote),
        # other than a sign starting a plain number, means no formula cell: skip the state machine.
        d = re.escape(delim)
        lead = "=@" + ("" if delim == "\t" else "\t")  # an unquoted CR ends the row, it starts no cell
        trigger = (rf'(?:^|[{d}\r\n])(?:"\r|"?(?:[{lead}]|[+\-](?!(?:\d+(?:[.,]\d+)*|\.\d+)'
                   rf'(?:[eE][+\-]?\d+)?%?"?(?:[{d}\r\n]|$))))')
        if not re.search(trigger, text):
            return text, enc, delim, []
        return text, enc, delim, list(_cell_starts(text, delim))

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        _text, _enc, _delim, cells = self._scan(ctx, path.read_bytes())
        return [Threat("csv.formula", f"row {r}, column {c}", "found", preview)
                for _pos, r, c, preview in cells[:1000]]

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        data = src.read_bytes()
        text, enc, delim, cells = self._scan(ctx, data)
        if not cells:
            dst.write_bytes(data)
            return Rebuilt()
        if ctx.options.get("formulas") == "block":
            from ..errors import Blocked

            r, c = cells[0][1], cells[0][2]
            raise Blocked(f"the CSV contains spreadsheet formulas (row {r}, column {c})",
                          f"CSV に数式として実行されるセルがあります（{r} 行 {c} 列）", threat_id="csv.formula")
        threats = [Threat("csv.formula", f"row {r}, column {c}", "neutralized", preview)
                   for _pos, r, c, preview in cells[:1000]]
        if len(cells) > 1000:
            threats.append(Threat("csv.formula", f"{len(cells) - 1000} more cells", "neutralized"))
        base = enc.replace("-sig", "") if enc != "utf-8-sig" else "utf-8"
        if base in _BYTE_SAFE and all(ch in "\t\r\n,\"" for ch in delim):
            out = self._insert_bytes(data, enc, cells, text)
        else:
            parts, last = [], 0
            for pos, *_ in cells:
                parts.append(text[last:pos])
                parts.append("'")
                last = pos
            parts.append(text[last:])
            out = "".join(parts).encode(enc, "replace")
        dst.write_bytes(out)
        return Rebuilt(threats=threats)

    @staticmethod
    def _insert_bytes(data: bytes, enc: str, cells: list, text: str) -> bytes:
        """Insert b"'" at byte offsets mapped from character offsets, leaving all other bytes alone."""
        codec = "utf-8" if enc == "utf-8-sig" else enc
        bom = 3 if enc == "utf-8-sig" else 0
        out, last_char, last_byte = [], 0, bom
        body = data[bom:]
        if enc == "utf-8-sig" and text.startswith("\ufeff"):
            text = text[1:]
            cells = [(p - 1, *rest) for p, *rest in cells]
        for pos, *_ in cells:
            # Byte length of text[last_char:pos] in the original encoding.
            chunk_len = len(text[last_char:pos].encode(codec, "surrogateescape"))
            out.append(body[last_byte - bom:last_byte - bom + chunk_len])
            out.append(b"'")
            last_byte += chunk_len
            last_char = pos
        out.append(body[last_byte - bom:])
        return data[:bom] + b"".join(out)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return decode_text(path.read_bytes())[0]
