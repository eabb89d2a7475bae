"""Policies: TOML files in rules/, loaded into typed, validated objects.

A policy says, per format family, whether to sanitize, deliver text only, or
block, and sets the limits. Code keeps nothing but safe defaults: a family a
policy does not mention is blocked.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .handler import family_options

ACTIONS = ("sanitize", "text", "block")
# Families that no policy may deliver in any form.
ALWAYS_BLOCKED = ("executable", "unknown")
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names file, key and value."""


@dataclass
class Limits:
    max_file_mb: float = 100.0
    seconds_per_file: float = 60.0
    worker_memory_mb: int = 2048
    max_pages: int = 2000
    max_pixels: int = 100_000_000
    max_pdf_objects: int = 500_000
    max_stream_mb: float = 256.0
    max_xml_part_mb: float = 64.0
    archive_depth: int = 3
    archive_members: int = 1000
    archive_total_mb: float = 1024.0
    archive_ratio: float = 100.0
    mail_depth: int = 10  # multipart levels plus nested mails
    mail_parts: int = 500  # MIME parts of a mail, nested mails included
    mail_header_kb: int = 256  # one header block
    mail_ratio: float = 20.0  # bytes produced by decoding, against the mail's size

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


VERDICTS = ("clean", "sanitized", "blocked")


@dataclass
class Release:
    """When a quarantined original may be given to a clerk (the appliance's 原本取り出し)."""

    # Families never released, whatever an approver says; a member of an archive or a mail counts.
    never: tuple[str, ...] = ("executable",)
    # Verdicts whose approval needs the approver's comment (the original holds what was removed).
    comment_required: tuple[str, ...] = ("sanitized", "blocked")
    # How long the requester's download stays open after the approval.
    download_hours: float = 24.0

    def to_dict(self) -> dict[str, Any]:
        return {"never": list(self.never), "comment_required": list(self.comment_required),
                "download_hours": self.download_hours}


@dataclass
class FamilyPolicy:
    action: str = "block"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Policy:
    name: str
    version: str
    description: str = ""
    text_rendition: bool = True
    retention_days: int = 30
    limits: Limits = field(default_factory=Limits)
    families: dict[str, FamilyPolicy] = field(default_factory=dict)
    release: Release = field(default_factory=Release)
    source: str = ""

    def family(self, name: str) -> FamilyPolicy:
        """The rule for a family; unknown or unlisted families are blocked."""
        if name in ALWAYS_BLOCKED:
            return FamilyPolicy("block", {})
        fp = self.families.get(name)
        if fp is None:
            return FamilyPolicy("block", _defaults(name))
        return fp

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "text_rendition": self.text_rendition,
            "retention_days": self.retention_days,
            "limits": asdict(self.limits),
            "families": {k: {"action": v.action, **v.options} for k, v in self.families.items()},
            "release": self.release.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Policy:
        return _build(data, source)


def _defaults(family: str) -> dict[str, Any]:
    opts = family_options().get(family, {})
    return {k: o.default for k, o in opts.items()}


def _err(source: str, key: str, value: Any, msg: str) -> PolicyError:
    return PolicyError(f"{source}: {key} = {value!r}: {msg}")


