"""PDF: disarm by rebuilding a fresh document from the page tree, and extract text.

Rebuild copies the pages and an allow-list of catalog entries into a new
pikepdf document, so earlier revisions, orphaned objects, junk around the file
and encryption never reach the output. Active content (JavaScript, actions that
leave the document, media, XFA, attachments, foreign links) is then removed by
the allow-list in `allowlist` (which applies the rules of `walk` to what it keeps);
`inspect` uses the rule walk in `walk`, and so does the verify step on the output.
"""
from __future__ import annotations

import mmap
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import pikepdf
from pikepdf import Name, ObjectStreamMode, StreamDecodeLevel

from ...errors import Encrypted, LimitExceeded, Malformed
from ...handler import Context, Handler, Rebuilt, register
from ...model import BLOCKED, SANITIZED, Detection, FileResult, Threat
from .._catalog import OPTIONS
from .._memo import per_file
from . import allowlist, fonts, images, render
from .content import reached
from .walk import Walker, action_threat, scan

# Catalog entries carried into the rebuilt document as they are (their content is walked).
# /OutputIntents: the colour profile PDF/A requires (inert ICC data, under the stream limits).
_ROOT_KEEP = ("/Outlines", "/PageLabels", "/Dests", "/StructTreeRoot", "/MarkInfo", "/Lang",
              "/ViewerPreferences", "/PageLayout", "/PageMode", "/OCProperties", "/OutputIntents")
# XMP namespaces that declare conformance (PDF/A, PDF/UA): kept when the rest of the metadata goes.
_CONFORMANCE = {"{http://www.aiim.org/pdfa/ns/id/}": "pdfaid", "{http://www.aiim.org/pdfua/ns/id/}": "pdfuaid"}
# Upper bound of how much one byte can expand under each filter; image codecs are bounded by pixels.
_EXPANSION = {"/FlateDecode": 1032, "/Fl": 1032, "/LZWDecode": 2730, "/LZW": 2730, "/RunLengthDecode": 128,
              "/RL": 128, "/ASCIIHexDecode": 1, "/AHx": 1, "/ASCII85Decode": 1, "/A85": 1}
_FLATE = {"/FlateDecode", "/Fl"}
# Findings of the allow-list that the rule walk (inspect) has no rule for.
_ALLOWLIST_ONLY = {"pdf.unknown_key", "pdf.other_annotation", "pdf.other_action"}
_WS = b"\x00\t\n\f\r "


def _opts(ctx: Context) -> dict[str, Any]:
    return {k: ctx.options.get(k, o.default) for k, o in PdfHandler.options.items()}


# --- the bytes around the PDF --------------------------------------------------------------------
def _envelope(path: Path, revisions: bool = True) -> dict[str, int]:
    """Leading junk, trailing data after the last %%EOF, and how many revisions the file has (counted
    only when `revisions`: inspect reports the first two alone)."""
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            return {"lead": 0, "trail": 0, "eofs": 0}
        with mm:
            lead = max(mm.find(b"%PDF-", 0, 1024), 0)
            eof = mm.rfind(b"%%EOF")
            trail = 0
            if eof >= 0:
                rest = mm[eof + 5:]
                trail = len(rest.strip(_WS)) and len(rest)
            eofs = len(re.findall(rb"%%EOF", mm)) if eof >= 0 and revisions else 0
            if eofs > 1 and b"/Linearized" in mm[:2048]:
                eofs -= 1
    return {"lead": lead, "trail": trail, "eofs": eofs}


def _envelope_threats(env: dict[str, int], action: str) -> list[Threat]:
    out = []
    if env["lead"]:
        out.append(Threat("pdf.leading_data", "start of file", action, f"{env['lead']} bytes before the %PDF header"))
    if env["trail"]:
        out.append(Threat("pdf.trailing_data", "end of file", action, f"{env['trail']} bytes after the last %%EOF"))
    return out


