"""mode = "convert": LibreOffice converts the file to OOXML, then the OOXML rebuild runs on it.

LibreOffice runs offline with macros off and links never refreshed (see _libreoffice); what its export
loses is carried over from the original (carry.py); whatever active content survives the conversion is
removed by the OOXML rebuild.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ...errors import ToolMissing
from ...handler import Context, Rebuilt, family_options
from ...model import Threat
from .. import _libreoffice
from .carry import carry_over
from .crypto import SOURCE_EXT

_W = "application/vnd.openxmlformats-officedocument"
# legacy MIME -> (LibreOffice target, output extension, output MIME)
TARGETS = {
    "application/msword": ("docx:MS Word 2007 XML", ".docx", f"{_W}.wordprocessingml.document"),
    "application/vnd.ms-excel": ("xlsx:Calc MS Excel 2007 XML", ".xlsx", f"{_W}.spreadsheetml.sheet"),
    "application/vnd.ms-powerpoint": ("pptx:Impress MS PowerPoint 2007 XML", ".pptx",
                                      f"{_W}.presentationml.presentation"),
}


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
        from .. import ooxml
    except ImportError:
        raise ToolMissing("the OOXML sanitizer needed after conversion is not available",
                          "変換後の OOXML 無害化処理が利用できないため処理できません") from None
    return ooxml


def _lo_convert(ctx: Context, src: Path, mime: str) -> Path:
    return _libreoffice.convert(ctx, src, TARGETS[mime][0], ctx.workdir / "converted", suffix=SOURCE_EXT[mime])




def convert(ctx: Context, plain: Path, dst: Path, mime: str, label: str, threats: list[Threat]) -> Rebuilt:
    """Convert the decrypted file `plain` to OOXML at `dst`; `threats` are what was found before."""
    ooxml = _ooxml_module()
    ctx.check_time()
    converted = _lo_convert(ctx, plain, mime)
    ctx.check_time()
    carried = carry_over(ctx, plain, converted, mime)
    inner = ooxml.rebuild_ooxml(_ooxml_context(ctx), converted, dst)
    _target, ext, out_mime = TARGETS[mime]
    threats = [*threats, *carried,
               Threat("ole.converted", ctx.name, "reported", f"converted from {label} to {ext} with LibreOffice")]
    unhidden = {t.location.removeprefix("sheet ") for t in carried if t.id == "ole.hidden_sheet"}
    threats.extend(t for t in inner.threats
                   if not (t.id == "ooxml.hidden_sheet" and t.location.rsplit(": ", 1)[-1] in unhidden))
    return Rebuilt(threats=threats, extension=inner.extension or ext, mime=inner.mime or out_mime,
                   children=list(inner.children))


def text(ctx: Context, plain: Path, mime: str) -> str:
    """Text rendition through the OOXML conversion."""
    ooxml = _ooxml_module()
    converted = _lo_convert(ctx, plain, mime)
    return ooxml.ooxml_text(converted, _ooxml_context(ctx))
