"""Crash recovery: `recover()` runs at start, before any thread, and finishes or undoes each step.

Crash safety, step by step (every arrow is durable before the next step starts):
intake   row 'received' (dropbox path) -> rename into work/intake/<id> -> sha256 recorded
         -> rename into quarantine/<sha> -> row 'queued' + audit 'intake' (one transaction);
         files that are ready together take each step together (shared commits and fsyncs)
         (intake.py)
process  row 'processing' -> worker writes into work/jobs/<id>-<attempt>/ -> outputs moved
         into the result cache state/results/<sha>/<policy>/<ext>/ -> handed to the delivery
         thread (the job stays 'processing' until then; the worker already takes the next file)
         (dispatcher.py)
deliver  plan (names, hashes) + verdict + audit 'verdict' committed as 'delivering'
         -> each file: temp name, fsync, link to final name; then one fsync of the directory
         -> row 'delivered'/'blocked' + audit 'delivery' (one transaction)
         If the inbox cannot be written meanwhile, the job stays 'delivering' and the delivery
         thread replays the same plan with backoff (audit 'delivery.failed' once, 'delivery.resumed').
         (deliverer.py, delivery.py)
mail     (SMTP intake) spooled + row 'received' by the internet side -> claimed 'taking' -> one job
         per channel, as for intake above (jobs.mail_id) -> 'queued' + audit 'smtp.taken'
         (mail_spool.py, mail_intake.py); delivered by a mail plan (Maildir drops or the relay,
         mail_delivery.py) through the same 'delivering' state and retries
Recovery: a 'received' job is taken or finished from wherever its file is (or forgotten if the
file is gone or was left in the dropbox); 'processing' goes back to 'queued'; 'delivering'
replays its committed plan; recorded or half-taken mails are taken (Service.recover, then every
second). Tests kill the service at each named step (crashpoints.py).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from . import delivery, safefs
from .config import Config
from .deliverer import Deliverer
from .dropbox import NotTaken, StillWriting, sig, stat_beneath, unlink_beneath
from .files import fsync_dir
from .intake import Intake
from .quarantine import Quarantine
from .results import claimed_ext
from .storage import JobStore, Row

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


def _mine(ledger: JobStore, *statuses: str) -> list[Row]:
    """Unfinished jobs of this serve node (cluster.Node.takeover gave it those of dead nodes)."""
    rows = ledger.jobs(*statuses)
    owner = getattr(ledger, "owner", None)
    return rows if owner is None else [r for r in rows if r["owner"] == owner]


def recover(cfg: Config, ledger: JobStore, quarantine: Quarantine, intake: Intake, deliverer: Deliverer) -> None:
    """Bring every unfinished job of this node back to a consistent state (runs before any thread
    starts; with several serve nodes, on the jobs this node owns: its own and those it took over)."""
    for row in _mine(ledger, "received"):
        # One job that cannot be recovered now must not keep the service from starting: it stays
        # as it is (nothing delivered) and is tried again at the next start.
        try:
            _recover_intake(cfg, ledger, quarantine, intake, row)
        except Exception:  # noqa: BLE001 - logged with the job id, retried at the next start
            log.exception("cannot recover intake", extra={"event": "recover.failed", "job_id": row["id"]})
    rows = _mine(ledger, "processing")
    for row in [r for r in rows if r["source"] == "too_large"]:
        try:  # a too-large notice whose delivery never started: deliver it now
            deliverer.finish(row["id"], json.loads(row["result"]), None, None, None, None)
        except Exception:  # noqa: BLE001 - stays 'processing'; tried again at the next start
            log.exception("cannot deliver a too-large notice", extra={"event": "recover.failed", "job_id": row["id"]})
    rows = [r for r in rows if r["source"] != "too_large"]
    if rows:
        with ledger.tx() as t:
            t.requeue_all_processing()
        log.info("requeued interrupted jobs", extra={"event": "recover.requeue",
                                                     "job_ids": [r["id"] for r in rows]})
    for row in _mine(ledger, "delivering"):
        log.info("completing interrupted delivery", extra={"event": "recover.deliver", "job_id": row["id"]})
        try:
            # Inside the try: an inbox that cannot be written must not keep the service from starting.
            plan = json.loads(row["plan"])
            if plan.get("kind") != "mail":  # a mail's Maildir drop cleans its own tmp/ name
                delivery.remove_temps(plan, deliverer.tree, row["id"])
            deliverer.deliver(row["id"])
        except Exception as exc:  # noqa: BLE001 - stays 'delivering'; the delivery thread retries it
            log.exception("cannot complete delivery", extra={"event": "recover.failed", "job_id": row["id"]})
            if deliverer.status(row["id"]) == "delivering":
                deliverer.resume_later(row["id"], (row["sha256"], row["policy"], claimed_ext(row["name"])), exc)
    if getattr(ledger, "owner", None) is None or not cfg.database:
        shutil.rmtree(cfg.work / "jobs", ignore_errors=True)
    else:
        clean_job_dirs(cfg, ledger, 0.0)  # the work folder is shared: other nodes' jobs stay
    (cfg.work / "jobs").mkdir(parents=True, exist_ok=True)
    for part in (cfg.work / "intake").glob("*.copy"):
        if _not_others(ledger, part.name.split(".")[0]):
            part.unlink()  # a copy whose job row is gone or already re-taken
    inbox = deliverer.tree.rel(cfg.inbox)
    old = time.time() - (3600 if cfg.database else -1)  # another node may be copying one right now
    for dfd, name in safefs.fwalk_names(deliverer.tree, inbox, lambda n: n.startswith(".") and n.endswith(".tmp-orig")):
        st = safefs.lstat(dfd, name)
        if st is not None and st.st_mtime < old:
            safefs.unlink(dfd, name)  # an approved original whose copy was cut short
    stray = [p.name for p in (cfg.work / "intake").iterdir() if _not_others(ledger, p.name.split(".")[0])]
    if stray:
        log.error("files in work/intake without a job row (left in place)",
                  extra={"event": "recover.stray", "files": stray})


def _not_others(ledger: JobStore, name: str) -> bool:
    """Whether work/intake/<name> is not another live node's intake in progress."""
    owner = getattr(ledger, "owner", None)
    if owner is None or not name.isdigit():
        return True
    row = ledger.job(int(name))
    return row is None or row["status"] != "received" or row["owner"] in (None, owner)