# --- the byte-level pre-scan, once per content --------------------------------------------------
class _LastScan:
    """The last file's bytes scanned and the answer: rebuild scans its output, and the verify step's
    inspect scans the same bytes again. Compared in full (not by a digest), so a changed byte is a new scan;
    forgotten with the other per-file memos (`_memo`)."""

    def __init__(self) -> None:
        self.key: tuple[bytes, str, bool] | None = None
        self.value = (True, True)

    def clear(self) -> None:
        self.key = None

    def __len__(self) -> int:  # what it holds: 0 once forgotten (tests check every per-file cache is empty)
        return 0 if self.key is None else 1


_last_scan = per_file(_LastScan())
_SCAN_MEMO_MAX = 64 << 20  # bigger files are scanned through a mapping and not remembered


def _scan_file(path: Path, links: str, want_meta: bool, remember: bool = False) -> tuple[bool, bool]:
    """`scan` of the file at `path` (an empty file is not a PDF); `remember`: rebuild's own output."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise Malformed("the PDF is empty", "PDFが空です")
        if size > _SCAN_MEMO_MAX:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return scan(mm, links, want_meta=want_meta)
        data = f.read()
    memo = _last_scan
    if memo.key is not None and memo.key[1:] == (links, want_meta) and memo.key[0] == data:
        return memo.value
    value = scan(data, links, want_meta=want_meta)
    if remember:
        memo.key, memo.value = (data, links, want_meta), value
    return value


# --- opening -------------------------------------------------------------------------------------
def _open(ctx: Context, path: Path) -> pikepdf.Pdf:
    """Open with the empty user password, else with the supplied one; block otherwise."""
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        if not ctx.password:
            raise Encrypted("the PDF is password protected; ask the sender for the password",
                            "PDFがパスワードで保護されています。送信者にパスワードを確認してください",
                            threat_id="file.encrypted") from None
    except pikepdf.PdfError as exc:
        if "encrypt" in str(exc).lower():
            raise Encrypted("the PDF uses an encryption we cannot open", "このPDFの暗号化方式には対応していません",
                            threat_id="file.encrypted") from None
        raise Malformed(f"the PDF cannot be read: {str(exc)[:200]}", "PDFが壊れているため読み取れません") from None
    try:
        return pikepdf.open(path, password=ctx.password)
    except pikepdf.PasswordError:
        raise Encrypted("the supplied password does not open this PDF",
                        "指定されたパスワードではPDFを開けません", threat_id="file.encrypted") from None
    except pikepdf.PdfError as exc:
        raise Malformed(f"the PDF cannot be read: {str(exc)[:200]}", "PDFが壊れているため読み取れません") from None


# --- decompression bombs -------------------------------------------------------------------------
def _inflate_layers(raw: bytes, layers: int, limit: int) -> int:
    """Decoded size of `layers` nested Flate encodings, stopping once past `limit` (never inflating all)."""

    def layer(chunks):
        d = zlib.decompressobj()
        try:
            for c in chunks:
                buf = c
                while buf:
                    out = d.decompress(buf, 1 << 16)
                    buf = d.unconsumed_tail
                    if out:
                        yield out
                    if d.eof:
                        return
        except zlib.error:
            return  # damaged data decodes no further, as in readers

    gen: Any = (raw[i:i + (1 << 16)] for i in range(0, len(raw), 1 << 16))
    for _ in range(layers):
        gen = layer(gen)
    total = 0
    for chunk in gen:
        total += len(chunk)
        if total > limit:
            break
    return total


def _decoded_size(obj: Any, raw: bytes, filters: list[str]) -> int:
    """Size after the given leading filters, decoded by qpdf from a scratch copy of the stream."""
    if len(filters) == len(allowlist.filter_names(obj)):
        return len(obj.read_bytes())
    parms = obj.get("/DecodeParms")
    with pikepdf.new() as scratch:  # not in the document being built
        tmp = pikepdf.Stream(scratch, raw)
        tmp.Filter = pikepdf.Array([Name(f) for f in filters])
        if isinstance(parms, pikepdf.Array):
            tmp.DecodeParms = _foreign(scratch, pikepdf.Array(list(parms)[:len(filters)]))
        return len(tmp.read_bytes())


def _check_streams(ctx: Context, pdf: pikepdf.Pdf) -> None:
    max_bytes = int(float(ctx.limits.max_stream_mb) * 1024 * 1024)
    max_pixels = int(ctx.limits.max_pixels)
    for n, obj in enumerate(pdf.objects):
        if n % 1000 == 0:
            ctx.check_time()
        # pikepdf hands indirect numbers (LibreOffice writes "/Length 12 0 R") as plain ints. A pikepdf object
        # whose type code is stream is what isinstance(obj, pikepdf.Stream) checks (in C++, without the enum).
        if not isinstance(obj, pikepdf.Stream):
            continue
        if obj.get("/Subtype") == Name.Image:
            w, h = obj.get("/Width", 0), obj.get("/Height", 0)
            if isinstance(w, int) and isinstance(h, int) and w * h > max_pixels:
                raise LimitExceeded(f"an image in the PDF has {w}x{h} pixels, over the policy limit",
                                    "PDF内の画像の画素数が上限を超えています", threat_id="pdf.bomb")
        length = obj.get("/Length")
        raw: bytes | None = None
        if not isinstance(length, int):
            raw = obj.read_raw_bytes()
            length = len(raw)
        if length > max_bytes:
            raise LimitExceeded("a stream in the PDF is larger than the policy limit",
                                "PDF内のストリームが上限サイズを超えています", threat_id="pdf.bomb")
        filters = allowlist.filter_names(obj)
        # The general-purpose layers a reader must decode in full before any image codec sees the data.
        lead = 0
        while lead < len(filters) and filters[lead] in _EXPANSION:
            lead += 1
        bound = length
        for f in filters[:lead]:
            bound *= _EXPANSION[f]
        if bound <= max_bytes:
            continue
        raw = raw if raw is not None else obj.read_raw_bytes()
        if all(f in _FLATE for f in filters[:lead]):
            size = _inflate_layers(raw, lead, max_bytes)
        else:
            size = _decoded_size(obj, raw, filters[:lead])  # rare chains; the worker's memory limit applies
        if size > max_bytes:
            raise LimitExceeded(f"a compressed stream expands beyond {max_bytes >> 20} MB (decompression bomb)",
                                "PDF内の圧縮データが展開後に上限を超えます（圧縮爆弾）", threat_id="pdf.bomb")


# --- the handler ---------------------------------------------------------------------------------
@register
class PdfHandler(Handler):
    family = "pdf"
    mime_types = ("application/pdf",)
    options = OPTIONS["pdf"]

    # -- inspect --
    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        o = _opts(ctx)
        threats = _envelope_threats(_envelope(path, revisions=False), "found")
        walk, meta = _scan_file(path, o["links"], o["metadata"] == "drop")
        if not (walk or meta):
            return threats
        pdf = _open(ctx, path)
        with pdf:
            if pdf.is_encrypted:
                threats.append(Threat("pdf.encrypted", "document", "found", "the file is encrypted"))
            if meta:
                threats.extend(_metadata_threats(pdf, "found"))
            if walk:
                w = Walker(pdf, links=o["links"], embedded=o["embedded_files"], fix=False,
                           labels=_labels(pdf), tick=ctx.check_time)
                threats.extend(w.run())
        return threats

    def inspect_rebuild(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        """What the allow-list would drop that the rule walk does not report: unknown keys (with their count),
        annotations and actions outside the lists. Run on a scratch copy of the pages and catalog, as rebuild
        makes it; nothing is written."""
        o = _opts(ctx)
        pdf = _open(ctx, path)
        with pdf, pikepdf.new() as new, warnings.catch_warnings():
            warnings.simplefilter("ignore", getattr(pikepdf, "PageCopyWarning", UserWarning))
            if len(pdf.pages) == 0 or len(pdf.pages) > int(ctx.limits.max_pages):
                return []  # rebuild blocks these; inspect reports nothing more here
            new.pages.extend(pdf.pages)
            _copy_catalog(pdf, new, o, None)
            found = allowlist.apply(new, links=o["links"], embedded=o["embedded_files"],
                                    labels=lambda: _labels(new), tick=ctx.check_time)
        return [Threat(t.id, t.location, "reported" if t.action == "reported" else "found", t.detail)
                for t in found if t.id in _ALLOWLIST_ONLY]

    # -- rebuild --
    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        try:
            return self._rebuild(ctx, src, dst)
        except RuntimeError as exc:  # qpdf's C++ errors on damaged objects (std::bad_cast, ...)
            raise Malformed(f"the PDF is damaged where its parser cannot follow it ({str(exc)[:100]})",
                            "PDFが壊れているため読み取れません") from None

    def _rebuild(self, ctx: Context, src: Path, dst: Path) -> Rebuilt:
        o = _opts(ctx)
        out = Rebuilt(extension=".pdf", mime="application/pdf")
        env = _envelope(src)
        out.threats.extend(_envelope_threats(env, "removed"))
        if env["eofs"] > 1:
            out.threats.append(Threat("pdf.incremental_update", "document", "reported",
                                      f"{env['eofs'] - 1} earlier revision(s) not carried over"))
        pdf = _open(ctx, src)
        with pdf, warnings.catch_warnings():
            # pikepdf warns that pages.extend() leaves forms and named links behind: _copy_catalog carries them.
            warnings.simplefilter("ignore", getattr(pikepdf, "PageCopyWarning", UserWarning))
            if pdf.is_encrypted:
                how = "decrypted with the supplied password" if ctx.password and _needs_password(src) else \
                    "encryption removed (no user password was set)"
                out.threats.append(Threat("pdf.encrypted", "document", "removed", how))
            size = pdf.trailer.get("/Size")
            max_objects = int(ctx.limits.max_pdf_objects)
            if isinstance(size, int) and size > max_objects:
                raise LimitExceeded(f"the PDF has {size} objects, over the policy limit of {max_objects}",
                                    f"PDFのオブジェクト数が上限（{max_objects}）を超えています", threat_id="file.limit")
            npages = len(pdf.pages)
            max_pages = int(ctx.limits.max_pages)
            if npages > max_pages:
                raise LimitExceeded(f"the PDF has {npages} pages, over the policy limit of {max_pages}",
                                    f"PDFのページ数（{npages}）が上限（{max_pages}）を超えています",
                                    threat_id="file.limit")
            if npages == 0:
                raise Malformed("the PDF has no pages", "PDFにページがありません")
            ctx.check_time()
            new = pikepdf.new()
            with new:
                new.pages.extend(pdf.pages)
                att = _Attachments(ctx, out) if o["embedded_files"] == "sanitize" else None
                out.threats.extend(_copy_catalog(pdf, new, o, att))
                if o["metadata"] == "keep":
                    _copy_metadata(pdf, new)
                else:
                    found = _metadata_threats(pdf, "reported")
                    kept = _keep_conformance(pdf, new)
                    if kept and found:
                        found[0].detail += f"; conformance identification kept ({', '.join(kept)})"
                    out.threats.extend(found)
                # Only what the specification defines for each dictionary, and the policy allows, stays.
                out.threats.extend(allowlist.apply(new, links=o["links"], embedded=o["embedded_files"],
                                                   labels=lambda: _labels(new), tick=ctx.check_time,
                                                   on_attachment=att))
                form = pdf.Root.get("/AcroForm")
                if isinstance(form, pikepdf.Dictionary) and "/SigFlags" in form:
                    ctx.warn("digital signatures no longer validate after rebuilding")
                ctx.check_time()
                _check_streams(ctx, new)
                # No image codec data of the sender is written (JBIG2, JPEG 2000, fax, JPEG: decoded, rebuilt),
                # and TrueType/OpenType/CFF font programs are parsed and compiled anew.
                objects = list(new.objects)
                runs = reached(new, objects)
                out.threats.extend(images.rebuild(ctx, new, objects, runs.contents))
                out.threats.extend(fonts.rebuild(ctx, runs.fonts))
                if len(new.objects) > max_objects:
                    raise LimitExceeded("the PDF has more objects than the policy allows",
                                        "PDFのオブジェクト数が上限を超えています", threat_id="file.limit")
                version = pdf.pdf_version
                save = {"stream_decode_level": StreamDecodeLevel.none, "object_stream_mode": ObjectStreamMode.disable,
                        "min_version": version, "fix_metadata_version": False}
                _save(new, dst, save)
                ctx.check_time()
                # The allow-list applies the rule walk's rules to what it keeps (the verify step re-inspects
                # the output with that walk, blocking on any residual); names of active content left in
                # stream data, past the end of its compressed data, are cut here.
                # With inspect's arguments: the verify step's inspect of these same bytes answers from memory.
                walk = _scan_file(dst, o["links"], o["metadata"] == "drop", remember=True)[0]
                trimmed = allowlist.trim_streams(new) if walk else []
                if trimmed:
                    out.threats.extend(trimmed)
                    _save(new, dst, save)
            problems = pdf.get_warnings()
        if problems:
            shown = "; ".join(str(w).replace(f"{src}: ", "").replace(f"{src}, ", "") for w in problems[:3])[:300]
            if o["malformed"] == "block":
                raise Malformed(f"the PDF is damaged ({shown})", "PDFが壊れています（ポリシーにより修復版も配送しません）")
            out.threats.append(Threat("file.malformed", "document", "repaired", shown))
        if o["render"] == "images":
            render.render_to_images(ctx, dst, int(o["dpi"]))
            out.threats.append(Threat("pdf.rendered", "document", "converted",
                                      f"pages rendered to images at {int(o['dpi'])} dpi (画像化)"))
        return out

    # -- text --
    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return render.extract_text(ctx, path)


def _save(pdf: pikepdf.Pdf, dst: Path, options: dict[str, Any]) -> None:
    # Into an open handle: dst is private scratch space and the pipeline moves it atomically itself.
    with open(dst, "wb") as f:
        pdf.save(f, **options)


def _needs_password(path: Path) -> bool:
    try:
        pikepdf.open(path).close()
        return False
    except pikepdf.PasswordError:
        return True
    except pikepdf.PdfError:
        return False


def _labels(pdf: pikepdf.Pdf) -> dict[tuple[int, int], str]:
    """Readable locations for pages, annotations and the catalog."""
    labels = {pdf.Root.objgen: "document catalog"}
    for i, page in enumerate(pdf.pages, 1):
        labels[page.obj.objgen] = f"page {i}"
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            for j, a in enumerate(annots, 1):
                if isinstance(a, pikepdf.Dictionary) and a.is_indirect:
                    sub = allowlist.name_str(a.get("/Subtype")) if isinstance(a.get("/Subtype"), Name) else ""
                    labels[a.objgen] = f"page {i} annotation {j}" + (f" ({sub[1:]})" if sub else "")
    return labels


def _metadata_threats(pdf: pikepdf.Pdf, action: str) -> list[Threat]:
    found = []
    info = pdf.trailer.get("/Info")
    if isinstance(info, pikepdf.Dictionary) and len(info.keys()):
        found.append("Info")
    if "/Metadata" in pdf.Root and not _xmp_conformance(pdf)[1]:
        found.append("XMP")
    if not found:
        return []
    detail = f"document metadata ({', '.join(found)})"
    if action == "reported":
        detail += " not carried over, per policy (not active content)"
    return [Threat("pdf.metadata", "document", action, detail)]


def _copy_metadata(pdf: pikepdf.Pdf, new: pikepdf.Pdf) -> None:
    info = pdf.trailer.get("/Info")
    if isinstance(info, pikepdf.Dictionary):
        # Info holds strings only; anything else could smuggle objects in.
        clean = pikepdf.Dictionary({k: v for k, v in info.items() if isinstance(v, (pikepdf.String, str))})
        new.trailer.Info = new.make_indirect(clean)
    xmp = pdf.Root.get("/Metadata")
    if isinstance(xmp, pikepdf.Stream):
        new.Root.Metadata = _foreign(new, xmp)


def _xmp_conformance(pdf: pikepdf.Pdf) -> tuple[dict[str, str], bool]:
    """The PDF/A and PDF/UA identification in the XMP ({"pdfaid:part": "2", ...}), and whether that is
    all the XMP holds (what _keep_conformance writes). Unreadable XMP: nothing, and not only that."""
    if "/Metadata" not in pdf.Root:
        return {}, False
    try:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False, strict=False) as meta:
            items = {k: meta[k] for k in meta.keys()}
    except Exception:
        return {}, False
    found = {f"{prefix}:{k[len(ns):]}": str(v) for k, v in items.items()
             for ns, prefix in _CONFORMANCE.items() if k.startswith(ns)}
    return found, bool(items) and len(found) == len(items)


def _output_intents(new: pikepdf.Pdf, intents: Any, threats: list[Threat]) -> Any:
    """The output intents, without a profile named by reference to another file (/DestOutputProfileRef,
    PDF/X-5); the rule walk then removes any action a producer put in them."""
    out = _foreign(new, intents)
    for it in out if isinstance(out, pikepdf.Array) else []:
        if isinstance(it, pikepdf.Dictionary) and "/DestOutputProfileRef" in it:
            del it["/DestOutputProfileRef"]
            threats.append(Threat("pdf.external_ref", "document catalog /OutputIntents", "removed",
                                  "colour profile in an outside file (DestOutputProfileRef)"))
    return out


def _keep_conformance(pdf: pikepdf.Pdf, new: pikepdf.Pdf) -> list[str]:
    """A fresh XMP packet with only the PDF/A and PDF/UA identification of the source (dropping the
    metadata must not make an archival PDF/A stop declaring itself one)."""
    found = _xmp_conformance(pdf)[0]
    if "pdfaid:part" not in found and "pdfuaid:part" not in found:
        return []
    with new.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        for k, v in found.items():
            meta[k] = v
    return [f"{k}={v}" for k, v in found.items()]


def _foreign(new: pikepdf.Pdf, v: Any) -> Any:
    """copy_foreign for direct values too (qpdf copies only indirect objects)."""
    if not isinstance(v, pikepdf.Object) or v.is_indirect:
        return new.copy_foreign(v) if isinstance(v, pikepdf.Object) else v
    if isinstance(v, pikepdf.Dictionary):
        return pikepdf.Dictionary({k: _foreign(new, x) for k, x in v.items()})
    if isinstance(v, pikepdf.Array):
        return pikepdf.Array([_foreign(new, x) for x in v])
    return v


def _copy_catalog(pdf: pikepdf.Pdf, new: pikepdf.Pdf, o: dict[str, Any], att: _Attachments | None) -> list[Threat]:
    """Carry allowed catalog entries over; report what the document-level entries held."""
    root, threats = pdf.Root, []
    for key in _ROOT_KEEP:
        if key in root:
            new.Root[key] = _output_intents(new, root[key], threats) if key == "/OutputIntents" \
                else _foreign(new, root[key])
    if "/AA" in root:
        threats.append(Threat("pdf.additional_actions", "document catalog /AA", "removed",
                              "document additional actions (open/close/save/print)"))
    oa = root.get("/OpenAction")
    if oa is not None:
        if isinstance(oa, pikepdf.Array):
            new.Root.OpenAction = _foreign(new, oa)
        elif isinstance(oa, pikepdf.Dictionary) and oa.get("/S") == Name.GoTo and "/D" in oa:
            d = oa.D
            new.Root.OpenAction = _foreign(new, d) if isinstance(d, pikepdf.Array) else \
                _foreign(new, pikepdf.Dictionary(S=Name.GoTo, D=d))
        else:
            hit = action_threat(oa, o["links"]) if isinstance(oa, pikepdf.Dictionary) else None
            threats.append(Threat("pdf.open_action", "document catalog /OpenAction", "removed",
                                  (hit[1] if hit else "open action") + " run when the file opens"))
            if hit:
                threats.append(Threat(hit[0], "document catalog /OpenAction", "removed", hit[1]))
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        keep = pikepdf.Dictionary()
        if "/Dests" in names:
            keep.Dests = _foreign(new, names.Dests)
        if "/JavaScript" in names:
            threats.append(Threat("pdf.javascript", "document catalog /Names /JavaScript", "removed",
                                  "document-level JavaScript"))
        if "/EmbeddedFiles" in names:
            if att is not None:
                keep.EmbeddedFiles = _sanitize_tree(new, names.EmbeddedFiles, att, threats)
            else:
                threats.append(Threat("pdf.embedded_file", "document catalog /Names /EmbeddedFiles", "removed",
                                      "attached files"))
        for key in ("/Renditions", "/AlternatePresentations"):
            if key in names:
                threats.append(Threat("pdf.rich_media", f"document catalog /Names {key}", "removed", key[1:]))
        if len(keep.keys()):
            new.Root.Names = keep
    form = root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary):
        acro = pikepdf.Dictionary()
        for key, value in form.items():
            if key == "/XFA":
                threats.append(Threat("pdf.xfa", "document catalog /AcroForm /XFA", "removed",
                                      "XFA form (fields and values kept as AcroForm)"))
            elif key != "/SigFlags" and value is not None:  # a null entry is no entry
                try:
                    acro[key] = _foreign(new, value)
                except RuntimeError:  # an object qpdf's repair could not make whole (std::bad_cast)
                    continue
        new.Root.AcroForm = acro
    return threats


def _sanitize_tree(new: pikepdf.Pdf, tree: Any, att: _Attachments, threats: list[Threat]) -> pikepdf.Dictionary:
    """A flat /EmbeddedFiles name tree holding only the attachments that came through the pipeline."""
    flat = pikepdf.Array()
    for name, spec in pikepdf.NameTree(tree).items():
        if not isinstance(spec, pikepdf.Dictionary):
            continue
        copied = _foreign(new, spec)
        threats.extend(att(copied, copied.get("/EF"), "document attachments"))
        if "/EF" in copied:
            flat.extend([pikepdf.String(name), copied])
    return pikepdf.Dictionary(Names=flat)


class _Attachments:
    """Sanitize mode: run every embedded file through the pipeline and re-attach the delivered output."""

    def __init__(self, ctx: Context, out: Rebuilt) -> None:
        self.ctx, self.out, self.n = ctx, out, 0
        self.done: dict[tuple[int, int], tuple[str, Any]] = {}
        self.specs: set[tuple[int, int]] = set()

    def __call__(self, spec: Any, ef: Any, where: str) -> list[Threat]:
        threats: list[Threat] = []
        if spec.is_indirect:
            if spec.objgen in self.specs:
                return threats  # the same file specification reached again (name tree and annotation)
            self.specs.add(spec.objgen)
        if not isinstance(ef, pikepdf.Dictionary):
            del spec["/EF"]
            return threats
        fname = _attachment_name(spec)
        # /UF, /F (and the legacy /DOS, /Mac, /Unix) name one file: keep a single stream, the one a
        # Unicode-aware reader opens, so that the attachment goes through the pipeline and the report once.
        order = ["/UF", "/F"] + sorted(k for k in ef.keys() if k not in ("/UF", "/F"))
        streams = [s for s in (ef.get(k) for k in order) if isinstance(s, pikepdf.Stream)]
        for key in list(ef.keys()):
            del ef[key]
        if not streams:
            del spec["/EF"]
            return threats
        stream = streams[0]
        loc = f"{where} attachment {fname!r}"
        others = {s.objgen for s in streams} - {stream.objgen}
        if others:
            threats.append(Threat("pdf.embedded_file", loc, "removed",
                                  f"{len(others)} other file(s) stored under the same attachment"))
        og = stream.objgen
        first = og not in self.done
        if first:
            self.done[og] = self._one(stream, fname, where)
        status, new_name = self.done[og]
        if status == BLOCKED:
            del spec["/EF"]
            if first:
                threats.append(Threat("pdf.embedded_file", loc, "removed", "attachment blocked, see children"))
            return threats
        ef.F = ef.UF = stream
        if new_name and new_name != fname:
            spec.F = pikepdf.String(new_name)
            spec.UF = pikepdf.String(new_name)
        if first:  # another file specification of the same file was already reported
            action = "neutralized" if status == SANITIZED else "reported"
            threats.append(Threat("pdf.embedded_file", loc, action, "attachment sanitized and re-attached"))
        return threats

    def _one(self, stream: Any, fname: str, where: str) -> tuple[str, Any]:
        ctx = self.ctx
        self.n += 1
        child_name = f"{ctx.name}/{fname}"
        if ctx.process_child is None or ctx.depth + 1 > int(ctx.limits.archive_depth) \
                or self.n > int(ctx.limits.archive_members):
            res = FileResult(source=child_name, threats=[Threat("archive.too_deep", child_name, "blocked")])
            res.block("添付ファイルの入れ子が深すぎるか数が多すぎるため削除しました",
                      "attachment nested too deeply or too many attachments; removed")
            self.out.children.append(res)
            return BLOCKED, None
        work = ctx.workdir / "pdf-attachments" / str(self.n)
        (work / "in").mkdir(parents=True, exist_ok=True)
        src = work / "in" / fname
        try:
            src.write_bytes(stream.read_bytes())
        except pikepdf.PdfError as exc:
            res = FileResult(source=child_name, threats=[Threat("file.malformed", child_name, "blocked", str(exc)[:200])])
            res.block("添付ファイルのデータが壊れているため削除しました", "attachment data is damaged; removed")
            self.out.children.append(res)
            return BLOCKED, None
        res = ctx.process_child(child_name, src, work / "out")
        new_name = None
        if res.verdict != BLOCKED and not (res.output and Path(res.output).is_file()):
            # No rebuilt copy to put in its place: the original bytes must not stay attached.
            res.block("添付ファイルの無害化結果が得られなかったため削除しました",
                      "no sanitized copy of the attachment was produced; removed")
        if res.verdict != BLOCKED:
            out_path = Path(res.output)
            stream.write(out_path.read_bytes())
            params = stream.get("/Params")
            if isinstance(params, pikepdf.Dictionary):
                params.Size = out_path.stat().st_size
                if "/CheckSum" in params:
                    del params["/CheckSum"]
            new_name = out_path.name
            # The delivered copy lives inside the rebuilt PDF, not in the output folder.
            res.output = None
            res.text_output = None
            res.warnings.append("re-attached inside the rebuilt PDF")
        self.out.children.append(res)
        return res.verdict, new_name


def _attachment_name(spec: Any) -> str:
    for key in ("/UF", "/F"):
        v = spec.get(key)
        if isinstance(v, pikepdf.String):
            name = str(v)
            break
    else:
        name = ""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if c.isprintable()).strip(" .")[:120]
    return name or "attachment.bin"
