"""Shared fixtures: the sample corpus, policies, and a helper to run the real CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cloud_services import ledger_target, pg_url  # noqa: F401 - PostgreSQL fixtures (security cloud)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """A function family -> (directory, {relative path: Sample}); each family generated once."""
    from samples import generate

    root = tmp_path_factory.mktemp("samples")
    made: dict[str, tuple] = {}

    def get(family: str):
        # Each family in its own directory so a test can sanitize the whole of it.
        if family not in made:
            base = root / family
            made[family] = (base, {s.path: s for s in generate(base, [family])})
            (base / "manifest.json").rename(root / f"{family}-manifest.json")
        return made[family]

    return get


@pytest.fixture(scope="session")
def default_policy():
    from cdr.policy import load_policy

    return load_policy(ROOT / "rules" / "default.toml")


@pytest.fixture(scope="session")
def text_policy():
    from cdr.policy import load_policy

    return load_policy(ROOT / "rules" / "text-only.toml")


def run_cli(*args: str, timeout: float = 600, input: bytes | None = None, cwd: Path | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `cdr` console script as a user would."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([str(BIN / "cdr"), *args], capture_output=True, timeout=timeout, input=input,
                          cwd=cwd or ROOT, env=e)


def sanitize_report(paths: list[Path], out: Path, *extra: str) -> dict:
    """`cdr sanitize PATHS -o OUT --report R` and return the parsed report."""
    report = out.parent / (out.name + "-report.json")
    proc = run_cli("sanitize", *map(str, paths), "-o", str(out), "--report", str(report), *extra)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(report.read_text("utf-8"))


def all_threat_ids(entry: dict) -> set[str]:
    """Threat ids of an entry and all its nested children."""
    ids = {t["id"] for t in entry.get("threats", [])}
    for c in entry.get("children", []):
        ids |= all_threat_ids(c)
    return ids
