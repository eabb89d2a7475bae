"""The record format shared by PowerPoint and OfficeArt ([MS-PPT] 2.3.1, [MS-ODRAW] 2.1.1).

Every record is an 8-byte header (recVer:4, recInstance:12, recType:16, recLen:32) and a body;
a header with recVer 0xF is a container whose body is a sequence of records. The parser is
strict: a record that runs past its parent, a tree that is too deep or too large raises
`RecordError`, so the caller can block or fall back instead of guessing.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAX_DEPTH = 48
MAX_RECORDS = 2_000_000


class RecordError(ValueError):
    """The record tree is truncated, too deep or too large."""


@dataclass
class Rec:
    ver: int
    inst: int
    type: int
    body: bytes = b""  # atoms only
    children: list[Rec] = field(default_factory=list)  # containers only
    offset: int = -1  # where the header started in the source stream

    @property
    def container(self) -> bool:
        return self.ver == 0xF

    def header(self, length: int) -> bytes:
        return struct.pack("<HHI", (self.inst << 4) | self.ver, self.type, length)

    def to_bytes(self) -> bytes:
        if self.container:
            body = b"".join(c.to_bytes() for c in self.children)
        else:
            body = self.body
        return self.header(len(body)) + body

    def first(self, rtype: int, inst: int | None = None) -> Rec | None:
        return next((c for c in self.children if c.type == rtype and (inst is None or c.inst == inst)), None)

    def walk(self):
        """This record and every record below it, depth first."""
        stack = [self]
        while stack:
            r = stack.pop()
            yield r
            stack.extend(reversed(r.children))


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RecordError("too many records")


def parse(data: bytes, start: int = 0, end: int | None = None, depth: int = 0,
          budget: _Budget | None = None, containers: bool = True) -> list[Rec]:
    """The records in data[start:end]; it must be filled exactly."""
    end = len(data) if end is None else end
    budget = budget or _Budget(MAX_RECORDS)
    if depth > MAX_DEPTH:
        raise RecordError("records nested too deeply")
    out: list[Rec] = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise RecordError(f"truncated record header at {pos}")
        vi, rtype, length = struct.unpack_from("<HHI", data, pos)
        body_end = pos + 8 + length
        if body_end > end:
            raise RecordError(f"record 0x{rtype:04X} at {pos} runs past its parent")
        budget.take()
        rec = Rec(vi & 0xF, vi >> 4, rtype, offset=pos)
        if rec.container and containers:
            rec.children = parse(data, pos + 8, body_end, depth + 1, budget)
        else:
            rec.body = data[pos + 8:body_end]
        out.append(rec)
        pos = body_end
    return out


def parse_one(data: bytes, pos: int, limit: int | None = None) -> Rec:
    """The single record starting at pos (a persist object, a BLIP in a delay stream)."""
    limit = len(data) if limit is None else limit
    if pos < 0 or pos + 8 > limit:
        raise RecordError(f"no record at offset {pos}")
    length = struct.unpack_from("<I", data, pos + 4)[0]
    if pos + 8 + length > limit:
        raise RecordError(f"record at {pos} runs past the end of its stream")
    return parse(data, pos, pos + 8 + length)[0]