def _build(data: dict[str, Any], source: str) -> Policy:
    known_top = {"name", "version", "description", "text_rendition", "retention_days", "limits", "families",
                 "release"}
    for key in data:
        if key not in known_top:
            raise _err(source, key, data[key], f"unknown key (expected one of {sorted(known_top)})")
    for key in ("name", "version"):
        if not isinstance(data.get(key), str) or not data.get(key):
            raise _err(source, key, data.get(key), "required, a non-empty string")
    if not isinstance(data.get("text_rendition", True), bool):
        raise _err(source, "text_rendition", data["text_rendition"], "must be true or false")
    retention = data.get("retention_days", 30)
    if not isinstance(retention, int) or isinstance(retention, bool) or retention < 0:
        raise _err(source, "retention_days", retention, "must be a whole number >= 0")

    limits = Limits()
    raw_limits = data.get("limits", {})
    if not isinstance(raw_limits, dict):
        raise _err(source, "limits", raw_limits, "must be a table")
    names = {f.name: f for f in fields(Limits)}
    for key, value in raw_limits.items():
        if key not in names:
            raise _err(source, f"limits.{key}", value, f"unknown limit (expected one of {sorted(names)})")
        want = type(getattr(limits, key))
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if want is int and not isinstance(value, int):
            ok = False
        if not ok or value <= 0:
            raise _err(source, f"limits.{key}", value, f"must be a positive {want.__name__}")
        setattr(limits, key, want(value))

    specs = family_options()
    fams: dict[str, FamilyPolicy] = {}
    raw_fams = data.get("families", {})
    if not isinstance(raw_fams, dict):
        raise _err(source, "families", raw_fams, "must be a table")
    for fam, body in raw_fams.items():
        key = f"families.{fam}"
        if fam in ALWAYS_BLOCKED:
            if not isinstance(body, dict) or body.get("action", "block") != "block":
                raise _err(source, f"{key}.action", body, "executables and unknown types are always blocked")
            continue
        if fam not in specs:
            raise _err(source, key, body, f"unknown family (expected one of {sorted(specs)})")
        if not isinstance(body, dict):
            raise _err(source, key, body, "must be a table")
        action = body.get("action", "block")
        if action not in ACTIONS:
            raise _err(source, f"{key}.action", action, f"must be one of {list(ACTIONS)}")
        opts = _defaults(fam)
        for opt, value in body.items():
            if opt == "action":
                continue
            spec = specs[fam].get(opt)
            if spec is None:
                raise _err(source, f"{key}.{opt}", value,
                           f"unknown option (expected one of {sorted(specs[fam]) or 'none'})")
            problem = spec.validate(value)
            if problem:
                raise _err(source, f"{key}.{opt}", value, problem)
            opts[opt] = value
        fams[fam] = FamilyPolicy(action, opts)

    release = _release(data.get("release", {}), source, specs)

    return Policy(
        name=data["name"],
        version=data["version"],
        description=str(data.get("description", "")),
        text_rendition=data.get("text_rendition", True),
        retention_days=retention,
        limits=limits,
        families=fams,
        release=release,
        source=source,
    )


def _release(raw: Any, source: str, specs: dict[str, Any]) -> Release:
    if not isinstance(raw, dict):
        raise _err(source, "release", raw, "must be a table")
    known = {"never", "comment_required", "download_hours"}
    for key in raw:
        if key not in known:
            raise _err(source, f"release.{key}", raw[key], f"unknown key (expected one of {sorted(known)})")
    rel = Release()
    families = set(specs) | set(ALWAYS_BLOCKED)
    for key, allowed in (("never", families), ("comment_required", set(VERDICTS))):
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _err(source, f"release.{key}", value, "must be a list of names")
        bad = [v for v in value if v not in allowed]
        if bad:
            raise _err(source, f"release.{key}", value, f"unknown {bad} (expected some of {sorted(allowed)})")
        setattr(rel, key, tuple(dict.fromkeys(value)))
    if "download_hours" in raw:
        hours = raw["download_hours"]
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 30:
            raise _err(source, "release.download_hours", hours, "must be a number of hours, > 0 and <= 720")
        rel.download_hours = float(hours)
    return rel


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file; None or a bare name ("default", "text-only") means rules/<name>.toml."""
    if path is None:
        path = RULES_DIR / "default.toml"
    p = Path(path)
    if not p.exists() and not p.suffix and (RULES_DIR / f"{p.name}.toml").exists():
        p = RULES_DIR / f"{p.name}.toml"
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read policy file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: not valid TOML: {exc}") from None
    return _build(data, str(p))
