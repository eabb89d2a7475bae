"""Per-file time of PDF sanitizing, as a ratio to a plain pikepdf open + save in the same run.

`python -m benchmarks.bench_pdf [--quick]`. For 1-, 10- and 100-page Japanese text PDFs, a PDF
with about 5,000 small objects (note annotations) and a 100-page PDF with a JavaScript link on
every page (the slow path: the rule walk runs and removes them), the full pipeline (detect,
rebuild, verify, hash) and the handler alone (rebuild + verify-inspect) are timed alternating
with the floor (pikepdf.open + save to a file), round after round; medians are reported.
"""
from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pikepdf

from .measure import pipeline_seconds


def _make(dirpath: Path) -> list[tuple[str, Path]]:
    from samples.pdf_samples import _js, _save, japanese_pdf, many_objects_pdf

    files = []
    for n in (1, 10, 100):
        p = dirpath / f"text_{n}p.pdf"
        p.write_bytes(japanese_pdf(n, 30))
        files.append((f"{n}-page", p))
    p = dirpath / "objects_5000.pdf"
    p.write_bytes(many_objects_pdf(5000))
    files.append(("5000-objects", p))
    pdf = pikepdf.open(io.BytesIO(japanese_pdf(100, 30)))
    for page in pdf.pages:
        page.obj.Annots = pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50], A=_js(pdf)))])
    p = dirpath / "js_100p.pdf"
    p.write_bytes(_save(pdf))
    files.append(("100-page-js-hostile", p))
    return files


def _floor(path: Path, out: Path) -> float:
    t = time.perf_counter()
    with pikepdf.open(path) as pdf:
        pdf.save(out / "floor.pdf")
    return time.perf_counter() - t


def _handler(path: Path, policy, out: Path) -> float:
    """Our part alone: rebuild + verify-inspect, without the pipeline's hashing and detection."""
    from cdr.detect import detect
    from cdr.handler import Context, handler_for

    det = detect(path)
    h = handler_for(det.mime)
    ctx = Context(name=path.name, options=dict(policy.family("pdf").options), limits=policy.limits, workdir=out)
    t = time.perf_counter()
    h.rebuild(ctx, path, out / "rebuilt.pdf", det)
    if h.inspect(ctx, out / "rebuilt.pdf", det):
        raise RuntimeError(f"{path.name}: residual threats")
    return time.perf_counter() - t


def run(quick: bool = False) -> list[dict]:
    from cdr.policy import Policy, load_policy

    d = json.loads(json.dumps(load_policy("default").to_dict()))
    d["families"] = {"pdf": d["families"]["pdf"]}
    policy = Policy.from_dict(d, "bench-pdf")
    rounds = 3 if quick else 15
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-pdf-") as tmp:
        tmpd = Path(tmp)
        out = tmpd / "out"
        out.mkdir()
        for name, path in _make(tmpd):
            times: dict[str, list[float]] = {"floor": [], "ours": [], "handler": []}
            _floor(path, out)  # warm caches and imports
            pipeline_seconds(path, policy, out)
            for i in range(rounds):
                order = ("floor", "ours", "handler") if i % 2 == 0 else ("handler", "ours", "floor")
                for which in order:
                    if which == "floor":
                        times["floor"].append(_floor(path, out))
                    elif which == "ours":
                        times["ours"].append(pipeline_seconds(path, policy, out))
                    else:
                        times["handler"].append(_handler(path, policy, out))
            floor = statistics.median(times["floor"])
            sec = statistics.median(times["ours"])
            hsec = statistics.median(times["handler"])
            rows.append({"name": name, "files": 1, "bytes": path.stat().st_size, "seconds": round(sec, 4),
                         "floor_seconds": round(floor, 4), "ratio_to_floor": round(sec / floor, 2),
                         "handler_seconds": round(hsec, 4), "handler_ratio": round(hsec / floor, 2)})
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"{'name':22} {'bytes':>8} {'pipeline':>9} {'floor':>8} {'ratio':>6} {'handler':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['name']:22} {r['bytes']:>8} {r['seconds']:>9.4f} {r['floor_seconds']:>8.4f} "
              f"{r['ratio_to_floor']:>6.2f} {r['handler_seconds']:>8.4f} {r['handler_ratio']:>6.2f}")


if __name__ == "__main__":
    main()
