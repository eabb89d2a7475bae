"""`python -m benchmarks [--quick] [--json FILE] [--plot FILE.png]`: throughput of the engine
(`python -m benchmarks --fidelity DIR [--json FILE]`: rendering fidelity of sanitized documents instead;
`python -m benchmarks --cluster [--quick] [--rounds N] [--json FILE]`: the security cloud, benchmarks/cluster.py).

Every figure is printed beside the same figure of the previous release, read from
`benchmarks/baseline.json` (`--baseline FILE`); `--write-baseline "MACHINE"` makes a run the new
baseline, on purpose (see README, Performance).

One run measures, on the same machine and interleaved: the floors, the engine per family through
the real `cdr.worker.WorkerPool` (1 worker), images in lossless mode, the whole mix with 1 and 2
workers, an openpyxl round trip against the engine on a 100,000-cell workbook, `cdr sanitize` of
one small file (wall, new process) and the appliance end to end (drop folder -> inbox).
Rounds alternate the order of what is measured; figures are medians over rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from . import corpus, measure, report

ROOT = Path(__file__).resolve().parent.parent


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _policies() -> tuple[dict, dict]:
    from cdr.policy import load_policy

    base = load_policy("default").to_dict()
    lossless = json.loads(json.dumps(base))
    lossless["families"]["image"]["mode"] = "lossless"
    lossless["name"] = "bench-lossless"
    return base, lossless


# --------------------------------------------------------------------------- per-family rounds

def measure_families(items: list[corpus.Item], rounds: int, work: Path) -> tuple[list[dict], list[str]]:
    from cdr.worker import WorkerPool

    policy, lossless = _policies()
    fams: dict[str, list[Path]] = {}
    for it in items:
        fams.setdefault(it.family, []).append(it.path)
    kinds = {f: ["copy", "engine"] + (["struct"] if f in measure.STRUCTURAL else [])
             + (["lossless", "contract"] if f in ("jpeg", "png") else []) for f in fams}
    times: dict[tuple[str, str], list[float]] = {}
    lat: dict[tuple[str, str], list[float]] = {}
    rss: dict[tuple[str, str], float] = {}
    out_bytes: dict[tuple[str, str], list[int]] = {}
    # CPU seconds per round (worker + parent for the engine): far less sensitive to other load than wall time.
    cpu: dict[tuple[str, str], list[float]] = {}
    problems: list[str] = []
    out = work / "fam"
    out.mkdir()
    with WorkerPool(1) as pool:
        for paths in fams.values():  # warm-up: lazy imports happen once per worker, not per file
            measure.engine_each(pool, paths[:1], policy, out)
        order = list(fams)
        for r in range(rounds):
            _log(f"family round {r + 1}/{rounds}")
            for f in order[r % len(order):] + order[:r % len(order)]:
                ks = kinds[f]
                for k in ks[r % len(ks):] + ks[:r % len(ks)]:
                    c = cpu.setdefault((f, k), [])
                    if k == "copy":
                        t = measure.time_each(measure.copy_floor, fams[f], out, c)
                    elif k == "struct":
                        t = measure.time_each(measure.STRUCTURAL[f][1], fams[f], out, c)
                    elif k == "contract":
                        t = measure.time_each(measure.contract_floor, fams[f], out, c)
                    else:
                        measure.reset_peak(pool)
                        sizes: list[int] = []
                        c0, p0 = measure.cpu_seconds(pool), time.process_time()
                        t, verdicts = measure.engine_each(pool, fams[f], lossless if k == "lossless" else policy, out,
                                                          sizes)
                        c.append(measure.cpu_seconds(pool) - c0 + time.process_time() - p0)
                        out_bytes[(f, k)] = sizes
                        peak = measure.peak_rss_mb(pool)
                        if peak is not None:
                            rss[(f, k)] = max(rss.get((f, k), 0.0), peak)
                        lat.setdefault((f, k), []).extend(t)
                        for p, v in zip(fams[f], verdicts, strict=True):
                            if v.startswith("blocked") and f"{p.name}: {v}" not in problems:
                                problems.append(f"{f}/{p.name}: {v}")
                    times.setdefault((f, k), []).append(sum(t))
    rows = []
    for f, paths in fams.items():
        nbytes = sum(p.stat().st_size for p in paths)
        for k in ("engine", "lossless"):
            if (f, k) not in times:
                continue
            sec = measure.median(times[(f, k)])
            floor = measure.median(times[(f, "copy")])
            row = report.row(f if k == "engine" else f"{f} lossless", len(paths), nbytes, sec, lat[(f, k)],
                             rss.get((f, k)), floor)
            row["cpu_seconds"] = round(measure.median(cpu[(f, k)]), 6)
            row["floor_cpu_seconds"] = round(measure.median(cpu[(f, "copy")]), 6)
            row["cpu_ratio_to_floor"] = round(row["cpu_seconds"] / row["floor_cpu_seconds"], 2) \
                if row["floor_cpu_seconds"] else None
            ref = "struct" if k == "engine" else "contract"
            if (f, ref) in cpu and measure.median(cpu[(f, ref)]):
                row["cpu_ratio_to_structural"] = round(row["cpu_seconds"] / measure.median(cpu[(f, ref)]), 2)
            row["output_bytes"] = sum(out_bytes.get((f, k), []))
            row["size_ratio"] = round(row["output_bytes"] / nbytes, 3) if nbytes else None
            if k == "engine" and (f, "struct") in times:
                row["structural_floor"] = measure.STRUCTURAL[f][0]
                row["structural_floor_seconds"] = round(measure.median(times[(f, "struct")]), 4)
                row["ratio_to_structural"] = round(sec / row["structural_floor_seconds"], 2)
            if k == "lossless":
                row["structural_floor"] = "copy + a 2nd sha256 (input and output hash)"
                row["structural_floor_seconds"] = round(measure.median(times[(f, "contract")]), 4)
                row["ratio_to_structural"] = round(sec / row["structural_floor_seconds"], 2)
            rows.append(row)
    # The whole mix, one worker: sums of the family medians.
    eng = [r for r in rows if "lossless" not in r["name"]]
    all_lat = [x for (f, k), v in lat.items() if k == "engine" for x in v]
    mix = report.row("mix (1 worker)", sum(r["files"] for r in eng), sum(r["bytes"] for r in eng),
                     sum(r["seconds"] for r in eng), all_lat, max((r["peak_rss_mb"] or 0) for r in eng) or None,
                     sum(r["floor_seconds"] for r in eng))
    mix["cpu_seconds"] = round(sum(r["cpu_seconds"] for r in eng), 6)
    mix["floor_cpu_seconds"] = round(sum(r["floor_cpu_seconds"] for r in eng), 6)
    mix["cpu_ratio_to_floor"] = round(mix["cpu_seconds"] / mix["floor_cpu_seconds"], 2) if mix["floor_cpu_seconds"] \
        else None
    small = [x for (f, k), v in lat.items() if k == "engine"
             for p, x in zip(fams[f] * rounds, v, strict=True) if p.stat().st_size <= 10 * 1024 * 1024]
    mix["p99_ms_files_le_10mb"] = round(measure.percentile(small, 99) * 1000, 1)
    rows.append(mix)
    return rows, problems


# --------------------------------------------------------------------------- scaling

def measure_scaling(items: list[corpus.Item], rounds: int, work: Path) -> dict:
    from cdr.worker import WorkerPool

    policy, _ = _policies()
    paths = [it.path for it in items]
    out = work / "scale"
    out.mkdir()
    walls: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}  # worker CPU seconds per wall second
    with WorkerPool(1) as p1, WorkerPool(2) as p2:
        pools = {1: p1, 2: p2}
        for n, pool in pools.items():  # warm every worker
            measure.engine_batch(pool, paths[: 2 * n], policy, out)
        for r in range(rounds):
            _log(f"scaling round {r + 1}/{rounds}")
            for n in ((1, 2) if r % 2 == 0 else (2, 1)):
                c0 = measure.cpu_seconds(pools[n])
                walls[n].append(measure.engine_batch(pools[n], paths, policy, out))
                busy[n].append((measure.cpu_seconds(pools[n]) - c0) / walls[n][-1])
    w1, w2 = measure.median(walls[1]), measure.median(walls[2])
    # If 2 workers use much less than 2 CPU-seconds per second, other processes had the cores.
    c1, c2 = measure.median(busy[1]), measure.median(busy[2])
    return {"workers_1_cpu_per_wall": round(c1, 2), "workers_2_cpu_per_wall": round(c2, 2),
            # Speed-up per CPU actually received: 1.0 means the engine scales with the cores it gets.
            "speedup_per_cpu": round((w1 / w2) / (c2 / c1), 2) if c1 and c2 else None,
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "files": len(paths), "workers_1_seconds": round(w1, 3), "workers_2_seconds": round(w2, 3),
            "workers_1_files_per_s": round(len(paths) / w1, 2), "workers_2_files_per_s": round(len(paths) / w2, 2),
            "speedup": round(w1 / w2, 2), "rounds": rounds}


# --------------------------------------------------------------------------- openpyxl comparison

def measure_openpyxl(rounds: int, work: Path) -> dict:
    from cdr.worker import WorkerPool

    policy, _ = _policies()
    src = corpus.xlsx_100k(work / "cells_100k.xlsx")
    out = work / "xl"
    out.mkdir()
    eng, opx = [], []
    with WorkerPool(1) as pool:
        verdicts = measure.engine_each(pool, [src], policy, out)[1]  # warm-up
        for r in range(rounds):
            _log(f"openpyxl round {r + 1}/{rounds}")
            for k in (("engine", "openpyxl") if r % 2 == 0 else ("openpyxl", "engine")):
                if k == "engine":
                    eng.extend(measure.engine_each(pool, [src], policy, out)[0])
                else:
                    opx.extend(measure.time_each(measure.openpyxl_roundtrip, [src], out))
    e, o = measure.median(eng), measure.median(opx)
    return {"cells": 100_000, "bytes": src.stat().st_size, "engine_seconds": round(e, 3),
            "openpyxl_seconds": round(o, 3), "speedup": round(o / e, 2), "verdict": verdicts[0]}


# --------------------------------------------------------------------------- one small file, new process

def measure_cli(work: Path, runs: int) -> dict:
    cdr = Path(sys.executable).parent / "cdr"
    cmd = [str(cdr)] if cdr.exists() else [sys.executable, "-m", "cdr.cli"]
    src = work / "small.csv"
    src.write_bytes("番号,氏名\r\n1,山田太郎\r\n".encode("cp932"))
    walls = []
    for i in range(runs):
        t = time.perf_counter()
        p = subprocess.run(cmd + ["sanitize", str(src), "-o", str(work / f"cli{i}")], capture_output=True, cwd=work)
        walls.append(time.perf_counter() - t)
        if p.returncode != 0:
            return {"skipped": f"cdr sanitize exited {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"}
    return {"command": " ".join(Path(c).name for c in cmd[:1]) + " sanitize small.csv -o OUT",
            "wall_seconds_median": round(measure.median(walls), 3), "wall_seconds_min": round(min(walls), 3),
            "runs": runs}


# --------------------------------------------------------------------------- appliance end to end

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _finished(api_url: str) -> float:
    with urllib.request.urlopen(api_url.rstrip("/") + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("transfer_files_total{"))


def measure_appliance(items: list[corpus.Item], work: Path, workers: int, timeout: float) -> dict:
    exe = Path(sys.executable).parent / "transfer-agent"
    if not exe.exists():
        return {"skipped": "the transfer-agent command is not installed"}
    from cdr.worker import WorkerPool

    # The same work the appliance does (text renditions included), engine only, for comparison.
    policy, _ = _policies()
    ref = work / "appliance-ref"
    ref.mkdir()
    with WorkerPool(workers) as pool:
        measure.engine_batch(pool, [it.path for it in items[: 2 * workers]], policy, ref, want_text=True)
        ref_wall = measure.engine_batch(pool, [it.path for it in items], policy, ref, want_text=True)
    data = work / "appliance"
    # The channel folder exists before the agent starts, so its watch is in place for the first file.
    (data / "dropbox" / "default").mkdir(parents=True)
    # Short settle times: we measure processing and delivery, not the watcher's patience.
    (data / "transfer_agent.toml").write_text(
        "[intake]\nstable_seconds = 1.0\nclose_settle_seconds = 0.2\ntick_seconds = 0.05\n", "utf-8")
    api_port, console_port = _free_port(), _free_port()
    log = open(work / "appliance.log", "wb")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(data), "--api-port", str(api_port),
                             "--console-port", str(console_port), "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        agent = data / "state" / "agent.json"
        while not agent.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (work / "appliance.log").read_bytes()[-400:].decode(errors="replace")
                return {"skipped": f"transfer-agent serve did not start (exit {proc.poll()}): {tail}"}
            time.sleep(0.1)
        api_url = json.loads(agent.read_text("utf-8"))["api_url"]
        base = _finished(api_url)
        drop = data / "dropbox" / "default"
        drop.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        for it in items:  # write to an ignored name, then rename into place (as copy tools do)
            tmp = drop / f"{it.family}_{it.path.name}.part"
            shutil.copyfile(it.path, tmp)
            os.rename(tmp, drop / f"{it.family}_{it.path.name}")
        n = len(items)
        done = 0.0
        while time.perf_counter() - t0 < timeout:
            done = _finished(api_url) - base
            if done >= n:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        delivered = sum(1 for p in (data / "inbox").rglob("*") if p.is_file())
        if done < n:
            return {"skipped": f"only {int(done)}/{n} files finished within {timeout:g} s"}
        return {"files": n, "seconds": round(wall, 3), "files_per_s": round(n / wall, 2), "workers": workers,
                "engine_with_text_files_per_s": round(n / ref_wall, 2),
                "ratio_to_engine": round(wall / ref_wall, 2),
                "inbox_files": delivered, "settle_seconds": 0.2,
                "note": "drop folder -> verdict recorded (inbox delivery or block), counted from /metrics"}
    except Exception as exc:  # noqa: BLE001 - the rest of the benchmark still reports
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session we started, by its id
            proc.wait()
        log.close()


# --------------------------------------------------------------------------- per-family modules

def family_benches(quick: bool) -> list[dict]:
    """Rows of benchmarks/bench_<family>.py written by the format owners, where they exist."""
    import importlib

    rows = []
    for name in ("bench_pdf", "bench_ooxml", "bench_images", "bench_mail", "bench_legacy", "bench_fairness"):
        if not (Path(__file__).parent / f"{name}.py").exists():
            continue
        _log(f"{name}.run(quick={quick})")
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            for r in mod.run(quick):
                rows.append({**r, "name": f"{name[6:]}: {r.get('name')}", "source": name})
        except Exception as exc:  # noqa: BLE001 - report, do not lose the rest
            rows.append({"name": f"{name[6:]}: failed", "source": name, "error": f"{type(exc).__name__}: {exc}"})
    return rows


# --------------------------------------------------------------------------- main

def run(quick: bool, rounds: int | None = None, appliance: bool = True, cli: bool = True,
        openpyxl: bool = True, with_family_benches: bool = True, keep: Path | None = None,
        tiny: bool = False) -> dict:
    t_start = time.perf_counter()
    rounds = rounds or (3 if quick else 5)
    work = Path(tempfile.mkdtemp(prefix="cdr-bench-"))
    try:
        _log("generating corpus")
        items = corpus.build(work / "corpus", quick=quick, tiny=tiny)
        if keep:
            shutil.copytree(work / "corpus", keep, dirs_exist_ok=True)
        data: dict = {"machine": measure.machine(), "quick": quick, "rounds": rounds,
                      "corpus": corpus.describe(items)}
        rows, problems = measure_families(items, rounds, work)
        data["results"] = rows
        data["blocked_in_mix"] = problems
        data["scaling"] = measure_scaling(items, max(2, rounds - 1), work)
        if openpyxl:
            data["openpyxl_100k"] = measure_openpyxl(1 if quick else 3, work)
        if cli:
            data["cli_small_file"] = measure_cli(work, 3 if quick else 5)
        if appliance:
            _log("appliance end to end")
            data["appliance"] = measure_appliance(items, work, 2, 60 if quick else 180)
        if with_family_benches:
            data["family_benches"] = family_benches(quick)
        data["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        data["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        data["targets"] = report.targets(data)
        return data
    finally:
        shutil.rmtree(work, ignore_errors=True)


BASELINE = Path(__file__).resolve().parent / "baseline.json"


def write_baseline(data: dict, path: Path, machine_name: str, commit: str | None) -> None:
    """This run becomes the figures every later run prints beside its own (refreshed on purpose only)."""
    keep = {k: data[k] for k in ("results", "scaling", "openpyxl_100k", "cli_small_file", "appliance", "machine",
                                 "quick", "rounds", "corpus") if k in data}
    keep["baseline_of"] = {"machine_name": machine_name, "commit": commit, "date": time.strftime("%Y-%m-%d"),
                           "load_avg": [data["machine"].get("load_avg_start"), data["machine"].get("load_avg_end")]}
    path.write_text(json.dumps(keep, ensure_ascii=False, indent=1) + "\n", "utf-8")


def _commit() -> str | None:
    try:
        p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return p.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller mix and fewer rounds (< 3 min on 2 cores)")
    ap.add_argument("--rounds", type=int, help="rounds per measurement (default 3 quick, 5 full)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="write a chart (matplotlib)")
    ap.add_argument("--no-appliance", action="store_true", help="skip the transfer-agent end-to-end run")
    ap.add_argument("--no-family-benches", action="store_true", help="skip benchmarks/bench_<family>.py")
    ap.add_argument("--keep-corpus", metavar="DIR", help="copy the generated mix to DIR")
    ap.add_argument("--baseline", metavar="FILE", default=str(BASELINE),
                    help="figures of the previous release printed beside this run's (default benchmarks/baseline.json)")
    ap.add_argument("--write-baseline", metavar="MACHINE",
                    help="after the run, make it the new baseline, naming the machine (a full run, on purpose)")
    ap.add_argument("--fidelity", metavar="DIR", help="instead: sanitize the documents in DIR and compare each "
                    "with its original as LibreOffice renders them (pages, text, pixels; --json for the figures)")
    ap.add_argument("--policy", help="policy for --fidelity (name or file)")
    ap.add_argument("--cluster", action="store_true", help="instead: the mix through the security cloud (serve +"
                    " 1 and 2 pinned worker nodes on the real PostgreSQL and RabbitMQ) against the one-box appliance:"
                    " files/s, efficiency, coordination CPU per file (docs/performance.md)")
    ap.add_argument("--tiny", action="store_true", help="with --cluster: one small file per family (smoke test)")
    args = ap.parse_args(argv)
    if args.cluster:
        from . import cluster

        cdata = cluster.run(quick=args.quick, tiny=args.tiny, rounds=args.rounds or (1 if args.tiny else 3))
        print(cluster.table(cdata))
        if args.json:
            Path(args.json).write_text(json.dumps(cdata, ensure_ascii=False, indent=2), "utf-8")
        return 0
    if args.fidelity:
        from . import fidelity

        fidelity.run_folder(Path(args.fidelity), Path(args.json) if args.json else None, args.policy)
        return 0
    data = run(args.quick, rounds=args.rounds, appliance=not args.no_appliance,
               with_family_benches=not args.no_family_benches,
               keep=Path(args.keep_corpus) if args.keep_corpus else None)
    base = Path(args.baseline)
    if base.exists():
        report.attach_baseline(data, json.loads(base.read_text("utf-8")), str(base))
    print(report.table(data))
    if args.write_baseline:
        write_baseline(data, base, args.write_baseline, _commit())
        print(f"baseline written to {base}")
    if args.json:
        Path(args.json).write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")
    if args.plot:
        report.plot(data, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
