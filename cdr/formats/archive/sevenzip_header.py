"""The entry counts of a 7z header, read before py7zr parses it.

py7zr builds Python objects for every entry of the header before anything can be counted: a 1.5 MB
archive whose LZMA-packed header lists a million empty files cost 5 s and 540 MB before its member
count was checked. Here the header is read as a stream, decompressing (LZMA or LZMA2, as 7-Zip
writes headers) only as far as needed: every count (pack streams, folders, streams per folder,
files) is checked against the member limit as soon as it is read, before the lists it announces.
A header we cannot read this way (encrypted with -mhe, another coder) is bounded by its unpacked
size instead (`max_header`), and no more than `max_header` bytes are ever read from one we can.
Format: 7-Zip's DOC/7zFormat.txt.
"""
from __future__ import annotations

import lzma
import struct
import zlib

SIGNATURE = b"7z\xbc\xaf\x27\x1c"
_END, _HEADER, _ARCHIVE_PROPS, _ADDITIONAL, _MAIN, _FILES = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
_PACK, _UNPACK, _SUBSTREAMS, _SIZE, _CRC, _FOLDER, _UNPACK_SIZE, _NUM_UNPACK = 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, \
    0x0C, 0x0D
_ENCODED = 0x17
_LZMA, _LZMA2 = b"\x03\x01\x01", b"\x21"


class HeaderError(ValueError):
    """The header is not what 7zFormat.txt describes."""


class TooMany(Exception):
    def __init__(self, what: str, n: int) -> None:
        super().__init__(what, n)
        self.what, self.n = what, n


class _Bytes:
    """A cursor over header bytes; `more` supplies the next piece of a packed header."""

    def __init__(self, data: bytes, more=None, cap: int = 1 << 62) -> None:
        self.buf, self.pos, self.more = bytearray(data), 0, more
        self.used, self.cap = 0, cap

    def take(self, n: int) -> bytes:
        self.used += n
        if self.used > self.cap:  # bounds every loop and every skip, whatever the header claims
            raise TooMany("header bytes", self.used)
        while self.pos + n > len(self.buf):
            piece = self.more() if self.more else b""
            if not piece:
                raise HeaderError("7z header ends early")
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += piece
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def num(self) -> int:
        first, mask, value = self.byte(), 0x80, 0
        for i in range(8):
            if not first & mask:
                return value | ((first & (mask - 1)) << (8 * i))
            value |= self.byte() << (8 * i)
            mask >>= 1
        return value

    def skip_nums(self, n: int) -> None:
        for _ in range(n):
            self.num()


def _check(what: str, n: int, limit: int) -> int:
    if n > limit:
        raise TooMany(what, n)
    return n


def _bits(r: _Bytes, n: int) -> list[bool]:
    data = r.take((n + 7) // 8)
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(n)]


def _digests(r: _Bytes, n: int) -> list[bool]:
    defined = [True] * n if r.byte() else _bits(r, n)
    r.take(4 * sum(defined))
    return defined


def _folder(r: _Bytes, limit: int) -> tuple[int, list[tuple[bytes, bytes]]]:
    """Number of output streams, and (coder id, properties) per coder."""
    coders, total_in, total_out = [], 0, 0
    for _ in range(_check("coders in a folder", r.num(), 64)):
        flags = r.byte()
        cid = r.take(flags & 0x0F)
        n_in, n_out = (r.num(), r.num()) if flags & 0x10 else (1, 1)
        total_in, total_out = total_in + _check("coder streams", n_in, 64), total_out + _check("coder streams", n_out, 64)
        props = r.take(_check("coder properties", r.num(), 1 << 16)) if flags & 0x20 else b""
        if flags & 0x80:
            raise HeaderError("alternative coders are not part of the format")
        coders.append((cid, props))
    bind = total_out - 1
    for _ in range(bind):
        r.num(), r.num()
    packed = total_in - bind
    if packed < 1:
        raise HeaderError("a folder without packed stream")
    if packed > 1:
        r.skip_nums(packed)
    return total_out, coders


def _streams(r: _Bytes, limit: int) -> tuple[list[int], list[list[tuple[bytes, bytes]]], int, int]:
    """StreamsInfo: (unpack sizes of each folder's outputs, flattened, coders per folder, pack position,
    packed size) with every count checked before its list is read."""
    sizes: list[int] = []
    folders: list[list[tuple[bytes, bytes]]] = []
    pack_pos = pack_size = 0
    nid = r.byte()
    if nid == _PACK:
        pack_pos = r.num()
        n = _check("packed streams", r.num(), limit)
        nid = r.byte()
        while nid != _END:
            if nid == _SIZE:
                packs = [r.num() for _ in range(n)]
                pack_size = packs[0] if packs else 0
            elif nid == _CRC:
                _digests(r, n)
            else:
                raise HeaderError(f"property 0x{nid:02X} in pack info")
            nid = r.byte()
        nid = r.byte()
    folder_crc: list[bool] = []
    outs: list[int] = []
    if nid == _UNPACK:
        if r.byte() != _FOLDER:
            raise HeaderError("unpack info without folders")
        nf = _check("folders", r.num(), limit)
        if r.byte():
            raise HeaderError("folders stored outside the header")
        for _ in range(nf):
            n_out, coders = _folder(r, limit)
            outs.append(n_out)
            folders.append(coders)
        if r.byte() != _UNPACK_SIZE:
            raise HeaderError("folders without unpack sizes")
        for n_out in outs:
            sizes.extend(r.num() for _ in range(n_out))
        nid = r.byte()
        folder_crc = [False] * nf
        if nid == _CRC:
            folder_crc = _digests(r, nf)
            nid = r.byte()
        if nid != _END:
            raise HeaderError("unpack info not closed")
        nid = r.byte()
    if nid == _SUBSTREAMS:
        per = [1] * len(outs)
        nid = r.byte()
        if nid == _NUM_UNPACK:
            per = [r.num() for _ in outs]
            _check("streams", sum(per), limit)
            nid = r.byte()
        if nid == _SIZE:
            for k in per:
                r.skip_nums(max(0, k - 1))
            nid = r.byte()
        unknown = sum(k for k, crc in zip(per, folder_crc or [False] * len(per), strict=True) if not (k == 1 and crc))
        while nid != _END:
            if nid == _CRC:
                _digests(r, unknown)
            else:
                r.take(r.num())
            nid = r.byte()
        nid = r.byte()
    if nid != _END:
        raise HeaderError("streams info not closed")
    return sizes, folders, pack_pos, pack_size


