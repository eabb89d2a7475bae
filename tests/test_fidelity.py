"""Rebuilt documents look like their originals: every benign sample of the document families (docx/xlsx/
pptx, odt/ods/odp, rtf, pdf, and legacy .doc/.xls/.ppt rebuilt in their own format) goes through the real
pipeline with the default policy and is rendered before and after by LibreOffice and poppler
(benchmarks/fidelity.py; a PDF is its own rendering). Thresholds from issue 17: same page count, text
≥ 0.98, every page ≥ 0.99 of its ink pixels alike. Two LibreOffice calls in all.
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
FAMILIES = ("ooxml", "odf", "rtf", "pdf", "legacy_office")


def test_benign_documents_render_alike(corpus, default_policy, tmp_path):
    pairs = []
    for family in FAMILIES:
        base, samples = corpus(family)
        for rel, s in samples.items():
            src = base / rel
            if "/benign/" not in rel or src.suffix.lower() not in fidelity.RENDERABLE:
                continue
            res = process(src, src.name, tmp_path / "out" / family / Path(rel).stem, default_policy)
            assert res.verdict == s.verdict and res.output, (rel, res.verdict, res.reason)
            if family == "legacy_office" and rebuilder_for(detect(src, src.name).mime) is not None:
                assert Path(res.output).suffix == src.suffix, rel  # rebuilt in its own format
            pairs.append((rel, src, Path(res.output)))
    assert {Path(p[0]).suffix for p in pairs} >= {".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".pdf",
                                                  ".doc", ".xls", ".ppt"}
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
