"""Readers and writers for the archive family: ZIP, tar (+gz/bz2/xz), single-file gz/bz2/xz, 7z.

Readers yield `Entry` records in archive order and extract one entry at a time
to a path we choose (never a path derived from the member name). Every
expanded byte goes through a `Meter`, so limits hold whatever the headers say.
Writers build a brand-new archive from delivered files only: fresh metadata,
UTF-8 names, no comments, no extra fields, no encryption.
"""
from __future__ import annotations

import bz2
import calendar
import gzip
import lzma
import shutil
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ...errors import Encrypted, LimitExceeded, Malformed
from ...model import Threat
from .limits import Budget, CountingReader, Meter, MiB
from .names import MAX_NAME_CHARS, surrogate_name, zip_name

# Longer names are refused anyway (check_name): keep only enough to say so.
_NAME_CUT = MAX_NAME_CHARS + 1

ZIP = "application/zip"
TAR = "application/x-tar"
GZIP = "application/gzip"
BZIP2 = "application/x-bzip2"
XZ = "application/x-xz"
SEVENZ = "application/x-7z-compressed"
RAR = "application/vnd.rar"
COMPRESSED = (GZIP, BZIP2, XZ)

_AES = 99
_MIN_ZIP_TIME = calendar.timegm((1980, 1, 1, 0, 0, 0))
_MAX_ZIP_TIME = calendar.timegm((2107, 12, 31, 23, 59, 58))
_MAX_TAR_TIME = 8 ** 11 - 1  # largest mtime a ustar header holds without a pax record


@dataclass
class Entry:
    index: int
    name: str  # decoded name as stored (not yet checked)
    kind: str  # file | dir | symlink | hardlink | special
    size: int = 0  # header claim, informational only
    packed: int | None = None  # header's compressed size (an upper bound on input consumed), for ratios
    encrypted: bool = False
    mtime: float = 0.0  # seconds since the epoch (ZIP local times are treated as UTC both ways)
    detail: str = ""


class MemberError(Exception):
    """One member cannot be read; it is dropped, the rest of the archive goes on."""

    def __init__(self, threat_id: str, en: str, ja: str) -> None:
        super().__init__(en)
        self.threat_id, self.en, self.ja = threat_id, en, ja


class WrongPassword(Exception):
    """The supplied password does not open this member."""


def _passwords(password: str | None) -> list[bytes]:
    """Byte forms to try: a Japanese password may have been typed on a cp932 system."""
    if not password:
        return []
    out: list[bytes] = []
    for enc in ("utf-8", "cp932"):
        try:
            b = password.encode(enc)
        except UnicodeEncodeError:
            continue
        if b not in out:
            out.append(b)
    return out


# ---------------------------------------------------------------- ZIP

def _zip_kind(info: zipfile.ZipInfo) -> str:
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt == stat.S_IFLNK:
        return "symlink"
    if fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        return "special"
    if fmt == stat.S_IFDIR or info.orig_filename.endswith(("/", "\\")):
        return "dir"
    return "file"


def _zip_time(dt: tuple) -> float:
    try:
        return float(calendar.timegm(tuple(dt) + (0, 0, 0)))
    except (TypeError, ValueError, OverflowError):
        return float(_MIN_ZIP_TIME)


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
_EOCD64_LOC = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator, 20 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record, 56 bytes
_CD_HEAD = 46  # fixed part of a central directory header


