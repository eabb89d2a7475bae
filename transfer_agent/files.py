"""File-system helpers: durable renames and the names clerks see.

`clean_name` is the one naming rule for everything the appliance writes into the inbox (file
names, reused results, notices, channel and sender folders, released originals): names from the
internet side are kept as the sender wrote them (NFC normalised), minus control and bidi characters
(a right-to-left override can make `exe.pdf` look like a PDF), with what Windows refuses replaced
(`<>:"|?*`, reserved names such as CON or LPT1, trailing dots and spaces: cdr.names.windows_safe),
and cut to fit the 255-byte limit together with our suffixes.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import unicodedata
from pathlib import Path

from cdr.encoding import BIDI_CONTROLS
from cdr.names import text_name, windows_safe

NAME_MAX = 255
# Longest thing we append to a delivered name: " (9999)" + ".blocked.json" and the temp decoration.
_RESERVE = len(" (9999)") + len(".blocked.json") + len("..tmp-") + 20
# Control, format (bidi, zero-width), surrogate and unassigned characters. Private use stays
# (cp932 外字), except U+F8F0-U+F8F3: what stray cp932 bytes 0xA0/0xFD-0xFF decode to.
_DROP = ("Cc", "Cf", "Cs", "Cn")
_TRAILING = re.compile(r"[\s.]+\Z")


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path, fsync: bool = False) -> tuple[str, int]:
    """sha256 and size, reading through a no-follow descriptor."""
    h = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
        if fsync:
            os.fsync(f.fileno())
    return h.hexdigest(), size


def clean_name(name: str, fallback: str = "file") -> str:
    """NFC, no control/bidi/unassigned characters, no path separators, never a dot-name.

    A leading dot would make a hidden file on the share (Samba `hide dot files`) and collide
    with our own temporary names, so `.hidden.txt` becomes `_hidden.txt`. Trailing dots and
    spaces are dropped (Windows cannot open such names). A name whose stem was lost to
    cleaning (`\\xff\\xfe.txt` -> `.txt`) gets `fallback` as its stem: `file.txt`.
    """
    name = unicodedata.normalize("NFC", text_name(name))
    kept = "".join(c for c in name if c not in BIDI_CONTROLS and unicodedata.category(c) not in _DROP
                   and not "\uf8f0" <= c <= "\uf8ff")
    lost_chars = len(kept) != len(name)
    name = kept.replace("/", "_").replace("\\", "_").strip()
    name = _TRAILING.sub("", name)
    if name.startswith("."):
        rest = name.lstrip(".")
        if rest and lost_chars and "." not in rest:
            name = f"{fallback}.{rest}"
        else:
            name = f"_{rest}" if rest else ""
    if not name:
        name = fallback
    # Windows' rule last (the share's clients are Windows): after fitting, which may leave a trailing dot.
    return windows_safe(fit_name(name, NAME_MAX - _RESERVE))


def fit_name(name: str, max_bytes: int) -> str:
    """Shorten the stem (keeping the extension) until the UTF-8 name fits `max_bytes`."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    stem, ext = split_ext(name)
    if len(ext.encode("utf-8")) > max_bytes // 2:
        ext = ""
    budget = max_bytes - len(ext.encode("utf-8"))
    out = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return (out or "file") + ext


def split_ext(name: str) -> tuple[str, str]:
    """'申請書.docx' -> ('申請書', '.docx'); a leading dot is not an extension."""
    i = name.rfind(".")
    if i <= 0:
        return name, ""
    return name[:i], name[i:]


def numbered(name: str, n: int) -> str:
    """The n-th collision variant: '申請書.docx' -> '申請書 (2).docx'."""
    if n <= 1:
        return name
    stem, ext = split_ext(name)
    return f"{stem} ({n}){ext}"


def temp_name(final: str, job_id: int) -> str:
    """Dot-prefixed so clerks never see it; carries the job id so recovery can find it."""
    suffix = f".tmp-{job_id}"
    head = fit_name(final, NAME_MAX - 1 - len(suffix))
    return f".{head}{suffix}"


def link_no_replace(src: Path, dst: Path) -> None:
    """Give `src` the name `dst` atomically, failing with FileExistsError if `dst` exists.

    A hard link never replaces; where links are unsupported, fall back to check + rename.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)
