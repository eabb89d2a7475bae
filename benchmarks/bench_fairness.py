"""Latency of a small dropbox file while one API client floods the queue (issue 15, guarantee 4).

`python -m benchmarks.bench_fairness [--quick] [--code DIR] [--json FILE]`. A real `transfer-agent serve`
(2 workers) on loopback. The floor: a small text file dropped into `dropbox/somu/` with nothing else
queued, drop (rename into place) to final verdict, read from the ledger. Then, round after round, one
API key submits a flood of large images (noise PNGs: real decode and encode work), and once the whole
flood is queued the same small file is dropped again: its latency against the floor is the figure.
First come, first served delivers it after the whole flood; fair dispatch (round-robin per sender and
a reserved worker) right away. `--code DIR` runs the appliance from another checkout (e.g. the
commit before fair dispatch) with this venv, for before/after figures in the same conditions.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CONFIG = """
[service]
workers = 2
[intake]
stable_seconds = 1.0
close_settle_seconds = 0.2
tick_seconds = 0.05
"""
SMALL = "至急の連絡.txt"


def _png(seed: int, side: int = 3000) -> bytes:
    """A large picture in a small file (about 1.7 MB for 9 megapixels: a gradient with a noisy row in
    16): cheap to upload and take in, costly to decode and rebuild, so the flood queues up."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = ((x + y) * 255 // (2 * side)).astype(np.int16)
    arr = np.stack([base, base[::-1], (base + 80) % 256], -1)
    arr[::16] += rng.integers(0, 64, arr[::16].shape).astype(np.int16)
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class _Appliance:
    def __init__(self, work: Path, code: Path | None, reserve: int | None = None) -> None:
        self.data = work / "data"
        self.data.mkdir(parents=True)
        (self.data / "dropbox" / "somu").mkdir(parents=True)
        extra = f"[dispatch]\nreserve_workers = {reserve}\n" if reserve is not None else ""
        (work / "agent.toml").write_text(CONFIG + extra, "utf-8")
        self.env = dict(os.environ)
        if code is not None:
            self.env["PYTHONPATH"] = str(code)
        self.cmd = [sys.executable, "-m", "transfer_agent.cli"]
        self.log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*self.cmd, "serve", "--data-dir", str(self.data), "--config",
                                      str(work / "agent.toml"), "--api-port", "0", "--console-port", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                                     cwd=work)  # not this checkout's folder: `-m` would import from there
        deadline = time.monotonic() + 90
        info = self.data / "state" / "agent.json"
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {(work / 'serve.log').read_text('utf-8', 'replace')[-500:]}")
            try:
                d = json.loads(info.read_text("utf-8"))
                if d.get("pid") == self.proc.pid:
                    self.api = d["api_url"].rstrip("/")
                    if httpx.get(self.api + "/healthz", timeout=2).status_code == 200:
                        break
            except (OSError, ValueError, httpx.HTTPError):
                pass
            time.sleep(0.1)

    def key(self) -> str:
        for extra in (["--all-channels"], []):  # code from before channel bindings has no such flag
            p = subprocess.run([*self.cmd, "apikey", "create", "--data-dir", str(self.data), "--client", "flood",
                                *extra], capture_output=True, text=True, env=self.env, cwd=self.data.parent)
            if p.returncode == 0:
                return p.stdout.strip().splitlines()[-1]
        raise RuntimeError(p.stderr)

    def jobs(self) -> list[tuple]:
        with sqlite3.connect(f"file:{self.data / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
            return db.execute("SELECT id, name, status, finished_at, source FROM jobs ORDER BY id").fetchall()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session we started, by its id
            self.proc.wait()
        self.log.close()


def _drop_small(app: _Appliance, n: int, timeout: float) -> tuple[float, int]:
    """Drop the small file; seconds until its verdict, and how many flood files were still not final then."""
    name = f"{n:02d}_{SMALL}"
    tmp = app.data / "dropbox" / "somu" / (name + ".part")
    tmp.write_text(f"至急ご確認ください（{n}）。\n", "utf-8")  # new content: never answered from the cache
    t0 = time.time()
    tmp.rename(tmp.with_name(name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = app.jobs()
        mine = [r for r in rows if r[1] == name and r[2] in ("delivered", "blocked")]
        if mine:
            done = mine[0][3]
            pending = sum(1 for r in rows if r[4] == "api" and (r[2] not in ("delivered", "blocked") or r[3] > done))
            return done - t0, pending
        time.sleep(0.02)
    raise RuntimeError(f"{name}: no verdict within {timeout:g} s")


def measure(quick: bool, code: Path | None = None, reserve: int | None = None) -> dict:
    files, rounds, idle_runs = (10, 2, 3) if quick else (20, 3, 5)
    work = Path(tempfile.mkdtemp(prefix="bench-fair-"))
    app = _Appliance(work, code, reserve)
    try:
        key = app.key()
        _drop_small(app, 99, 120)  # warm-up: workers have imported what a text file needs
        idle = [_drop_small(app, i, 120)[0] for i in range(idle_runs)]
        flood_lat, pending, flood_s = [], [], []
        n = idle_runs
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=300) as c:
            for rnd in range(rounds):
                # New content each round: identical files would be answered from the result cache.
                pngs = [_png(rnd * 1000 + i) for i in range(files)]
                before = sum(1 for r in app.jobs() if r[4] == "api")
                t0 = time.time()
                for i in range(0, files, 4):
                    r = c.post("/api/v1/submissions",
                               files=[("files", (f"図面{j}.png", b)) for j, b in enumerate(pngs[i:i + 4], i)])
                    if r.status_code != 202:
                        raise RuntimeError(f"flood refused: {r.status_code} {r.text[:200]}")
                # The whole flood in the queue (taken in: not 'received' any more) before the small file comes.
                while sum(1 for r in app.jobs() if r[4] == "api" and r[2] != "received") < before + files:
                    time.sleep(0.05)
                lat, left = _drop_small(app, n, 600)
                n += 1
                flood_lat.append(lat)
                pending.append(left)
                while any(r[4] == "api" and r[2] not in ("delivered", "blocked") for r in app.jobs()):
                    time.sleep(0.1)
                flood_s.append(time.time() - t0)
        med, floor = statistics.median(flood_lat), statistics.median(idle)
        return {"name": "small dropbox file during an API flood", "files": files, "rounds": rounds,
                "flood_bytes_per_round": sum(map(len, pngs)), "seconds": round(med, 3),
                "floor_seconds": round(floor, 3),
                "ratio_to_floor": round(med / floor, 2) if floor else None,
                "latencies_s": [round(x, 3) for x in flood_lat], "idle_latencies_s": [round(x, 3) for x in idle],
                "flood_files_still_waiting": pending, "flood_seconds": [round(x, 2) for x in flood_s],
                "load_avg": [round(x, 2) for x in os.getloadavg()], "code": str(code) if code else "this checkout", "reserve_workers": reserve,
                "note": "drop -> verdict of one small text file; floor: the same with nothing queued"}
    finally:
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(quick: bool = False) -> list[dict]:
    """The row for `python -m benchmarks`."""
    return [measure(quick)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_fairness", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--code", metavar="DIR", help="run the appliance from this checkout (before/after)")
    ap.add_argument("--reserve", type=int, metavar="N", help="[dispatch] reserve_workers (default: the config's)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    row = measure(args.quick, Path(args.code).resolve() if args.code else None, args.reserve)
    print(json.dumps(row, ensure_ascii=False, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(row, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
