"""What oletools and a quick BIFF/PowerPoint scan find in a legacy Office file (action "found").

This is the family's second opinion, kept for every mode: VBA projects wherever olevba finds
them, Excel 4.0 macro sheets and auto-run names, embedded OLE objects. The per-format walkers
(xls.py, ...) report what they remove; these findings make sure nothing they did not
understand goes unreported.
"""
from __future__ import annotations

import struct
from pathlib import Path

from ...errors import Malformed
from ...model import Threat

_AUTO_NAMES = ("auto_open", "auto_close", "auto_activate", "auto_deactivate")
_BUILTIN_AUTO = {0x01: "Auto_Open", 0x02: "Auto_Close", 0x0A: "Auto_Activate", 0x0B: "Auto_Deactivate"}
_MAX_RECORDS = 2_000_000


def read_ole(path: Path):
    import olefile

    try:
        return olefile.OleFileIO(str(path))
    except Exception as exc:
        raise Malformed(f"not a readable Office 97-2003 file ({type(exc).__name__})",
                        "Office 97-2003 形式として読み取れません") from None


def _vba_threats(path: Path, entries: list[list[str]]) -> list[Threat]:
    found: list[Threat] = []
    roots: set[str] = set()
    try:
        from oletools.olevba import VBA_Parser

        vp = VBA_Parser(str(path))
        try:
            if vp.detect_vba_macros():
                projects = vp.find_vba_projects() if vp.ole_file is not None else []
                roots |= {(root or "/").rstrip("/") or "/" for root, _p, _d in projects or []}
                if not roots:
                    roots.add("VBA project")
        finally:
            vp.close()
    except Exception:  # a parser failure must not hide a macro storage: fall back to names
        pass
    for e in entries:
        upper = [p.upper() for p in e]
        if "VBA" in upper[:-1] or upper[0] in ("MACROS", "_VBA_PROJECT_CUR") and len(e) > 1:
            roots.add(e[0])
    for root in sorted(roots):
        found.append(Threat("ole.vba", root, "found", "VBA macro project"))
    return found


def _biff_records(data: bytes):
    pos, n = 0, 0
    while pos + 4 <= len(data) and n < _MAX_RECORDS:
        rtype, size = struct.unpack_from("<HH", data, pos)
        yield rtype, data[pos + 4: pos + 4 + size]
        pos += 4 + size
        n += 1


def _xlm_threats(ole) -> list[Threat]:
    name = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
    if name is None:
        return []
    data = ole.openstream(name).read()
    found: list[Threat] = []
    for rtype, body in _biff_records(data):
        if rtype == 0x000A:  # EOF of the workbook globals: sheets and names are declared before it
            break
        if rtype == 0x0085 and len(body) >= 8:  # BOUNDSHEET8
            dt = body[5]
            sheet = _short_string(body[6:])
            if dt == 0x01:
                found.append(Threat("ole.xlm", f"sheet {sheet}", "found", "Excel 4.0 (XLM) macro sheet"))
        elif rtype == 0x0018 and len(body) >= 15:  # NAME (Lbl)
            flags, _key, cch = struct.unpack_from("<HBB", body, 0)
            high = body[14] & 1
            raw = body[15: 15 + cch * (2 if high else 1)]
            label = raw.decode("utf-16-le" if high else "latin-1", "replace")
            if flags & 0x0020:  # fBuiltin: the name is one code unit
                code = ord(label[0]) if label else -1
                if code in _BUILTIN_AUTO:
                    found.append(Threat("ole.xlm", f"name {_BUILTIN_AUTO[code]}", "found", "auto-run macro name"))
            elif label.lower().startswith(_AUTO_NAMES) or flags & 0x0008:  # fProc: names a macro
                found.append(Threat("ole.xlm", f"name {label}", "found", "macro-defined name"))
    return found


def _short_string(b: bytes) -> str:
    if len(b) < 2:
        return ""
    cch, high = b[0], b[1] & 1
    raw = b[2: 2 + cch * (2 if high else 1)]
    return raw.decode("utf-16-le" if high else "latin-1", "replace")


def _ppt_has_objects(data: bytes) -> int:
    """Count ExOleObjStg records (embedded OLE objects, also VBA) in a PowerPoint Document stream."""
    count, stack, n = 0, [(0, len(data))], 0
    while stack and n < _MAX_RECORDS:
        pos, end = stack.pop()
        while pos + 8 <= end and n < _MAX_RECORDS:
            n += 1
            ver_inst, rtype, size = struct.unpack_from("<HHI", data, pos)
            body_end = min(pos + 8 + size, end)
            if rtype == 0x1011:
                count += 1
            elif ver_inst & 0x000F == 0x000F and size:
                stack.append((pos + 8, body_end))
            pos = pos + 8 + size
    return count


def _object_threats(ole, entries: list[list[str]]) -> list[Threat]:
    found: list[Threat] = []
    seen: set[str] = set()
    for e in entries:
        top = e[0]
        if len(e) >= 3 and top == "ObjectPool":  # Word: one storage (holding streams) per object
            key = "/".join(e[:2])
        elif top.startswith("MBD") and len(e) >= 2:  # Excel embedded objects
            key = top
        elif e[-1] in ("\x01Ole10Native", "Package", "\x01Ole10ItemName") and len(e) >= 2:
            key = "/".join(e[:-1])
        else:
            continue
        if key not in seen:
            seen.add(key)
            found.append(Threat("ole.object", key.replace("\x01", ""), "found", "embedded OLE object"))
    if ole.exists("PowerPoint Document"):
        n = _ppt_has_objects(ole.openstream("PowerPoint Document").read())
        if n:
            found.append(Threat("ole.object", "PowerPoint Document", "found", f"{n} embedded OLE object(s)"))
    return found


def findings(path: Path) -> list[Threat]:
    """Active content in a decrypted legacy Office file (action "found")."""
    ole = read_ole(path)
    try:
        entries = ole.listdir(streams=True, storages=True)
        threats = _vba_threats(path, entries)
        threats += _xlm_threats(ole)
        threats += _object_threats(ole, ole.listdir(streams=True, storages=False))
    finally:
        ole.close()
    return threats


