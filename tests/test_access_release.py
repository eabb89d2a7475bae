"""Releasing originals is safe by policy (issue 15, guarantee 8), on the ledger a running appliance uses:
`[release]` validated, `never` families refused even for a request made before the policy said so,
another channel's request not decidable, and the originals that older versions copied into shared
delivery folders listed and removed by `transfer-agent originals legacy`.
(The console pages themselves: tests/test_console_browser.py; the channels: tests/test_access_channels.py.)
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from cdr.policy import Policy, PolicyError, load_policy
from tests.portal_helpers import ta
from transfer_agent.channels import Scope
from transfer_agent.console import originals
from transfer_agent.ledger import Ledger
from transfer_agent.portal_db import ensure_schema
from transfer_agent.users import add_user

EXE = b"MZ" + b"\0" * 300


def test_release_section_is_validated():
    base = {"name": "x", "version": "1"}
    p = Policy.from_dict({**base, "release": {"never": ["executable", "archive"], "download_hours": 2}})
    assert p.release.never == ("executable", "archive") and p.release.download_hours == 2.0
    assert load_policy("default").release.never == ("executable",)
    for bad in ({"never": ["exe"]}, {"never": "executable"}, {"comment_required": ["dangerous"]},
                {"download_hours": 0}, {"download_hours": True}, {"forever": True}):
        with pytest.raises(PolicyError, match="release"):
            Policy.from_dict({**base, "release": bad})


def _job(ledger: Ledger, data: Path, name: str, body: bytes, channel: str, result: dict) -> int:
    """A final blocked job as the appliance's steps leave it (through the ledger's own methods)."""
    sha = hashlib.sha256(body).hexdigest()
    q = data / "quarantine" / sha
    q.parent.mkdir(parents=True, exist_ok=True)
    q.write_bytes(body)
    [jid] = ledger.insert_received_many([{"source": "dropbox", "channel": channel, "name": name, "subdir": "",
                                          "drop_path": name}])
    with ledger.tx() as t:
        t.set_hash(jid, sha, len(body))
        t.mark_queued(jid, f"quarantine/{sha}")
        t.commit_verdict(jid, result, {"files": []}, None, f"inbox/{channel}/2026-01-01")
        t.finish(jid, "blocked", [])
    return jid


@pytest.fixture
def ledger(tmp_path):
    data = tmp_path / "data"
    lg = Ledger(data / "state" / "ledger.sqlite3")
    ensure_schema(lg.path)
    try:
        yield lg, data
    finally:
        lg.close()  # idempotent


def test_never_released_even_when_requested_before_the_rule(ledger):
    lg, data = ledger
    exe = {"source": "t.zip", "family": "archive", "verdict": "sanitized", "threats": [],
           "children": [{"source": "tool.exe", "family": "executable", "verdict": "blocked",
                         "threats": [{"id": "file.executable", "location": "tool.exe", "action": "blocked"}]}]}
    jid = _job(lg, data, "t.zip", EXE, "kokuho", exe)
    clerk = add_user(lg, "clerk", "clerk", "clerk-pass-1", scope=Scope(False, ["kokuho"]))
    boss = add_user(lg, "boss", "approver", "boss-pass-1", scope=Scope(False, ["kokuho"]))
    other = add_user(lg, "other", "approver", "other-pass-1", scope=Scope(False, ["zeimu"]))
    default = load_policy("default")
    with pytest.raises(originals.RequestError) as e:
        originals.request_original(lg, clerk, jid, "中の実行ファイルが必要", lambda _c: default)
    assert e.value.code == "never_release"
    # Asked while the policy still allowed it (here: a policy without the rule) ...
    lax = Policy.from_dict({"name": "lax", "version": "1", "release": {"never": []}})
    rid = originals.request_original(lg, clerk, jid, "中の実行ファイルが必要", lambda _c: lax)
    # ... another channel's approver cannot even see it, and under today's policy no one approves it.
    with pytest.raises(originals.RequestError) as e:
        originals.decide(lg, data, other, rid, True, "承認", lambda _c: lax)
    assert e.value.code == "not_found"
    with pytest.raises(originals.RequestError) as e:
        originals.decide(lg, data, boss, rid, True, "業務上必要", lambda _c: default)
    assert e.value.code == "never_release"
    # A sanitized file's approval needs a comment; once approved, only its requester downloads it, in time.
    txt = {"source": "a.txt", "family": "text", "verdict": "sanitized", "threats": []}
    jid2 = _job(lg, data, "a.txt", "本文\n".encode(), "kokuho", {**txt})
    rid2 = originals.request_original(lg, clerk, jid2, "原本の確認が必要", lambda _c: default)
    with pytest.raises(originals.RequestError) as e:
        originals.decide(lg, data, boss, rid2, True, "  ", lambda _c: default)
    assert e.value.code == "comment_required_danger"
    out = originals.decide(lg, data, boss, rid2, True, "確認済み", lambda _c: default)
    assert out["status"] == "approved" and out["expires_at"] > time.time() + 23 * 3600
    with pytest.raises(originals.Unavailable) as e2:
        originals.open_original(lg, data, boss, rid2, lambda _c: default)
    assert e2.value.status == 404
    path, name = originals.open_original(lg, data, clerk, rid2, lambda _c: default)
    assert path.read_bytes() == "本文\n".encode() and name == "a.txt"
    # A quarantined original that no longer matches its hash is not handed out.
    path.write_bytes(b"tampered")
    with pytest.raises(originals.Unavailable) as e2:
        originals.open_original(lg, data, clerk, rid2, lambda _c: default)
    assert e2.value.status == 409
    assert not (data / "inbox").exists()  # an approval writes nowhere


def test_legacy_copies_in_shared_folders_are_listed_and_removed(ledger):
    """Approvals of older versions copied the original to inbox/<channel>/<date>/originals/; the requests
    are rows as those versions wrote them."""
    lg, data = ledger
    clerk = add_user(lg, "clerk", "clerk", "clerk-pass-1", scope=Scope(True))
    boss = add_user(lg, "boss", "approver", "boss-pass-1", scope=Scope(True))
    folder = data / "inbox" / "kokuho" / "2026-01-01" / "originals"
    folder.mkdir(parents=True)
    rows = []
    for name, body, there in (("a.txt", b"aaa\n", b"aaa\n"), ("b.txt", b"bbb\n", b"replaced by a clerk\n"),
                              ("c.txt", b"ccc\n", None)):
        jid = _job(lg, data, name, body, "kokuho", {"source": name, "family": "text", "verdict": "clean"})
        if there is not None:
            (folder / f"ORIGINAL_{name}").write_bytes(there)
        with lg.tx() as t:
            t.execute("INSERT INTO original_requests(job_id, requester_id, reason, status, created_at, approver_id,"
                      " comment, decided_at, released) VALUES (?,?,?,?,?,?,?,?,?)",
                      (jid, clerk.id, "必要", "approved", time.time(), boss.id, "ok", time.time(),
                       f"inbox/kokuho/2026-01-01/originals/ORIGINAL_{name}"))
        rows.append(name)
    lg.close()
    listed = json.loads(ta("originals", "legacy", "--json", data_dir=data).stdout)
    assert [r["state"] for r in listed] == ["present", "changed", "gone"]
    r = ta("originals", "legacy", "--remove", data_dir=data)
    assert r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr
    assert not (folder / "ORIGINAL_a.txt").exists()
    assert (folder / "ORIGINAL_b.txt").read_bytes() == b"replaced by a clerk\n"  # not ours: kept
    with sqlite3.connect(data / "state" / "ledger.sqlite3") as db:
        events = [json.loads(d) for (d,) in db.execute("SELECT data FROM audit WHERE event = 'original.legacy_removed'")]
    assert [e["path"] for e in events] == ["inbox/kokuho/2026-01-01/originals/ORIGINAL_a.txt"]
