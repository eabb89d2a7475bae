"""Per-file time of the .xls rebuild, against a plain olefile read and against LibreOffice's conversion.

`python -m benchmarks.bench_legacy [--quick]`. Inputs: the benign .xls samples (made by LibreOffice)
and a 50,000-cell workbook. Each round times, in rotating order: the floor (olefile opens the file
and reads every stream), our rebuild (the legacy_office handler in rebuild mode: walk, write the
compound file), the full pipeline (detect, rebuild, verify with the walker and oletools, hash) and
`soffice --convert-to xlsx` of the same file (what mode = "convert" starts with, before the OOXML
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
    return [("集計.xls (4 rows)", benign / "集計.xls"), ("申請一覧.xls (picture, chart)", benign / "申請一覧.xls"),
            ("同意書.xls (check box)", benign / "同意書.xls"), (f"big.xls ({rows * 10} cells)", d / "big.xls")]


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
                    "--convert-to", "xlsx", "--outdir", str(out), str(path)], capture_output=True, check=True)
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
            _floor(path), _rebuild(path, d / "warm.out"), _convert(path, d)  # warm caches, imports, profile
            for i in range(rounds):
                for k in kinds[i % 4:] + kinds[:i % 4]:
                    if k == "floor":
                        times[k].append(_floor(path))
                    elif k == "rebuild":
                        times[k].append(_rebuild(path, d / "rebuilt.xls"))
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
