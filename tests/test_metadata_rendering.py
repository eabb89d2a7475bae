"""`metadata = "drop"` keeps what changes how a file is read and drops what identifies people (issue 17).

LibreOffice reads docProps/app.xml's Application and AppVersion to decide whether a workbook was made
by Office: without them it recalculates text results of formulas (PHONETIC becomes #NAME?, a date
before March 1900 moves by a day), stops snapping row heights to Excel's 0.75 pt grid, and reads the
label flags Office 2007 left out as "show everything". For ODF it reads meta:generator to lay out files
of older OpenOffice.org versions as they did. Each effect is shown on a file the test makes, rendered
by LibreOffice three ways: the original, our output (default policy, metadata dropped) and the original
without those properties (proof that the effect is real). One LibreOffice call in all.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from benchmarks import fidelity
from cdr.pipeline import process
from samples import fidelity_samples as fs
from samples.office_samples import patch

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                                reason="LibreOffice and poppler needed")


def _without_generator(src: Path, dst: Path) -> Path:
    return patch(src, dst, edit={"meta.xml": lambda s: re.sub(r"<meta:generator>.*?</meta:generator>", "", s)})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, default_policy):
    """name -> {"original"|"output"|"control": (path, pdf)}."""
    t = tmp_path_factory.mktemp("metadata-rendering")
    src = t / "src"
    src.mkdir()
    made = {
        "formulas": fs.cached_text_formulas(src / "formulas.xlsx"),
        "rows": fs.row_heights(src / "rows.xlsx"),
        "chart": fs.chart_labels_2007(src / "chart.xlsx"),
        "outline": fs.old_outline_odp(src / "outline.odp"),
    }
    files: dict[str, dict[str, Path]] = {}
    for name, orig in made.items():
        res = process(orig, orig.name, t / "out" / name, default_policy)
        assert res.verdict == "clean" and res.output, (name, res.reason, res.threats)
        ids = {x.id for x in res.threats}
        assert ids == {"ooxml.metadata" if orig.suffix == ".xlsx" else "odf.metadata"}, (name, res.threats)
        control = t / "control" / orig.name
        control.parent.mkdir(exist_ok=True)
        (fs.without_app if orig.suffix == ".xlsx" else _without_generator)(orig, control)
        files[name] = {"original": orig, "output": Path(res.output), "control": control}
    stage = t / "stage"
    stage.mkdir()
    staged = {}
    for name, kinds in files.items():
        for kind, path in kinds.items():
            s = stage / f"{name}-{kind}{path.suffix}"
            shutil.copyfile(path, s)
            staged[(name, kind)] = s
    pdfs = fidelity.to_pdf(list(staged.values()), t / "pdf", t / "profile")
    assert len(pdfs) == len(staged), "LibreOffice did not render every file"
    return {name: {kind: (files[name][kind], pdfs[staged[(name, kind)]]) for kind in files[name]} for name in files}


def _text(pdf: Path) -> str:
    return re.sub(r"\s+", " ", fidelity.pdf_text(pdf)).strip()


def _word_top(pdf: Path, word: str) -> tuple[int, float]:
    """(page, yMin) of the first occurrence of `word`."""
    out = subprocess.run(["pdftotext", "-q", "-bbox", str(pdf), "-"], capture_output=True, timeout=60).stdout.decode()
    for page, body in enumerate(out.split("<page ")[1:], start=1):
        m = re.search(rf'yMin="([\d.]+)"[^>]*>{re.escape(word)}</word>', body)
        if m:
            return page, float(m.group(1))
    raise AssertionError(f"{word} not in {pdf.name}")


def test_app_properties_keep_only_application_and_version(rendered):
    with zipfile.ZipFile(rendered["formulas"]["output"][0]) as z:
        names = z.namelist()
        app = etree.fromstring(z.read("docProps/app.xml"))
    assert "docProps/core.xml" not in names
    assert [(etree.QName(el).localname, el.text) for el in app] == [("Application", "Microsoft Excel"),
                                                                     ("AppVersion", "16.0300")]
    assert "市役所" not in etree.tostring(app, encoding="unicode")


def test_cached_formula_text_is_kept(rendered):
    r = rendered["formulas"]
    out, control = _text(r["output"][1]), _text(r["control"][1])
    assert out == _text(r["original"][1])
    assert fs.PHONETIC in out and fs.DATE_TEXT in out
    # Without app.xml LibreOffice recalculates: the reading is gone and the date moved by a day.
    assert fs.PHONETIC not in control and fs.DATE_TEXT not in control and "#NAME?" in control


def test_row_heights_stay_on_excels_grid(rendered):
    r = rendered["rows"]
    last = "設問120"
    page, top = _word_top(r["original"][1], last)
    assert _word_top(r["output"][1], last) == (page, top)
    c_page, c_top = _word_top(r["control"][1], last)
    assert (c_page, round(c_top)) != (page, round(top))  # unsnapped 14.4 pt rows drift down


def test_chart_labels_show_values_only(rendered):
    r = rendered["chart"]
    out = _text(r["output"][1])
    assert out == _text(r["original"][1])
    assert "人口 ; 12000" not in out
    assert "人口 ; 12000" in _text(r["control"][1])  # series and category names on every label


def test_odf_generator_kept_and_people_dropped(rendered):
    r = rendered["outline"]
    with zipfile.ZipFile(r["output"][0]) as z:
        meta = z.read("meta.xml").decode()
    assert fs.OOO_24 in meta
    assert "山田" not in meta and "creation-date" not in meta
    out = _text(r["output"][1])
    assert out == _text(r["original"][1]) and "●" not in out
    assert "●" in _text(r["control"][1])  # read as a current file, the outline gets bullets
