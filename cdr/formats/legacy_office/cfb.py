"""A small compound file (CFB, [MS-CFB]) writer: version 3, 512-byte sectors.

No maintained Python library writes compound files (olefile rewrites only same-size streams,
cfbwrite is AGPL), so this writes one from scratch: streams under 4096 bytes go to the mini
stream (MiniFAT), the rest to regular sectors; the directory of each storage is a balanced
binary tree coloured as a valid red-black tree (levels that are full are black, the partial last
level red), ordered by name length then upper-cased name as [MS-CFB] 2.6.4 requires. Creation
and modification times are zero (they would identify when and on which machine a file was made).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
MAX_NAME = 31  # UTF-16 code units, without the terminator
FREESECT, ENDOFCHAIN, FATSECT, DIFSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC
NOSTREAM = 0xFFFFFFFF
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1
_PER_SECTOR = SECTOR // 4
_HEADER_DIFAT = 109
_ENTRY = struct.Struct("<64sHBBIII16sIQQIQ")
_FORBIDDEN = set("/\\:!")


class CfbError(ValueError):
    """The tree given cannot be written as a compound file (bad name, duplicate, too large)."""


@dataclass
class _Node:
    name: str
    kind: int
    data: bytes = b""
    clsid: bytes = b"\0" * 16
    children: list[_Node] = field(default_factory=list)
    sid: int = 0
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = _BLACK
    start: int = ENDOFCHAIN


def _key(name: str) -> tuple[int, str]:
    # [MS-CFB] 2.6.4: shorter names first, then code unit by code unit, upper-cased.
    units = len(name.encode("utf-16-le")) // 2
    return units, "".join(c.upper() if len(c.upper()) == 1 else c for c in name)


def _check_name(name: str) -> None:
    if not name or len(name.encode("utf-16-le")) // 2 > MAX_NAME or _FORBIDDEN & set(name) or "\0" in name:
        raise CfbError(f"invalid compound file entry name {name!r}")


def _build_tree(streams: Mapping[str, bytes], storages: Iterable[str], clsids: Mapping[str, bytes]) -> _Node:
    root = _Node("Root Entry", _ROOT, clsid=bytes(clsids.get("", b"\0" * 16)))
    index: dict[tuple[str, ...], _Node] = {(): root}

    def storage(parts: tuple[str, ...]) -> _Node:
        node = index.get(parts)
        if node is None:
            parent = storage(parts[:-1])
            _check_name(parts[-1])
            node = _Node(parts[-1], _STORAGE, clsid=bytes(clsids.get("/".join(parts), b"\0" * 16)))
            parent.children.append(node)
            index[parts] = node
        elif node.kind == _STREAM:
            raise CfbError(f"{'/'.join(parts)} is both a stream and a storage")
        return node

    for path in storages:
        storage(tuple(path.split("/")))
    for path, data in streams.items():
        parts = tuple(path.split("/"))
        if parts in index:
            raise CfbError(f"{path} is given twice")
        _check_name(parts[-1])
        node = _Node(parts[-1], _STREAM, data=bytes(data))
        storage(parts[:-1]).children.append(node)
        index[parts] = node
    for path, clsid in clsids.items():
        if len(clsid) != 16 or (path and tuple(path.split("/")) not in index):
            raise CfbError(f"bad CLSID for {path!r}")
    return root


def _link(node: _Node, order: list[_Node]) -> None:
    """Give `node`'s children a balanced, validly coloured red-black tree; number every node."""
    kids = sorted(node.children, key=lambda n: _key(n.name))
    for a, b in zip(kids, kids[1:], strict=False):
        if _key(a.name) == _key(b.name):
            raise CfbError(f"two entries named {a.name!r} and {b.name!r} in one storage")
    for k in kids:
        k.sid = len(order)
        order.append(k)
    full = (len(kids) + 1).bit_length() - 1  # levels 0..full-1 are complete: black; the rest red

    def build(items: list[_Node], depth: int) -> int:
        if not items:
            return NOSTREAM
        mid = len(items) // 2
        n = items[mid]
        n.color = _BLACK if depth < full else _RED
        n.left = build(items[:mid], depth + 1)
        n.right = build(items[mid + 1:], depth + 1)
        return n.sid

    node.child = build(kids, 0)
    for k in kids:
        if k.kind == _STORAGE:
            _link(k, order)


def _chain(fat: list[int], first: int, count: int) -> None:
    for i in range(count):
        fat.append(first + i + 1 if i < count - 1 else ENDOFCHAIN)


