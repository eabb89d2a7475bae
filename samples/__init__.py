"""Generators of benign and hostile sample files, used by tests, `make run` and benchmarks.

Each module `samples/<family>_samples.py` decorates generator functions with
`@generator("family")`. A generator writes files under the directory it is
given and returns a `Sample` per file saying what the engine must conclude.
Nothing generated is committed: `python -m samples` writes `samples/generated/`.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

GENERATED = Path(__file__).resolve().parent / "generated"


@dataclass
class Sample:
    path: str  # relative to the output directory, e.g. "pdf/hostile/js_openaction.pdf"
    verdict: str  # expected verdict: clean | sanitized | blocked
    threats: list[str] = field(default_factory=list)  # threat ids that must be reported
    note: str = ""
    password: str | None = None  # out-of-band password, for PPAP cases
    family: str = ""


Generator = Callable[[Path], list[Sample]]
_GENERATORS: dict[str, list[Generator]] = {}


def generator(family: str) -> Callable[[Generator], Generator]:
    """Register a generator function for a family."""

    def deco(fn: Generator) -> Generator:
        _GENERATORS.setdefault(family, []).append(fn)
        return fn

    return deco


def _load() -> None:
    pkg = Path(__file__).resolve().parent
    for mod in pkgutil.iter_modules([str(pkg)]):
        if mod.name.endswith("_samples"):
            importlib.import_module(f"samples.{mod.name}")


def families() -> list[str]:
    _load()
    return sorted(_GENERATORS)


def generate(out: Path | str = GENERATED, only: list[str] | None = None) -> list[Sample]:
    """Write every sample (or those of the families in `only`) and a manifest.json."""
    _load()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result: list[Sample] = []
    for fam in sorted(_GENERATORS):
        if only and fam not in only:
            continue
        for fn in _GENERATORS[fam]:
            for s in fn(out):
                s.family = s.family or fam
                result.append(s)
    manifest = out / "manifest.json"
    old = json.loads(manifest.read_text("utf-8")) if manifest.exists() and only else []
    keep = [o for o in old if o.get("family") not in set(only or [])]
    manifest.write_text(json.dumps(keep + [asdict(s) for s in result], ensure_ascii=False, indent=1), "utf-8")
    return result


def load_manifest(out: Path | str = GENERATED) -> list[Sample]:
    data = json.loads((Path(out) / "manifest.json").read_text("utf-8"))
    return [Sample(**d) for d in data]
