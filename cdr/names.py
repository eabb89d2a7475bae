"""File names that are harmless on the Windows PCs where clerks open deliveries.

Used for every name the engine writes: a delivered file's base name and each member of a
rebuilt archive. A colon would name an NTFS alternate data stream ("a.js:x.txt"), a reserved
device name (CON, NUL, COM1...) cannot be opened, bidi controls disguise the extension
("evil\u202egpj.txt"), and a component over 255 bytes cannot be written at all.
"""
from __future__ import annotations

import re
import unicodedata

from .encoding import BIDI_CONTROLS

_WIN_BAD = re.compile(r'[<>:"|?*]')
# Windows also reserves COM/LPT with superscript ¹ ² ³ (Microsoft's "Naming Files" page).
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"{d}{i}" for d in ("COM", "LPT") for i in (*"123456789", "\u00b9", "\u00b2", "\u00b3"))}
MAX_PART_BYTES = 255


def text_name(name: str) -> str:
    """A name read from the file system as text: bytes that are not UTF-8 (Python keeps them as
    lone surrogates) are read as CP932, as an old Windows client or unzip wrote them, else replaced."""
    if not any("\udc80" <= c <= "\udcff" for c in name):
        return name
    raw = name.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("cp932")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def windows_safe(part: str) -> str:
    """One path component with the characters and names Windows refuses replaced."""
    part = _WIN_BAD.sub("_", part).rstrip(" .")
    if not part:
        return "_"
    if part.split(".")[0].upper().rstrip(" ") in _RESERVED:
        part = "_" + part
    return part


def safe_basename(name: str) -> str:
    """`name` (one component) in NFC, without control or bidi characters, Windows-safe, at most 255
    bytes in UTF-8 (the stem is shortened, the extension kept)."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if c not in BIDI_CONTROLS and unicodedata.category(c) != "Cc")
    part = windows_safe(name.replace("/", "_").replace("\\", "_"))
    if len(part.encode("utf-8")) <= MAX_PART_BYTES:
        return part
    stem, dot, ext = part.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 32:
        stem, dot, ext = part, "", ""
    room = MAX_PART_BYTES - len((dot + ext).encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .") or "_"
    return stem + dot + ext


# A text rendition is named after the delivered file's stem, never `申請書.docx.txt`: with Windows hiding
# extensions that shows as `申請書.docx`, a Word document that is not one.
TEXT_SUFFIX = "_テキスト.txt"


def text_rendition_name(name: str) -> str:
    """`申請書.docx` -> `申請書_テキスト.txt` (the same rule for `cdr sanitize --text` and the appliance)."""
    i = name.rfind(".")
    stem = name[:i] if i > 0 else name
    return stem + TEXT_SUFFIX


def shown_name(name: str) -> str:
    """What Windows Explorer shows with extensions hidden, compared without case: `申請書.docx` -> `申請書`."""
    i = name.rfind(".")
    return (name[:i] if i > 0 else name).casefold()
