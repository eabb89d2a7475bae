"""Issue 15, guarantee 3: the audit trail cannot be rewritten unnoticed.

A real appliance processes a clean and a blocked file and a clerk's request for an original is
rejected; then copies of its data directory are tampered with as someone holding the database
file would: newest rows deleted, a row edited and every later hash recomputed, a blocked job flipped
to clean in the jobs table, a rejected request flipped to approved. `audit verify` must fail each
with a message that says what is wrong, and pass the untouched copy.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from tests.portal_helpers import add_user, start
from tests.test_appliance import EXE, drop, run_agent_cli
from tests.test_console_security import _csrf, _login
from transfer_agent.audit import row_hash


def _wait(data: Path, n: int) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30) as c:
            if c.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('delivered','blocked')").fetchone()[0] >= n:
                return
        time.sleep(0.1)
    raise AssertionError("jobs not final")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("anchor") / "data"
    app = start(data)
    try:
        add_user(data, "yamada", "clerk", "clerk-pass-1")
        add_user(data, "kacho", "approver", "approver-pass-1")
        drop(data / "dropbox" / "申請書.txt", "申請します\n".encode())
        drop(data / "dropbox" / "tool.exe", EXE)
        _wait(data, 2)
        # Ledger and state files are the service's alone.
        state = data / "state"
        assert _mode(state) == 0o700
        for name in ("ledger.sqlite3", "ledger.sqlite3-wal", "audit.anchor", "agent.json"):
            assert _mode(state / name) == 0o600, name
        with sqlite3.connect(state / "ledger.sqlite3") as c:
            # (an executable's original may never be requested: [release] never)
            jid = c.execute("SELECT id FROM jobs WHERE name = '申請書.txt'").fetchone()[0]
        clerk, approver = _login(app, "yamada", "clerk-pass-1"), _login(app, "kacho", "approver-pass-1")
        try:
            r = clerk.post(f"/deliveries/{jid}/request", data={"csrf": _csrf(clerk, f"/deliveries/{jid}"),
                                                               "reason": "内容確認のため必要です"})
            assert r.status_code == 303
            with sqlite3.connect(state / "ledger.sqlite3") as c:
                rid = c.execute("SELECT id FROM original_requests").fetchone()[0]
            r = approver.post(f"/approvals/{rid}", data={"csrf": _csrf(approver, "/approvals"), "decision": "reject",
                                                         "comment": "不要"})
            assert r.status_code == 303
        finally:
            clerk.close()
            approver.close()
    finally:
        app.stop()
    return data


def _copy(stopped: Path, tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    data = tmp_path / "copy"
    shutil.copytree(stopped, data, symlinks=True)
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    return data, conn


def _verify(data: Path):  # noqa: ANN202
    return run_agent_cli("audit", "verify", "--data-dir", str(data))


def _rechain(conn: sqlite3.Connection, start_seq: int) -> None:
    """What someone who knows the hash rule does after an edit: recompute every later hash."""
    prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", (start_seq - 1,)).fetchone()[0]
    for seq, ts, event, job_id, actor, data in conn.execute(
            "SELECT seq, ts, event, job_id, actor, data FROM audit WHERE seq >= ? ORDER BY seq", (start_seq,)
            ).fetchall():
        h = row_hash(prev, seq, ts, event, job_id, actor, data)
        conn.execute("UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h


def test_untouched_copy_passes(stopped: Path) -> None:
    v = _verify(stopped)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "audit.anchor" in v.stdout and "agree" in v.stdout


def test_deleting_the_newest_rows_is_detected(stopped: Path, tmp_path: Path) -> None:
    data, conn = _copy(stopped, tmp_path)
    top = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    conn.execute("DELETE FROM audit WHERE seq > ?", (top - 3,))
    conn.close()
    v = _verify(data)
    assert v.returncode == 1 and "anchor" in v.stderr and "missing from the database" in v.stderr, v.stderr


def test_editing_a_row_and_recomputing_later_hashes_is_detected(stopped: Path, tmp_path: Path) -> None:
    data, conn = _copy(stopped, tmp_path)
    # Make the blocked verdict clean everywhere: the audit row (chain recomputed) and the jobs table.
    seq, jid, d = conn.execute("SELECT seq, job_id, data FROM audit WHERE event = 'verdict' AND data LIKE"
                               " '%\"blocked\"%'").fetchone()
    conn.execute("UPDATE audit SET data = ? WHERE seq = ?", (d.replace('"blocked"', '"clean"'), seq))
    conn.execute("UPDATE jobs SET verdict = 'clean', status = 'delivered' WHERE id = ?", (jid,))
    seq2, d2 = conn.execute("SELECT seq, data FROM audit WHERE event = 'delivery' AND job_id = ?", (jid,)).fetchone()
    conn.execute("UPDATE audit SET data = ? WHERE seq = ?", (d2.replace('"blocked"', '"clean"'), seq2))
    _rechain(conn, seq)
    conn.close()
    v = _verify(data)
    assert v.returncode == 1 and "rewritten" in v.stderr, v.stderr
    assert "chain intact" in v.stdout  # the chain alone would have passed


def test_blocked_job_flipped_to_clean_in_the_jobs_table_is_named(stopped: Path, tmp_path: Path) -> None:
    data, conn = _copy(stopped, tmp_path)
    jid = conn.execute("SELECT id FROM jobs WHERE verdict = 'blocked'").fetchone()[0]
    conn.execute("UPDATE jobs SET verdict = 'clean', status = 'delivered' WHERE id = ?", (jid,))
    conn.close()
    v = _verify(data)
    assert v.returncode == 1, v.stdout
    assert f"job {jid} (tool.exe): the jobs table says delivered (clean), the audit trail says blocked" in v.stderr


def test_rejected_request_flipped_to_approved_is_named(stopped: Path, tmp_path: Path) -> None:
    data, conn = _copy(stopped, tmp_path)
    rid = conn.execute("SELECT id FROM original_requests").fetchone()[0]
    conn.execute("UPDATE original_requests SET status = 'approved' WHERE id = ?", (rid,))
    conn.close()
    v = _verify(data)
    assert v.returncode == 1 and f"original request {rid}: the table says approved" in v.stderr, v.stderr
    assert "audit trail says rejected" in v.stderr


def test_removed_anchor_is_not_silently_replaced(stopped: Path, tmp_path: Path) -> None:
    data, conn = _copy(stopped, tmp_path)
    conn.close()
    os.unlink(data / "state" / "audit.anchor")
    v = _verify(data)
    assert v.returncode == 1 and "audit.anchor is missing" in v.stderr, v.stderr
    # A restart does not make a fresh anchor that would bless whatever the database now says.
    from transfer_agent.ledger import Ledger
    Ledger(data / "state" / "ledger.sqlite3").close()
    assert not (data / "state" / "audit.anchor").exists()
