"""Node leases, job ownership and named leases (cluster.py) on SQLite and on the real PostgreSQL: two
serve nodes on one ledger never both claim a job, a node whose lease ran out loses its jobs to the
other and can then commit nothing for them, and a named lease has one holder at a time."""
from __future__ import annotations

import time

import pytest

from tests.cloud_services import ledger_target  # noqa: F401 - fixture
from transfer_agent.cluster import Fenced, Node
from transfer_agent.ledger import Ledger


def _ledger(target, tmp_path, name: str) -> Ledger:  # noqa: ANN001
    if not isinstance(target, str):
        target.parent.mkdir(parents=True, exist_ok=True)
    return Ledger(target, anchor_path=tmp_path / name / "state" / "audit.anchor")


def test_two_nodes_one_claim_and_takeover_fences_the_silent_one(ledger_target, tmp_path) -> None:  # noqa: F811
    la, lb = _ledger(ledger_target, tmp_path, "a"), _ledger(ledger_target, tmp_path, "b")
    try:
        a, b = Node(la, "host:/a", lease_seconds=1.0), Node(lb, "host:/b", lease_seconds=1.0)
        fenced: list[str] = []
        a.on_fenced = lambda: fenced.append("a")
        a.register()
        b.register()
        [jid] = la.insert_received_many([{"source": "api", "channel": "c", "name": "x.txt", "subdir": "",
                                          "drop_path": "/x", "size": 1}])
        with la.tx() as t:
            t.set_hash(jid, "0" * 64, 1)
            t.mark_queued(jid, "quarantine/00/x")
        # Both read the job queued at attempt 0; one claim wins.
        with la.tx() as t:
            won_a = t.claim(jid, 1, "p@1", 7, "e")
        with lb.tx() as t:
            won_b = t.claim(jid, 1, "p@1", 7, "e")
        assert (won_a, won_b) == (True, False)
        assert la.job(jid)["owner"] == a.id
        # B cannot commit a verdict for A's job.
        with pytest.raises(Fenced), lb.tx() as t:
            t.commit_verdict(jid, {"verdict": "clean"}, {"dir": "inbox/c", "files": []}, None, "inbox/c")
        a.renew()
        assert b.takeover() == []  # A is alive: nothing to take
        time.sleep(1.5)  # A falls silent past its lease (B renews)
        b.renew()
        assert not a.valid()
        rows = b.takeover()
        assert [r["id"] for r in rows] == [jid] and lb.job(jid)["owner"] == b.id
        # A, back, commits nothing and learns it was fenced.
        with pytest.raises(Fenced), la.tx() as t:
            t.commit_verdict(jid, {"verdict": "clean"}, {"dir": "inbox/c", "files": []}, None, "inbox/c")
        assert a.renew() is False and fenced == ["a"]
        with lb.tx() as t:
            t.commit_verdict(jid, {"verdict": "clean"}, {"dir": "inbox/c", "files": []}, None, "inbox/c")
            t.finish(jid, "delivered", [])
        assert lb.job(jid)["status"] == "delivered"
        # A named lease: one holder; the other gets it once it ran out, or once released.
        b.renew()  # (B's own lease is short in this test: keep it fresh on a loaded machine)
        assert b.lease("purge", 30.0) and b.lease("purge", 30.0)
        c = Node(la, "host:/c", lease_seconds=5.0)
        c.register()
        assert not c.lease("purge", 30.0)
        b.release("purge")
        assert c.lease("purge", 0.2) and not b.lease("purge", 30.0)
        time.sleep(0.4)
        b.renew()
        assert b.lease("purge", 30.0)
        # A restarted with the same folder takes over its earlier incarnation at once.
        a2 = Node(la, "host:/a", lease_seconds=30.0)
        a2.register()
        a2.takeover()
        states = {r["id"]: r["state"] for r in la.query("SELECT id, state FROM nodes")}
        assert states[a.id] == "fenced" and states[a2.id] == "alive" and states[b.id] == "alive"
        assert la.verify_audit().ok
    finally:
        la.close()
        lb.close()
