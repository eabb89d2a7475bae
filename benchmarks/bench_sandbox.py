"""What the worker sandbox costs: per-file time through the pool with and without it, same run.

`python -m benchmarks.bench_sandbox [--rounds N]`. Two one-worker pools, one sandboxed and one with
CDR_WORKER_SANDBOX=0, take turns on the same files round after round; medians per file are reported
with the difference (staging the input in, moving the output out, emptying the stage). Files: small
ones of the hot path (text, PNG, PDF), a 20 MB text linked into the stage, and the same file with
mode 0440 (as the appliance's quarantine keeps originals), which a root parent must copy for the
worker's user. Wall time and CPU time (the parent's calling thread plus the worker's main thread:
less disturbed when other work shares the machine). Also the start of a worker (until it is ready),
with and without the sandbox, and the parent's staging alone.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _files(d: Path) -> list[tuple[str, Path]]:
    from PIL import Image

    from samples.pdf_samples import japanese_pdf

    text = d / "small.txt"
    text.write_text("市民課からのお知らせ\n" * 60, "utf-8")
    png = d / "small.png"
    Image.effect_noise((160, 120), 40).convert("RGB").save(png)
    pdf = d / "small.pdf"
    pdf.write_bytes(japanese_pdf())
    big = d / "big.txt"
    big.write_text(("0123456789 abcdefghij 市民課 " * 3000 + "\n") * 250, "utf-8")
    kept = d / "quarantined.txt"
    kept.write_bytes(big.read_bytes())
    os.chmod(kept, 0o440)
    return [("text 2 KB", text), ("png 40 KB", png), ("pdf 1 page", pdf),
            (f"text {big.stat().st_size >> 20} MB", big), (f"text {kept.stat().st_size >> 20} MB 0440", kept)]


def _cpu_ns(pid: int) -> int:
    """CPU time of a worker's main thread so far (ns), less disturbed than wall time on a busy machine."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    from cdr.policy import load_policy
    from cdr.worker import Job, WorkerPool

    policy = load_policy("default").to_dict()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        base = Path(tmp)
        files = _files(base)
        starts: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(3):
            for label, env in (("on", None), ("off", {"CDR_WORKER_SANDBOX": "0"})):
                t = time.perf_counter()
                with WorkerPool(1, env=env) as p:
                    p.check()
                    starts[label].append(time.perf_counter() - t)
        times: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        with WorkerPool(1) as on, WorkerPool(1, env={"CDR_WORKER_SANDBOX": "0"}) as off:
            iso = on.check()
            off.check()
            pools = [("on", on), ("off", off)]
            for r in range(args.rounds + 2):  # two warm-up rounds: lazy imports happen once per worker
                for label, pool in pools[r % 2:] + pools[:r % 2]:
                    for i, (name, path) in enumerate(files):
                        out = base / "out" / f"{label}-{r}-{i}"
                        out.mkdir(parents=True)
                        pid = pool._all[0].proc.pid
                        cpu0, wcpu0 = time.thread_time(), _cpu_ns(pid)
                        t = time.perf_counter()
                        res = pool.run(Job(str(path), path.name, str(out), policy))
                        dt = time.perf_counter() - t
                        cpu = time.thread_time() - cpu0 + (_cpu_ns(pid) - wcpu0) / 1e9
                        assert res.verdict != "blocked", (label, name, res.reason)
                        if r >= 2:
                            times.setdefault((name, label), []).append(dt)
                            cpus.setdefault((name, label), []).append(cpu)
        rows = []
        for name, _path in files:
            on_ms = statistics.median(times[(name, "on")]) * 1000
            off_ms = statistics.median(times[(name, "off")]) * 1000
            on_cpu = statistics.median(cpus[(name, "on")]) * 1000
            off_cpu = statistics.median(cpus[(name, "off")]) * 1000
            rows.append({"file": name, "sandbox_ms": round(on_ms, 2), "no_sandbox_ms": round(off_ms, 2),
                         "overhead_ms": round(on_ms - off_ms, 2), "sandbox_cpu_ms": round(on_cpu, 2),
                         "no_sandbox_cpu_ms": round(off_cpu, 2), "overhead_cpu_ms": round(on_cpu - off_cpu, 2)})
        start = {k: round(statistics.median(v) * 1000) for k, v in starts.items()}
        staging = _staging_alone(base, files, args.rounds)
    print(f"isolation: {iso}")
    print(f"{'':24} {'wall ms':>32}   {'CPU ms (parent thread + worker)':>32}")
    print(f"{'file':24} {'sandbox':>10} {'without':>10} {'overhead':>10}   {'sandbox':>10} {'without':>10} "
          f"{'overhead':>10}   (medians of {args.rounds} rounds)")
    for row in rows:
        print(f"{row['file']:24} {row['sandbox_ms']:10.2f} {row['no_sandbox_ms']:10.2f} {row['overhead_ms']:10.2f}"
              f"   {row['sandbox_cpu_ms']:10.2f} {row['no_sandbox_cpu_ms']:10.2f} {row['overhead_cpu_ms']:10.2f}")
    print(f"worker start until ready: {start['on']} ms with the sandbox, {start['off']} ms without")
    print("staging alone (parent side: input in, output of the same size out, stage emptied), median ms:")
    for name, ms in staging.items():
        print(f"  {name:24} {ms:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"isolation": iso, "files": rows, "worker_start_ms": start,
                                               "staging_ms": staging}, ensure_ascii=False, indent=2), "utf-8")


def _staging_alone(base: Path, files: list[tuple[str, Path]], rounds: int) -> dict[str, float]:
    """Stage.put + take + clear without a worker: the output is written (untimed) where a worker would."""
    from cdr.sandbox import preflight
    from cdr.sandbox.stage import Stage
    from cdr.worker import Job

    stage = Stage(base, preflight())
    out: dict[str, float] = {}
    try:
        for name, path in files:
            data = path.read_bytes()
            laps = []
            for r in range(rounds):
                dest = base / "staged" / f"{path.stem}-{r}{path.suffix}"
                dest.mkdir(parents=True)
                job = Job(str(path), path.name, str(dest), {})
                t = time.perf_counter()
                seen = stage.put(job)
                t_in = time.perf_counter() - t
                (stage.path / "out" / path.name).write_bytes(data)
                t = time.perf_counter()
                stage.take(job, {"verdict": "clean", "output": f"{seen.out_dir}/{path.name}"})
                stage.clear()
                laps.append(t_in + time.perf_counter() - t)
            out[name] = round(statistics.median(laps) * 1000, 3)
    finally:
        stage.remove()
    return out


if __name__ == "__main__":
    main()
