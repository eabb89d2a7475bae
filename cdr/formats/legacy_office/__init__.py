"""Legacy binary Office (.doc/.xls/.ppt and templates): rebuilt in their own format, or converted.

`[families.legacy_office] mode`:
- "rebuild" (default): a new compound file of the same format is written (cfb.py) from the
  streams a per-format rebuilder understands, walked record by record; property streams are
  rebuilt from what rendering needs (props.py). A format without a rebuilder yet, or a file
  whose structure is too damaged to walk, is converted instead, and the report says so.
- "convert": LibreOffice converts to OOXML and the OOXML rebuild runs on the result (convert.py).
  `convert = "block"` refuses whatever would have to be converted.
oletools' findings (findings.py) run in both modes, before and after, as a second opinion.

Per-format rebuilders
---------------------
A module of this package named in REBUILDERS (xls.py, doc.py, ppt.py) provides

    def rebuild(ole: olefile.OleFileIO, ctx: Context, report: Report) -> dict[str, bytes]

returning the streams of the new file by "/"-separated path (storages are implied by the
paths; leave out the two property streams, the family writes those). It may define
`ROOT_CLSIDS`, the root CLSIDs it accepts from the source (others are written as zero). While
walking it calls
- `report.threat(id, location, detail, action="removed")` for active content taken out
  ("neutralized" when something was replaced, e.g. a formula by its cached value; "converted"
  when it was changed, e.g. a veryHidden sheet made hidden; "reported" for a note that is not a
  threat);
- `report.note(text)` for a loss that is not active content (an unknown record dropped): it
  becomes a warning;
- `raise Unrebuildable(reason)` when the structure is too damaged to rebuild: the family then
  converts, with a warning and the reason in the `ole.converted` detail.
A module may also define `text(ole, ctx) -> str`, the text rendition read by its walker (used in
rebuild mode instead of a LibreOffice conversion; any failure falls back to the conversion).
The rebuild function is the verify walker: `inspect` runs it on the rebuilt file and anything it
would still remove (any threat whose action is not "reported") blocks the output.
Source entries left out of the output that the rebuilder did not report are classified here
(VBA storages, MBD*/ObjectPool objects, ActiveX Ctls); anything else becomes a note.
"""
from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import Blocked, CdrError, Malformed
from ...handler import Context, Handler, Rebuilt, register
from ...model import Detection, Threat
from .._catalog import OPTIONS
from . import cfb, convert, props
from .crypto import decrypt_if_needed, is_encrypted
from .findings import findings, read_ole

__all__ = ["Report", "Unrebuildable", "findings", "is_encrypted", "REBUILDERS"]

# MIME -> module of this package with the format's rebuilder (absent modules mean "convert").
REBUILDERS = {"application/vnd.ms-excel": "xls", "application/msword": "doc",
              "application/vnd.ms-powerpoint": "ppt"}
_LABEL = {"application/vnd.ms-excel": "Excel 97-2003", "application/msword": "Word 97-2003",
          "application/vnd.ms-powerpoint": "PowerPoint 97-2003"}
_VBA_TOPS = {"_VBA_PROJECT_CUR", "MACROS", "_VBA_PROJECT", "VBA"}
_MAX_NOTES = 20

# Kept as is (ours to write) or simply not needed: dropped without a note.
_QUIET = {props.SUMMARY, props.DOC_SUMMARY, "\x01CompObj", "\x01Ole", "\x03AccessObjSiteData"}


class Unrebuildable(Exception):
    """The structure is too damaged (or too unusual) to rebuild; the family falls back to convert."""


@dataclass
class Report:
    """What a rebuilder removed, changed and lost."""

    threats: list[Threat] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def threat(self, tid: str, location: str, detail: str, action: str = "removed") -> None:
        self.threats.append(Threat(tid, location, action, detail))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def merged(self) -> list[Threat]:
        """One entry per (id, location, action); repeats counted in the detail."""
        seen: dict[tuple[str, str, str], list] = {}
        for t in self.threats:
            key = (t.id, t.location, t.action)
            if key in seen:
                seen[key][1] += 1
            else:
                seen[key] = [t, 1]
        return [Threat(t.id, t.location, t.action, t.detail + (f" (x{n})" if n > 1 else ""))
                for t, n in seen.values()]


def rebuilder_for(mime: str):
    """The format's rebuilder module, or None while it has none (then the file is converted)."""
    name = REBUILDERS.get(mime)
    if name is None:
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            return None
        raise


def _classify_dropped(source: list[list[str]], kept: set[str], report: Report) -> None:
    """Report the source entries a rebuilder left out without saying why."""
    told = {t.location.split("/")[0] for t in report.threats}
    done: set[str] = set()
    for parts in source:
        path = "/".join(parts)
        top = parts[0]
        if path in kept or top in done or top in told:
            continue
        upper = [p.upper() for p in parts]
        if top.upper() in _VBA_TOPS or "VBA" in upper[:-1]:
            report.threat("ole.vba", top, "VBA macro project")
        elif top.startswith("MBD") or top == "ObjectPool" or parts[-1] in ("\x01Ole10Native", "Package"):
            report.threat("ole.object", top, "embedded OLE object")
        elif top.upper() == "CTLS":
            report.threat("ole.activex", top, "ActiveX controls")
        elif top not in _QUIET and len(report.notes) < _MAX_NOTES:
            report.note(f"stream {path.replace(chr(1), '').replace(chr(5), '')} not kept")
        else:
            continue
        done.add(top)