def _end_record(f: BinaryIO) -> tuple[int, int, int, int] | None:
    """(stated entries, directory size, directory start, end record offset), located as zipfile does:
    the directory is taken to end where the end records begin, whatever its stated offset says."""
    f.seek(0, 2)
    size = f.tell()
    tail_at = max(0, size - _EOCD.size - (1 << 16))  # the comment is at most 64 KiB, as zipfile searches
    f.seek(tail_at)
    tail = f.read()
    if tail[-_EOCD.size:-_EOCD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        at = len(tail) - _EOCD.size  # no archive comment
    else:
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
    _sig, _disk, _disk_cd, _here, entries, cd_size, _cd_off, _clen = _EOCD.unpack_from(tail, at)
    eocd_at = tail_at + at
    cd_end = eocd_at
    if eocd_at >= _EOCD64_LOC.size + _EOCD64.size:
        f.seek(eocd_at - _EOCD64_LOC.size - _EOCD64.size)
        block = f.read(_EOCD64.size + _EOCD64_LOC.size)
        if block[_EOCD64.size:_EOCD64.size + 4] == b"PK\x06\x07" and block[:4] == b"PK\x06\x06":
            rec = _EOCD64.unpack_from(block)
            entries, cd_size = rec[7], rec[8]
            cd_end = eocd_at - _EOCD64_LOC.size - _EOCD64.size
    return entries, cd_size, cd_end - cd_size, cd_end


def _too_many(stated: int | None, limit: int) -> LimitExceeded:
    if stated is None:
        return LimitExceeded(f"the archive has more than {limit} members",
                             f"アーカイブ内のファイル数が上限（{limit}）を超えています",
                             threat_id="archive.too_many_members")
    return LimitExceeded(f"the archive declares {stated} members, more than the limit of {limit}",
                         f"アーカイブ内のファイル数（{stated}）が上限（{limit}）を超えています",
                         threat_id="archive.too_many_members")


class ZipReader:
    def __init__(self, path: Path, password: str | None = None, max_members: int | None = None) -> None:
        self.path = path
        self.passwords = _passwords(password)
        if max_members is not None:
            self.check_directory(path, max_members)
        try:
            self.zf = zipfile.ZipFile(path)
            self.infos = self.zf.infolist()
        except (zipfile.BadZipFile, ValueError, struct.error, UnicodeDecodeError, EOFError, NotImplementedError,
                OSError) as exc:
            raise Malformed(f"the ZIP archive is damaged ({exc})"[:200], "ZIPファイルが壊れています",
                            threat_id="file.malformed") from None
        self._aes_zf = None

    @staticmethod
    def check_directory(path: Path, max_members: int) -> int:
        """Count central directory entries before zipfile parses them; raise past `max_members`.

        zipfile builds a ZipInfo for every header in the directory whatever the end record claims,
        so both the claim (ZIP64 included) and the headers themselves are counted here, stopping at
        max_members + 1. Returns the number of entries found (the directory is then small)."""
        with open(path, "rb") as f:
            end = _end_record(f)
            if end is None:
                return 0  # not a ZIP we can read: zipfile says so in its own words
            stated, cd_size, cd_start, eocd_at = end
            if stated > max_members:
                raise _too_many(stated, max_members)
            if cd_start < 0:  # zipfile refuses it too, but only after reading the end records itself
                raise Malformed(f"the ZIP central directory claims {cd_size} bytes, more than the file holds",
                                "ZIPファイルの構造が壊れています（中央ディレクトリのサイズが不正）",
                                threat_id="file.malformed")
            count, pos, stop = 0, cd_start, cd_start + cd_size
            while pos < stop:
                f.seek(pos)
                head = f.read(_CD_HEAD)
                if len(head) < _CD_HEAD or head[:4] != b"PK\x01\x02":
                    break  # damaged: zipfile stops at the same header and raises
                count += 1
                if count > max_members:
                    raise _too_many(None, max_members)
                n, m, k = struct.unpack_from("<3H", head, 28)
                pos += _CD_HEAD + n + m + k
        return count

    def structure_threats(self, action: str) -> list[Threat]:
        """Comment, bytes hidden between/around members, overlapping members (a non-recursive bomb)."""
        threats: list[Threat] = []
        if self.zf.comment:
            threats.append(Threat("archive.comment", "", action, f"{len(self.zf.comment)}-byte archive comment"))
        spans = []
        with open(self.path, "rb") as f:
            for info in self.infos:
                if info.header_offset < 0:  # a central directory pointing before the file
                    raise Malformed(f"member {info.orig_filename!r} has no local header",
                                    "ZIPファイルの構造が壊れています", threat_id="file.malformed")
                f.seek(info.header_offset)
                head = f.read(30)
                if len(head) < 30 or head[:4] != b"PK\x03\x04":
                    raise Malformed(f"member {info.orig_filename!r} has no local header",
                                    "ZIPファイルの構造が壊れています", threat_id="file.malformed")
                n, m = struct.unpack("<HH", head[26:30])
                data_end = info.header_offset + 30 + n + m + info.compress_size
                spans.append((info.header_offset, data_end, bool(info.flag_bits & 0x08)))
        if not spans:
            return threats
        spans.sort()
        ends = [s[0] for s in spans[1:]] + [getattr(self.zf, "start_dir", spans[-1][1])]
        hidden = spans[0][0]
        for (_start, end, descriptor), nxt in zip(spans, ends, strict=True):
            gap = nxt - end
            if gap < 0:
                raise LimitExceeded("ZIP members overlap (the non-recursive zip bomb technique)",
                                    "ZIPのメンバーが重なり合っています（ZIP爆弾の手法）", threat_id="archive.bomb")
            if descriptor and gap in (12, 16, 20, 24):
                continue
            hidden += gap
        if hidden:
            threats.append(Threat("archive.hidden_data", "", action,
                                  f"{hidden} bytes outside any member (data between or before members)"))
        for info in self.infos:
            # (an empty deflate stream takes a few bytes: our own folder entries have 2)
            if _zip_kind(info) == "dir" and (info.file_size or info.compress_size > 16):
                # Delivered as an empty folder: say that its bytes were not carried over.
                threats.append(Threat("archive.hidden_data", zip_name(info), action,
                                      f"folder entry carries {info.file_size} bytes"))
        return threats

    def entries(self) -> Iterator[Entry]:
        for i, info in enumerate(self.infos):
            yield Entry(i, zip_name(info), _zip_kind(info), info.file_size, info.compress_size,
                        bool(info.flag_bits & 0x1), _zip_time(info.date_time),
                        "AES" if info.compress_type == _AES else "")

    def _aes(self):
        if self._aes_zf is None:
            import pyzipper

            self._aes_zf = pyzipper.AESZipFile(self.path)
        return self._aes_zf

    def extract(self, entry: Entry, dst: Path, meter: Meter) -> None:
        info = self.infos[entry.index]
        zf = self.zf
        if info.compress_type == _AES:
            zf = self._aes()
            info = zf.infolist()[entry.index]
            if info.orig_filename != self.infos[entry.index].orig_filename:
                raise MemberError("file.malformed", "AES member directory mismatch", "ZIPの構造が不正です")
        tries: list[bytes | None] = list(self.passwords) if entry.encrypted else [None]
        for pwd in tries:
            try:
                src = zf.open(info, pwd=pwd)
            except RuntimeError as exc:
                if "password" in str(exc).lower():
                    continue
                raise MemberError("file.malformed", str(exc), "ZIPのメンバーを読み取れません") from None
            except NotImplementedError as exc:
                raise MemberError("archive.unsupported", f"unsupported ZIP feature: {exc}",
                                  "対応していない圧縮方式または暗号方式です") from None
            except (zipfile.BadZipFile, ValueError, EOFError, struct.error) as exc:
                raise MemberError("file.malformed", f"damaged member: {exc}", "ZIPのメンバーが壊れています") from None
            try:
                with src, open(dst, "wb") as out:
                    meter.copy(src, out, entry.name, packed=info.compress_size)
                return
            except (zipfile.BadZipFile, zlib.error, EOFError, lzma.LZMAError, ValueError) as exc:
                if entry.encrypted:  # a wrong ZipCrypto password passes the 1-byte check 1 time in 256
                    continue
                raise MemberError("file.malformed", f"damaged member: {exc}", "ZIPのメンバーが壊れています") from None
        raise WrongPassword()

    def close(self) -> None:
        self.zf.close()
        if self._aes_zf is not None:
            self._aes_zf.close()


# ---------------------------------------------------------------- tar and single-file compression

def _decompressor(path: Path, mime: str) -> BinaryIO:
    raw = open(path, "rb")
    if mime == GZIP:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if mime == BZIP2:
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if mime == XZ:
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    return raw


_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, tarfile.TarError)


