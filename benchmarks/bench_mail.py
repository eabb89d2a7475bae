"""Mails per second and p95 latency of the mail family on a Japanese mix, as a ratio to parsing and
re-serialising the same mails with Python's email package alone (the floor), in the same run.

`python -m benchmarks.bench_mail [--quick]`. The mix (samples/mail_samples.japanese_mix): plain
ISO-2022-JP mails, HTML newsletters, mails with 1 to 5 Office/PDF attachments. Timed alternating
with the floor, round after round: the engine through the real worker pool (one worker: process
boundary, parent re-check and every attachment's own pipeline included) and in this process
(`cdr.pipeline.process`). DKIM/DMARC lookups are off (`dns = false`): DNS latency is the network's,
not ours.
"""
from __future__ import annotations

import email
import statistics
import sys
import tempfile
import time
from email import policy as email_policy
from pathlib import Path

from .measure import percentile


def _floor(paths: list[Path]) -> list[float]:
    out = []
    for p in paths:
        t = time.perf_counter()
        msg = email.message_from_bytes(p.read_bytes(), policy=email_policy.default)
        for part in msg.walk():  # decode what the engine decodes, so the floor is not only a split
            if not part.is_multipart():
                part.get_payload(decode=True)
        msg.as_bytes()
        out.append(time.perf_counter() - t)
    return out


def _in_process(paths: list[Path], policy, out: Path) -> list[float]:
    from cdr.pipeline import process

    times = []
    for p in paths:
        t = time.perf_counter()
        r = process(p, p.name, out, policy)
        times.append(time.perf_counter() - t)
        if r.verdict == "blocked":
            raise RuntimeError(f"{p.name}: blocked: {r.reason}")
    return times


def _pool(pool, paths: list[Path], policy: dict, out: Path) -> list[float]:
    from cdr.worker import Job

    times = []
    for p in paths:
        t = time.perf_counter()
        r = pool.run(Job(str(p), p.name, str(out), policy))
        times.append(time.perf_counter() - t)
        if r.verdict == "blocked":
            raise RuntimeError(f"{p.name}: blocked: {r.reason}")
    return times


def run(quick: bool = False) -> list[dict]:
    from cdr.policy import load_policy
    from cdr.worker import WorkerPool
    from samples.mail_samples import japanese_mix

    d = load_policy("default").to_dict()
    d["families"]["mail"]["dns"] = False
    from cdr.policy import Policy

    policy = Policy.from_dict(d, "bench-mail")
    rounds = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        base = Path(tmp)
        paths = []
        for name, data in japanese_mix(12 if quick else 30):
            p = base / name
            p.write_bytes(data)
            paths.append(p)
        sizes = [p.stat().st_size for p in paths]
        nbytes = sum(sizes)
        kinds = ("floor", "pool", "process")
        times: dict[str, list[float]] = {k: [] for k in kinds}
        lat: dict[str, list[float]] = {k: [] for k in kinds}
        (base / "warm").mkdir()  # the worker writes into an existing folder (a missing one is a crash)
        with WorkerPool(1) as pool:
            _pool(pool, paths[:3], d, base / "warm")  # imports happen once per worker
            _in_process(paths[:3], policy, base / "warm")
            for r in range(rounds):
                for k in kinds[r % 3:] + kinds[:r % 3]:
                    out = base / f"o-{k}-{r}"
                    out.mkdir()
                    t = _floor(paths) if k == "floor" else _pool(pool, paths, d, out) if k == "pool" \
                        else _in_process(paths, policy, out)
                    times[k].append(sum(t))
                    lat[k].extend(t)
    rows = []

    def row(label: str, k: str, idx: list[int]) -> dict:
        n = len(paths)
        per = [sum(t[i] for i in idx) for t in _rounds(lat[k], n)]
        fl = [sum(t[i] for i in idx) for t in _rounds(lat["floor"], n)]
        sec, floor = statistics.median(per), statistics.median(fl)
        ls = [x for t in _rounds(lat[k], n) for i, x in enumerate(t) if i in idx]
        return {"name": label, "files": len(idx), "bytes": sum(sizes[i] for i in idx),
                "seconds": round(sec, 4), "mails_per_s": round(len(idx) / sec, 1),
                "p50_ms": round(percentile(ls, 50) * 1000, 1), "p95_ms": round(percentile(ls, 95) * 1000, 1),
                "floor_seconds": round(floor, 4), "floor": "email package: parse + decode every part + as_bytes",
                "floor_mails_per_s": round(len(idx) / floor, 1), "ratio_to_floor": round(sec / floor, 2),
                "rounds": rounds}

    everything = list(range(len(paths)))
    rows.append(row("Japanese mix, worker pool (1 worker)", "pool", everything))
    rows.append(row("Japanese mix, in process", "process", everything))
    for prefix, label in (("plain", "plain ISO-2022-JP"), ("news", "HTML newsletters"),
                          ("attach", "1-5 Office/PDF attachments")):
        rows.append(row(f"{label}, worker pool", "pool", [i for i, p in enumerate(paths) if p.name.startswith(prefix)]))
    assert nbytes == sum(r["bytes"] for r in rows[2:])
    return rows


def _rounds(xs: list[float], n: int) -> list[list[float]]:
    """Per-mail latencies of each round (each round timed every mail once, in order)."""
    return [xs[i:i + n] for i in range(0, len(xs), n)]


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"{'name':40} {'mails':>5} {'mails/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'floor/s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['name']:40} {r['files']:>5} {r['mails_per_s']:>8.1f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} "
              f"{r['floor_mails_per_s']:>8.1f} {r['ratio_to_floor']:>6.2f}")


if __name__ == "__main__":
    main()
