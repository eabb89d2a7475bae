"""The result cache and the rules for reusing a result for identical content.

A result is keyed by (sha256, policy label, claimed extension): detection depends on the
extension the sender claims, so dedup does too. Outputs are kept in
state/results/<sha>/<policy>/<ext>/ until the original is purged. `KeyHolds` tracks the keys
whose result is still on its way to the inbox, so that identical content waits and then reuses it.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]  # (sha256, policy label, claimed extension)

# Blocked results that say nothing about the content: never reused for identical files.
_TRANSIENT = ("worker.", "file.timeout")
# Results that depended on a password (given or missing) are not reused for other submissions.
_ENCRYPTION = ("encrypted",)


def claimed_ext(name: str) -> str:
    """The extension the sender claims (detection depends on it, so dedup does too)."""
    n = name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if n.endswith(double):
            return double
    i = n.rfind(".")
    return n[i:] if i > 0 else ""


def reuse_name(new: str, first: str, cached: str) -> str:
    """Name a reused output after the new sender's name, as the worker would have."""
    if cached.startswith(first):
        return new + cached[len(first):]
    ext = claimed_ext(first)
    s1 = first[: len(first) - len(ext)] if ext else first
    s2 = new[: len(new) - len(ext)] if ext and new.lower().endswith(ext) else new
    if cached.startswith(s1):
        return s2 + cached[len(s1):]
    i = cached.rfind(".")
    return s2 + (cached[i:] if i > 0 else "")


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", part) or "_"


def cache_dir(root: Path, sha: str, policy: str, ext: str) -> Path:
    return root / sha / _safe(policy) / _safe(ext.lstrip(".") or "_")


def _all_threats(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Threats of a result and of every nested member (archive children)."""
    found = list(result.get("threats", []))
    for child in result.get("children", []):
        found.extend(_all_threats(child))
    return found


def content_result(result: dict[str, Any]) -> bool:
    """Whether a result judged the content alone (not a worker failure, a timeout or a password)."""
    return not any(t.get("id", "").startswith(_TRANSIENT) or t.get("id", "").endswith(_ENCRYPTION)
                   for t in _all_threats(result))


class KeyHolds:
    """Keys whose verdict was handed to the delivery thread and is not delivered yet (`pending`), and
    among them those held only because their delivery waits for a retry (`retrying`): identical
    content may reuse such a committed result instead of waiting for that inbox to come back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, int] = {}
        self._retrying: dict[Key, int] = {}

    def _count(self, counts: dict[Key, int], key: Key | None, step: int) -> None:
        """Add `step` to a key's count (a key at zero is removed)."""
        if key is None:
            return
        with self._lock:
            n = counts.pop(key, 0) + step
            if n > 0:
                counts[key] = n

    def pending_add(self, key: Key | None) -> None:
        self._count(self._pending, key, 1)

    def pending_done(self, key: Key | None) -> None:
        self._count(self._pending, key, -1)

    def retry_add(self, key: Key | None) -> None:
        self._count(self._retrying, key, 1)

    def retry_done(self, key: Key | None) -> None:
        self._count(self._retrying, key, -1)

    def is_pending(self, key: Key) -> bool:
        with self._lock:
            return key in self._pending

    def busy_and_held(self, running: set[Key]) -> tuple[set[Key], set[Key]]:
        """Keys identical content must wait for (running or pending), and the held ones among them
        that it may reuse at once (pending only for a delivery retry, not running)."""
        busy = set(running)
        with self._lock:
            busy.update(self._pending)
            held = set(self._retrying) - running
        return busy, held