def is_tar_stream(path: Path, mime: str) -> bool:
    """Does the decompressed stream start with a valid tar header (checksum verified)?"""
    try:
        with _decompressor(path, mime) as f:
            block = f.read(tarfile.BLOCKSIZE)
    except _STREAM_ERRORS:
        return False
    if len(block) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


class TarReader:
    def __init__(self, path: Path, mime: str, meter: Meter) -> None:
        self.stream = CountingReader(_decompressor(path, mime), meter)
        try:
            self.tf = tarfile.open(fileobj=self.stream, mode="r|", encoding="utf-8",  # type: ignore[call-overload]
                                   errors="surrogateescape")
        except _STREAM_ERRORS as exc:
            self.stream.close()
            raise Malformed(f"the tar archive is damaged ({exc})", "tarファイルが壊れています",
                            threat_id="file.malformed") from None
        self._current: tarfile.TarInfo | None = None

    def structure_threats(self, action: str) -> list[Threat]:
        return []

    def entries(self) -> Iterator[Entry]:
        try:
            for i, m in enumerate(self.tf):
                self._current = m
                if m.isreg() and not m.issparse():
                    kind = "file"
                elif m.isdir():
                    kind = "dir"
                elif m.issym():
                    kind = "symlink"
                elif m.islnk():
                    kind = "hardlink"
                else:
                    kind = "special"
                # A GNU/PAX long name can be megabytes: cut it (still too long, so refused) before any work.
                name = surrogate_name(m.name[:_NAME_CUT]) + ("/" if kind == "dir" else "")
                yield Entry(i, name, kind, m.size, None, False, float(m.mtime or 0),
                            "sparse file" if m.issparse() else "")
        except LimitExceeded:
            raise
        except _STREAM_ERRORS as exc:
            raise Malformed(f"the tar archive is damaged ({exc})", "tarファイルが壊れています",
                            threat_id="file.malformed") from None

    def extract(self, entry: Entry, dst: Path, meter: Meter) -> None:
        src = self.tf.extractfile(self._current)  # type: ignore[arg-type]
        if src is None:
            raise MemberError("file.malformed", "member has no data", "メンバーを読み取れません")
        try:
            with src, open(dst, "wb") as out:
                meter.copy(src, out, entry.name, count=False)  # already metered by the CountingReader
        except LimitExceeded:
            raise
        except _STREAM_ERRORS as exc:  # a cut or damaged compressed stream: no later member can be read either
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # the machine's error (a full disk), not the archive's
            raise Malformed(f"the tar archive is damaged ({exc})", "tarファイルが壊れています",
                            threat_id="file.malformed") from None

    def close(self) -> None:
        self.tf.close()
        self.stream.close()


