"""`python -m benchmarks --cluster`: the mix through the security cloud, against the one-box appliance.

Real processes on this machine: `transfer-agent serve --database postgresql://... --broker amqp://...
--shared-dir DIR` and 1, then 2 `transfer-agent worker` nodes (`--concurrency 1`), node k pinned to
core k with `taskset`; the serve node, RabbitMQ and PostgreSQL are not pinned, so they share those
cores, as the issue asks. The same mix goes through `transfer-agent serve --data-dir DIR --workers N`
(SQLite ledger, local pool) in the same rounds, in rotating order.

Per run: a fresh shared directory and a fresh PostgreSQL schema (inside a scratch database created
for the benchmark and dropped at the end) and a unique queue prefix (queues deleted afterwards), so
nothing is reused from an earlier run and other users of the same servers are not disturbed. A
small warm-up mix of other files goes first (each worker imports its format modules once), then
the mix is renamed into the drop folder. Reported per run:

- files/s = files / (last `finished_at` - first `received_at` in the ledger): intake to last
  verdict, so the drop folder's settle time is not what is measured;
- CPU seconds, from /proc/PID/stat (utime + stime) sampled every 0.2 s from just before the drop to
  the last verdict, of: the serve node (and its internet-side process; its sandboxed workers apart
  in one-box mode), the PostgreSQL backends connected to the scratch database (whoever opened
  them: serve, internet side, worker nodes), RabbitMQ's beam.smp, each worker node's own process
  (Celery consumer, ledger) and the sandboxed `cdr.worker` children that do the CDR work.

Coordination cost per job = (serve + PostgreSQL + RabbitMQ) CPU-ms / files; worker-node overhead is
reported beside it. RabbitMQ is the machine's shared broker: its figure includes whatever else used
it meanwhile, so its idle rate over 2 s before each drop is reported too.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import corpus, measure

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
TICK = os.sysconf("SC_CLK_TCK")

CONFIG = """
[service]
workers = {capacity}
broker_prefix = "{prefix}"
shutdown_grace_seconds = 5.0
[intake]
stable_seconds = 1.0
close_settle_seconds = 0.2
tick_seconds = 0.05
"""


def _log(msg: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- services

def services_down() -> str | None:
    """Why the cluster cannot be measured here (PostgreSQL or RabbitMQ unreachable), or None."""
    import socket

    for url, port, what in ((PG_URL, 5432, "PostgreSQL"), (AMQP_URL, 5672, "RabbitMQ")):
        u = urlsplit(url)
        try:
            with socket.create_connection((u.hostname or "127.0.0.1", u.port or port), timeout=2):
                pass
        except OSError:
            return f"{what} is not reachable at {u.hostname}:{u.port or port} (BENCH_PG_URL / BENCH_AMQP_URL)"
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=5) as c:
            c.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure: say it
        return f"PostgreSQL at {PG_URL} refused us: {exc}"
    return None


class ScratchDatabase:
    """CREATE DATABASE bench_...; dropped (WITH FORCE) on close."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as c:
            c.execute(f"CREATE DATABASE {self.name}")
        u = urlsplit(PG_URL)
        self.url = urlunsplit((u.scheme, u.netloc, "/" + self.name, "", ""))

    def close(self) -> None:
        import psycopg

        try:
            with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as c:
                c.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        except Exception as exc:  # noqa: BLE001 - say so; the name says what it was
            _log(f"could not drop the scratch database {self.name}: {exc}")


def _queue_consumers(url: str, queue: str) -> int:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).consumer_count)
    except Exception:  # noqa: BLE001 - not declared yet
        return -1


def _delete_queues(url: str, prefix: str) -> None:
    from kombu import Connection

    from transfer_agent.cloud_tasks import DEAD_EXCHANGE, DEAD_QUEUE, QUEUE

    try:
        with Connection(url, connect_timeout=5) as conn:
            ch = conn.default_channel
            for q in (QUEUE, DEAD_QUEUE):
                ch.queue_delete(prefix + q)
            for x in (QUEUE, DEAD_EXCHANGE):
                ch.exchange_delete(prefix + x)
    except Exception as exc:  # noqa: BLE001 - leftover queues are empty; say so
        _log(f"could not delete the queues {prefix}*: {exc}")


# --------------------------------------------------------------------------- CPU from /proc

