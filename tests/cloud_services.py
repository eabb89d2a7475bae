"""The real PostgreSQL and RabbitMQ of this machine for the security-cloud tests.

PostgreSQL: 127.0.0.1:5432, trust auth, user root, database `test` (TEST_PG_URL overrides). Each
test gets a schema of its own (`?schema=`), dropped afterwards, so parallel runs do not collide.
RabbitMQ: 127.0.0.1:5672 guest/guest (TEST_AMQP_URL overrides); each test uses a vhost-free,
uniquely named queue set. When a service is down the tests skip, saying what they need
(`.ci/run` checks first and says the same).
"""
from __future__ import annotations

import os
import socket
import uuid
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