class SingleReader:
    """A .gz/.bz2/.xz holding one file that is not a tar: one member, named after the archive."""

    def __init__(self, path: Path, mime: str, archive_name: str) -> None:
        self.path, self.mime = path, mime
        base = archive_name.replace("\\", "/").rsplit("/", 1)[-1]
        low = base.lower()
        for ext in (".gz", ".gzip", ".bz2", ".xz", ".z"):
            if low.endswith(ext) and len(base) > len(ext):
                base = base[: -len(ext)]
                break
        else:
            base = base + ".out" if base else "file"
        self.member = base

    def structure_threats(self, action: str) -> list[Threat]:
        return []

    def entries(self) -> Iterator[Entry]:
        yield Entry(0, self.member, "file", 0, self.path.stat().st_size, False, 0.0)

    def extract(self, entry: Entry, dst: Path, meter: Meter) -> None:
        try:
            with _decompressor(self.path, self.mime) as src, open(dst, "wb") as out:
                meter.copy(src, out, entry.name, packed=entry.packed)
        except LimitExceeded:
            raise
        except _STREAM_ERRORS as exc:
            raise Malformed(f"the compressed file is damaged ({exc})", "圧縮ファイルが壊れています",
                            threat_id="file.malformed") from None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- 7z

# A header that cannot be counted (encrypted, another coder) may unpack to this much per member allowed:
# a name of 1,024 characters is 2 KiB in UTF-16, times, attributes and sizes a few dozen bytes more.
_HEADER_BYTES_PER_MEMBER = 4096


