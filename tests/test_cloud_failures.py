"""Failures of the security cloud beyond a dying worker node (test_cloud_cluster.py): two serve nodes
racing for the same deliveries, the sandbox child of a worker killed, PostgreSQL and RabbitMQ crashed
and restarted (private instances on other ports: the machine's own are never restarted), and a worker
node cut off from the network in a network namespace. Each ends with: every accepted job has exactly
one outcome, nothing twice in the inbox, `audit verify` intact (Cluster.check)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.cloud_services import (
    AMQP_URL,
    NEED_AMQP,
    PG_URL,
    PrivatePostgres,
    PrivateRabbit,
    _descendants,
    amqp_up,
)
from tests.netns_relay import Switch
from tests.portal_helpers import ta, wait_done
from tests.smtp_helpers import ROUTES, free_port
from tests.test_cloud_cluster import AGENT, Cluster

HERE = Path(__file__).resolve().parent


def _stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] == "T"


def _wait(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _status(cluster: Cluster, name: str) -> str | None:
    try:
        return next((r["status"] for r in cluster.jobs() if r["name"] == name), None)
    except Exception:  # noqa: BLE001 - a database the test restarts is still starting up
        return None


def _audit_events(cluster: Cluster, event: str) -> list[str]:
    from transfer_agent import db
    conn = db.connect(cluster.db)
    try:
        return [r[0] for r in conn.execute("SELECT data FROM audit WHERE event = ? ORDER BY seq", (event,))]
    finally:
        conn.close()


def test_two_serve_nodes_race_for_the_same_deliveries(cluster: Cluster) -> None:
    """Serve node A freezes (SIGSTOP) right after linking a delivered file into the shared inbox, before
    committing it. Serve node B, on the same database, shared dir and inbox, started while A's lease
    still holds, takes over A's jobs once it runs out (B's maintenance thread, while B runs) and replays
    the same delivery. A, let go, finds its jobs gone: it commits nothing, writes nothing more and stops
    (75, for systemd to restart it); restarted with its folder, it works again, and both nodes then
    claim from the one queue at once."""
    cluster.worker()
    a = cluster.serve("nodeA", {"TRANSFER_AGENT_STOPPOINT": "deliver.linked"}, lease=8.0)
    cluster.drop("A-住民票.txt", "住民票の写し\n".encode(), node="nodeA")
    cluster.drop("A-evil.exe", b"MZ\x90\x00" + b"\x00" * 100, node="nodeA")
    _wait(lambda: _stopped(a.pid), 90, "serve node A to freeze in its first delivery")
    b = cluster.serve("nodeB")
    cluster.drop("B-届出.txt", "届出\n".encode(), node="nodeB")
    rows = cluster.wait_final(3)  # B finished A's delivery and everything else
    taken = _audit_events(cluster, "node.takeover")
    assert any('"fenced"' in t and "nodeA" in t for t in taken), taken
    os.kill(a.pid, signal.SIGCONT)
    assert a.wait(60) == 75, a.log.read_text()[-3000:]  # fenced: it stops instead of acting on stale state
    cluster.check(rows)
    st = ta("status", "--database", cluster.db, data_dir=cluster.shared)
    assert "nodeA#" in st.stdout and ": fenced, " in st.stdout and "taken over by" in st.stdout, st.stdout
    assert ": alive, lease " in st.stdout, st.stdout
    # A again (a new incarnation with the same folder), racing B for the next files.
    cluster.serve("nodeA")
    for i in range(3):
        cluster.drop(f"A-申請{i}.txt", f"申請 {i}\n".encode(), node="nodeA")
        cluster.drop(f"B-申請{i}.txt", f"申請 B{i}\n".encode(), node="nodeB")
    rows = cluster.wait_final(9)
    assert sorted(r["status"] for r in rows) == ["blocked"] + ["delivered"] * 8
    assert b.poll() is None
    cluster.check(rows)


def test_submissions_through_two_serve_nodes(cluster: Cluster) -> None:
    """REST submissions to both serve nodes' APIs: whichever node holds the `submissions` lease hands the
    staged files (shared dir) to intake and finalizes each submission once (one manifest, one
    api.submission_done); either node's status URL answers."""
    r = ta("apikey", "create", "--client", "電子申請", "--all-channels", "--database", cluster.db,
           data_dir=cluster.shared)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    cluster.worker()
    apis = []
    for node in ("nodeA", "nodeB"):
        cluster.serve(node)
        apis.append(json.loads((cluster.tmp / node / "state" / "agent.json").read_text())["api_url"])
    subs = []
    for i in range(4):
        c = httpx.Client(base_url=apis[i % 2], headers={"Authorization": f"Bearer {key}"}, timeout=30)
        resp = c.post("/api/v1/submissions", data={"氏名": f"山田{i}"},
                      files=[("files", (f"申請書{i}.txt", f"申請 {i}\n".encode()))])
        assert resp.status_code == 202, resp.text
        subs.append((c, resp.json()))
    for c, s in subs:
        assert [f["verdict"] for f in wait_done(c, s["status_url"])["files"]] == ["clean"]
    rows = cluster.wait_final(4)
    done = _audit_events(cluster, "api.submission_done")
    assert sorted(json.loads(d)["receipt"] for d in done) == sorted(s["receipt"] for _, s in subs), done
    assert len(list(cluster.inbox.rglob("manifest.json"))) == 4
    cluster.check(rows)


