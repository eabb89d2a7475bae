"""One way to run the appliance's SQL on SQLite (one box) and on PostgreSQL (the security cloud).

Modules write SQL once, in the dialect they already use: `?` or `:name` placeholders, rows read
by column name or index (`row["status"]`, `row[0]`, `dict(row)`), `cur.lastrowid` after an
INSERT into a table with an `id INTEGER PRIMARY KEY AUTOINCREMENT`, `INSERT OR IGNORE`,
`ON CONFLICT ... DO UPDATE`, `RETURNING`. `connect(target)` gives

- for a path: a plain `sqlite3.Connection` (WAL, synchronous=FULL), exactly as before;
- for `postgresql://USER@HOST:PORT/DB[?schema=NAME]`: a `PgConnection` (psycopg 3) with the same
  `execute()`/`cursor()` surface, which rewrites the placeholders (`?` -> `%s`, `:name` ->
  `%(name)s`), `INSERT OR IGNORE` (-> `ON CONFLICT DO NOTHING`) and appends `RETURNING id` to an
  INSERT into a table with a generated id, so `lastrowid` works.

Write transactions: SQLite's `BEGIN IMMEDIATE` takes the database's single write lock, and the
steps rely on that (read, then write, with nothing in between: the audit chain head, the login
quota, receipt numbers). `PgConnection.begin_write()` gives the same guarantee across every node
with `pg_advisory_xact_lock(WRITE_LOCK)` taken first in the transaction; readers never wait.
Tables are created by schema.py (DDL written once, translated for PostgreSQL).
Catch `db.Error` / `db.IntegrityError` rather than a driver's own classes.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

log = logging.getLogger("transfer_agent.db")

try:  # psycopg is needed only for PostgreSQL
    import psycopg
    from psycopg import errors as pg_errors
except ImportError:  # pragma: no cover - the one-box mode does not need it
    psycopg = None  # type: ignore[assignment]
    pg_errors = None  # type: ignore[assignment]

_PG_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error,) if psycopg else ()
Error: tuple[type[BaseException], ...] = (sqlite3.Error, *_PG_ERRORS)
IntegrityError: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,
                                                   *((psycopg.IntegrityError,) if psycopg else ()))
OperationalError: tuple[type[BaseException], ...] = (sqlite3.OperationalError,
                                                     *((psycopg.OperationalError,) if psycopg else ()))


class Closed(sqlite3.ProgrammingError):
    """The connection was closed (the appliance is stopping); same class as SQLite raises."""


def is_postgres(target: str | Path | None) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def describe(target: str | Path) -> str:
    """The target without a password, for banners and logs."""
    if not is_postgres(target):
        return str(target)
    u = urlsplit(str(target))
    host = u.hostname or ""
    netloc = (f"{u.username}@" if u.username else "") + host + (f":{u.port}" if u.port else "")
    return urlunsplit((u.scheme, netloc, u.path, u.query, ""))


# ---------------------------------------------------------------------------- SQLite

def connect_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")  # a cleared PPAP password is overwritten, not left in free pages
    return conn


def connect(target: str | Path) -> Any:
    """A connection for a SQLite path or a postgresql:// URL (see the module doc)."""
    if is_postgres(target):
        return PgConnection(str(target))
    return connect_sqlite(Path(target))


def kind(conn: Any) -> str:
    return "postgresql" if isinstance(conn, PgConnection) else "sqlite"


def begin_write(conn: Any) -> None:
    """Start a write transaction holding the database-wide write lock (see the module doc)."""
    if isinstance(conn, PgConnection):
        conn.begin_write()
    else:
        conn.execute("BEGIN IMMEDIATE")


def commit(conn: Any) -> None:
    """Commit; a failed commit leaves no transaction open."""
    if isinstance(conn, PgConnection):
        try:
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def rollback(conn: Any) -> None:
    if isinstance(conn, PgConnection):
        conn.rollback()
    elif conn.in_transaction:
        conn.execute("ROLLBACK")


def table_columns(conn: Any, table: str) -> set[str]:
    if isinstance(conn, PgConnection):
        return {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ?", (table,))}
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def has_table(conn: Any, table: str) -> bool:
    return bool(table_columns(conn, table))


# ---------------------------------------------------------------------------- PostgreSQL

class Row(tuple):
    """A result row readable like sqlite3.Row: by index, by column name, dict(row), unpacking."""

    _keys: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._keys.index(key))
            except ValueError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._keys)


