"""Result rows, the targets of issue 8, the printed table and the chart."""
from __future__ import annotations

from pathlib import Path

from .measure import percentile


def row(name: str, files: int, nbytes: int, seconds: float, latencies: list[float], peak_rss_mb: float | None,
        floor_seconds: float) -> dict:
    """One JSON result row in the shape the issue asks for."""
    return {
        "name": name, "files": files, "bytes": nbytes, "seconds": round(seconds, 6),
        "files_per_s": round(files / seconds, 2) if seconds else None,
        "mb_per_s": round(nbytes / 1e6 / seconds, 2) if seconds else None,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "peak_rss_mb": round(peak_rss_mb, 1) if peak_rss_mb else None,
        "floor_seconds": round(floor_seconds, 6),  # a tiny file copies in tens of microseconds
        "ratio_to_floor": round(seconds / floor_seconds, 2) if floor_seconds else None,
    }


def _find(data: dict, name: str) -> dict | None:
    return next((r for r in data.get("results", []) if r["name"] == name), None)


def targets(data: dict) -> list[dict]:
    """Each target of the issue with the measured value; `met` is None when it was not measured."""
    out = []

    def add(what: str, value, limit, ok) -> None:
        out.append({"target": what, "value": value, "limit": limit, "met": ok if value is not None else None})

    sc = data.get("scaling") or {}
    add("2 workers / 1 worker files/s >= 1.7", sc.get("speedup"), 1.7,
        sc.get("speedup") is not None and sc["speedup"] >= 1.7)
    pdf = _find(data, "pdf")
    v = pdf and pdf.get("ratio_to_structural")
    add("PDF / pikepdf open+save <= 2.5", v, 2.5, v is not None and v <= 2.5)
    for fam in ("docx", "pptx"):
        r = _find(data, fam)
        v = r and r.get("ratio_to_structural")
        add(f"{fam} / re-zip <= 3", v, 3.0, v is not None and v <= 3.0)
    ox = data.get("openpyxl_100k") or {}
    add("openpyxl load+save / engine on 100k cells >= 4", ox.get("speedup"), 4.0,
        ox.get("speedup") is not None and ox["speedup"] >= 4.0)
    for fam in ("jpeg", "png"):
        r = _find(data, f"{fam} lossless")
        v = r and r.get("ratio_to_floor")
        add(f"{fam} lossless / copy floor <= 2", v, 2.0, v is not None and v <= 2.0)
    mix = _find(data, "mix (1 worker)")
    v = mix and mix.get("p99_ms_files_le_10mb")
    add("p99 latency, files <= 10 MB, 1 worker < 1000 ms", v, 1000, v is not None and v < 1000)
    cli = data.get("cli_small_file") or {}
    v = cli.get("wall_seconds_median")
    add("cdr sanitize one small file < 0.5 s wall", v, 0.5, v is not None and v < 0.5)
    v = mix and mix.get("peak_rss_mb")
    add("worker peak RSS on the mix < 300 MB", v, 300, v is not None and v < 300)
    return out


def _f(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(data: dict) -> str:
    lines = [f"{'name':18} {'files':>5} {'MB':>7} {'files/s':>8} {'MB/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'p99 ms':>8} {'RSS MB':>7} {'/copy':>7} {'/struct':>8}  structural floor"]
    for r in data.get("results", []):
        lines.append(f"{r['name']:18} {r['files']:>5} {r['bytes'] / 1e6:>7.2f} {_f(r['files_per_s']):>8} "
                     f"{_f(r['mb_per_s']):>7} {_f(r['p50_ms'], '.1f'):>8} {_f(r['p95_ms'], '.1f'):>8} "
                     f"{_f(r['p99_ms'], '.1f'):>8} {_f(r['peak_rss_mb'], '.0f'):>7} {_f(r['ratio_to_floor']):>7} "
                     f"{_f(r.get('ratio_to_structural')):>8}  {r.get('structural_floor', '')}")
    sc = data.get("scaling") or {}
    if sc:
        lines.append(f"\nmix with 1 worker: {sc['workers_1_files_per_s']} files/s; 2 workers: "
                     f"{sc['workers_2_files_per_s']} files/s (x{sc['speedup']}); worker CPU per wall second "
                     f"{sc.get('workers_1_cpu_per_wall')} / {sc.get('workers_2_cpu_per_wall')} "
                     f"(speed-up per CPU received x{sc.get('speedup_per_cpu')}), "
                     f"load {sc.get('load_avg')}")
    ox = data.get("openpyxl_100k")
    if ox:
        lines.append(f"100k-cell xlsx: engine {ox['engine_seconds']} s, openpyxl load+save {ox['openpyxl_seconds']} s "
                     f"(x{ox['speedup']})")
    cli = data.get("cli_small_file")
    if cli:
        lines.append("cdr sanitize, one small file: " + (f"{cli['wall_seconds_median']} s wall (median)"
                                                         if "skipped" not in cli else f"skipped: {cli['skipped']}"))
    ap = data.get("appliance")
    if ap:
        lines.append("appliance drop folder -> inbox: " + (
            f"{ap['files_per_s']} files/s ({ap['files']} files, {ap['workers']} workers, {ap['seconds']} s; "
            f"engine alone with text renditions {ap.get('engine_with_text_files_per_s')} files/s)"
            if "skipped" not in ap else f"skipped: {ap['skipped']}"))
    for fb in data.get("family_benches", []):
        if "error" in fb:
            lines.append(f"{fb['name']}: {fb['error']}")
        else:
            lines.append(f"{fb['name']:34} {_f(fb.get('seconds'), '.3f')} s  floor {_f(fb.get('floor_seconds'), '.3f')}"
                         f" s  ratio {_f(fb.get('ratio_to_floor'))}")
    if data.get("blocked_in_mix"):
        lines.append("blocked in the mix (a benign corpus should have none): " + "; ".join(data["blocked_in_mix"]))
    lines.append("\ntargets:")
    for t in data.get("targets", []):
        mark = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {mark:12} {t['target']}: {t['value']}")
    m = data.get("machine", {})
    lines.append(f"\nmachine: {m.get('cpus')} cpus {m.get('cpu', '')}, load {m.get('load_avg_start')} -> "
                 f"{m.get('load_avg_end')}; {data.get('rounds')} rounds; {data.get('elapsed_s')} s")
    return "\n".join(lines)


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data.get("results", []) if r.get("ratio_to_floor")]
    names = [r["name"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 2))
    y = range(len(rows))
    a1.barh([i + 0.2 for i in y], [r["ratio_to_floor"] for r in rows], 0.4, label="engine / copy floor")
    a1.barh([i - 0.2 for i in y], [r.get("ratio_to_structural") or 0 for r in rows], 0.4,
            label="engine / structural floor")
    a1.set_xscale("log")
    a1.set_xlim(left=1)
    a1.set_yticks(list(y), names)
    a1.invert_yaxis()
    a1.axvline(2.5, color="grey", ls=":", lw=1)
    a1.set_xlabel("time ratio (lower is better; dotted line 2.5x)")
    a1.legend(loc="lower right", fontsize=8)
    a2.barh(list(y), [r["files_per_s"] or 0 for r in rows], color="tab:green")
    a2.set_yticks(list(y), names)
    a2.invert_yaxis()
    a2.set_xscale("log")
    a2.set_xlabel("files/s, 1 worker")
    sc = data.get("scaling") or {}
    fig.suptitle(f"cdr throughput on {data.get('machine', {}).get('cpus')} cpus; mix: 1 worker "
                 f"{sc.get('workers_1_files_per_s')} files/s, 2 workers {sc.get('workers_2_files_per_s')} files/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
