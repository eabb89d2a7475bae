"""The security cloud on the real PostgreSQL and RabbitMQ: a serve node and worker nodes as real
processes, killed the hard way. Each case ends with: every accepted job has exactly one outcome,
nothing twice in the inbox, `audit verify` intact."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.cloud_services import AMQP_URL, NEED_AMQP, amqp_up

ROOT = Path(__file__).resolve().parent.parent
AGENT = str(Path(sys.executable).parent / "transfer-agent")
CONFIG = """
[service]
workers = 2
broker_prefix = "{prefix}"
shutdown_grace_seconds = 5.0
node_lease_seconds = {lease}
[intake]
stable_seconds = 0.5
close_settle_seconds = 0.3
tick_seconds = 0.05
rescan_seconds = 0.5
[delivery]
fsync = false
"""


class Cluster:
    """Serve and worker nodes as real processes on one database and shared dir. `serve(node)` starts a
    serve node with a folder of its own (--data-dir) and the shared LGWAN inbox (--inbox)."""

    def __init__(self, tmp: Path, pg_url: str, broker: str = AMQP_URL, lease: float = 3.0) -> None:
        self.tmp = tmp
        # A node frozen by a test (SIGSTOP) inside a write transaction holds the others up for this long at most.
        self.db = pg_url + "&options=-c%20idle_in_transaction_session_timeout%3D5s"
        self.broker = broker
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        self.shared = tmp / "shared"
        self.inbox = self.shared / "inbox"
        self.cfg = tmp / "cloud.toml"
        self.cfg.write_text(CONFIG.format(prefix=self.prefix, lease=lease), "utf-8")
        self.procs: list[subprocess.Popen] = []
        self.anchors: list[Path] = []  # each serve node's
        self.n = 0

    def _spawn(self, args: list[str], env: dict | None = None, wrap: list[str] | None = None) -> subprocess.Popen:
        self.n += 1
        log = open(self.tmp / f"proc{self.n}.log", "wb")  # noqa: SIM115 - the child keeps it
        p = subprocess.Popen([*(wrap or []), AGENT, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                             env={**os.environ, **(env or {})})
        p.log = self.tmp / f"proc{self.n}.log"  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    def serve(self, node: str | None = None, env: dict | None = None, lease: float | None = None,
              extra: tuple[str, ...] = ()) -> subprocess.Popen:
        cfg = self.cfg
        if lease is not None:  # this node's own lease length
            cfg = self.tmp / f"cloud-lease{lease:g}.toml"
            cfg.write_text(CONFIG.format(prefix=self.prefix, lease=lease), "utf-8")
        args = ["serve", "--shared-dir", str(self.shared), "--config", str(cfg), "--api-port", "0",
                "--console-port", "0", "--database", self.db, "--broker", self.broker, *extra]
        if node:
            self.inbox = self.tmp / "lgwan-inbox"
            args += ["--data-dir", str(self.tmp / node), "--inbox", str(self.inbox)]
        p = self._spawn(args, env)
        state = (self.tmp / node if node else self.shared) / "state"
        if state / "audit.anchor" not in self.anchors:
            self.anchors.append(state / "audit.anchor")
        info = state / "agent.json"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            assert p.poll() is None, p.log.read_text()[-3000:]
            if info.is_file() and json.loads(info.read_text() or "{}").get("pid") == p.pid:
                return p
            time.sleep(0.1)
        raise AssertionError("serve node did not start")

    def worker(self, env: dict | None = None, wrap: list[str] | None = None) -> subprocess.Popen:
        return self._spawn(["worker", "--data-dir", str(self.tmp / f"node{self.n + 1}"), "--config", str(self.cfg),
                            "--database", self.db, "--broker", self.broker, "--shared-dir", str(self.shared),
                            "--concurrency", "1"], env, wrap)

    def drop(self, name: str, body: bytes, node: str | None = None) -> None:
        d = (self.tmp / node if node else self.shared) / "dropbox"
        d.mkdir(parents=True, exist_ok=True)
        (d / f".{name}.part").write_bytes(body)
        os.rename(d / f".{name}.part", d / name)

    def jobs(self) -> list[dict]:
        from transfer_agent import db
        conn = db.connect(self.db)
        try:
            return [dict(r) for r in conn.execute("SELECT id, name, status, verdict, attempts, result FROM jobs"
                                                  " ORDER BY id")]
        finally:
            conn.close()

    def wait_final(self, n: int, timeout: float = 120, tick=None) -> list[dict]:  # noqa: ANN001
        end = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < end:
            if tick:
                tick()
            try:
                rows = self.jobs()
            except Exception:  # noqa: BLE001 - a database the test restarts is still starting up
                time.sleep(0.3)
                continue
            if len(rows) >= n and all(r["status"] in ("delivered", "blocked") for r in rows):
                return rows
            time.sleep(0.3)
        raise AssertionError(f"not all final: {rows}")

    def check(self, rows: list[dict]) -> None:
        """One outcome per job, nothing twice, no temporary file, the audit chain and tables intact."""
        files = [p for p in self.inbox.rglob("*") if p.is_file()]
        assert not [p for p in files if p.name.startswith(".")], files
        for r in rows:
            if r["status"] == "blocked":
                hits = [p for p in files if p.name == r["name"] + ".blocked.json"]
            else:
                hits = [p for p in files if p.name == r["name"]]
            assert len(hits) == 1, (r, sorted(p.name for p in files))
        assert not [p for p in files if " (2)" in p.name], files
        anchors = [x for a in self.anchors for x in ("--anchor", str(a))]
        v = subprocess.run([AGENT, "audit", "verify", "--data-dir", str(self.shared), "--database", self.db, *anchors],
                           capture_output=True, text=True, timeout=120)
        assert v.returncode == 0, v.stdout + v.stderr

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # a node a test froze
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        from transfer_agent.cloud_tasks import make_app
        app = make_app(self.broker, self.prefix)
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1)
                for q in (*app.conf.task_queues, app.conf.cloud_dead_queue):
                    try:
                        q.bind(conn.default_channel).delete()
                    except Exception:  # noqa: BLE001 - best effort
                        pass
        except Exception:  # noqa: BLE001 - a private broker already gone
            pass


@pytest.fixture
def cluster(pg_url, tmp_path):
    if not amqp_up():
        pytest.skip(NEED_AMQP)
    c = Cluster(tmp_path, pg_url)
    yield c
    c.close()


def test_worker_node_killed_mid_task_another_takes_over(cluster: Cluster) -> None:
    cluster.serve()
    doomed = cluster.worker({"TRANSFER_AGENT_CRASHPOINT": "worker.task"})  # kill -9 of itself in its first task
    for i in range(4):
        cluster.drop(f"申請{i}.txt", f"住民票 {i}\n".encode())
    cluster.drop("evil.exe", b"MZ\x90\x00" + b"\x00" * 100)
    assert doomed.wait(90) == -signal.SIGKILL
    cluster.worker()
    rows = cluster.wait_final(5)
    assert sorted(r["status"] for r in rows) == ["blocked"] + ["delivered"] * 4
    cluster.check(rows)


def test_poisoned_file_ends_blocked_after_the_delivery_limit(cluster: Cluster) -> None:
    """A file that kills every worker node taking it is redelivered a bounded number of times, then
    dead-lettered and blocked; other files go on (the nodes are restarted, as systemd would)."""
    cluster.serve()
    env = {"TRANSFER_AGENT_POISON": "poison-"}
    node = [cluster.worker(env)]
    deaths = []

    def supervise() -> None:
        if node[0].poll() is not None:
            deaths.append(node[0].returncode)
            node[0] = cluster.worker(env)

    cluster.drop("poison-1.txt", b"kills its worker\n")
    cluster.drop("fine.txt", b"harmless\n")
    rows = cluster.wait_final(2, timeout=240, tick=supervise)
    by = {r["name"]: r for r in rows}
    assert by["poison-1.txt"]["status"] == "blocked" and by["fine.txt"]["status"] == "delivered"
    # Dead-lettered by RabbitMQ after the quorum queue's delivery limit, on the first attempt.
    assert "WorkerKilledRepeatedly" in by["poison-1.txt"]["result"] and by["poison-1.txt"]["attempts"] == 1
    assert 2 <= len(deaths) <= 6 and all(d == -signal.SIGKILL for d in deaths), deaths
    cluster.check(rows)


def test_serve_node_killed_during_delivery_recovers_exactly_once(cluster: Cluster) -> None:
    """kill -9 of the serve node between linking a file into the inbox and committing it; the next
    serve node replays the committed delivery plan: no second copy, no loss."""
    cluster.worker()
    first = cluster._spawn(["serve", "--shared-dir", str(cluster.shared), "--config", str(cluster.cfg),
                            "--api-port", "0", "--console-port", "0", "--database", cluster.db, "--broker", AMQP_URL],
                           {"TRANSFER_AGENT_CRASHPOINT": "deliver.linked:2"})
    time.sleep(3)
    for i in range(3):
        cluster.drop(f"届出{i}.txt", f"届出 {i}\n".encode())
    assert first.wait(120) == -signal.SIGKILL
    cluster.serve()
    rows = cluster.wait_final(3)
    assert [r["status"] for r in rows] == ["delivered"] * 3
    cluster.check(rows)
