"""The core's half of taking a mail: recorded mails (mail_spool.py) into quarantine, one job per channel.

Steps (each durable before the next; `take_pending` also finishes what a crash interrupted):
claim the row ('received' -> 'taking', so the internet side can no longer withdraw it) -> one hard
link of the spool file per extra channel (work/smtp/<id>.<n>.eml) -> Intake.accept_many (the job
rows carry mail_id; each file is renamed into work/intake, hashed and stored in quarantine: the
same content once) -> row 'queued' + audit 'smtp.taken' with the job of each channel.

The recipients of one channel share one job: the mail is sanitized once and delivered to each of
them. Recipients on channels with the same policy get identical content, which the dispatcher
answers from the first job's result (sanitized once there too); a channel with its own policy gets
its own rebuild.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from .config import Config
from .files import fsync_dir
from .intake import Arrival, Intake
from .ledger import Ledger

log = logging.getLogger("transfer_agent.service")


def job_name(mail_id: str) -> str:
    """The name a mail's job carries (its original is released as ORIGINAL_<name>)."""
    return f"mail-{mail_id}.eml"


class MailIntake:
    def __init__(self, cfg: Config, ledger: Ledger, intake: Intake) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.intake = intake
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_tick = time.monotonic()
        self.node: Any = None  # cluster.Node: one serve node takes recorded mails at a time
        self.lease_elsewhere = False  # another serve node held the lease at the last pass

    # ------------------------------------------------------------ taking

    def take_pending(self) -> int:
        """Take every recorded mail not yet taken (also ones a crash interrupted); returns how many."""
        node = self.node  # several serve nodes: one takes mails at a time (cluster.py)
        self.lease_elsewhere = node is not None and not node.lease("mail-intake", 120.0)
        if self.lease_elsewhere:
            return 0
        with self._lock:
            rows = self.ledger.query("SELECT * FROM mails WHERE status IN ('received', 'taking') ORDER BY received_at")
            if not rows:
                return 0
            claimed = []
            with self.ledger.tx() as t:
                for row in rows:
                    if row["status"] == "received":
                        cur = t.execute("UPDATE mails SET status = 'taking' WHERE id = ? AND status = 'received'",
                                        (row["id"],))
                        if not cur.rowcount:
                            continue  # withdrawn by the internet side meanwhile
                    claimed.append(row)
            arrivals: list[Arrival] = []
            per_mail: dict[str, list[tuple[str, Path]]] = {}
            for row in claimed:
                per_mail[row["id"]] = self._paths(row)
            have = {(r["mail_id"], r["channel"]) for r in self.ledger.query(
                "SELECT mail_id, channel FROM jobs WHERE mail_id IN (" + ",".join("?" * len(claimed)) + ")",
                tuple(r["id"] for r in claimed))} if claimed else set()
            for row in claimed:
                for channel, path in per_mail[row["id"]]:
                    if (row["id"], channel) in have or not os.path.lexists(path):
                        continue  # taken before a crash (its job row carries on from where it was)
                    # Fair dispatch: the sending server is the source (a flood from one does not starve others).
                    arrivals.append(Arrival(path, source="smtp", channel=channel, name=job_name(row["id"]),
                                            received_at=row["received_at"], mail_id=row["id"],
                                            source_key=f"mail:{row['client_ip']}"))
            if arrivals:
                self.intake.accept_many(arrivals)
            done = 0
            for row in claimed:
                jobs = {r["channel"]: r["id"] for r in self.ledger.query(
                    "SELECT id, channel FROM jobs WHERE mail_id = ? AND source = 'smtp'", (row["id"],))}
                wanted = {c for c, _ in per_mail[row["id"]]}
                if set(jobs) != wanted:
                    log.warning("mail not fully taken yet; tried again shortly", extra={
                        "event": "mail.take_partial", "mail_id": row["id"], "missing": sorted(wanted - set(jobs))})
                    continue
                with self.ledger.tx() as t:
                    t.execute("UPDATE mails SET status = 'queued', taken_at = ? WHERE id = ?", (time.time(), row["id"]))
                    t.audit("smtp.taken", {"mail_id": row["id"], "jobs": {c: jobs[c] for c in sorted(jobs)}})
                self._unlink_spool(row)
                done += 1
            return done

    def _paths(self, row: Any) -> list[tuple[str, Path]]:
        """(channel, spool path) for each channel of the mail: the spool file itself for the first,
        a hard link of it for each other (made now if the spool file is still there)."""
        channels = [r[0] for r in self.ledger.query(
            "SELECT channel FROM mail_rcpts WHERE mail_id = ? GROUP BY channel ORDER BY MIN(n)", (row["id"],))]
        spool = self.cfg.data_dir / row["spool"]
        out = [(channels[0], spool)] if channels else []
        made = False
        for n, channel in enumerate(channels[1:], 2):
            link = spool.with_name(f"{row['id']}.{n}.eml")
            if not os.path.lexists(link) and os.path.lexists(spool):
                os.link(spool, link)
                made = True
            out.append((channel, link))
        if made and self.cfg.fsync:
            fsync_dir(spool.parent)
        return out

    def _unlink_spool(self, row: Any) -> None:
        """Left-overs of a mail fully taken (nothing, normally: each file was renamed into intake)."""
        spool = self.cfg.data_dir / row["spool"]
        for p in spool.parent.glob(f"{row['id']}.*eml"):
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------ the thread (the core looks by itself too)

    def wake(self) -> bytes:
        """corelink `mail`: take what the internet side recorded, now; answer when it is in quarantine.
        While another serve node holds the `mail-intake` lease, answer once that node has claimed what
        is recorded (it looks every second), so that this node's internet side does not withdraw the
        mail (451) for want of an answer."""
        end = time.monotonic() + max(1.0, self.cfg.mail_handover_seconds - 5.0)
        while True:
            self.take_pending()
            if not self.lease_elsewhere or time.monotonic() > end:
                return b"ok"
            if self.ledger.one("SELECT 1 FROM mails WHERE status = 'received'") is None:
                return b"ok"  # claimed ('taking') by the node holding the lease
            time.sleep(0.1)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mail-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.take_pending()
            except Exception:  # noqa: BLE001 - the ledger keeps the state; tried again in a second
                log.exception("taking mails failed", extra={"event": "error"})
            self.last_tick = time.monotonic()