def write(streams: Mapping[str, bytes], storages: Iterable[str] = (), clsids: Mapping[str, bytes] | None = None
          ) -> bytes:
    """A compound file holding `streams` ("/"-separated paths; storages on the way are created),
    plus empty `storages`. `clsids` maps a storage path ("" for the root) to its 16-byte CLSID."""
    root = _build_tree(streams, storages, clsids or {})
    order = [root]
    _link(root, order)

    body: list[bytes] = []  # regular sectors, in order
    fat: list[int] = []

    def place(data: bytes, pad: bytes = b"\0") -> int:
        if not data:
            return ENDOFCHAIN
        n = -(-len(data) // SECTOR)
        first = len(body)
        for i in range(n):
            body.append(data[i * SECTOR:(i + 1) * SECTOR].ljust(SECTOR, pad))
        _chain(fat, first, n)
        return first

    mini = bytearray()
    minifat: list[int] = []
    for n in order:
        if n.kind != _STREAM:
            continue
        if len(n.data) >= MINI_CUTOFF:
            n.start = place(n.data)
        elif n.data:
            count = -(-len(n.data) // MINI_SECTOR)
            n.start = len(mini) // MINI_SECTOR
            mini += n.data.ljust(count * MINI_SECTOR, b"\0")
            _chain(minifat, n.start, count)
        else:
            n.start = ENDOFCHAIN
    root.start = place(bytes(mini))
    root.data = bytes(mini)
    minifat_raw = b"".join(struct.pack("<I", x) for x in minifat)
    minifat_start = place(minifat_raw, b"\xff")
    minifat_sectors = -(-len(minifat_raw) // SECTOR)

    entries = bytearray()
    for n in order:
        raw = n.name.encode("utf-16-le") + b"\0\0"
        size = len(n.data) if n.kind != _STORAGE else 0
        start = n.start if n.kind != _STORAGE else 0
        if n.kind == _STREAM and not n.data:
            start = ENDOFCHAIN
        entries += _ENTRY.pack(raw.ljust(64, b"\0"), len(raw), n.kind, n.color, n.left, n.right, n.child,
                               n.clsid, 0, 0, 0, start, size)
    while len(entries) % SECTOR:
        entries += _ENTRY.pack(b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0)
    dir_start = place(bytes(entries))

    # FAT and DIFAT sectors describe themselves too: grow both until they cover everything.
    nfat = ndifat = 0
    while True:
        total = len(body) + nfat + ndifat
        want_fat = -(-total // _PER_SECTOR)
        want_difat = max(0, -(-(want_fat - _HEADER_DIFAT) // (_PER_SECTOR - 1)))
        if (want_fat, want_difat) == (nfat, ndifat):
            break
        nfat, ndifat = want_fat, want_difat
    if len(body) + nfat + ndifat >= 0xFFFFFFFA:
        raise CfbError("too large for a version 3 compound file")
    fat_first = len(body)
    difat_first = fat_first + nfat
    fat.extend([FATSECT] * nfat)
    fat.extend([DIFSECT] * ndifat)
    fat.extend([FREESECT] * (nfat * _PER_SECTOR - len(fat)))
    fat_raw = struct.pack(f"<{len(fat)}I", *fat)
    fat_ids = list(range(fat_first, fat_first + nfat))
    difat_sectors = []
    rest = fat_ids[_HEADER_DIFAT:]
    for i in range(ndifat):
        part = rest[i * (_PER_SECTOR - 1):(i + 1) * (_PER_SECTOR - 1)]
        part += [FREESECT] * (_PER_SECTOR - 1 - len(part))
        nxt = difat_first + i + 1 if i < ndifat - 1 else ENDOFCHAIN
        difat_sectors.append(struct.pack(f"<{_PER_SECTOR}I", *part, nxt))
    head_difat = fat_ids[:_HEADER_DIFAT] + [FREESECT] * (_HEADER_DIFAT - min(nfat, _HEADER_DIFAT))
    header = MAGIC + b"\0" * 16 + struct.pack(
        "<HHHHH6sIIIIIIIII", 0x003E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, nfat, dir_start, 0, MINI_CUTOFF,
        minifat_start if minifat else ENDOFCHAIN, minifat_sectors, difat_first if ndifat else ENDOFCHAIN, ndifat)
    header += struct.pack(f"<{_HEADER_DIFAT}I", *head_difat)
    return b"".join([header, *body, fat_raw, *difat_sectors])