def walk(ole, module, ctx: Context, report: Report) -> dict[str, bytes]:
    """Run `module`'s rebuilder and add the rebuilt property streams; the streams of the new file."""
    streams = module.rebuild(ole, ctx, report)
    keep_meta = ctx.options.get("metadata", "drop") == "keep"
    dropped_meta = False
    for name in (props.SUMMARY, props.DOC_SUMMARY):
        if not ole.exists(name):
            continue
        data, notes = props.rebuild(name, ole.openstream(name).read(), keep_meta)
        if data is not None:
            streams[name] = data
        dropped_meta |= bool(notes)
    if dropped_meta:
        report.threat("ole.metadata", "document properties",
                      "document properties not needed for display dropped by policy" if not keep_meta
                      else "document properties of unusual types dropped", action="reported")
    _classify_dropped(ole.listdir(streams=True, storages=True), set(streams), report)
    return streams


def _root_clsid(ole, module) -> dict[str, bytes]:
    """The source's root CLSID when the format accepts it (olefile gives it as GUID text)."""
    try:
        clsid = uuid.UUID(ole.root.clsid).bytes_le if ole.root.clsid else b""
    except ValueError:
        return {}
    allowed = {uuid.UUID(c).bytes_le for c in getattr(module, "ROOT_CLSIDS", ())}
    return {"": clsid} if clsid in allowed else {}


def _merge_findings(report: Report, found: list[Threat]) -> list[Threat]:
    """The walker's threats plus oletools' findings it did not already report."""
    out = report.merged()
    have = {(t.id, t.location) for t in out}
    for t in found:
        if (t.id, t.location) not in have:
            action = "neutralized" if t.id == "ole.xlm" else "removed"
            out.append(Threat(t.id, t.location, action, t.detail))
    return out


def _rebuild_native(ctx: Context, plain: Path, dst: Path, module, threats: list[Threat]) -> Rebuilt:
    report = Report()
    ole = read_ole(plain)
    try:
        streams = walk(ole, module, ctx, report)
        clsids = _root_clsid(ole, module)
    finally:
        ole.close()
    ctx.check_time()
    try:
        data = cfb.write(streams, clsids=clsids)
    except cfb.CfbError as exc:
        raise Unrebuildable(str(exc)) from None
    dst.write_bytes(data)
    for n in report.notes:
        ctx.warn(n)
    return Rebuilt(threats=threats + _merge_findings(report, findings(plain)))


@register
class LegacyOfficeHandler(Handler):
    family = "legacy_office"
    mime_types = tuple(convert.TARGETS)
    options = OPTIONS["legacy_office"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        if is_encrypted(path):
            return [Threat("ole.encrypted", ctx.name, "found", "password protected")]
        found = findings(path)
        module = rebuilder_for(detection.mime) if ctx.options.get("mode", "rebuild") == "rebuild" else None
        if module is None:
            return found
        report = Report()
        ole = read_ole(path)
        try:
            walk(ole, module, ctx, report)
        except Unrebuildable as exc:
            return found + [Threat("file.malformed", ctx.name, "found", f"cannot be rebuilt in its own format: {exc}")]
        finally:
            ole.close()
        return [Threat(t.id, t.location, "found", t.detail) for t in _merge_findings(report, found)
                if t.action != "reported"]

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        mime = detection.mime
        if mime not in convert.TARGETS:
            raise Malformed(f"unexpected type {mime}")
        plain, note = decrypt_if_needed(ctx, src, mime)
        threats = [note] if note else []
        why = ""
        module = rebuilder_for(mime) if ctx.options.get("mode", "rebuild") == "rebuild" else None
        if module is not None:
            try:
                return _rebuild_native(ctx, plain, dst, module, threats)
            except Unrebuildable as exc:
                why = str(exc)
            except CdrError:
                raise
            except Exception as exc:  # a walker failure on odd input: the conversion path still applies
                why = f"{type(exc).__name__}: {exc}"[:200]
            ctx.warn(f"{_LABEL[mime]} structure could not be rebuilt ({why}); converted instead")
        if ctx.options.get("convert", "ooxml") != "ooxml":
            if why:
                raise Blocked(f"the file could not be rebuilt in its own format ({why}) and the policy does not "
                              "allow converting it", "ファイルの構造が壊れているため元の形式で再構築できず、"
                              "ポリシーにより変換も認められていません", threat_id="file.malformed")
            raise Blocked("the policy does not accept Office 97-2003 files; ask the sender for .docx/.xlsx/.pptx "
                          "or PDF", "ポリシーにより Office 97-2003 形式は受け付けていません。送信者に "
                          "docx/xlsx/pptx または PDF での再送を依頼してください", threat_id="policy.blocked")
        for t in findings(plain):
            threats.append(Threat(t.id, t.location, "neutralized" if t.id == "ole.xlm" else "removed", t.detail))
        out = convert.convert(ctx, plain, dst, mime, detection.label, threats)
        if why:
            out.threats = [Threat(t.id, t.location, t.action, f"{t.detail}; the original structure could not be "
                                  f"rebuilt ({why})") if t.id == "ole.converted" else t for t in out.threats]
        return out

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        plain, _note = decrypt_if_needed(ctx, path, detection.mime)
        module = rebuilder_for(detection.mime) if ctx.options.get("mode", "rebuild") == "rebuild" else None
        if module is not None and hasattr(module, "text"):
            try:
                ole = read_ole(plain)
                try:
                    return module.text(ole, ctx)
                finally:
                    ole.close()
            except CdrError:
                raise
            except Exception:  # the conversion reads what the walker could not
                pass
        return convert.text(ctx, plain, detection.mime)
