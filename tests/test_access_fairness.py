"""No client starves the others (issue 15, guarantee 4), attacked from outside and watched from inside.

- A real `transfer-agent serve`: one API key floods the queue with images that take a second each
  (a site plugin slows the PNG handler for their names, so the flood outlasts intake on any machine);
  a small file dropped in a channel folder afterwards is delivered while most of the flood still waits
  (first come, first served would deliver it last). The same key then hits its hourly byte quota and its cap on uploads at once
  (429 with Retry-After, JSON in Japanese and English); another key is not affected.
- The appliance in-process: while one sender's large files run, the dispatcher never gives that sender
  the reserved worker, nor more workers than max_workers_per_source, sampled throughout the run.
"""
from __future__ import annotations

import io
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.portal_helpers import CONFIG, new_key, start

FLOOD_FILES = 12
QUOTA_MB = 16

FAIR_CONFIG = CONFIG.replace("workers = 1", "workers = 2") + f"""\
concurrent_per_key = 2
mb_per_hour = {QUOTA_MB}
[dispatch]
small_file_mb = 0.1
"""


# The flood's cost must not depend on how fast the engine has become: its files take a second each.
SLOW_PNG_PLUGIN = '''
import time
from cdr import handler as H
_base = H._BY_MIME.get("image/png")
if _base is not None:
    @H.register
    class SlowPng(type(_base)):
        def rebuild(self, ctx, src, dst, det):
            if "遅延" in ctx.name:
                time.sleep(1.0)
            return super().rebuild(ctx, src, dst, det)
'''


def _png(seed: int, side: int = 400) -> bytes:
    """Noise: no compression helps, so each file costs the engine a real decode and encode."""
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jobs(data: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data / "state" / "ledger.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT id, name, status, source_key, finished_at FROM jobs ORDER BY id").fetchall()


