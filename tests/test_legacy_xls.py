"""Excel 97-2003 rebuilt as .xls (mode = "rebuild"): record walk, removals, positions, verify.

Each sample is made by LibreOffice (samples/legacy_samples.py) and, where LibreOffice cannot
write a construct, patched record by record. Outputs are read back by xlrd (an independent
BIFF8 reader), olefile/oletools, and our own walker (verify must find nothing).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import olefile
import pytest
import xlrd

from cdr.detect import detect
from cdr.handler import Context, handler_for
from cdr.pipeline import process
from cdr.policy import Limits

from .conftest import all_threat_ids

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")


@pytest.fixture(scope="module")
def legacy(corpus):
    return corpus("legacy_office")


def _values(path: Path) -> dict[str, list]:
    book = xlrd.open_workbook(str(path), formatting_info=False)
    return {s.name: [s.row_values(i) for i in range(s.nrows)] for s in book.sheets()}


def _reinspect(path: Path) -> list:
    det = detect(path, path.name)
    ctx = Context(name=path.name, options={}, limits=Limits(), workdir=path.parent)
    return handler_for(det.mime).inspect(ctx, path, det)


def test_benign_workbook_rebuilt_as_xls(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/benign/集計.xls"
    res = process(src, src.name, tmp_path, default_policy)
    assert res.verdict == "clean" and res.output.endswith("集計.xls"), res.reason
    assert not res.warnings, res.warnings  # every record LibreOffice writes is understood
    out = Path(res.output)
    assert _values(out) == _values(src)
    assert _values(out)["集計"][3][1:] == [17.0, 5100.0]  # cached formula results
    assert _reinspect(out) == []
    with olefile.OleFileIO(str(out)) as ole:
        assert sorted("/".join(e) for e in ole.listdir()) == [
            "\x05DocumentSummaryInformation", "\x05SummaryInformation", "Workbook"]
        assert ole.get_metadata().author is None and ole.get_metadata().codepage == -535


def test_macro_sheet_and_vba_removed(legacy, default_policy, tmp_path):
    base, samples = legacy
    src = base / "legacy_office/hostile/xlm_macrosheet.xls"
    res = process(src, src.name, tmp_path, default_policy)
    assert res.verdict == "sanitized" and res.output.endswith(".xls"), res.reason
    assert {"ole.xlm", "ole.vba"} <= all_threat_ids(res.to_dict())
    out = Path(res.output)
    book = xlrd.open_workbook(str(out))
    sheet = book.sheet_by_index(0)
    assert sheet.nrows == 0 and sheet.visibility == 1  # emptied, hidden, still a worksheet
    with olefile.OleFileIO(str(out)) as ole:
        assert not any(e[0].startswith("_VBA") for e in ole.listdir())
    assert _reinspect(out) == []
