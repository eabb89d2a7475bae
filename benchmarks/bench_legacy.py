"""Per-file time of the .xls/.doc/.ppt rebuild, against a plain olefile read and LibreOffice's conversion.

`python -m benchmarks.bench_legacy [--quick]`. Inputs: the benign .xls, .doc and .ppt samples (made by
LibreOffice), a 50,000-cell workbook, a long document and a deck of slides with pictures. Each round times, in rotating order: the floor (olefile opens the file
and reads every stream), our rebuild (the legacy_office handler in rebuild mode: walk, write the
compound file), the full pipeline (detect, rebuild, verify with the walker and oletools, hash) and
`soffice --convert-to xlsx/docx/pptx` of the same file (what mode = "convert" starts with, before the OOXML
rebuild). Medians over the rounds are reported, with ratios to the floor and to soffice.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .measure import pipeline_seconds


def _inputs(d: Path, quick: bool) -> list[tuple[str, Path]]:
    import openpyxl

    from samples import generate

    generate(d / "samples", ["legacy_office"])
    benign = d / "samples" / "legacy_office" / "benign"
    src = d / "big.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    rows = 1000 if quick else 5000
    for r in range(1, rows + 1):
        ws.append([r, f"住民{r}", r * 1.5, r % 7, f"=A{r}*C{r}", "区民課", r * 3, r % 11, f"=SUM(A{r}:D{r})", "済"])
    wb.save(src)
    subprocess.run([_soffice(), "--headless", "--norestore", f"-env:UserInstallation={(d / 'prof').as_uri()}",
                    "--convert-to", "xls:MS Excel 97", "--outdir", str(d), str(src)], capture_output=True, check=True)
    pages = 20 if quick else 100
    _long_docx(d / "long.docx", pages)
    slides = 10 if quick else 40
    _deck_pptx(d / "deck.pptx", slides)
    subprocess.run([_soffice(), "--headless", "--norestore", f"-env:UserInstallation={(d / 'prof').as_uri()}",
                    "--convert-to", "doc:MS Word 97", "--outdir", str(d), str(d / "long.docx")],
                   capture_output=True, check=True)
    subprocess.run([_soffice(), "--headless", "--norestore", f"-env:UserInstallation={(d / 'prof').as_uri()}",
                    "--convert-to", "ppt:MS PowerPoint 97", "--outdir", str(d), str(d / "deck.pptx")],
                   capture_output=True, check=True)
    return [("集計.xls (4 rows)", benign / "集計.xls"), ("申請一覧.xls (picture, chart)", benign / "申請一覧.xls"),
            ("同意書.xls (check box)", benign / "同意書.xls"), (f"big.xls ({rows * 10} cells)", d / "big.xls"),
            ("申請書.doc (table, picture)", benign / "申請書.doc"),
            ("交付申請様式.doc (sections, form fields)", benign / "交付申請様式.doc"),
            (f"long.doc ({pages} pages)", d / "long.doc"), ("会議資料.ppt (3 slides)", benign / "会議資料.ppt"),
            (f"deck.ppt ({slides} slides, pictures)", d / "deck.ppt")]


def _long_docx(path: Path, pages: int) -> None:
    import docx

    from samples.legacy_samples import JA_BODY

    d = docx.Document()
    for p in range(pages):
        d.add_heading(f"第{p + 1}章 窓口業務の手引き", 1)
        for i in range(6):
            d.add_paragraph(f"{i + 1}. {JA_BODY}" * 2)
        t = d.add_table(rows=4, cols=3)
        for r in range(4):
            for c in range(3):
                t.cell(r, c).text = f"区分{r}-{c}"
    d.save(str(path))


def _deck_pptx(path: Path, slides: int) -> None:
    import io

    from pptx import Presentation
    from pptx.util import Cm

    from samples.legacy_samples import JA_TITLE, _png

    p = Presentation()
    for i in range(slides):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text = f"{JA_TITLE} {i + 1}"
        s.placeholders[1].text = "受付時間は午前八時三十分から午後五時十五分までです。"
        s.shapes.add_picture(io.BytesIO(_png(200, 120, (i * 6 % 255, 90, 160))), Cm(16), Cm(11), Cm(6), Cm(4))
        s.notes_slide.notes_text_frame.text = f"説明メモ {i + 1}"
    p.save(str(path))


def _soffice() -> str:
    return shutil.which("soffice") or "soffice"


def _floor(path: Path) -> float:
    import olefile

    t = time.perf_counter()
    with olefile.OleFileIO(str(path)) as ole:
        for entry in ole.listdir():
            ole.openstream(entry).read()
    return time.perf_counter() - t


def _rebuild(path: Path, out: Path) -> float:
    from cdr.detect import detect
    from cdr.handler import Context, handler_for
    from cdr.policy import Limits

    det = detect(path, path.name)
    ctx = Context(name=path.name, options={"mode": "rebuild"}, limits=Limits(), workdir=out.parent)
    t = time.perf_counter()
    handler_for(det.mime).rebuild(ctx, path, out, det)
    return time.perf_counter() - t


def _convert(path: Path, d: Path) -> float:
    out = d / "lo"
    t = time.perf_counter()
    subprocess.run([_soffice(), "--headless", "--norestore", f"-env:UserInstallation={(d / 'prof').as_uri()}",
                    "--convert-to", path.suffix.lstrip(".") + "x", "--outdir", str(out), str(path)],
                   capture_output=True, check=True)
    return time.perf_counter() - t


def run(quick: bool = False) -> list[dict]:
    from cdr.policy import load_policy

    policy = load_policy("default")
    rounds = 3 if quick else 5
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-legacy-") as tmp:
        d = Path(tmp)
        for name, path in _inputs(d, quick):
            kinds = ["floor", "rebuild", "pipeline", "soffice"]
            times: dict[str, list[float]] = {k: [] for k in kinds}
            _floor(path), _rebuild(path, d / f"warm{path.suffix}"), _convert(path, d)  # warm caches, imports, profile
            for i in range(rounds):
                for k in kinds[i % 4:] + kinds[:i % 4]:
                    if k == "floor":
                        times[k].append(_floor(path))
                    elif k == "rebuild":
                        times[k].append(_rebuild(path, d / f"rebuilt{path.suffix}"))
                    elif k == "pipeline":
                        times[k].append(pipeline_seconds(path, policy, d / "out", ("clean",)))
                    else:
                        times[k].append(_convert(path, d))
            med = {k: statistics.median(v) for k, v in times.items()}
            for k, label in (("rebuild", "rebuild"), ("pipeline", "full pipeline"), ("soffice", "soffice --convert-to")):
                rows.append({"name": f"{name} {label}", "files": 1, "bytes": path.stat().st_size,
                             "seconds": round(med[k], 4), "floor_seconds": round(med["floor"], 4),
                             "ratio_to_floor": round(med[k] / med["floor"], 2),
                             "ratio_to_soffice": round(med[k] / med["soffice"], 3)})
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"{'name':52} {'bytes':>8} {'seconds':>8} {'floor':>7} {'/floor':>7} {'/soffice':>8}")
    for r in rows:
        print(f"{r['name']:52} {r['bytes']:>8} {r['seconds']:>8.4f} {r['floor_seconds']:>7.4f} "
              f"{r['ratio_to_floor']:>7.1f} {r['ratio_to_soffice']:>8.3f}")


if __name__ == "__main__":
    main()