def _until(cond, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(what)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("fair")
    (root / "plug").mkdir()
    (root / "plug" / "slowpng.py").write_text(SLOW_PNG_PLUGIN, "utf-8")
    a = start(root / "data", config=FAIR_CONFIG, env={"CDR_PLUGINS": "slowpng", "PYTHONPATH": str(root / "plug")})
    (a.data_dir / "dropbox" / "somu").mkdir(parents=True, exist_ok=True)
    yield a
    a.stop()


def test_flood_from_one_key_does_not_hold_a_dropbox_file(app):
    data = app.data_dir
    key = new_key(data, "大量送信システム")
    pngs = [_png(i, side=200) for i in range(FLOOD_FILES)]  # a second each to rebuild (the plugin)
    half = FLOOD_FILES // 2
    with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for part in (pngs[:half], pngs[half:]):
            r = c.post("/api/v1/submissions", files=[("files", (f"遅延図面{i}.png", b)) for i, b in enumerate(part)])
            assert r.status_code == 202, r.text
    _until(lambda: sum(1 for j in _jobs(data) if j["source_key"] and j["source_key"].startswith("api:")
                       and j["status"] != "received") == FLOOD_FILES, "flood not queued")
    small = data / "dropbox" / "somu" / "至急の連絡.txt"
    small.with_name("至急の連絡.txt.part").write_text("至急ご確認ください。\n", "utf-8")
    small.with_name("至急の連絡.txt.part").rename(small)
    _until(lambda: any(j["name"] == "至急の連絡.txt" and j["status"] in ("delivered", "blocked")
                       for j in _jobs(data)), "the dropbox file was not delivered")
    rows = _jobs(data)
    mine = next(j for j in rows if j["name"] == "至急の連絡.txt")
    flood = [j for j in rows if j["source_key"].startswith("api:")]
    assert all(j["id"] < mine["id"] for j in flood)  # the whole flood was queued first
    waiting = [j for j in flood if j["status"] not in ("delivered", "blocked") or j["finished_at"] > mine["finished_at"]]
    assert len(waiting) >= FLOOD_FILES // 4, (len(waiting), [dict(j) for j in rows])
    assert mine["source_key"] == "dropbox:somu"


def test_hourly_quota_and_uploads_at_once_get_429(app):
    data = app.data_dir
    key, other = new_key(data, "上限試験システム"), new_key(data, "別のシステム")
    big = _png(99, side=900)  # about 2.4 MB
    with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        sent = 0
        while True:
            r = c.post("/api/v1/submissions", files=[("files", ("大きな図面.png", big))])
            if r.status_code != 202:
                break
            sent += len(big)
            assert sent < QUOTA_MB * 1024 * 1024, "the quota never applied"
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["error"] == "quota_exceeded" and body["message"] and "1時間" in body["message_ja"]
        assert 1 <= int(r.headers["retry-after"]) <= 3600
        assert sent >= (QUOTA_MB - 3) * 1024 * 1024  # it took the quota, not less
    with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {other}"}, timeout=60) as c:
        assert c.post("/api/v1/submissions", files=[("files", ("図面.png", big))]).status_code == 202

    # Uploads at once: two held open (headers sent, body trickling), the third is refused at once.
    third = new_key(data, "同時送信システム")
    host, port = app.api.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {third}\r\n"
                      "Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 100000\r\n\r\n"
                      "--XYZ\r\n".encode())
            held.append(s)
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {third}"}, timeout=30) as c:
            while True:
                r = c.post("/api/v1/submissions", files=[("files", ("a.txt", b"x"))])
                if r.status_code == 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # the held requests may not have reached the handler yet
            assert r.status_code == 429 and r.json()["error"] == "too_many_uploads", r.text
            assert r.json()["message_ja"] and r.headers["retry-after"]
            for s in held:
                s.close()
            held = []
            _until(lambda: c.post("/api/v1/submissions", files=[("files", ("a.txt", b"x"))]).status_code == 202,
                   "the cap stayed after the uploads ended", 15)
    finally:
        for s in held:
            s.close()
    assert httpx.get(app.api + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("dispatch", [{"reserve_workers": 1, "max_workers_per_source": 0},
                                      {"reserve_workers": 0, "max_workers_per_source": 1}])
def test_one_sender_never_holds_the_reserved_worker(tmp_path, dispatch):
    """In-process: two workers, one sender with many large files, another with small ones dropped meanwhile;
    the dispatcher's state is sampled all along."""
    from transfer_agent.config import load_config
    from transfer_agent.service import Service

    cfg = load_config(data_dir=tmp_path / "data", workers=2, small_file_mb=0.1, fsync=False, stable_seconds=0.5,
                      close_settle_seconds=0.2, **dispatch)
    svc = Service(cfg)
    svc.start()
    seen: list[dict[str | None, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            counts: dict[str | None, int] = {}
            for inf in list(svc.dispatcher.inflight.values()):
                counts[inf.source] = counts.get(inf.source, 0) + 1
            seen.append(counts)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        stage = tmp_path / "data" / "work" / "stage"
        stage.mkdir(parents=True)
        for i in range(6):
            p = stage / f"big{i}.png"
            p.write_bytes(_png(i))
            svc.accept(p, source="api", channel="default", name=p.name, source_key="api:1")
        for i in range(3):
            p = stage / f"small{i}.txt"
            p.write_text(f"小さな連絡 {i}\n", "utf-8")
            svc.accept(p, source="api", channel="default", name=p.name, source_key="api:2")
        _until(lambda: all(r["status"] in ("delivered", "blocked") for r in svc.ledger.jobs(
            "received", "queued", "processing", "delivering", "delivered", "blocked")) and len(svc.ledger.jobs(
                "delivered", "blocked")) == 9, "jobs not final")
        done = svc.ledger.jobs("delivered", "blocked")
    finally:
        stop.set()
        t.join(5)
        svc.stop()
    assert seen and max(s.get("api:1", 0) for s in seen) == 1, "the flooding sender held both workers"
    # From the ledger's own times (claimed, result recorded), not from samples: a small file takes a few
    # milliseconds, which a sampler every 5 ms on a loaded box can miss altogether.
    spans = {src: [(r["started_at"], r["processed_at"]) for r in done if r["source_key"] == src]
             for src in ("api:1", "api:2")}
    assert any(s0 < b1 and b0 < s1 for s0, s1 in spans["api:2"] for b0, b1 in spans["api:1"]), \
        "the other sender never ran beside it"
