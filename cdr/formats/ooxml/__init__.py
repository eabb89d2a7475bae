"""Word, Excel and PowerPoint (OOXML): rebuilt part by part.

The package is walked from its relationships; only relationship types and content types on
the allow-lists survive, every XML part is parsed with a safe parser, disarmed and written
again, media bytes are copied as they are, and a new zip is written with fresh
[Content_Types].xml and .rels. Macro-enabled packages come out as their plain equivalent.
Password-protected packages are decrypted with msoffcrypto-tool when a password is given.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ...errors import Blocked, Encrypted, Malformed
from ...handler import Context, Handler, Rebuilt, register
from ...model import Detection, Threat
from .._catalog import OPTIONS
from .package import Rebuild
from .text import package_text

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_MIME = "application/x-ooxml-encrypted"


def _is_ole(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == _OLE


def _decrypt(ctx: Context, src: Path) -> tuple[Path, Threat]:
    """Decrypt an ECMA-376 (agile or standard) encrypted package into the job's workdir."""
    import msoffcrypto
    from msoffcrypto import exceptions as mexc

    if not ctx.password:
        raise Encrypted("password-protected Office document; ask the sender for the password (sent separately, "
                        "not in the same mail) and submit it with the file",
                        "パスワードで保護された Office 文書です。送信者にパスワードを（ファイルとは別の経路で）"
                        "確認し、ファイルと一緒に指定してください", threat_id="ooxml.encrypted")
    out = ctx.workdir / "ooxml-decrypted.zip"
    try:
        with open(src, "rb") as f:
            office = msoffcrypto.OfficeFile(f)
            if not office.is_encrypted():
                raise Malformed("an OLE container that is not an encrypted Office package")
            office.load_key(password=ctx.password, verify_password=True)
            with open(out, "wb") as o:
                office.decrypt(o)
    except (mexc.InvalidKeyError, mexc.DecryptionError) as exc:
        if "irm" in str(exc).lower() or "drm" in str(exc).lower():
            raise Encrypted("rights-managed (IRM) Office document; ask the sender for an unprotected copy",
                            "IRM で保護された Office 文書です。送信者に保護なしのファイルを依頼してください",
                            threat_id="ooxml.encrypted") from None
        raise Encrypted("the password given does not open this Office document; ask the sender for the correct "
                        "password", "指定されたパスワードではこの Office 文書を開けません。送信者に正しい"
                        "パスワードを確認してください", threat_id="ooxml.encrypted") from None
    except (mexc.FileFormatError, mexc.ParseError) as exc:
        raise Encrypted(f"this protected Office document cannot be decrypted ({exc})"[:200],
                        "この保護形式の Office 文書は復号できません。送信者に保護なしのファイルを依頼してください",
                        threat_id="ooxml.encrypted") from None
    return out, Threat("ooxml.encrypted", ctx.name, "converted", "decrypted with the supplied password")


def rebuild_ooxml(ctx: Context, src: Path, dst: Path) -> Rebuilt:
    """Rebuild the OOXML package (or encrypted package) at `src` into `dst`."""
    threats: list[Threat] = []
    plain = src
    if _is_ole(src):
        plain, note = _decrypt(ctx, src)
        threats.append(note)
    rb = Rebuild(ctx, write=True)
    outcome = rb.run(plain, dst)
    threats.extend(_merge(rb.threats))
    return Rebuilt(threats=threats, extension=outcome.extension, mime=outcome.mime)


def inspect_ooxml(ctx: Context, path: Path) -> list[Threat]:
    """What a rebuild would remove, as findings (action "found")."""
    if _is_ole(path):
        return [Threat("ooxml.encrypted", ctx.name, "found", "password protected")]
    rb = Rebuild(ctx, write=False)
    try:
        rb.run(path, None)
    except Blocked as exc:
        return [Threat(exc.threat_id, ctx.name, "found", exc.en)]
    return [Threat(t.id, t.location, "found", t.detail) for t in _merge(rb.threats)]


def ooxml_text(path: Path, ctx: Context | None = None) -> str:
    """Plain text of a docx/xlsx/pptx (and their template and macro variants), in reading order."""
    from ...policy import Limits

    if ctx is None:
        ctx = Context(name=Path(path).name, options={}, limits=Limits(), workdir=Path(tempfile.gettempdir()))
    rb = Rebuild(ctx, write=False)
    rb._open(Path(path))
    try:
        return package_text(rb, Path(path))
    finally:
        rb.zf.close()


def _merge(threats: list[Threat]) -> list[Threat]:
    """One entry per (id, location, action); repeats are counted in the detail."""
    merged: dict[tuple[str, str, str], list] = {}
    for t in threats:
        key = (t.id, t.location, t.action)
        if key in merged:
            merged[key][1] += 1
        else:
            merged[key] = [t, 1]
    out = []
    for t, n in merged.values():
        out.append(Threat(t.id, t.location, t.action, t.detail + (f" (x{n})" if n > 1 else "")))
    return out


@register
class OoxmlHandler(Handler):
    family = "ooxml"
    mime_types = (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-word.document.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "application/vnd.ms-word.template.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "application/vnd.ms-excel.template.macroEnabled.12",
        "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.presentationml.template",
        "application/vnd.ms-powerpoint.template.macroEnabled.12",
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
        ENCRYPTED_MIME,
    )
    options = OPTIONS["ooxml"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return inspect_ooxml(ctx, path)

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        return rebuild_ooxml(ctx, src, dst)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        plain = path
        if _is_ole(path):
            plain, _ = _decrypt(ctx, path)
        return ooxml_text(plain, ctx)
