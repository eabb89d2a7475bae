"""Issue 15, guarantee 9: names and dates are always safe and whole.

Every name the appliance writes into the inbox passes one rule (files.clean_name, with
cdr.names.windows_safe): the Windows clients of the share can open every file and folder. An
e-application bundle keeps one date folder however late its files are handed over, and a dropped
file changed after it was copied is not deleted but taken again as a new arrival.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import httpx

from tests.portal_helpers import new_key, start, wait_done
from tests.test_appliance import EXE, Agent, drop
from transfer_agent import clock

_WIN_BAD = re.compile(r'[<>:"|?*\x00-\x1f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _windows_refuses(part: str) -> bool:
    return bool(_WIN_BAD.search(part)) or part != part.rstrip(" .") or \
        part.split(".")[0].upper().rstrip(" ") in _RESERVED


def test_every_inbox_name_is_one_windows_can_open(tmp_path: Path) -> None:
    data = tmp_path / "var"
    a = Agent(data, stable=0.3).start()
    try:
        same = "同じ内容です\n".encode()
        drop(data / "dropbox" / "first.txt", same)
        a.final_named("first.txt")
        drops = {
            "CON.txt": "予約名\n".encode(),
            'q<u>o"te|?*.txt': b"odd characters\n",
            "nul": b"no extension\n",
            "trail. ": b"trailing dot and space\n",
            "AUX.exe": EXE,  # blocked: its notice is named after it
            "PRN.txt": same,  # the result of first.txt reused under this name
            "LPT1/com1.txt": b"a channel Windows cannot name\n",
            "kokuho/a:b/c?.txt": b"a sender folder with a colon\n",
        }
        for rel, body in drops.items():
            drop(data / "dropbox" / rel, body)
        rows = a.wait_final(1 + len(drops))
        assert any(r["reused_from"] for r in rows), [(r["name"], r["reused_from"]) for r in rows]
        assert any(r["status"] == "blocked" for r in rows)
        written = [p.relative_to(data / "inbox") for p in (data / "inbox").rglob("*")]
        assert len([p for p in written if p.name.endswith((".cdr.json", ".blocked.json"))]) == len(rows)
        bad = [str(p) for p in written if any(_windows_refuses(part) for part in p.parts)]
        assert not bad, bad
    finally:
        a.term()


def test_a_file_changed_after_it_was_copied_is_not_deleted(tmp_path: Path) -> None:
    """The sender writes to the file after the appliance copied it and before it removes it: the first
    version is processed, and the changed file stays in the dropbox and is taken as a new arrival."""
    data = tmp_path / "var"
    a = Agent(data, stable=0.3).start(env={"TRANSFER_AGENT_PAUSEPOINT": "intake.copied:2"})
    try:
        f = drop(data / "dropbox" / "申請.txt", "第1版\n".encode())
        end = time.monotonic() + 30
        while not any(not p.name.endswith(".copy") for p in (data / "work" / "intake").iterdir()):
            assert time.monotonic() < end, "never copied"
            time.sleep(0.02)
        with open(f, "ab") as w:
            w.write("第2版の追記\n".encode())
        end = time.monotonic() + 60
        while True:
            rows = a.rows("SELECT * FROM jobs WHERE name = '申請.txt' AND status IN ('delivered','blocked')"
                          " ORDER BY id")
            if len(rows) >= 2:
                break
            assert time.monotonic() < end, (a.rows(), f.exists())
            time.sleep(0.1)
        sizes = sorted(r["size"] for r in rows)
        assert sizes == [len("第1版\n".encode()), len("第1版\n第2版の追記\n".encode())], sizes
        assert not f.exists()  # the second version was taken in its turn
    finally:
        a.term()


def test_bundle_keeps_its_date_folder_when_handed_over_after_midnight(tmp_path: Path) -> None:
    """A submission recorded at 23:59:59 whose files are handed over after midnight (here: the service
    died in between and came back the next day) delivers into the bundle's own date folder."""
    data = tmp_path / "data"
    app = start(data)
    key = new_key(data, "portal")
    app.stop()
    import os
    import subprocess
    import sys
    cfg = data.parent / f"{data.name}.toml"
    env = dict(os.environ, TRANSFER_AGENT_CRASHPOINT="api.handover")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "transfer-agent"), "serve", "--data-dir", str(data),
                             "--config", str(cfg), "--api-port", "0", "--console-port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        end = time.monotonic() + 60
        api = None
        while api is None:
            assert time.monotonic() < end and proc.poll() is None
            try:
                info = json.loads((data / "state" / "agent.json").read_text("utf-8"))
                api = info["api_url"] if info["pid"] == proc.pid else None
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        try:
            httpx.post(api + "api/v1/submissions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                       data={"氏名": "山田"}, files=[("files", ("申請書.txt", "申請内容\n".encode()))])
        except httpx.HTTPError:
            pass  # the core died as it began the handover
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Make it yesterday's 23:59:59 submission, as if midnight passed before the handover.
    yesterday = clock.local() - timedelta(days=1)  # in the appliance's zone
    late = yesterday.replace(hour=23, minute=59, second=59).timestamp()
    day = yesterday.strftime("%Y-%m-%d")
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
    sid, receipt = conn.execute("SELECT id, receipt FROM submissions").fetchone()
    receipt = day.replace("-", "") + receipt[8:]
    bundle = f"inbox/default/{day}/{receipt}"
    with conn:
        conn.execute("UPDATE submissions SET created_at = ?, day = ?, receipt = ?, bundle_dir = ?",
                     (late, day, receipt, bundle))
    conn.close()
    app = start(data)
    try:
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            wait_done(c, f"/api/v1/submissions/{sid}")
        files = sorted(p.name for p in (data / bundle).iterdir())
        assert "申請書.txt" in files and "form.txt" in files and "manifest.json" in files, files
        assert not (data / "inbox" / "default" / clock.day()).exists()
    finally:
        app.stop()
