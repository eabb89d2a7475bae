"""Archive member names: decoding (cp932 / UTF-8) and making them safe to extract anywhere.

A member name is only ever used as a *logical* name (report, child pipeline,
name inside the rebuilt archive); extraction goes to generated file names.
Still, the rebuilt archive is unpacked by staff on Windows, so every name we
write must be harmless there too.
"""
from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field

from ...encoding import BIDI_CONTROLS
from ...names import MAX_PART_BYTES
from ...names import windows_safe as _windows_safe

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_NAME_CHARS = 1024


def decode_name_bytes(raw: bytes) -> str:
    """Decode a name stored without an encoding flag.

    Strict UTF-8 first: UTF-8 is self-checking and a cp932 name almost never
    parses as UTF-8, while UTF-8 Japanese often *does* parse as cp932 (mojibake
    such as 縺ゅ). Then cp932 (Windows Japanese, including trail byte 0x5C as in
    申 and 表), then cp437 as the ZIP specification says.
    """
    if raw.isascii():
        return raw.decode("ascii")
    for enc in ("utf-8", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def zip_name(info) -> str:
    """The real name of a ZIP member (zipfile.ZipInfo or pyzipper's), before sanitising.

    Uses orig_filename (zipfile cuts names at NUL, hiding `a.txt\\0.exe` tricks),
    the Info-ZIP Unicode Path extra field when its CRC matches, and otherwise
    recovers the raw bytes that zipfile decoded as cp437.
    """
    name = info.orig_filename
    if info.flag_bits & 0x800:
        return name
    raw = name.encode("cp437")
    unicode_path = _unicode_path_extra(info.extra or b"", raw)
    if unicode_path is not None:
        return unicode_path
    return decode_name_bytes(raw)


def _unicode_path_extra(extra: bytes, raw: bytes) -> str | None:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + size]
        i += 4 + size
        if tag == 0x7075 and len(body) >= 5 and body[0] == 1:
            (crc,) = struct.unpack_from("<I", body, 1)
            if crc == zlib.crc32(raw):
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def surrogate_name(name: str) -> str:
    """tarfile decodes with surrogateescape: recover bytes that were not UTF-8 (cp932 names)."""
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return decode_name_bytes(name.encode("utf-8", "surrogateescape"))
    return name


@dataclass
class NameCheck:
    name: str | None  # safe relative POSIX name, or None when the member must be refused
    is_dir: bool = False
    refused: tuple[str, str] | None = None  # (threat id, why) when refused
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (threat id, why)


def check_name(original: str) -> NameCheck:
    """Refuse or normalise a member name. Idempotent: a name we return passes unchanged."""
    if len(original) > MAX_NAME_CHARS:  # before any per-character work: a name may be megabytes
        return NameCheck(None, refused=("archive.bad_name", "name too long"))
    name = unicodedata.normalize("NFC", original)
    renamed: list[tuple[str, str]] = []
    if "\x00" in name:
        return NameCheck(None, refused=("archive.bad_name", "NUL character in the name"))
    if any(c in BIDI_CONTROLS for c in name):
        return NameCheck(None, refused=("archive.bad_name", "bidirectional control character in the name"))
    if any(unicodedata.category(c) == "Cc" for c in name):
        return NameCheck(None, refused=("archive.bad_name", "control character in the name"))
    if len(name) > MAX_NAME_CHARS:
        return NameCheck(None, refused=("archive.bad_name", "name too long"))
    if "\\" in name:
        name = name.replace("\\", "/")
        renamed.append(("archive.bad_name", "backslashes replaced by /"))
    is_dir = name.endswith("/")
    if _DRIVE.match(name):
        name = name[2:]
        renamed.append(("archive.path_traversal", "drive letter removed"))
    if name.startswith("/"):
        name = name.lstrip("/")
        renamed.append(("archive.path_traversal", "absolute path made relative"))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return NameCheck(None, refused=("archive.path_traversal", "'..' in the path"))
    fixed = [_windows_safe(p) for p in parts]
    if fixed != parts:
        renamed.append(("archive.bad_name", "characters or names Windows cannot use were replaced"))
    if not fixed:
        return NameCheck(None, is_dir=is_dir, refused=("archive.bad_name", "empty name"))
    if any(len(p.encode("utf-8")) > MAX_PART_BYTES for p in fixed):
        return NameCheck(None, refused=("archive.bad_name", "path component too long"))
    return NameCheck("/".join(fixed), is_dir=is_dir, renamed=renamed)


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name (2).ext` etc. when it (case-insensitively, as on Windows) is taken."""
    key = name.casefold()
    if key not in taken:
        taken.add(key)
        return name
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not stem:
        stem, dot, ext = base, "", ""
    n = 2
    while True:
        cand = f"{stem} ({n}){dot}{ext}"
        full = f"{folder}/{cand}" if folder else cand
        if full.casefold() not in taken:
            taken.add(full.casefold())
            return full
        n += 1
