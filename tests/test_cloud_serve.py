"""`transfer-agent serve --database postgresql://...`: the whole appliance (drop folder, REST intake in
its internet-side process, console, delivery) on the shared PostgreSQL ledger, unchanged steps."""
from __future__ import annotations

import re
import time

import httpx

from tests.portal_helpers import start, ta, wait_done
from transfer_agent import audit, audit_state, clock
from transfer_agent.ledger import Ledger


def test_appliance_on_postgresql(pg_url: str, tmp_path) -> None:
    data = tmp_path / "data"
    r = ta("apikey", "create", "--client", "電子申請", "--all-channels", "--database", pg_url, data_dir=data)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    r = ta("user", "add", "--name", "clerk1", "--role", "clerk", "--all-channels", "--database", pg_url, data_dir=data,
           stdin="clerk-pass-1\n")
    assert r.returncode == 0, r.stderr
    app = start(data, "--database", pg_url)
    try:
        (data / "dropbox" / "kokuho").mkdir(parents=True, exist_ok=True)
        (data / "dropbox" / "kokuho" / "住民票.txt").write_text("住民票の写し\n", "utf-8")
        (data / "dropbox" / "kokuho" / "evil.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 200)
        c = httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        resp = c.post("/api/v1/submissions", data={"氏名": "山田", "channel": "kokuho"},
                      files=[("files", ("申請書.csv", "氏名,金額\n山田,=1+2\n".encode()))])
        assert resp.status_code == 202, resp.text
        st = wait_done(c, resp.json()["status_url"])
        assert st["files"][0]["verdict"] == "sanitized"
        led = Ledger(pg_url, anchor_path=tmp_path / "probe.anchor")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = led.query("SELECT name, status, verdict FROM jobs ORDER BY id")
            if len(rows) == 3 and all(r["status"] in ("delivered", "blocked") for r in rows):
                break
            time.sleep(0.2)
        by = {r["name"]: (r["status"], r["verdict"]) for r in rows}
        assert by == {"住民票.txt": ("delivered", "clean"), "evil.exe": ("blocked", "blocked"),
                      "申請書.csv": ("delivered", "sanitized")}, by
        # The folder is the appliance's day (JST), not the server's; the run may cross midnight.
        got = list((data / "inbox" / "kokuho").glob("*/住民票.txt"))
        assert [p.parent.name for p in got] in ([clock.day()], [clock.day(time.time() - 120)]), got
        assert got[0].read_text("utf-8") == "住民票の写し\n"
        # The console reads the same ledger.
        con = httpx.Client(base_url=app.console, timeout=30)
        pre = re.search(r'name="pre" value="([^"]+)"', con.get("/login").text).group(1)
        assert con.post("/login", data={"name": "clerk1", "password": "clerk-pass-1", "pre": pre,
                                        "next": "/"}).status_code == 303
        page = con.get("/deliveries").text
        assert "住民票.txt" in page and "申請書.csv" in page
        assert audit.verify(led.conn).ok and audit_state.differences(led.conn) == []
        led.close()
    finally:
        app.stop()
    r = ta("audit", "verify", "--database", pg_url, data_dir=data)
    assert r.returncode == 0, r.stdout + r.stderr