def _count_7z_entries(fp, path: Path, budget: Budget) -> None:
    """The header's own counts against the member limit, before py7zr builds an object per entry."""
    from .sevenzip_header import HeaderError, TooMany, count_entries

    left = max(0, budget.members_limit - budget.members)
    try:
        count_entries(fp, path.stat().st_size, left, budget.members_limit * _HEADER_BYTES_PER_MEMBER + MiB)
    except TooMany as exc:
        raise budget.trip(LimitExceeded(
            f"the 7z header lists {exc.n:,} {exc.what}, more than the limit of {budget.members_limit} members allows",
            f"7zファイルの目録に記載された数（{exc.n:,}）が上限（{budget.members_limit}）を超えています",
            threat_id="archive.too_many_members")) from None
    except (HeaderError, EOFError, OSError) as exc:
        raise Malformed(f"the 7z archive is damaged ({exc})", "7zファイルが壊れています",
                        threat_id="file.malformed") from None


class SevenZipReader:
    """py7zr pushes data into writers; we extract all wanted members up front, metered, to generated paths."""

    def __init__(self, path: Path, password: str | None, workdir: Path, budget: Budget) -> None:
        import py7zr

        self.path, self.password, self.workdir = path, password, workdir
        self._fp = open(path, "rb")
        try:
            _count_7z_entries(self._fp, path, budget)
        except BaseException:
            self._fp.close()
            raise
        self._fp.seek(0)
        try:
            self.z = py7zr.SevenZipFile(self._fp, mode="r", password=password)
        except py7zr.PasswordRequired:
            self._fp.close()
            raise Encrypted(threat_id="archive.encrypted") from None
        except (py7zr.Bad7zFile, EOFError, lzma.LZMAError, ValueError, KeyError) as exc:
            self._fp.close()
            if password:
                raise Encrypted("the password supplied does not open this 7z archive",
                                "指定されたパスワードではこの7zファイルを開けません", threat_id="archive.encrypted") from None
            raise Malformed(f"the 7z archive is damaged ({exc})", "7zファイルが壊れています",
                            threat_id="file.malformed") from None
        self.files = list(self.z.files)
        self.encrypted = bool(self.z.needs_password())
        self._extracted: dict[int, Path] | None = None
        self._errors: dict[int, MemberError] = {}
        self._wrong_password = False
        self.budget = budget

    def structure_threats(self, action: str) -> list[Threat]:
        return []

    @staticmethod
    def _kind(f) -> str:
        if f.is_directory:
            return "dir"
        if f.is_symlink or f.is_junction:
            return "symlink"
        if not f.is_file or f.is_socket:
            return "special"
        return "file"

    def entries(self) -> Iterator[Entry]:
        for i, f in enumerate(self.files):
            ts = f.lastwritetime
            try:
                mtime = float(ts.totimestamp()) if ts is not None else 0.0
            except (ValueError, OverflowError, OSError):
                mtime = 0.0
            kind = self._kind(f)
            yield Entry(i, f.filename[:_NAME_CUT] + ("/" if kind == "dir" else ""), kind, int(f.uncompressed or 0),
                        f.compressed, self.encrypted, mtime)

    def _extract_all(self, meter: Meter) -> None:
        import py7zr
        from py7zr.helpers import get_sanitized_output_path
        from py7zr.io import Py7zIO, WriterFactory

        wanted: dict[str, int] = {}
        targets = set()
        for i, f in enumerate(self.files):
            if self._kind(f) != "file":
                continue
            try:
                get_sanitized_output_path(f.filename, None)
            except py7zr.Bad7zFile:  # py7zr refuses to extract it at all
                self._errors[i] = MemberError("archive.path_traversal", "name cannot be extracted safely",
                                              "安全に展開できない名前です")
                continue
            targets.add(f.filename)
        # py7zr numbers a repeated name name_0, name_1, ... over every entry it extracts (links and
        # folders too, in archive order) and keys writers by the sanitised result; do the same, and
        # refuse a regular file whose key another entry also gets (its bytes could not be told apart).
        seen: dict[str, int] = {}
        keys: dict[str, list[int]] = {}
        for i, f in enumerate(self.files):
            name = f.filename
            if name not in targets:
                continue
            out = name if name not in seen else f"{name}_{seen[name]}"
            seen[name] = seen[name] + 1 if name in seen else 0
            keys.setdefault(get_sanitized_output_path(out, None).as_posix(), []).append(i)
        for key, idx in keys.items():
            files = [i for i in idx if self._kind(self.files[i]) == "file"]
            if len(idx) == 1 and files:
                wanted[key] = files[0]
            for i in files if len(idx) > 1 else ():
                self._errors[i] = MemberError("archive.duplicate_name", "another entry has the same name",
                                              "同じ名前の別の項目があるため区別できません")
        paths: dict[int, Path] = {}
        workdir = self.workdir

        class _Out(Py7zIO):
            def __init__(self, key: str) -> None:
                self.idx = wanted.get(key)
                self.written = 0
                self.f = None
                if self.idx is not None:
                    p = workdir / f"z{self.idx:06d}"
                    paths[self.idx] = p
                    self.f = open(p, "wb")

            def write(self, s) -> int:
                if self.f is None:
                    meter.add(len(s), "", 0, None)  # not delivered, but still expanded: it counts
                    return len(s)
                self.written += len(s)
                f = self_files[self.idx]
                meter.add(len(s), f.filename, self.written, f.compressed)
                return self.f.write(s)

            def read(self, size=None) -> bytes:
                return b""

            def seek(self, offset: int, whence: int = 0) -> int:
                return 0

            def flush(self) -> None:
                pass

            def size(self) -> int:
                return self.written

            def close(self) -> None:
                if self.f is not None:
                    self.f.close()
                    self.f = None

        self_files = self.files

        class _Factory(WriterFactory):
            def create(self, filename: str) -> Py7zIO:
                return _Out(filename)

        if targets:
            # py7zr also expands entries it does not hand to us (to check CRCs on the way): cap it all.
            self.z.max_extract_size = meter.headroom()
            try:
                self.z.extract(targets=sorted(targets), factory=_Factory())
            except LimitExceeded:
                raise
            except py7zr.exceptions.DecompressionBombError:
                # py7zr went past the headroom: counting that trips the very limit it crossed.
                meter.add(meter.headroom() + 1)
                raise
            except (py7zr.Bad7zFile, py7zr.exceptions.CrcError, lzma.LZMAError, EOFError, ValueError,
                    zlib.error) as exc:
                if self.encrypted:
                    self._wrong_password = True
                    raise WrongPassword() from None
                raise Malformed(f"the 7z archive is damaged ({exc})", "7zファイルが壊れています",
                                threat_id="file.malformed") from None
        self._extracted = paths

    def extract(self, entry: Entry, dst: Path, meter: Meter) -> None:
        if entry.index in self._errors:
            raise self._errors[entry.index]
        if self._wrong_password:
            raise WrongPassword()
        if self._extracted is None:
            self._extract_all(meter)
        assert self._extracted is not None
        p = self._extracted.get(entry.index)
        if p is None or not p.exists():
            raise MemberError("file.malformed", "member was not extracted", "メンバーを展開できませんでした")
        shutil.move(p, dst)

    def close(self) -> None:
        self.z.close()
        self._fp.close()


