"""Per-file time of the OOXML rebuild, as a ratio to a plain re-zip of the same members.

`python -m benchmarks.bench_ooxml [--quick]`. For a 5-page docx with photos, a 100k-cell xlsx and a
10-slide pptx (pictures, table, chart), each round times, in rotating order: the floor (read every
member and write it again deflated, in memory, with zipfile), our rebuild (`rebuild_ooxml`), the
full pipeline (detect, rebuild, verify, hash) and a python-docx/openpyxl/python-pptx load+save
round trip. Medians over the rounds are reported.
"""
from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .measure import pipeline_seconds


def _photo(w: int = 1600, h: int = 1200, seed: int = 1) -> bytes:
    import random

    from PIL import Image, ImageFilter

    rnd = random.Random(seed)
    img = Image.effect_noise((w // 8, h // 8), 60).convert("RGB").resize((w, h))
    img = Image.merge("RGB", [c.point(lambda v, k=k: (v + k) % 256) for k, c in
                              zip((rnd.randint(0, 255) for _ in range(3)), img.split(), strict=True)])
    buf = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(1)).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _make(d: Path, quick: bool) -> list[tuple[str, Path]]:
    from samples.office_samples import make_docx, make_pptx, make_xlsx

    photo = _photo()
    return [
        ("docx-5pages-5photos", make_docx(d / "report.docx", pages=5, pictures=5, image=photo)),
        ("xlsx-100k-cells", make_xlsx(d / "cells.xlsx", rows=2000 if quick else 10000)),
        ("pptx-10-slides", make_pptx(d / "deck.pptx", slides=10, image=photo)),
    ]


def _floor(path: Path) -> float:
    """Plain re-zip: every member read and written again with its compression method."""
    t = time.perf_counter()
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=info.compress_type)
    return time.perf_counter() - t


def _rebuild(path: Path, out: Path) -> float:
    from cdr.formats.ooxml import rebuild_ooxml
    from cdr.handler import Context
    from cdr.policy import Limits

    ctx = Context(name=path.name, options={"metadata": "keep", "hyperlinks": "web"}, limits=Limits(),
                  workdir=out.parent)
    t = time.perf_counter()
    rebuild_ooxml(ctx, path, out)
    return time.perf_counter() - t


def _roundtrip(path: Path) -> float:
    buf = io.BytesIO()
    t = time.perf_counter()
    if path.suffix == ".docx":
        import docx

        docx.Document(str(path)).save(buf)
    elif path.suffix == ".xlsx":
        import openpyxl

        openpyxl.load_workbook(path).save(buf)
    else:
        import pptx

        pptx.Presentation(str(path)).save(buf)
    return time.perf_counter() - t


def run(quick: bool = False) -> list[dict]:
    from cdr.policy import load_policy

    policy = load_policy("default")
    rounds = 3 if quick else 7
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ooxml-") as tmp:
        d = Path(tmp)
        for name, path in _make(d, quick):
            kinds = ["floor", "rebuild", "pipeline", "roundtrip"]
            times: dict[str, list[float]] = {k: [] for k in kinds}
            _floor(path), _rebuild(path, d / "warm.out")  # warm caches and imports
            for i in range(rounds):
                for k in kinds[i % 4:] + kinds[:i % 4]:  # rotate who goes first
                    if k == "floor":
                        times[k].append(_floor(path))
                    elif k == "rebuild":
                        times[k].append(_rebuild(path, d / "rebuilt.out"))
                    elif k == "pipeline":
                        times[k].append(pipeline_seconds(path, policy, d / "out", ("clean",)))
                    else:
                        times[k].append(_roundtrip(path))
            med = {k: statistics.median(v) for k, v in times.items()}
            lib = {".docx": "python-docx", ".xlsx": "openpyxl", ".pptx": "python-pptx"}[path.suffix]
            for k, label in (("rebuild", "rebuild"), ("pipeline", "full pipeline"), ("roundtrip", f"{lib} load+save")):
                rows.append({"name": f"{name} {label}", "files": 1, "bytes": path.stat().st_size,
                             "seconds": round(med[k], 4), "floor_seconds": round(med["floor"], 4),
                             "ratio_to_floor": round(med[k] / med["floor"], 2),
                             "ratio_to_roundtrip": round(med[k] / med["roundtrip"], 2)})
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"{'name':44} {'bytes':>9} {'seconds':>8} {'floor':>7} {'ratio':>6} {'vs lib':>6}")
    for r in rows:
        print(f"{r['name']:44} {r['bytes']:>9} {r['seconds']:>8.3f} {r['floor_seconds']:>7.3f} "
              f"{r['ratio_to_floor']:>6.2f} {r['ratio_to_roundtrip']:>6.2f}")


if __name__ == "__main__":
    main()
