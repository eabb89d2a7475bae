"""Results of pure byte checks, remembered for the rest of one top-level file.

The verify step re-inspects the rebuilt file with the same checks the rebuild ran, and most parts of
an Office package are written as they were read: the same bytes are proven again. A check that is a
pure function of its arguments can answer from memory when called again with EQUAL bytes (compared in
full, not by a digest), so the re-inspection still judges exactly what was written; bytes the rebuild
changed are new keys and are checked afresh. `pipeline.process` forgets everything at the start and end
of each top-level file, so nothing of one sender's file stays in a worker for the next job.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar

T = TypeVar("T")


class _Clearable(Protocol):
    def clear(self) -> None: ...


C = TypeVar("C", bound=_Clearable)

_MIN_BYTES = 1024  # below this a check costs less than remembering it
_MAX_BYTES = 64 << 20  # total size of the bytes held, per worker process

_memos: list[_Clearable] = []


class ContentMemo:
    """An LRU of `fn(data, *args)` for large `data`, bounded by the bytes it holds."""

    def __init__(self, fn: Callable[..., T]) -> None:
        self.fn = fn
        self.entries: OrderedDict[tuple[bytes, tuple[Hashable, ...]], T] = OrderedDict()
        self.held = 0
        _memos.append(self)

    def __call__(self, data: bytes, *args: Hashable) -> T:
        if len(data) < _MIN_BYTES:
            return self.fn(data, *args)
        key = (data, args)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = self.fn(data, *args)
        self.entries[key] = value
        self.held += len(data)
        while self.held > _MAX_BYTES and self.entries:
            (old, _), _ = self.entries.popitem(last=False)
            self.held -= len(old)
        return value

    def clear(self) -> None:
        self.entries.clear()
        self.held = 0


def remembered(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` answered through a ContentMemo: for pure byte checks the verify step repeats."""
    return functools.update_wrapper(ContentMemo(fn), fn)


class ProvenClean:
    """The bytes a rebuild proved to have no findings and wrote unchanged, under the handler's tag: the
    verify step's inspect of EQUAL bytes (compared in full) answers "nothing found" without scanning
    again. One entry; only rebuild sets it, so an inspect-only job leaves nothing behind."""

    def __init__(self) -> None:
        self.key: tuple[str, bytes] | None = None
        _memos.append(self)

    def remember(self, tag: str, data: bytes) -> None:
        self.key = (tag, data)

    def holds(self, tag: str, data: bytes) -> bool:
        return self.key is not None and self.key[0] == tag and self.key[1] == data

    def clear(self) -> None:
        self.key = None

    def __len__(self) -> int:  # 0 once forgotten (tests check every per-file cache is empty)
        return 0 if self.key is None else 1


class Deflated:
    """Parts deflated by this worker for the file at hand, by their deflated bytes: reading the same
    bytes back (the verify step, from the output) gives the part they were made from without inflating
    them again; equal bytes (compared in full) inflate to exactly that part. Bounded like ContentMemo."""

    def __init__(self) -> None:
        self.parts: dict[bytes, bytes] = {}
        self.held = 0
        _memos.append(self)

    def remember(self, packed: bytes, data: bytes) -> None:
        if len(data) >= _MIN_BYTES and self.held + len(data) <= _MAX_BYTES:
            self.parts[packed] = data
            self.held += len(data)

    def get(self, packed: bytes) -> bytes | None:
        return self.parts.get(packed)

    def clear(self) -> None:
        self.parts.clear()
        self.held = 0

    def __len__(self) -> int:
        return len(self.parts)


def per_file(cache: C) -> C:
    """Register another cache (anything with clear()) to be forgotten with the memos."""
    _memos.append(cache)
    return cache


def forget_all() -> None:
    """Drop every remembered result (the start and end of each top-level file)."""
    for m in _memos:
        m.clear()