# ---------------------------------------------------------------- writers

# Members whose bytes are entropy-coded already: JPEG, PNG, GIF, WebP, 7z, gzip, bzip2, xz. (Not ZIP-based
# Office files: deflating a whole xlsx again halved some, e.g. openpyxl's.)
_COMPRESSED_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"7z\xbc\xaf", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


class ZipWriter:
    def __init__(self, dst: Path) -> None:
        self.zf = zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, allowZip64=True)

    def _info(self, name: str, mtime: float, mode: int) -> zipfile.ZipInfo:
        t = min(max(mtime, _MIN_ZIP_TIME), _MAX_ZIP_TIME)
        zi = zipfile.ZipInfo(name, date_time=time.gmtime(t)[:6])
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.create_system = 3
        zi.external_attr = mode << 16
        return zi

    def add_file(self, name: str, path: Path, mtime: float) -> None:
        zi = self._info(name, mtime, 0o100644)
        size = path.stat().st_size
        zi.file_size = size
        with open(path, "rb") as src:
            if src.read(8).startswith(_COMPRESSED_MAGIC):
                zi.compress_type = zipfile.ZIP_STORED  # deflate gains about 1 % there, at zlib's full cost
            src.seek(0)
            with self.zf.open(zi, "w", force_zip64=size > 0x7FFF0000) as out:
                shutil.copyfileobj(src, out, 1 << 20)

    def add_dir(self, name: str, mtime: float) -> None:
        zi = self._info(name.rstrip("/") + "/", mtime, 0o40755)
        zi.external_attr |= 0x10  # MS-DOS directory attribute
        self.zf.writestr(zi, b"")

    def close(self) -> None:
        self.zf.close()