def clean_job_dirs(cfg: Config, ledger: JobStore, min_age: float, live: set[str] | None = None) -> None:
    """Remove folders in work/jobs that no worker will write or read again: not of a job 'processing' at
    that attempt (another serve node's included), older than `min_age` seconds."""
    now = time.time()
    for d in (cfg.work / "jobs").iterdir():
        if live is not None and d.name in live:
            continue
        try:
            if now - d.stat().st_mtime < min_age:
                continue
            head = d.name.split(".")[0].split("-")
            if len(head) >= 2 and head[0].isdigit() and head[1].isdigit():
                row = ledger.job(int(head[0]))
                if row is not None and row["status"] == "processing" and row["attempts"] == int(head[1]):
                    continue
        except (OSError, ValueError):
            continue
        shutil.rmtree(d, ignore_errors=True)


def adopt(cfg: Config, ledger: JobStore, quarantine: Quarantine, intake: Intake, deliverer: Deliverer,
          rows: list[Row]) -> None:
    """Finish the jobs taken over from a serve node that stopped or fell silent (cluster.Node.takeover),
    while this node runs: the same steps as `recover`, the deliveries on the delivery thread."""
    for row in rows:
        if row is None:
            continue
        jid = row["id"]
        try:
            if row["status"] == "received":
                _recover_intake(cfg, ledger, quarantine, intake, row)
            elif row["status"] == "processing" and row["source"] == "too_large":
                deliverer.hand_over(jid, None, json.loads(row["result"]), None, None, None, None)
            elif row["status"] == "processing":
                with ledger.tx() as t:
                    t.requeue_if_processing(jid)
                deliverer._kick()
            elif row["status"] == "delivering":
                deliverer.adopt(jid, (row["sha256"], row["policy"], claimed_ext(row["name"])))
        except Exception:  # noqa: BLE001 - the job stays this node's; the next start recovers it
            log.exception("cannot finish a job taken over", extra={"event": "recover.failed", "job_id": jid})


def _recover_intake(cfg: Config, ledger: JobStore, quarantine: Quarantine, intake: Intake, row: Row) -> None:
    jid = row["id"]
    taken = cfg.work / "intake" / str(jid)
    drop_path = Path(os.fsdecode(row["drop_path"]))
    dropbox = row["source"] == "dropbox"
    if taken.exists():
        # Intake died between copy and unlink: the same file is still there.
        try:
            if dropbox:
                st = stat_beneath(cfg.dropbox, drop_path)
                if sig(st) == row["drop_sig"]:
                    unlink_beneath(cfg.dropbox, drop_path, same_as=st)
            elif sig(os.lstat(drop_path)) == row["drop_sig"]:
                os.unlink(drop_path)
        except (FileNotFoundError, NotTaken):
            pass
        intake.finish(jid, taken)
    elif row["sha256"] and quarantine.path_for(row["sha256"]).exists():
        with quarantine.lock:
            intake.mark_queued(jid)
    elif os.path.lexists(drop_path):
        try:
            intake.take(drop_path, taken, own=not dropbox)
        except (StillWriting, NotTaken, FileNotFoundError) as exc:
            with ledger.tx() as t:  # left where it is: the watcher decides again
                t.delete_job(jid)
            log.warning("not taken after restart", extra={"event": "recover.skip", "job_id": jid,
                                                          "path": str(drop_path), "why": str(exc)})
            return
        if cfg.fsync:
            fsync_dir(drop_path.parent)
            fsync_dir(taken.parent)
        intake.finish(jid, taken)
    else:
        with ledger.tx() as t:
            t.delete_job(jid)
        log.warning("file vanished before intake", extra={"event": "recover.vanished", "job_id": jid,
                                                          "path": str(drop_path)})
        return
    log.info("intake completed after restart", extra={"event": "recover.intake", "job_id": jid})
