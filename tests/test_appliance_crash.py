"""kill -9 the real `transfer-agent serve` mid-batch, repeatedly; then nothing lost, nothing twice.

Two kinds of crash: SIGKILL from outside at random moments (real watchdog, real workers),
and SIGKILL from inside at each named step of intake and delivery
(TRANSFER_AGENT_CRASHPOINT), so that every window is hit at least once.
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.test_appliance import Agent, check_consistency, drop, mixed

pytestmark = pytest.mark.slow

ITERATIONS = 8
BATCHES = 6
PER_BATCH = 5


def _expect(jobs: list[dict], dropped: dict[str, bool]) -> None:
    by_name = {}
    for j in jobs:
        assert j["name"] not in by_name, f"{j['name']} processed twice"
        by_name[j["name"]] = j
    assert set(by_name) == set(dropped), set(by_name) ^ set(dropped)
    for name, delivered in dropped.items():
        assert (by_name[name]["status"] == "delivered") == delivered, (name, by_name[name]["verdict"],
                                                                        by_name[name]["result"])


def _noise_png(rnd: random.Random) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (800, 600), rnd.randbytes(800 * 600 * 3)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_kill9_at_random_moments(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 100000))
    rnd = random.Random(seed)
    data = tmp_path / "var"
    a = Agent(data, stable=0.3, attempts=ITERATIONS + 2)
    dropped: dict[str, bool] = {}
    kills = []
    for it in range(ITERATIONS):
        a.start()
        if it < BATCHES:
            done_before = len([r for r in a.rows() if r["status"] in ("delivered", "blocked")])
            for k in range(PER_BATCH):
                i = it * PER_BATCH + k
                suffix, body, ok = mixed(i)
                name = f"b{it}/ファイル{i:02d}{suffix}" if i % 3 else f"ファイル{i:02d}{suffix}"
                drop(data / "dropbox" / name, body)
                dropped[name.rsplit("/", 1)[-1]] = ok
            # One picture to re-encode (~0.1 s), dropped last: the small files alone can all be through
            # between two polls, and a kill must land on work in flight.
            drop(data / "dropbox" / f"写真{it:02d}.png", _noise_png(rnd))
            dropped[f"写真{it:02d}.png"] = True
            # Mid-batch: once a random number of this batch's files are through, kill within 10 ms.
            target = done_before + rnd.randrange(PER_BATCH - 1)
            end = time.monotonic() + 20
            while len([r for r in a.rows() if r["status"] in ("delivered", "blocked")]) < target:
                assert time.monotonic() < end
                time.sleep(0.01)
            delay = rnd.uniform(0.0, 0.01)
        else:
            delay = rnd.uniform(0.0, 1.0)  # during recovery of the last batch
        time.sleep(delay)
        rows = a.rows()
        a.kill()
        unfinished = len(dropped) - len([r for r in rows if r["status"] in ("delivered", "blocked")])
        kills.append((round(delay, 2), unfinished, sorted({r["status"] for r in rows} - {"delivered", "blocked"})))
    a.start()
    a.wait_final(len(dropped), timeout=90)
    assert a.term() == 0
    jobs = check_consistency(data)
    _expect(jobs, dropped)
    assert len(jobs) == BATCHES * (PER_BATCH + 1)
    assert any(j["reused_from"] for j in jobs), "identical content should have been reused"
    assert sum(1 for _, n, _ in kills if n) >= BATCHES // 2, f"too few kills caught work in flight: {kills}"
    print(f"seed={seed} kills (delay, unfinished files, their states)={kills}")


CRASHPOINTS = ["intake.row", "intake.renamed", "intake.hashed", "intake.stored",
               "deliver.planned", "deliver.temp_written", "deliver.linked", "deliver.done"]


def test_kill9_at_every_step(tmp_path: Path) -> None:
    data = tmp_path / "var"
    a = Agent(data, stable=0.3, attempts=20)
    dropped: dict[str, bool] = {}
    i = 0
    for point in CRASHPOINTS:
        for _ in range(4):
            suffix, body, ok = mixed(i)
            name = f"{point}-{i:02d}{suffix}"
            drop(data / "dropbox" / name, body)
            dropped[name] = ok
            i += 1
        a.start(wait=False, env={"TRANSFER_AGENT_CRASHPOINT": f"{point}:2"})
        rc = a.proc.wait(60)
        a.out.close()
        a.err.close()
        assert rc == -9, f"{point}: the crash point was not reached (rc={rc}): {a.stderr()[-2000:]}"
    a.start()
    a.wait_final(len(dropped), timeout=90)
    assert a.term() == 0
    jobs = check_consistency(data)
    _expect(jobs, dropped)
