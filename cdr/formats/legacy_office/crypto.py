"""Password-protected legacy Office files: decrypted with msoffcrypto-tool when a password is given."""
from __future__ import annotations

import io
from pathlib import Path

from ...errors import Encrypted, Malformed
from ...handler import Context
from ...model import Threat

SOURCE_EXT = {"application/msword": ".doc", "application/vnd.ms-excel": ".xls",
              "application/vnd.ms-powerpoint": ".ppt"}
# Excel opens workbooks "encrypted" with this built-in password without asking (write protection).
_EXCEL_DEFAULT_PASSWORD = "VelvetSweatshop"


def is_encrypted(path: Path) -> bool:
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
    if not is_encrypted(src):
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
            dst = ctx.workdir / f"decrypted{SOURCE_EXT.get(mime, '')}"
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