class TarWriter:
    def __init__(self, dst: Path, mime: str) -> None:
        self.raw = open(dst, "wb")
        if mime == GZIP:  # no name, mtime 0: the gzip header must not leak our scratch path or time
            self.comp: BinaryIO = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0)  # type: ignore
        elif mime == BZIP2:
            self.comp = bz2.BZ2File(self.raw, "wb")  # type: ignore[assignment]
        elif mime == XZ:
            self.comp = lzma.LZMAFile(self.raw, "wb", format=lzma.FORMAT_XZ)  # type: ignore[assignment]
        else:
            self.comp = self.raw
        self.tf = tarfile.open(fileobj=self.comp, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore
                               encoding="utf-8")

    def _info(self, name: str, mtime: float) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mtime = int(min(max(mtime, 0), _MAX_TAR_TIME))
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def add_file(self, name: str, path: Path, mtime: float) -> None:
        ti = self._info(name, mtime)
        ti.mode = 0o644
        ti.size = path.stat().st_size
        with open(path, "rb") as f:
            self.tf.addfile(ti, f)

    def add_dir(self, name: str, mtime: float) -> None:
        ti = self._info(name.rstrip("/"), mtime)
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        self.tf.addfile(ti)

    def close(self) -> None:
        self.tf.close()
        if self.comp is not self.raw:
            self.comp.close()
        self.raw.close()


class SingleWriter:
    def __init__(self, dst: Path, mime: str) -> None:
        self.dst, self.mime = dst, mime
        self.done = False

    def add_file(self, name: str, path: Path, mtime: float) -> None:
        if self.done:
            raise Malformed("a compressed single file holds one member", "単一ファイル圧縮の再構築に失敗しました")
        with open(self.dst, "wb") as raw:
            if self.mime == GZIP:
                comp = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            elif self.mime == BZIP2:
                comp = bz2.BZ2File(raw, "wb")  # type: ignore[assignment]
            else:
                comp = lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ)  # type: ignore[assignment]
            with comp, open(path, "rb") as src:
                shutil.copyfileobj(src, comp, 1 << 20)
        self.done = True

    def add_dir(self, name: str, mtime: float) -> None:
        pass

    def close(self) -> None:
        if not self.done:
            raise Malformed("nothing to compress", "単一ファイル圧縮の再構築に失敗しました")


class SevenZipWriter:
    def __init__(self, dst: Path, workdir: Path) -> None:
        import py7zr

        self.z = py7zr.SevenZipFile(dst, "w")
        self.workdir = workdir

    def add_file(self, name: str, path: Path, mtime: float) -> None:
        import os

        t = max(mtime, 0)
        os.utime(path, (t, t))
        self.z.write(path, arcname=name)

    def add_dir(self, name: str, mtime: float) -> None:
        d = self.workdir / "empty-dir"
        d.mkdir(exist_ok=True)
        self.z.write(d, arcname=name.rstrip("/"))

    def close(self) -> None:
        self.z.close()
