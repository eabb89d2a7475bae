"""Issue 15, guarantee 1: nothing the appliance writes leaves the data directory, whatever the inbox holds.

Someone who can write into the inbox share plants symbolic links (to a folder outside the data
directory) where the appliance will create a folder or a file: a channel folder, a date folder, an
e-application's receipt folder, originals/, a planned file name, a temp name. The real
`transfer-agent serve` must refuse each (never follow it), audit it, report it on /healthz, and
leave everything outside the data directory exactly as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.portal_helpers import add_user, new_key, start
from tests.test_appliance import Agent, drop
from tests.test_console_security import _csrf, _login
from transfer_agent import clock


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _outside(tmp: Path) -> Path:
    out = tmp / "outside"
    out.mkdir()
    (out / "victim.txt").write_text("do not touch\n")
    (out / "form.txt").write_text("not the appliance's\n")
    return out


def _audit(data: Path, event: str) -> list[dict]:
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30)
    try:
        return [json.loads(d) for (d,) in conn.execute("SELECT data FROM audit WHERE event = ?", (event,))]
    finally:
        conn.close()


def _until(pred, what: str, timeout: float = 30):  # noqa: ANN001, ANN202
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(what)


def _status(data: Path, name: str) -> str | None:
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30)
    try:
        row = conn.execute("SELECT status FROM jobs WHERE name = ? ORDER BY id DESC", (name,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("links")
    outside = _outside(base)
    data = base / "data"
    today = clock.day()
    # Planted before the appliance starts: a channel folder and a date folder that are links.
    (data / "inbox" / "linked_date").mkdir(parents=True)
    os.symlink(outside, data / "inbox" / "linked_channel")
    os.symlink(outside, data / "inbox" / "linked_date" / today)
    before = _snapshot(outside)
    app = start(data)
    add_user(data, "yamada", "clerk", "clerk-pass-1")
    add_user(data, "kacho", "approver", "approver-pass-1")
    yield {"app": app, "data": data, "outside": outside, "before": before, "today": today}
    app.stop()
    assert _snapshot(outside) == before


@pytest.mark.parametrize("channel,planted", [("linked_channel", "inbox/linked_channel"),
                                             ("linked_date", "inbox/linked_date/{today}")])
def test_link_at_a_folder_is_refused_then_delivery_resumes(env, channel: str, planted: str) -> None:
    data, app = env["data"], env["app"]
    planted = planted.format(today=env["today"])
    name = f"{channel}.txt"
    drop(data / "dropbox" / channel / name, "申請書\n".encode())
    _until(lambda: any(a["path"] == planted for a in _audit(data, "inbox.link_refused")), "refusal not audited")
    # The refusal may be audited before this job gets there (another writer met the link first):
    # the job then reaches delivery and is held there, not delivered elsewhere, not lost.
    _until(lambda: _status(data, name) == "delivering", "the delivery was not held at the link")
    health = httpx.get(app.api + "/healthz", timeout=10).json()
    assert health["status"] == "degraded" and any(planted in n for n in health["notes"]), health
    assert _snapshot(env["outside"]) == env["before"]
    # The operator removes the link: the held delivery goes through into a real folder.
    os.unlink(data / planted)
    _until(lambda: _status(data, name) == "delivered", "not delivered after the link was removed", 90)
    assert (data / "inbox" / channel / env["today"] / name).is_file()
    assert not (data / planted).is_symlink()
    assert _snapshot(env["outside"]) == env["before"]
    health = httpx.get(app.api + "/healthz", timeout=10).json()
    assert not any(planted in n for n in health.get("notes", [])), health


def test_link_at_a_receipt_folder_is_refused(env) -> None:
    data, app = env["data"], env["app"]
    day = env["today"]
    # Receipts are predictable: the next one of today. Plant links at the next few.
    seq = sqlite3.connect(data / "state" / "ledger.sqlite3").execute(
        "SELECT COALESCE(MAX(n), 0) FROM receipt_seq WHERE day = ?", (day,)).fetchone()[0]
    (data / "inbox" / "default" / day).mkdir(parents=True, exist_ok=True)
    receipt = f"{day.replace('-', '')}-{seq + 1:04d}"
    os.symlink(env["outside"], data / "inbox" / "default" / day / receipt)
    key = new_key(data, "portal")
    r = httpx.post(app.api + "/api/v1/submissions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                   data={"氏名": "山田"}, files=[("files", ("申請.txt", "申請内容\n".encode()))])
    assert r.status_code in (202, 503), r.text
    _until(lambda: any(a["path"] == f"inbox/default/{day}/{receipt}" for a in _audit(data, "inbox.link_refused")),
           "receipt link not audited")
    assert _snapshot(env["outside"]) == env["before"]
    os.unlink(data / "inbox" / "default" / day / receipt)


def test_approved_original_is_never_written_to_the_inbox(env) -> None:
    """An approval writes nothing into the delivery folder (the requester downloads the original from the
    console), so a link planted at originals/ is never reached."""
    data, app = env["data"], env["app"]
    unknown = bytes(range(256)) * 3  # an unknown type: blocked, but not a family the policy never releases
    drop(data / "dropbox" / "orig" / "data.bin", unknown)
    _until(lambda: _status(data, "data.bin") == "blocked", "not blocked")
    os.symlink(env["outside"], data / "inbox" / "orig" / env["today"] / "originals")
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
    jid = conn.execute("SELECT id FROM jobs WHERE name = 'data.bin'").fetchone()[0]
    conn.close()
    clerk, approver = _login(app, "yamada", "clerk-pass-1"), _login(app, "kacho", "approver-pass-1")
    try:
        r = clerk.post(f"/deliveries/{jid}/request", data={"csrf": _csrf(clerk, f"/deliveries/{jid}"),
                                                           "reason": "業務で原本が必要なため"})
        assert r.status_code == 303, r.text[:300]
        conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
        rid = conn.execute("SELECT id FROM original_requests WHERE job_id = ?", (jid,)).fetchone()[0]
        conn.close()
        r = approver.post(f"/approvals/{rid}", data={"csrf": _csrf(approver, "/approvals"), "decision": "approve",
                                                     "comment": "確認済み"})
        assert r.status_code == 303 and "msg=approved" in r.headers["location"], r.headers
        got = clerk.get(f"/originals/{rid}")
        assert got.status_code == 200 and got.content == unknown
    finally:
        clerk.close()
        approver.close()
    assert (data / "inbox" / "orig" / env["today"] / "originals").is_symlink()
    assert _snapshot(env["outside"]) == env["before"]
    assert not [p for p in (data / "inbox").rglob("ORIGINAL_*")]


def test_links_at_a_planned_name_and_its_temp_name(tmp_path: Path) -> None:
    """The service dies with its plan committed; meanwhile links appear at the planned name and at
    its temp name. The replay never writes through either."""
    outside = _outside(tmp_path)
    before = _snapshot(outside)
    data = tmp_path / "var"
    a = Agent(data, stable=0.3)
    a.start(env={"TRANSFER_AGENT_CRASHPOINT": "deliver.planned"})
    drop(data / "dropbox" / "plan.txt", b"planned\n")
    a.proc.wait(60)
    a.out.close()
    a.err.close()
    job = a.rows()[0]
    assert job["status"] == "delivering"
    plan = json.loads(job["plan"])
    folder = data / plan["dir"]
    folder.mkdir(parents=True, exist_ok=True)
    output = next(f["name"] for f in plan["files"] if f["kind"] == "output")
    sidecar = next(f["name"] for f in plan["files"] if f["kind"] == "sidecar")
    os.symlink(outside / "victim.txt", folder / output)
    os.symlink(outside / "form.txt", folder / f".{sidecar}.tmp-{job['id']}")
    a.start()
    row = a.final_named("plan.txt")
    assert row["status"] == "delivered"
    delivered = json.loads(row["delivered"])
    assert output not in delivered and (folder / output).is_symlink()  # another name; theirs left alone
    for n in delivered:
        assert (folder / n).is_file() and not (folder / n).is_symlink()
    assert _snapshot(outside) == before
    refused = [x["path"] for x in _audit(data, "inbox.link_refused")]
    assert f"{plan['dir']}/{output}" in refused
    a.term()
