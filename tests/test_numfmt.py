"""Spreadsheet text renditions print what Excel shows (the cell's number format), not raw floats."""
from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

from cdr.numfmt import BUILTIN, format_number
from cdr.pipeline import process


@pytest.mark.parametrize("value, code, shown", [
    (2.2857142857142856, None, "2.285714286"),
    (2.2857142857142856, "0.00", "2.29"),
    (2.5, "0", "3"),  # Excel rounds half away from zero
    (-0.001, "0.00", "0.00"),
    (1234567.891, "#,##0", "1,234,568"),
    (1234567.891, "#,##0.00", "1,234,567.89"),
    (0.1234, "0.0%", "12.3%"),
    (1500, '#,##0"円"', "1,500円"),
    (-1234, BUILTIN[6], "¥-1,234"),
    (0, BUILTIN[41], "-"),
    (100, "0.00e+00", "1.00E+02"),
    (123456789012, None, "123456789012"),  # an id keeps its digits
    (45292, BUILTIN[14], "2024/1/1"),
    (45292.75, BUILTIN[22], "2024/1/1 18:00"),
    (45292, BUILTIN[31], "2024年1月1日"),
    (45292, BUILTIN[27], "R6.1.1"),
    (43586, BUILTIN[58], "令和1年5月1日"),
    (43585, BUILTIN[58], "平成31年4月30日"),
    (32516, '[$-411]ggge"年"m"月"d"日"', "平成1年1月8日"),
    (45292, "m/d(aaa)", "1/1(月)"),
    (45292, "yyyy/m/d AAAA", "2024/1/1 月曜日"),
    (45292, "yyyy.m.d", "2024.1.1"),
    (0.5, BUILTIN[32], "12時00分"),
    (1.5, "[h]:mm", "36:00"),
    (float("nan"), "0", "#NUM!"),
    (1e300, "yyyy/m/d", "1E+300"),  # beyond 9999-12-31: the number, never an error
    (5, '"' * 300, "5"),
])
def test_format_number(value, code, shown):
    assert format_number(value, code) == shown


def _xlsx(path: Path) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "集計"
    rows = [("比率", 16 / 7, "General"), ("金額", 1234567.891, "#,##0"), ("率", 0.1234, "0.0%"),
            ("日付", datetime.date(2024, 1, 1), "yyyy/m/d"), ("和暦", datetime.date(2024, 4, 1), BUILTIN[58]),
            ("小数", 3.14159, "0.00"), ("曜日", datetime.date(2024, 1, 1), "m/d(aaa)")]
    for i, (label, value, code) in enumerate(rows, 1):
        ws.cell(i, 1, label)
        ws.cell(i, 2, value).number_format = code
    wb.save(path)
    return path


WANT = ["比率\t2.285714286", "金額\t1,234,568", "率\t12.3%", "日付\t2024/1/1", "和暦\t令和6年4月1日", "小数\t3.14",
        "曜日\t1/1(月)"]


def _text(src: Path, policy, tmp_path: Path) -> str:
    out = tmp_path / "out"
    out.mkdir()
    res = process(src, src.name, out, policy, want_text=True)
    assert res.verdict != "blocked", res.reason
    return Path(res.text_output).read_text("utf-8")


def test_xlsx_text_shows_number_formats(tmp_path, default_policy):
    text = _text(_xlsx(tmp_path / "集計.xlsx"), default_policy, tmp_path)
    for line in WANT:
        assert line in text.splitlines(), (line, text)
    assert "2.2857142857142856" not in text


@pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice not installed")
def test_xls_text_shows_number_formats(tmp_path, default_policy):
    src = _xlsx(tmp_path / "集計.xlsx")
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "xls",
                    "--outdir", str(tmp_path), str(src)], check=True, capture_output=True, timeout=180)
    text = _text(tmp_path / "集計.xls", default_policy, tmp_path)
    for line in WANT:
        assert line in text.splitlines(), (line, text)