def _serve_smtp(cluster: Cluster, node: str) -> int:
    """A serve node with an SMTP port (another free one if the first was taken meanwhile)."""
    for _ in range(3):
        port = free_port()
        try:
            cluster.serve(node, extra=("--smtp-port", str(port)))
            return port
        except AssertionError as exc:
            if "Address already in use" not in str(exc):
                raise
    raise AssertionError("no free port for the SMTP intake")


def test_smtp_intake_on_two_serve_nodes(cluster: Cluster) -> None:
    """Mail to both serve nodes' SMTP intakes: whichever node holds the `mail-intake` lease quarantines
    it, the other node's intake waits for that and answers 250 on the first try (no 451 for want of
    its own core); each recipient's Maildir gets each mail once."""
    cluster.cfg.write_text(cluster.cfg.read_text("utf-8") + "\n[mail]\ndns = false\n" + ROUTES, "utf-8")
    cluster.worker()
    ports = [_serve_smtp(cluster, "nodeA"), _serve_smtp(cluster, "nodeB")]
    ids = []
    for i in range(4):
        msg = (f"From: taro@example.jp\r\nTo: kokuho@city.example.lg.jp\r\nSubject: mail {i}\r\n"
               f"Message-ID: <m{i}@example.jp>\r\n\r\n本文 {i}\r\n").encode()
        with smtplib.SMTP("127.0.0.1", ports[i % 2], timeout=60) as s:
            s.ehlo("mx.example.jp")
            s.mail("taro@example.jp")
            assert s.rcpt("kokuho@city.example.lg.jp")[0] == 250
            code, reply = s.data(msg)
        assert code == 250, reply  # at once, on either node
        ids.append(reply.decode().rsplit(" ", 1)[-1])
    rows = cluster.wait_final(4)
    assert [r["status"] for r in rows] == ["delivered"] * 4, rows
    box = cluster.inbox / "mail" / "kokuho@city.example.lg.jp"
    got = [p.read_bytes() for p in box.rglob("*") if p.is_file() and p.parent.name in ("new", "cur")]
    assert sorted(next(q for q in ids if q.encode() in m) for m in got) == sorted(ids), got
    anchors = [x for a in cluster.anchors for x in ("--anchor", str(a))]
    v = subprocess.run([AGENT, "audit", "verify", "--data-dir", str(cluster.shared), "--database", cluster.db,
                        *anchors], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr


def test_sandbox_child_killed_mid_file(cluster: Cluster) -> None:
    """kill -9 of the worker node's sandboxed cdr.worker child while it holds a file: that file is
    blocked (fail closed, one notice), the node starts a new child and goes on with the next files."""
    cluster.serve()
    node = cluster.worker({"CDR_TEST_PAUSE": "slow-:60"})
    cluster.drop("slow-1.txt", "時間のかかるファイル\n".encode())
    stage = cluster.shared / "work" / "stage"
    _wait(lambda: _status(cluster, "slow-1.txt") == "processing" and stage.is_dir()
          and any(p.is_file() for p in stage.rglob("*")), 90, "the file to reach the sandboxed worker")
    children = [pid for pid in _descendants(node.pid)
                if b"cdr.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert children, "no cdr.worker child found"
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    cluster.drop("fine-1.txt", "普通のファイル\n".encode())
    rows = cluster.wait_final(2)
    by = {r["name"]: r for r in rows}
    assert by["slow-1.txt"]["status"] == "blocked" and by["fine-1.txt"]["status"] == "delivered", rows
    assert node.poll() is None  # the worker node itself lives on
    cluster.check(rows)


def test_database_and_broker_crash_and_restart(tmp_path: Path) -> None:
    """PostgreSQL and then RabbitMQ killed (-9) and started again while files are in flight (one held
    in a worker at each crash): the nodes reconnect and every file is delivered once."""
    pg = PrivatePostgres()
    try:
        rmq = PrivateRabbit()
    except BaseException:
        pg.close()
        raise
    c = Cluster(tmp_path, f"{pg.url}?schema=cloud", broker=rmq.url)
    try:
        c.serve()
        c.worker({"CDR_TEST_PAUSE": "slow-:3"})
        c.drop("前.txt", "再起動の前\n".encode())
        c.wait_final(1)
        c.drop("slow-db.txt", "データベース再起動中\n".encode())
        _wait(lambda: _status(c, "slow-db.txt") == "processing", 60, "a file in flight")
        pg.kill()
        c.drop("db-down.txt", "停止中に届いた\n".encode())
        time.sleep(1)  # the nodes notice the database gone (what is measured is that they recover)
        pg.start()
        c.wait_final(3)
        c.drop("slow-mq.txt", "ブローカー再起動中\n".encode())
        _wait(lambda: _status(c, "slow-mq.txt") == "processing", 60, "a file in flight")
        rmq.kill()
        c.drop("mq-down.txt", "ブローカーの停止中に届いた\n".encode())  # not db-down.txt's bytes (reused)
        # The file in flight finishes (its result goes through the database) and several dispatch rounds
        # then meet the broker down: the next file waits for it (each failed hand-over used an attempt
        # before, and a few seconds' outage blocked a file as "interrupted 3 times").
        time.sleep(8)
        rmq.start()
        rows = c.wait_final(5, timeout=180)
        assert [r["status"] for r in rows] == ["delivered"] * 5, rows
        assert all(p.poll() is None for p in c.procs), "a node died"
        c.check(rows)
    finally:
        c.close()
        rmq.close()
        pg.close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                    reason="a network namespace needs root, unshare and ip")
def test_worker_cut_off_from_the_network(cluster: Cluster, tmp_path: Path) -> None:
    """A worker node in a network namespace of its own reaches RabbitMQ and PostgreSQL only through
    relays. Cut off while it holds a file: RabbitMQ gives the file to another worker node, which
    delivers it; the cut-off node, reconnected, neither delivers it again nor loses the next files."""
    if not PG_URL.startswith("postgresql://root@127.0.0.1:5432/") or AMQP_URL != "amqp://guest:guest@127.0.0.1:5672//":
        pytest.skip("the relays assume the default local PostgreSQL and RabbitMQ")
    socks = Path(f"/tmp/cdr-ns-{uuid.uuid4().hex[:8]}")
    socks.mkdir()
    mq, pg = Switch(socks / "amqp.sock", 5672), Switch(socks / "pg.sock", 5432)
    try:
        cluster.serve()
        wrap = ["unshare", "-n", "--", sys.executable, str(HERE / "netns_relay.py"),
                f"5672={mq.path}", f"5432={pg.path}", "--"]
        cut_off = cluster.worker({"CDR_TEST_PAUSE": "slow-:6", "PYTHONPATH": str(HERE.parent)}, wrap=wrap)
        cluster.drop("slow-cut.txt", "ネットワーク断\n".encode())
        stage = cluster.shared / "work" / "stage"
        _wait(lambda: _status(cluster, "slow-cut.txt") == "processing" and stage.is_dir()
              and any(p.is_file() for p in stage.rglob("*")), 90, "the cut-off node to hold the file")
        mq.cut()
        pg.cut()
        other = cluster.worker()
        rows = cluster.wait_final(1)
        assert rows[0]["status"] == "delivered" and rows[0]["attempts"] == 1, rows  # the broker's redelivery
        time.sleep(7)  # the cut-off node has finished its copy meanwhile (held by its partition)
        mq.restore()
        pg.restore()
        assert cut_off.poll() is None
        other.send_signal(signal.SIGTERM)
        assert other.wait(60) == 0
        for i in range(3):  # the reconnected node alone now: it takes the next files again
            cluster.drop(f"after-{i}.txt", f"再接続後 {i}\n".encode())
        rows = cluster.wait_final(4, timeout=180)
        assert [r["status"] for r in rows] == ["delivered"] * 4, rows
        assert cut_off.poll() is None
        cluster.check(rows)
    finally:
        mq.close()
        pg.close()
        shutil.rmtree(socks, ignore_errors=True)


@pytest.fixture
def cluster(pg_url, tmp_path):
    if not amqp_up():
        pytest.skip(NEED_AMQP)
    c = Cluster(tmp_path, pg_url)
    yield c
    c.close()



def test_dead_letter_of_another_serve_node(pg_url: str, tmp_path: Path) -> None:
    """Serve nodes share the dead-letter queue: a task that node A submitted and that was dead-lettered
    may reach node B. B turns it into a blocked result row for that attempt, which A's poll completes
    like a worker's; a dead letter for an attempt no longer current changes nothing."""
    if not amqp_up():
        pytest.skip(NEED_AMQP)
    from kombu import Producer

    from transfer_agent.cloud_executor import CeleryExecutor
    from transfer_agent.ledger import Ledger

    led = Ledger(pg_url, anchor_path=tmp_path / "b" / "state" / "audit.anchor")
    [jid, old] = led.insert_received_many([{"source": "api", "channel": "c", "name": n, "subdir": "",
                                            "drop_path": f"/{n}", "size": 1} for n in ("poison.doc", "old.doc")])
    with led.tx() as t:
        for j in (jid, old):
            t.set_hash(j, "0" * 64, 1)
            t.mark_queued(j, "quarantine/00/x")
            assert t.claim(j, 1, "p@1", 7, "e")  # node A's claims (a ledger without a node: no owner)
        t.requeue_if_processing(old)  # requeued since: attempt 1 is stale
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ex = CeleryExecutor(led, tmp_path / "shared", AMQP_URL, capacity=1, prefix=prefix)  # node B's
    try:
        dead = ex.app.conf.cloud_dead_queue
        with ex.app.connection_for_write() as conn:
            producer = Producer(conn.default_channel)
            for j in (old, jid):
                producer.publish({}, exchange=dead.exchange, routing_key=dead.routing_key, declare=[dead],
                                 headers={"id": f"{prefix}{j}-1"})
        _wait(lambda: led.one("SELECT 1 FROM cloud_results WHERE job_id = ?", (jid,)) is not None, 30,
              "the dead letter to become a result row")
        row = led.one("SELECT result, worker FROM cloud_results WHERE job_id = ? AND attempt = 1", (jid,))
        assert "WorkerKilledRepeatedly" in row["result"] and '"blocked"' in row["result"], row
        assert led.one("SELECT 1 FROM cloud_results WHERE job_id = ?", (old,)) is None
    finally:
        ex.close()
        with ex.app.connection_for_write() as conn:
            for q in (*ex.app.conf.task_queues, ex.app.conf.cloud_dead_queue):
                try:
                    q.bind(conn.default_channel).delete()
                except Exception:  # noqa: BLE001 - best effort
                    pass
        led.close()
