"""Plain data passed between the pipeline, handlers, workers and reports.

Everything here is JSON-serialisable so that results can cross the worker
process boundary without pickle.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLEAN = "clean"
SANITIZED = "sanitized"
BLOCKED = "blocked"
VERDICTS = (CLEAN, SANITIZED, BLOCKED)


def sha256_file(path: Path) -> str:
    """A file's SHA-256 (hex), read in 1 MiB pieces. Here rather than in the pipeline: the parent
    hashes every source and output, and should not import the pipeline (detection...) for that."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Threat:
    """One finding: what, where, and what we did about it."""

    id: str
    location: str = ""
    action: str = "removed"  # removed | neutralized | blocked | reported | converted | renamed
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Threat:
        return cls(
            id=str(d.get("id", "")),
            location=str(d.get("location", "")),
            action=str(d.get("action", "")),
            detail=str(d.get("detail", "")),
        )


@dataclass
class Detection:
    """The true type of a file, and why we think so."""

    mime: str
    family: str  # policy family key, e.g. "pdf", "ooxml", "executable", "unknown"
    label: str  # human readable, e.g. "Word document (macro-enabled)"
    extension: str  # canonical extension for the true type, with dot ("" if none)
    claimed: str = ""  # extension of the given name, lower-case, with dot
    reasons: list[str] = field(default_factory=list)
    threats: list[Threat] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["threats"] = [t.to_dict() for t in self.threats]
        return d


@dataclass
class FileResult:
    """The outcome for one input (or one archive member)."""

    source: str
    sha256: str = ""
    size: int = 0
    detected_type: str = ""
    verdict: str = BLOCKED
    output: str | None = None
    output_sha256: str | None = None
    threats: list[Threat] = field(default_factory=list)
    reason: str | None = None
    reason_ja: str | None = None
    reason_en: str | None = None
    text_output: str | None = None
    elapsed_ms: float = 0.0
    children: list[FileResult] = field(default_factory=list)
    family: str = ""
    warnings: list[str] = field(default_factory=list)
    # Mail only: the original's decoded headers, authentication results, attachments (see README).
    mail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "detected_type": self.detected_type,
            "family": self.family,
            "verdict": self.verdict,
            "output": self.output,
            "output_sha256": self.output_sha256,
            "threats": [t.to_dict() for t in self.threats],
            "reason": self.reason,
            "reason_ja": self.reason_ja,
            "reason_en": self.reason_en,
            "text_output": self.text_output,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "warnings": list(self.warnings),
        }
        if self.children:
            d["children"] = [c.to_dict() for c in self.children]
        if self.mail is not None:
            d["mail"] = self.mail
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileResult:
        verdict = d.get("verdict")
        if verdict not in VERDICTS:
            verdict = BLOCKED
        return cls(
            source=str(d.get("source", "")),
            sha256=str(d.get("sha256", "")),
            size=int(d.get("size") or 0),
            detected_type=str(d.get("detected_type", "")),
            verdict=verdict,
            output=d.get("output"),
            output_sha256=d.get("output_sha256"),
            threats=[Threat.from_dict(t) for t in d.get("threats") or []],
            reason=d.get("reason"),
            reason_ja=d.get("reason_ja"),
            reason_en=d.get("reason_en"),
            text_output=d.get("text_output"),
            elapsed_ms=float(d.get("elapsed_ms") or 0.0),
            children=[cls.from_dict(c) for c in d.get("children") or []],
            family=str(d.get("family", "")),
            warnings=[str(w) for w in d.get("warnings") or []],
            mail=d["mail"] if isinstance(d.get("mail"), dict) else None,
        )

    def block(self, ja: str, en: str) -> FileResult:
        """Mark as blocked with a bilingual reason a clerk can read."""
        self.verdict = BLOCKED
        self.output = None
        self.output_sha256 = None
        self.text_output = None
        self.reason_ja = ja
        self.reason_en = en
        self.reason = f"{ja} / {en}"
        return self
