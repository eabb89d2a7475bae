"""Several serve nodes on one ledger: node leases, job ownership and named leases.

Every serve node (the one-box appliance too: it is a cluster of one) registers a row in `nodes` at
start and renews its lease (`lease_until`, the database's clock) every third of
`[service] node_lease_seconds`. The jobs a node is working on carry its id in `jobs.owner`:

- intake ('received'), a claim ('processing') and a committed plan ('delivering') are the owner's;
  every state change of the steps is conditional on `owner` (ledger.Tx), so a node that lost its
  jobs commits nothing for them: its transaction changes no row and raises `Fenced`;
- a node whose lease ran out (killed, frozen, cut off from the database) is marked `fenced` by the
  first live node that notices (`takeover`, in one write transaction) and its unfinished jobs get a
  new owner, which finishes them with the recovery steps (recovery.py): 'processing' back to
  'queued' (the worker's attempt number fences the old task), 'delivering' replayed from its
  committed plan (idempotent: names fixed in the plan, existing files with the planned hash kept),
  'received' taken from wherever the file is, except a file still in the dead node's own drop
  folder, which only that node (restarted with the same --data-dir) can take;
- a node acts only while its own lease holds by its own clock (`valid()`, checked before each inbox
  write); one that finds itself fenced when it reaches the database again stops at once (exit code
  75, for systemd to restart it as a new incarnation), since its in-memory state is no longer true;
- a restarted node (the same host and --data-dir, whose lock it now holds) takes over its previous
  incarnation at once, without waiting for the lease to run out.

Work with no job of its own that must happen once (purge, taking recorded mails, submission
handovers) is guarded by a named lease (`lease(name)`): a row in `leases` renewed by its holder on
each pass and taken by another node once it has run out, or at once when its holder is no longer
an alive node (stopped, or fenced by a takeover).

Clocks: leases are compared with the database server's clock (PostgreSQL `clock_timestamp()`), so
nodes need no synchronised clocks; a node measures its own remaining lease with its monotonic clock
from the moment it sent the renewal (a little before the database wrote it), so it stops acting
before any other node may take over.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import db, schema

log = logging.getLogger("transfer_agent.cluster")

schema.register("cluster", """
CREATE TABLE IF NOT EXISTS nodes (
    id          TEXT PRIMARY KEY,       -- name#incarnation
    name        TEXT NOT NULL,          -- host:node folder (the same across restarts)
    pid         INTEGER NOT NULL,
    state       TEXT NOT NULL,          -- alive | stopped | fenced
    started_at  REAL NOT NULL,
    seen_at     REAL NOT NULL,
    lease_until REAL NOT NULL,          -- the database's clock
    fenced_by   TEXT
);
CREATE INDEX IF NOT EXISTS nodes_state ON nodes(state, lease_until);
CREATE TABLE IF NOT EXISTS leases (
    name   TEXT PRIMARY KEY,            -- purge | mail-intake | submissions | ...
    holder TEXT NOT NULL,               -- a node id
    until  REAL NOT NULL,               -- the database's clock
    since  REAL NOT NULL
);
""")

FENCED_EXIT = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts a new incarnation


class Fenced(RuntimeError):
    """This node no longer owns the job (another node took it over), or its lease ran out."""


def db_now(t: Any) -> float:
    """The database's clock (epoch seconds) inside transaction `t` (SQLite: this machine's)."""
    conn = getattr(t, "cur", None)
    if conn is not None and isinstance(getattr(conn, "_conn", None), db.PgConnection):
        return float(t.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()[0])
    return time.time()


class Node:
    """This serve node's registration and lease (see the module doc)."""

    def __init__(self, ledger: Any, name: str, lease_seconds: float = 15.0,
                 on_fenced: Callable[[], None] | None = None) -> None:
        self.ledger = ledger
        self.name = name
        self.id = f"{name}#{uuid.uuid4().hex[:10]}"
        self.lease_seconds = lease_seconds
        self.on_fenced = on_fenced or _exit_fenced
        self._valid_until = 0.0  # monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def default_name(node_dir: Any) -> str:
        """host:folder, and the machine id when there is one: a node of that name that is not this
        process is an earlier incarnation (this process holds the folder's lock), so two machines must
        not share it (cloned VMs with the same host name keep distinct machine ids)."""
        try:
            with open("/etc/machine-id", encoding="ascii") as f:
                mid = f.read().strip()[:8]
        except OSError:
            mid = ""
        return f"{socket.gethostname()}{'/' + mid if mid else ''}:{os.path.abspath(str(node_dir))}"

    # ------------------------------------------------------------------ lease

    def register(self) -> None:
        sent = time.monotonic()
        with self.ledger.tx() as t:
            now = db_now(t)
            t.execute("INSERT INTO nodes(id, name, pid, state, started_at, seen_at, lease_until)"
                      " VALUES (?,?,?,'alive',?,?,?)", (self.id, self.name, os.getpid(), now, now,
                                                       now + self.lease_seconds))
            t.audit("node.start", {"node": self.id, "pid": os.getpid()})
        self._valid_until = sent + self.lease_seconds * 0.8
        self.ledger.owner = self.id

    def renew(self) -> bool:
        """Renew the lease; False (and `on_fenced`) when another node fenced this one."""
        sent = time.monotonic()
        with self.ledger.tx() as t:
            now = db_now(t)
            cur = t.execute("UPDATE nodes SET seen_at = ?, lease_until = ? WHERE id = ? AND state = 'alive'",
                            (now, now + self.lease_seconds, self.id))
            ok = cur.rowcount == 1
        if ok:
            self._valid_until = sent + self.lease_seconds * 0.8
            return True
        self._valid_until = 0.0
        log.critical("this serve node was fenced (another node took over its jobs); stopping",
                     extra={"event": "node.fenced", "node": self.id})
        self.on_fenced()
        return False

    def valid(self) -> bool:
        """Whether this node may still act on its jobs by its own clock (its lease has not run out)."""
        return time.monotonic() < self._valid_until

    def check(self) -> None:
        if not self.valid():
            raise Fenced(f"node {self.id}: lease not renewed in time (database unreachable?)")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="node-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # noqa: BLE001 - database restarting: valid() runs out meanwhile
                log.warning("cannot renew the node lease", exc_info=True, extra={"event": "node.renew_failed"})

    def stop(self) -> None:
        """A clean stop: the node's remaining jobs may be taken over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            with self.ledger.tx() as t:
                t.execute("UPDATE nodes SET state = 'stopped', lease_until = seen_at WHERE id = ? AND state = 'alive'",
                          (self.id,))
                t.audit("node.stop", {"node": self.id})
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("cannot mark the node stopped", exc_info=True)

    # ------------------------------------------------------------------ takeover

    def takeover(self, grace: float | None = None) -> list[Any]:
        """Fence nodes whose lease ran out (and this node's own earlier incarnations) and take their
        unfinished jobs; returns the job rows now owned by this node that need recovery."""
        grace = self.lease_seconds * 0.25 if grace is None else grace
        with self.ledger.tx() as t:
            now = db_now(t)
            dead = [r["id"] for r in t.execute(
                "SELECT id FROM nodes WHERE state = 'alive' AND id != ? AND (name = ? OR lease_until < ?)",
                (self.id, self.name, now - grace)).fetchall()]
            for nid in dead:
                t.execute("UPDATE nodes SET state = 'fenced', fenced_by = ? WHERE id = ? AND state = 'alive'",
                          (self.id, nid))
            alive = {r["id"] for r in t.execute("SELECT id FROM nodes WHERE state = 'alive'").fetchall()}
            rows = t.execute("SELECT id, owner, source, status FROM jobs WHERE status IN"
                             " ('received', 'processing', 'delivering')").fetchall()
            taken = []
            for r in rows:
                owner = r["owner"]
                if owner in alive and owner != self.id:
                    continue
                if owner == self.id:
                    continue
                # A file still in a dead node's own drop folder: only that node (restarted) can take it.
                if r["status"] == "received" and r["source"] == "dropbox" and owner is not None \
                        and owner.rsplit("#", 1)[0] != self.name:
                    continue
                t.execute("UPDATE jobs SET owner = ? WHERE id = ?", (self.id, r["id"]))
                taken.append(r["id"])
            if dead or taken:
                t.audit("node.takeover", {"node": self.id, "fenced": dead, "jobs": taken})
        if dead or taken:
            log.warning("took over the jobs of stopped or silent serve nodes",
                        extra={"event": "node.takeover", "fenced": dead, "jobs": taken})
        return [self.ledger.job(j) for j in taken]

    # ------------------------------------------------------------------ named leases

    def lease(self, name: str, seconds: float = 60.0) -> bool:
        """Hold (take or renew) the named lease for `seconds`; False while another live node holds it."""
        if not self.valid():
            return False
        with self.ledger.tx() as t:
            now = db_now(t)
            t.execute("INSERT OR IGNORE INTO leases(name, holder, until, since) VALUES (?,?,?,?)",
                      (name, self.id, now + seconds, now))
            # Free once it ran out, or at once when its holder is no longer alive (stopped, or fenced:
            # e.g. this node's own earlier incarnation, fenced at start).
            cur = t.execute("UPDATE leases SET holder = ?, until = ?, since = CASE WHEN holder = ? THEN since"
                            " ELSE ? END WHERE name = ? AND (holder = ? OR until < ? OR holder NOT IN"
                            " (SELECT id FROM nodes WHERE state = 'alive'))",
                            (self.id, now + seconds, self.id, now, name, self.id, now))
            return cur.rowcount == 1

    def release(self, name: str) -> None:
        with self.ledger.tx() as t:
            t.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, self.id))


def _exit_fenced() -> None:
    # The in-memory state (in-flight jobs, retries) is no longer this node's: start afresh.
    logging.shutdown()
    os._exit(FENCED_EXIT)
