"""The interface every format family implements, and the registry that finds them.

A handler inspects, rebuilds and extracts text. It never reads policy files,
never decides a verdict and never writes outside the paths it is given.
Handlers are discovered by importing modules of `cdr.formats` (the way mat2
collects its parsers): decorating a class with `@register` is enough. A family's
module is imported when a file of that family first arrives (`cdr.formats._catalog`
says which module that is); `load_handlers` imports them all.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import LimitExceeded
from .model import Detection, FileResult, Threat


@dataclass(frozen=True)
class Option:
    """A family-specific policy option a handler understands."""

    default: Any
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def validate(self, value: Any) -> str | None:
        """Return an error message, or None when the value is acceptable."""
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {list(self.choices)}"
        want = type(self.default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            return None
        if want is bool and not isinstance(value, bool):
            return "must be true or false"
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            return f"must be of type {want.__name__}"
        return None


@dataclass
class Context:
    """What a handler may know about the job at hand."""

    name: str  # display name (relative path or archive member path)
    options: dict[str, Any]  # this family's policy options, validated, defaults filled in
    limits: Any  # cdr.policy.Limits
    workdir: Path  # private scratch directory, removed after the job
    deadline: float = float("inf")  # time.monotonic() value
    password: str | None = None
    depth: int = 0
    warnings: list[str] = field(default_factory=list)
    # Runs the full pipeline on a nested file (archive member, PDF attachment).
    process_child: Callable[[str, Path, Path], FileResult] | None = None
    # Options of other families, for handlers that hand off (legacy Office -> OOXML).
    policy: Any = None

    def check_time(self) -> None:
        """Raise if the wall-clock budget for this file is spent (cooperative check)."""
        if time.monotonic() > self.deadline:
            raise LimitExceeded("time limit for this file exceeded", "処理時間の上限を超えました",
                                threat_id="file.timeout")

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class Rebuilt:
    """What `Handler.rebuild` did: what it removed and what the output is."""

    threats: list[Threat] = field(default_factory=list)
    extension: str | None = None  # extension of the output, with dot; None keeps the input's
    mime: str | None = None  # MIME type of the output when it differs from the input
    children: list[FileResult] = field(default_factory=list)  # archive members, attachments
    mail: dict[str, Any] | None = None  # mail family: what the report's "mail" field says


class Handler(ABC):
    """Base class for a format family."""

    family: ClassVar[str] = ""
    mime_types: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Option]] = {}
    # True when extract_text gives something meaningful for the text-only policy.
    has_text: ClassVar[bool] = True
    # False when no safe rebuild exists (一太郎): the text-only policy then reads text from the source.
    rebuildable: ClassVar[bool] = True
    # (ja, en) added to the reason when the policy blocks this family, e.g. what to ask the sender for.
    block_hint: ClassVar[tuple[str, str] | None] = None

    @abstractmethod
    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        """Findings in the file at `path`, without changing anything."""

    def inspect_rebuild(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        """For the inspect command: what the rebuild would drop beyond `inspect`'s findings (an allow-list's
        removals). Not part of the verify step, which runs `inspect` alone."""
        return []

    @abstractmethod
    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        """Write a disarmed rebuild of `src` to `dst`; raise a CdrError to block."""

    @abstractmethod
    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        """A plain-text rendition, in reading order."""


_BY_MIME: dict[str, Handler] = {}
_BY_FAMILY: dict[str, type[Handler]] = {}
_LOADED = False


def register(cls: type[Handler]) -> type[Handler]:
    """Class decorator: make a handler known by its family and MIME types."""
    inst = cls()
    _BY_FAMILY[cls.family] = cls
    for mime in cls.mime_types:
        _BY_MIME[mime] = inst
    return cls


def plugin_modules() -> list[str]:
    """Site-specific handler modules named in CDR_PLUGINS (the test suite's misbehaving ones too)."""
    return [n.strip() for n in os.environ.get("CDR_PLUGINS", "").split(",") if n.strip()]


def load_handlers() -> None:
    """Import every module under cdr.formats, then the plugins, once, so that they all register."""
    global _LOADED
    if _LOADED:
        return
    from . import formats

    for mod in pkgutil.iter_modules(formats.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{formats.__name__}.{mod.name}")
    # Site-specific handlers (and the test suite's misbehaving ones) load after ours and may override.
    for name in plugin_modules():
        importlib.import_module(name)
    _LOADED = True


def handler_for(mime: str) -> Handler | None:
    """The handler of a MIME type. Without plugins only the module of its family is imported (on
    first use; see cdr.formats._catalog); with plugins every handler is, so that theirs win."""
    if not _LOADED:
        if plugin_modules():
            load_handlers()
        elif mime not in _BY_MIME:
            from .detect import KINDS
            from .formats._catalog import MODULES

            kind = KINDS.get(mime)
            module = MODULES.get(kind.family) if kind is not None else None
            if module is not None:  # no built-in module handles any other type
                importlib.import_module(module)
    return _BY_MIME.get(mime)


def family_options() -> dict[str, dict[str, Option]]:
    """Every family's policy options, without importing a handler unless plugins are configured."""
    if plugin_modules():
        load_handlers()
        return {fam: dict(cls.options) for fam, cls in _BY_FAMILY.items()}
    from .formats._catalog import OPTIONS

    return {fam: dict(opts) for fam, opts in OPTIONS.items()}


def families() -> list[str]:
    return sorted(family_options())
