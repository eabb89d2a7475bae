"""Rebuilt legacy documents look like their originals: every benign sample of a format the engine
rebuilds in its own format (today .xls; .doc and .ppt join when their rebuilders land) is rendered
before and after by LibreOffice and poppler (benchmarks/fidelity.py). Thresholds from issue 17:
same page count, text ≥ 0.98, every page ≥ 0.99 of its ink pixels alike. Two LibreOffice calls in all.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import fidelity
from cdr.detect import detect
from cdr.formats.legacy_office import rebuilder_for
from cdr.pipeline import process

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
                                reason="LibreOffice and poppler needed")


def test_benign_legacy_samples_render_alike(corpus, default_policy, tmp_path):
    base, samples = corpus("legacy_office")
    pairs = []
    for rel, s in samples.items():
        src = base / rel
        if s.verdict != "clean" or rebuilder_for(detect(src, src.name).mime) is None:
            continue
        res = process(src, src.name, tmp_path / "out" / Path(rel).stem, default_policy)
        assert res.verdict == "clean" and Path(res.output).suffix == src.suffix, (rel, res.reason)
        pairs.append((rel, src, Path(res.output)))
    assert len(pairs) >= 3  # 集計.xls, 申請一覧.xls, 同意書.xls at least
    results = fidelity.compare(pairs, tmp_path / "render")
    print("\n" + fidelity.table(results))
    for r in results:
        assert not r.error and r.same_pages, (r.name, r.error, r.pages_original, r.pages_rebuilt)
        assert r.text >= 0.98 and r.visual >= 0.99, (r.name, r.text, r.visual_pages)


def test_the_measure_sees_a_difference(corpus, tmp_path):
    """The comparison is not blind: a workbook against a different one scores below the thresholds."""
    base, _ = corpus("legacy_office")
    a = base / "legacy_office/benign/集計.xls"
    b = base / "legacy_office/benign/申請一覧.xls"
    (r,) = fidelity.compare([("different", a, b)], tmp_path / "render")
    assert r.visual < 0.5 and r.text < 0.5