def _row_factory(cursor: Any) -> Any:
    desc = cursor.description
    names = tuple(d.name for d in desc) if desc else ()
    cls = type("Row", (Row,), {"_keys": names, "__slots__": ()})

    def make(values: Sequence[Any]) -> Row:
        return cls(values)
    return make


# Tables whose `id` the database generates (schema.py registers them): an INSERT into one gets
# `RETURNING id` so that `cursor.lastrowid` works as on SQLite.
SERIAL_TABLES: set[str] = set()

_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::|\?|:[A-Za-z_]\w*|%""")
_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+([A-Za-z_]\w*)", re.I)
_cache: dict[str, tuple[str, bool]] = {}


def translate(sql: str) -> tuple[str, bool]:
    """SQLite-style SQL -> (psycopg SQL, whether it returns a generated id)."""
    hit = _cache.get(sql)
    if hit is not None:
        return hit

    def sub(m: re.Match[str]) -> str:
        t = m.group(0)
        if t == "?":
            return "%s"
        if t == "%":
            return "%%"
        if t.startswith(":") and t != "::":
            return f"%({t[1:]})s"
        if t[0] in "'\"":
            return t.replace("%", "%%")  # psycopg reads % inside literals too
        return t
    out = _TOKEN.sub(sub, sql)
    # SQLite's `a IS ?` compares with NULL semantics; PostgreSQL spells it IS [NOT] DISTINCT FROM.
    out = re.sub(r"\bIS\s+NOT\s+%s", "IS DISTINCT FROM %s", out, flags=re.I)
    out = re.sub(r"\bIS\s+%s", "IS NOT DISTINCT FROM %s", out, flags=re.I)
    returns_id = False
    m = _INSERT.match(out)
    if m:
        up = re.search(r"\bDO\s+UPDATE\s+SET\b", out, re.I)
        if up:
            # `SET n = n + 1`: a bare column is ambiguous on PostgreSQL; it means the existing row's.
            head, tail = out[:up.end()], out[up.end():]
            tail = re.sub(r"(^\s*|,\s*)(\w+)(\s*=\s*)\2\b(?!\s*\()", rf"\1\2\3{m.group(2)}.\2", tail)
            out = head + tail
        if m.group(1):
            out = out[:m.start(1)] + out[m.end(1):]
            if not re.search(r"\bON\s+CONFLICT\b", out, re.I):
                out = _before_returning(out, " ON CONFLICT DO NOTHING")
        if m.group(2).lower() in SERIAL_TABLES and not re.search(r"\bRETURNING\b", out, re.I):
            out = out.rstrip().rstrip(";") + " RETURNING id"
            returns_id = True
    if len(_cache) < 4096:
        _cache[sql] = (out, returns_id)
    return out, returns_id


def _before_returning(sql: str, clause: str) -> str:
    m = re.search(r"\sRETURNING\b", sql, re.I)
    if m:
        return sql[:m.start()] + clause + sql[m.start():]
    return sql.rstrip().rstrip(";") + clause


def _split_url(url: str) -> tuple[str, str | None]:
    """Our own `schema=` query parameter out of the URL (psycopg does not know it)."""
    u = urlsplit(url)
    q = parse_qsl(u.query, keep_blank_values=True)
    schema = next((v for k, v in q if k == "schema"), None)
    # %20, not "+", for blanks: libpq does not read "+" as a blank (options=-c%20name%3Dvalue).
    rest = urlencode([(k, v) for k, v in q if k != "schema"], quote_via=quote)
    return urlunsplit((u.scheme, u.netloc, u.path, rest, u.fragment)), schema


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
IDLE_TX_SECONDS = 60


if psycopg is not None:
    from decimal import Decimal

    from psycopg.types.numeric import NumericLoader

    class _NumericLoader(NumericLoader):
        def load(self, data: Any) -> Any:
            d = super().load(data)
            if isinstance(d, Decimal):
                return int(d) if d == d.to_integral_value() else float(d)
            return d


class PgCursor:
    def __init__(self, conn: PgConnection) -> None:
        self._conn = conn
        self._cur: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1
        self._pending: Row | None = None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        text, returns_id = translate(sql)
        raw = self._conn.raw()
        self._cur = raw.cursor(row_factory=_row_factory)
        self._cur.execute(text, params if params != () else None)
        self.rowcount = self._cur.rowcount
        self.lastrowid = None
        if returns_id:
            row = self._cur.fetchone()
            self.lastrowid = int(row[0]) if row is not None else None
            self._cur = None
        return self

    def fetchone(self) -> Row | None:
        if self._cur is None or self._cur.description is None:
            return None
        return self._cur.fetchone()

    def fetchall(self) -> list[Row]:
        if self._cur is None or self._cur.description is None:
            return []
        return self._cur.fetchall()

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())

    @property
    def description(self) -> Any:
        return None if self._cur is None else self._cur.description


class PgConnection:
    """psycopg 3 with sqlite3.Connection's surface (execute, cursor, in_transaction, close).

    Autocommit outside `begin_write()`/`commit()`: a read is its own statement. A connection lost
    between transactions (PostgreSQL restarted) is opened again before the next statement; one
    lost inside a transaction fails that transaction, which the caller retries like any error.
    `?schema=NAME` in the URL keeps the tables in that schema (created if missing): one database
    can hold several appliances, or a test run each.
    """

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise RuntimeError("PostgreSQL needs the psycopg package (pip install 'psycopg[binary]')")
        self.url, self.schema = _split_url(url)
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"schema name {self.schema!r}: lower-case letters, digits and _ only")
        # Advisory lock keys are per database: derive them from the schema so appliances in one
        # database do not serialise each other.
        base = int.from_bytes(hashlib.sha256((self.schema or "public").encode()).digest()[:4], "big")
        self.write_lock_key = (base << 16) | 1
        self._raw: Any = None
        self._closed = False
        self._tx = False
        self._lock = threading.RLock()
        self.raw()

    def lock_key(self, name: str) -> int:
        """A 63-bit advisory lock key for `name` within this appliance (leases, schema creation)."""
        h = hashlib.sha256(f"{self.schema or 'public'}\0{name}".encode()).digest()
        return int.from_bytes(h[:8], "big") >> 1

    def raw(self) -> Any:
        if self._closed:
            raise Closed("Cannot operate on a closed database.")
        if self._raw is not None and not self._raw.closed and not self._raw.broken:
            return self._raw
        if self._tx:
            raise psycopg.OperationalError("the connection was lost inside a transaction")
        # The first connection fails at once (a wrong URL should say so); a lost one is waited for.
        deadline = time.monotonic() + (30 if self._raw is not None else 0)
        while True:
            try:
                raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # PostgreSQL restarting: wait for it like SQLite waits for a lock
        raw.adapters.register_loader("numeric", _NumericLoader)  # SUM(bigint) is numeric: give int, as SQLite
        if "idle_in_transaction_session_timeout" not in unquote(self.url):
            # A node frozen inside a write transaction (a paused VM, SIGSTOP) holds the write lock every node
            # waits for: PostgreSQL ends such a session after this long, the others go on, and the frozen
            # node's transaction fails when it wakes (and is retried like any error). Our transactions are
            # never idle for long; `options=-c idle_in_transaction_session_timeout=...` in the URL sets another.
            raw.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_TX_SECONDS}s'")
        if self.schema:
            # CREATE SCHEMA IF NOT EXISTS is not atomic: nodes starting together on a new schema get a
            # unique violation. The existence check and the creation go under one advisory lock.
            with raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key("create schema"),))
                raw.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            raw.execute(f"SET search_path TO {self.schema}")
        self._raw = raw
        return raw

    # sqlite3.Connection's surface
    def cursor(self) -> PgCursor:
        return PgCursor(self)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        if not self._tx:
            try:
                return PgCursor(self).execute(sql, params)
            except psycopg.OperationalError:
                if self._raw is None or not (self._raw.closed or self._raw.broken):
                    raise
                log.warning("database connection lost; reconnecting", extra={"event": "db.reconnect"})
                return PgCursor(self).execute(sql, params)  # autocommit: the statement did not happen
        return PgCursor(self).execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        return self._tx

    def begin(self) -> None:
        self.execute("BEGIN")
        self._tx = True

    def begin_write(self) -> None:
        self.begin()
        try:
            self.execute("SELECT pg_advisory_xact_lock(?)", (self.write_lock_key,))
        except BaseException:
            self.rollback()
            raise

    def commit(self) -> None:
        try:
            self.raw().execute("COMMIT")
        finally:
            self._tx = False

    def rollback(self) -> None:
        self._tx = False
        raw = self._raw
        if raw is not None and not raw.closed and not raw.broken:
            try:
                raw.execute("ROLLBACK")
            except psycopg.Error:
                raw.close()

    def close(self) -> None:
        self._closed = True
        if self._raw is not None:
            self._raw.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
