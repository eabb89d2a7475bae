"""Legacy binary Office (.doc/.xls/.ppt and templates): find macros and objects, convert to OOXML.

There is no safe way to rebuild the binary formats part by part, so the default policy converts
them with LibreOffice (macros not loaded, links not refreshed) and then runs the OOXML rebuild on
the result, which removes whatever active content survived the conversion.
"""
from __future__ import annotations

import dataclasses
import io
import struct
from pathlib import Path

from ..errors import Blocked, Encrypted, Malformed, ToolMissing
from ..handler import Context, Handler, Option, Rebuilt, family_options, register
from ..model import Detection, Threat
from . import _libreoffice

_W = "application/vnd.openxmlformats-officedocument"
# legacy MIME -> (LibreOffice target, output extension, output MIME)
_TARGETS = {
    "application/msword": ("docx:MS Word 2007 XML", ".docx", f"{_W}.wordprocessingml.document"),
    "application/vnd.ms-excel": ("xlsx:Calc MS Excel 2007 XML", ".xlsx", f"{_W}.spreadsheetml.sheet"),
    "application/vnd.ms-powerpoint": ("pptx:Impress MS PowerPoint 2007 XML", ".pptx",
                                      f"{_W}.presentationml.presentation"),
}
_SOURCE_EXT = {"application/msword": ".doc", "application/vnd.ms-excel": ".xls",
               "application/vnd.ms-powerpoint": ".ppt"}
# Excel opens workbooks "encrypted" with this built-in password without asking (write protection).
_EXCEL_DEFAULT_PASSWORD = "VelvetSweatshop"
_AUTO_NAMES = ("auto_open", "auto_close", "auto_activate", "auto_deactivate")
_BUILTIN_AUTO = {0x01: "Auto_Open", 0x02: "Auto_Close", 0x0A: "Auto_Activate", 0x0B: "Auto_Deactivate"}
_MAX_RECORDS = 2_000_000


def _read_ole(path: Path):
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
    ole = _read_ole(path)
    try:
        entries = ole.listdir(streams=True, storages=True)
        threats = _vba_threats(path, entries)
        threats += _xlm_threats(ole)
        threats += _object_threats(ole, ole.listdir(streams=True, storages=False))
    finally:
        ole.close()
    return threats


def _is_encrypted(path: Path) -> bool:
    import msoffcrypto

    with open(path, "rb") as f:
        try:
            return bool(msoffcrypto.OfficeFile(f).is_encrypted())
        except Exception:  # format msoffcrypto does not know: LibreOffice decides
            return False


def _try_key(src: Path, pw: str) -> bytes | str:
    """The decrypted bytes, or why not: "password" (the header parsed, the key did not verify),
    "unsupported" (an encryption msoffcrypto cannot undo) or "damaged" (no usable encryption header)."""
    import msoffcrypto
    from msoffcrypto import exceptions as mx

    out = io.BytesIO()
    try:
        with open(src, "rb") as f:
            of = msoffcrypto.OfficeFile(f)
            of.load_key(password=pw)
            of.decrypt(out)
    except mx.InvalidKeyError:
        return "password"
    except mx.DecryptionError as exc:
        return "unsupported" if "unsupported" in str(exc).lower() else "damaged"
    except Exception:
        return "damaged"
    return out.getvalue()