def _count_files(r: _Bytes, limit: int) -> int:
    """Header (after its kHeader byte): the number of entries, checked against `limit` on the way."""
    nid = r.byte()
    if nid == _ARCHIVE_PROPS:
        while r.byte() != _END:
            r.take(r.num())
        nid = r.byte()
    if nid == _ADDITIONAL:
        _streams(r, limit)
        nid = r.byte()
    if nid == _MAIN:
        _streams(r, limit)
        nid = r.byte()
    if nid == _FILES:
        return _check("entries", r.num(), limit)
    if nid == _END:
        return 0
    raise HeaderError(f"unexpected header property 0x{nid:02X}")


def _lzma_filters(cid: bytes, props: bytes, unpacked: int) -> list[dict] | None:
    """liblzma options for the header's coder. The dictionary never needs to be larger than what it
    unpacks to (no match reaches further back): a claimed 4 GiB one is not allocated."""
    if cid == _LZMA and len(props) == 5:
        d = props[0]
        if d >= 9 * 5 * 5:
            raise HeaderError("bad LZMA properties")
        lc, lp, pb = d % 9, (d // 9) % 5, d // 45
        size = min(int.from_bytes(props[1:5], "little"), unpacked)
        return [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": max(size, 4096)}]
    if cid == _LZMA2 and len(props) == 1:
        return [{"id": lzma.FILTER_LZMA2, "dict_size": max(min(_lzma_dict2(props[0]), unpacked), 4096)}]
    return None


def _lzma_dict2(b: int) -> int:
    if b > 40:
        raise HeaderError("bad LZMA2 dictionary size")
    return 0xFFFFFFFF if b == 40 else (2 | (b & 1)) << (b // 2 + 11)


def count_entries(fp, file_size: int, limit: int, max_header: int) -> int:
    """Entries the archive's header lists; raises TooMany past `limit` (or a header unpacking to more
    than `max_header` bytes that cannot be counted), HeaderError when it is not a 7z header."""
    fp.seek(0)
    start = fp.read(32)
    if len(start) < 32 or not start.startswith(SIGNATURE):
        raise HeaderError("no 7z signature")
    crc, off, size, next_crc = struct.unpack("<IQQI", start[8:32])
    if zlib.crc32(start[12:32]) != crc:
        raise HeaderError("bad start header checksum")
    if size == 0:
        return 0
    if size > max_header:
        raise TooMany("header bytes", size)
    if 32 + off + size > file_size:
        raise HeaderError("the header lies outside the file")
    fp.seek(32 + off)
    raw = fp.read(size)
    if zlib.crc32(raw) != next_crc:
        raise HeaderError("bad header checksum")
    r = _Bytes(raw, cap=max_header)
    kind = r.byte()
    if kind == _HEADER:
        return _count_files(r, limit)
    if kind != _ENCODED:
        raise HeaderError(f"unexpected header type 0x{kind:02X}")
    sizes, folders, pack_pos, pack_size = _streams(r, limit)
    if len(folders) != 1 or not sizes:
        raise HeaderError("a packed header in other than one folder")
    unpacked = max(sizes)
    filters = _lzma_filters(*folders[0][0], unpacked) if len(folders[0]) == 1 else None
    if filters is None:  # encrypted header, or a coder we do not stream: bounded by its size only
        if unpacked > max_header:
            raise TooMany("header bytes", unpacked)
        return -1
    if 32 + pack_pos + pack_size > file_size:
        raise HeaderError("the packed header lies outside the file")
    fp.seek(32 + pack_pos)
    left = [pack_size]
    try:
        dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)
    except (lzma.LZMAError, ValueError, MemoryError) as exc:
        raise HeaderError(f"packed header: {exc}") from None

    def more() -> bytes:
        while not dec.eof:
            if dec.needs_input:
                chunk = fp.read(min(left[0], 1 << 16))
                left[0] -= len(chunk)
            else:
                chunk = b""
            out = dec.decompress(chunk, 1 << 16)
            if out:
                return out
            if not chunk and dec.needs_input:
                return b""
        return b""

    try:
        r = _Bytes(b"", more, max_header)
        if r.byte() != _HEADER:
            raise HeaderError("the packed header is not a header")
        return _count_files(r, limit)
    except lzma.LZMAError as exc:
        raise HeaderError(f"packed header: {exc}") from None
