"""Japan time on a server kept in UTC: `[service] timezone` (Asia/Tokyo by default) decides folder dates,
receipt numbers and every time shown to a person, which carries its zone (JST)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.portal_helpers import CONFIG, add_user, new_key, start, wait_done
from transfer_agent import clock
from transfer_agent.config import ConfigError, load_config


@pytest.fixture
def utc_server(monkeypatch):
    """The test process itself in UTC, as the server is."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
    clock.set_zone(clock.DEFAULT)


def test_dates_follow_the_configured_zone_not_the_servers(utc_server, tmp_path):
    late = datetime(2026, 12, 7, 16, 30, tzinfo=UTC).timestamp()  # 01:30 on the 8th in Japan
    assert time.strftime("%Y-%m-%d", time.localtime(late)) == "2026-12-07"  # the server's own idea
    cfg = load_config(None, tmp_path)
    assert cfg.timezone == "Asia/Tokyo"
    assert clock.day(late) == "2026-12-08" and clock.compact_day(late) == "20261208"
    assert clock.shown(late) == "2026-12-08 01:30 JST"
    assert clock.iso(late) == "2026-12-08T01:30:00+09:00"
    assert clock.day_bounds("2026-12-08")[0] == datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()
    (tmp_path / "transfer_agent.toml").write_text('[service]\ntimezone = "UTC"\n', "utf-8")
    load_config(None, tmp_path)
    assert clock.day(late) == "2026-12-07" and clock.shown(late) == "2026-12-07 16:30 UTC"
    (tmp_path / "transfer_agent.toml").write_text('[service]\ntimezone = "Japan Standard"\n', "utf-8")
    with pytest.raises(ConfigError, match="service.timezone.*Asia/Tokyo"):
        load_config(None, tmp_path)


def test_config_error_names_the_line_and_shows_the_fix(tmp_path):
    (tmp_path / "transfer_agent.toml").write_text('[service]\nworkers = 1\n\n[channels.国保課]\npolicy = "text-only"\n',
                                                 "utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(None, tmp_path)
    msg = str(err.value)
    assert "line 4" in msg and "[channels.国保課]" in msg and 'fix: [channels."国保課"]' in msg
    (tmp_path / "transfer_agent.toml").write_text('[channels."国保課"]\npolicy = "text-only"\n', "utf-8")
    assert load_config(None, tmp_path).channel_policies == {"国保課": "text-only"}


@pytest.mark.parametrize("text, where, fix", [
    ('[service]\nworkers = "two"\n', "line 2", "fix: workers = 0"),
    ('[service]\nworkers = 1\n[intake]\nstable_secnds = 2.0\n', "line 4", "fix: stable_seconds = 2.0"),
    ('[servce]\nworkers = 2\n', "line 1", "fix: [service]"),
    ('[service]\nworkers = 1\nfsync = true\n', "line 3", "fix: [delivery]"),
    ('[service]\nworkers = 1\n\n[channels."国保課"]\npolicy = "text-only"\ncolour = 1\n', "line 4", ""),
])
def test_serve_names_the_line_of_a_bad_key_or_value(tmp_path, text, where, fix):
    """What an operator sees from `serve`: the file and line, the line as written and how it should read."""
    cfg = tmp_path / "transfer_agent.toml"
    cfg.write_text(text, "utf-8")
    r = subprocess.run([str(Path(sys.executable).parent / "transfer-agent"), "serve", "--data-dir", str(tmp_path / "d"),
                        "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"transfer-agent: {cfg}: {where}: "), r.stderr
    n = int(where.split()[1])
    assert f"  {n} | {text.splitlines()[n - 1]}" in r.stderr or not fix, r.stderr
    assert fix in r.stderr
    assert not (tmp_path / "d" / "state").exists()  # nothing started


def test_appliance_in_utc_shows_japan_time(tmp_path):
    """The whole appliance with TZ=UTC: receipt, bundle folder and form.txt in JST, the console's times
    marked JST, the banner naming the zone."""
    app = start(tmp_path / "data", env={"TZ": "UTC"}, config=CONFIG)
    try:
        add_user(app.data_dir, "yamada", "clerk", "clerk-pass-1")
        key = new_key(app.data_dir, "電子申請システム")
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            before = time.time()
            r = c.post("/api/v1/submissions", data={"氏名": "山田"}, files=[("files", ("メモ.txt", b"memo\n"))])
            assert r.status_code == 202, r.text
            receipt = r.json()["receipt"]
            wait_done(c, r.json()["status_url"])
        assert receipt[:8] in (clock.compact_day(before), clock.compact_day())  # Japan's date, not the server's
        bundle = app.data_dir / "inbox" / "default" / clock.day(before) / receipt
        if not bundle.is_dir():
            bundle = app.data_dir / "inbox" / "default" / clock.day() / receipt
        form = (bundle / "form.txt").read_text("utf-8-sig")
        assert re.search(r"受付日時: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST", form), form
        assert "受信日時：" in (bundle / "メモ.txt.報告.txt").read_text("utf-8-sig")
        assert " JST" in (bundle / "メモ.txt.報告.txt").read_text("utf-8-sig")
        with httpx.Client(base_url=app.console, timeout=30) as c:
            page = c.get("/login")
            pre = page.cookies.get("ta_login") or re.search(r'name="pre" value="([^"]+)"', page.text).group(1)
            c.post("/login", data={"name": "yamada", "password": "clerk-pass-1", "pre": pre, "next": "/"})
            listing = c.get("/deliveries").text
            assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", listing), listing
            # The date filter is Japan's day too.
            assert "メモ.txt" in c.get(f"/deliveries?date={clock.day(before)}").text \
                or "メモ.txt" in c.get(f"/deliveries?date={clock.day()}").text
        log = (tmp_path / "data.log").read_text("utf-8", "replace")
        assert "Asia/Tokyo" in log and "JST" in log and ".venv/bin/transfer-agent user add" in log
    finally:
        app.stop()
