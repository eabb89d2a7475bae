"""The real PostgreSQL and RabbitMQ of this machine for the security-cloud tests.

PostgreSQL: 127.0.0.1:5432, trust auth, user root, database `test` (TEST_PG_URL overrides). Each
test gets a schema of its own (`?schema=`), dropped afterwards, so parallel runs do not collide.
RabbitMQ: 127.0.0.1:5672 guest/guest (TEST_AMQP_URL overrides); each test uses a vhost-free,
uniquely named queue set. When a service is down the tests skip, saying what they need
(`.ci/run` checks first and says the same).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PG_URL = os.environ.get("TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
NEED_PG = ("PostgreSQL on 127.0.0.1:5432 (trust auth for user root, database `test`; or set TEST_PG_URL)"
           " is not reachable")
NEED_AMQP = "RabbitMQ on 127.0.0.1:5672 (guest/guest; or set TEST_AMQP_URL) is not reachable"


def _reachable(url: str, default_port: int) -> bool:
    u = urlsplit(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pg_up() -> bool:
    if not _reachable(PG_URL, 5432):
        return False
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=5) as c:
            c.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def amqp_up() -> bool:
    return _reachable(AMQP_URL, 5672)


def new_schema_url() -> tuple[str, str]:
    name = f"t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={name}", name


def drop_schema(name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    except Exception:  # noqa: BLE001 - PostgreSQL restarted by a failure test: leave it
        pass


@pytest.fixture
def pg_url():
    """A fresh schema in the test database, as a postgresql:// URL for --database."""
    if not pg_up():
        pytest.skip(NEED_PG)
    url, name = new_schema_url()
    yield url
    drop_schema(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_target(request, tmp_path):
    """The ledger under test on each backend: a SQLite path or a PostgreSQL URL with its own schema."""
    if request.param == "sqlite":
        yield tmp_path / "state" / "ledger.sqlite3"
        return
    if not pg_up():
        pytest.skip(NEED_PG)
    url, name = new_schema_url()
    yield url
    drop_schema(name)


# ---------------------------------------------------------------------------- throwaway instances
# For the restart tests: the machine's own PostgreSQL and RabbitMQ are shared with other work and are
# never restarted; these are private ones on other ports, in a temporary folder, killed afterwards.

def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _port_open(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc/*/stat parent links), children first found first."""
    parent: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                parent[int(p.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [c for c, pp in parent.items() if pp == cur]
        out += kids
        todo += kids
    return out


def _kill_group(proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if proc is None:
        return
    below = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    for pid in below:  # those that left the group (erl_child_setup, ...)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    end = time.monotonic() + 15
    while time.monotonic() < end and any(_alive(pid) for pid in below):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


class PrivatePostgres:
    """`postgres -D tmp -p PORT` run as the postgres user, trust auth for root (skips when impossible)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not bins or os.geteuid() != 0:
            pytest.skip("a private PostgreSQL needs /usr/lib/postgresql/*/bin and root (to run it as postgres)")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="cdr-pg-", dir="/tmp"))
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.chown(self.dir, self.uid, self.gid)
        r = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "initdb"), "-D", str(self.dir / "data"),
                            "-A", "trust", "-U", "root", "--no-sync"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {r.stderr[-500:]}")
        self.url = f"postgresql://root@127.0.0.1:{self.port}/postgres"
        self.start()

    def start(self) -> None:
        for _ in range(3):  # a crashed server's leftovers (lock files, shared memory) may need a moment
            if self._start_once():
                return
            time.sleep(1)
        raise AssertionError("private PostgreSQL did not start: "
                             + (self.dir / "postgres.log").read_text(errors="replace")[-2000:])

    def _start_once(self) -> bool:
        # Lock files left by the crash; the postmaster they name may linger as a zombie nobody reaps
        # (PostgreSQL only asks whether that pid exists).
        for lock in (self.dir / "data" / "postmaster.pid", self.dir / f".s.PGSQL.{self.port}.lock"):
            try:
                pid = int(lock.read_text().split("\n", 1)[0].strip())
            except (OSError, ValueError):
                continue
            if not _alive(pid):
                lock.unlink()
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", str(self.bin / "postgres"), "-D", str(self.dir / "data"),
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if _wait_port(self.port, 60, self.proc):
            import psycopg

            end = time.monotonic() + 60
            while time.monotonic() < end and self.proc.poll() is None:
                try:  # the port opens before crash recovery ends ("the database system is starting up")
                    with psycopg.connect(self.url, connect_timeout=5) as c:
                        c.execute("SELECT 1")
                    return True
                except psycopg.OperationalError:
                    time.sleep(0.2)
        _kill_group(self.proc)
        return False

    def kill(self) -> None:
        """A crash: SIGKILL of the postmaster and its children (every connection drops)."""
        _kill_group(self.proc)
        end = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < end:
            time.sleep(0.1)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRabbit:
    """rabbitmq-server with its own node name, ports and folders (skips when it cannot start)."""

    def __init__(self) -> None:
        server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not os.access(server, os.X_OK):
            pytest.skip("a private RabbitMQ needs /usr/lib/rabbitmq/bin/rabbitmq-server")
        self.dir = Path(tempfile.mkdtemp(prefix="cdr-rmq-", dir="/tmp"))
        self.port, dist = _free_port(), _free_port()
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.env = {**os.environ, "HOME": str(self.dir), "RABBITMQ_NODENAME": f"cdrtest{os.getpid()}@localhost",
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_CONFIG_FILE": str(self.dir / "none"), "RABBITMQ_PID_FILE": str(self.dir / "pid")}
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen | None = None
        self.start(skip=True)

    def start(self, skip: bool = False) -> None:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env, cwd=self.dir,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not _wait_port(self.port, 120, self.proc):
            tail = (self.dir / "server.log").read_text(errors="replace")[-1500:]
            self.kill()
            if skip:
                pytest.skip(f"a private RabbitMQ did not start: {tail}")
            raise AssertionError(f"private RabbitMQ did not start again: {tail}")

    def kill(self) -> None:
        """A crash: SIGKILL of the broker's whole process group (every connection drops)."""
        _kill_group(self.proc)
        end = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < end:
            time.sleep(0.1)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
