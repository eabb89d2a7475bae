"""Every threat id the engine can report has a plain-Japanese label and explanation for the clerk."""
from __future__ import annotations

import re
from pathlib import Path

from transfer_agent.threat_labels import _FAMILY, THREATS, explain, label

_ROOT = Path(__file__).resolve().parent.parent


def _engine_ids() -> set[str]:
    ids = set()
    for p in (_ROOT / "cdr").rglob("*.py"):
        for m in re.finditer(r'"([a-z]+\.[a-z_0-9]+)"', p.read_text("utf-8")):
            if m.group(1).split(".", 1)[0] in _FAMILY:
                ids.add(m.group(1))
    return ids


def test_every_engine_threat_id_is_explained():
    ids = _engine_ids()
    assert len(ids) > 90  # the scan found the engine's ids, not nothing
    assert sorted(ids - THREATS.keys()) == []
    for tid in ids:
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", label(tid) + explain(tid)), tid


def test_unknown_id_falls_back_to_its_family():
    assert label("pdf.something_new").startswith("PDF") and "pdf.something_new" in label("pdf.something_new")
    assert explain("zzz.unknown")