def _proc(pid: int) -> tuple[int, float] | None:
    """(ppid, utime + stime in seconds) of a live process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rabbitmq_pids() -> list[int]:
    """RabbitMQ's Erlang VM (beam.smp running `-s rabbit boot`)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() != "beam.smp":
                        continue
            except OSError:
                continue
            if "rabbit" in _cmdline(int(d)):
                out.append(int(d))
    return out


class CpuSampler:
    """CPU seconds per group of processes between start() and stop(), sampled every `every` seconds
    so that a process that exits meanwhile (a PostgreSQL backend) still counts up to its last sample.

    Groups: serve (the serve node and its descendants but `cdr.worker`), work (`cdr.worker`
    processes under a serve or worker node), worker_node (a worker node and its other descendants),
    postgres (backends of `database`, except `exclude` pids), rabbitmq (`broker_pids`)."""

    def __init__(self, serve_pid: int, worker_pids: list[int], database: str | None, exclude: set[int],
                 broker_pids: list[int], every: float = 0.2) -> None:
        self.serve_pid, self.worker_pids, self.broker_pids = serve_pid, worker_pids, set(broker_pids)
        self.database, self.exclude, self.every = database, exclude, every
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cmd: dict[int, str] = {}

    def _classify(self) -> dict[int, tuple[str, float]]:
        procs: dict[int, tuple[int, float]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                p = _proc(int(d))
                if p is not None:
                    procs[int(d)] = p
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        out: dict[int, tuple[str, float]] = {}

        def cmd(pid: int) -> str:
            if pid not in self._cmd:
                self._cmd[pid] = _cmdline(pid)
            return self._cmd[pid]

        def walk(root: int, own: str) -> None:
            stack = [root]
            while stack:
                pid = stack.pop()
                if pid not in procs:
                    continue
                out[pid] = ("work" if "cdr.worker" in cmd(pid) else own, procs[pid][1])
                stack.extend(children.get(pid, []))

        walk(self.serve_pid, "serve")
        for w in self.worker_pids:
            walk(w, "worker_node")
        for pid, (_, cpu) in procs.items():
            if pid in out or pid in self.exclude:
                continue
            c = cmd(pid)
            # "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE" (the scratch database's name is unique)
            if self.database and c.startswith("postgres:") and self.database in c.split():
                out[pid] = ("postgres", cpu)
            elif pid in self.broker_pids:
                out[pid] = ("rabbitmq", cpu)
        return out

    def sample(self, first: bool = False) -> None:
        for pid, (grp, cpu) in self._classify().items():
            if first:
                self.first[pid] = cpu
            else:
                self.first.setdefault(pid, 0.0)  # started after the first sample: all of it is ours
            self.last[pid] = cpu
            self.group[pid] = grp

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> None:
        self.sample(first=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.sample()
        totals: dict[str, float] = {}
        for pid, grp in self.group.items():
            totals[grp] = totals.get(grp, 0.0) + max(0.0, self.last[pid] - self.first[pid])
        return totals


def beam_rate(pids: list[int], seconds: float = 2.0) -> float:
    """RabbitMQ's CPU seconds per second now, at rest (what other users of a shared broker cost)."""
    a = sum((_proc(p) or (0, 0.0))[1] for p in pids)
    time.sleep(seconds)
    b = sum((_proc(p) or (0, 0.0))[1] for p in pids)
    return (b - a) / seconds


# --------------------------------------------------------------------------- a broker of our own

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """A RabbitMQ node of our own on a free loopback port (the machine's rabbitmq-server, run with a
    private node name, data directory and cookie), so that the broker's CPU is this benchmark's alone;
    the machine's own broker on 5672 is not touched."""

    def __init__(self, work: Path, timeout: float = 90.0) -> None:
        d = work / "rabbitmq"
        d.mkdir(parents=True)
        port, dist = _free_port(), _free_port()
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
        env = {**os.environ, "HOME": str(d), "RABBITMQ_NODENAME": f"cdrbench{os.getpid()}@localhost",
               "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist),
               "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
               "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"), "RABBITMQ_PID_FILE": str(d / "pid")}
        self.log = d / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([RABBITMQ_SERVER], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=d, start_new_session=True)
        self.url = f"amqp://guest:guest@127.0.0.1:{port}//"
        from kombu import Connection

        end = time.monotonic() + timeout
        while True:
            try:
                with Connection(self.url, connect_timeout=2) as conn:
                    conn.connect()
                break
            except Exception:  # noqa: BLE001 - still starting
                if self.proc.poll() is not None or time.monotonic() > end:
                    self.close()
                    raise RuntimeError("own RabbitMQ did not start: "
                                       + self.log.read_bytes()[-600:].decode(errors="replace")) from None
                time.sleep(0.5)

    def pids(self) -> list[int]:
        """The Erlang VM(s) of our node: beam.smp in our session."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.proc.pid and comm == "beam.smp":  # session id
                out.append(int(d))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session only
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def own_broker_possible() -> bool:
    return os.access(RABBITMQ_SERVER, os.X_OK)


# --------------------------------------------------------------------------- one run

def _exe() -> str:
    return str(Path(sys.executable).parent / "transfer-agent")


def _stop_proc(p: subprocess.Popen, grace: float = 30.0) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # its own session (start_new_session): only its processes
            p.wait(10)


class Run:
    """One appliance (one-box, or the cloud with `nodes` worker nodes) in a fresh folder."""

    def __init__(self, work: Path, mode: str, nodes: int, db: ScratchDatabase | None, tag: str,
                 broker: str = AMQP_URL) -> None:
        self.broker = broker
        self.work = work / tag
        self.work.mkdir(parents=True)
        self.mode, self.nodes = mode, nodes
        self.data = self.work / ("shared" if mode == "cluster" else "data")
        (self.data / "dropbox" / "default").mkdir(parents=True)
        self.prefix = f"bench{uuid.uuid4().hex[:8]}."
        self.schema = f"r_{uuid.uuid4().hex[:10]}"
        self.db_url = f"{db.url}?schema={self.schema}" if db else None
        self.dbname = db.name if db else None
        # Cloud: two tasks per worker node in flight, so a node has its next file while the serve node
        # notices the last result (it polls the ledger every 0.1 s).
        cap = 2 * nodes if mode == "cluster" else nodes
        self.cfg = self.work / "bench.toml"
        self.cfg.write_text(CONFIG.format(capacity=cap, prefix=self.prefix), "utf-8")
        self.procs: list[subprocess.Popen] = []
        self.serve: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._db = None

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.work, start_new_session=True)
        self.procs.append(p)
        return p

    def tail(self, name: str) -> str:
        f = self.work / f"{name}.log"
        return f.read_bytes()[-600:].decode(errors="replace") if f.exists() else ""

    def start(self, timeout: float = 90.0) -> None:
        args = [_exe(), "serve", "--config", str(self.cfg), "--api-port", "0", "--console-port", "0"]
        if self.mode == "cluster":
            args += ["--shared-dir", str(self.data), "--database", self.db_url, "--broker", self.broker]
        else:
            args += ["--data-dir", str(self.data)]
        self.serve = self._spawn(args, "serve")
        agent = self.data / "state" / "agent.json"
        end = time.monotonic() + timeout
        while True:
            if self.serve.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"serve did not start (exit {self.serve.poll()}): {self.tail('serve')}")
            try:
                if json.loads(agent.read_text("utf-8")).get("pid") == self.serve.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        if self.mode != "cluster":
            return
        ncpu = os.cpu_count() or 1
        for k in range(self.nodes):
            self.workers.append(self._spawn(
                ["taskset", "-c", str(k % ncpu), _exe(), "worker", "--data-dir", str(self.work / f"node{k}"),
                 "--config", str(self.cfg), "--database", self.db_url, "--broker", self.broker,
                 "--shared-dir", str(self.data), "--concurrency", "1"], f"worker{k}"))
        queue = self.prefix + "cdr"
        while _queue_consumers(self.broker, queue) < self.nodes:
            for k, w in enumerate(self.workers):
                if w.poll() is not None:
                    raise RuntimeError(f"worker node {k} exited {w.returncode}: {self.tail(f'worker{k}')}")
            if time.monotonic() > end:
                raise RuntimeError(f"worker nodes did not connect: {self.tail('worker0')}")
            time.sleep(0.2)

    # ledger, read from this process (its own PostgreSQL backend is left out of the CPU figures)
    def _ledger(self):  # noqa: ANN202 - sqlite3 or psycopg connection
        if self._db is None:
            if self.mode == "cluster":
                import psycopg

                self._db = psycopg.connect(self.db_url.split("?")[0], autocommit=True)
                self._db.execute(f"SET search_path TO {self.schema}")
            else:
                self._db = sqlite3.connect(f"file:{self.data / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True,
                                           timeout=30)
        return self._db

    def own_backend(self) -> set[int]:
        if self.mode != "cluster":
            return set()
        return {int(self._ledger().execute("SELECT pg_backend_pid()").fetchone()[0])}

    def finished(self, after_id: int) -> tuple[int, int, float | None, float | None, int]:
        """(jobs, final jobs, first received_at, last finished_at, blocked) with id > after_id."""
        sql = ("SELECT COUNT(*), SUM(CASE WHEN status IN ('delivered','blocked') THEN 1 ELSE 0 END),"
               " MIN(received_at), MAX(finished_at), SUM(CASE WHEN verdict = 'blocked' THEN 1 ELSE 0 END)"
               f" FROM jobs WHERE id > {int(after_id)}")
        try:
            n, done, t0, t1, blocked = self._ledger().execute(sql).fetchone()
        except Exception:  # noqa: BLE001 - the table is made at the serve node's start; SQLite busy
            return 0, 0, None, None, 0
        return int(n or 0), int(done or 0), t0, t1, int(blocked or 0)

    def max_id(self) -> int:
        row = self._ledger().execute("SELECT MAX(id) FROM jobs").fetchone()
        return int(row[0] or 0)

    def drop(self, items: list[corpus.Item], tag: str) -> None:
        drop = self.data / "dropbox" / "default"
        for it in items:  # write to an ignored name, then rename into place (as copy tools do)
            tmp = drop / f".{tag}_{it.family}_{it.path.name}.part"
            shutil.copyfile(it.path, tmp)
            os.rename(tmp, drop / f"{tag}_{it.family}_{it.path.name}")

    def wait(self, after_id: int, n: int, timeout: float) -> tuple[int, int, float | None, float | None, int]:
        end = time.monotonic() + timeout
        while True:
            got = self.finished(after_id)
            if got[1] >= n or time.monotonic() > end:
                return got
            if self.serve is not None and self.serve.poll() is not None:
                raise RuntimeError(f"serve exited {self.serve.returncode}: {self.tail('serve')}")
            time.sleep(0.05)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        for w in self.workers:
            _stop_proc(w)
        if self.serve is not None:
            _stop_proc(self.serve)
        if self.mode == "cluster":
            _delete_queues(self.broker, self.prefix)


def one_run(work: Path, mode: str, nodes: int, db: ScratchDatabase | None, warm: list[corpus.Item],
            items: list[corpus.Item], timeout: float, tag: str, broker: str = AMQP_URL,
            broker_pids: list[int] | None = None) -> dict:
    run = Run(work, mode, nodes, db, tag, broker)
    beam = broker_pids if broker_pids is not None else rabbitmq_pids()
    try:
        run.start()
        if warm:
            run.drop(warm, "warm")
            got = run.wait(0, len(warm), timeout)
            if got[1] < len(warm):
                raise RuntimeError(f"warm-up: {got[1]}/{len(warm)} files finished in {timeout:g} s")
        after = run.max_id()
        idle_beam = beam_rate(beam, 2.0) if mode == "cluster" else None
        sampler = CpuSampler(run.serve.pid, [w.pid for w in run.workers], run.dbname, run.own_backend(),
                             beam if mode == "cluster" else [])
        sampler.start()
        t_drop = time.time()
        run.drop(items, "m")
        n, done, t0, t1, blocked = run.wait(after, len(items), timeout)
        cpu = sampler.stop()
        if done < len(items):
            raise RuntimeError(f"only {done}/{len(items)} files finished within {timeout:g} s")
        wall = (t1 or time.time()) - (t0 or t_drop)
        files = len(items)
        out = {"mode": mode, "nodes": nodes, "files": files, "blocked": blocked,
               "queue_prefix": run.prefix if mode == "cluster" else None,
               "seconds": round(wall, 3), "files_per_s": round(files / wall, 3),
               "drop_to_done_seconds": round((t1 or time.time()) - t_drop, 3),
               "cpu_seconds": {k: round(v, 3) for k, v in sorted(cpu.items())},
               "cpu_ms_per_file": {k: round(1000 * v / files, 2) for k, v in sorted(cpu.items())},
               # How much CPU the CDR work got per wall second: on a shared box, other load takes the rest.
               "work_cpu_per_wall": round(cpu.get("work", 0.0) / wall, 3),
               "load_avg": round(os.getloadavg()[0], 2)}
        coord = sum(cpu.get(k, 0.0) for k in ("serve", "postgres", "rabbitmq"))
        out["coordination_cpu_ms_per_file"] = round(1000 * coord / files, 2)
        if idle_beam is not None:
            out["rabbitmq_idle_cpu_ms_per_s"] = round(1000 * idle_beam, 2)
            # RabbitMQ net of what it spent at idle (other users of the shared broker) over the same time.
            beam_net = max(0.0, cpu.get("rabbitmq", 0.0) - idle_beam * ((t1 or time.time()) - t_drop))
            out["coordination_net_cpu_ms_per_file"] = round(
                1000 * (coord - cpu.get("rabbitmq", 0.0) + beam_net) / files, 2)
        return out
    finally:
        run.close()


# --------------------------------------------------------------------------- the benchmark

def _summary(runs: list[dict]) -> dict:
    def med(key: str, sub: str | None = None) -> float | None:
        xs = [(r[key].get(sub, 0.0) if sub else r[key]) for r in runs if key in r]
        return round(measure.median(xs), 3) if xs else None

    out = {"runs": len(runs), "files_per_s": med("files_per_s"), "seconds": med("seconds"),
           "coordination_cpu_ms_per_file": med("coordination_cpu_ms_per_file"),
           "cpu_ms_per_file": {g: med("cpu_ms_per_file", g) for g in
                               sorted({g for r in runs for g in r["cpu_ms_per_file"]})},
           "work_cpu_per_wall": med("work_cpu_per_wall"),
           "files_per_s_all": [r["files_per_s"] for r in runs]}
    if any("coordination_net_cpu_ms_per_file" in r for r in runs):
        out["coordination_net_cpu_ms_per_file"] = med("coordination_net_cpu_ms_per_file")
        out["rabbitmq_idle_cpu_ms_per_s"] = med("rabbitmq_idle_cpu_ms_per_s")
    return out


def run(quick: bool = False, tiny: bool = False, rounds: int = 3, nodes: tuple[int, ...] = (1, 2),
        single_box: bool = True, timeout: float = 300.0, own_broker: bool = True) -> dict:
    """Measure; returns the JSON-able result (`skipped` says why when PostgreSQL/RabbitMQ are down).
    `own_broker`: a RabbitMQ node of our own for the run (its CPU is then ours alone), when the
    machine has rabbitmq-server; else the shared one at BENCH_AMQP_URL."""
    why = services_down()
    if why:
        return {"skipped": why}
    if not shutil.which("taskset"):
        return {"skipped": "taskset (util-linux) is not installed"}
    t_start = time.perf_counter()
    old = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (and SIGINT, ignored in a background job) end the run through the clean-up below:
        # processes stopped, queues, scratch database and the broker of our own removed.
        def _end(*_: object) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, _end), signal.signal(signal.SIGINT, _end)
    work = Path(tempfile.mkdtemp(prefix="cdr-cluster-"))
    db = ScratchDatabase()
    broker: OwnBroker | None = None
    try:
        if own_broker and own_broker_possible():
            _log("starting a RabbitMQ node of our own")
            broker = OwnBroker(work)
        broker_url = broker.url if broker else AMQP_URL
        _log(f"generating corpus; scratch database {db.name}")
        items = corpus.build(work / "corpus", quick=quick, tiny=tiny)
        shas = {hashlib.sha256(it.path.read_bytes()).hexdigest() for it in items}
        # Warm-up: the tiny mix of another seed, minus any file that is also in the measured mix
        # (its result would be reused instead of computed). None for the tiny mix (the smoke test).
        warm = [] if tiny else [it for it in corpus.build(work / "warm", tiny=True, seed=corpus.SEED + 1)
                                if hashlib.sha256(it.path.read_bytes()).hexdigest() not in shas]
        plan = [(m, n) for n in nodes for m in (("single", "cluster") if single_box else ("cluster",))]
        runs: list[dict] = []
        for r in range(rounds):
            order = plan[r % len(plan):] + plan[:r % len(plan)]
            for mode, n in order:
                _log(f"round {r + 1}/{rounds}: {mode}, {n} {'worker node(s)' if mode == 'cluster' else 'worker(s)'}")
                res = one_run(work, mode, n, db if mode == "cluster" else None, warm, items, timeout,
                              f"{mode}{n}_{r}", broker_url, broker.pids() if broker else None)
                _log(f"  {res['files_per_s']} files/s; coordination {res['coordination_cpu_ms_per_file']} "
                     f"CPU-ms/file {res['cpu_ms_per_file']}")
                runs.append(res)
        data: dict = {"machine": measure.machine(), "quick": quick, "tiny": tiny, "rounds": rounds,
                      "corpus": corpus.describe(items), "files": len(items), "runs": runs,
                      "scratch_database": db.name,
                      "broker": "own RabbitMQ node (its CPU is ours alone)" if broker else
                      "the shared RabbitMQ (its CPU includes other users')"}
        for mode in ("single", "cluster"):
            for n in nodes:
                rs = [x for x in runs if x["mode"] == mode and x["nodes"] == n]
                if rs:
                    data[f"{mode}_{n}"] = _summary(rs)
        for mode in ("single", "cluster"):
            a, b = data.get(f"{mode}_1"), data.get(f"{mode}_2")
            if a and b and a["files_per_s"]:
                data[f"{mode}_efficiency"] = round(b["files_per_s"] / (2 * a["files_per_s"]), 3)
                # On a shared box the nodes get what other load leaves: the speed-up per CPU the CDR work
                # actually received (1.0: throughput follows the CPU; coordination serialises nothing).
                if a["work_cpu_per_wall"] and b["work_cpu_per_wall"]:
                    data[f"{mode}_speedup_per_cpu"] = round((b["files_per_s"] / a["files_per_s"])
                                                            / (b["work_cpu_per_wall"] / a["work_cpu_per_wall"]), 3)
        for n in nodes:
            c, s = data.get(f"cluster_{n}"), data.get(f"single_{n}")
            if c and s and s["files_per_s"]:
                data[f"cluster_{n}_vs_single"] = round(c["files_per_s"] / s["files_per_s"], 3)
        data["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        data["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        return data
    finally:
        if broker is not None:
            broker.close()
        db.close()
        shutil.rmtree(work, ignore_errors=True)
        if old is not None:
            signal.signal(signal.SIGTERM, old[0])
            signal.signal(signal.SIGINT, old[1])


def table(data: dict) -> str:
    if "skipped" in data:
        return f"cluster benchmark skipped: {data['skipped']}"
    lines = [f"{data['files']} files ({'tiny' if data.get('tiny') else 'quick' if data.get('quick') else 'full'} mix),"
             f" medians of {data['rounds']} rounds",
             f"{'mode':22} {'files/s':>8} {'coord ms/file':>13} {'serve':>7} {'postgres':>8} {'rabbitmq':>8} "
             f"{'node':>7} {'work':>8} {'work CPU/s':>10}   runs (files/s)"]
    for key, label in (("single_1", "one box, 1 worker"), ("single_2", "one box, 2 workers"),
                       ("cluster_1", "cloud, 1 worker node"), ("cluster_2", "cloud, 2 worker nodes")):
        s = data.get(key)
        if not s:
            continue
        c = s["cpu_ms_per_file"]
        lines.append(f"{label:22} {s['files_per_s']:>8.2f} {s['coordination_cpu_ms_per_file']:>13.1f} "
                     f"{c.get('serve', 0):>7.1f} {c.get('postgres', 0) or 0:>8.1f} {c.get('rabbitmq', 0) or 0:>8.1f} "
                     f"{c.get('worker_node', 0) or 0:>7.1f} {c.get('work', 0):>8.1f} {s['work_cpu_per_wall'] or 0:>10.2f}"
                     f"   {s['files_per_s_all']}")
    lines.append(f"broker: {data.get('broker')}")
    lines.append("(CPU-ms per file; coord = serve + postgres + rabbitmq; node = a worker node's own process;"
                 " work = the sandboxed cdr.worker processes; work CPU/s = CPU seconds they got per wall second)")
    for mode in ("cluster", "single"):
        if f"{mode}_efficiency" in data:
            lines.append(f"{mode}: efficiency X(2)/(2*X(1)) = {data[f'{mode}_efficiency']}; speed-up per CPU the"
                         f" work received {data.get(f'{mode}_speedup_per_cpu')}")
    c2 = data.get("cluster_2") or data.get("cluster_1") or {}
    if "coordination_net_cpu_ms_per_file" in c2:
        lines.append(f"RabbitMQ at rest before each drop: {c2['rabbitmq_idle_cpu_ms_per_s']} CPU-ms/s;"
                     f" coordination net of that: {c2['coordination_net_cpu_ms_per_file']} CPU-ms/file")
    m = data.get("machine", {})
    lines.append(f"machine: {m.get('cpus')} cpus {m.get('cpu', '')}, load {m.get('load_avg_start')} -> "
                 f"{m.get('load_avg_end')}; {data.get('elapsed_s')} s")
    return "\n".join(lines)