def decrypt_if_needed(ctx: Context, src: Path, mime: str) -> tuple[Path, Threat | None]:
    """Return a decrypted copy (or src itself) and a note when decryption happened."""
    if not _is_encrypted(src):
        return src, None
    tries = [] if ctx.password is None else [ctx.password]
    if mime == "application/vnd.ms-excel":
        tries.append(_EXCEL_DEFAULT_PASSWORD)
    why: set[str] = set()
    # Without a password, a throwaway one still tells a real encryption header from a damaged file.
    for pw in tries or ["\x00probe"]:
        data = _try_key(src, pw)
        if isinstance(data, str):
            why.add(data)
        elif tries:
            dst = ctx.workdir / f"decrypted{_SOURCE_EXT.get(mime, '')}"
            dst.write_bytes(data)
            how = "built-in Excel password" if pw == _EXCEL_DEFAULT_PASSWORD and pw != ctx.password \
                else "supplied password"
            return dst, Threat("ole.encrypted", ctx.name, "reported", f"decrypted with the {how}")
    if "password" not in why:
        if "unsupported" in why:
            raise Encrypted("the Office file uses an encryption we cannot open; ask the sender for an unprotected "
                            "copy", "この Office ファイルの暗号化方式には対応していません。送信者に保護なしのファイルを"
                            "依頼してください", threat_id="ole.encrypted")
        raise Malformed("the Office file is marked as password protected, but its encryption information is "
                        "damaged", "パスワード保護の印がありますが、暗号化の情報が壊れているため読み取れません")
    if ctx.password is None:
        raise Encrypted("the Office file is password protected; ask the sender for the password "
                        "and submit it with the file",
                        "パスワードで保護された Office ファイルです。送信者にパスワードを確認し、"
                        "ファイルと一緒に指定してください", threat_id="ole.encrypted")
    raise Encrypted("the password given does not open this Office file; ask the sender for the correct password",
                    "指定されたパスワードではこの Office ファイルを開けません。送信者に正しいパスワードを確認してください",
                    threat_id="ole.encrypted")


def _ooxml_context(ctx: Context) -> Context:
    opts = None
    if ctx.policy is not None:
        try:
            opts = dict(ctx.policy.family("ooxml").options)
        except Exception:
            opts = None
    if not opts:
        opts = {k: o.default for k, o in family_options().get("ooxml", {}).items()}
    return dataclasses.replace(ctx, options=opts)


def _ooxml_module():
    try:
        from . import ooxml
    except ImportError:
        raise ToolMissing("the OOXML sanitizer needed after conversion is not available",
                          "変換後の OOXML 無害化処理が利用できないため処理できません") from None
    return ooxml


def _convert(ctx: Context, src: Path, mime: str) -> Path:
    return _libreoffice.convert(ctx, src, _TARGETS[mime][0], ctx.workdir / "converted", suffix=_SOURCE_EXT[mime])


@register
class LegacyOfficeHandler(Handler):
    family = "legacy_office"
    mime_types = tuple(_TARGETS)
    options = {
        "convert": Option("ooxml", ("ooxml", "block"),
                          help="ooxml: convert with LibreOffice and rebuild as OOXML; block: refuse legacy files"),
    }

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        if _is_encrypted(path):
            return [Threat("ole.encrypted", ctx.name, "found", "password protected")]
        return findings(path)

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        if ctx.options.get("convert", "ooxml") != "ooxml":
            raise Blocked("the policy does not accept Office 97-2003 files; ask the sender for .docx/.xlsx/.pptx "
                          "or PDF", "ポリシーにより Office 97-2003 形式は受け付けていません。送信者に "
                          "docx/xlsx/pptx または PDF での再送を依頼してください", threat_id="policy.blocked")
        if detection.mime not in _TARGETS:
            raise Malformed(f"unexpected type {detection.mime}")
        plain, note = decrypt_if_needed(ctx, src, detection.mime)
        ooxml = _ooxml_module()
        threats = [note] if note else []
        for t in findings(plain):
            action = "neutralized" if t.id == "ole.xlm" else "removed"
            threats.append(Threat(t.id, t.location, action, t.detail))
        ctx.check_time()
        converted = _convert(ctx, plain, detection.mime)
        ctx.check_time()
        inner = ooxml.rebuild_ooxml(_ooxml_context(ctx), converted, dst)
        _target, ext, mime = _TARGETS[detection.mime]
        threats.append(Threat("ole.converted", ctx.name, "reported",
                              f"converted from {detection.label} to {ext} with LibreOffice"))
        threats.extend(inner.threats)
        return Rebuilt(threats=threats, extension=inner.extension or ext, mime=inner.mime or mime,
                       children=list(inner.children))

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        plain, _note = decrypt_if_needed(ctx, path, detection.mime)
        ooxml = _ooxml_module()
        converted = _convert(ctx, plain, detection.mime)
        return ooxml.ooxml_text(converted, _ooxml_context(ctx))
